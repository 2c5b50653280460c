"""FITS header cards: safe look-ups, structural cards, INHERIT and the celestial WCS.

Real headers hold cards astropy cannot parse, duplicated or stale structural keywords and WCS
that wcslib rejects; everything here survives them: an unparsable card reads as ``UNPARSABLE``,
a WCS that cannot be built is ``None`` with a :class:`~sciconv.errors.SciconvWarning`.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path

import numpy as np

from sciconv._validation import is_number
from sciconv._warnings import caught
from sciconv.errors import InvalidImageError
from sciconv.io._common import brief, warn_caller


class _Unparsable:
    def __repr__(self) -> str:
        return "<unparsable card>"


UNPARSABLE = _Unparsable()


def header_get(header, key: str | tuple[str, int], default=None):
    """``header.get`` that survives unparsable cards (returns ``UNPARSABLE`` for those)."""
    try:
        return header.get(key, default)
    except Exception:  # astropy raises VerifyError/ValueError on cards it cannot parse
        return UNPARSABLE


#: The cards that name the unit of an image's pixels, in the order they are read: the FITS
#: standard's ``BUNIT``, then ``PIXLUNIT``, which SDO/AIA, Hinode and NuSTAR maps write instead
#: (``'DN'``, ``'DN/s'``; sunpy reads it so). A product drops both with its pixel values and
#: writes ``BUNIT`` alone.
UNIT_KEYWORDS = ("BUNIT", "PIXLUNIT")


def unit_card(header) -> str | None:
    """The pixels' unit as ``header`` spells it.

    Parameters
    ----------
    header : astropy.io.fits.Header, dict or None
        A FITS header (or its cards as a mapping).

    Returns
    -------
    str or None
        The first non-blank :data:`UNIT_KEYWORDS` card (``BUNIT``, else ``PIXLUNIT``),
        stripped; None when there is none or it cannot be read. Parse it with
        :attr:`sciconv.io.GridImage.unit`, which reads it so.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from sciconv.io import unit_card
    >>> unit_card(fits.Header({"PIXLUNIT": "DN/s "})), unit_card(fits.Header())
    ('DN/s', None)
    """
    if header is None:
        return None
    for key in UNIT_KEYWORDS:
        value = header_get(header, key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


_NOT_IMAGE_AXES = ("FREQ", "VRAD", "VOPT", "VELO", "WAVE", "AWAV", "ZOPT", "ENER", "STOKES")


def not_an_image_axis(header, n: int) -> str | None:
    """The CTYPEn of FITS axis ``n`` when it is spectral or Stokes (not an image axis), else
    None (no header, no CTYPE, a celestial or linear axis)."""
    ctype = header_get(header, f"CTYPE{n}") if header is not None else None
    if isinstance(ctype, str) and ctype.strip().upper().split("-")[0] in _NOT_IMAGE_AXES:
        return ctype.strip()
    return None


def written_by_sciconv(header) -> bool:
    """Whether the HDU's HISTORY says :func:`sciconv.io.write` wrote it: its planes are on
    NAXIS3 and beyond, however narrow the image (1 px wide, 5 channels: QA), so it is never a
    colour image written channels-last."""
    history = header_get(header, "HISTORY", ()) if header is not None else ()
    try:
        return any(str(line).startswith("Written by sciconv ") for line in history)
    except TypeError:  # an unparsable card
        return False


def hdu_dims(header) -> tuple[int, ...] | None:
    """NAXISn in FITS order (NAXIS1 first) from a header, or None if they are not valid."""
    naxis = header_get(header, "NAXIS", 0)
    if isinstance(naxis, bool) or not isinstance(naxis, (int, np.integer)) or not 0 <= naxis <= 999:
        return None
    dims = []
    for i in range(1, int(naxis) + 1):
        n = header_get(header, f"NAXIS{i}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            return None
        dims.append(int(n))
    return tuple(dims)


class DamagedAxes(Exception):
    """A header whose axis lengths cannot be (``NAXIS1 = -5``)."""


def refuse_negative_axis(header, index: int) -> None:
    """Raise :class:`DamagedAxes` naming HDU ``index``'s first negative axis length (astropy
    reads on past such an HDU for ever: QA)."""
    naxis = header_get(header, "NAXIS", 0)
    if not isinstance(naxis, (int, np.integer)) or isinstance(naxis, bool):
        return
    for n in range(1, min(int(naxis), 999) + 1):
        value = header_get(header, f"NAXIS{n}")
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value < 0:
            raise DamagedAxes(f"HDU {index} has NAXIS{n} = {int(value)}, a negative axis length")


def layout_conflict(header) -> str | None:
    """What is wrong when BITPIX, NAXIS or an NAXISn card repeats with another value, else None.

    astropy lays the pixels out from the last of such cards while header look-ups (and so the
    shape and the scaling here) take the first: the pixel layout of such a header is ambiguous.
    """
    naxis = header_get(header, "NAXIS", 0)
    valid = isinstance(naxis, (int, np.integer)) and not isinstance(naxis, bool)
    n = int(naxis) if valid and 0 <= naxis <= 999 else 0
    for key in ("BITPIX", "NAXIS", *(f"NAXIS{i}" for i in range(1, n + 1))):
        try:
            count = header.count(key)
        except KeyError:
            continue
        if count > 1:
            values = [header_get(header, (key, i)) for i in range(count)]
            if len({repr(v) for v in values}) > 1:
                listed = ", ".join(repr(v) for v in values)
                return (
                    f"damaged header: {key} appears {count} times with different values "
                    f"({listed}); the pixel layout is ambiguous"
                )
    return None


def header_number(header, key: str, default: float, path: Path) -> float:
    value = header_get(header, key, default)
    if value is UNPARSABLE:
        raise InvalidImageError(f"header keyword {key} is unparsable", path=path)
    if not is_number(value):
        raise InvalidImageError(f"header keyword {key} is not a number: {value!r}", path=path)
    value = float(value)
    if not math.isfinite(value):
        raise InvalidImageError(f"header keyword {key} is not finite: {value!r}", path=path)
    return value


# the cards of the HDU's layout and encoding: true of the file read, never of a product written
# like it (BSOFTEN/BOFFSET: Pan-STARRS asinh compression, undone on reading; kept, a re-read
# product would be decoded a second time)
_STRUCTURAL = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|GROUPS|BSCALE|BZERO|BLANK|BSOFTEN"
    r"|BOFFSET|CHECKSUM|DATASUM|THEAP|TFIELDS|TTYPE\d+|TFORM\d+|TDIM\d+|ZIMAGE|ZSIMPLE|ZTENSION|ZEXTEND|ZBITPIX"
    r"|ZNAXIS\d*|ZTILE\d+|ZCMPTYPE|ZNAME\d+|ZVAL\d+|ZQUANTIZ|ZDITHER0|ZBLANK|ZPCOUNT|ZGCOUNT"
    r"|ZHECKSUM|ZDATASUM|ZSCALE|ZZERO|ZMASKCMP|END)$"
)


#: Cards that state the value range or statistics of the HDU's pixel array: ``DATAMIN`` and
#: ``DATAMAX`` (FITS 4.0 section 4.4.2.5: the minimum and maximum valid physical value in the
#: array, which DS9's "DATAMIN DATAMAX" scale limits and IRAF's display act on) and the pipeline
#: statistics of HST's calibrated frames (``GOODMIN``, ``SNRMAX``, ``NGOODPIX`` ...). True of
#: one array only: :func:`sciconv.io.write` keeps them only when it writes the values of
#: ``like``'s own pixels (glob patterns, :func:`drop_keywords`).
ARRAY_STATISTICS_KEYWORDS = (
    "DATAMIN", "DATAMAX", "DATAMEAN", "DATAMED*", "DATARMS", "DATASTD",
    "GOODMIN", "GOODMAX", "GOODMEAN", "SNRMIN", "SNRMAX", "SNRMEAN", "NGOODPIX",
)  # fmt: skip
#: Cards that turn the values of an image's pixels into physical quantities or mark which are
#: valid: the saturation level (``SATURATE``, ``SATLEVEL``), gain and read noise (``GAIN``,
#: ``EGAIN``, ``ATODGAIN``, ``CCDGAIN``, ``ATODGNx``, ``RDNOISE``, ``READNOIS``, ``READNSEx``),
#: photometric calibration (HST's ``PHOTFLAM``, ``PHOTFNU``, ``PHOTZPT``, ``PHOTPLAM``,
#: ``PHOTBW``; JWST's ``PHOTMJSR``, ``PHOTUJA2``; zero points ``MAGZP*``, ``PHOTZP*``,
#: ``FLUXMAG0``, the NOIRLab DECam Community Pipeline's and DES's ``MAGZERO``; AIA's
#: ``DN_GAIN``). True of any pixels in the input's unit, false of a product of another kind
#: (probabilities, labels, masks): :func:`sciconv.io.write` drops them there, with ``BUNIT``
#: and ``PIXLUNIT`` (:data:`UNIT_KEYWORDS`).
#: They include :data:`sciconv.postprocess.SATURATION_KEYWORDS` and the gain keywords the error
#: model reads (``GAIN_KEYWORDS``): both read them from the input image, never from a product.
PIXEL_CALIBRATION_KEYWORDS = (
    "SATURATE", "SATLEVEL", "GAIN", "EGAIN", "ATODGAIN", "CCDGAIN", "ATODGN?", "RDNOISE",
    "READNOIS", "READNSE?", "PHOTFLAM", "PHOTFNU", "PHOTZPT", "PHOTPLAM", "PHOTBW", "PHOTMJSR",
    "PHOTUJA2", "MAGZP*", "MAGZERO", "PHOTZP*", "FLUXMAG0", "DN_GAIN",
)  # fmt: skip
#: The header cards that say what a catalog measured, as the missions spell them: the filter
#: (``FILTER``; HST/ACS's two wheels ``FILTER1``/``FILTER2``, LCO's ``FILTER1..3``, WFPC2's
#: ``FILTNAM1``/``FILTNAM2``, DECam's, WISE's and GALEX's ``BAND``), the date (``DATE-OBS``
#: with the old ``TIME-OBS``, ``MJD-OBS`` and the other :data:`sciconv.postprocess.MJD_KEYWORDS`,
#: ``TIMESYS``, the time scale of both), the exposure (``EXPTIME``; X-ray's ``EXPOSURE``),
#: ``TELESCOP``, ``INSTRUME``, ``DETECTOR`` and ``OBJECT``; kept in an extension's
#: ``meta["primary"]`` and in catalogs (:func:`sciconv.postprocess.observation_cards`).
OBSERVATION_KEYWORDS = (
    "FILTER", "FILTER1", "FILTER2", "FILTER3", "FILTNAM1", "FILTNAM2", "BAND",
    "DATE-OBS", "TIME-OBS", "MJD-OBS", "MJD_OBS", "OBSMJD", "EXPSTART", "MJD-BEG", "DATE-BEG",
    "TIMESYS", "EXPTIME", "EXPOSURE", "TELESCOP", "INSTRUME", "DETECTOR", "OBJECT",
)  # fmt: skip
#: The photometric calibration of the pixels (glob patterns): the zero points and flux
#: conversions of :data:`PIXEL_CALIBRATION_KEYWORDS` (``PHOTZP*``, ``MAGZP*``, ``MAGZERO``,
#: ``FLUXMAG0``, HST's ``PHOTFLAM``/``PHOTFNU``/``PHOTZPT``/``PHOTPLAM``/``PHOTBW``, JWST's
#: ``PHOTMJSR``/``PHOTUJA2``): true of fluxes in the input's unit, so of its catalog, which
#: keeps them where the image products drop them.
PHOTOMETRIC_KEYWORDS = tuple(
    k for k in PIXEL_CALIBRATION_KEYWORDS if k.startswith(("PHOT", "MAGZ", "FLUXMAG"))
)
#: Every card that describes the input's pixel values: what a product whose pixels are of
#: another kind (``to_ccddata`` of probabilities or labels) must not carry.
PIXEL_VALUE_KEYWORDS = ARRAY_STATISTICS_KEYWORDS + PIXEL_CALIBRATION_KEYWORDS


def drop_keywords(header, patterns) -> list[str]:
    """Remove, in place, every card whose keyword matches one of the glob ``patterns``.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Changed in place.
    patterns : iterable of str
        Keywords, or ``fnmatch`` patterns of them (``"MAGZP*"``), in upper case as FITS
        keywords are.

    Returns
    -------
    list of str
        The keywords removed, in header order (each once).

    Examples
    --------
    >>> from astropy.io import fits
    >>> from sciconv.io import PIXEL_VALUE_KEYWORDS, drop_keywords
    >>> h = fits.Header({"DATAMAX": 6e4, "GAIN": 2.0, "MAGZPT": 25.1, "EXPTIME": 30.0})
    >>> drop_keywords(h, PIXEL_VALUE_KEYWORDS), list(h)
    (['DATAMAX', 'GAIN', 'MAGZPT'], ['EXPTIME'])
    """
    found = matching_keywords(header, patterns)
    for key in found:
        header.remove(key, ignore_missing=True, remove_all=True)
    return found


def matching_keywords(header, patterns) -> list[str]:
    """The keywords of ``header`` that match one of the glob ``patterns``, in header order
    (each once); see :func:`drop_keywords`."""
    from fnmatch import fnmatchcase

    patterns = tuple(patterns)
    return [k for k in dict.fromkeys(header.keys()) if any(fnmatchcase(k, p) for p in patterns)]


def strip_structural(header):
    header = header.copy()
    for key in [k for k in header.keys() if _STRUCTURAL.match(k)]:
        with contextlib.suppress(KeyError):
            del header[key]
    return header


def inherit_cards(header, hdul, index: int):
    """Apply the INHERIT=T convention: an extension gets the primary's cards it does not set."""
    if index == 0 or header_get(header, "INHERIT") is not True:
        return header
    try:
        primary = hdul[0].header
        for card in primary.cards:
            key = card.keyword
            if key in ("", "COMMENT", "HISTORY") or _STRUCTURAL.match(key) or key in header:
                continue
            header.append(card)
    except Exception:  # a damaged primary header: keep the extension's own cards
        pass
    return header


