"""Whether converting pixels to float32 loses their signal, and the warning that says so.

sciconv holds pixels in float32 (readers, the model's input transform, in-memory datasets).
float32 keeps 24 bits: at a level ``L`` its step is ``np.spacing(np.float32(L))``, 8192 at
1e11, 256 at 2**31. Pixels wider than that (float64, 32- and 64-bit integers, FITS data scaled
by BSCALE/BZERO) whose variation is small against their level lose it in the cast: a faint sky
on a 1e11 pedestal became one value (QA: 9200 distinct values -> 1, no object found), a uint32
image with a 2**31 pedestal became 7 levels (fluxes 60 % high), without a word.
:func:`check_float32_precision` measures the loss on a subsample (at most
:data:`SAMPLE_PIXELS` pixels) and warns, naming the file, when float32's step at the pixels'
level exceeds :data:`STEP_SHARE` of their spread; :func:`float32_steps` tells whether a
posterised image's levels are float32's own steps (the loss, not a dim signal in a wide
container).

Nothing here imports the rest of :mod:`sciconv.io` at import time, so its shared helpers
(:mod:`sciconv.io._common`) can import this module.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "SAMPLE_PIXELS",
    "STEP_SHARE",
    "Float32Loss",
    "check_float32_precision",
    "float32_loss",
    "float32_steps",
    "wider_than_float32",
]

#: float32's step at the pixels' level, as a share of their spread, above which the cast loses
#: their signal (its rounding then adds more than 0.3 % of the spread as noise)
STEP_SHARE = 0.01
#: Pixels the spread and level are measured on at most (a regular grid over the largest axes)
SAMPLE_PIXELS = 250_000

_F32_MAX = float(np.finfo(np.float32).max)


class Float32Loss(NamedTuple):
    """What the float32 cast does to an array's pixels (:func:`float32_loss`).

    Attributes
    ----------
    level : float
        The pixels' level: the larger in size of their 5th and 95th percentiles.
    spread : float
        Their robust spread: half the 16th-84th percentile range (the standard deviation of
        Gaussian noise), or of a wider range where that one is 0.
    step : float
        float32's step at ``level``.
    before, after : int
        The distinct values of the sample, as given and in float32.
    """

    level: float
    spread: float
    step: float
    before: int
    after: int

    def describe(self) -> str:
        """The loss in words (no advice).

        Examples
        --------
        >>> from sciconv.io._precision import Float32Loss
        >>> Float32Loss(1e11, 5.0, 8192.0, 9200, 1).describe()
        'pixels vary by about 5 around 1e+11, but float32 keeps steps of 8.19e+03 there (9,200 distinct values of a sample become 1)'
        """  # noqa: E501
        return (
            f"pixels vary by about {self.spread:.3g} around {self.level:.7g}, but float32 keeps "
            f"steps of {self.step:.3g} there ({self.before:,} distinct values of a sample "
            f"become {self.after:,})"
        )

    def message(self, where: str = "", *, file: bool = False) -> str:
        """The warning: ``where`` (e.g. ``"image.fits: "``), the loss and what to do, for a
        file (``file``) or an array in memory.

        Examples
        --------
        >>> from sciconv.io._precision import Float32Loss
        >>> Float32Loss(2.0**31, 5.0, 256.0, 40, 1).message("x: ").endswith("np.median(image))")
        True
        """
        if file:
            advice = (
                "sciconv reads pixels as float32, so their signal is lost: read the file with "
                "astropy or tifffile, subtract the pedestal in float64 (e.g. data - "
                "np.median(data)) and pass that array (or write it to a new file)"
            )
        else:
            advice = (
                "sciconv converts them to float32 here, so their signal is lost: subtract the "
                "pedestal first, in float64 (e.g. image - np.median(image))"
            )
        return f"{where}{self.describe()}: {advice}"


def wider_than_float32(dtype) -> bool:
    """Whether ``dtype`` holds values float32 cannot: wider floats and integers of 32 bits or
    more (float32 holds every integer up to 2**24 only).

    Examples
    --------
    >>> from sciconv.io._precision import wider_than_float32
    >>> [wider_than_float32(t) for t in ("f8", ">i8", "u4", "i4", "f4", "u2", "i2", "?")]
    [True, True, True, True, False, False, False, False]
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype.itemsize > 4
    return dtype.kind in "iu" and dtype.itemsize >= 4


