"""The catalog columns an image's metadata gives: physical sizes, radio flux densities and the
frequency, velocity or Stokes parameter of a cube's plane."""

from __future__ import annotations

import numpy as np

from sciconv.io import image_pixel_scale, plane_coordinates
from sciconv.postprocess._beam import (
    add_beam_columns,
    add_surface_brightness_columns,
    unit_and_header,
)
from sciconv.postprocess._observation import add_observation_columns
from sciconv.postprocess._physical import add_physical_columns

__all__ = ["add_image_columns", "add_plane_columns"]

#: plane axis type -> IVOA UCD of its world coordinate
_PLANE_UCDS = {
    "freq": "em.freq",
    "wave": "em.wl",
    "awav": "em.wl",
    "ener": "em.energy",
    "vrad": "spect.dopplerVeloc.radio",
    "vopt": "spect.dopplerVeloc.opt",
    "velo": "spect.dopplerVeloc",
    "zopt": "src.redshift",
    "stokes": "phys.polarization.stokes",
}


def add_plane_columns(table, image):
    """Add the world coordinates of a single plane's spectral/Stokes axes (a radio map's
    degenerate ``FREQ``/``STOKES`` axes, one plane of a cube from
    :meth:`sciconv.io.GridImage.channel` or ``sciconv predict --channel K``) as constant
    columns named after the axis type (``freq`` in Hz, ``vrad`` in m/s, ``stokes`` as
    ``"I"``, ...; :func:`sciconv.io.plane_coordinates`), so catalogs of several planes stacked
    together still say which plane each object came from. A name the catalog already has, an
    image of several planes or without such axes leave the table unchanged.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog; modified in place and returned.
    image : GridImage or astropy.nddata.NDData or None
        The measured image, whose header (or NDData ``meta``) holds the axes.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from astropy.table import Table
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import add_plane_columns
    >>> header = fits.Header({"NAXIS": 3, "NAXIS3": 1, "CTYPE3": "VRAD", "CRVAL3": 1000.0,
    ...                       "CDELT3": 5000.0, "CRPIX3": 1.0, "CUNIT3": "m/s"})
    >>> img = GridImage(np.zeros((4, 4, 1), np.float32), header=header)
    >>> t = add_plane_columns(Table({"label": [1, 2]}), img)
    >>> t["vrad"].tolist(), str(t["vrad"].unit)
    ([1000.0, 1000.0], 'm / s')
    """
    _, header = unit_and_header(image)  # an NDData's meta too (radio QA: it lost the columns)
    for name, value, unit in plane_coordinates(header):
        if name in table.colnames:
            continue
        table[name] = np.full(len(table), value)  # its type with no rows too (radio QA)
        if unit is not None and str(unit):
            table[name].unit = unit
        table[name].description = f"world coordinate of the image's {name.upper()} axis"
        table[name].meta["ucd"] = _PLANE_UCDS.get(name, "meta.number")
    return table


def add_image_columns(table, image, *, pixel_scale=None, wcs=None):
    """Add every column ``image``'s metadata gives to a catalog of it: sizes in µm or arcsec
    (:func:`add_physical_columns`, with ``pixel_scale`` over the image's own), flux densities
    of a map in Jy/beam (:func:`add_beam_columns`) or MJy/sr
    (:func:`add_surface_brightness_columns`) and a plane's frequency, velocity or Stokes
    parameter (:func:`add_plane_columns`), the observation's filter, date and zero point
    (:func:`add_observation_columns`). Whole-image and block-wise catalogs get the same.

    Parameters
    ----------
    table : astropy.table.Table
        A :func:`~sciconv.postprocess.measure` catalog; modified in place and returned.
    image : GridImage or astropy.nddata.NDData or None
        The measured image: its pixel scale, unit, header and WCS.
    pixel_scale : PixelScale, dict, Quantity or None, optional
        A scale used instead of the image's own (:func:`sciconv.io.image_pixel_scale`).
        Default None.
    wcs : astropy.wcs.WCS, optional
        The image's WCS for :func:`add_physical_columns` (objects' local sizes under a
        distortion). Default None.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import add_image_columns
    >>> img = GridImage(np.zeros((4, 4, 1), np.float32), meta={"pixel_size": (0.5, 0.5),
    ...                                                        "pixel_unit": "um"})
    >>> t = add_image_columns(Table({"area": [4]}), img)
    >>> t["area_phys"].tolist(), str(t["area_phys"].unit)
    ([1.0], 'um2')
    """
    scale = image_pixel_scale(image) if pixel_scale is None else pixel_scale
    add_physical_columns(table, scale, wcs=wcs)
    add_beam_columns(table, image)
    add_surface_brightness_columns(table, image)
    add_observation_columns(table, image)  # band, night, zero point (QA 56: nights stacked)
    return add_plane_columns(table, image)
