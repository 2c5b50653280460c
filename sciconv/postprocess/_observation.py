"""What a catalog measured: the band, the night and the zero point of its image.

:func:`observation_cards` collects an image's observation cards (filter, date, exposure,
telescope, instrument, object) and its photometric calibration (zero points, ``PHOTFLAM``, ...)
from its own header, then from its primary header's cards (``meta["primary"]``, kept for an
extension); :func:`add_observation_columns` puts them in a catalog's ``meta`` and adds the
constant ``filter`` and ``mjd_obs`` columns, so catalogs of several bands and nights stacked
together still say which each object came from, as ``freq``/``stokes`` do for a cube's planes
(:func:`~sciconv.postprocess.add_plane_columns`).
"""

from __future__ import annotations

import math
import re
from fnmatch import fnmatchcase

import numpy as np

from sciconv._warnings import caught
from sciconv.io import OBSERVATION_KEYWORDS, PHOTOMETRIC_KEYWORDS, is_nddata

__all__ = [
    "MJD_KEYWORDS",
    "OBSERVATION_KEYWORDS",
    "PHOTOMETRIC_KEYWORDS",
    "add_observation_columns",
    "image_headers",
    "observation_cards",
]

#: The cards ``mjd_obs`` is read from, first found first: the start of the observation as an
#: MJD (``MJD-OBS``; ``MJD_OBS``; ZTF's ``OBSMJD``; HST's and JWST's ``EXPSTART``; ``MJD-BEG``),
#: else ``DATE-OBS`` (with ``TIME-OBS`` when it holds a date only) or ``DATE-BEG`` converted.
MJD_KEYWORDS = ("MJD-OBS", "MJD_OBS", "OBSMJD", "EXPSTART", "MJD-BEG", "DATE-OBS", "DATE-BEG")

# the filter cards, by wheel set: the first set the header has names the filter
_FILTER_SETS = (("FILTER",), ("FILTER1", "FILTER2", "FILTER3"), ("FILTNAM1", "FILTNAM2"), ("BAND",))
# a wheel's empty position (ACS CLEAR1L, LCO air): no filter of a wheel set
_NO_FILTER = re.compile(r"(CLEAR|OPEN|AIR|EMPTY|NONE|N/?A)\w*", re.IGNORECASE)
# the filter column's UCD: 'instr.filter' alone is a secondary-only UCD1+ word (VOTable W06)
_FILTER_UCD = "meta.id;instr.filter"
# a FITS keyword a catalog file can hold as a card (no HIERARCH)
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")


def image_headers(image) -> tuple:
    """An image's own header and its primary header's cards, the two places a card may be.

    A GridImage's ``header`` (an NDData's ``meta``) and, for an extension of a multi-extension
    file, the cards of the file's primary header :func:`sciconv.io.read` keeps in
    ``meta["primary"]`` (None for an NDData); either may be None.

    Parameters
    ----------
    image : GridImage, astropy.nddata.NDData or array_like
        The image (a plain array has neither: ``(None, None)``).

    Returns
    -------
    tuple
        ``(header, primary)``, each a header-like mapping or None.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import image_headers
    >>> img = GridImage(np.zeros((2, 2, 1), np.float32), header=fits.Header({"BUNIT": "adu"}),
    ...                 meta={"primary": {"FILTER": "r"}})
    >>> [dict(h) for h in image_headers(img)]
    [{'BUNIT': 'adu'}, {'FILTER': 'r'}]
    >>> image_headers(np.zeros((2, 2)))
    (None, None)
    """
    header = getattr(image, "header", None)
    if header is None and is_nddata(image):
        header = image.meta
    primary = None if is_nddata(image) else (getattr(image, "meta", None) or {}).get("primary")
    return header, primary


