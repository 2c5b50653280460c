"""Normalize raw pixels the way scientists display them: NaN-safe, per channel, per image.

Normalization is two steps, kept separate so limits computed once (on a whole mosaic, say) can be
re-applied to any tile of it:

1. :func:`compute_limits` measures the statistics of an image (percentiles, min/max, zscale,
   mean/std) over all of its finite pixels, on a seeded subsample when the image is huge;
2. :func:`apply_limits` maps the pixels linearly with those limits and applies the method's stretch.

:func:`normalize` does both. A *spec* (:class:`NormSpec`) is what a model records about its
normalization (a plain JSON-able dict in its metadata, e.g. :data:`DEFAULT_NORMALIZATION`);
:func:`resolve_normalization` is the one grammar of every ``normalize=`` keyword (datasets,
inference, viz, CLI) and :func:`normalize_spec` re-applies a spec at inference.

Before it, :func:`apply_input_transform` gives an image the form a model was trained on (grey or
RGB, objects bright) and, where the model asks, :func:`restore_saturated` gives over-exposed
objects' flat tops back a profile. :func:`check_nodata_fill` warns when a mosaic's uncovered area
is filled with 0 instead of NaN (read it with ``nodata=0``).

The intervals and stretches are astropy's (:mod:`astropy.visualization`):

============== ============================================= ==================================
method         limits (vmin, vmax)                           stretch of (x - vmin)/(vmax - vmin)
============== ============================================= ==================================
"percentile"   ``AsymmetricPercentileInterval(low, high)``    linear
"minmax"       ``MinMaxInterval``                             linear
"zscale"       ``ZScaleInterval`` (IRAF's display limits)     linear
"asinh"        ``AsymmetricPercentileInterval(low, high)``    ``AsinhStretch(a)``
"zscore"       mean, mean + std                               linear: output (x - mean) / std
============== ============================================= ==================================

Fallbacks (documented behaviour, never inf/NaN for finite pixels):

- pixels that are not finite (NaN, +/-inf) are bad pixels: statistics ignore them and they come out
  NaN (or filled when ``nan=`` is given); a network sees them filled by :data:`BAD_PIXEL_FILL`
  (the good data mirrored across their edge) in training and at inference;
- a channel with no finite pixel gets NaN limits (nothing to measure; callers can test for it) and
  all its pixels come out NaN (or filled when ``nan=`` is given);
- when the limits collapse (``vmax - vmin`` at or below float32's resolution of the values, a
  relative test: an image in W m-2 Hz-1, spans of 1e-32, is not flat; e.g. a sparse image whose
  1st and 99.8th percentiles are both the sky level), the channel's min/max limits are used instead;
  when those collapse too (a constant image), the span is taken as 1, so a constant image maps to 0;
- results are saturated to the finite float32 range instead of overflowing to inf.

Examples
--------
>>> import numpy as np
>>> from sciconv.preprocess import normalize
>>> x = np.arange(101, dtype=np.float32).reshape(1, 101)
>>> y = normalize(x, method="minmax")
>>> float(y.min()), float(y.max())
(0.0, 1.0)
"""

from __future__ import annotations

from sciconv.preprocess._limits import (
    BAD_PIXEL_FILL,
    METHODS,
    Limits,
    apply_limits,
    compute_limits,
    fill_nan,
    invert_limits,
    normalize,
)
from sciconv.preprocess._nodata import check_nodata_fill
from sciconv.preprocess._saturation import MIN_PLATEAU_RADIUS, restore_saturated
from sciconv.preprocess._spec import (
    DEFAULT_NORMALIZATION,
    RAW_NORMALIZATION,
    RECORDED,
    NormSpec,
    is_raw_normalization,
    limits_from_spec,
    normalize_spec,
    resolve_normalization,
)
from sciconv.preprocess._transform import apply_input_transform, validate_input_transform

__all__ = [
    "BAD_PIXEL_FILL",
    "DEFAULT_NORMALIZATION",
    "METHODS",
    "MIN_PLATEAU_RADIUS",
    "RAW_NORMALIZATION",
    "RECORDED",
    "Limits",
    "NormSpec",
    "apply_input_transform",
    "apply_limits",
    "check_nodata_fill",
    "compute_limits",
    "fill_nan",
    "invert_limits",
    "is_raw_normalization",
    "limits_from_spec",
    "normalize",
    "normalize_spec",
    "resolve_normalization",
    "restore_saturated",
    "validate_input_transform",
]
