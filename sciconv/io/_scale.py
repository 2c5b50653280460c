"""The physical size of a pixel: :class:`PixelScale` (arcsec from a WCS, µm from microscopy
metadata) and the unit rules it shares with the readers."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sciconv.errors import ConfigError

# length units spelled the way microscopy files spell them -> astropy's spelling
_UNIT_SPELLINGS = {"µm": "um", "\u03bcm": "um", "micron": "um", "microns": "um", "Å": "Angstrom"}


def parse_unit(unit: Any, *, name: str = "unit"):
    """An astropy unit of length or angle from a file's or a user's spelling, else ConfigError."""
    from astropy import units as u

    if isinstance(unit, u.UnitBase):
        parsed = unit
    else:
        text = str(unit).strip()
        text = _UNIT_SPELLINGS.get(text, _UNIT_SPELLINGS.get(text.lower(), text))
        try:
            parsed = u.Unit(text)
        except (ValueError, TypeError):
            parsed = None
        if parsed is None:  # "inch", "ft": astropy's imperial units, how PixelScale spells them
            try:
                with u.imperial.enable():
                    parsed = u.Unit(text)
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"{name} must be a unit of length or angle (e.g. 'um', 'arcsec'); got {unit!r}"
                ) from exc
    if parsed.physical_type not in ("length", "angle"):
        raise ConfigError(
            f"{name} must be a unit of length or angle (e.g. 'um', 'arcsec'); got {unit!r} "
            f"({parsed.physical_type})"
        )
    return parsed


@dataclasses.dataclass(frozen=True)
class PixelScale:
    """The physical size of one pixel, per axis: ``y`` and ``x`` in ``unit`` per pixel.

    Arcseconds per pixel for a sky image (from its celestial WCS), micrometres per pixel for a
    microscopy image (OME ``PhysicalSizeY/X``, ImageJ calibration, TIFF resolution tags). Pixels
    need not be square. Read it as :attr:`GridImage.pixel_scale`.

    Parameters
    ----------
    y, x : float
        Size of a pixel along the rows and along the columns, > 0.
    unit : str or astropy.units.Unit
        A unit of length (``"um"``, ``"nm"``, ``"µm"``, ``"micron"``) or angle (``"arcsec"``);
        stored as astropy spells it.
    area_ratio : float, optional
        A pixel's area over ``y * x`` (1: perpendicular axes; a skewed WCS gives less);
        :attr:`area` uses it.
    matrix : 2 x 2 array_like, optional
        The pixel's offsets in ``unit``: column 0 is a step of one pixel along x, column 1 along
        y (a celestial WCS's ``pixel_scale_matrix``, rotated and skewed as it is); None for axes
        along the pixel grid, ``diag(x, y)``. :attr:`jacobian` reads it; shapes (ellipses) are
        mapped through it.

    Raises
    ------
    ConfigError
        A size is not a positive finite number, or the unit is not a length or an angle.

    Examples
    --------
    >>> from sciconv.io import PixelScale
    >>> s = PixelScale(0.5, 0.25, "µm")
    >>> s, s.mean, s.quantity
    (PixelScale(y=0.5, x=0.25, unit='um'), 0.3535533905932738, <Quantity [0.5 , 0.25] um>)
    >>> s.to("nm")
    PixelScale(y=500.0, x=250.0, unit='nm')
    """

    y: float
    x: float
    unit: str
    #: The pixel's area over ``y * x``: ``sin`` of the angle between its axes, 1 when they are
    #: perpendicular (every microscope; a skewed WCS, e.g. HST ACS's distorted frames, < 1).
    area_ratio: float = dataclasses.field(default=1.0, repr=False, compare=False)
    #: A step of one pixel along x (column 0) and y (column 1) in ``unit``; None: ``diag(x, y)``.
    matrix: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        for axis in ("y", "x"):
            value = getattr(self, axis)
            ok = not isinstance(value, bool) and isinstance(value, (int, float, np.number))
            if not ok or not np.isfinite(value) or value <= 0:
                raise ConfigError(f"pixel scale {axis} must be a positive number; got {value!r}")
            # 12 significant digits: unit conversions then read as 500.0, not 499.99999999999994
            object.__setattr__(self, axis, float(f"{float(value):.12g}"))
        object.__setattr__(self, "unit", parse_unit(self.unit).to_string())
        ratio = self.area_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.number)):
            raise ConfigError(f"area_ratio must be a number in (0, 1]; got {ratio!r}")
        if not 0 < ratio <= 1:
            raise ConfigError(f"area_ratio must be a number in (0, 1]; got {ratio!r}")
        object.__setattr__(self, "area_ratio", float(ratio))
        if self.matrix is not None:
            try:
                m = np.asarray(self.matrix, dtype=np.float64)
            except (TypeError, ValueError):
                m = np.zeros(0)
            if m.shape != (2, 2) or not np.all(np.isfinite(m)) or np.linalg.det(m) == 0:
                raise ConfigError(f"matrix must be an invertible 2 x 2 array; got {self.matrix!r}")
            lengths = np.hypot(m[0], m[1])  # a pixel step along x, along y
            if not np.allclose(lengths, (self.x, self.y), rtol=1e-6):
                raise ConfigError(
                    f"matrix columns are {lengths[0]:.6g} and {lengths[1]:.6g} {self.unit} long, "
                    f"not the pixel's x = {self.x:.6g} and y = {self.y:.6g}"
                )
            object.__setattr__(self, "matrix", tuple(map(tuple, m.tolist())))

    @property
    def quantity(self):
        """``[y, x]`` as an :class:`astropy.units.Quantity` (unit per pixel)."""
        from astropy import units as u

        return u.Quantity([self.y, self.x], parse_unit(self.unit))  # "inch": astropy's imperial

    @property
    def area(self) -> float:
        """The area of one pixel in ``unit`` squared: ``y * x * area_ratio``."""
        return self.y * self.x * self.area_ratio

    @property
    def jacobian(self) -> np.ndarray:
        """The 2 x 2 map of a pixel offset ``(dx, dy)`` to ``unit``: :attr:`matrix`, else
        ``diag(x, y)``.

        Examples
        --------
        >>> from sciconv.io import PixelScale
        >>> PixelScale(0.5, 0.25, "um").jacobian.tolist()
        [[0.25, 0.0], [0.0, 0.5]]
        """
        if self.matrix is not None:
            return np.array(self.matrix, dtype=np.float64)
        return np.diag([self.x, self.y]).astype(np.float64)

    @property
    def mean(self) -> float:
        """Geometric mean of ``y`` and ``x``: the side of a square pixel of the same area."""
        return float(np.sqrt(self.y * self.x))

    def to(self, unit: Any) -> PixelScale:
        """The same scale in another unit of the same kind (length to length, angle to angle).

        Parameters
        ----------
        unit : str or astropy.units.Unit
            The target unit of length or angle (``"nm"``, ``"um"``/``"µm"``, ``"mas"``, ...).

        Raises
        ------
        ConfigError
            ``unit`` is not a length or angle, or not convertible (micrometres to arcseconds).

        Examples
        --------
        >>> from sciconv.io import PixelScale
        >>> PixelScale(0.1, 0.1, "arcsec").to("mas")
        PixelScale(y=100.0, x=100.0, unit='mas')
        """
        target = parse_unit(unit)
        try:
            y, x = self.quantity.to_value(target)
        except Exception as exc:  # astropy's UnitConversionError
            raise ConfigError(
                f"a pixel scale in {self.unit} cannot be expressed in {target.to_string()} "
                f"({parse_unit(self.unit).physical_type} vs {target.physical_type})"
            ) from exc
        matrix = None if self.matrix is None else self.jacobian * (float(y) / self.y)
        return PixelScale(float(y), float(x), target, self.area_ratio, matrix)

    def to_dict(self) -> dict:
        """``{"y": ..., "x": ..., "unit": ...}``: JSON for run configs and model metadata.

        Examples
        --------
        >>> from sciconv.io import PixelScale
        >>> PixelScale.from_value(PixelScale(2.0, 2.0, "um").to_dict())
        PixelScale(y=2.0, x=2.0, unit='um')
        """
        return {"y": self.y, "x": self.x, "unit": self.unit}

    @classmethod
    def from_value(cls, value: Any) -> PixelScale | None:
        """A :class:`PixelScale` from what users and metadata hold; None stays None.

        Parameters
        ----------
        value : PixelScale, dict, astropy Quantity, str, (y, x, unit) or None
            A dict as :meth:`to_dict` writes; a scalar Quantity (square pixels) or one of two
            values ``[y, x]``; a string astropy reads as a Quantity (``"0.65 um"``).

        Raises
        ------
        ConfigError
            Anything else, a number without a unit among it.

        Examples
        --------
        >>> from sciconv.io import PixelScale
        >>> import astropy.units as u
        >>> PixelScale.from_value(0.65 * u.um), PixelScale.from_value("0.2 arcsec").unit
        (PixelScale(y=0.65, x=0.65, unit='um'), 'arcsec')
        """
        from astropy import units as u

        if value is None or isinstance(value, PixelScale):
            return value
        try:
            if isinstance(value, dict):
                return cls(value["y"], value["x"], value["unit"])
            if isinstance(value, str):
                value = u.Quantity(value)
            if isinstance(value, u.Quantity):
                v = np.atleast_1d(value.value).astype(float)
                if v.shape in ((1,), (2,)):
                    return cls(float(v[0]), float(v[-1]), value.unit)
            elif isinstance(value, (tuple, list)) and len(value) == 3:
                return cls(value[0], value[1], value[2])
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                "a pixel scale must be a PixelScale, {'y', 'x', 'unit'}, a Quantity such as "
                f"0.65 * u.um, or (y, x, unit); got {value!r}"
            ) from exc
        raise ConfigError(
            "a pixel scale must be a PixelScale, {'y', 'x', 'unit'}, a Quantity such as "
            f"0.65 * u.um, or (y, x, unit); got {value!r} (a number needs its unit)"
        )

    @classmethod
    def from_wcs(cls, wcs: Any) -> PixelScale | None:
        """Arcseconds per pixel of a celestial WCS (``proj_plane_pixel_scales``); else None.

        Non-square pixels give different ``y`` and ``x``; a WCS that is not celestial (solar,
        spectral), whose axes are a planet's longitude and latitude (``PMLN``/``PMLT``), or
        whose pixel scale cannot be computed gives None.

        Parameters
        ----------
        wcs : astropy.wcs.WCS or None
            The image's WCS (None gives None).

        Examples
        --------
        >>> from sciconv.io import PixelScale
        >>> from astropy.wcs import WCS
        >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        >>> w.wcs.cdelt = [-0.1 / 3600, 0.2 / 3600]
        >>> PixelScale.from_wcs(w)
        PixelScale(y=0.2, x=0.1, unit='arcsec')
        """
        from astropy import units as u
        from astropy.wcs.utils import proj_plane_pixel_area, proj_plane_pixel_scales

        if wcs is None or not getattr(wcs, "has_celestial", False):
            return None
        try:
            cel = wcs.celestial
            if _on_a_body(cel):  # degrees of a planet's longitude, not of the sky (QA)
                return None
            sx, sy = proj_plane_pixel_scales(cel)[:2]
            ratio = float(proj_plane_pixel_area(cel) / (sx * sy))  # |det| over the axes' lengths
            units = [str(cel.wcs.cunit[i]) or "deg" for i in range(2)]
            sx = (sx * u.Unit(units[0])).to_value(u.arcsec)
            sy = (sy * u.Unit(units[1])).to_value(u.arcsec)
            rows = [u.Unit(unit).to(u.arcsec) for unit in units]  # world axis i per pixel
            matrix = np.asarray(cel.pixel_scale_matrix, dtype=np.float64)[:2, :2]
            matrix = matrix * np.asarray(rows, dtype=np.float64)[:, None]
            return cls(float(sy), float(sx), "arcsec", ratio if 0 < ratio < 1 else 1.0, matrix)
        except Exception:  # singular matrix, odd units: the scale is unknown, not an error
            return None


def _on_a_body(wcs) -> bool:
    """Whether a celestial WCS's degrees are longitude and latitude on a body (a planet, the
    Sun, the Earth), not angles on the sky (helioprojective ``HPLN`` is)."""
    return off_sky_frame(wcs) not in (None, HELIOPROJECTIVE)


#: Celestial axis types (a CTYPE's letters before the dashes) whose longitude and latitude are
#: directions on the sky, which ICRS ra/dec can give: equatorial, galactic, ecliptic,
#: supergalactic and helioecliptic (registered by :mod:`sciconv.io`).
SKY_AXES = {"RA": "DEC", "GLON": "GLAT", "ELON": "ELAT", "SLON": "SLAT", "HLON": "HLAT"}

#: The frame :func:`off_sky_frame` names for helioprojective axes (``HPLN``/``HPLT``,
#: ``Solar-X``/``Solar-Y``): angles on the sky seen from the observer, not ICRS directions.
HELIOPROJECTIVE = "helioprojective"

#: Solar System bodies by the two letters of their ``xxLN``/``xxLT`` axis types (IAU
#: convention, as astropy reads them: ``MALN`` is Mars longitude).
BODY_CODES = {
    "ME": "Mercury",
    "VE": "Venus",
    "EA": "Earth",
    "SE": "Moon",
    "MA": "Mars",
    "JU": "Jupiter",
    "SA": "Saturn",
    "UR": "Uranus",
    "NE": "Neptune",
}

_SOLAR_AXES = dict.fromkeys(("HPLN", "HPLT", "SOLX", "SOLY", "SOLAR"), HELIOPROJECTIVE)
_SOLAR_AXES |= dict.fromkeys(("HGLN", "HGLT"), "heliographic Stonyhurst")
_SOLAR_AXES |= dict.fromkeys(("CRLN", "CRLT"), "heliographic Carrington")


def axis_code(ctype: str) -> str:
    """A CTYPE's axis type: its letters before the projection's dashes, upper case.

    Examples
    --------
    >>> from sciconv.io._scale import axis_code
    >>> axis_code("RA---TAN"), axis_code("hpln-tan"), axis_code("Solar-X")
    ('RA', 'HPLN', 'SOLAR')
    """
    return str(ctype).strip().upper().split("-")[0][:5]


def off_sky_frame(wcs) -> str | None:
    """The frame of a WCS's longitude and latitude axes when they are not directions on the
    sky, else None (the axis types of :data:`SKY_AXES`, or no such axes).

    The answer depends on the axis types alone, never on which frames astropy can transform
    to ICRS (SunPy, once imported, turns a helioprojective image into 3-D positions near the
    Sun, whose ICRS directions are seen from the barycentre: no sky position). Not on the sky:
    helioprojective (``HPLN``/``HPLT``, ``Solar-X``/``Solar-Y``), heliographic Stonyhurst
    (``HGLN``) and Carrington (``CRLN``), a body's longitude and latitude (``MALN``: Mars,
    ``SELN``: the Moon, any ``xxLN``; ``TLON``: the Earth) and any other longitude axis.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The WCS (its celestial axes, else its first two).

    Returns
    -------
    str or None
        ``"helioprojective"``, ``"heliographic Stonyhurst"``, ``"heliographic Carrington"``,
        ``"Mars body-fixed"``, ...; None for sky axes.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> from sciconv.io._scale import off_sky_frame
    >>> w = WCS(naxis=2); w.wcs.ctype = ["HPLN-TAN", "HPLT-TAN"]
    >>> off_sky_frame(w)
    'helioprojective'
    >>> w.wcs.ctype = ["MALN-CAR", "MALT-CAR"]; off_sky_frame(w)
    'Mars body-fixed'
    >>> w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]; off_sky_frame(w) is None
    True
    """
    ctypes = [str(c) for c in wcs.wcs.ctype]
    lng, lat = wcs.wcs.lng, wcs.wcs.lat  # set by wcs.set(); -1 before it
    if lng >= 0 and lat >= 0:
        lon, lat = axis_code(ctypes[lng]), axis_code(ctypes[lat])
    elif len(ctypes) >= 2:
        lon, lat = axis_code(ctypes[0]), axis_code(ctypes[1])
    else:
        return None
    if SKY_AXES.get(lon) == lat or SKY_AXES.get(lat) == lon:
        return None
    for code in (lon, lat):
        if code in _SOLAR_AXES:
            return _SOLAR_AXES[code]
    if lon in ("TLON", "TLAT"):
        return "Earth body-fixed"
    if len(lon) == 4 and lon[2:] in ("LN", "LT"):
        return f"{BODY_CODES.get(lon[:2], lon[:2] + 'LN/' + lon[:2] + 'LT')} body-fixed"
    if not lon and not lat:
        return None  # no axis types at all: nothing says these are not on the sky
    return f"{lon}/{lat}"


def scale_from_meta(meta: dict) -> PixelScale | None:
    """The scale a reader left in ``meta["pixel_size"]`` / ``meta["pixel_unit"]``, or None."""
    size, unit = meta.get("pixel_size"), meta.get("pixel_unit")
    if size is None or unit in (None, "", "pixel", "pixels"):
        return None
    try:
        return PixelScale(float(size[0]), float(size[1]), unit)
    except (ConfigError, TypeError, ValueError, IndexError):
        return None