def observation_cards(image) -> dict:
    """The cards that say which band, night and zero point ``image``'s fluxes are of.

    The :data:`OBSERVATION_KEYWORDS` (filter, ``DATE-OBS``, ``MJD-OBS``, exposure, telescope,
    instrument, object) and the photometric calibration cards (:data:`PHOTOMETRIC_KEYWORDS`:
    ``PHOTZP*``, ``MAGZP*``, ``MAGZERO``, ``FLUXMAG0``, ``PHOTFLAM``, ``PHOTPLAM``,
    ``PHOTFNU``, ``PHOTMJSR``, ...) of the image's own header, then those of its primary
    header's cards it does not set (:func:`image_headers`), in header order, values as the
    header gives them (strings stripped; blank or undefined cards left out).

    The zero points are kept, not applied: missions define them for different units and
    systems. A magnitude is ``m = ZP - 2.5 log10(flux)`` where the zero point ``ZP``
    (``PHOTZP``, ``MAGZP``, ``MAGZPT``, DECam's ``MAGZERO``) is for the flux's unit (counts,
    or counts per second: divide ``flux`` by ``EXPTIME`` where the zero point is per second), and
    ``ZP = 2.5 log10(FLUXMAG0)`` for ``FLUXMAG0``; HST's ``PHOTFLAM`` (erg/s/cm2/A per
    electron/s) gives ``m_ST = -2.5 log10(flux * PHOTFLAM) - 21.10`` and
    ``m_AB = m_ST - 5 log10(PHOTPLAM) + 18.692``; JWST's ``PHOTMJSR`` is the MJy/sr of one
    DN/s (already applied to calibrated images in MJy/sr). ``mag_err`` is
    ``2.5 / ln(10) * flux_err / flux``. sciconv writes no magnitude column itself.

    Parameters
    ----------
    image : GridImage, astropy.nddata.NDData or array_like
        The measured image (a plain array has no cards: ``{}``).

    Returns
    -------
    dict
        Keyword -> value (str, int, float or bool).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import observation_cards
    >>> header = fits.Header({"FILTER": "r", "MJD-OBS": 60300.1, "GAIN": 2.0, "PHOTZP": 28.4})
    >>> img = GridImage(np.zeros((2, 2, 1), np.float32), header=header,
    ...                 meta={"primary": {"TELESCOP": "INT", "FILTER": "g"}})
    >>> observation_cards(img)
    {'FILTER': 'r', 'MJD-OBS': 60300.1, 'PHOTZP': 28.4, 'TELESCOP': 'INT'}

    A magnitude from the kept zero point (fluxes in the image's counts):

    >>> flux = 1000.0
    >>> round(float(observation_cards(img)["PHOTZP"] - 2.5 * np.log10(flux)), 3)
    20.9
    """
    patterns = OBSERVATION_KEYWORDS + PHOTOMETRIC_KEYWORDS
    cards: dict = {}
    for header in image_headers(image):
        if header is None:
            continue
        for key in list(dict.fromkeys(header.keys())):
            name = str(key)
            if name in cards or not _KEYWORD.fullmatch(name):
                continue
            if any(fnmatchcase(name, p) for p in patterns):
                value = _card_value(header[key])
                if value is not None:
                    cards[name] = value
    return cards


