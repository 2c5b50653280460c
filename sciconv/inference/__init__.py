"""Run trained models on images of any size: tiled, blended, batched; numpy, memmap, lazy or dask.

:func:`predict_tiled` is the one entry point for dense (per-pixel) prediction. It

- reads the image tile by tile (a numpy array, a memory-mapped array, a
  :class:`sciconv.io.GridImage` whose ``.data`` may be a lazy :class:`~sciconv.io.LazyImage`, or a
  dask array), so a survey mosaic is never loaded whole;
- validates every argument once, into a frozen :class:`PredictionSettings`
  (:func:`resolve_settings`), before reading a pixel;
- normalizes every tile with limits computed **once** over the whole image (subsampled when it is
  huge), by default with the spec the model was trained with;
- runs the model on batches of equally sized tiles (so it is traced once), with tiles aligned to the
  model's divisor (a U-Net of depth ``d`` needs multiples of ``2**d``);
- blends the overlaps with a window (or keeps only tile centres) and fills the output in place
  (a numpy array or a ``.npy`` memory map).

:func:`predict_instances` adds the model's recorded post-processing (instance labels);
:func:`predict_stack` segments a movie or Z-stack plane by plane with one size decision;
:func:`predict_files` classifies many cutout files into a table.

Tile geometry
-------------
Along each axis of length ``n`` with tile ``t`` and ``overlap`` ``o``: when ``n > t`` the tiles
start at ``0, s, 2s, ...`` with stride ``s = t - o`` rounded down to the divisor, and the last tile
is moved back to end exactly at the image edge, so **tiles never leave the image** and the model
pads at the image edges exactly as it does in a whole-image call. When ``n <= t`` one tile covers
the axis: the image is padded (``pad_mode``, reflect by default) on both sides up to the tile
size, and the padding is cropped off the output. A fully convolutional model with a
receptive-field half-width ``r`` (see :func:`receptive_field`) then gives exactly the whole-image
result wherever ``o >= 2 r`` with ``blend="none"``. :meth:`PredictionSettings.tile_starts` gives
the grid.

Masked pixels
-------------
Non-finite input pixels (NaN, +/-inf, in any channel) are bad pixels: they are fed to the model
filled by :data:`sciconv.preprocess.BAD_PIXEL_FILL` (after normalization: the good data mirrored
across the edge of the bad region, as training fills them and as the image border is padded) and
the output is NaN at them. The fill is computed on a grid fixed to the whole image, so every
tile of an image feeds the same values as the whole-image call; a dask chunk or a block window
sees only its margin, so next to bad pixels within about three receptive fields of its edge its
fill (hence a few output pixels) may differ. Their neighbours' predictions are computed with the
filled values, so a masked region never turns other pixels or other tiles into NaN. Nuclei along
a 96-px NaN frame keep AP@0.5 0.867 of 0.873 (0.773 when bad pixels were fed as 0;
``benchmarks/bad_pixel_fill.py``).

Layout
------
One private module per role:

- ``_model``: runners, output channels, activation memory (the model's input checks and
  :func:`receptive_field` are :mod:`sciconv.models.introspect`'s);
- ``_tiles``: tile geometry (starts, ``tile="auto"``, padding indices);
- ``_blend``: windows (zero weight within the receptive-field margin of interior tile edges) and
  weighted writes;
- ``_settings``: :class:`PredictionSettings`, :func:`resolve_settings`;
- ``_source``: image kinds, normalization limits;
- ``_precision``: the ``precision="auto"`` choice (the rebuilds are
  :mod:`sciconv.models.precision`'s);
- ``_scale``: pixel-scale decisions and resampling;
- ``_second_pass``: ``brightness="auto"`` and ``denoise="auto"`` (faint or noisy objects);
- ``_uncertainty``: uncertainty wrappers (tta, mc_dropout, ensemble) and
  :func:`predict_uncertainty`;
- ``_core``: the numpy tile loop; ``_dask``: block-wise dense prediction (and models shipped
  to dask workers as files);
- ``_blocks``: block-wise instances with stitching (:func:`predict_instances_blocks`), labels
  streamed to zarr or a memory map;
- ``_tiled``: :func:`predict_tiled`; ``_instances``: :func:`predict_instances`;
  ``_stack``: :func:`predict_stack` (movies and Z-stacks, plane by plane);
  ``_files``: :func:`predict_files`, :func:`predict_mosaic`;
- ``_d4``: :func:`predict_d4` (image-level D4 test-time averaging of classifiers and
  regressors, and its spread);
- ``_decisions``: :func:`decisions`, the log of what the automatic settings decided (the
  resampling factor, the second pass, the input transform), for the products' HISTORY.

Examples
--------
>>> import numpy as np, keras
>>> from sciconv.inference import predict_tiled
>>> inputs = keras.Input((None, None, 1))
>>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1, kernel_initializer="ones")(inputs))
>>> prob = predict_tiled(model, np.ones((40, 50)), tile=16, overlap=4, normalize=None,
...                      progress=False)
>>> prob.shape, prob.dtype
((40, 50, 2), dtype('float32'))
"""

