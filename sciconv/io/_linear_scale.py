"""The pixel size a WCS gives in lengths: a lab camera's ``LINEAR`` axes in mm, a remote-sensing
image's ``X``/``Y`` axes in metres (QA 55).

Such a WCS is not celestial: :func:`sciconv.io.read` keeps ``wcs=None`` (and says so), and
:meth:`PixelScale.from_wcs` gives None, but the file still states the size of a pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv._warnings import caught
from sciconv.errors import ConfigError
from sciconv.io._header import SCALE_CARD
from sciconv.io._scale import PixelScale
from sciconv.io._tiff_units import length_unit


def linear_pixel_scale(source: Any) -> PixelScale | None:
    """The length per pixel of a 2-D WCS whose two axes are lengths, else None.

    Axes of no particular kind (``CTYPE = 'LINEAR'``, ``'X'``/``'Y'``, ...; not celestial,
    spectral or time axes) whose ``CUNIT`` is a length (``'mm'``, ``'m'``, ``'um'``), scaled
    by ``CDELT`` (and ``PC``) or a ``CD`` matrix, in the first axis's unit; rotated and skewed
    pixels keep their matrix (:attr:`PixelScale.jacobian`).

    Parameters
    ----------
    source : astropy.io.fits.Header, astropy.wcs.WCS or None
        A FITS header (which must carry ``CDELT1/2`` or ``CDi_j`` cards) or its WCS.

    Returns
    -------
    PixelScale or None
        None for a celestial WCS (:meth:`PixelScale.from_wcs` reads it), axes without a
        length unit, or a header that states no scale.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from sciconv.io._linear_scale import linear_pixel_scale
    >>> h = fits.Header({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CUNIT1": "mm",
    ...                  "CUNIT2": "mm", "CDELT1": 0.0065, "CDELT2": 0.0065})
    >>> linear_pixel_scale(h)
    PixelScale(y=0.0065, x=0.0065, unit='mm')
    >>> h["CUNIT1"] = h["CUNIT2"] = "deg"; linear_pixel_scale(h) is None
    True
    """
    w = _wcs_of(source)
    if w is None or w.naxis != 2 or getattr(w, "has_celestial", False):
        return None
    from astropy import units as u

    try:
        w.wcs.set()
        if any(int(t) // 1000 != 0 for t in w.wcs.axis_types):  # celestial, spectral, time
            return None
        units = [u.Unit(str(c)) for c in w.wcs.cunit]
        if any(unit.physical_type != "length" for unit in units):
            return None
        rows = np.array([units[0].to(units[0]), units[1].to(units[0])], dtype=np.float64)
        matrix = np.asarray(w.pixel_scale_matrix, dtype=np.float64)[:2, :2] * rows[:, None]
        sx, sy = np.hypot(matrix[0], matrix[1])
        ratio = float(abs(np.linalg.det(matrix)) / (sx * sy))
        diagonal = matrix[0, 1] == 0 and matrix[1, 0] == 0 and np.all(np.diag(matrix) > 0)
        return PixelScale(
            float(sy),
            float(sx),
            units[0],
            ratio if 0 < ratio < 1 else 1.0,
            None if diagonal else matrix,
        )
    except (ConfigError, ValueError, ArithmeticError, TypeError):  # singular, odd units
        return None


def linear_scale_meta(header: Any) -> dict:
    """``meta["pixel_size"]``, ``meta["pixel_unit"]`` and ``meta["pixel_size_from"]`` (as
    the TIFF readers leave them) of a FITS header whose WCS is in lengths
    (:func:`linear_pixel_scale`); ``{}`` otherwise.

    Parameters
    ----------
    header : astropy.io.fits.Header or None
        The header of the HDU read.

    Returns
    -------
    dict

    Examples
    --------
    >>> from astropy.io import fits
    >>> from sciconv.io._linear_scale import linear_scale_meta
    >>> h = fits.Header({"CTYPE1": "X", "CTYPE2": "Y", "CUNIT1": "m", "CUNIT2": "m",
    ...                  "CDELT1": 30.0, "CDELT2": 30.0})
    >>> m = linear_scale_meta(h); m["pixel_size"], m["pixel_unit"]
    ((30.0, 30.0), 'm')
    >>> m["pixel_size_from"]
    "FITS WCS in lengths (CTYPE ['X', 'Y'], CUNIT ['m', 'm'])"
    """
    scale = linear_pixel_scale(header)
    if scale is None:
        return {}
    ctypes = [str(header.get(f"CTYPE{i}", "")).strip() for i in (1, 2)]
    cunits = [str(header.get(f"CUNIT{i}", "")).strip() for i in (1, 2)]
    return {
        "pixel_size": (scale.y, scale.x),
        "pixel_unit": length_unit(scale.unit),
        "pixel_size_from": f"FITS WCS in lengths (CTYPE {ctypes}, CUNIT {cunits})",
    }


def _wcs_of(source: Any):
    """The 2-D astropy WCS of a header that states a scale, or ``source`` when it is a WCS."""
    if source is None:
        return None
    if hasattr(source, "wcs") and hasattr(source, "pixel_scale_matrix"):  # astropy's WCS
        return source
    try:
        keys = list(source.keys())
    except AttributeError:
        return None
    if not any(SCALE_CARD.match(str(k)) for k in keys):  # else astropy invents 1 mm/pixel
        return None
    from astropy.wcs import WCS

    try:
        with caught("ignore"):  # FITSFixedWarning and friends: the reader has said its piece
            return WCS(source, naxis=2, relax=True)
    except Exception:  # a header astropy cannot read: no scale, the reader warns about it
        return None
