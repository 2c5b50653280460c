"""FITS pixel values from the stored ones: ``BSCALE``/``BZERO``/``BLANK``, then the asinh
compression Pan-STARRS declares with ``BSOFTEN``/``BOFFSET``.

Every FITS read of sciconv's (whole images, ``section=`` windows, lazy windows and the fast path
for plain files) turns stored values into physical ones here, so that they agree to the bit.

Pan-STARRS 1 full skycell stacks (``*.stk.*.unconv.fits``) and their variance images (``.wt``)
store ``C = alpha * asinh((L - BOFFSET) / (2 * BSOFTEN))`` of the linear pixels ``L``, with
``alpha = 2.5 * log10(e)``, then quantise ``C`` with the usual ``BSCALE``/``BZERO``: read as
plain FITS, a 30 000-count star is a pixel of about 3. :func:`asinh_linear` undoes it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sciconv.io._common import first_call, warn_caller
from sciconv.io._header import header_get, header_number
from sciconv.io._precision import check_float32_precision

__all__ = [
    "ASINH_ALPHA",
    "ASINH_KEYWORDS",
    "FitsScaling",
    "asinh_history",
    "asinh_linear",
    "physical_values",
]

#: ``2.5 * log10(e)`` (Pogson's ratio): the scale of the Pan-STARRS asinh compression.
ASINH_ALPHA = 2.5 / math.log(10.0)
#: The header keywords of the Pan-STARRS asinh compression, (softening, offset).
ASINH_KEYWORDS = ("BSOFTEN", "BOFFSET")


def asinh_linear(values: np.ndarray, boffset: float, bsoften: float) -> np.ndarray:
    """Undo the Pan-STARRS asinh compression, in place: ``BOFFSET + BSOFTEN * 2 sinh(v / a)``.

    ``v`` are the values after ``BSCALE``/``BZERO``, ``a = 2.5 log10(e)`` (so ``v / a`` is
    ``v ln(10) / 2.5``). The formula is the IPP's ("asinh_compression", Pan-STARRS IPP wiki:
    ``L = BOFFSET + BSOFTEN * (exp(C / alpha) - exp(-C / alpha))``; MAST's "PS1 Stack images"
    page says the same of the stacks and of their ``.wt`` variance images).

    Parameters
    ----------
    values : numpy.ndarray
        float64 values after ``BSCALE``/``BZERO``; overwritten with the linear ones.
    boffset, bsoften : float
        The header's ``BOFFSET`` and ``BSOFTEN``.

    Returns
    -------
    numpy.ndarray
        ``values``, linear (infinite where ``sinh`` overflows float64).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io._fits_scaling import ASINH_ALPHA, asinh_linear
    >>> linear = np.array([-50.0, 0.0, 10.0, 30000.0])
    >>> stored = ASINH_ALPHA * np.arcsinh((linear - 10.0) / (2 * 8.0))
    >>> stored.round(4).tolist()  # a 30 000-count pixel stored as 8.93
    [-2.2065, -0.6407, 0.0, 8.9347]
    >>> asinh_linear(stored, 10.0, 8.0).round(6).tolist()
    [-50.0, 0.0, 10.0, 30000.0]
    """
    with np.errstate(over="ignore"):
        np.multiply(values, 1.0 / ASINH_ALPHA, out=values)
        np.sinh(values, out=values)
    values *= 2.0 * bsoften
    values += boffset
    return values


class FitsScaling:
    """How an image HDU's stored values become physical ones (:func:`physical_values`).

    ``bscale``, ``bzero``: the linear scaling; ``blank``: the integer of undefined pixels (None
    if none); ``asinh``: ``(BOFFSET, BSOFTEN)`` when the header declares both (Pan-STARRS),
    else None. A header with only one of the two is read linearly, with a warning.
    """

    def __init__(self, header, bitpix: int, path: Path):
        self.bscale = header_number(header, "BSCALE", 1.0, path)
        self.bzero = header_number(header, "BZERO", 0.0, path)
        self.integer = bitpix > 0
        blank = header_get(header, "BLANK")
        self.blank = None
        if blank is not None and self.integer:
            if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)):
                warn_caller(f"{path}: BLANK is not an integer ({blank!r}); ignored")
            else:
                self.blank = int(blank)
        said = [k for k in ASINH_KEYWORDS if header_get(header, k) is not None]
        self.asinh = None
        if len(said) == 2:
            soften, offset = (header_number(header, k, 0.0, path) for k in ASINH_KEYWORDS)
            self.asinh = (offset, soften)
        elif said:
            other = next(k for k in ASINH_KEYWORDS if k not in said)
            warn_caller(
                f"{path}: {said[0]} without {other}: the Pan-STARRS asinh compression needs "
                "both; the pixels are read with BSCALE/BZERO only"
            )
        self.path = path
        self.first = first_call()  # a lazy image's precision: checked on its first window only

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return physical_values(
            raw, self.bscale, self.bzero, self.blank, self.path, asinh=self.asinh,
            check=self.first(),
        )  # fmt: skip

    def meta(self) -> dict:
        """What a GridImage's ``meta`` records of the scaling (nothing when there is none)."""
        out = {}
        if self.bscale != 1.0 or self.bzero != 0.0:
            out["bscale"], out["bzero"] = self.bscale, self.bzero
        if self.blank is not None:
            out["blank"] = self.blank
        if self.asinh is not None:
            out["scaling"] = "asinh"
            out["boffset"], out["bsoften"] = self.asinh
        return out


