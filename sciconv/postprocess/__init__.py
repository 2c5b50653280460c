"""From per-pixel scores to science products: instance labels, measurement tables, files.

- :func:`instances` turns a probability map (H, W, K) into int32 instance labels: touching objects
  are split by a watershed on the distance transform of the foreground (K = 1 or 2) or grown from
  the predicted interiors (K = 3: background / interior / boundary); :func:`with_unmarked` is
  its rule that every foreground component gets a seed;
- :func:`measure` makes one table row per object (area, centroid, bounding box, flux, ellipse,
  RA/Dec from a WCS; ``flux_err`` from a per-pixel error); :func:`equivalent_diameters` gives
  each object's size as one number;
- :func:`grid_offset` / :func:`same_grid` say whether two WCSs are one pixel grid,
  :func:`check_measure_grid` refuses labels and an intensity on two grids (another band's or
  night's image), and :func:`reproject_labels` carries labels onto another grid (nearest
  neighbour, ids kept, an object smaller than a target pixel keeping one pixel);
- :func:`estimate_background` / :func:`background_and_rms` map the sky under the objects and
  :func:`estimate_error` the per-pixel 1-sigma error (the image's own uncertainty, else the
  background noise and the sources' Poisson noise through photutils, with the
  :func:`effective_gain` the header gives);
- :func:`write_catalog` writes a table as ECSV, CSV or a FITS table, atomically; for CSV,
  :func:`flatten_table` splits multi-value columns by the one rule (``probabilities_<class>``
  when the table names its classes, else ``flux_sum_0``, ...);
- :func:`write_products` writes the products of a segmentation (the full class-probability cube,
  instance labels, the catalog) as FITS (with the input's header, WCS, ``CLASSi`` cards naming
  the planes and HISTORY cards naming the model and parameters) or TIFF, named by
  :func:`product_paths`;
- the astronomers' own types: :func:`to_photutils` (photutils ``SegmentationImage`` and
  ``SourceCatalog``), :func:`to_regions` / :func:`write_regions` (DS9 regions through the
  ``regions`` package), :func:`to_ccddata` (``CCDData`` with the input's header, WCS and mask);
  :func:`write_catalog` writes VOTables, and :func:`measure`'s columns carry UCDs and units;
- the microscopists' own: :func:`labels_to_geojson` / :func:`geojson_to_labels` (QuPath detection
  objects as GeoJSON polygons).

Pixel convention: ``x`` is the column and ``y`` the row, both 0-based with (0, 0) the centre of the
first pixel (numpy, astropy ``pixel_to_world`` and photutils; add 1 for FITS/DS9 1-based pixels).

Examples
--------
>>> import numpy as np
>>> from sciconv.postprocess import instances, measure
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
#   _labels     label images as users hold them (GridImage, (H, W, 1) of integers) -> the
#               int64 (H, W) map every labels consumer takes, or one refusal for all of them
#   _instances  probabilities -> instance labels
#   _grids      whether labels, intensity and wcs= are one pixel grid; labels carried to another
#   _measure    instance labels -> measurement table (and RA/Dec)
#   _background the background under the objects (photutils' Background2D), for measure
#   _pixels     per-pixel arguments beside labels (background, errors), checked once
#   _errors     per-pixel error bars (own uncertainty, or background rms + Poisson), for measure
#   _noise_correlation  correlated noise of resampled images (R of a sum), for measure's flux_err
#   _sky_errors ra_err / dec_err: the centroid's pixel errors through the WCS's local Jacobian
#   _catalog    tables -> catalog files (ECSV, VOTable, FITS, CSV; the CSV rule for flat files)
#   _provenance the HISTORY lines of a prediction: model identity, settings and decisions,
#               input digest, software stack (for products with and without a HISTORY)
#   _writers    image products -> files (the probability convention), with their catalog
#   _zarr_products  OME-Zarr product stores (image + NGFF label groups), used by _writers
#   _observation  a catalog's band, night and zero point: the image's cards, filter/mjd_obs
#   _physical   catalog sizes in physical units from a pixel scale
#   _beam       flux densities (Jy) of radio maps in Jy/beam, from the restoring beam
#   _uncertainty  per-object score and uncertainty from probability and spread maps
#   _astro      bridges to photutils, regions and astropy.nddata (optional imports inside)
#   _geojson    instance labels <-> GeoJSON polygons (QuPath)

from __future__ import annotations

from sciconv.postprocess._apertures import aperture_radius
from sciconv.postprocess._astro import (
    MANY_REGIONS,
    REGION_FORMATS,
    REGION_SHAPES,
    to_ccddata,
    to_photutils,
    to_regions,
    write_regions,
)
from sciconv.postprocess._background import (
    BACKGROUND_MODES,
    BackgroundHistogram,
    background_and_rms,
    estimate_background,
    poisson_cut,
    says_counts,
    wants_background,
)
from sciconv.postprocess._background_mesh import BackgroundMesh
from sciconv.postprocess._beam import add_beam_columns, add_surface_brightness_columns, beam_pixels
from sciconv.postprocess._catalog import (
    CATALOG_FORMATS,
    flatten_table,
    read_catalog,
    with_provenance,
    write_catalog,
)
from sciconv.postprocess._errors import (
    NO_POISSON,
    NO_RMS,
    effective_gain,
    error_source,
    error_windows,
    estimate_error,
    own_error,
    photon_counting,
    resampled_by,
)
from sciconv.postprocess._geojson import (
    GEOJSON_SUFFIX,
    geojson_to_labels,
    labels_to_geojson,
    measurement_name,
    write_geojson,
)
from sciconv.postprocess._grids import (
    GRID_TOLERANCE,
    check_measure_grid,
    grid_offset,
    reproject_labels,
    same_grid,
)
from sciconv.postprocess._image_columns import (
    add_image_columns,
    add_plane_columns,
    channel_labels,
    clip_levels,
    image_channel_names,
)
from sciconv.postprocess._instances import (
    DEFAULT_THRESHOLD,
    METHODS,
    instance_threshold,
    instances,
    with_unmarked,
)
from sciconv.postprocess._measure import (
    COLUMN_UCDS,
    SATURATION_KEYWORDS,
    equivalent_diameters,
    measure,
    saturation_level,
)
from sciconv.postprocess._noise_correlation import (
    NOT_RESAMPLED_NOTE,
    NoiseCorrelation,
    apply_noise_correlation,
    flux_error_note,
    grown_objects,
    noise_correlation,
)
from sciconv.postprocess._observation import (
    MJD_KEYWORDS,
    OBSERVATION_KEYWORDS,
    PHOTOMETRIC_KEYWORDS,
    add_observation_columns,
    image_headers,
    observation_cards,
)
from sciconv.postprocess._physical import (
    CATALOG_UNITS,
    PHYSICAL_COLUMNS,
    PHYSICAL_SUFFIX,
    add_physical_columns,
    catalog_unit,
    in_catalog_unit,
)
from sciconv.postprocess._provenance import (
    INPUT_HASH_LIMIT,
    comment_regions,
    history_record,
    input_record,
    model_digest,
    prediction_history,
    software_record,
    with_decisions,
)
from sciconv.postprocess._uncertainty import (
    describe_scores,
    foreground_probability,
    object_scores,
)
from sciconv.postprocess._writers import (
    PRODUCT_CATALOG_FORMATS,
    PRODUCT_FORMATS,
    PRODUCT_SUFFIXES,
    class_name_list,
    product_paths,
    write_products,
)

__all__ = [
    "BACKGROUND_MODES",
    "CATALOG_FORMATS",
    "CATALOG_UNITS",
    "COLUMN_UCDS",
    "DEFAULT_THRESHOLD",
    "GEOJSON_SUFFIX",
    "GRID_TOLERANCE",
    "INPUT_HASH_LIMIT",
    "MANY_REGIONS",
    "METHODS",
    "MJD_KEYWORDS",
    "NOT_RESAMPLED_NOTE",
    "NO_POISSON",
    "NO_RMS",
    "OBSERVATION_KEYWORDS",
    "PHOTOMETRIC_KEYWORDS",
    "PHYSICAL_COLUMNS",
    "PHYSICAL_SUFFIX",
    "PRODUCT_CATALOG_FORMATS",
    "PRODUCT_FORMATS",
    "PRODUCT_SUFFIXES",
    "REGION_FORMATS",
    "REGION_SHAPES",
    "SATURATION_KEYWORDS",
    "BackgroundHistogram",
    "BackgroundMesh",
    "NoiseCorrelation",
    "add_beam_columns",
    "add_image_columns",
    "add_observation_columns",
    "add_physical_columns",
    "add_plane_columns",
    "add_surface_brightness_columns",
    "aperture_radius",
    "apply_noise_correlation",
    "background_and_rms",
    "beam_pixels",
    "catalog_unit",
    "channel_labels",
    "check_measure_grid",
    "class_name_list",
    "clip_levels",
    "comment_regions",
    "describe_scores",
    "effective_gain",
    "equivalent_diameters",
    "error_source",
    "error_windows",
    "estimate_background",
    "estimate_error",
    "flatten_table",
    "flux_error_note",
    "foreground_probability",
    "geojson_to_labels",
    "grid_offset",
    "grown_objects",
    "history_record",
    "image_channel_names",
    "image_headers",
    "in_catalog_unit",
    "input_record",
    "instance_threshold",
    "instances",
    "labels_to_geojson",
    "measure",
    "measurement_name",
    "model_digest",
    "noise_correlation",
    "object_scores",
    "observation_cards",
    "own_error",
    "photon_counting",
    "poisson_cut",
    "prediction_history",
    "product_paths",
    "read_catalog",
    "reproject_labels",
    "resampled_by",
    "same_grid",
    "saturation_level",
    "says_counts",
    "software_record",
    "to_ccddata",
    "to_photutils",
    "to_regions",
    "wants_background",
    "with_decisions",
    "with_provenance",
    "with_unmarked",
    "write_catalog",
    "write_geojson",
    "write_products",
    "write_regions",
]
