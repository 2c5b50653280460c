"""The per-pixel errors a FITS file keeps beside its science HDU: an ``ERR``, ``UNCERT``,
``VAR``/``VARIANCE`` or ``IVAR``/``INVVAR``/``WGT`` HDU.

HST (``_flt``, ``_flc``) and JWST (``_cal``, ``_i2d``) files carry the 1-sigma error of every
pixel in an ``ERR`` extension of the science extension's ``EXTVER``; files written by astropy's
``CCDData.write`` carry an ``UNCERT`` extension whose ``UTYPE`` card names the kind (standard
deviation, variance or inverse variance); survey pipelines keep a variance (``VARIANCE``: LSST
calexps; ``VAR``) or an inverse variance (``IVAR``, ``INVVAR``: SDSS, DESI, Legacy Surveys; 0 =
no data, an infinite error). A ``WGT`` HDU is an inverse variance too: the weight plane of DES
coadd tiles and single-epoch images (SCI, MSK, WGT in one file; DES's pixcorrect builds it as
"weight (=inverse variance)", ``pixcorrect/sky_subtract.py``), as SWarp's and SExtractor's
``MAP_WEIGHT`` maps are; the name is taken at its word, no header card says it. HST's ``WHT``
(a drizzled image's exposure-time weight, not an inverse variance) is not an error HDU, nor
is any other name. :func:`error_hdu_uncertainty` reads it as an astropy
uncertainty, for ``GridImage.meta["uncertainty"]``, so that catalogs get their flux errors from
the pipeline's own error model (``sciconv.postprocess.estimate_error``): for JWST's ``MJy/sr``
the only one, since no gain turns the pixels into photon counts.
"""

from __future__ import annotations

import dataclasses
import re
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from sciconv.errors import InvalidImageError
from sciconv.io._common import hdus_said_once
from sciconv.io._header import (
    OBSERVATION_KEYWORDS,
    PHOTOMETRIC_KEYWORDS,
    hdu_dims,
    header_get,
)

__all__ = [
    "ERROR_EXTNAMES",
    "GAIN_KEYWORDS",
    "NOISE_KEYWORDS",
    "RESAMPLED_CARD",
    "RESAMPLED_HISTORY",
    "ErrorHDU",
    "error_hdu_uncertainty",
    "find_error_hdu",
    "hdu_values",
    "no_data_pixels",
    "primary_cards",
    "sigma_of",
]

#: EXTNAMEs of per-pixel error HDUs, in order of preference (``WGT``: DES's inverse variance;
#: HST's ``WHT`` is an exposure-time weight, not one of them).
ERROR_EXTNAMES = ("ERR", "UNCERT", "VAR", "VARIANCE", "IVAR", "INVVAR", "WGT")
#: Header keywords read, in order, for the electrons per ADU of a detector. ``EGAIN`` first:
#: where both are written (N.I.N.A., MaxIm DL, SGP on CMOS cameras) ``GAIN`` is the camera's
#: gain setting (120, in its own steps) and ``EGAIN`` the electrons per ADU (QA: bright stars'
#: flux errors 4.9x too small from GAIN = 120).
GAIN_KEYWORDS = ("EGAIN", "GAIN", "ATODGAIN", "CCDGAIN")
#: The cards a noise model needs; an extension's own, else its primary header's
#: (``GridImage.meta["primary"]``: MEF files keep EXPTIME there, with or without INHERIT).
NOISE_KEYWORDS = ("EXPTIME", *GAIN_KEYWORDS)
#: Cards that say an image's pixels were resampled (HST drizzle, JWST resample, SWarp): the
#: correlated-noise factor of its flux errors (:func:`sciconv.postprocess.resampled_by`).
RESAMPLED_CARD = re.compile(r"D\d{3}(KERN|PIXF)|NDRIZIM|RESAMPT1|S_RESAMP|SOFTNAME")
#: Words of a HISTORY line that say so.
RESAMPLED_HISTORY = re.compile(r"drizzl|swarp|reproject|resampl", re.IGNORECASE)


