"""The pixel scale an image or a file states: :func:`image_pixel_scale` (GridImage, NDData)
and :func:`read_pixel_scale` (a file's metadata, no pixels)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sciconv.io._image import GridImage, LazyImage, is_nddata
from sciconv.io._linear_scale import linear_pixel_scale
from sciconv.io._scale import PixelScale, scale_from_meta


def image_pixel_scale(image: Any) -> PixelScale | None:
    """The pixel scale an image carries: a GridImage's, an NDData's celestial WCS, or the
    length per pixel of a WCS whose axes are lengths (a lab camera's ``LINEAR`` axes in mm, a
    map's ``X``/``Y`` in metres: no celestial WCS, but a pixel size); else None.

    Parameters
    ----------
    image : GridImage, astropy.nddata.NDData or array_like
        A plain array carries no scale.

    Returns
    -------
    PixelScale or None

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage, image_pixel_scale
    >>> img = GridImage(np.zeros((2, 2, 1)), meta={"pixel_size": (0.2, 0.2), "pixel_unit": "um"})
    >>> image_pixel_scale(img), image_pixel_scale(np.zeros((2, 2)))
    (PixelScale(y=0.2, x=0.2, unit='um'), None)
    """
    if isinstance(image, GridImage):
        scale = image.pixel_scale
        if scale is None and image.wcs is None:  # a FITS header whose WCS is in lengths
            scale = linear_pixel_scale(image.header)
        return scale
    if is_nddata(image):
        return PixelScale.from_wcs(image.wcs) or linear_pixel_scale(image.wcs)
    return None


def read_pixel_scale(path: str | os.PathLike) -> PixelScale | None:
    """The pixel scale a file states, reading only its metadata (no pixels).

    Same answer as :func:`image_pixel_scale` of ``read(path)``: arcsec/pixel from a FITS
    file's celestial WCS, the length per pixel of a FITS WCS whose axes are lengths
    (``LINEAR``/``X``/``Y`` in mm, m, ...), µm/pixel from OME-TIFF, ImageJ or TIFF resolution
    tags and OME-Zarr, metres per pixel from a projected GeoTIFF; None when the file does not
    say (PNG, JPEG, a FITS file without such a WCS, a GeoTIFF in degrees).

    Parameters
    ----------
    path : str or os.PathLike
        An image file or an OME-Zarr store.

    Returns
    -------
    PixelScale or None

    Raises
    ------
    InvalidImageError
        The file is missing or not a readable image.

    Examples
    --------
    >>> from sciconv.io import read_pixel_scale
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cells.tif"
    >>> tifffile.imwrite(p, np.zeros((4, 4), "uint8"), resolution=(2e4, 2e4),
    ...                  resolutionunit="CENTIMETER")
    >>> read_pixel_scale(p)
    PixelScale(y=0.5, x=0.5, unit='um')
    """
    from sciconv.io import read  # the package imports this module: import it when called
    from sciconv.io._files import format_from_name, is_zarr

    fmt = None if is_zarr(path) else format_from_name(Path(path))
    if fmt in ("png", "jpeg"):
        return None
    if fmt == "tiff":
        from sciconv.io._files import validate_path
        from sciconv.io._tiff import tiff_scale_meta

        return scale_from_meta(tiff_scale_meta(validate_path(path)[0]))
    image = read(path, lazy=True)
    if isinstance(image.data, LazyImage):
        image.data.close()
    return image_pixel_scale(image)
