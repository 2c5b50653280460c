"""Celestial frames astropy does not read from a WCS: ecliptic and helioecliptic axes.

For ``ELON``/``ELAT`` and ``HLON``/``HLAT`` axes wcslib fills in ``RADESYS = 'ICRS'`` and
astropy's :func:`~astropy.wcs.utils.wcs_to_celestial_frame` then returns ICRS (astropy issue
6483): ``pixel_to_world`` gave the ecliptic longitude and latitude as right ascension and
declination, 12 degrees off on a QA image, in catalogs and DS9 regions alike. :func:`ecliptic_frame`
is placed first in astropy's frame mappings (:data:`astropy.wcs.utils.WCS_FRAME_MAPPINGS`, the
extension point SunPy uses for its solar frames) when :mod:`sciconv.io` is imported; it answers
only for those axes, so every other WCS reads as astropy reads it.

Examples
--------
>>> from astropy.wcs import WCS
>>> register_frames()  # done by ``import sciconv.io``
>>> w = WCS(naxis=2); w.wcs.ctype = ["ELON-TAN", "ELAT-TAN"]; w.wcs.crval = [149.0, -8.9]
>>> w.wcs.crpix = [1, 1]  # pixel (0, 0) at the reference point
>>> w.wcs.set()
>>> sky = w.pixel_to_world(0, 0)
>>> type(sky.frame).__name__, round(float(sky.icrs.dec.deg), 3)
('BarycentricMeanEcliptic', 3.466)
"""

from __future__ import annotations

import math

from astropy.wcs import utils as wcs_utils

__all__ = ["ecliptic_frame", "register_frames"]


def ecliptic_frame(wcs):
    """The astropy frame of a WCS with ecliptic (``ELON``/``ELAT``: barycentric mean ecliptic)
    or helioecliptic (``HLON``/``HLAT``: heliocentric mean ecliptic) axes, of the equinox of
    ``EQUINOX`` (J2000 when absent) and, for the latter, the ``DATE-OBS``/``MJD-OBS`` time;
    None for any other WCS.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> w = WCS(naxis=2); w.wcs.ctype = ["HLON-CAR", "HLAT-CAR"]; w.wcs.equinox = 2000.0
    >>> type(ecliptic_frame(w)).__name__, ecliptic_frame(WCS(naxis=2))
    ('HeliocentricMeanEcliptic', None)
    """
    from astropy.coordinates import BarycentricMeanEcliptic, HeliocentricMeanEcliptic
    from astropy.time import Time

    if wcs.wcs.lng < 0 or wcs.wcs.lat < 0:
        ctypes = [str(c)[:4] for c in wcs.wcs.ctype]  # lng/lat are set by wcs.set()
        if len(ctypes) < 2:
            return None
        lon, lat = ctypes[0], ctypes[1]
    else:
        lon, lat = wcs.wcs.ctype[wcs.wcs.lng][:4], wcs.wcs.ctype[wcs.wcs.lat][:4]
    kinds = {("ELON", "ELAT"): BarycentricMeanEcliptic, ("HLON", "HLAT"): HeliocentricMeanEcliptic}
    kind = kinds.get((lon.upper(), lat.upper()))
    if kind is None:
        return None
    equinox = wcs.wcs.equinox
    equinox = Time(2000.0 if math.isnan(equinox) else equinox, format="jyear")
    if kind is BarycentricMeanEcliptic:
        return kind(equinox=equinox)
    obstime = None
    if math.isfinite(wcs.wcs.mjdobs):
        obstime = Time(wcs.wcs.mjdobs, format="mjd", scale="utc")
    elif wcs.wcs.dateobs:
        obstime = Time(wcs.wcs.dateobs, scale="utc")
    return kind(equinox=equinox) if obstime is None else kind(equinox=equinox, obstime=obstime)


def register_frames() -> None:
    """Put :func:`ecliptic_frame` first in astropy's WCS-to-frame mappings (once).

    Examples
    --------
    >>> register_frames()
    >>> from astropy.wcs import utils
    >>> utils.WCS_FRAME_MAPPINGS[0] == [ecliptic_frame]
    True
    """
    mappings = wcs_utils.WCS_FRAME_MAPPINGS
    if not any(ecliptic_frame in group for group in mappings):
        mappings.insert(0, [ecliptic_frame])