def primary_cards(header) -> dict:
    """What an extension's image keeps of its file's primary header (``meta["primary"]``): the
    noise model's cards (:data:`NOISE_KEYWORDS`), the cards saying the pixels were resampled
    (:data:`RESAMPLED_CARD`: JWST keeps ``S_RESAMP`` there), the HISTORY lines that do, and
    the observation's cards (:data:`~sciconv.io.OBSERVATION_KEYWORDS`: JWST's ``FILTER`` and
    ``DATE-OBS``) and photometric calibration (:data:`~sciconv.io.PHOTOMETRIC_KEYWORDS`) a
    catalog keeps; the cards the header lacks are left out.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from sciconv.io._fits_errors import primary_cards
    >>> h = fits.Header({"EXPTIME": 30.0, "S_RESAMP": "COMPLETE", "OBJECT": "M31"})
    >>> h.add_history("flat-fielded")
    >>> h.add_history("AstroDrizzle processing performed")
    >>> primary_cards(h)  # doctest: +NORMALIZE_WHITESPACE
    {'EXPTIME': 30.0, 'S_RESAMP': 'COMPLETE', 'OBJECT': 'M31',
     'HISTORY': ['AstroDrizzle processing performed']}
    """
    cards = {k: header_get(header, k) for k in NOISE_KEYWORDS}
    cards = {k: v for k, v in cards.items() if v is not None}
    observed = OBSERVATION_KEYWORDS + PHOTOMETRIC_KEYWORDS  # a catalog's band, date, zero point
    for key in header.keys():
        if RESAMPLED_CARD.fullmatch(key) or any(fnmatchcase(key, p) for p in observed):
            cards[key] = header_get(header, key)
    history = [str(v) for v in header.get("HISTORY", [])] if "HISTORY" in header else []
    said = [line for line in history if RESAMPLED_HISTORY.search(line)]
    if said:
        cards["HISTORY"] = said
    return cards


# CCDData's UTYPE card -> astropy.nddata class name; without one, the kind the name says
_KINDS = ("StdDevUncertainty", "VarianceUncertainty", "InverseVariance")
_KIND_OF = {
    "ERR": "StdDevUncertainty",
    "UNCERT": "StdDevUncertainty",
    "VAR": "VarianceUncertainty",
    "VARIANCE": "VarianceUncertainty",
    "IVAR": "InverseVariance",
    "INVVAR": "InverseVariance",
    "WGT": "InverseVariance",
}


def _name(h) -> str:
    name = header_get(h.header, "EXTNAME", "")
    return name.strip().upper() if isinstance(name, str) else ""


def error_hdu_uncertainty(hdul, index: int, ys: slice, xs: slice, path: Path):
    """The uncertainty of 2-D image HDU ``index`` over rows ``ys``, columns ``xs``, or None.

    An image HDU named as in :data:`ERROR_EXTNAMES`, with the science HDU's ``EXTVER`` and
    size; None when there is none, or it cannot be read (the image is still read, without it).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.
    index : int
        The science HDU.
    ys, xs : slice
        The section read.
    path : Path
        The file (for the record in ``meta["uncertainty_from"]``).

    Returns
    -------
    (astropy.nddata.NDUncertainty, str) or None
        The uncertainty and where it came from (``"HDU 2 (ERR)"``).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((4, 5)), name="SCI"),
    ...                      fits.ImageHDU(np.full((4, 5), 2.0), name="ERR")])
    >>> unc, where = error_hdu_uncertainty(hdul, 1, slice(0, 2), slice(0, 5), Path("x.fits"))
    >>> type(unc).__name__, unc.array.shape, where
    ('StdDevUncertainty', (2, 5), 'HDU 2 (ERR)')
    >>> hdul[2].name = "IVAR"                              # a survey's inverse variance
    >>> type(error_hdu_uncertainty(hdul, 1, slice(0, 2), slice(0, 5), Path("x.fits"))[0]).__name__
    'InverseVariance'
    """
    from astropy import nddata

    found = find_error_hdu(hdul, index)
    if found is None:
        return None
    i, kind = found
    try:
        values = hdu_values(hdul[i], ys, xs)
    except Exception:  # a damaged error HDU: the pixels are still good, without error bars
        return None
    return getattr(nddata, kind)(values), f"HDU {i} ({_name(hdul[i])})"