from __future__ import annotations

from sciconv.inference._blend import BLEND_MODES
from sciconv.inference._blocks import DEFAULT_BLOCK, BlockPlan, predict_instances_blocks
from sciconv.inference._d4 import predict_d4
from sciconv.inference._decisions import decisions
from sciconv.inference._files import predict_files, predict_mosaic
from sciconv.inference._instances import (
    AUTO_BLOCK_PIXELS,
    AUTO_SIZE_MAX_PIXELS,
    auto_size_again,
    predict_instances,
)
from sciconv.inference._precision import PRECISIONS, choose_precision
from sciconv.inference._scale import (
    AUTO_SIZE_MIN_OBJECTS,
    auto_size_factor,
    image_pixel_scale,
    object_size_factor,
    physical_object_size,
    resample,
    resolve_scale,
)
from sciconv.inference._second_pass import (
    DENOISE_SIGMA,
    object_level,
    object_snr,
    second_pass_input,
    smoothed,
)
from sciconv.inference._settings import (
    AUTO_MEMORY_BUDGET,
    PAD_MODES,
    TTA_MODES,
    PredictionSettings,
    resolve_settings,
)
from sciconv.inference._stack import STACK_AXES, StackPlane, predict_stack
from sciconv.inference._tiled import predict_tiled
from sciconv.inference._tiles import AUTO_TILE_MAX
from sciconv.inference._uncertainty import (
    UNCERTAINTY_METHODS,
    UNCERTAINTY_PRECISION,
    predict_uncertainty,
    split_moments,
    uncertainty_model,
)
from sciconv.models.introspect import receptive_field
from sciconv.models.precision import bfloat16_model, float32_model

__all__ = [
    "AUTO_BLOCK_PIXELS",
    "AUTO_MEMORY_BUDGET",
    "AUTO_SIZE_MAX_PIXELS",
    "AUTO_SIZE_MIN_OBJECTS",
    "AUTO_TILE_MAX",
    "BLEND_MODES",
    "DEFAULT_BLOCK",
    "DENOISE_SIGMA",
    "PAD_MODES",
    "PRECISIONS",
    "STACK_AXES",
    "TTA_MODES",
    "UNCERTAINTY_METHODS",
    "UNCERTAINTY_PRECISION",
    "BlockPlan",
    "PredictionSettings",
    "StackPlane",
    "auto_size_again",
    "auto_size_factor",
    "bfloat16_model",
    "choose_precision",
    "decisions",
    "float32_model",
    "image_pixel_scale",
    "object_level",
    "object_size_factor",
    "object_snr",
    "physical_object_size",
    "predict_d4",
    "predict_files",
    "predict_instances",
    "predict_instances_blocks",
    "predict_mosaic",
    "predict_stack",
    "predict_tiled",
    "predict_uncertainty",
    "receptive_field",
    "resample",
    "resolve_scale",
    "resolve_settings",
    "second_pass_input",
    "smoothed",
    "split_moments",
    "uncertainty_model",
]
