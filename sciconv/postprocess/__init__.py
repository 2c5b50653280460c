"""From per-pixel scores to science products: instance labels, measurement tables, files.

- :func:`instances` turns a probability map (H, W, K) into int32 instance labels: touching objects
  are split by a watershed on the distance transform of the foreground (K = 1 or 2) or grown from
  the predicted interiors (K = 3: background / interior / boundary);
- :func:`measure` makes one table row per object (area, centroid, bounding box, flux, ellipse,
  RA/Dec from a WCS);
- :func:`write_catalog` writes a table as ECSV, CSV or a FITS table, atomically; for CSV,
  :func:`flatten_table` splits multi-value columns by the one rule (``probabilities_<class>``
  when the table names its classes, else ``flux_sum_0``, ...);
- :func:`write_products` writes the products of a segmentation (the full class-probability cube,
  instance labels, the catalog) as FITS (with the input's header, WCS, ``CLASSi`` cards naming
  the planes and HISTORY cards naming the model and parameters) or TIFF, named by
  :func:`product_paths`.

Pixel convention: ``x`` is the column and ``y`` the row, both 0-based with (0, 0) the centre of the
first pixel (numpy, astropy ``pixel_to_world`` and photutils; add 1 for FITS/DS9 1-based pixels).

Examples
--------
>>> import numpy as np
>>> prob = np.zeros((20, 30, 2), "float32"); prob[..., 0] = 1
>>> prob[2:8, 3:9] = [0, 1]; prob[12:18, 20:28] = [0, 1]
>>> labels = instances(prob)
>>> int(labels.max()), labels.dtype
(2, dtype('int32'))
>>> table = measure(labels)
>>> table["area"].tolist(), table["x"].tolist()
([36, 48], [5.5, 23.5])
"""

# The package, by role (imports run down this list):
#   _instances  probabilities -> instance labels
#   _measure    instance labels -> measurement table (and RA/Dec)
#   _writers    tables and image products -> files (the CSV rule, the probability convention)

from __future__ import annotations

from sciconv.postprocess._instances import METHODS, instances
from sciconv.postprocess._measure import measure
from sciconv.postprocess._writers import (
    CATALOG_FORMATS,
    PRODUCT_FORMATS,
    flatten_table,
    product_paths,
    write_catalog,
    write_products,
)

__all__ = [
    "CATALOG_FORMATS",
    "METHODS",
    "PRODUCT_FORMATS",
    "flatten_table",
    "instances",
    "measure",
    "product_paths",
    "write_catalog",
    "write_products",
]
