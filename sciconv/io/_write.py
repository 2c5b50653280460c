"""The writers behind :func:`sciconv.io.write`: FITS with header, WCS and HISTORY; (OME-)TIFF; PNG.

Each writes into a temporary file that :func:`sciconv._atomic.atomic_output` moves into place,
so an interrupted write never leaves a partial file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._atomic import atomic_output, refusal_reason
from sciconv._validation import look_up_option, refuse_swapped
from sciconv._warnings import caught
from sciconv.errors import ConfigError, InvalidImageError, WriteError
from sciconv.io._common import (
    astropy_fits,
    brief,
    fits_output,
    fits_text,
    history_lines,
    looks_channels_first,
    warn_caller,
)
from sciconv.io._files import check_name_length, user_path
from sciconv.io._fits_scaling import asinh_history
from sciconv.io._header import (
    ARRAY_STATISTICS_KEYWORDS,
    PIXEL_VALUE_KEYWORDS,
    UNIT_KEYWORDS,
    drop_alternate_plane_cards,
    drop_keywords,
    kept_plane_cards,
    matching_keywords,
    plane_history,
    replace_wcs_cards,
    strip_structural,
)
from sciconv.io._image import GridImage, LazyImage, as_array, is_nddata
from sciconv.io._png import png_encode
from sciconv.io._pyramid import is_pyramidal, plane_layout, tiff_layout, write_pyramid
from sciconv.io._tiff import imagej_hyperstack, resolution_tags, resolution_um, z_step_um

WRITE_FORMATS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".fit.gz": "fits",
    ".fts.gz": "fits",
    ".fits.fz": "fits-compressed",
    ".fz": "fits-compressed",
    ".ome.tif": "ome-tiff",
    ".ome.tiff": "ome-tiff",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
}


def carries_metadata(value) -> bool:
    if isinstance(value, GridImage):
        return value.header is not None or value.wcs is not None
    return bool(len(value)) if hasattr(value, "__len__") else True


def validate_array(array, path: Path, *, lead: int = 0, tiff: bool = False):
    """The array as numpy, ``(H, W)`` or ``(H, W, C)`` after ``lead`` stack axes; bool as uint8;
    a masked array's masked pixels NaN (:func:`sciconv.io.as_array`).

    With ``tiff``, an image that :func:`write_pyramid` writes (:func:`is_pyramidal`) held outside
    memory (a zarr or dask array, a :class:`LazyImage`) is returned as it is, unread (a bool one
    is converted band by band as it is written); a memory map stays a memory map.
    """
    if isinstance(array, LazyImage) and not (tiff and not lead and is_pyramidal(array.shape)):
        array = np.asarray(array)  # its read errors name the file: raised as they are
    try:
        data = as_array(array)
        keep = (
            tiff
            and not lead
            and not isinstance(data, np.ndarray)
            and all(hasattr(data, name) for name in ("shape", "dtype", "__getitem__"))
            and is_pyramidal(tuple(data.shape))
        )
        arr = data if keep else np.asarray(data)
    except Exception as exc:
        raise InvalidImageError(
            f"array cannot be converted to numpy ({brief(exc)})", path=path
        ) from exc
    dtype, shape = np.dtype(arr.dtype), tuple(int(n) for n in arr.shape)
    if dtype.kind not in "biuf":
        raise InvalidImageError(
            f"array dtype {dtype} cannot be written as an image (use bool, int, uint or float)",
            path=path,
        )
    if len(shape) - lead not in (2, 3):
        what = "(H, W) or (H, W, C)" if not lead else f"({lead} stack axes, H, W[, C])"
        raise InvalidImageError(f"array must be {what}; got shape {shape}", path=path)
    if 0 in shape:
        raise InvalidImageError(f"array has no pixels (shape {shape})", path=path)
    if looks_channels_first(shape[lead:]):
        # numpy's (C, H, W), as tifffile and astropy give a cube: written as W planes of C x H
        raise InvalidImageError(
            f"array of shape {shape} looks channel-first (C, H, W); images are written from "
            "(H, W) or (H, W, C): pass np.moveaxis(array, -3, -1)",
            path=path,
        )
    if dtype.kind == "b" and isinstance(arr, np.ndarray):
        arr = arr.astype(np.uint8)
    return arr


def output_header(
    arr: np.ndarray,
    like,
    header,
    history: list[str],
    path: Path,
    *,
    like_planes: bool = True,
    like_pixels: bool | None = None,
    own_pixels: bool = False,
):
    fits = astropy_fits()
    import sciconv

    out = fits.Header()
    wcs = None
    like_shape = None
    planes = int(arr.shape[-1]) if arr.ndim == 3 else 1
    if like is not None:
        if isinstance(like, GridImage):
            if like.header is not None:
                out = like.header.copy()
            wcs = like.wcs
            like_shape = like.shape[-3:-1]
        elif isinstance(like, fits.Header):
            out = like.copy()
        else:
            raise ConfigError(
                f"like must be a GridImage or an astropy.io.fits.Header; got {type(like).__name__}",
                path=path,
            )
    out = strip_structural(out)
    # reading applied INHERIT = T (the primary's cards are here); the output is a primary HDU
    out.remove("INHERIT", ignore_missing=True, remove_all=True)
    if wcs is not None:
        tables = ("cpdis1", "cpdis2", "det2im1", "det2im2")
        if any(getattr(wcs, name, None) is not None for name in tables):
            warn_caller(
                f"{path}: the WCS lookup-table distortions (CPDIS/D2IM) of like= cannot be written "
                "to a single-HDU file; only the core WCS and SIP terms were kept",
                "sciconv",  # the user's call, also through write_products
            )
        # the planes of a cube written back plane for plane keep their spectral/Stokes axis
        kept = (
            kept_plane_cards(like.header, planes)
            if like_planes and isinstance(like, GridImage)
            else {}
        )
        out = replace_wcs_cards(out, wcs)
        if kept:
            drop_alternate_plane_cards(out)
            out.update(kept)
            out["WCSAXES"] = max(int(k.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")[-1]) for k in kept)
    dropped = _pixel_value_cards(out, like, arr, like_pixels=like_pixels, own=own_pixels)
    if like_shape is not None and tuple(like_shape) != tuple(arr.shape[:2]):
        warn_caller(
            f"{path}: array is {arr.shape[0]} x {arr.shape[1]} pixels but like= is "
            f"{like_shape[0]} x {like_shape[1]}; its WCS was copied unchanged"
        )
    if header is not None:
        items = header.cards if isinstance(header, fits.Header) else None
        try:
            if items is not None:
                for card in items:
                    if card.keyword in ("HISTORY", "COMMENT"):
                        out.add_history(
                            card.value
                        ) if card.keyword == "HISTORY" else out.add_comment(card.value)
                    else:
                        out[card.keyword] = (card.value, card.comment)
            elif isinstance(header, dict):
                for key, value in header.items():
                    out[key] = value
            else:
                raise ConfigError(
                    "header must be a dict or an astropy.io.fits.Header; "
                    f"got {type(header).__name__}",
                    path=path,
                )
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"invalid header card ({brief(exc)})", path=path) from exc
        out = strip_structural(out)
    out.add_history(f"Written by sciconv {sciconv.__version__}")
    asinh = asinh_history(like.meta) if isinstance(like, GridImage) else None
    if asinh is not None:  # Pan-STARRS pixels read linear: BSOFTEN/BOFFSET were left out
        out.add_history(asinh)
    if dropped:
        out.add_history(f"the input's {', '.join(dropped)} left out: not true of these pixels")
    # (its class probabilities too: review; a header of several planes names none)
    plane = plane_history(like.header) if isinstance(like, GridImage) else None
    if plane is not None:  # which plane of a cube (its frequency, velocity, Stokes)
        out.add_history(plane)
    for line in history:
        out.add_history(fits_text(line))
    return out


def _pixel_value_cards(out, like, arr, *, like_pixels: bool | None, own: bool) -> list[str]:
    """Make, in place, the cards of ``out`` (``like``'s) that describe pixel values true of
    ``arr``; return the keywords dropped (for a HISTORY line).

    The one decision of what a product written ``like`` an image keeps of its pixel values.
    Pixels of ``like``'s kind (``like_pixels``; by default float arrays: a cutout, a scaled or
    background-subtracted image) keep its ``BUNIT`` and calibration
    (:data:`~sciconv.io.PIXEL_CALIBRATION_KEYWORDS`: a gain, a zero point, a saturation
    level hold for any pixels in the same unit, and the caller who writes such pixels like the
    image says they are in its unit); pixels of another kind (integer and bool arrays: label
    maps, masks; ``like_pixels=False``: probabilities) keep neither (QA: CCDData read instance
    ids as ADU; DS9 and IRAF took a probability map's copied DATAMIN = 850 for its valid range).
    The array statistics (``DATAMIN``/``DATAMAX`` ...) hold for the input's own values only:
    kept when ``arr`` holds them (``own``, or equal where not NaN), else dropped (QA:
    ``write(path, img.data * 2, like=img)`` kept the old ``DATAMAX``).
    """
    kind = np.dtype(arr.dtype).kind in "fc" if like_pixels is None else bool(like_pixels)
    if not kind:
        drop_keywords(out, UNIT_KEYWORDS)  # BUNIT, AIA's PIXLUNIT
        return drop_keywords(out, PIXEL_VALUE_KEYWORDS)
    dropped = []
    if not own and matching_keywords(out, ARRAY_STATISTICS_KEYWORDS):
        if not _same_values(arr, like):
            dropped = drop_keywords(out, ARRAY_STATISTICS_KEYWORDS)
    if isinstance(like, GridImage):  # a header like= keeps its own BUNIT as it is
        _set_unit(out, like)
    return dropped


def _same_values(arr, like) -> bool:
    """Whether ``arr`` holds ``like``'s pixel values (a GridImage's in memory, in its shape or
    with the channel axis of one channel dropped), NaN allowed where ``like`` has a value (its
    masked pixels as :func:`as_array` writes them)."""
    data = like.data if isinstance(like, GridImage) else None
    if not isinstance(data, np.ndarray) or not isinstance(arr, np.ndarray):
        return False  # a header's or a lazy image's pixels are not at hand: not shown equal
    if arr.shape != data.shape:
        if (*arr.shape, 1) != data.shape:
            return False
        arr = arr[..., None]
    equal = arr == data
    if np.dtype(arr.dtype).kind == "f":
        equal |= np.isnan(arr)
    return bool(equal.all())


def _set_unit(out, like: GridImage) -> None:
    """``BUNIT`` of pixels of ``like``'s kind: the image's unit (an NDData's, which its copied
    header may contradict: QA, SAMP sent 'adu' for electron/s)."""
    drop_keywords(out, UNIT_KEYWORDS)  # BUNIT, AIA's PIXLUNIT
    if like.meta.get("bunit"):  # as the file (or the NDData's unit) spells it
        out["BUNIT"] = str(like.meta["bunit"])
    elif like.unit is not None:
        try:
            out["BUNIT"] = like.unit.to_string("fits")
        except ValueError:  # no FITS spelling (electron): astropy's, which read() takes back
            out["BUNIT"] = like.unit.to_string()


def write_fits(tmp: Path, arr: np.ndarray, header, *, compressed: bool, path: Path) -> None:
    fits = astropy_fits()
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.byteorder not in ("=", "|", "<" if np.little_endian else ">"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    data = arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
    if data.ndim == 3:
        data = np.moveaxis(data, -1, 0)
    data = np.ascontiguousarray(data)
    try:
        if compressed:
            if data.dtype.kind in "iu" and data.dtype.itemsize == 8:
                raise InvalidImageError(
                    "tile-compressed FITS cannot store 64-bit integers; write .fits instead",
                    path=path,
                )
            kwargs = {"compression_type": "GZIP_2"}
            if data.dtype.kind == "f":
                kwargs["quantize_level"] = 0.0  # lossless for floats
            hdu = fits.CompImageHDU(data=data, header=header, **kwargs)
            hdul = fits.HDUList([fits.PrimaryHDU(), hdu])
        else:
            hdul = fits.HDUList([fits.PrimaryHDU(data=data, header=header)])
        with caught("ignore", fits.verify.VerifyWarning), fits_output(tmp, path) as dest:
            hdul.writeto(dest, output_verify="silentfix", checksum=False)
    except InvalidImageError:
        raise
    except OSError as exc:  # full disk, quota, read-only folder: the target, not the .part file
        reason = refusal_reason(exc) or exc.strerror or brief(exc)
        raise WriteError(
            f"cannot write FITS ({reason}); nothing was written",
            path=path,
        ) from exc
    except Exception as exc:
        raise InvalidImageError(f"cannot write FITS ({brief(exc)})", path=path) from exc


def write_tiff(
    tmp: Path,
    arr: np.ndarray,
    history: list[str],
    stack_axes: str = "",
    like=None,
    channel_names: list[str] | None = None,
) -> None:
    """A plain TIFF; ``like``'s pixel size (a microscope's, in µm) as resolution tags, the
    channel names and a stack's Z step in the JSON description (``"channel_names"``,
    ``"z_spacing_um"``, which :func:`read` takes). Tiled and pyramidal (:func:`write_pyramid`)
    when :func:`is_pyramidal`."""
    import tifffile

    import sciconv

    meta: dict[str, Any] = {"software": f"sciconv {sciconv.__version__}"}
    if history:
        meta["history"] = history
    source = like.meta if isinstance(like, GridImage) else {}
    if channel_names is None:  # like's, when one per channel written (as OME-TIFF; QA55 #6)
        names = source.get("channel_names")
        n_chan = arr.shape[-1] if arr.ndim == len(stack_axes) + 3 else 1
        if isinstance(names, (list, tuple)) and len(names) == n_chan > 1:
            channel_names = [str(n) for n in names]
    if channel_names is not None:
        meta["channel_names"] = channel_names
    resolution = resolution_tags(source)
    z_step = z_step_um(source) if resolution and "Z" in stack_axes else None
    if z_step is not None:  # an ImageJ Z-stack's step, say
        meta["z_spacing_um"] = z_step
    interval = source.get("time_interval") if "T" in stack_axes else None
    if interval is not None:  # a movie's frame interval (seconds)
        meta["time_interval_s"] = float(interval)
    if is_pyramidal(arr.shape, stack_axes):
        write_pyramid(tmp, arr, ome=False, metadata=meta, resolution=resolution)
        return
    data, axes, photometric, extra = tiff_layout(arr, stack_axes)
    if source.get("imagej") and stack_axes:
        hyperstack = imagej_hyperstack(data, axes, arr.dtype, source, meta, extra.get("shape"))
        if hyperstack is not None:  # an ImageJ input's stack: Fiji reads T, Z and their steps
            data, ij_meta = hyperstack
            tifffile.imwrite(
                tmp, data, imagej=True, metadata=ij_meta, software=meta["software"], **extra,
                **resolution_um(source),
            )  # fmt: skip
            return
    extra.update(resolution)
    tifffile.imwrite(tmp, data, photometric=photometric, metadata={"axes": axes, **meta}, **extra)


def write_ome_tiff(
    tmp: Path,
    arr: np.ndarray,
    like,
    history: list[str],
    stack_axes: str = "",
    channel_names: list[str] | None = None,
) -> None:
    """OME-TIFF through tifffile: axes, ``like``'s pixel size, unit and (matching) channel names.
    Tiled and pyramidal (:func:`write_pyramid`, the levels as SubIFDs) when :func:`is_pyramidal`."""
    import tifffile

    import sciconv

    source = like.meta if isinstance(like, GridImage) else {}
    meta: dict[str, Any] = {}
    unit = str(source.get("pixel_unit") or "µm")
    if source.get("pixel_size") is not None:
        dy, dx = (float(v) for v in source["pixel_size"])
        meta.update(
            PhysicalSizeX=dx, PhysicalSizeXUnit=unit, PhysicalSizeY=dy, PhysicalSizeYUnit=unit
        )
    if history:
        meta["Description"] = "\n".join(history)
    pyramid = is_pyramidal(arr.shape, stack_axes)
    if pyramid:
        data, extra = None, {}
        axes, photometric = plane_layout(arr.shape, arr.dtype)
    else:
        data, axes, photometric, extra = tiff_layout(arr, stack_axes)
    if "Z" in axes and source.get("z_spacing") is not None:
        meta.update(PhysicalSizeZ=float(source["z_spacing"]), PhysicalSizeZUnit=unit)
    if "T" in axes and source.get("time_interval") is not None:
        meta.update(TimeIncrement=float(source["time_interval"]), TimeIncrementUnit="s")
    n_chan = arr.shape[-1] if "C" in axes or "S" in axes else 1
    names = channel_names if channel_names is not None else source.get("channel_names")
    if names is not None and len(names) == n_chan:
        meta["Channel"] = {"Name": [str(n) for n in names]}
    software = f"sciconv {sciconv.__version__}"
    meta["UUID"] = ome_uuid(arr, {"axes": axes, **meta})  # tifffile's own: uuid1, random
    # the pixel size as baseline resolution tags too: readers that ignore OME-XML (ImageJ
    # without Bio-Formats, PIL) saw it on pyramids only (QA52 valid, note)
    resolution = resolution_tags(source)
    if pyramid:
        write_pyramid(tmp, arr, ome=True, metadata=meta, resolution=resolution, software=software)
        return
    tifffile.imwrite(
        tmp,
        data,
        photometric=photometric,
        metadata={"axes": axes, **meta},
        ome=True,
        software=software,
        **{**resolution, **extra},
    )


def ome_uuid(arr, meta: dict) -> str:
    """The OME-XML ``UUID`` of an OME-TIFF product: a name-based UUID (``uuid5``) of its
    metadata (the description, hence the HISTORY: model, settings, input digest), shape,
    dtype and, for an array in memory, its pixels, so identical runs write identical bytes
    (tifffile's default, a ``uuid1``, holds the time and the host's MAC address).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 4), np.uint8)
    >>> ome_uuid(a, {"axes": "YX"}) == ome_uuid(a.copy(), {"axes": "YX"})
    True
    >>> ome_uuid(a, {"axes": "YX"}).startswith("urn:uuid:")
    True
    """
    import hashlib
    import json
    import uuid

    digest = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    digest.update(f"{tuple(arr.shape)} {np.dtype(arr.dtype).str}".encode())
    if type(arr) is np.ndarray:  # in memory: its pixels too (a lazy or mapped one: not read)
        digest.update(np.ascontiguousarray(arr).data)
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'sciconv:' + digest.hexdigest())}"


def _channel_names(names, arr: np.ndarray, fmt: str, lead: int, path: Path) -> list[str] | None:
    """``write``'s ``channel_names``, checked: one string per channel, TIFF formats only."""
    if names is None:
        return None
    if fmt not in ("tiff", "ome-tiff"):
        raise ConfigError(
            f"channel_names= is written to TIFF and OME-TIFF; got a {fmt.upper()} file", path=path
        )
    n = arr.shape[-1] if arr.ndim == lead + 3 else 1
    if isinstance(names, str) or len(names) != n:
        raise ConfigError(
            f"{1 if isinstance(names, str) else len(names)} channel names for {n} channels; "
            "give one per channel",
            path=path,
        )
    return [str(name) for name in names]