def _sample(arr: np.ndarray, ignore) -> tuple[np.ndarray, np.ndarray | None]:
    """At most about :data:`SAMPLE_PIXELS` values of ``arr`` (and of ``ignore``), flat: a
    regular grid over its two largest axes (a view, then one small copy)."""
    if arr.size <= SAMPLE_PIXELS or arr.ndim == 0:
        idx = ...
    else:
        axes = np.argsort(arr.shape, kind="stable")[-2:]
        per_axis = (arr.size / SAMPLE_PIXELS) ** (1.0 / len(axes))
        k = max(1, math.ceil(per_axis))
        idx = [slice(None)] * arr.ndim
        for a in axes:
            idx[a] = slice(k // 2, None, k)  # off the edges (often a border or overscan)
        idx = tuple(idx)
    values = np.asarray(arr[idx]).ravel()
    mask = None if ignore is None else np.asarray(np.broadcast_to(ignore, arr.shape)[idx]).ravel()
    return values, mask


def float32_loss(raw, *, ignore=None, resolution: float | None = None) -> Float32Loss | None:
    """Measure whether ``raw`` loses its signal in float32; None when it keeps it.

    Only dtypes :func:`wider_than_float32` are measured (others are None at once). The level
    and spread come from a subsample of at most :data:`SAMPLE_PIXELS` pixels, NaN, infinities,
    exact zeros (often "no data") and ``ignore`` left out; integers are measured exactly (their
    differences taken in integers, so 2**60 + 5 is not 2**60). The signal is lost when
    float32's step at the level exceeds :data:`STEP_SHARE` of the spread and the data's own
    ``resolution``.

    Parameters
    ----------
    raw : array_like
        The pixels before the cast, any shape.
    ignore : array_like of bool, optional
        Pixels to leave out (e.g. FITS BLANK), broadcast to ``raw``'s shape.
    resolution : float, optional
        The data's own step: a float32 step under it loses nothing (an integer
        is exact in float32 up to 2**24). Default 1 for integers, 0 for floats; FITS integers
        scaled by BSCALE pass ``abs(BSCALE)``.

    Returns
    -------
    Float32Loss or None

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import float32_loss
    >>> sky = np.random.default_rng(0).normal(0.0, 5.0, (200, 200))
    >>> float32_loss(sky) is None, float32_loss(sky + 1e3) is None
    (True, True)
    >>> loss = float32_loss(sky + 1e11)
    >>> loss.step, loss.after
    (8192.0, 1)
    """
    arr = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
    if not wider_than_float32(arr.dtype) or arr.size == 0:
        return None
    values, mask = _sample(arr, ignore)
    keep = values != 0
    if arr.dtype.kind == "f":
        keep &= np.isfinite(values)
    if mask is not None:
        keep &= ~mask
    values = values[keep]
    if values.size < 2:
        return None
    if arr.dtype.kind == "f":
        offset, diffs = 0.0, values.astype(np.float64)
    else:  # exact differences from the smallest value, in 64-bit unsigned arithmetic
        low = values.min()
        offset = float(int(low))
        wrapped = values.astype(np.int64 if arr.dtype.kind == "i" else np.uint64)
        diffs = (wrapped.view(np.uint64) - np.asarray(low, wrapped.dtype).view(np.uint64)).astype(
            np.float64
        )
    q01, q05, q16, q84, q95, q99 = np.percentile(diffs, [1, 5, 16, 84, 95, 99])
    level = max(abs(offset + q05), abs(offset + q95))
    spread = next((h - lo for lo, h in ((q16, q84), (q01, q99)) if h > lo), None)
    spread = (diffs.max() - diffs.min()) if spread is None else spread
    spread /= 2.0
    if spread <= 0 or not level < _F32_MAX:  # constant; beyond float32 (the overflow's warning)
        return None
    step = float(np.spacing(np.float32(level)))
    if resolution is None:
        resolution = 1.0 if arr.dtype.kind in "iu" else 0.0
    if step <= resolution or step <= STEP_SHARE * spread:
        return None
    before = int(np.unique(values).size)
    after = int(np.unique(values.astype(np.float32)).size)
    return Float32Loss(float(level), float(spread), step, before, after)


def check_float32_precision(
    raw,
    *,
    path: Path | str | None = None,
    name: str | None = None,
    ignore=None,
    resolution: float | None = None,
) -> Float32Loss | None:
    """Warn when converting ``raw`` to float32 loses its signal (:func:`float32_loss`).

    The :class:`~sciconv.errors.SciconvWarning` names the file (``path``) or the argument
    (``name``), says how much the pixels vary around which level and float32's step there, and
    what to do: subtract the pedestal in float64 before sciconv converts the pixels. Costs a
    subsample of :data:`SAMPLE_PIXELS` pixels (a few ms on a 4000 x 4000 float64 image);
    nothing for float32, 8- and 16-bit pixels.

    Parameters
    ----------
    raw : array_like
        The pixels before the cast.
    path : str or Path, optional
        The file they come from, named in the warning.
    name : str, optional
        What to call them without a file (e.g. ``"images[3]"``).
    ignore, resolution
        As for :func:`float32_loss`.

    Returns
    -------
    Float32Loss or None
        The loss warned about; None when there is none.

    Warns
    -----
    SciconvWarning
        The float32 step at the pixels' level is more than :data:`STEP_SHARE` of their spread.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sciconv.io import check_float32_precision
    >>> faint = np.random.default_rng(0).normal(2**31, 5.0, (100, 100)).astype(np.uint32)
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     loss = check_float32_precision(faint, name="image")
    >>> loss.step, str(said[0].message).startswith("image: pixels vary by about 5")
    (256.0, True)
    >>> check_float32_precision(faint.astype(np.float32)) is None  # float32 already: nothing
    True
    """
    loss = float32_loss(raw, ignore=ignore, resolution=resolution)
    if loss is None:
        return None
    from sciconv.io._common import warn_caller  # _common imports this module

    where = f"{path}: " if path is not None else f"{name}: " if name else ""
    warn_caller(loss.message(where, file=path is not None), "sciconv")
    return loss


def float32_steps(values) -> str | None:
    """Why an image holds only these distinct ``values``, when they sit on float32's own steps
    at their level: its pixels lost their variation when converted to float32 (a large
    pedestal), rather than holding a dim signal in a wide container. None otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io._precision import float32_steps
    >>> float32_steps(np.float32(2**31) + np.arange(7) * 256)  # 2**31: float32 steps 256
    "7 distinct pixel values 256 apart around 2.147485e+09: float32's steps there, so the pixels lost their variation when converted to float32; subtract the pedestal in float64 before sciconv converts them (e.g. image - np.median(image))"
    >>> print(float32_steps(np.arange(500, 507, dtype=np.float32)))  # 7 levels of a 16-bit file
    None
    """  # noqa: E501
    v = np.unique(np.asarray(values, dtype=np.float64).ravel())
    v = v[np.isfinite(v)]
    top = float(np.abs(v).max()) if v.size else 0.0
    if v.size < 2 or not top < _F32_MAX:
        return None
    gap = float(np.diff(v).min())
    if gap > 2 * float(np.spacing(np.float32(top))):
        return None
    return (
        f"{v.size} distinct pixel values {gap:.3g} apart around {top:.7g}: float32's steps "
        "there, so the pixels lost their variation when converted to float32; subtract the "
        "pedestal in float64 before sciconv converts them (e.g. image - np.median(image))"
    )
