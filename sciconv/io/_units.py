"""FITS ``BUNIT`` strings as astropy units, with the spellings real files use.

HST, Spitzer and many pipelines write ``ELECTRONS``, ``ELECTRONS/S``, ``COUNTS`` or ``ADU``,
which the FITS unit standard does not know; astropy's ``CCDData.read`` maps some of them
(``CCDData.known_invalid_fits_unit_strings``, ``ADU`` lower-cased). :func:`fits_unit` applies
those rules first, then the same for the plural and upper-case spellings of electrons, counts,
ADU and DN inside a compound unit, then the FITS and the generic unit grammars; a string none of
them reads stays an ``UnrecognizedUnit`` with a warning naming the file (a GridImage reads its
``BUNIT`` once, so says it once).

Radio and infrared maps write their units in capitals (``JY/BEAM`` from AIPS and CASA,
``MJY/SR``); in a capitalised FITS string ``M`` is mega, in lower case ``mjy`` milli. A flux
density per wavelength written ``erg/s/cm2/A`` (HST, SDSS, MUSE) means Angstrom, not the ampere
of strict FITS: an ``A`` that leaves a unit with an electric current beside erg or W is read as
Angstrom. A radio moment map's ``JY/BEAM.KM/S`` (or ``K.KM/S``) is a unit times a velocity,
``(Jy/beam) (km/s)``, not the ``Jy / (beam km s)`` the FITS grammar makes of it.
"""

from __future__ import annotations

import os
import re

from sciconv._warnings import caught
from sciconv.io._common import warn_caller

__all__ = ["fits_unit", "known_unit"]

# case-insensitive words of BUNIT strings -> astropy's names
_WORDS = {
    "electrons": "electron",
    "electron": "electron",
    "e-": "electron",
    "counts": "count",
    "count": "count",
    "cts": "count",
    "adu": "adu",
    "dn": "DN",
    "sec": "s",
    "s": "s",  # "ADU/S", "COUNTS/S": seconds (astropy's FITS grammar reads "S" as siemens)
    "s-": "s-",  # "ADU S-1"
    "e": "electron",  # "e/s"
    "jy": "Jy",
    "beam": "beam",
    "sr": "sr",
    "pixel": "pix",
    "pix": "pix",
    "erg": "erg",  # "ERG/S/CM2/A" (HST's FLAM)
    "cm": "cm",
    "angstrom": "Angstrom",
    "hz": "Hz",
    "km": "km",  # "JY/BEAM.KM/S": a radio moment map
    "m": "m",  # "M/S": a velocity map in capitals
}
# words whose case decides: capitals are FITS prefixes (MJY: mega), lower case mJy is milli
_CASED_WORDS = {"MJY": "MJy", "mjy": "mJy", "mJY": "mJy", "KJY": "kJy", "UJY": "uJy", "ujy": "uJy"}


def fits_unit(bunit: str, path: str | os.PathLike | None = None):
    """The astropy unit of a FITS ``BUNIT`` value (module notes).

    Parameters
    ----------
    bunit : str
        The header value.
    path : str or os.PathLike, optional
        The file, named in the warning for a unit that cannot be read.

    Returns
    -------
    astropy.units.UnitBase
        An ``UnrecognizedUnit`` (with a ``SciconvWarning``) when no rule reads it.

    Examples
    --------
    >>> str(fits_unit("ELECTRONS/S")), str(fits_unit("ADU")), str(fits_unit("MJy/sr"))
    ('electron / s', 'adu', 'MJy / sr')
    >>> str(fits_unit("COUNTS")), str(fits_unit("1e-17 erg/s/cm^2/Angstrom"))
    ('ct', '1e-17 erg / (Angstrom s cm2)')
    >>> str(fits_unit("ADU/S")), str(fits_unit("COUNTS S-1")), str(fits_unit("e/s"))
    ('adu / s', 'ct / s', 'electron / s')
    >>> str(fits_unit("JY/BEAM")), str(fits_unit("MJY/SR")), str(fits_unit("ERG/S/CM2/A"))
    ('Jy / beam', 'MJy / sr', 'erg / (Angstrom s cm2)')
    >>> str(fits_unit("JY/BEAM.KM/S")), str(fits_unit("K.KM/S"))
    ('Jy km / (beam s)', 'K km / s')
    """
    from astropy import units as u
    from astropy.nddata import CCDData

    text = str(bunit).strip()
    known = CCDData.known_invalid_fits_unit_strings
    if text in known:
        return u.Unit(known[text])
    moment = _VELOCITY_TAIL.fullmatch(text)
    if moment is not None:  # "JY/BEAM.KM/S": (Jy/beam) (km/s), a radio moment-0 map
        with caught("ignore"):  # an unread head: the whole string is said below
            head = fits_unit(moment.group(1), path)
        if not isinstance(head, u.UnrecognizedUnit):
            return head * u.Unit(moment.group(2).lower()) / u.s
    words = re.sub(r"(?<![0-9.])[A-Za-z][A-Za-z-]*", _word, text)
    for candidate, fmt in ((text, "fits"), (words, "fits"), (words, "generic")):
        unit = _parsed(candidate, fmt)
        if not isinstance(unit, u.UnrecognizedUnit):
            return _angstrom(unit, candidate, fmt)
    where = f"{os.fspath(path)}: " if path is not None else ""
    warn_caller(f"{where}BUNIT {text!r} is not a unit astropy reads; kept as an unrecognized unit")
    return u.Unit(text, parse_strict="silent")


#: A unit times a velocity, as radio moment maps write it: ``JY/BEAM.KM/S``, ``Jy/beam km/s``,
#: ``K.KM/S``. The FITS grammar reads ``a/b.c/d`` as ``a / (b c d)``; the maps mean
#: ``(a / b) (c / d)``, integrated intensity over velocity.
_VELOCITY_TAIL = re.compile(r"(.*[A-Za-z)])\s*[.* ]\s*((?i:k?m))\s*/\s*(?i:s|sec)")


def _word(match) -> str:
    word = match.group(0)
    return _CASED_WORDS.get(word) or _WORDS.get(word.lower(), word)


def _parsed(text: str, fmt: str):
    from astropy import units as u

    with caught("ignore", u.UnitsWarning):  # "multiple slashes" and the like: the unit is read
        return u.Unit(text, format=fmt, parse_strict="silent")


def _angstrom(unit, text: str, fmt: str):
    """``unit``, or with its ampere read as Angstrom when that makes erg/W a flux density."""
    from astropy import units as u

    powers = dict(zip(unit.decompose().bases, unit.decompose().powers, strict=True))
    if u.A not in powers or not re.search(r"(?i)\b(erg|w)\b", text):
        return unit
    swapped = _parsed(re.sub(r"\bA\b", "Angstrom", text), fmt)
    # per wavelength: a flux density or a surface brightness, told by equivalence (astropy 6.0
    # names no "surface brightness wav" physical type: erg/s/cm2/A/arcsec2 stayed amperes)
    per_wavelength = (u.W / u.m**3, u.W / u.m**3 / u.sr)
    return swapped if any(swapped.is_equivalent(kind) for kind in per_wavelength) else unit


def known_unit(unit):
    """``unit`` as an astropy unit, or None when it is None, not a unit, or unrecognised.

    Examples
    --------
    >>> str(known_unit("electron / s")), known_unit("furlongs per fortnight"), known_unit(None)
    ('electron / s', None, None)
    """
    from astropy import units as u

    if unit is None:
        return None
    try:
        unit = u.Unit(unit, parse_strict="silent")
    except (TypeError, ValueError):
        return None
    return None if isinstance(unit, u.UnrecognizedUnit) else unit