def hdu_values(h, ys: slice, xs: slice) -> np.ndarray:
    """float64 values of 2-D image HDU ``h`` over rows ``ys``, columns ``xs``, its integer
    scaling (``BSCALE``/``BZERO``: a uint16 inverse variance is stored as int16 + 32768) applied:
    astropy's ``section`` gives the stored integers.

    Examples
    --------
    >>> from astropy.io import fits
    >>> h = fits.ImageHDU(np.full((2, 3), 1000, np.uint16))
    >>> hdu_values(h, slice(0, 1), slice(0, 2)).tolist()
    [[1000.0, 1000.0]]
    """
    try:
        stored = np.asarray(h.section[ys, xs])  # only the rows read (a file's HDU)
    except Exception:  # an HDU held in memory: astropy scales .data itself
        return np.asarray(h.data[ys, xs], dtype=np.float64)
    values = stored.astype(np.float64)
    bscale = header_get(h.header, "BSCALE", 1.0)
    bzero = header_get(h.header, "BZERO", 0.0)
    if np.issubdtype(stored.dtype, np.integer) and all(
        isinstance(v, (int, float)) for v in (bscale, bzero)
    ):
        if (bscale, bzero) != (1, 0):
            values = values * float(bscale) + float(bzero)
    return values


def find_error_hdu(hdul, index: int) -> tuple[int, str] | None:
    """``(i, kind)`` of the error HDU of image HDU ``index`` (:data:`ERROR_EXTNAMES`, the same
    ``EXTVER`` and size; ``kind`` an astropy.nddata uncertainty class name), or None.

    Examples
    --------
    >>> from astropy.io import fits
    >>> hdul = fits.HDUList([fits.PrimaryHDU(np.ones((2, 2))),
    ...                      fits.ImageHDU(np.ones((2, 2)), name="VARIANCE")])
    >>> find_error_hdu(hdul, 0)
    (1, 'VarianceUncertainty')
    """
    science = hdul[index]
    if _name(science) in ERROR_EXTNAMES:
        return None
    dims = hdu_dims(science.header)
    if dims is None or len(dims) != 2:
        return None
    version = header_get(science.header, "EXTVER", 1)
    try:
        found = [
            (ERROR_EXTNAMES.index(_name(h)), i, h)
            for i, h in enumerate(hdus_said_once(hdul, hdul.filename()))
            if i != index
            and _name(h) in ERROR_EXTNAMES
            and getattr(h, "is_image", False)
            and header_get(h.header, "EXTVER", 1) == version
            and hdu_dims(h.header) == dims
        ]
    except Exception:  # a damaged HDU after the science one: no error bars
        return None
    if not found:
        return None
    _, i, h = min(found, key=lambda f: f[:2])
    try:  # a damaged error HDU: the pixels are still good, without error bars
        hdu_values(h, slice(0, 1), slice(0, 1))
    except Exception:
        return None
    kind = _KIND_OF[_name(h)]  # a variance's or inverse variance's name says what it holds
    if _name(h) in ("ERR", "UNCERT"):  # CCDData's UTYPE card says what its UNCERT HDU holds
        utype = header_get(h.header, "UTYPE", None)
        kind = utype if utype in _KINDS else kind
    return i, kind