_WCS_KEY = re.compile(
    r"^(WCSAXES|WCSNAME|CTYPE\d+|CRPIX\d+|CRVAL\d+|CDELT\d+|CUNIT\d+|CROTA\d+|CRDER\d+|CSYER\d+"
    r"|CNAME\d+|PC\d+_\d+|CD\d+_\d+|PV\d+_\d+|PS\d+_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX"
    r"|(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)|CPDIS\d+|CQDIS\d+|DP\d+|DQ\d+|CPERR\d+|CQERR\d+"
    r"|D2IMDIS\d+|D2IM\d+|D2IMERR\d+|D2IMEXT|AXISCORR|NPOLEXT)[A-Z]?$"
    r"|^(DP|DQ|D2IM)\d+\..*$"  # record-valued cards (DQ1.NAXES, ...)
)
# Digitized Sky Survey plate solution; astropy re-expresses it as a TPD distortion (CQDISn/DQn).
_DSS_KEY = re.compile(
    r"^(AMDX\d+|AMDY\d+|PPO\d+|PLTRAH|PLTRAM|PLTRAS|PLTDECSN|PLTDECD|PLTDECM|PLTDECS"
    r"|CNPIX\d|XPIXELSZ|YPIXELSZ|PLTSCALE)$"
)

# IRAF's world attribute cards (WAT1_001 ...: a TNX/ZPX distortion), which astropy 8 also
# re-expresses as a TPD distortion; kept beside it (a product written like the image), the two
# abort any process that builds the WCS (wcslib heap corruption, QA 55)
_WAT_KEY = re.compile(r"^WAT\d_\d{3}$")


