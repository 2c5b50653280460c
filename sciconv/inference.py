"""Run trained models on images of any size: tiled, blended, batched; numpy, memmap, lazy or dask.

:func:`predict_tiled` is the one entry point for dense (per-pixel) prediction. It

- reads the image tile by tile (a numpy array, a memory-mapped array, a
  :class:`sciconv.io.GridImage` whose ``.data`` may be a lazy :class:`~sciconv.io.LazyImage`, or a
  dask array), so a survey mosaic is never loaded whole;
- normalizes every tile with limits computed **once** over the whole image (subsampled when it is
  huge), by default with the spec the model was trained with;
- runs the model on batches of equally sized tiles (so it is traced once), with tiles aligned to the
  model's divisor (a U-Net of depth ``d`` needs multiples of ``2**d``);
- blends the overlaps with a window (or keeps only tile centres) and fills the output in place
  (a numpy array or a ``.npy`` memory map).

Tile geometry
-------------
Along each axis of length ``n`` with tile ``t`` and ``overlap`` ``o``: when ``n > t`` the tiles
start at ``0, s, 2s, ...`` with stride ``s = t - o`` rounded down to the divisor, and the last tile
is moved back to end exactly at the image edge, so **tiles never leave the image** and the model
pads at the image edges exactly as it does in a whole-image call. When ``n <= t`` one tile covers
the axis: the image is padded (``pad_mode``, reflect by default) on both sides up to the tile
size, and the padding is cropped off the output. A fully convolutional model with a
receptive-field half-width ``r`` (see :func:`receptive_field`) then gives exactly the whole-image
result wherever ``o >= 2 r`` with ``blend="none"``.

Masked pixels
-------------
Non-finite input pixels (NaN, +/-inf, in any channel) are bad pixels: they are fed to the model as 0
(after normalization, i.e. at the level the low limit maps to) and the output is NaN at them. Their
neighbours' predictions are computed with the filled values, so a masked region never turns other
pixels or other tiles into NaN.

Examples
--------
>>> import numpy as np, keras
>>> inputs = keras.Input((None, None, 1))
>>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1, kernel_initializer="ones")(inputs))
>>> prob = predict_tiled(model, np.ones((40, 50)), tile=16, overlap=4, normalize=None,
...                      progress=False)
>>> prob.shape, prob.dtype
((40, 50, 2), dtype('float32'))
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import math
import os
import sys
import tempfile
import threading
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np

from sciconv import preprocess
from sciconv._atomic import atomic_output
from sciconv._validation import check_int, look_up_option
from sciconv.errors import InferenceError, SciconvWarning
from sciconv.models import get_metadata

__all__ = [
    "predict_files",
    "predict_instances",
    "predict_tiled",
    "receptive_field",
]

BLEND_MODES = ("gaussian", "linear", "none")
PAD_MODES = ("reflect", "symmetric", "edge", "constant")
TTA_MODES = (None, "d4")

#: Memory (bytes) that ``tile="auto"`` lets one batch of activations use (an estimate, see
#: :func:`_bytes_per_pixel`).
AUTO_MEMORY_BUDGET = 1 << 30
#: ``tile="auto"`` never picks tiles larger than this (pixels per side).
AUTO_TILE_MAX = 2048
#: Gaussian window width as a fraction of the tile (MONAI's ``sigma_scale``).
_GAUSSIAN_SIGMA = 0.125
#: Window weights never drop below this fraction of the peak (avoids 0/0 at far tile corners).
_WINDOW_FLOOR = 1e-4
#: Normalization statistics are taken from at most this many pixels of a lazy or huge image.
_LIMIT_SAMPLES = 1_000_000


# --------------------------------------------------------------------------------------------------
# model introspection


def _validate_model(model) -> keras.Model:
    if not isinstance(model, keras.Model):
        raise InferenceError(f"model must be a keras.Model; got {type(model).__name__}")
    if len(model.inputs) != 1:
        raise InferenceError(
            f"model {model.name!r} has {len(model.inputs)} inputs; tiled prediction needs one "
            "image input of shape (None, H, W, C)"
        )
    if len(model.input_shape) != 4:
        raise InferenceError(
            f"model {model.name!r} takes inputs of shape {model.input_shape}; tiled prediction "
            "needs a 2-D image model with input (None, H, W, C)"
        )
    return model


def _model_channels(model) -> int | None:
    c = model.input_shape[-1]
    return None if c is None else int(c)


def _model_fixed_hw(model) -> tuple[int, int] | None:
    h, w = model.input_shape[1:3]
    if h is None and w is None:
        return None
    if h is None or w is None:
        raise InferenceError(
            f"model {model.name!r} has input shape {model.input_shape}: fix both H and W or neither"
        )
    return int(h), int(w)


def _model_divisor(model, meta: Mapping) -> int:
    d = meta.get("divisor", 1)
    try:
        d = int(d)
    except (TypeError, ValueError):
        d = 1
    return max(d, 1)


def _bytes_per_pixel(model) -> float:
    """A conservative estimate of activation memory per input pixel (float32, one image).

    Three live tensors of the widest layer at full resolution, plus input and output. Downsampling
    layers only make the truth smaller, so tiles picked with it fit the budget.
    """
    widest = 1
    for layer in _all_layers(model):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if shape and shape[-1] is not None:
            widest = max(widest, int(shape[-1]))
    c_in = _model_channels(model) or 1
    k = model.output_shape[-1] or 1
    return 4.0 * (3 * widest + c_in + k)


def _all_layers(model) -> Iterable:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


class _Runner:
    """Calls a model on float32 batches and checks its output once."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.lock = threading.Lock()
        self.checked = set()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            y = self.model.predict_on_batch(batch)
        if isinstance(y, (list, tuple, dict)):
            raise InferenceError(
                f"model {self.model.name!r} returns {len(y)} outputs; tiled prediction needs one "
                "per-pixel output of shape (N, H, W, K)"
            )
        y = np.asarray(y)
        key = batch.shape[1:3]
        if key not in self.checked:
            if y.ndim != 4 or y.shape[:3] != batch.shape[:3]:
                raise InferenceError(
                    f"model {self.model.name!r} maps a batch of shape {batch.shape} to "
                    f"{y.shape}; tiled prediction needs a same-size per-pixel output (a fully "
                    "convolutional model with padding='same', e.g. sciconv.models.segmenter)"
                )
            self.checked.add(key)
        return y.astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------
# receptive field

