"""Object sizes in physical units (µm, arcsec) beside the pixel columns of a catalog."""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv.errors import ConfigError
from sciconv.io import PixelScale

__all__ = ["PHYSICAL_COLUMNS", "add_physical_columns"]

#: column -> (pixel column it comes from, IVOA UCD, description); the unit is the scale's.
PHYSICAL_COLUMNS: dict[str, tuple[str, str, str]] = {
    "area_phys": ("area", "phys.area", "area in physical units (pixels x pixel area)"),
    "equivalent_diameter_phys": (
        "area",
        "phys.size.diameter",
        "diameter of the circle of the same area, physical units",
    ),
    "semi_major_phys": ("semi_major", "phys.size.smajAxis", "semi-major axis, physical units"),
    "semi_minor_phys": ("semi_minor", "phys.size.sminAxis", "semi-minor axis, physical units"),
}


def add_physical_columns(table, pixel_scale: PixelScale | Any | None):
    """Add the sizes of :func:`sciconv.postprocess.measure` in physical units, when known.

    ``area_phys`` is ``area`` times the pixel area (:attr:`sciconv.io.PixelScale.area`:
    ``y * x``, less for a skewed WCS), in unit²; ``equivalent_diameter_phys`` is the diameter of
    the circle of that area; ``semi_major_phys`` / ``semi_minor_phys`` are the pixel axes times
    the square root of the pixel area (exact for square pixels, the usual case). Each new
    column carries its astropy unit, a description and an IVOA UCD (``col.meta["ucd"]``), and
    ``table.meta["PIXSCALE"]`` records the scale as ``"y x unit"``.

    Parameters
    ----------
    table : astropy.table.Table
        A catalog with ``area`` (and optionally ``semi_major``, ``semi_minor``) in pixels.
    pixel_scale : PixelScale, dict, Quantity or None
        The image's scale (:attr:`sciconv.io.GridImage.pixel_scale`); None leaves the table
        unchanged.

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
    >>> t = add_physical_columns(Table({"area": [4, 100]}), PixelScale(0.5, 0.5, "um"))
    >>> t["area_phys"].tolist(), str(t["area_phys"].unit)
    ([1.0, 25.0], 'um2')
    >>> round(float(t["equivalent_diameter_phys"][1]), 3)
    5.642
    """
    scale = PixelScale.from_value(pixel_scale)
    if scale is None:
        return table
    if "area" not in getattr(table, "colnames", ()):
        raise ConfigError(
            "add_physical_columns needs a catalog with an 'area' column (from "
            f"sciconv.postprocess.measure); got columns {list(getattr(table, 'colnames', []))}"
        )
    from astropy import units as u

    unit = u.Unit(scale.unit)
    area = np.asarray(table["area"], dtype=np.float64) * scale.area
    values = {
        "area_phys": (area, unit**2),
        "equivalent_diameter_phys": (2.0 * np.sqrt(area / np.pi), unit),
    }
    for name in ("semi_major_phys", "semi_minor_phys"):
        source = PHYSICAL_COLUMNS[name][0]
        if source in table.colnames:
            values[name] = (np.asarray(table[source], dtype=np.float64) * np.sqrt(scale.area), unit)
    for name, (value, col_unit) in values.items():
        table[name] = value
        table[name].unit = col_unit
        table[name].description = PHYSICAL_COLUMNS[name][2]
        table[name].meta["ucd"] = PHYSICAL_COLUMNS[name][1]
    table.meta["PIXSCALE"] = f"{scale.y:.10g} {scale.x:.10g} {scale.unit}"
    return table
