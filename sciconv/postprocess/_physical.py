"""Object sizes in physical units (µm, arcsec) beside the pixel columns of a catalog.

One convention for every catalog sciconv writes, whatever unit the file declared its pixel size
in: lengths in micrometres (a pixel of 325 nm, 3.25e-7 m or 0.000325 mm alike), angles in
arcseconds (degrees, arcminutes, milliarcseconds), areas in their squares. Catalogs of files
from different instruments then stack (astropy ``vstack``, pandas ``concat``) into columns of
one unit; the image's own :class:`sciconv.io.PixelScale` keeps the file's unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv.errors import ConfigError
from sciconv.io import GridImage, PixelScale, image_pixel_scale, is_nddata
from sciconv.io._scale import parse_unit

__all__ = [
    "CATALOG_UNITS",
    "PHYSICAL_COLUMNS",
    "PHYSICAL_SUFFIX",
    "add_physical_columns",
    "catalog_unit",
    "in_catalog_unit",
]

#: column -> (pixel column it comes from, IVOA UCD, description); the unit is
#: :data:`CATALOG_UNITS`' for the pixel scale's kind (µm or arcsec, to the column's power), and
#: the column's description ends with it (``"area (pixels x pixel area), in um2"``).
PHYSICAL_COLUMNS: dict[str, tuple[str, str, str]] = {
    "area_phys": ("area", "phys.area", "area (pixels x pixel area)"),
    "equivalent_diameter_phys": (
        "area",
        "phys.size.diameter",
        "diameter of the circle of the same area",
    ),
    "semi_major_phys": ("semi_major", "phys.size.smajAxis", "semi-major axis"),
    "semi_minor_phys": ("semi_minor", "phys.size.sminAxis", "semi-minor axis"),
}

#: The unit of a catalog's physical columns, by the kind of the pixel scale's unit: every length
#: in micrometres, every angle in arcseconds (areas in their squares).
CATALOG_UNITS: dict[str, str] = {"length": "um", "angle": "arcsec"}

#: Catalog columns in physical units end with it (``area_phys``, ``z_phys``): writers that
#: re-express columns (:func:`sciconv.postprocess.write_geojson`) put those in
#: :func:`catalog_unit`.
PHYSICAL_SUFFIX = "_phys"


def add_physical_columns(table, pixel_scale: PixelScale | Any | None, *, wcs=None):
    """Add the sizes of :func:`sciconv.postprocess.measure` in physical units, when known.

    ``area_phys`` is ``area`` times the pixel area (:attr:`sciconv.io.PixelScale.area`:
    ``y * x``, less for a skewed WCS), in µm² for a scale of length and arcsec² for one of
    angle, whatever unit the scale is in (:data:`CATALOG_UNITS`: a file calibrated in nm or m
    gives µm² as one in µm does, a scale in degrees or mas gives arcsec²);
    ``equivalent_diameter_phys`` is the diameter of
    the circle of that area; ``semi_major_phys`` / ``semi_minor_phys`` are the semi-axes of the
    second-moment ellipse mapped through the pixel's shape (:attr:`sciconv.io.PixelScale.jacobian`:
    non-square, rotated and skewed pixels alike), or, for a table without ``orientation``, the
    pixel axes times the square root of the pixel area (exact for square pixels). Each new
    column carries its astropy unit (µm or arcsec to its power), a description that names it
    and an IVOA UCD (``col.meta["ucd"]``), and ``table.meta["PIXSCALE"]`` records the scale in
    that unit as ``"y x unit"`` (so ``area_phys = area * y * x`` for perpendicular axes).

    Given a celestial ``wcs`` with a distortion (SIP, lookup tables: an HST or JWST detector
    frame, whose pixel area varies by several per cent over the chip), each object's area and
    axes use the sky's local shape at its centre instead (the offsets between the sky positions
    of ``x +- 0.5`` and ``y +- 0.5``, astropy's ``spherical_offsets_to``); a linear WCS is exact
    with the scale alone.

    Parameters
    ----------
    table : astropy.table.Table
        A catalog with ``area`` (and optionally ``semi_major``, ``semi_minor``) in pixels.
    pixel_scale : PixelScale, dict, Quantity, GridImage, NDData or None
        The image's scale (:attr:`sciconv.io.GridImage.pixel_scale`), or the image itself (its
        scale and WCS, :func:`sciconv.io.image_pixel_scale`); None leaves the table unchanged.
    wcs : astropy.wcs.WCS, optional
        The image's WCS (``GridImage.wcs``): followed object by object when it has a
        distortion and the table has ``x`` and ``y``.

    Returns
    -------
    astropy.table.Table
        The same table (changed in place), for chaining.

    Raises
    ------
    ConfigError
        The table has no ``area`` column, or ``pixel_scale`` is not a pixel scale.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from sciconv.io import PixelScale
    >>> from sciconv.postprocess import add_physical_columns
    >>> t = add_physical_columns(Table({"area": [4, 100]}), PixelScale(0.5, 0.5, "um"))
    >>> t["area_phys"].tolist(), str(t["area_phys"].unit)
    ([1.0, 25.0], 'um2')
    >>> round(float(t["equivalent_diameter_phys"][1]), 3)
    5.642
    >>> t = add_physical_columns(Table({"area": [4]}), PixelScale(500, 500, "nm"))
    >>> t["area_phys"].tolist(), str(t["area_phys"].unit), t.meta["PIXSCALE"]
    ([1.0], 'um2', '0.5 0.5 um')
    """
    if isinstance(pixel_scale, GridImage) or is_nddata(pixel_scale):  # an image: its scale
        wcs = pixel_scale.wcs if wcs is None else wcs
        pixel_scale = image_pixel_scale(pixel_scale)
    scale = PixelScale.from_value(pixel_scale)
    if scale is None:
        return table
    if "area" not in getattr(table, "colnames", ()):
        raise ConfigError(
            "add_physical_columns needs a catalog with an 'area' column (from "
            f"sciconv.postprocess.measure); got columns {list(getattr(table, 'colnames', []))}"
        )
    scale = scale.to(catalog_unit(scale.unit))  # µm or arcsec, whatever the file declared
    unit = parse_unit(scale.unit)
    local = _local_jacobians(table, wcs, unit)  # (N, 2, 2) or None: the scale's one matrix
    pixel_area = scale.area if local is None else np.abs(np.linalg.det(local))
    area = np.asarray(table["area"], dtype=np.float64) * pixel_area
    values = {
        "area_phys": (area, unit**2),
        "equivalent_diameter_phys": (2.0 * np.sqrt(area / np.pi), unit),
    }
    if {"semi_major", "semi_minor", "orientation"} <= set(table.colnames):
        major, minor = _mapped_axes(table, scale.jacobian if local is None else local)
        values.update(semi_major_phys=(major, unit), semi_minor_phys=(minor, unit))
    else:
        for name in ("semi_major_phys", "semi_minor_phys"):
            source = PHYSICAL_COLUMNS[name][0]
            if source in table.colnames:
                axis = np.asarray(table[source], dtype=np.float64)
                values[name] = (axis * np.sqrt(pixel_area), unit)
    for name, (value, col_unit) in values.items():
        table[name] = value
        table[name].unit = col_unit
        table[name].description = f"{PHYSICAL_COLUMNS[name][2]}, in {col_unit.to_string()}"
        table[name].meta["ucd"] = PHYSICAL_COLUMNS[name][1]
    table.meta["PIXSCALE"] = f"{scale.y:.10g} {scale.x:.10g} {scale.unit}"
    return table


def catalog_unit(unit: Any) -> Any:
    """The unit sciconv's catalogs give a physical quantity of ``unit`` in: a power of a length
    in micrometres to that power, a power of an angle in arcseconds to it
    (:data:`CATALOG_UNITS`); any other unit (pixels, counts, flux) as it is.

    Parameters
    ----------
    unit : str or astropy.units.UnitBase
        The quantity's unit (``"nm2"``, ``"m"``, ``"deg"``, ``"mas2"``, ``"pix"``, ...).

    Returns
    -------
    astropy.units.UnitBase

    Raises
    ------
    ConfigError
        ``unit`` is not a unit astropy knows.

    Examples
    --------
    >>> from sciconv.postprocess import catalog_unit
    >>> [catalog_unit(x).to_string() for x in ("nm2", "m", "deg", "mas2", "pix")]
    ['um2', 'um', 'arcsec', 'arcsec2', 'pix']
    """
    from astropy import units as u

    try:
        parsed = unit if isinstance(unit, u.UnitBase) else _parsed(unit)
        bases = parsed.decompose()
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"not a unit astropy knows: {unit!r}") from exc
    if len(bases.bases) != 1 or bases.bases[0] not in (u.m, u.rad):
        return parsed
    kind = "length" if bases.bases[0] == u.m else "angle"
    return u.Unit(CATALOG_UNITS[kind]) ** bases.powers[0]


def in_catalog_unit(values: Any, unit: Any) -> tuple[Any, Any]:
    """``values`` in ``unit`` re-expressed in :func:`catalog_unit`: ``(values, unit)``.

    Parameters
    ----------
    values : array_like
        The numbers (a column's data).
    unit : str or astropy.units.UnitBase or None
        Their unit; None (no unit) gives them back as they are.

    Returns
    -------
    values : numpy.ndarray or the input
        float64 when converted.
    unit : astropy.units.UnitBase or None

    Raises
    ------
    ConfigError
        ``unit`` is not a unit astropy knows.

    Examples
    --------
    >>> from sciconv.postprocess import in_catalog_unit
    >>> values, unit = in_catalog_unit([25_191_562.0], "nm2")
    >>> round(float(values[0]), 6), unit.to_string()
    (25.191562, 'um2')
    """
    if unit is None:
        return values, None
    target = catalog_unit(unit)
    source = unit if hasattr(unit, "decompose") else _parsed(unit)
    if target == source:
        return values, target
    factor = float(source.to(target))
    return np.asarray(values, dtype=np.float64) * factor, target


def _parsed(text: Any) -> Any:
    """An astropy unit from a file's or catalog's spelling (``"µm"``, ``"micron"``, ``"Å"``:
    :func:`sciconv.io.parse_unit`'s spellings), of any kind (``"nm2"``, ``"electron / s"``)."""
    from astropy import units as u

    try:
        return parse_unit(text)  # a length or angle in any spelling sciconv reads
    except ConfigError:
        return u.Unit(str(text))  # any other kind (an area, a flux): astropy's own spelling


def _local_jacobians(table, wcs, unit) -> np.ndarray | None:
    """Each row's pixel shape on the sky at ``(x, y)``, ``(N, 2, 2)`` in ``unit`` (column 0: a
    step along x, column 1 along y), for a celestial WCS with a distortion; else None."""
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return None
    cel = wcs.celestial
    if not getattr(cel, "has_distortion", False) or not {"x", "y"} <= set(table.colnames):
        return None
    if unit.physical_type != "angle" or len(table) == 0:
        return None
    x = np.asarray(table["x"], dtype=np.float64)
    y = np.asarray(table["y"], dtype=np.float64)
    jac = np.empty((len(x), 2, 2))
    for column, (dx, dy) in enumerate(((0.5, 0.0), (0.0, 0.5))):
        start = cel.pixel_to_world(x - dx, y - dy)
        end = cel.pixel_to_world(x + dx, y + dy)
        east, north = start.spherical_offsets_to(end)  # one pixel along x (or y), on the sky
        jac[:, 0, column] = east.to_value(unit)
        jac[:, 1, column] = north.to_value(unit)
    return jac


def _mapped_axes(table, jacobian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Semi-axes of each row's ellipse (pixels; ``orientation`` in degrees from +x towards +y)
    after the linear map ``jacobian`` (one 2 x 2, or one per row): the square roots of the
    eigenvalues of ``J C J^T``."""
    a = np.asarray(table["semi_major"], dtype=np.float64)
    b = np.asarray(table["semi_minor"], dtype=np.float64)
    angle = table["orientation"]
    if getattr(angle, "unit", None) is not None:  # degrees unless the column says otherwise
        theta = angle.quantity.to_value("rad").astype(np.float64)
    else:
        theta = np.deg2rad(np.asarray(angle, dtype=np.float64))
    c, s = np.cos(theta), np.sin(theta)
    # pixel covariance C = a^2 u u^T + b^2 v v^T, u = (c, s), v = (-s, c)
    cov = np.empty((a.size, 2, 2))
    cov[:, 0, 0] = a**2 * c**2 + b**2 * s**2
    cov[:, 1, 1] = a**2 * s**2 + b**2 * c**2
    cov[:, 0, 1] = cov[:, 1, 0] = (a**2 - b**2) * c * s
    mapped = jacobian @ cov @ np.swapaxes(jacobian, -1, -2)
    eig = np.linalg.eigvalsh(mapped)  # ascending
    eig = np.clip(eig, 0.0, None)
    return np.sqrt(eig[:, 1]), np.sqrt(eig[:, 0])