_RF_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def receptive_field(model: keras.Model, *, max_size: int = 1024, seed: int = 0) -> tuple[int, int]:
    """Measure how far (in pixels, per axis) an input pixel influences the model's output.

    An impulse is added to a seeded random image and the output pixels that change are located
    (StarDist's ``_compute_receptive_field`` idea, measured rather than looked up in a table). The
    probe grows (64, 128, ... up to ``max_size`` pixels) until the changed region stays inside it.
    The result is cached per model.

    Parameters
    ----------
    model : keras.Model
        A 2-D model with a same-size per-pixel output.
    max_size : int, optional
        Largest probe side. Default 1024. A model whose influence reaches past it (global pooling,
        attention) gets ``max_size // 2`` and a :class:`~sciconv.errors.SciconvWarning`.
    seed : int, optional
        Seed of the random background. Default 0.

    Returns
    -------
    tuple of int
        ``(ry, rx)``: the half-width of the receptive field along rows and columns, so an output
        pixel depends on inputs at most ``ry`` rows and ``rx`` columns away. Tiles reproduce the
        whole-image result when ``overlap >= 2 * max(ry, rx)`` (see :func:`predict_tiled`).

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input((None, None, 1))
    >>> x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 5, padding="same")(x))
    >>> receptive_field(model)
    (3, 3)
    """
    _validate_model(model)
    cached = _RF_CACHE.get(model)
    if cached is not None:
        return cached
    meta = get_metadata(model)
    divisor = _model_divisor(model, meta)
    fixed = _model_fixed_hw(model)
    channels = _model_channels(model) or 1
    runner = _Runner(model)
    rng = np.random.default_rng(seed)
    if fixed:
        sizes = [fixed]
    else:
        side, sizes = max(64, 4 * divisor), []
        while True:
            sizes.append((_round_up(side, divisor),) * 2)
            if side >= max_size:
                break
            side *= 2
    result = None
    for size in sizes:
        h, w = size
        background = rng.normal(size=(1, h, w, channels)).astype(np.float32)
        probe = background.copy()
        cy, cx = h // 2, w // 2
        probe[0, cy, cx, :] += 1.0
        y = runner(np.concatenate([background, probe]))
        changed = np.argwhere(np.abs(y[1] - y[0]).max(axis=-1) > 0)
        if changed.size == 0:
            result = (0, 0)
            break
        lo, hi = changed.min(axis=0), changed.max(axis=0)
        ry = int(max(cy - lo[0], hi[0] - cy))
        rx = int(max(cx - lo[1], hi[1] - cx))
        result = (ry, rx)
        if lo.min() > 0 and hi[0] < h - 1 and hi[1] < w - 1:
            break
    else:
        warnings.warn(
            f"model {model.name!r}: the output depends on inputs as far as the probe reaches "
            f"({sizes[-1][0]} px); its receptive field may be global (pooling over the whole "
            "image), so tiles cannot reproduce a whole-image call",
            SciconvWarning,
            stacklevel=2,
        )
    _RF_CACHE[model] = result
    return result


# --------------------------------------------------------------------------------------------------
# image sources: read (H, W, C) float32 windows from numpy, memmap, LazyImage


def _is_dask(x) -> bool:
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "map_overlap")


def _is_grid_image(x) -> bool:
    return not isinstance(x, np.ndarray) and hasattr(x, "data") and hasattr(x, "header")


class _Source:
    """Uniform (H, W, C) window reads from an array-like (numpy, memmap, LazyImage)."""

    def __init__(self, array, *, promote: bool, path: str | None):
        self.array = array
        self.promote = promote  # a 2-D array: add the channel axis after slicing
        self.path = path
        shape = tuple(int(s) for s in array.shape)
        self.shape = (*shape, 1) if promote else shape

    @property
    def lazy(self) -> bool:
        return not isinstance(self.array, np.ndarray) or isinstance(self.array, np.memmap)

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        block = self.array[ys, xs]
        block = np.asarray(block)
        if self.promote or block.ndim == 2:
            block = block[..., None]
        return block.astype(np.float32, copy=False)

    def limits_sample(self):
        """What to measure normalization limits on (the same pixels for every source kind)."""
        h, w = self.shape[:2]
        if not self.lazy:
            return self.array if not self.promote else self.array[..., None]
        if h * w <= _LIMIT_SAMPLES:
            return self.read(slice(None), slice(None))
        step = max(1, math.ceil(math.sqrt(h * w / _LIMIT_SAMPLES)))
        if isinstance(self.array, np.ndarray):
            sub = np.asarray(self.array[::step, ::step])
        else:  # LazyImage: full-width row reads only
            rows = [self.read(slice(r, r + 1), slice(None))[:, ::step] for r in range(0, h, step)]
            sub = np.concatenate(rows, axis=0)
        return sub[..., None] if sub.ndim == 2 else sub


def _input_transform(model, arr, path):
    """Apply the model's recorded ``input_transform`` (e.g. RGB -> grey, brightfield flipped).

    Models trained on transformed images (the pretrained nuclei model: grey, nuclei brighter than
    the background) record the transform in their metadata, like their normalization, so raw RGB
    or brightfield pixels can be passed as they are. The transform needs the whole image (its
    statistics decide the flip), so a dask input is refused rather than loaded whole.
    """
    spec = get_metadata(model).get("input_transform")
    if spec is None:
        return arr
    if _is_dask(arr):
        raise InferenceError(
            f"model {model.name!r} records an input_transform {spec}, which needs the whole image; "
            "apply sciconv.preprocess.apply_input_transform yourself and pass the result",
            path=path,
        )
    return preprocess.apply_input_transform(np.asarray(arr), spec)


def _validate_image(image) -> tuple[Any, str | None]:
    """Return (array-like of shape (H, W[, C]), path) from any accepted image kind."""
    path = None
    if _is_grid_image(image):
        path = None if getattr(image, "path", None) is None else str(image.path)
        image = image.data
    if image is None:
        raise InferenceError("image is None; pass a numpy array, GridImage or dask array")
    if isinstance(image, (str, os.PathLike)):
        raise InferenceError(
            f"image is a path ({os.fspath(image)!r}); read it first with sciconv.io.read(path, "
            "lazy=True) and pass the GridImage"
        )
    if not hasattr(image, "shape") or not hasattr(image, "__getitem__"):
        try:
            image = np.asarray(image)
        except Exception as err:  # any conversion failure is a bad image
            raise InferenceError(
                f"image must be an array, GridImage or dask array; got {type(image).__name__}"
            ) from err
    shape = tuple(int(s) for s in image.shape)
    if len(shape) not in (2, 3):
        raise InferenceError(
            f"image must have shape (H, W) or (H, W, C); got shape {shape}", path=path
        )
    dtype = np.dtype(getattr(image, "dtype", np.float32))
    if dtype.kind not in "biuf":
        raise InferenceError(f"image must hold real numbers; got dtype {dtype}", path=path)
    if min(shape[:2]) < 2:
        raise InferenceError(
            f"image of shape {shape} is too small: predict_tiled needs at least 2 pixels along H "
            "and W (a single row, column or pixel has no 2-D neighbourhood to pad by reflection)",
            path=path,
        )
    if len(shape) == 3 and shape[2] < 1:
        raise InferenceError(f"image of shape {shape} has no channels", path=path)
    return image, path