def validate_png(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype.kind != "u" or arr.dtype.itemsize not in (1, 2):
        raise InvalidImageError(
            f"PNG stores uint8 or uint16 pixels; got {arr.dtype}. Convert the array "
            "(e.g. after sciconv.preprocess.normalize) or write .tif/.fits to keep the values",
            path=path,
        )
    if arr.dtype.byteorder not in ("=", "|", "<" if np.little_endian else ">"):
        arr = arr.astype(arr.dtype.newbyteorder("="))  # '>u2' (np.fromfile, h5py): native
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] > 4:
        raise InvalidImageError(
            f"PNG stores 1 to 4 channels; got {arr.shape[2]}. Write .tif or .fits instead",
            path=path,
        )
    if arr.shape[0] >= 2**31 or arr.shape[1] >= 2**31:
        raise InvalidImageError(f"image too large for PNG ({arr.shape})", path=path)
    return arr


def write(
    path: str | os.PathLike,
    array,
    *,
    like=None,
    overwrite: bool = False,
    history: str | Iterable[str] | None = None,
    header=None,
    stack_axes: str | None = None,
    like_planes: bool = True,
    channel_names: Sequence[str] | None = None,
    like_pixels: bool | None = None,
) -> Path:
    """Write an image to FITS, TIFF, OME-TIFF or PNG, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; the extension picks the format: ``.fits``/``.fit``/``.fts`` (``.gz`` for
        gzip), ``.fits.fz``/``.fz`` (lossless tile compression), ``.tif``/``.tiff``,
        ``.ome.tif``/``.ome.tiff`` (OME-TIFF with OME-XML axes and physical sizes), ``.png``.
        Labels for an OME-Zarr image go through :func:`write_ome_zarr_labels`.
    array : array_like, GridImage or astropy.nddata.NDData
        ``(H, W)`` or ``(H, W, C)``: a numpy array, a memory map (``np.load(..., mmap_mode=)``,
        ``np.lib.format.open_memmap``), a zarr or dask array, or a :class:`LazyImage`; a numpy
        masked array, a GridImage's and an NDData's masked pixels are written NaN (as float,
        :func:`as_array`). An array that looks channel-first (``(C, H, W)`` with C <= 4 and
        H, W > 16, as tifffile and astropy hold cubes) is refused. FITS stores ``(H, W, 1)`` as
        a 2-D image and ``(H, W, C)`` as a cube ``(C, H, W)``; TIFF keeps the dtype (integer
        label maps stay integer); OME-TIFF stores 8-32 bit integers and float32/64 (float16 is
        written as float32, 64-bit integers as int32 or uint32 when their values fit); PNG
        takes uint8 or uint16 with 1-4 channels. A GridImage given here is also used as
        ``like``; an NDData (``CCDData``) as its :meth:`GridImage.from_nddata`, its WCS and
        unit kept.
    like : GridImage or astropy.io.fits.Header, optional
        FITS only: header whose cards (and WCS, from ``like.wcs`` when a GridImage) are copied.
        Structural keywords (``NAXISn``, ``BITPIX``, ``BSCALE``, ``BZERO``, ``BLANK``, checksums,
        tile-compression cards) are dropped and regenerated; Pan-STARRS' ``BSOFTEN`` and
        ``BOFFSET`` (asinh compression, undone by :func:`read`) are dropped, a HISTORY line
        saying the input was read linear from them. With a GridImage, its celestial WCS
        (SIP included) replaces every WCS card of its header; its spectral/Stokes axis cards
        (``CTYPE3``, ...) are kept when the array has as many planes as ``like`` and
        ``like_planes`` is True; a one-plane image's (a radio map's degenerate ``FREQ`` and
        ``STOKES`` axes, a cube's plane from :meth:`GridImage.channel`) are named in a HISTORY
        line (:func:`plane_coordinates`), the WCS staying 2-D; lookup-table distortions are not
        written (with a warning). The cards that describe pixel values follow ``like_pixels``;
        ``DATAMIN``/``DATAMAX`` and the other array statistics
        (``sciconv.io.ARRAY_STATISTICS_KEYWORDS``) are kept only when the array holds
        ``like``'s own values (the GridImage itself, or equal values, NaN allowed for its
        masked pixels), as they state the range of one array. Cards dropped are named in a
        HISTORY line; ``header`` sets any of them again.
        OME-TIFF: a GridImage whose ``meta["pixel_size"]``, ``meta["pixel_unit"]`` and (when
        there is one per channel written) ``meta["channel_names"]`` are written as OME
        ``PhysicalSizeY/X`` and ``Channel/@Name``, so labels keep the source's pixel size.
        TIFF: that pixel size as resolution tags (pixels per centimetre), which Fiji, QuPath
        and :func:`read` take back.
    overwrite : bool
        Replace an existing file; without it an existing file raises ``OutputExistsError``.
    history : str or iterable of str, optional
        Extra FITS HISTORY lines (after ``"Written by sciconv <version>"``); TIFF keeps them in its
        JSON description. FITS headers hold printable ASCII only: other characters are spelled
        in ASCII there (``µm`` -> ``um``, ``é`` -> ``e``, else escaped as ``\\u2192``).
    header : dict or astropy.io.fits.Header, optional
        FITS only: cards set last, over ``like``'s.
    stack_axes : str, optional
        TIFF and OME-TIFF only: ``array`` is a stack whose leading axes are these time (``T``)
        and depth (``Z``) axes, e.g. ``"T"`` for ``(T, H, W)`` or ``(T, H, W, C)`` labels or
        probabilities of a movie; written with those axes in the file's metadata, so
        :func:`plane_axes` and ``read(path, stack=True)`` give them back.
    like_planes : bool, optional
        FITS: whether the array's planes are ``like``'s planes (a cube written back), whose
        spectral/Stokes axis cards then stay; False for planes of another kind (class
        probabilities of the same count).
    channel_names : sequence of str, optional
        TIFF and OME-TIFF: one name per channel (e.g. the classes of a probability cube),
        written as OME ``Channel/@Name`` (over ``like``'s) or in a plain TIFF's JSON
        description, where :func:`read` finds them (``meta["channel_names"]``). FITS products
        name their planes with ``CLASSn`` cards instead
        (:func:`sciconv.postprocess.write_products`).
    like_pixels : bool, optional
        FITS: whether the array's values are of ``like``'s kind, the same quantity in the
        same unit (a cutout, a scaled, background-subtracted or denoised image): then its
        ``BUNIT`` (a GridImage's unit) and its calibration cards (``SATURATE``, ``GAIN``,
        ``RDNOISE``, ``PHOTFLAM``, ``MAGZPT`` ...:
        ``sciconv.io.PIXEL_CALIBRATION_KEYWORDS``) stay. False for values of another
        kind (class probabilities, scores, their uncertainties): those cards and the array
        statistics are dropped, the observation's cards (``DATE-OBS``, ``EXPTIME``,
        ``TELESCOP``, ``OBJECT`` ...), WCS and HISTORY kept. Default None: float arrays are of
        ``like``'s kind, integer and bool arrays (label maps, masks) are not.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InvalidImageError
        The array has the wrong shape, no pixels or a dtype the format cannot store.
    OutputExistsError
        The file exists and ``overwrite`` is False.
    ConfigError
        Unknown extension, an invalid header card, ``history`` that is not text, or
        ``stack_axes`` that are not distinct
        ``T``/``Z`` letters or are given for a format other than TIFF.

    Notes
    -----
    TIFF and OME-TIFF of a whole slide: a 2-D image (no ``stack_axes``) taller or wider than
    :data:`PYRAMID_MIN_SIDE` (4096) pixels is written the way QuPath, napari and OMERO open
    lazily: in 512 x 512 tiles (:data:`PYRAMID_TILE`), DEFLATE-compressed, in a BigTIFF, with
    a pyramid of reduced levels stored as SubIFDs of the full-resolution image. Each level is
    half the one before (rounded up) until the longest side is at most 1024 pixels
    (:data:`PYRAMID_TOP_SIDE`); integer images (labels) are reduced by nearest, taking every
    second pixel, so a level holds only label ids of the full image; float images by the
    NaN-aware mean of each 2 x 2 block. OME-TIFF keeps its OME-XML (axes, physical pixel size,
    channel names) for the full-resolution image, a plain TIFF its JSON description; both put
    the resolution tags of each level's scale on it. :func:`read` gives the full-resolution
    image. A memory map, zarr or dask array or :class:`LazyImage` is read 512 rows at a time
    (once per channel) and never held whole: only the first reduced level (a quarter of the
    pixels) is held in memory. Smaller images, and stacks, are written in strips, uncompressed.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv.io import GridImage, read, write
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> labels = np.array([[0, 1], [2, 2]], dtype=np.int32)
    >>> read(write(folder / "labels.tif", labels)).meta["dtype"]
    'int32'
    >>> write(folder / "labels.tif", labels)
    Traceback (most recent call last):
    ...
    sciconv.errors.OutputExistsError: ...labels.tif: output exists; pass overwrite=True ...

    OME-TIFF keeps the source's physical pixel size:

    >>> cells = GridImage(np.zeros((2, 2, 1), "float32"), meta={"pixel_size": (0.5, 0.25)})
    >>> out = read(write(folder / "labels.ome.tif", labels, like=cells))
    >>> out.meta["pixel_size"], out.meta["pixel_unit"]
    ((0.5, 0.25), 'µm')

    An image taller or wider than 4096 pixels is tiled, with its reduced levels (a long, thin
    strip keeps this example fast):

    >>> import tifffile
    >>> strip = np.zeros((4100, 8), dtype=np.int32)
    >>> slide = write(folder / "slide.ome.tif", strip, like=cells)
    >>> with tifffile.TiffFile(slide) as tif:
    ...     tif.pages[0].is_tiled, [level.shape for level in tif.series[0].levels]
    (True, [(4100, 8), (2050, 4), (1025, 2), (513, 1)])
    >>> read(slide).shape, read(slide).meta["pixel_size"]
    ((4100, 8, 1), (0.5, 0.25))
    """
    refuse_swapped(path, array, call="sciconv.io.write(path, array)")
    path = user_path(path)  # ~ expanded; bytes and URLs refused (ConfigError)
    check_name_length(path)  # a WriteError naming the file, not a bare OSError
    if os.path.isdir(path):  # pathlib's is_dir raises for a name too long (Python 3.11)
        raise ConfigError("is a folder; give the output file's name (e.g. out.fits)", path=path)
    suffix = next(
        (
            ext
            for ext in sorted(WRITE_FORMATS, key=len, reverse=True)
            if path.name.lower().endswith(ext)
        ),
        "".join(path.suffixes[-2:]).lower() or "(none)",
    )
    if path.name.lower().endswith(".zarr"):  # a folder store, not a file: its own writer
        raise ConfigError(
            "write writes files (FITS, TIFF, OME-TIFF, PNG); an OME-Zarr store is written by "
            "sciconv.io.write_ome_zarr (labels: write_ome_zarr_labels)",
            path=path,
        )
    fmt = WRITE_FORMATS.get(
        look_up_option(suffix, tuple(WRITE_FORMATS), name="output extension", path=path)
    )
    if is_nddata(array):  # its WCS, unit and mask (as NaN) kept, (C, H, W) made (H, W, C)
        array = GridImage.from_nddata(array)
    own = isinstance(array, GridImage) and (like is None or like is array)
    if isinstance(array, GridImage):
        if like is None:
            like = array
        array = as_array(array)  # the pixels its mask flags NaN
    stack_axes = _validate_stack_axes(stack_axes, fmt, path)
    arr = validate_array(array, path, lead=len(stack_axes), tiff=fmt in ("tiff", "ome-tiff"))
    history = history_lines(history, path=path)
    if fmt.startswith("fits"):
        hdr = output_header(
            arr,
            like,
            header,
            history,
            path,
            like_planes=like_planes,
            like_pixels=like_pixels,
            own_pixels=own,
        )
        with atomic_output(path, overwrite=overwrite) as tmp:
            write_fits(tmp, arr, hdr, compressed=fmt == "fits-compressed", path=path)
        return path
    for name, value in (("like", like), ("header", header)):
        if value is not None and carries_metadata(value):
            warn_caller(
                f"{path}: {fmt.upper()} cannot store a FITS header or WCS; {name}= was ignored"
            )
    names = _channel_names(channel_names, arr, fmt, len(stack_axes), path)
    if fmt == "tiff":
        with atomic_output(path, overwrite=overwrite) as tmp:
            write_tiff(tmp, arr, history, stack_axes, like, names)
        return path
    if fmt == "ome-tiff":
        arr = _ome_dtype(arr, path)
        with atomic_output(path, overwrite=overwrite) as tmp:
            write_ome_tiff(tmp, arr, like, history, stack_axes, names)
        return path
    png = validate_png(arr, path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(png_encode(png))
    return path


#: The pixel types OME stores (``Pixels/@Type``; bool is written as uint8)
_OME_TYPES = ("int8", "int16", "int32", "uint8", "uint16", "uint32", "float32", "float64")


def _ome_dtype(arr, path: Path):
    """``arr`` in a pixel type OME stores: float16 as float32, 64-bit integers as int32 or
    uint32 when their values fit (``np.zeros(shape, int)`` labels); otherwise refused, naming
    the formats that store them."""
    dtype = np.dtype(arr.dtype)
    if dtype.name in _OME_TYPES:
        return arr
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.asarray(arr, dtype=np.float32)
    if dtype.kind in "iu" and isinstance(arr, np.ndarray):
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        for kind in ("int32", "uint32"):
            if np.iinfo(kind).min <= lo and hi <= np.iinfo(kind).max:
                return arr.astype(kind)
    raise InvalidImageError(
        f"OME-TIFF stores pixels as {', '.join(_OME_TYPES)}; a {dtype} array whose values do "
        "not fit 32 bits cannot be written there: write .tif, .fits or OME-Zarr, which store "
        "64-bit integers",
        path=path,
    )


def _validate_stack_axes(stack_axes, fmt: str, path: Path) -> str:
    from sciconv.io._tiff import PLANE_AXES

    if stack_axes is None or stack_axes == "":
        return ""
    if (
        not isinstance(stack_axes, str)
        or len(set(stack_axes.upper())) != len(stack_axes)
        or any(a not in PLANE_AXES for a in stack_axes.upper())
    ):
        raise ConfigError(
            f"stack_axes must be distinct letters of {PLANE_AXES!r} (time, depth); got "
            f"{stack_axes!r}",
            path=path,
        )
    if fmt not in ("tiff", "ome-tiff"):
        raise ConfigError(
            f"stack_axes= is written to TIFF and OME-TIFF files only, not {fmt.upper()}", path=path
        )
    return stack_axes.upper()