def asinh_history(meta) -> str | None:
    """The HISTORY line of a product written like an image whose asinh compression was undone
    on reading (``meta["scaling"] == "asinh"``, :meth:`FitsScaling.meta`); None otherwise.

    Examples
    --------
    >>> from sciconv.io._fits_scaling import asinh_history
    >>> asinh_history({"scaling": "asinh", "boffset": 12.5, "bsoften": 3.0})
    'Pan-STARRS asinh pixels read linear (BOFFSET=12.5 BSOFTEN=3); BSOFTEN, BOFFSET left out'
    >>> asinh_history({"bscale": 2.0}) is None
    True
    """
    if not isinstance(meta, dict) or meta.get("scaling") != "asinh":
        return None
    values = ((k, meta.get(k)) for k in ("boffset", "bsoften"))
    said = " ".join(f"{k.upper()}={v:.7g}" for k, v in values if isinstance(v, (int, float)))
    return f"Pan-STARRS asinh pixels read linear ({said}); BSOFTEN, BOFFSET left out"


def physical_values(
    raw, bscale, bzero, blank: int | None, path, *, asinh=None, check=True
) -> np.ndarray:
    """float32 ``raw * bscale + bzero`` (then :func:`asinh_linear` with ``asinh = (BOFFSET,
    BSOFTEN)``), NaN where ``raw == blank`` or the result is not finite; with ``check``, a
    warning when float32 loses the pixels' signal (check_float32_precision).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io._fits_scaling import physical_values
    >>> physical_values(np.array([0, 4, -32768], np.int16), 0.5, 100.0, -32768, "x.fits")
    array([100., 102.,  nan], dtype=float32)
    """
    raw = np.asarray(raw)
    identity = bscale == 1.0 and bzero == 0.0 and asinh is None
    if identity and raw.dtype.kind == "f" and raw.dtype.itemsize <= 4:
        out = raw.astype(np.float32)
        big = None
    elif identity and raw.dtype.kind in "iub" and raw.dtype.itemsize <= 2:
        out = raw.astype(np.float32)
        big = None
    else:
        big = raw.astype(np.float64)
        if bscale != 1.0:
            big *= bscale
        if bzero != 0.0:
            big += bzero
        if asinh is not None:
            asinh_linear(big, *asinh)
        with np.errstate(over="ignore", invalid="ignore"):
            out = big.astype(np.float32)
    bad = ~np.isfinite(out)
    if big is not None and bad.any():
        stored = np.isfinite(raw) if raw.dtype.kind == "f" else True  # NaN stored: no overflow
        overflow = int(np.count_nonzero(bad & stored))
        if overflow:
            steps = f"BSCALE={bscale:g}/BZERO={bzero:g}"
            if asinh is not None:
                steps += f" and the asinh decode (BOFFSET={asinh[0]:g}, BSOFTEN={asinh[1]:g})"
            warn_caller(
                f"{path}: {overflow} pixel(s) exceed the float32 range after {steps}; "
                "set to NaN and masked"
            )
    if blank is not None and raw.dtype.kind in "iu":
        bad |= raw == blank
    if big is not None and check:  # 64-bit, 32-bit integer or scaled pixels: a lost signal said
        step = abs(bscale) if raw.dtype.kind in "iub" else 0.0  # integers keep no finer steps
        if asinh is not None:  # the finest step of the linear values: at v = 0
            step *= 2.0 * abs(asinh[1]) / ASINH_ALPHA
        exact = raw if identity else big
        check_float32_precision(exact, path=path, ignore=bad, resolution=step)
    out[bad] = np.nan
    return out
