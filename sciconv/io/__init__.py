"""Read and write scientific images: FITS (plain, gzipped, tile-compressed), TIFF, PNG and JPEG.

:func:`read` turns a file into a :class:`GridImage` whose ``.data`` is channels-last ``(H, W, C)``
float32 with NaN where pixels are bad (FITS ``BLANK``, NaN, Inf), a matching boolean ``.mask``, the
FITS ``.header`` and a celestial 2-D ``.wcs`` (or None). :func:`write` writes arrays back,
carrying a FITS header and WCS over, always atomically. :func:`read_pixels` and
:func:`probe_shape` are the pixels-only readers training uses on every file of every epoch (a
fast path for plain FITS cut-outs, the same values as :func:`read`). :func:`as_array` unwraps
any image (GridImage, NDData, array) the one way every stage does. :func:`list_images` lists the
image files of a folder, :func:`image_stem` names them and :func:`pair_by_stem` pairs images
with masks.

FITS as telescopes write it
    With ``hdu=None`` the first HDU holding image pixels is read (HST, JWST and fpack files keep an
    empty primary HDU). ``BSCALE``/``BZERO``/``BLANK`` are applied here, not by astropy, so every
    astropy version gives the same float32 values. Pan-STARRS stacks and their ``.wt`` variance
    images (``BSOFTEN``/``BOFFSET``: asinh-compressed) are read linear,
    ``BOFFSET + BSOFTEN * 2 sinh(v / 1.0857)`` (``meta["scaling"] = "asinh"``). Degenerate axes
    (radio ``FREQ``/``STOKES`` of length 1) are squeezed; a cube's third axis becomes channels,
    or a stack with ``stack=True``.
    A WCS that astropy cannot build, or one without celestial axes, gives ``wcs=None`` and a
    :class:`~sciconv.errors.SciconvWarning`; the pixels are kept.

Bad pixels
    ``.mask`` (True = bad) and NaN in ``.data`` come from NaN/Inf and ``BLANK``, from a ``DQ``,
    ``MASK`` or ``MSK`` HDU next to the science HDU (HST, JWST, CCDData files, DES tiles), and
    from a mask file or array given as ``mask=``. Data-quality flags are read with astropy's
    bitmask rules (``ignore_flags="~4096"``: only bit 4096 marks a pixel bad); a ``MASK`` HDU
    that names its bit planes (Rubin/LSST ``MP_*`` cards) marks only the defect planes of
    :data:`BAD_MASK_PLANES` bad by default (``DETECTED`` is not a defect).
    Per-pixel errors come from an ``ERR``, ``UNCERT``, ``VAR``/``VARIANCE`` or
    ``IVAR``/``INVVAR`` HDU into ``.meta["uncertainty"]``; a pixel whose error is infinite or
    undefined (an inverse variance of 0: no measurement) is bad. A lazy read (``lazy=True``,
    block-wise runs) keeps the error HDU as ``.meta["uncertainty_windows"]``
    (:class:`ErrorHDU`, read window by window), so mosaic catalogs take
    their flux errors from it too.

Microscopy
    TIFF axes come from tifffile's series (``"YX"``, ``"YXS"``, ``"CYX"``, ``"ZYX"``, ...) or from
    ``axes=``; colour samples (``S``) and channels (``C``) become channels, one other axis
    (``Z``, ``T``, ``Q``, ...) becomes channels when there are no colour channels, several need
    ``stack=True``. :func:`plane_axes` says whether the metadata declare time points or depth
    planes (``T``, ``Z``): a stack to segment plane by plane, not the channels of one image;
    ``write(..., stack_axes="T")`` writes such stacks back.
    An alpha channel (RGBA, grey+alpha, a palette with a transparent colour) is dropped: its
    fully transparent pixels (alpha 0) are first NaN, no data, in every channel, so images read
    as grey or RGB (``meta["alpha"]`` says what was done, e.g. ``"dropped (fully opaque)"``).
    Palette images are expanded to RGB.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from sciconv import io
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = io.write(folder / "a.fits", np.ones((4, 5), dtype=np.float32), history="demo")
>>> img = io.read(folder / "a.fits")
>>> assert img.mask is not None  # a lazy read (lazy=True) has none
>>> img.shape, img.data.dtype.name, bool(img.mask.any())
((4, 5, 1), 'float32', False)
"""