# --------------------------------------------------------------------------------------------------
# tile geometry


def _round_up(n: int, d: int) -> int:
    return -(-int(n) // d) * d


def _axis_starts(n: int, t: int, overlap: int, divisor: int) -> list[int]:
    """Tile starts along one axis (negative = padded before the image when ``n < t``)."""
    if n <= t:
        return [-((t - n) // 2)]
    stride = ((t - overlap) // divisor) * divisor
    return [*range(0, n - t, stride), n - t]


def _window(t: int, blend: str, overlap: int) -> np.ndarray:
    i = np.arange(t, dtype=np.float64)
    if blend == "gaussian":
        sigma = max(_GAUSSIAN_SIGMA * t, 1e-3)
        w = np.exp(-0.5 * ((i - (t - 1) / 2) / sigma) ** 2)
    else:  # linear ramp across the middle half of the overlap, 0 in its outer quarter
        edge = np.minimum(i, t - 1 - i)
        margin = overlap // 4  # where the tile's own zero padding corrupts it most
        w = np.clip((edge - margin + 1) / (max(overlap - 2 * margin, 1) + 1), 0.0, 1.0)
    return np.maximum(w / w.max(), _WINDOW_FLOOR)


def _axis_plan(n: int, t: int, starts: Sequence[int], blend: str, overlap: int) -> list[tuple]:
    """Per tile: (out_lo, out_hi, tile_lo, tile_hi, weights or None) along one axis.

    Weights are already divided by the sum over the tiles covering each pixel; since windows are
    separable and tiles form a grid, the 2-D weight sum factorizes, so no (H, W) weight image is
    ever needed.
    """
    plan = []
    if blend == "none":
        bounds = [0] + [(starts[i + 1] + starts[i] + t) // 2 for i in range(len(starts) - 1)] + [n]
        for s, lo, hi in zip(starts, bounds[:-1], bounds[1:]):
            plan.append((lo, hi, lo - s, hi - s, None))
        return plan
    window = _window(t, blend, overlap)
    total = np.zeros(n)
    for s in starts:
        lo, hi = max(0, s), min(n, s + t)
        total[lo:hi] += window[lo - s : hi - s]
    for s in starts:
        lo, hi = max(0, s), min(n, s + t)
        w = (window[lo - s : hi - s] / total[lo:hi]).astype(np.float32)
        plan.append((lo, hi, lo - s, hi - s, w))
    return plan


def _index_map(start: int, t: int, n: int, pad_mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Source indices for tile positions ``start .. start + t`` (and the constant-pad mask)."""
    idx = np.arange(start, start + t)
    outside = (idx < 0) | (idx >= n)
    if not outside.any():
        return idx, None
    if pad_mode == "edge":
        src = np.clip(idx, 0, n - 1)
    elif pad_mode == "symmetric":
        period = 2 * n
        m = np.mod(idx, period)
        src = np.where(m < n, m, period - 1 - m)
    elif pad_mode == "reflect":
        period = 2 * n - 2
        m = np.mod(idx, period)
        src = np.where(m < n, m, period - m)
    else:  # constant: any valid index, zeroed afterwards
        src = np.clip(idx, 0, n - 1)
    return src, (outside if pad_mode == "constant" else None)


# --------------------------------------------------------------------------------------------------
# settings


class _Settings:
    """Validated, resolved settings for one prediction."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _resolve_spec(model, normalize, meta: Mapping, *, error=InferenceError) -> dict | None:
    """Turn ``normalize`` (``"model"``, None or a spec dict) into the spec to apply.

    ``"model"`` is the spec recorded in ``meta`` (the model's metadata), else
    ``preprocess.DEFAULT_NORMALIZATION``. The one rule for inference and :mod:`sciconv.viz`;
    anything else raises ``error``.
    """
    if normalize is None:
        return None
    if isinstance(normalize, str):
        look_up_option(normalize, ("model",), name="normalize", error=error)
        spec = meta.get("normalization") or preprocess.DEFAULT_NORMALIZATION
        return dict(spec)
    if isinstance(normalize, Mapping):
        return dict(normalize)
    raise error(
        f"normalize must be 'model' (the model's recorded spec), None (raw pixels) or a spec dict "
        f"like {{'method': 'percentile', 'low': 1.0, 'high': 99.8}}; got {normalize!r}"
    )


def _tile_pair(tile, *, name: str = "tile") -> tuple[int, int]:
    if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool):
        tile = (int(tile), int(tile))
    if not isinstance(tile, Sequence) or len(tile) != 2:
        raise InferenceError(f"{name} must be 'auto', an int or a pair of ints; got {tile!r}")
    return (
        check_int(tile[0], name=name, minimum=1, error=InferenceError),
        check_int(tile[1], name=name, minimum=1, error=InferenceError),
    )


def _auto_tile(model, hw, overlap: int, divisor: int, budget: int) -> tuple[int, int]:
    """Largest tile within ``budget`` (capped at :data:`AUTO_TILE_MAX`), equalized over the image.

    When an axis fits in one tile it gets exactly one (no recompute); otherwise the tile count ``k``
    is the smallest the budget allows and the tile is shrunk to cover the axis with ``k`` tiles, so
    the recomputed fraction stays close to ``overlap / tile``.
    """
    max_px = budget / _bytes_per_pixel(model)
    tmax = int(math.sqrt(max_px)) // divisor * divisor
    tmax = min(max(tmax, _round_up(overlap + divisor, divisor), divisor), AUTO_TILE_MAX)
    tmax = max(tmax // divisor * divisor, _round_up(overlap + divisor, divisor))
    out = []
    for n in hw:
        if _round_up(n, divisor) <= tmax:
            out.append(_round_up(n, divisor))
            continue
        k = math.ceil((n - overlap) / (tmax - overlap))
        while True:
            t = _round_up(math.ceil((n - overlap) / k) + overlap, divisor)
            if len(_axis_starts(n, t, overlap, divisor)) <= k or t >= tmax:
                break
            k += 1
        out.append(min(t, max(tmax, t)))
    return out[0], out[1]


def _settings(
    model,
    shape,
    *,
    tile,
    overlap,
    batch_size,
    normalize,
    blend,
    tta,
    pad_mode,
    memory_budget,
    path,
) -> _Settings:
    """Validate every argument of :func:`predict_tiled` against the model and the image."""
    model = _validate_model(model)
    meta = get_metadata(model)
    h, w, c = shape
    channels = _model_channels(model) or meta.get("input_channels")
    if channels is not None and int(channels) != c:
        raise InferenceError(
            f"image has {c} channel(s) (shape {shape}) but model {model.name!r} expects "
            f"{channels}; select or stack channels to match",
            path=path,
        )
    blend = look_up_option(blend, BLEND_MODES, name="blend", error=InferenceError)
    pad_mode = look_up_option(pad_mode, PAD_MODES, name="pad_mode", error=InferenceError)
    tta = look_up_option(tta, TTA_MODES, name="tta", error=InferenceError)
    batch_size = check_int(batch_size, name="batch_size", minimum=1, error=InferenceError)
    memory_budget = check_int(memory_budget, name="memory_budget", minimum=1, error=InferenceError)
    divisor = _model_divisor(model, meta)
    fixed = _model_fixed_hw(model)
    if isinstance(overlap, str):
        look_up_option(overlap, ("auto",), name="overlap", error=InferenceError)
        r = max(receptive_field(model))
        overlap = _round_up(2 * r, divisor) if r else 0
    else:
        overlap = check_int(overlap, name="overlap", minimum=0, error=InferenceError)
    spec = _resolve_spec(model, normalize, meta)

    if isinstance(tile, str):
        look_up_option(tile, ("auto",), name="tile", error=InferenceError)
        tiles = fixed or _auto_tile(model, (h, w), overlap, divisor, memory_budget)
        auto = True
    else:
        tiles = _tile_pair(tile)
        auto = False
        if fixed and tiles != fixed:
            raise InferenceError(
                f"tile={tile!r}: model {model.name!r} takes inputs of fixed size {fixed}; "
                f"use tile={fixed} or tile='auto'"
            )
        for t in tiles:
            if t < divisor:
                raise InferenceError(
                    f"tile={tile!r} is smaller than the model's minimum tile {divisor} (a U-Net "
                    f"pools down by {divisor}); use tile >= {divisor}"
                )
            if t % divisor:
                lo, hi = t // divisor * divisor, _round_up(t, divisor)
                raise InferenceError(
                    f"tile={tile!r} is not a multiple of the model's divisor {divisor}; use "
                    f"{lo if lo else hi} or {hi}"
                )
        if not fixed:  # never tile beyond what the image needs
            tiles = tuple(min(t, _round_up(n, divisor)) for t, n in zip(tiles, (h, w)))
    for t, n in zip(tiles, (h, w)):
        if n > t and t - overlap < divisor:
            raise InferenceError(
                f"overlap={overlap} leaves no stride in tile {t}: tiles must be at least "
                f"overlap + {divisor} pixels (tile > overlap, in steps of the divisor {divisor})"
            )
    if auto:  # a big auto tile must not blow the budget through the batch
        per_image = _bytes_per_pixel(model) * tiles[0] * tiles[1]
        batch_size = max(1, min(batch_size, int(memory_budget // per_image)))
    return _Settings(
        model=model,
        meta=meta,
        tile=tuple(int(t) for t in tiles),
        overlap=overlap,
        batch_size=batch_size,
        spec=spec,
        blend=blend,
        tta=tta,
        pad_mode=pad_mode,
        divisor=divisor,
        k=None,
    )


def _compute_limits(sample, spec: Mapping | None, *, path):
    if spec is None:
        return None
    limits = preprocess.limits_from_spec(sample, spec)
    if not (np.all(np.isfinite(limits.vmin)) and np.all(np.isfinite(limits.vmax))):
        raise InferenceError(
            "normalization limits are not finite: the image has no finite pixel", path=path
        )
    return limits


def _check_overlap(settings: _Settings, hw) -> None:
    """Warn when tiles are stitched with less overlap than the receptive field needs."""
    if all(n <= t for n, t in zip(hw, settings.tile)):
        return  # a single tile: nothing is stitched
    r = max(receptive_field(settings.model))
    if settings.overlap < 2 * r:
        warnings.warn(
            f"overlap={settings.overlap} is below twice the receptive-field half-width of model "
            f"{settings.model.name!r} ({r} px): tile seams may differ from a whole-image call; "
            f"pass overlap>={2 * r} (or overlap='auto')",
            SciconvWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------------
# D4 test-time augmentation


def _run(runner: _Runner, batch: np.ndarray, tta: str | None) -> np.ndarray:
    if tta is None:
        return runner(batch)
    from sciconv.augment import d4_inverse, d4_transform

    acc = None
    for k in range(8):  # batches: axes 1, 2 are H, W
        y = d4_inverse(runner(d4_transform(batch, k, axes=(1, 2))), k, axes=(1, 2))
        acc = y.astype(np.float32, copy=True) if acc is None else acc + y
    return acc / np.float32(8)


# --------------------------------------------------------------------------------------------------
# the numpy core


def _prepare_tile(source: _Source, sy: int, sx: int, s: _Settings, limits):
    """Read, normalize and pad one tile -> (tile (th, tw, C) float32, bad-pixel mask or None)."""
    th, tw = s.tile
    h, w = source.shape[:2]
    iy, zy = _index_map(sy, th, h, s.pad_mode)
    ix, zx = _index_map(sx, tw, w, s.pad_mode)
    y0, y1, x0, x1 = int(iy.min()), int(iy.max()) + 1, int(ix.min()), int(ix.max()) + 1
    raw = source.read(slice(y0, y1), slice(x0, x1))
    if limits is not None:
        raw = preprocess.apply_limits(raw, limits, clip=bool(s.spec.get("clip", False)))
    if iy[0] != y0 or iy[-1] != y1 - 1 or len(iy) != y1 - y0:
        raw = raw[iy - y0]
    if ix[0] != x0 or ix[-1] != x1 - 1 or len(ix) != x1 - x0:
        raw = raw[:, ix - x0]
    bad = ~np.isfinite(raw)
    mask = None
    if bad.any():
        mask = bad.any(axis=-1)
        raw = np.where(bad, np.float32(0), raw)
    if zy is not None or zx is not None:
        raw = np.array(raw, dtype=np.float32, copy=True)
        if zy is not None:
            raw[zy] = 0
        if zx is not None:
            raw[:, zx] = 0
    return raw, mask


def _predict_array(source: _Source, s: _Settings, limits, out: np.ndarray, *, progress: bool):
    """Fill ``out`` (H, W, K) from ``source`` tile by tile."""
    h, w = source.shape[:2]
    th, tw = s.tile
    starts_y = _axis_starts(h, th, s.overlap, s.divisor)
    starts_x = _axis_starts(w, tw, s.overlap, s.divisor)
    plan_y = _axis_plan(h, th, starts_y, s.blend, s.overlap)
    plan_x = _axis_plan(w, tw, starts_x, s.blend, s.overlap)
    jobs = [(i, j) for i in range(len(starts_y)) for j in range(len(starts_x))]
    # full batches and a shorter last one (no zero tiles computed): Keras traces the predict
    # function for the first batch shape and once more, batch-size agnostic, for a second one
    batch_size = min(s.batch_size, len(jobs))
    batches = [jobs[i : i + batch_size] for i in range(0, len(jobs), batch_size)]
    runner = _Runner(s.model)
    c = source.shape[2]

    def prepare(batch_jobs):
        buf = np.empty((len(batch_jobs), th, tw, c), dtype=np.float32)
        masks = []
        for n, (i, j) in enumerate(batch_jobs):
            buf[n], m = _prepare_tile(source, starts_y[i], starts_x[j], s, limits)
            masks.append(m)
        return buf, masks

    bar = keras.utils.Progbar(len(jobs), unit_name="tile") if progress else None
    done = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare, batches[0])
        for b, batch_jobs in enumerate(batches):
            buf, masks = pending.result()
            if b + 1 < len(batches):  # read the next batch while the model runs
                pending = pool.submit(prepare, batches[b + 1])
            pred = _run(runner, buf, s.tta)
            if s.k is None:
                s.k = pred.shape[-1]
            for n, (i, j) in enumerate(batch_jobs):
                oy0, oy1, ty0, ty1, wy = plan_y[i]
                ox0, ox1, tx0, tx1, wx = plan_x[j]
                part = pred[n, ty0:ty1, tx0:tx1]
                region = out[oy0:oy1, ox0:ox1]
                if wy is None:
                    region[...] = part
                else:
                    region += part * (wy[:, None, None] * wx[None, :, None])
                if masks[n] is not None:
                    region[masks[n][ty0:ty1, tx0:tx1]] = np.nan
            done += len(batch_jobs)
            if bar is not None:
                bar.update(done)
    return out


def _output_channels(model) -> int:
    k = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    if k is None:
        raise InferenceError(
            f"model {model.name!r} has output shape {model.output_shape}; tiled prediction needs "
            "a known number of output channels K in (None, H, W, K)"
        )
    return int(k)


def _open_out(out, shape, *, overwrite: bool):
    """Return (array to fill, finalizer) for ``out`` = None, an array, or a ``.npy`` path."""
    if out is None:
        return np.zeros(shape, dtype=np.float32), None
    if isinstance(out, np.ndarray):
        if out.shape != shape or out.dtype != np.float32:
            raise InferenceError(
                f"out must be a float32 array of shape {shape}; got {out.dtype} {out.shape}"
            )
        out[...] = 0
        return out, None
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        if path.suffix != ".npy":
            raise InferenceError(
                "out must name a .npy file (it is written as a numpy memory map)", path=path
            )
        ctx = atomic_output(path, overwrite=overwrite)
        tmp = ctx.__enter__()
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        return arr, (ctx, path)
    raise InferenceError(
        "out must be None, a float32 numpy array or a path ending in .npy; "
        f"got {type(out).__name__}"
    )


# --------------------------------------------------------------------------------------------------
# dask


class _ModelHandle:
    """A picklable reference to a Keras model: ``.keras`` bytes, loaded once per process."""

    _live: ClassVar[weakref.WeakValueDictionary] = weakref.WeakValueDictionary()
    _loaded: ClassVar[dict] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: keras.Model):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            try:
                model.save(path)
            except Exception as err:  # unregistered custom layers, unserializable config
                raise InferenceError(
                    f"model {model.name!r} cannot be saved as .keras to ship it to dask workers "
                    f"({type(err).__name__}: {err}); register its custom layers with "
                    "keras.saving.register_keras_serializable"
                ) from err
            self.payload = path.read_bytes()
        self.key = hashlib.sha256(self.payload).hexdigest()
        _ModelHandle._live[self.key] = model

    def __getstate__(self):
        return {"payload": self.payload, "key": self.key}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def get(self) -> keras.Model:
        model = _ModelHandle._live.get(self.key) or _ModelHandle._loaded.get(self.key)
        if model is not None:
            return model
        with _ModelHandle._lock:
            if self.key not in _ModelHandle._loaded:
                import sciconv.models  # noqa: F401 - registers sciconv layers before loading

                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "model.keras"
                    path.write_bytes(self.payload)
                    _ModelHandle._loaded[self.key] = keras.saving.load_model(
                        path, compile=False, safe_mode=True
                    )
            return _ModelHandle._loaded[self.key]


def _dask_block(block, *, handle, settings: dict, limits, depth_: int, block_info=None):
    """Predict one block of a dask array (with its margins) and trim the margins off."""
    s = _Settings(**settings)
    s.model = handle.get()
    # as in the numpy path: a block smaller than the tile gets a tile of its own size
    s.tile = tuple(min(t, _round_up(n, s.divisor)) for t, n in zip(s.tile, block.shape[:2]))
    source = _Source(block, promote=False, path=None)
    out = np.zeros((*block.shape[:2], s.k), dtype=np.float32)
    _predict_array(source, s, limits, out, progress=False)
    if depth_ == 0:
        return out
    info = block_info[0]  # boundary="none": no margin beyond the image edges
    trim = []
    for axis in (0, 1):
        loc, num = info["chunk-location"][axis], info["num-chunks"][axis]
        lo = depth_ if loc > 0 else 0
        hi = block.shape[axis] - (depth_ if loc < num - 1 else 0)
        trim.append(slice(lo, hi))
    return out[trim[0], trim[1]]


def _predict_dask(image, s: _Settings, *, path):
    import dask.array as da

    if image.ndim == 2:
        image = image[..., None]
    image = image.rechunk({2: -1}).astype(np.float32)
    h, w, _ = (int(v) for v in image.shape)
    k = _output_channels(s.model)
    source = _Source(image, promote=False, path=path)
    limits = _compute_limits(_dask_sample(image, source), s.spec, path=path)
    _check_overlap(s, (h, w))
    depth = _round_up(max(s.overlap, 1), s.divisor) if s.overlap else 0
    if depth and min(min(c) for c in image.chunks[:2]) <= depth:  # blocks must exceed margins
        from dask.array.overlap import ensure_minimum_chunksize

        image = image.rechunk(
            {a: ensure_minimum_chunksize(depth + 1, image.chunks[a]) for a in (0, 1)}
        )
    # one tile size for every block (traced once): the largest block with its margins
    big = [max(c) + 2 * depth for c in image.chunks[:2]]
    tile = tuple(min(t, _round_up(b, s.divisor)) for t, b in zip(s.tile, big))
    settings = {k_: v for k_, v in s.__dict__.items() if k_ not in ("model", "meta")}
    settings.update(tile=tile, k=k)
    handle = _ModelHandle(s.model)
    return da.map_overlap(
        _dask_block,
        image,
        depth={0: depth, 1: depth, 2: 0},
        boundary="none",
        trim=False,
        dtype=np.float32,
        chunks=(image.chunks[0], image.chunks[1], (k,)),
        meta=np.empty((0, 0, 0), dtype=np.float32),
        handle=handle,
        settings=settings,
        limits=limits,
        depth_=depth,
    )


def _dask_sample(image, source: _Source):
    h, w = source.shape[:2]
    if h * w <= _LIMIT_SAMPLES:
        return np.asarray(image.compute())
    step = max(1, math.ceil(math.sqrt(h * w / _LIMIT_SAMPLES)))
    return np.asarray(image[::step, ::step].compute())


# --------------------------------------------------------------------------------------------------
# public API


def predict_tiled(
    model: keras.Model,
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    pad_mode: str = "reflect",
    progress: bool = True,
    out: str | os.PathLike | np.ndarray | None = None,
    overwrite: bool = False,
    memory_budget: int = AUTO_MEMORY_BUDGET,
):
    """Per-pixel prediction on an image of any size, tile by tile.

    Parameters
    ----------
    model : keras.Model
        A model mapping (N, h, w, C) to (N, h, w, K) (a :func:`sciconv.models.segmenter` or any
        fully convolutional Keras model with ``padding="same"``).
    image : ndarray of shape (H, W) or (H, W, C), GridImage, memmap or dask array
        Raw pixels. A :class:`~sciconv.io.GridImage` from ``sciconv.io.read(path, lazy=True)`` and
        a memory map are read tile by tile, never whole. A dask array gives a dask array back
        (built with ``map_overlap``, so it runs unchanged on a ``dask.distributed`` cluster; the
        model travels to the workers as ``.keras`` bytes and is loaded once per worker process).
        H and W must be at least 2.
    tile : int, (int, int) or "auto", optional
        Tile size (multiple of the model's divisor, at least the divisor). ``"auto"`` (default)
        takes the largest tile whose activations fit ``memory_budget`` (estimated from the widest
        layer), at most :data:`AUTO_TILE_MAX`, and the whole image when it fits; tiles are then
        equalized so little is recomputed, and ``batch_size`` is lowered to stay in budget.
    overlap : int or "auto", optional
        Pixels shared by neighbouring tiles (stride = tile - overlap, rounded down to the divisor).
        Default ``"auto"``: twice the measured receptive-field half-width
        (:func:`receptive_field`, measured once per model and cached), the least overlap for
        which stitched tiles match the whole-image call; an explicit smaller overlap warns
        (:class:`~sciconv.errors.SciconvWarning`).
    batch_size : int, optional
        Tiles per model call. Default 8. Every tile has the same size, so the model is traced
        once for full batches and at most once more (batch-size agnostic) for a shorter last one.
    normalize : "model", None or dict, optional
        ``"model"`` (default): the spec the model was trained with
        (``get_metadata(model)["normalization"]``, else
        :data:`sciconv.preprocess.DEFAULT_NORMALIZATION`); a spec dict; or None for raw pixels.
        Limits are computed once over the whole image (a subsample of a lazy or huge one), then
        applied to every tile. Unless None, a model that records an ``input_transform`` (e.g.
        the pretrained nuclei model: RGB -> grey, brightfield flipped; see
        :func:`sciconv.preprocess.apply_input_transform`) gets it applied first.
    blend : {"gaussian", "linear", "none"}, optional
        How overlaps are merged: a Gaussian window (sigma = tile / 8); a linear ramp across the
        middle half of the overlap (weight ~0 in the outer quarter next to the tile edge, where
        the tile's own zero padding corrupts it, 1 beyond the overlap); or ``"none"``: every
        pixel is taken from the one tile whose centre region holds it (exact for
        ``overlap >= 2 * receptive-field half-width``). Weights are normalized by their sum at
        every pixel.
    tta : None or "d4", optional
        ``"d4"`` averages the predictions of the eight flips/rotations of each tile, each undone
        before averaging (8 model calls per batch).
    pad_mode : {"reflect", "symmetric", "edge", "constant"}, optional
        How an image smaller than a tile is padded up to it (``"constant"`` pads with 0 after
        normalization, as the model pads). Tiles never extend beyond larger images. Default
        ``"reflect"``.
    progress : bool, optional
        Show a progress bar over tiles (``keras.utils.Progbar``). Default True. Not for dask input
        (use ``dask.diagnostics.ProgressBar`` or the distributed dashboard there).
    out : None, ndarray or path, optional
        Where to write: a new array (default), a float32 (H, W, K) array filled in place, or a
        ``.npy`` path written as a memory map (atomically; ``overwrite=True`` to replace).
    overwrite : bool, optional
        Replace an existing ``out`` file.
    memory_budget : int, optional
        Bytes of activations ``tile="auto"`` plans for. Default :data:`AUTO_MEMORY_BUDGET` (1 GiB).

    Returns
    -------
    ndarray (or np.memmap, or dask array) of shape (H, W, K), float32
        Same H and W as ``image``. NaN where any input channel is NaN or infinite.

    Raises
    ------
    InferenceError
        Wrong channel count for the model, a tile smaller than the model's minimum or not a
        multiple of its divisor, an overlap that leaves no stride, an image smaller than 2 x 2, an
        image with no finite pixel to normalize, a model without a same-size per-pixel output.

    Notes
    -----
    Dask: every block is extended by ``overlap`` pixels (rounded up to the divisor) on each side
    that has a neighbour (``map_overlap(boundary="none")``), tiled as a numpy image, and trimmed.
    The result equals the numpy one wherever both reproduce the whole-image call
    (``blend="none"``, ``overlap >= 2 * receptive-field half-width``); with blending, the seams fall
    at other places and the two differ by the blending error. Normalization limits come from the
    whole dask array (one subsampled pass) before the graph is built.

    Small images: an image smaller than the tile is padded (``pad_mode``) symmetrically up to the
    tile (rounded up to the divisor) and the padding cropped off; reflection of an axis shorter than
    the padding repeats the reflection. 1-pixel (and 1-row/1-column) images raise
    :class:`~sciconv.errors.InferenceError`: they have no 2-D neighbourhood.

    Examples
    --------
    >>> import numpy as np, keras
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    >>> image = np.random.default_rng(0).normal(size=(50, 70)).astype("float32")
    >>> whole = np.asarray(model(image[None, ..., None]))[0]
    >>> tiled = predict_tiled(model, image, tile=32, overlap=8, blend="none", normalize=None,
    ...                       progress=False)
    >>> bool(np.allclose(tiled, whole, atol=1e-5))
    True
    """
    arr, path = _validate_image(image)
    if normalize is not None:
        arr = _input_transform(model, arr, path)
    shape = tuple(int(v) for v in arr.shape)
    shape3 = shape if len(shape) == 3 else (*shape, 1)
    s = _settings(
        model,
        shape3,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        normalize=normalize,
        blend=blend,
        tta=tta,
        pad_mode=pad_mode,
        memory_budget=memory_budget,
        path=path,
    )
    if _is_dask(arr):
        if out is not None:
            raise InferenceError(
                "out= is not supported for dask input; store the returned dask array yourself "
                "(e.g. result.to_zarr(path) or dask.array.store)"
            )
        return _predict_dask(arr, s, path=path)
    source = _Source(arr, promote=len(shape) == 2, path=path)
    h, w, _ = source.shape
    limits = _compute_limits(source.limits_sample(), s.spec, path=path)
    _check_overlap(s, (h, w))
    k = _output_channels(s.model)
    target, finalize = _open_out(out, (h, w, k), overwrite=overwrite)
    try:
        _predict_array(source, s, limits, target, progress=progress)
    except BaseException:
        if finalize is not None:
            del target
            finalize[0].__exit__(*sys.exc_info())
        raise
    if finalize is None:
        return target
    ctx, final_path = finalize
    target.flush()
    del target
    ctx.__exit__(None, None, None)
    return np.load(final_path, mmap_mode="r+")


def _postprocess_kwargs(meta: Mapping, overrides: Mapping) -> dict:
    kwargs = dict(meta.get("postprocess") or {})
    kwargs.update(overrides)
    return kwargs


def predict_instances(
    model: keras.Model,
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    scale: float | None = None,
    progress: bool = True,
    return_prob: bool = False,
    **overrides,
):
    """Instance labels for an image of any size: :func:`predict_tiled` + postprocess.instances.

    The post-processing parameters are the model's recorded ones
    (``get_metadata(model)["postprocess"]``), updated by ``overrides``.

    Objects much larger or smaller than those the model was trained on segment badly (the
    pretrained nuclei model scores AP@0.5 0.60 on six real fluorescence images enlarged 3x, 0.89
    with ``scale=1/3``). ``scale`` resamples the image first, as StarDist's
    ``scale`` and Cellpose's ``diameter`` do: the model and the post-processing run on the
    resampled image and the labels are resampled back (nearest neighbour) to the input's height
    and width.

    Parameters
    ----------
    model : keras.Model
        A segmenter with 2 (background/foreground) or 3 (background/interior/boundary) outputs.
    image : ndarray, GridImage, memmap or dask array
        Raw pixels, as for :func:`predict_tiled` (a dask result is computed: labels need the
        whole probability map).
    tile, overlap, batch_size, normalize, blend, tta, progress
        Passed to :func:`predict_tiled`.
    scale : float or None
        ``None`` (default): no resampling. A number: resample by this factor first (e.g. 0.5
        for objects twice the size of the training ones; bilinear, anti-aliased when shrinking;
        a lazy or dask image is read whole). For the pretrained nuclei model,
        ``sciconv.models.pretrained.pretrained_info("nuclei")["object_diameter_px"]`` gives the
        training sizes (median 18 px; 10-47 px between the 10th and 90th percentile of images),
        so ``scale = 18 / (your nuclei's diameter in pixels)``.
    return_prob : bool
        Also return the class probabilities ``(H, W, K)`` float32 that the labels came from (with
        ``scale``: resampled back to the input's size, bilinear).
    **overrides
        Keyword arguments of :func:`sciconv.postprocess.instances` (``threshold``, ``min_size``,
        ``method``, ``min_distance``, ...) that replace the model's recorded ones.

    Returns
    -------
    ndarray of int32, shape (H, W)
        0 = background, objects numbered 1..N; ``(labels, prob)`` with ``return_prob=True``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> inputs = keras.Input((None, None, 1))
    >>> logits = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(
    ...     [[[[-1.0, 1.0]]]]))(inputs)
    >>> model = keras.Model(inputs, keras.layers.Softmax()(logits))
    >>> image = np.zeros((32, 32), "float32"); image[4:12, 4:12] = 5; image[20:28, 18:30] = 5
    >>> labels = predict_instances(model, image, normalize=None, progress=False)
    >>> labels.dtype, int(labels.max())
    (dtype('int32'), 2)
    """
    from sciconv import postprocess

    meta = get_metadata(model)
    kwargs = _postprocess_kwargs(meta, overrides)

    def segment(img) -> tuple[np.ndarray, np.ndarray]:
        prob = predict_tiled(
            model,
            img,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            normalize=normalize,
            blend=blend,
            tta=tta,
            progress=progress,
        )
        if _is_dask(prob):
            prob = prob.compute()
        return postprocess.instances(prob, **kwargs), prob

    def result(labels, prob):
        return (labels, prob) if return_prob else labels

    if scale is None:
        return result(*segment(image))
    arr, path = _validate_image(image)
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        scale = float("nan")
    if not (math.isfinite(scale) and scale > 0):
        raise InferenceError(f"scale must be a positive number or None; got {scale!r}", path=path)
    if scale == 1.0:
        return result(*segment(image))
    hw = (int(arr.shape[0]), int(arr.shape[1]))
    labels, prob = segment(_rescale_image(arr, scale, path=path))
    if return_prob:
        from skimage.transform import resize

        prob = resize(prob, (*hw, prob.shape[-1]), order=1, preserve_range=True)
        prob = prob.astype(np.float32)
    return result(_resize_labels(labels, hw), prob)


def _rescale_image(arr, scale: float, *, path) -> np.ndarray:
    from skimage.transform import rescale

    data = np.asarray(arr.compute() if _is_dask(arr) else arr, dtype=np.float32)
    out_hw = [round(n * scale) for n in data.shape[:2]]
    if min(out_hw) < 2 or out_hw[0] * out_hw[1] > 2**31:
        raise InferenceError(
            f"scale {scale} turns an image of {data.shape[:2]} pixels into {out_hw}", path=path
        )
    return rescale(
        data,
        scale,
        order=1,
        mode="reflect",
        preserve_range=True,
        anti_aliasing=scale < 1,
        channel_axis=-1 if data.ndim == 3 else None,
    ).astype(np.float32)


def _resize_labels(labels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from skimage.segmentation import relabel_sequential
    from skimage.transform import resize

    out = resize(labels, hw, order=0, preserve_range=True, anti_aliasing=False)
    return relabel_sequential(out.astype(np.int32))[0].astype(np.int32)


def predict_files(
    model: keras.Model,
    paths: Iterable[str | os.PathLike],
    *,
    batch_size: int = 32,
    normalize: str | Mapping | None = "model",
    image_size: int | tuple[int, int] | None = None,
    size_policy: str | None = None,
    progress: bool = True,
):
    """Classify many image files (cutouts), streamed in batches, into a table.

    Each file is prepared exactly as :func:`sciconv.datasets.from_folder` prepares validation
    images: read, normalized on its own (per image, the model's recorded spec by default), NaN set
    to 0, then fitted to the model's image size by the training ``size_policy`` (by default a
    centre crop / zero pad, never a resample). Files are predicted ``batch_size`` at a time, so
    memory holds one batch.

    Parameters
    ----------
    model : keras.Model
        A classifier (or multilabel/regression model) taking (N, h, w, C).
    paths : iterable of path
        Image files (FITS, TIFF, PNG, JPEG).
    batch_size : int, optional
        Files per model call. Default 32.
    normalize : "model", None or dict, optional
        As for :func:`predict_tiled`, applied per image.
    image_size : int or (int, int), optional
        Size the images are fitted to; default: the ``image_size`` recorded by
        :func:`sciconv.training.fit`, else the model's input size (required when the model takes
        any size and recorded none).
    size_policy : {"crop", "pad", "resize"}, optional
        How an image of another size is fitted, as in :func:`sciconv.datasets.from_folder`;
        default: the ``size_policy`` recorded by :func:`sciconv.training.fit`, else ``"crop"``.
    progress : bool, optional
        A progress bar over files. Default True.

    Returns
    -------
    astropy.table.Table
        Columns ``path`` (str), ``class`` (the class name from the model's ``class_names``
        metadata, else the index as text), ``class_index`` (int, the arg-max) and
        ``probabilities`` (float32, shape (N, K)). ``meta["class_names"]`` lists the names.

    Raises
    ------
    InferenceError
        No paths, no image size to fit to, an unknown ``size_policy``, or a channel count the
        model does not take.
    sciconv.errors.InvalidImageError
        A file that cannot be read (the message names it).

    Examples
    --------
    >>> import pathlib  # doctest: +SKIP
    >>> paths = sorted(pathlib.Path("cutouts").glob("*.fits"))  # doctest: +SKIP
    >>> table = predict_files(model, paths)  # doctest: +SKIP
    >>> table["class"][0]  # doctest: +SKIP
    'spiral'
    """
    from astropy.table import Table

    from sciconv import datasets

    model = _validate_model(model)
    meta = get_metadata(model)
    batch_size = check_int(batch_size, name="batch_size", minimum=1, error=InferenceError)
    paths = [Path(p) for p in paths]
    if not paths:
        raise InferenceError("paths is empty: nothing to predict")
    spec = _resolve_spec(model, normalize, meta)
    size = _model_fixed_hw(model)
    if image_size is None and meta.get("image_size") is not None:
        image_size = tuple(meta["image_size"])
    if image_size is not None:
        size = _tile_pair(image_size, name="image_size")
    if size is None:
        raise InferenceError(
            f"model {model.name!r} takes images of any size; pass image_size=(h, w) to fit to"
        )
    if size_policy is None:
        size_policy = meta.get("size_policy") or "crop"
    policy = look_up_option(
        size_policy, datasets._SIZE_POLICIES, name="size_policy", error=InferenceError
    )
    # the validation-image preparation of datasets.from_folder, reused as is
    prep = datasets._Prep(spec, size, policy)
    channels = _model_channels(model)
    runner = _ClassifierRunner(model)
    names = meta.get("class_names")
    bar = keras.utils.Progbar(len(paths), unit_name="file") if progress else None
    probs = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        batch = np.stack([_load_cutout(datasets, prep, p, channels) for p in chunk])
        probs.append(runner(batch))
        if bar is not None:
            bar.update(start + len(chunk))
    prob = np.concatenate(probs).astype(np.float32)
    if prob.ndim == 1:
        prob = prob[:, None]
    index = np.argmax(prob, axis=1) if prob.shape[1] > 1 else (prob[:, 0] > 0.5).astype(int)
    if not names or len(names) < int(index.max()) + 1:
        names = [str(i) for i in range(max(prob.shape[1], 2))]
    table = Table()
    table["path"] = [str(p) for p in paths]
    table["class"] = [str(names[i]) for i in index]
    table["class_index"] = index.astype(np.int64)
    table["probabilities"] = prob
    table.meta["class_names"] = list(names)
    table.meta["model"] = model.name
    return table


class _ClassifierRunner:
    def __init__(self, model):
        self.model = model

    def __call__(self, batch):
        y = self.model.predict_on_batch(batch)
        if isinstance(y, (list, tuple, dict)):
            raise InferenceError(
                f"model {self.model.name!r} returns {len(y)} outputs; predict_files needs one"
            )
        y = np.asarray(y, dtype=np.float32)
        return y.reshape(len(batch), -1)


def _load_cutout(datasets, prep, path: Path, channels) -> np.ndarray:
    """One file as ``datasets.from_folder`` prepares a validation image: read, normalize, fit."""
    x = datasets._read_pixels(str(path))
    if channels is not None and x.shape[-1] != channels:
        raise InferenceError(
            f"image has {x.shape[-1]} channel(s) but the model expects {channels}", path=path
        )
    x = prep.fit(prep.normalize(x))
    return np.ascontiguousarray(x, dtype=np.float32)
