"""Normalization limits: measure them (:func:`compute_limits`), apply them, invert them.

The statistics and the stretch of every method live here; :mod:`sciconv.preprocess` re-exports
the public names and documents the methods.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from sciconv._validation import check_int, look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io import as_array
from sciconv.io._common import warn_caller, warn_if_channels_first
from sciconv.preprocess._zscale import ZSCALE_PIXELS, zscale_limits, zscale_values

#: Normalization methods (see :func:`sciconv.preprocess.compute_limits`).
METHODS = ("percentile", "minmax", "zscale", "asinh", "zscore")
FILL_METHODS = ("zero", "median", "nearest", "reflect")
#: How a network sees bad pixels (NaN, +/-inf) in training and at inference: mirrored across the
#: edge of the good data, as image borders are padded (see :func:`fill_nan`). The 82 fluorescence
#: validation nuclei images set in a 96-px NaN frame (``benchmarks/bad_pixel_fill.py``): AP@0.5
#: 0.867 reflected, 0.819 nearest, 0.773 with the zeros used before (0.873 without the frame).
BAD_PIXEL_FILL = "reflect"
_F32_MAX = float(np.finfo(np.float32).max)
_F32_EPS = float(np.finfo(np.float32).eps)
#: float32's smallest normal number: a span below it is flat (the network computes in float32)
_F32_TINY = float(np.finfo(np.float32).tiny)
#: Limits whose span is below this are applied in float64 (float32 halves would be subnormal)
_SMALL_SPAN = 1e-30
#: The most pixels of a channel the percentiles and the mean/std are measured on when
#: ``max_samples`` is not given (zscale's: :data:`ZSCALE_PIXELS`); a lazy image is read on a grid
#: of about this many
_MAX_SAMPLES = 1_000_000
_ASINH_A = 0.1


@dataclass(frozen=True, eq=False)
class Limits:
    """Per-channel limits measured by :func:`compute_limits`.

    Attributes
    ----------
    method : str
        The method that measured them (decides the stretch :func:`apply_limits` applies).
    vmin, vmax : ndarray of shape (C,), or (N, C) for a batch
        Values mapped to 0 and 1 (for ``"zscore"``: mean and mean + std); NaN for a channel
        without any finite pixel.
    asinh_a : float
        Softening parameter of the asinh stretch (``"asinh"`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import compute_limits
    >>> lim = compute_limits(np.array([[0.0, 10.0]]), method="minmax")
    >>> lim.vmin.tolist(), lim.vmax.tolist()
    ([0.0], [10.0])
    """

    method: str
    vmin: np.ndarray
    vmax: np.ndarray
    asinh_a: float = _ASINH_A

    @property
    def span(self) -> np.ndarray:
        """``vmax - vmin`` (the value mapped to a unit step)."""
        return self.vmax - self.vmin


# --------------------------------------------------------------------------------------------------
# validation


def _validate_method(method) -> str:
    return look_up_option(method, METHODS, name="method")


def validate_percentiles(low, high) -> tuple[float, float]:
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ConfigError(f"{name} must be a finite number (a percentile, 0-100); got {v!r}")
    low, high = float(low), float(high)
    if not 0.0 <= low < high <= 100.0:
        raise ConfigError(
            f"percentiles must satisfy 0 <= low < high <= 100; got low={low}, high={high}"
        )
    if high <= 1.0:  # fractions given for percentiles: the stretch tops out at the 1st one
        warn_caller(
            f"percentiles are 0-100, not fractions: low={low:g}, high={high:g} stretch the "
            f"darkest {high:g} % of the pixels to [0, 1] and put all the others above 1; "
            f"meant as fractions, pass low={100 * low:g}, high={100 * high:g}",
            package="sciconv",
        )
    return low, high


def _unwrap(x):
    """The pixels of any image kind, by :func:`sciconv.io.as_array`: a GridImage's or NDData's
    ``.data``, a masked array's data with its masked pixels NaN (bad pixels), a DataFrame's
    values; else (anything with ``.data`` and ``.wcs``) its ``.data``."""
    x = as_array(x)
    if not isinstance(x, np.ndarray) and hasattr(x, "data") and hasattr(x, "wcs"):
        return x.data
    return x


def validate_image(x, *, name: str = "x") -> np.ndarray:
    """Return ``x`` as a real ndarray of ndim 2, 3 or 4 with at least one pixel."""
    x = _unwrap(x)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InvalidImageError(f"{name} cannot be converted to an array: {exc}") from exc
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.number)) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidImageError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim not in (2, 3, 4):
        raise InvalidImageError(
            f"{name} must be an image (H, W), (H, W, C) or a batch (N, H, W, C); "
            f"got an array of shape {arr.shape}"
        )
    if arr.size == 0:
        raise InvalidImageError(f"{name} has no pixels (shape {arr.shape})")
    return arr


def _compute_dtype(arr) -> np.dtype:
    dt = np.dtype(arr.dtype)
    if dt in (np.float64, np.int64, np.uint64, np.longdouble):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


# --------------------------------------------------------------------------------------------------
# statistics


def finite_values(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values).ravel()
    if values.dtype.kind == "f":
        return values[np.isfinite(values)]
    return values


def _sample_channel(chan: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Finite values of one channel, a seeded random subsample (with replacement) when huge."""
    flat = chan.reshape(-1)
    if flat.size > max_samples:
        idx = rng.integers(0, flat.size, size=max_samples)
        sample = finite_values(flat[idx])
        if sample.size:
            return sample
    return finite_values(flat)


def _degenerate(vmin: float, vmax: float) -> bool:
    """Whether ``vmin..vmax`` is flat: a span at float32's resolution of the values (relative,
    so an image in W m-2 Hz-1, spans of 1e-32, is not flat) or below float32's smallest normal
    number."""
    span = vmax - vmin
    if not (math.isfinite(vmin) and math.isfinite(vmax) and math.isfinite(span)):
        # an overflowed span (finite limits far apart) is not degenerate
        return not (math.isfinite(vmin) and math.isfinite(vmax))
    scale = max(abs(vmin), abs(vmax))
    return span <= 4.0 * _F32_EPS * scale or span < _F32_TINY


def _limits_of(sample: np.ndarray, method: str, low: float, high: float, full=None):
    """(vmin, vmax) of finite ``sample`` for ``method``; ``full`` gives exact min/max when known."""
    if sample.size == 0:
        return math.nan, math.nan
    # astropy is imported where an interval or stretch is computed, not with the module: the GPU
    # training path (tools/train_pretrained_gpu.sh) imports sciconv.preprocess without astropy
    from astropy.visualization import AsymmetricPercentileInterval, MinMaxInterval

    with np.errstate(all="ignore"):
        if method == "zscale":  # zscale_values' pixels, sorted in their own dtype
            vmin, vmax = zscale_limits(sample, bounds=full)
        elif method in ("percentile", "asinh"):
            sample = sample.astype(np.float64, copy=False)
            vmin, vmax = AsymmetricPercentileInterval(low, high).get_limits(sample)
        elif method == "minmax":
            sample = sample.astype(np.float64, copy=False)
            vmin, vmax = full if full is not None else MinMaxInterval().get_limits(sample)
        else:  # zscore: scale first so sums cannot overflow float64
            sample = sample.astype(np.float64, copy=False)
            peak = float(np.max(np.abs(sample)))
            peak = peak if peak > 0 and math.isfinite(peak) else 1.0
            scaled = sample / peak
            mean, std = float(np.mean(scaled)), float(np.std(scaled))
            if not (math.isfinite(mean) and math.isfinite(std)) or std <= 0:
                mean, std = (mean if math.isfinite(mean) else 0.0), 0.0
            vmin, vmax = mean * peak, (mean + std) * peak
            return vmin, vmax
    vmin, vmax = float(vmin), float(vmax)
    if _degenerate(vmin, vmax) and method != "minmax":
        lo, hi = full if full is not None else (float(np.min(sample)), float(np.max(sample)))
        vmin, vmax = float(lo), float(hi)
    return vmin, vmax


def _is_lazy(x) -> bool:
    lazy = not isinstance(x, (np.ndarray, np.generic))
    return lazy and hasattr(x, "shape") and hasattr(x, "__getitem__")


def _lazy_sample(x, max_samples: int) -> np.ndarray:
    """A strided (H, W, C) subsample of a lazy array (dask, LazyImage, memmap) read by slicing."""
    shape = tuple(int(s) for s in x.shape)
    if len(shape) not in (2, 3):
        raise InvalidImageError(
            f"a lazy image must have shape (H, W) or (H, W, C); got shape {shape}"
        )
    h, w = shape[:2]
    step = max(1, math.ceil(math.sqrt(h * w / max_samples)))
    try:
        sub = np.asarray(x[::step, ::step])
    except (TypeError, ValueError, IndexError, NotImplementedError):
        # readers that only take contiguous slices: read every step-th row, then stride columns
        rows = [np.asarray(x[r : r + 1])[:, ::step] for r in range(0, h, step)]
        sub = np.concatenate(rows, axis=0)
    return sub


def _image_limits(img: np.ndarray, method, low, high, per_channel, max_samples, rng):
    """Limits for one (H, W, C) image -> arrays of shape (C,)."""
    c = img.shape[-1]
    chans = [img[..., k] for k in range(c)] if per_channel else [img]
    vmins, vmaxs = [], []
    for chan in chans:
        if method == "zscale":  # every finite pixel up to max_samples (no draw to move)
            sample = zscale_values(chan, max_samples)
        elif chan.size <= max_samples:
            sample = finite_values(chan)
        else:
            sample = _sample_channel(chan, max_samples, rng)
        full = None
        # exact min/max from every pixel: cheap, and a subsample misses the peaks
        if method != "zscore":
            if chan.dtype.kind == "f":
                # fmin/fmax skip NaN without the all-NaN RuntimeWarning, so no process-wide
                # warnings filter is touched here (datasets decode files in parallel threads)
                lo, hi = (
                    float(np.fmin.reduce(chan, axis=None)),
                    float(np.fmax.reduce(chan, axis=None)),
                )
                if not (math.isfinite(lo) and math.isfinite(hi)):  # +/-inf present or all NaN
                    f = finite_values(chan)
                    lo, hi = (float(f.min()), float(f.max())) if f.size else (math.nan, math.nan)
            else:
                lo, hi = float(chan.min()), float(chan.max())
            full = (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None
        vmin, vmax = _limits_of(sample, method, low, high, full)
        vmins.append(vmin)
        vmaxs.append(vmax)
    if not per_channel:
        vmins, vmaxs = vmins * c, vmaxs * c
    return np.asarray(vmins, dtype=np.float64), np.asarray(vmaxs, dtype=np.float64)


def compute_limits(
    x,
    *,
    method: str = "percentile",
    low: float = 1.0,
    high: float = 99.8,
    per_channel: bool = True,
    max_samples: int | None = None,
    seed: int = 0,
    asinh_a: float = _ASINH_A,
) -> Limits:
    """Measure normalization limits over a whole image, ignoring non-finite pixels.

    Parameters
    ----------
    x : array-like of shape (H, W), (H, W, C) or (N, H, W, C), or a lazy (H, W[, C]) array
        Raw pixels. A lazy array (dask array, :class:`sciconv.io.LazyImage`, anything with
        ``.shape`` and slicing) is read on a strided grid of about ``max_samples`` pixels
        (default 1,000,000), never whole.
    method : {"percentile", "minmax", "zscale", "asinh", "zscore"}, optional
        See the module docstring. Default is ``"percentile"``.
    low, high : float, optional
        Percentiles mapped to 0 and 1 by ``"percentile"`` and ``"asinh"``. Defaults 1.0 and 99.8.
    per_channel : bool, optional
        Separate limits per channel (default) or one set over all channels.
    max_samples : int, optional
        The most pixels of a channel the statistics are measured on. The percentiles (also of
        ``"asinh"``) and the mean/std of ``"zscore"`` use every finite pixel of a channel of up
        to 1,000,000 pixels by default, and a seeded draw (with replacement) of that many from a
        larger one. ``"zscale"`` measures every finite pixel of a channel with up to
        1,000,000 by default (:data:`~sciconv.preprocess._zscale.ZSCALE_PIXELS`), and that
        many places of a larger one's finite area, fixed by its shape
        (:func:`~sciconv.preprocess._zscale.zscale_values`): bad pixels (a NaN frame, a NaN row)
        leave zscale limits as they are. Its limits are astropy's ``ZScaleInterval`` algorithm
        with the clamp of astropy's default 1000-pixel sample in expectation: the line is fitted
        to, and clamped to, the values of rank 1/1001 to 1000/1001
        (:func:`~sciconv.preprocess._zscale.zscale_limits`), so one dead or hot pixel does not
        set vmin or vmax (as the least or greatest of every pixel would) and a crop of a sky
        gets the whole image's vmin; it is not astropy on every pixel. About 0.1 s a channel at
        1000 x 1000 and above. Min/max (the ``"minmax"`` limits, the fallback of collapsed
        limits) use every pixel of an in-memory array. Default None: those defaults.
    seed : int, optional
        Seed of the percentile and mean/std subsample (zscale's is fixed by the image).
        Default 0.
    asinh_a : float, optional
        Softening of the asinh stretch (astropy's ``a``). Default 0.1.

    Returns
    -------
    Limits
        ``vmin``/``vmax`` of shape (C,) for one image, (N, C) for a batch (limits per image).

    Raises
    ------
    ConfigError
        Unknown method or invalid percentiles.
    InvalidImageError
        ``x`` is not a 2-, 3- or 4-D real array with pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import compute_limits
    >>> lim = compute_limits(np.arange(101.0).reshape(1, 101), low=1, high=99)
    >>> lim.vmin.round(6).tolist(), lim.vmax.round(6).tolist()
    ([1.0], [99.0])
    """
    method = _validate_method(method)
    low, high = validate_percentiles(low, high)
    if max_samples is not None and (
        isinstance(max_samples, bool)
        or not isinstance(max_samples, numbers.Integral)
        or max_samples < 1
    ):
        raise ConfigError(f"max_samples must be a positive int (or None); got {max_samples!r}")
    if not (isinstance(asinh_a, numbers.Real) and 0 < float(asinh_a) < math.inf):
        raise ConfigError(f"asinh_a must be a positive number; got {asinh_a!r}")
    if seed is not None and not isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        seed = check_int(seed, name="seed", minimum=0)
    x = _unwrap(x)
    if _is_lazy(x):
        grid = _MAX_SAMPLES if max_samples is None else max_samples
        arr = validate_image(_lazy_sample(x, grid), name="x (sampled lazy array)")
    else:
        arr = validate_image(x)
    if max_samples is None:
        max_samples = ZSCALE_PIXELS if method == "zscale" else _MAX_SAMPLES
    rng = np.random.default_rng(seed)
    if arr.ndim == 2:
        arr = arr[..., np.newaxis]
    if arr.ndim == 3:
        vmin, vmax = _image_limits(arr, method, low, high, per_channel, max_samples, rng)
    else:
        pairs = [
            _image_limits(img, method, low, high, per_channel, max_samples, rng) for img in arr
        ]
        vmin = np.stack([p[0] for p in pairs])
        vmax = np.stack([p[1] for p in pairs])
    return Limits(method=method, vmin=vmin, vmax=vmax, asinh_a=float(asinh_a))


# --------------------------------------------------------------------------------------------------
# applying


def _effective(limits: Limits, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(vmin / 2, span / 2) in ``dt``, with the degenerate-span fallback (span 1) applied.

    Halves are used so ``x / 2 - vmin / 2`` never overflows; they are computed in the same precision
    as the pixels, so a pixel equal to ``vmax`` maps to exactly 1.
    """
    vmin = np.asarray(limits.vmin, dtype=np.float64)
    vmax = np.asarray(limits.vmax, dtype=np.float64)
    vmin = np.where(np.isfinite(vmin), vmin, 0.0)
    vmax = np.where(np.isfinite(vmax), vmax, vmin + 1.0)
    pairs = zip(vmin.ravel().tolist(), vmax.ravel().tolist())
    bad = np.array([_degenerate(a, b) for a, b in pairs], dtype=bool)
    bad = bad.reshape(vmin.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        half_vmin = vmin.astype(dt) * dt.type(0.5)
        half_span = vmax.astype(dt) * dt.type(0.5) - half_vmin
    bad |= ~(np.isfinite(half_span) & (half_span > 0))
    half_span = np.where(bad, dt.type(0.5), half_span).astype(dt)
    return half_vmin, half_span


def _small_span(limits: Limits) -> bool:
    """Whether a finite, nonzero span of ``limits`` is below :data:`_SMALL_SPAN`."""
    with np.errstate(over="ignore", invalid="ignore"):
        span = np.abs(np.asarray(limits.vmax, np.float64) - np.asarray(limits.vmin, np.float64))
    return bool(np.any(np.isfinite(span) & (span > 0) & (span < _SMALL_SPAN)))


def _broadcast_limits(limits: Limits, work: np.ndarray, dt: np.dtype, *, shape, name: str):
    """``_effective`` limits shaped to broadcast against ``work`` ((H, W, C) or (N, H, W, C)).

    Raises :class:`~sciconv.errors.ConfigError` when the channel count or the batch size do not
    match.
    """
    half_vmin, half_span = _effective(limits, dt)
    c = work.shape[-1]
    if half_vmin.shape[-1] not in (1, c):
        raise ConfigError(
            f"limits have {half_vmin.shape[-1]} channel(s) but {name} has {c} "
            f"({name} shape {shape})"
        )
    if half_vmin.ndim == 2:
        if work.ndim != 4 or half_vmin.shape[0] != work.shape[0]:
            raise ConfigError(
                f"batch limits of shape {half_vmin.shape} need a batch {name} of "
                f"{half_vmin.shape[0]} images; got {name} of shape {shape}"
            )
        half_vmin = half_vmin[:, np.newaxis, np.newaxis, :]
        half_span = half_span[:, np.newaxis, np.newaxis, :]
    return half_vmin, half_span


def apply_limits(x, limits: Limits, *, clip: bool = False) -> np.ndarray:
    """Map pixels with precomputed limits and apply the method's stretch.

    Parameters
    ----------
    x : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
        Raw pixels, the same layout the limits were measured on (a batch needs (N, C) limits, or
        (C,) limits shared by every image).
    limits : Limits
        From :func:`compute_limits` (or :func:`limits_from_spec`).
    clip : bool, optional
        Clip the result to [0, 1] (not for ``"zscore"``, whose output is unbounded by design:
        there it clips nothing). Default False.

    Returns
    -------
    ndarray of float32, same shape as ``x``
        Non-finite input pixels come out NaN; finite pixels always give finite values.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import Limits, apply_limits
    >>> lim = Limits("minmax", vmin=np.array([10.0]), vmax=np.array([20.0]))
    >>> apply_limits(np.array([[10.0, 15.0, np.nan]]), lim).tolist()
    [[0.0, 0.5, nan]]
    """
    if not isinstance(limits, Limits):
        raise ConfigError(
            f"limits must be a Limits from compute_limits; got {type(limits).__name__}"
        )
    arr = validate_image(x)
    shape = arr.shape
    work = arr[..., np.newaxis] if arr.ndim == 2 else arr
    dt = _compute_dtype(arr)
    if dt != np.float64 and _small_span(limits):  # float32 halves of 1e-38 lose their digits
        dt = np.dtype(np.float64)
    half_vmin, half_span = _broadcast_limits(limits, work, dt, shape=shape, name="x")
    out = np.array(work, dtype=dt, copy=True)
    bad = ~np.isfinite(out)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # (x - vmin) / span = (x/2 - vmin/2) / (span/2): no intermediate overflow, inf at worst
        out *= dt.type(0.5)
        out -= half_vmin
        out /= half_span
    np.clip(out, -_F32_MAX, _F32_MAX, out=out)
    if limits.method == "asinh":
        from astropy.visualization import AsinhStretch

        a = limits.asinh_a
        np.clip(out, -1e37 * min(a, 1.0), 1e37 * min(a, 1.0), out=out)
        out = AsinhStretch(a=a)(out, clip=False, out=out)
    if clip and limits.method != "zscore":
        np.clip(out, 0.0, 1.0, out=out)
    out[bad] = np.nan
    out = out.astype(np.float32, copy=False)
    return out.reshape(shape)


def invert_limits(y, limits: Limits) -> np.ndarray:
    """Undo :func:`apply_limits` (without clipping): normalized values back to raw pixel values.

    Parameters
    ----------
    y : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
        Normalized values, in the layout :func:`apply_limits` accepts.
    limits : Limits
        The limits they were normalized with (:func:`compute_limits`).

    Returns
    -------
    ndarray of float32, same shape as ``y``

    Raises
    ------
    ConfigError
        ``limits`` is not a :class:`Limits`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import apply_limits, compute_limits, invert_limits
    >>> x = np.array([[1.0, 5.0, 30.0]])
    >>> lim = compute_limits(x, method="asinh", low=0, high=100)
    >>> np.allclose(invert_limits(apply_limits(x, lim), lim), x, rtol=1e-5)
    True
    """
    if not isinstance(limits, Limits):
        raise ConfigError(
            f"limits must be a Limits from compute_limits; got {type(limits).__name__}"
        )
    arr = validate_image(y, name="y")
    shape = arr.shape
    work = arr[..., np.newaxis] if arr.ndim == 2 else arr
    half_vmin, half_span = _broadcast_limits(
        limits, work, np.dtype(np.float64), shape=shape, name="y"
    )
    out = np.array(work, dtype=np.float64, copy=True)
    if limits.method == "asinh":
        from astropy.visualization import AsinhStretch

        out = AsinhStretch(a=limits.asinh_a).inverse(out, clip=False)
    out = (out * half_span + half_vmin) * 2.0
    return out.astype(np.float32).reshape(shape)


# --------------------------------------------------------------------------------------------------
# NaN filling


def _fill_sources(bad: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the good pixel each pixel takes (``"nearest"``/``"reflect"``).

    ``"reflect"`` mirrors a bad pixel ``p`` through its nearest good pixel ``q`` to ``2q - p``
    (for a rectangle of good pixels exactly ``numpy.pad(mode="reflect")``); where that point is
    outside the array or bad too, the nearest good pixel ``q`` itself.
    """
    from scipy import ndimage

    qy, qx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    if method == "nearest":
        return qy, qx
    py, px = np.indices(bad.shape, dtype=qy.dtype)
    ry, rx = 2 * qy - py, 2 * qx - px
    inside = (ry >= 0) & (ry < bad.shape[0]) & (rx >= 0) & (rx < bad.shape[1])
    ry, rx = np.where(inside, ry, qy), np.where(inside, rx, qx)
    good = ~bad[ry, rx]
    return np.where(good, ry, qy), np.where(good, rx, qx)


def _fill_image(img: np.ndarray, method: str) -> None:
    """Fill non-finite pixels of one (H, W, C) float image in place."""
    sources = None  # (bad mask, indices): channels with the same bad pixels share one transform
    for k in range(img.shape[-1]):
        chan = img[..., k]
        bad = ~np.isfinite(chan)
        if not bad.any():
            continue
        if bad.all() or method == "zero":
            chan[bad] = 0.0
        elif method == "median":
            chan[bad] = np.median(chan[~bad])
        else:  # nearest, reflect
            if sources is None or not np.array_equal(sources[0], bad):
                sources = (bad, _fill_sources(bad, method))
            chan[...] = chan[sources[1]]


def fill_nan(x, *, method: str = "zero") -> np.ndarray:
    """Replace non-finite pixels (NaN, +/-inf), per channel and per image.

    Parameters
    ----------
    x : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
    method : {"zero", "median", "nearest", "reflect"}, optional
        ``"zero"``: 0; ``"median"``: the channel's median of finite pixels; ``"nearest"``: the
        value of the nearest finite pixel (Euclidean); ``"reflect"``: the good data mirrored
        across their edge (a bad pixel ``p`` whose nearest finite pixel is ``q`` takes the value
        at ``2q - p``, or at ``q`` when that is bad or outside), so a frame of NaN around an
        image fills as ``numpy.pad(mode="reflect")`` would: what :data:`BAD_PIXEL_FILL` feeds
        networks. A channel with no finite pixel is filled with 0.

    Returns
    -------
    ndarray of float32, same shape as ``x``

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import fill_nan
    >>> fill_nan(np.array([[1.0, np.nan, 3.0, 5.0]]), method="median").tolist()
    [[1.0, 3.0, 3.0, 5.0]]
    >>> fill_nan(np.array([[1.0, np.nan, np.nan, 5.0]]), method="nearest").tolist()
    [[1.0, 1.0, 5.0, 5.0]]
    >>> fill_nan(np.array([[np.nan, np.nan, 1.0, 2.0, 3.0]]), method="reflect").tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0]]
    """
    method = look_up_option(method, FILL_METHODS, name="method")
    arr = validate_image(x)
    out = np.array(arr, dtype=np.float32, copy=True)
    work = out[..., np.newaxis] if out.ndim == 2 else out
    if work.ndim == 4:
        for img in work:
            _fill_image(img, method)
    else:
        _fill_image(work, method)
    return out


# --------------------------------------------------------------------------------------------------
# the one-call API and specs


def normalize(
    x,
    *,
    method: str = "percentile",
    low: float = 1.0,
    high: float = 99.8,
    per_channel: bool = True,
    clip: bool = False,
    nan: str | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    asinh_a: float = _ASINH_A,
) -> np.ndarray:
    """Normalize raw pixels: :func:`compute_limits` then :func:`apply_limits` (then fill NaN).

    A 4-D batch (N, H, W, C) is normalized image by image (each image's own statistics).
    An image whose first axis is at most 4 long while the others are longer than 16 (axis 1
    for a batch) looks channels-first (C, H, W): it gets a
    :class:`~sciconv.errors.SciconvWarning` naming ``np.moveaxis``; so do percentiles that look
    like fractions (``high <= 1``: percentiles are 0-100).

    Parameters
    ----------
    x : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
    method, low, high, per_channel, max_samples, seed, asinh_a
        See :func:`compute_limits`.
    clip : bool, optional
        Clip to [0, 1] (except ``"zscore"``). Default False.
    nan : {None, "zero", "median", "nearest", "reflect"}, optional
        None keeps bad pixels NaN; otherwise they are filled *after* normalizing (so ``"zero"``
        puts them at the low limit). Default None.

    Returns
    -------
    ndarray of float32, same shape as ``x``

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import normalize
    >>> x = np.arange(101, dtype=np.float32).reshape(1, 101, 1)
    >>> y = normalize(x, low=1, high=99)
    >>> float(y[0, 1, 0]), float(y[0, 99, 0])
    (0.0, 1.0)
    >>> normalize(np.full((4, 4), 7.0)).max().item()  # constant image -> 0
    0.0
    """
    if nan is not None:
        nan = look_up_option(nan, FILL_METHODS, name="nan")
    warn_if_channels_first(_unwrap(x), name="x")
    limits = compute_limits(
        x,
        method=method,
        low=low,
        high=high,
        per_channel=per_channel,
        max_samples=max_samples,
        seed=seed,
        asinh_a=asinh_a,
    )
    out = apply_limits(x, limits, clip=clip)
    if nan is not None:
        out = fill_nan(out, method=nan)
    return out
