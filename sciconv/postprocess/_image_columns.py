"""The catalog columns an image's metadata gives: physical sizes, radio flux densities, the
frequency, velocity or Stokes parameter of a cube's plane, the names of its channels and the
level at which a camera's integer image is clipped."""

from __future__ import annotations

import re

import numpy as np

from sciconv.io import as_array, image_pixel_scale, is_nddata, plane_coordinates, recorded_dtype
from sciconv.postprocess._beam import (
    add_beam_columns,
    add_surface_brightness_columns,
    unit_and_header,
)
from sciconv.postprocess._observation import add_observation_columns
from sciconv.postprocess._physical import add_physical_columns
from sciconv.preprocess._saturation import saturation_level as plateau_level

__all__ = [
    "add_image_columns",
    "add_plane_columns",
    "channel_labels",
    "clip_levels",
    "image_channel_names",
]

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
    (:func:`add_observation_columns`), and the names of its channels as
    ``table.meta["channel_names"]`` (:func:`image_channel_names`; :func:`write_catalog` names a
    CSV's ``flux_mean_<name>`` columns by them). Whole-image and block-wise catalogs get the
    same.

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
    >>> img = GridImage(np.zeros((4, 4, 2), np.float32), meta={"channel_names": ["DNA", "GFP"]})
    >>> add_image_columns(Table({"area": [4]}), img).meta["channel_names"]
    ['DNA', 'GFP']
    """
    scale = image_pixel_scale(image) if pixel_scale is None else pixel_scale
    add_physical_columns(table, scale, wcs=wcs)
    add_beam_columns(table, image)
    add_surface_brightness_columns(table, image)
    add_observation_columns(table, image)  # band, night, zero point (QA 56: nights stacked)
    shape = getattr(image, "shape", None) or ()
    names = image_channel_names(image, shape[-1]) if len(shape) == 3 else None
    if names is not None:  # which flux_mean column is the marker (QA 56: flux_mean_0, _1)
        table.meta.setdefault("channel_names", names)
    return add_plane_columns(table, image)


def image_channel_names(image, channels: int) -> list[str] | None:
    """The names of the ``channels`` channels of ``image``: a GridImage's
    ``meta["channel_names"]`` (an ImageJ TIFF's ``Labels``, an OME-TIFF's ``Channel Name``), or
    None when it does not name every one of them.

    Parameters
    ----------
    image : GridImage, NDData or ndarray
        The measured image.
    channels : int
        How many channels it has.

    Returns
    -------
    list of str or None
        One name per channel.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import image_channel_names
    >>> img = GridImage(np.zeros((4, 4, 2), np.float32), meta={"channel_names": ["DNA", "GFP"]})
    >>> image_channel_names(img, 2), image_channel_names(np.zeros((4, 4, 2)), 2)
    (['DNA', 'GFP'], None)
    """
    meta = getattr(image, "meta", None)
    names = meta.get("channel_names") if hasattr(meta, "get") else None
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or len(names) != channels:
        return None
    return [str(name) for name in names]


def channel_labels(names) -> list[str] | None:
    """The labels of the flat-file columns of ``names`` (channels: ``flux_mean_<label>``): each
    name with every run of characters other than letters, digits and ``_`` made one ``_``, and
    stripped of ``_`` at both ends; None (index the columns instead) when a label is empty or
    two are the same ignoring case.

    Parameters
    ----------
    names : sequence of str or None
        The channels' names (:func:`image_channel_names`).

    Returns
    -------
    list of str or None
        One column label per name.

    Examples
    --------
    >>> from sciconv.postprocess import channel_labels
    >>> channel_labels(["DNA", "GFP 488/525", "Ki-67"])
    ['DNA', 'GFP_488_525', 'Ki_67']
    >>> channel_labels(["GFP", "gfp"]) is None, channel_labels(["DNA", " / "]) is None
    (True, True)
    """
    if names is None or isinstance(names, str):
        return None
    labels = [re.sub(r"\W+", "_", str(name)).strip("_") for name in names]
    if not all(labels) or len({label.casefold() for label in labels}) < len(labels):
        return None
    return labels


def clip_levels(image, pixels=None) -> np.ndarray | None:
    """Per channel, the value at which a camera clipped the integer image ``image`` (a 12-bit
    camera's 4095 in a 16-bit TIFF, an 8-bit one's 255), NaN for a channel that shows no clip;
    None when no channel does, or when the image is not such an image.

    The rule: the image is not FITS (a GridImage read from TIFF, PNG, Zarr, ... whose file held
    integers, or a plain integer array; a FITS image says its level in ``SATURATE``) and the
    channel's largest value forms a plateau of many pixels, as
    :func:`sciconv.preprocess.restore_saturated` finds them: a flat region whose most inner pixel
    is at least :data:`~sciconv.preprocess.MIN_PLATEAU_RADIUS` pixels from its edge (a 5 x 5
    core), not a frame spanning the image. The clipped top of a small peak is not one.

    Parameters
    ----------
    image : GridImage or ndarray
        The image as given (its file's dtype and format).
    pixels : ndarray, shape (H, W, C), optional
        Its pixels as numbers; default ``image``'s own.

    Returns
    -------
    ndarray of float, shape (C,), or None
        Each channel's clip level, NaN where it has none.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import clip_levels
    >>> image = np.full((40, 40, 2), 100, np.uint16); image[10:20, 10:20, 0] = 4095
    >>> clip_levels(image).tolist()
    [4095.0, nan]
    >>> clip_levels(image.astype(np.float32)) is None  # not integers: no clip rule
    True
    """
    meta = getattr(image, "meta", None)
    if is_nddata(image) or getattr(image, "header", None) is not None:
        return None
    if hasattr(meta, "get") and meta.get("format") == "fits":
        return None
    dtype = recorded_dtype(image) if meta is not None else getattr(image, "dtype", None)
    if dtype is None or np.dtype(dtype).kind not in "iu":
        return None
    pixels = np.asarray(as_array(image) if pixels is None else pixels, dtype=np.float64)
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    levels = np.full(pixels.shape[-1], np.nan)
    for k in range(len(levels)):
        grey = pixels[..., k]
        level = plateau_level(grey)
        if level is not None and level == np.nanmax(grey):  # at the top: nothing brighter
            levels[k] = level
    return None if np.isnan(levels).all() else levels