def sigma_of(uncertainty, unit=None) -> np.ndarray | None:
    """float64 standard deviations of an astropy uncertainty (astropy's conversion: an inverse
    variance of 0 gives inf, a negative variance NaN, silently), or None for a kind with none.

    Given the data's ``unit``, an uncertainty in another unit is converted to it (QA: errors
    of an NDData in Jy with a ``StdDevUncertainty`` in mJy were read as Jy, 1000 times too
    large); one that cannot be converted raises :class:`~sciconv.errors.InvalidImageError`.

    Examples
    --------
    >>> from astropy.nddata import InverseVariance, StdDevUncertainty
    >>> sigma_of(InverseVariance(np.array([4.0, 0.0]))).tolist()
    [0.5, inf]
    >>> sigma_of(StdDevUncertainty(np.array([2.0]), unit="mJy"), unit="Jy").tolist()
    [0.002]
    """
    from astropy import units as u
    from astropy.nddata import StdDevUncertainty

    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = uncertainty.represent_as(StdDevUncertainty)
            sigma = np.asarray(sd.array, np.float64)
    except Exception:  # an uncertainty class with no standard deviation
        return None
    try:
        own = sd.unit  # its own, or its parent's
    except Exception:  # a parent that is gone
        own = None
    if own is None or unit is None or u.Unit(own) == u.Unit(unit):
        return sigma
    try:
        return sigma * u.Unit(own).to(u.Unit(unit))
    except u.UnitConversionError as exc:
        raise InvalidImageError(
            f"the uncertainty is in {own}, which does not convert to the data's unit {unit}"
        ) from exc


@dataclasses.dataclass(frozen=True)
class ErrorHDU:
    """The error HDU of a lazily read image, read window by window as standard deviations:
    block-wise catalogs of a mosaic take their flux errors from it, as the whole-image catalog
    takes them from ``meta["uncertainty"]``. Picklable (a path and numbers): each read opens
    the file, so it works in ``dask.distributed`` workers.

    Attributes
    ----------
    path : str
        The file.
    hdu : int
        The error HDU.
    kind : str
        An astropy.nddata uncertainty class name (what the HDU holds).
    origin : (int, int)
        The file's pixel of the image's (0, 0) (a section read).
    """

    path: str
    hdu: int
    kind: str
    origin: tuple[int, int] = (0, 0)

    def read(self, ys: tuple[int, int], xs: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` float64 standard deviations of rows ``ys``, columns ``xs`` of the image.

        Parameters
        ----------
        ys, xs : (int, int)
            ``(start, stop)`` of the rows and columns, in the image's pixels (``origin`` added).
        """
        from sciconv.io._fits import read_fits

        y0, x0 = self.origin
        section = (slice(y0 + ys[0], y0 + ys[1]), slice(x0 + xs[0], x0 + xs[1]))
        values = read_fits(
            Path(self.path),
            hdu=self.hdu,
            stack=False,
            section=section,
            lazy=False,
            pixels_only=True,
            mask_hdu=None,
        ).data
        from astropy import nddata

        return sigma_of(getattr(nddata, self.kind)(np.asarray(values)[..., 0]))


def no_data_pixels(uncertainty) -> np.ndarray | None:
    """Bool ``(H, W)``: the pixels an uncertainty says hold no measurement (an inverse variance
    of 0, a negative variance, a NaN or infinite error), which :func:`sciconv.io.read` marks bad
    (NaN, ``.mask``) like a ``DQ`` flag; None when there are none (or no uncertainty).

    Examples
    --------
    >>> from astropy.nddata import InverseVariance
    >>> no_data_pixels(InverseVariance(np.array([[4.0, 0.0]]))).tolist()
    [[False, True]]
    """
    sigma = None if uncertainty is None else sigma_of(uncertainty)
    if sigma is None:  # none, or a kind with no standard deviation: nothing to say
        return None
    bad = ~np.isfinite(sigma)
    if sigma.ndim == 3 and sigma.shape[-1] == 1:
        bad = bad[..., 0]
    return bad if bad.ndim == 2 and bad.any() else None
