"""Plots for scientific images and the networks that read them.

Every function here returns a :class:`matplotlib.figure.Figure` built without pyplot state, so
nothing leaks between calls, scripts can ``fig.savefig(...)`` and notebooks display the returned
figure (run ``%matplotlib inline`` once, or import pyplot, so Jupyter knows how to draw a bare
Figure). None of them calls ``plt.show()``.

- Images: :func:`show` (astronomical stretches, sky axes from a WCS), :func:`overlay_mask`,
  :func:`contours`, :func:`outlines` (instance boundaries).
- Inside a network: :func:`feature_maps`, :func:`filters`, :func:`grad_cam`
  (:func:`grad_cam_heatmap` returns the bare array).
- Training and evaluation: :func:`training_curves`, :func:`confusion_matrix`,
  :func:`compare_catalogs`.

Orientation: every function that draws an image takes ``origin=``. The default, ``"auto"``,
draws FITS images and images with a celestial WCS with row 0 at the bottom (astronomy, DS9)
and TIFF, PNG and plain arrays with row 0 at the top (microscopy: Fiji, napari, QuPath);
``"upper"`` or ``"lower"`` forces it. Overlays (masks, outlines, contours, Grad-CAM) follow
their image, and pixel ``(x, y)`` = (column, row) stays at data coordinates ``(x, y)``.

viz draws only. The numbers behind the figures live with the other measurements:
:func:`sciconv.metrics.confusion_counts` and :func:`sciconv.metrics.match_catalogs` (also
reachable here as ``viz.confusion_counts`` and ``viz.match_catalogs``, loaded on first use),
and :func:`sciconv.runs.read_log` for a run's log.
Importing :mod:`sciconv.viz` loads neither TensorFlow nor Keras; the network functions load them
when called.

Examples
--------
>>> import numpy as np
>>> from sciconv import viz
>>> fig = viz.show(np.arange(64.0).reshape(8, 8), stretch="linear", title="ramp")
>>> fig.axes[0].get_title()
'ramp'
"""

from __future__ import annotations

from sciconv._lazy import lazy_names
from sciconv.viz._calibration import plot_reliability
from sciconv.viz._display import STRETCHES, show
from sciconv.viz._network import feature_maps, filters, grad_cam, grad_cam_heatmap
from sciconv.viz._overlays import contours, instance_palette, outlines, overlay_mask
from sciconv.viz._plots import compare_catalogs, confusion_matrix, training_curves

__all__ = [
    "STRETCHES",
    "compare_catalogs",
    "confusion_counts",
    "confusion_matrix",
    "contours",
    "feature_maps",
    "filters",
    "grad_cam",
    "grad_cam_heatmap",
    "instance_palette",
    "match_catalogs",
    "outlines",
    "overlay_mask",
    "plot_reliability",
    "show",
    "training_curves",
]

# Measurements that kept their old viz names: aliases of the sciconv.metrics functions, loaded on
# first use (scipy's assignment solver need not load with viz).
__getattr__, __dir__ = lazy_names(
    __name__, "sciconv.metrics", ("confusion_counts", "match_catalogs")
)