def _translated_key(key: str) -> bool:
    """A card of a plate solution or IRAF distortion that astropy turns into ``CQDISn``/``DQn``."""
    return bool(_DSS_KEY.match(key) or _WAT_KEY.match(key))


def fits_wcs(header, hdul, path: Path):
    """Celestial 2-D WCS of the image, or None (warning when a WCS was there but unusable)."""
    # A header without CTYPEn has at most a linear pixel grid: no sky WCS, nothing to warn about.
    ctypes = [header_get(header, f"CTYPE{i}") for i in (1, 2)]
    if not any(isinstance(c, str) and c.strip() for c in ctypes):
        return None
    from astropy.wcs import WCS, FITSFixedWarning

    keys = list(header.keys())
    if any(k.startswith(("CQDIS", "DQ")) for k in keys) and any(map(_translated_key, keys)):
        # DSS plate keywords or IRAF WAT cards next to their own TPD translation (what
        # `header.update(wcs.to_header())` leaves) corrupt wcslib's heap in astropy 8 and abort
        # the process. Both describe the same solution: build the WCS from the TPD one only.
        header = header.copy()
        for k in [k for k in keys if _translated_key(k)]:
            with contextlib.suppress(KeyError):
                del header[k]
    try:
        with caught("ignore", FITSFixedWarning):
            # a cube whose WCS is 2-D (WCSAXES = 2, e.g. sciconv's probability maps of a SIP
            # image): wcslib counts NAXIS axes and astropy refuses SIP/lookup tables beyond 2
            two_d = header_get(header, "NAXIS", 2) > 2 and header_get(header, "WCSAXES", 0) == 2
            w = WCS(header, fobj=hdul, relax=True, **({"naxis": 2} if two_d else {}))
            if not w.has_celestial:
                reason = f"no celestial axes (CTYPE {list(w.wcs.ctype)})"
                w = None
            else:
                lng, lat = w.wcs.lng, w.wcs.lat
                if {lng, lat} != {0, 1}:
                    reason = (
                        f"celestial axes are not the image axes 1 and 2 (lng={lng + 1}, "
                        f"lat={lat + 1})"
                    )
                    w = None
                elif not _has_scale_cards(header) and _defaulted_scale(w):
                    # astropy takes CDELTn = 1: one degree per pixel, a sky 145 degrees across
                    # for a 256 px image, and catalogs of nonsense RA/Dec without a word
                    reason = (
                        "no pixel scale (no CDELTn or CDi_j cards; astropy would take 1 degree "
                        "per pixel)"
                    )
                    w = None
                else:
                    if w.naxis > 2:
                        w = w.celestial
                    w.wcs.set()
                    ny, nx = header_get(header, "NAXIS2", 1), header_get(header, "NAXIS1", 1)
                    centre = np.array([[(nx - 1) / 2, (ny - 1) / 2]], dtype=float)
                    world = w.all_pix2world(centre, 0)
                    back = w.all_world2pix(world, 0) if np.all(np.isfinite(world)) else world
                    if not np.all(np.isfinite(back)) or np.abs(back - centre).max() > 0.01:
                        reason = (
                            "the transform is not invertible at the image centre (singular or "
                            "ill-conditioned CD/PC matrix?)"
                        )
                        w = None
    except Exception as exc:  # InvalidTransformError, VerifyError, ValueError, MemoryError...
        reason = f"astropy cannot build it ({brief(exc)})"
        w = None
    if w is None:
        warn_caller(f"{path}: WCS ignored: {reason}; pixels kept, wcs=None")
        return None
    return w