def _card_value(value):
    """A card's value as a catalog's metadata holds it (Python str, int, float or bool), or
    None for a blank, undefined, non-finite or other value."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value.strip() or None
    return None


def add_observation_columns(table, image):
    """Say in a catalog which band, night and zero point its image was.

    Puts :func:`observation_cards` in ``table.meta`` (keys it does not have already: FITS
    cards, VOTable INFO elements, ECSV metadata when written by
    :func:`~sciconv.postprocess.write_catalog`) and adds two constant columns where the
    header says them, as :func:`~sciconv.postprocess.add_plane_columns` does for a cube's
    ``freq``/``stokes``: ``filter`` (str, UCD ``meta.id;instr.filter``: ``FILTER``, but
    ``BAND`` where ``FILTER`` is several words of which ``BAND`` is the first (DECam's
    Community Pipeline and DES write ``FILTER = 'r DECam SDSS c0002 6415.0 1480.0'`` with
    ``BAND = 'r'``; the whole ``FILTER`` stays in ``meta``); else the non-clear positions of
    the ``FILTER1..3`` or ``FILTNAM1/2`` wheels joined by ``+``; else ``BAND``)
    and ``mjd_obs`` (days, UCD ``time.epoch``: the first of :data:`MJD_KEYWORDS`, a
    ``DATE-OBS`` converted with :mod:`astropy.time` in the header's ``TIMESYS``, UTC by
    default). Catalogs of several bands or nights then stay told apart when stacked
    (``astropy.table.vstack``, TOPCAT); CSV files, which hold no metadata, keep the columns.
    An image of several planes (a cube of bands) gets the metadata but no columns; a name the
    table has already is left as it is. No magnitudes: see :func:`observation_cards`.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog (:func:`~sciconv.postprocess.measure`'s); modified in place and returned.
    image : GridImage, astropy.nddata.NDData or array_like
        The measured image (its header; a plain array leaves the table unchanged).

    Returns
    -------
    astropy.table.Table
        ``table``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from astropy.table import Table
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import add_observation_columns
    >>> header = fits.Header({"FILTER": "r", "DATE-OBS": "2023-12-20T02:24:00", "PHOTZP": 28.4})
    >>> img = GridImage(np.zeros((4, 4, 1), np.float32), header=header)
    >>> t = add_observation_columns(Table({"label": [1, 2]}), img)
    >>> t["filter"].tolist(), t["mjd_obs"].tolist(), t.meta["PHOTZP"]
    (['r', 'r'], [60298.1, 60298.1], 28.4)
    >>> t["mjd_obs"].meta["ucd"], str(t["mjd_obs"].unit)
    ('time.epoch', 'd')
    """
    cards = observation_cards(image)
    for key, value in cards.items():
        table.meta.setdefault(key, value)
    if _planes(image) > 1:  # a cube of bands or epochs: one value would mislead
        return table
    name = _filter_name(cards)
    if name is not None and "filter" not in table.colnames:
        table["filter"] = np.full(len(table), name)
        table["filter"].description = "the image's filter (header FILTER, FILTER1/2, BAND)"
        table["filter"].meta["ucd"] = _FILTER_UCD
    mjd = _observation_mjd(cards)
    if mjd is not None and "mjd_obs" not in table.colnames:
        table["mjd_obs"] = np.full(len(table), mjd, dtype=np.float64)
        table["mjd_obs"].unit = "d"
        table["mjd_obs"].description = "start of the image's observation, MJD (MJD-OBS, DATE-OBS)"
        table["mjd_obs"].meta["ucd"] = "time.epoch"
    return table


def _planes(image) -> int:
    """The number of planes of ``image`` (a GridImage's channels, an NDData's leading axes)."""
    shape = getattr(image, "shape", None) or np.shape(getattr(image, "data", ()))
    if is_nddata(image):
        return int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return int(shape[-1]) if len(shape) == 3 else 1


def _filter_name(cards: dict) -> str | None:
    """The filter ``cards`` name: the first wheel set present (:data:`_FILTER_SETS`), its
    positions that are not empty (``CLEAR2L``) joined by ``+``, else all of them; ``BAND``
    where ``FILTER`` is a description that starts with it (DECam: ``'r DECam SDSS c0002
    6415.0 1480.0'``, ``BAND = 'r'``)."""
    band = str(cards.get("BAND", "")).strip()
    words = str(cards.get("FILTER", "")).split()
    if band and len(words) > 1 and words[0] == band:
        return band
    for wheels in _FILTER_SETS:
        values = [str(cards[k]).strip() for k in wheels if cards.get(k) not in (None, "")]
        if not values:
            continue
        if len(wheels) == 1:
            return values[0]
        used = [v for v in values if not _NO_FILTER.fullmatch(v)]
        return "+".join(used or values)
    return None


def _observation_mjd(cards: dict) -> float | None:
    """The start of the observation as an MJD (:data:`MJD_KEYWORDS`), or None."""
    from astropy.time import Time
    from erfa import ErfaWarning

    for key in MJD_KEYWORDS:
        value = cards.get(key)
        if value is None:
            continue
        if not key.startswith("DATE"):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
            continue
        text = str(value)
        if key == "DATE-OBS" and "T" not in text and isinstance(cards.get("TIME-OBS"), str):
            text = f"{text}T{cards['TIME-OBS']}"  # the date and time in two cards (HST, JWST)
        scale = str(cards.get("TIMESYS", "UTC")).lower()
        if scale not in Time.SCALES:
            return None  # a time scale astropy does not know: no date to convert
        try:
            with caught("ignore", ErfaWarning):  # a UTC date past the leap-second table's end
                return float(Time(text, format="fits", scale=scale).mjd)
        except ValueError:  # not a FITS date ('2021-13-45T99:00:00', '20/12/98')
            continue
    return None