# The package, one room per concern (imports run down this list, never up):
#   _memory, _precision   memory a read may take (cgroup, ulimit); what float32 keeps of pixels
#   _common   warnings, error text, axis plans, sections, memory check, float32 conversion
#   _header   header cards, INHERIT, structural cards, the celestial WCS and its slicing
#   _frames   the ecliptic frames astropy does not read from a WCS
#   _image    GridImage, LazyImage, as_array (what every stage takes)
#   _mapped   memory-mapped files read window by window without pages piling up in memory
#   _files    file kinds, image_stem, list_images, pair_by_stem
#   _beams    radio cubes' restoring beam per plane (CASA's BEAMS table)
#   _checksum FITS DATASUM / CHECKSUM verification
#   _fits_scaling, _fits_hdus   stored -> physical values (BSCALE/BZERO/BLANK, Pan-STARRS
#             asinh); which HDU is the image, which its mask; parse_hdu
#   _fits     the one FITS decoder and its fast path for plain files
#   _chips    the science HDUs of a multi-chip exposure (HST SCI,1/SCI,2, DECam CCDs)
#   _tiff_units, _tiff_meta, _tiff_vendor, _tiff_series   TIFF physical metadata (OME, ImageJ,
#             tags; LSM, SVS, SCN, STK, FluoView, Philips) and which series is the main image
#   _tiff, _png   TIFF (tifffile), PNG/JPEG (Pillow, plus the 16-bit colour PNG codec)
#   _mask_sources, _masks   a mask that blanks the sources; bad-pixel masks: DQ/MASK/MSK HDUs,
#             mask files, astropy bit flags, pipelines' default flags (JWST, Rubin)
#   _uncertainty_file   an error map in a file of its own (read(uncertainty=))
#   _read     read(), read_pixels(), probe_shape(): the one entry point to the readers
#   _write    write() and the FITS/TIFF/PNG writers behind it
#   _ngff_meta  NGFF metadata: levels' frames, pixel size, t/z steps (multiscale scales composed)
#   _zarr     OME-Zarr (ome-zarr-py): stores read, label groups written atomically
#   _zarr_image   write_ome_zarr: a chunked multiscale image store

from __future__ import annotations

from sciconv.errors import MissingDependencyError
from sciconv.io._common import recorded_dtype
from sciconv.io._files import (
    FITS_EXTENSIONS,
    IMAGE_EXTENSIONS,
    JPEG_EXTENSIONS,
    PNG_EXTENSIONS,
    TIFF_EXTENSIONS,
    ZARR_EXTENSIONS,
    image_stem,
    is_zarr,
    list_images,
    pair_by_stem,
    user_path,
)
from sciconv.io._fits_errors import ErrorHDU
from sciconv.io._fits_hdus import parse_hdu
from sciconv.io._frames import register_frames
from sciconv.io._header import (
    ARRAY_STATISTICS_KEYWORDS,
    OBSERVATION_KEYWORDS,
    PHOTOMETRIC_KEYWORDS,
    PIXEL_CALIBRATION_KEYWORDS,
    PIXEL_VALUE_KEYWORDS,
    UNIT_KEYWORDS,
    drop_keywords,
    plane_coordinates,
    unit_card,
)
from sciconv.io._image import GridImage, LazyImage, PixelScale, as_array, is_nddata
from sciconv.io._image_scale import image_pixel_scale, read_pixel_scale
from sciconv.io._labels import read_labels
from sciconv.io._mapped import file_map, read_mapped
from sciconv.io._masks import BAD_MASK_PLANES, MASK_EXTNAMES
from sciconv.io._precision import check_float32_precision, float32_loss
from sciconv.io._read import plane_axes, probe_shape, read, read_pixels
from sciconv.io._tiff import stored_as_channels
from sciconv.io._tiff_meta import frame_seconds
from sciconv.io._write import write
from sciconv.io._zarr import (
    ZARR_ARRAY_ATTRS,
    ome_zarr_labels,
    write_ome_zarr_labels,
)
from sciconv.io._zarr_image import write_ome_zarr

register_frames()  # ecliptic WCSs read as ecliptic, not as ICRS (astropy issue 6483)

__all__ = [
    "ARRAY_STATISTICS_KEYWORDS",
    "BAD_MASK_PLANES",
    "FITS_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "JPEG_EXTENSIONS",
    "MASK_EXTNAMES",
    "OBSERVATION_KEYWORDS",
    "PHOTOMETRIC_KEYWORDS",
    "PIXEL_CALIBRATION_KEYWORDS",
    "PIXEL_VALUE_KEYWORDS",
    "PNG_EXTENSIONS",
    "TIFF_EXTENSIONS",
    "UNIT_KEYWORDS",
    "ZARR_ARRAY_ATTRS",
    "ZARR_EXTENSIONS",
    "ErrorHDU",
    "GridImage",
    "LazyImage",
    "MissingDependencyError",
    "PixelScale",
    "as_array",
    "check_float32_precision",
    "drop_keywords",
    "file_map",
    "float32_loss",
    "frame_seconds",
    "image_pixel_scale",
    "image_stem",
    "is_nddata",
    "is_zarr",
    "list_images",
    "ome_zarr_labels",
    "pair_by_stem",
    "parse_hdu",
    "plane_axes",
    "plane_coordinates",
    "probe_shape",
    "read",
    "read_labels",
    "read_mapped",
    "read_pixel_scale",
    "read_pixels",
    "recorded_dtype",
    "stored_as_channels",
    "unit_card",
    "user_path",
    "write",
    "write_ome_zarr",
    "write_ome_zarr_labels",
]