#: The cards of a 2-D WCS that state its pixel scale (without them astropy takes CDELT = 1).
SCALE_CARD = re.compile(r"^(CDELT[12]|CD[12]_[12])$")


def _has_scale_cards(header) -> bool:
    """Whether the primary WCS of ``header`` states a pixel scale (CDELT1/2 or a CD matrix; a
    DSS plate solution, which astropy turns into one)."""
    keys = list(header.keys())
    return any(SCALE_CARD.match(k) or _DSS_KEY.match(k) for k in keys)


def _defaulted_scale(w) -> bool:
    """Whether the celestial pixel scale of ``w`` is astropy's default, 1 degree (a PC matrix
    without CDELTn is a pure rotation; one that carries a scale of its own is kept)."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    scales = proj_plane_pixel_scales(w.celestial)
    return bool(np.allclose(scales, 1.0, rtol=1e-9, atol=0))


def _number(header, key: str) -> float:
    value = header_get(header, key, 0.0)
    return float(value) if is_number(value) else 0.0


def slice_wcs(wcs, header, ys: slice, xs: slice):
    """WCS and header for the pixels ``[ys, xs]``; the header's IRAF ``LTV1``/``LTV2`` shifted
    with them (DS9's "physical" coordinates stay those of the original frame) and a HISTORY
    card saying which pixels these are."""
    y0, x0 = int(ys.start or 0), int(xs.start or 0)
    if header is not None:
        header = header.copy()
        if y0 or x0 or header_get(header, "LTV1", None) is not None:
            header["LTV1"] = (_number(header, "LTV1") - x0, "original x = x - LTV1")
            header["LTV2"] = (_number(header, "LTV2") - y0, "original y = y - LTV2")
        n = (header_get(header, "NAXIS2", None), header_get(header, "NAXIS1", None))
        if y0 or x0 or (ys.stop, xs.stop) != n:
            header.add_history(
                f"sciconv cutout: rows {y0}:{ys.stop}, columns {x0}:{xs.stop} (0-based) of the "
                "original image"
            )
    if header is not None:  # the WCSs sciconv keeps no object for: a linear one, alternates
        _shift_reference_pixels(header, y0, x0)
    if wcs is None:
        return None, header
    new = wcs.slice((ys, xs))
    if header is not None:
        header = replace_wcs_cards(header, new)
    return new, header


_CRPIX_KEY = re.compile(r"^CRPIX([12])[A-Z]?$")


def _shift_reference_pixels(header, y0: int, x0: int) -> None:
    """Shift, in place, the reference pixel of every WCS of ``header`` (the primary and its
    alternates A-Z; a celestial primary is then replaced by its sliced WCS object): a cutout's
    pixels map where the original's did."""
    for key in [k for k in header.keys() if _CRPIX_KEY.match(k)]:
        if is_number(header[key]):
            header[key] = float(header[key]) - (x0 if key[5] == "1" else y0)


def _axis_cards(header, n: int, out: int) -> dict:
    """The WCS cards of FITS axis ``n`` renumbered as axis ``out``, with its diagonal PC term;
    the celestial WCS written from ``GridImage.wcs`` has only axes 1-2, in the PC form, so a
    ``CDn_n`` is kept as ``CDELTout`` (beside ``PCi_j`` wcslib ignores it)."""
    kept = {}
    # the primary WCS and its alternates (A-Z) alike: they describe the same planes (review)
    letters = ["", *sorted({k[-1] for k in header.keys() if re.fullmatch(r"CTYPE\d[A-Z]", k)})]
    for a in letters:
        for key in ("CTYPE", "CRPIX", "CRVAL", "CUNIT", "CNAME", "CRDER", "CSYER"):
            if f"{key}{n}{a}" in header:
                kept[f"{key}{out}{a}"] = (header[f"{key}{n}{a}"], header.comments[f"{key}{n}{a}"])
        if f"CD{n}_{n}{a}" in header:  # the CD matrix's term is the increment
            kept[f"CDELT{out}{a}"] = (header[f"CD{n}_{n}{a}"], header.comments[f"CD{n}_{n}{a}"])
        else:
            for key in (f"CDELT{n}{a}", f"PC{n}_{n}{a}"):
                if key in header:
                    kept[key.replace(str(n), str(out))] = (header[key], header.comments[key])
    return kept


_ALTERNATE_PLANE_KEY = re.compile(r"^(?:[A-Z]+[3-9]|(?:PC|CD|PV|PS)\d_\d|WCSAXES)[A-Z]$")


def drop_alternate_plane_cards(header) -> None:
    """Remove, in place, the alternate WCSs' (``CTYPE3A``) cards of FITS axes 3 and beyond and
    their ``WCSAXESa``: a cube written back has its planes on axis 3, whose cards
    :func:`kept_plane_cards` gives for every WCS (review: alternate A kept calling a Stokes
    axis VRAD, with 4 axes on a 3-axis file)."""
    for key in [k for k in header.keys() if _ALTERNATE_PLANE_KEY.match(k)]:
        if key.startswith(("PC", "CD", "PV", "PS")) and not any(c in "3456789" for c in key):
            continue  # the celestial axes' matrix stays
        header.remove(key, ignore_missing=True, remove_all=True)


def plane_sizes(header) -> dict[int, int]:
    """``{n: NAXISn}`` for the FITS axes 3 and beyond that ``header`` records (none: 2-D)."""
    sizes = {}
    for n in range(3, 10):
        size = header_get(header, f"NAXIS{n}")
        if isinstance(size, int) and not isinstance(size, bool):
            sizes[n] = size
    return sizes


def kept_plane_cards(header, planes: int) -> dict:
    """The WCS cards of the FITS axis that holds the ``planes`` > 1 planes of ``header``'s
    cube, as axis 3 (where a cube written back has them), else none: a cube written back
    describes the same spectral/Stokes coordinates, any other product (labels of all channels
    at once) does not. Its degenerate axes (a STOKES = 1 beside the planes; FREQ = 1 beside
    four Stokes planes) are left out, named in a HISTORY line (:func:`plane_history`): copied
    with their own numbers they labelled Stokes V as a frequency (radio QA); kept after it
    (``WCSAXES`` > ``NAXIS``) astropy's ``WCS.sub`` raises ``IndexError``. One plane (a radio
    map's degenerate axes, :func:`single_plane_header`) gets none either: products say the
    plane's coordinates in a HISTORY line and their catalogs in columns instead."""
    if header is None or planes < 2:
        return {}
    sizes = plane_sizes(header)
    live = [n for n, size in sizes.items() if size == planes]
    if math.prod(sizes.values()) != planes or len(live) != 1:
        return {}
    return _axis_cards(header, live[0], 3)


def plane_history(header) -> str | None:
    """The HISTORY line naming the world coordinates of a header's degenerate spectral/Stokes
    axes (one plane's: ``"plane: FREQ = 1.402e+09 Hz, STOKES = I"``; a Stokes cube's FREQ),
    None when it has none."""
    if header is None:
        return None
    sizes = plane_sizes(header)
    coords = _axis_coordinates(header, [n for n in range(3, 10) if sizes.get(n, 1) == 1])
    if not coords:
        return None
    parts = [
        f"{name.upper()} = {value}" if unit is None else f"{name.upper()} = {value:.10g} {unit}"
        for name, value, unit in coords
    ]
    return "plane: " + ", ".join(parts) + " (the input's axes 3+)"


def single_plane_header(header, k: int, planes: int, beams=None):
    """The header of plane ``k`` of a cube whose ``planes`` planes lie on one FITS axis n >= 3:
    that axis becomes degenerate (``NAXISn = 1``, ``CRPIXn`` and its alternates' shifted by
    ``k``), so the plane's products keep its frequency, velocity or Stokes parameter; with
    ``beams`` (:func:`sciconv.io._beams.plane_beams`, one per plane) its ``BMAJ``/``BMIN``/
    ``BPA`` are the plane's own. Any other header (no such axis, None) is returned as it is."""
    if header is None or planes < 2:
        return header
    sizes = plane_sizes(header)
    axes = [n for n, size in sizes.items() if size == planes]
    if len(axes) != 1 or math.prod(sizes.values()) != planes:
        return header
    n = axes[0]
    header = header.copy()
    header[f"NAXIS{n}"] = 1
    if beams is not None and len(beams) == planes:  # its own restoring beam (a BEAMS table)
        header["BMAJ"], header["BMIN"], header["BPA"] = (float(v) for v in beams[k])
    for key in [key for key in header.keys() if re.fullmatch(rf"CRPIX{n}[A-Z]?", key)]:
        if is_number(header[key]):
            header[key] = float(header[key]) - k
    return header


#: cards a spectral axis's conversions read (rest frequency, frames)
_SPECTRAL_KEYS = ("RESTFRQ", "RESTFREQ", "RESTWAV", "SPECSYS", "SSYSOBS", "VELOSYS", "ZSOURCE")


def _one_axis_header(header, n: int):
    """FITS axis ``n`` of ``header`` alone, as a 1-D WCS header: a cube's celestial ``CDi_j``
    beside a ``CDELT3`` makes wcslib's matrix singular (``CD3_3`` defaults to 0 there)."""
    from astropy.io import fits

    one = fits.Header({"WCSAXES": 1})
    for key in ("CTYPE", "CRVAL", "CRPIX", "CUNIT"):
        if f"{key}{n}" in header:
            one[f"{key}1"] = header[f"{key}{n}"]
    if is_number(header.get(f"CD{n}_{n}")):
        one["CDELT1"] = float(header[f"CD{n}_{n}"])
    else:
        pc = header.get(f"PC{n}_{n}", 1.0)
        cdelt = header.get(f"CDELT{n}", 1.0)
        one["CDELT1"] = float(cdelt if is_number(cdelt) else 1.0) * float(
            pc if is_number(pc) else 1.0
        )
    for key in _SPECTRAL_KEYS:
        if key in header:
            one[key] = header[key]
    return one


def plane_coordinates(header) -> list[tuple[str, object, object]]:
    """The world coordinates of a single plane's degenerate FITS axes 3 and beyond:
    ``[(name, value, unit), ...]`` with ``name`` the lower-case axis type (``"freq"``,
    ``"vrad"``, ``"stokes"``), the value in the WCS's SI unit (astropy's conversion of the
    ``CUNITn``: km/s reads m/s) or the Stokes symbol (``"I"``, ``"XX"``). Empty for a cube
    of several planes, a 2-D header or axes astropy cannot read.

    Parameters
    ----------
    header : astropy.io.fits.Header or None
        The image's header (None gives an empty list).

    Examples
    --------
    >>> from sciconv.io import plane_coordinates
    >>> from astropy.io import fits
    >>> h = fits.Header({"NAXIS": 2, "WCSAXES": 4, "CTYPE3": "FREQ", "CRVAL3": 1.4e9,
    ...                  "CDELT3": 1e6, "CRPIX3": -1.0, "CUNIT3": "Hz", "CTYPE4": "STOKES",
    ...                  "CRVAL4": 1.0, "CDELT4": 1.0, "CRPIX4": 1.0})
    >>> [(name, str(value), str(unit)) for name, value, unit in plane_coordinates(h)]
    [('freq', '1402000000.0', 'Hz'), ('stokes', 'I', 'None')]
    """
    if header is None or math.prod(plane_sizes(header).values()) != 1:
        return []
    return _axis_coordinates(header, range(3, 10))


def _axis_coordinates(header, axes) -> list[tuple[str, object, object]]:
    """:func:`plane_coordinates`' entries for the FITS ``axes`` of ``header`` (at pixel 1)."""
    from astropy.wcs import WCS

    found = []
    for n in axes:
        ctype = header_get(header, f"CTYPE{n}")
        if not isinstance(ctype, str) or not ctype.strip():
            continue
        name = ctype.strip().split("-")[0].lower()
        try:
            with caught("ignore"):
                axis = WCS(_one_axis_header(header, n))
                value = axis.pixel_to_world(0)
        except Exception:  # a plane axis astropy rejects is left out, not fatal
            continue
        if name == "stokes":
            found.append((name, str(getattr(value, "symbol", value)), None))
        else:
            found.append((name, float(axis.pixel_to_world_values(0)), axis.wcs.cunit[0]))
    return found


def _alternate_wcs_key(key: str) -> bool:
    """A card of an alternate WCS (``CTYPE1O``, ``WCSNAMEA``: a primary WCS key and a letter)."""
    if "." in key:  # a record-valued card (DP1.EXTVER, DQ1.NAXES) is never one
        return False
    return key[-1:].isalpha() and key[-1:].isupper() and bool(_WCS_KEY.match(key[:-1]))


def replace_wcs_cards(header, wcs):
    """Drop the primary WCS keywords of ``header`` and insert those of ``wcs`` (celestial 2-D;
    None: the header keeps no primary WCS). The alternate WCSs (``CTYPE1A`` ... ``CTYPE1Z``:
    HST's OPUS solution ``O``, headerlets) describe the same pixels and stay."""
    header = header.copy()
    times = {k: header.cards[k] for k in _TIME_KEYS if k in header}
    drop = [
        k
        for k in header.keys()
        if (_WCS_KEY.match(k) and not _alternate_wcs_key(k)) or _translated_key(k)
    ]
    for key in drop:
        with contextlib.suppress(KeyError):
            del header[key]
    if wcs is None:
        return header
    from astropy.wcs import FITSFixedWarning

    with caught("ignore", FITSFixedWarning):
        new_cards = wcs.to_header(relax=True)
    for card in new_cards.cards:
        if card.keyword in ("COMMENT", "HISTORY", ""):
            continue
        if card.keyword in _TIME_KEYS:  # the input's own (wcslib derives and "fixes" them)
            if card.keyword in times:
                header[card.keyword] = (times[card.keyword].value, times[card.keyword].comment)
            continue
        header[card.keyword] = (card.value, card.comment)
    return header


#: Observation-time keywords WCS headers carry: a product keeps the input's cards as they are,
#: and gains none (QA: MJD-OBS = 59628.125 appeared, wcslib's reading of an impossible
#: DATE-OBS '2021-13-45T99:00:00').
_TIME_KEYS = frozenset(
    ("DATE-OBS", "MJD-OBS", "DATE-AVG", "MJD-AVG", "DATE-BEG", "MJD-BEG", "DATE-END", "MJD-END",
     "DATEREF", "MJDREF", "MJDREFI", "MJDREFF", "TIMESYS", "TIMEUNIT", "JEPOCH", "BEPOCH",
     "TSTART", "TSTOP", "XPOSURE", "TELAPSE")
)  # fmt: skip
