"""TIFF through tifffile: axes from the series (OME and ImageJ metadata included), alpha, palette.

Uncompressed files are memory-mapped for sections and lazy reads; compressed or tiled ones (whole
slides, pyramidal OME-TIFF: the full-resolution level) are read through tifffile's zarr store,
which decodes only the tiles or strips a window touches (needs zarr, ``sciconv[ome]``; without it,
and for files compressed in one piece, they are decoded whole).

A file holding several images (a whole slide's scan beside its macro and label, a plate's
positions) is read at its main image, or the one ``series=`` names (:mod:`sciconv.io._tiff_series`).
Its physical metadata (pixel size, Z step, frame interval, channel names: OME, ImageJ, vendors'
records, resolution tags) go into ``GridImage.meta`` (:mod:`sciconv.io._tiff_meta`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io._common import (
    ROLE_C,
    ROLE_N,
    ROLE_ONE,
    arrange_axes,
    brief,
    check_memory,
    check_pixel_limit,
    first_call,
    raw_index,
    section_slices,
    shift_axes,
    to_float32,
    transparent_as_no_data,
    warn_caller,
)
from sciconv.io._image import GridImage, LazyImage, decoded_image
from sciconv.io._mapped import read_mapped
from sciconv.io._tiff_meta import declares_time, microscopy_meta
from sciconv.io._tiff_series import choose_series, main_series, warn_other_series
from sciconv.io._tiff_units import UNIT_METRES, convert_length, length_unit
from sciconv.io._tiff_vendor import channels_declared

TIFF_AXES = (
    "YXCSZTNQIRPHEFLMAB"  # letters tifffile uses; Y/X spatial, C/S channels, rest stack-like
)
PLANE_AXES = "TZ"  # the stack axes a file's metadata can declare: time points, depth planes


def stored_as_channels(image) -> bool:
    """Whether the channels of an image read from a TIFF are separate signals, not colours.

    A TIFF says so itself: grey planes (photometric MINISBLACK or MINISWHITE) that its OME-XML
    or ImageJ metadata or its channel names declare as channels (an OME-TIFF or ImageJ
    composite of fluorescence stains: DAPI, phalloidin, ...) are separate images, and so is the
    ``C`` axis of a microscope's own format (a Zeiss LSM's tracks, a QPTIFF's stains:
    ``meta["channels_declared"]``) unless it holds the 8-bit RGB of a colour camera; RGB or YCbCr
    samples are the colours of one picture (an H&E slide), and grey planes that nothing names
    (sciconv's own float RGB) stay as they are read.
    A model that takes colour (an ``input_transform`` with ``to_rgb``/``to_gray``) must not
    average three stains as R, G and B.

    Parameters
    ----------
    image : sciconv.io.GridImage or array-like
        The image; anything but a GridImage read from a TIFF gives False (nothing says).

    Returns
    -------
    bool
        True for several channels stored as separate grey images.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage, stored_as_channels
    >>> meta = {"format": "tiff", "photometric": "MINISBLACK", "ome": True}
    >>> stains = GridImage(np.zeros((4, 4, 3)), meta=meta)
    >>> stored_as_channels(stains), stored_as_channels(np.zeros((4, 4, 3)))
    (True, False)
    """
    meta = getattr(image, "meta", None)
    shape = tuple(getattr(image, "shape", ()))
    if not isinstance(meta, dict) or meta.get("format") != "tiff":
        return False
    if len(shape) < 3 or shape[-1] < 2:
        return False
    if meta.get("channels_declared"):  # an LSM, QPTIFF, ... C axis (read_tiff)
        return True
    if str(meta.get("photometric", "")).upper() not in ("MINISBLACK", "MINISWHITE"):
        return False
    # the file says the planes are channels (OME-XML, an ImageJ composite, channel names):
    # sciconv's own writer stores float RGB and RGBA as grey planes too, without a word
    return bool(meta.get("ome") or meta.get("imagej") or meta.get("channel_names"))


def tiff_plane_axes(path: Path, series: int | None = None) -> tuple[str, tuple[int, ...]]:
    """The ``T``/``Z`` axes of more than one plane that a TIFF's series declares, and their sizes
    (``series``: the image :func:`read_tiff` reads, by default its main one); a ``T`` axis of one
    time point too, where tifffile's axes name it or the OME or ImageJ metadata give a frame
    interval (:func:`~sciconv.io._tiff_meta.declares_time`): a movie stopped after its first
    frame is still a movie (QA: it lost its ``t``/``time`` columns and its frame interval).

    Only OME, ImageJ and tifffile's own metadata name these axes (a plain multi-page TIFF gives
    ``I``/``Q``, an unknown kind of plane): ``("", ())`` when there are none, and when the series
    has other non-channel axes besides (a layout ``read`` has to be told about).
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            index = main_series(tif) if series is None else int(series)
            chosen = tif.series[index]
            axes, shape = series_axes(tif, chosen), tuple(int(n) for n in chosen.shape)
            if "T" not in axes and declares_time(tif, index):
                axes, shape = "T" + axes, (1, *shape)  # one time point: tifffile drops its T
    except Exception as exc:
        raise InvalidImageError(f"not a readable TIFF file ({brief(exc)})", path=path) from exc
    return declared_planes(axes, shape)


def series_axes(tif, series) -> str:
    """tifffile's axes of ``series``, an ImageJ stack's ``I`` (a file that says only
    ``images=N``, as older tools write it) read as ``Z``: ImageJ opens it as N slices (QA: it
    was read as N channels and refused)."""
    axes = str(series.axes)
    if getattr(tif, "is_imagej", False) and "I" in axes and "Z" not in axes:
        axes = axes.replace("I", "Z")
    return axes


def declared_planes(axes: str, shape) -> tuple[str, tuple[int, ...]]:
    """The ``T``/``Z`` axes of more than one plane among ``axes`` (letters, one per axis of
    ``shape``), and a ``T`` axis of one time point (a movie of one frame), and their sizes;
    ``("", ())`` when there are none or other non-channel axes too."""
    planes = [
        (a, int(n)) for a, n in zip(axes.upper(), shape) if (n > 1 or a == "T") and a not in "YXCS"
    ]
    if not planes or any(a not in PLANE_AXES for a, _ in planes):
        return "", ()
    return "".join(a for a, _ in planes), tuple(n for _, n in planes)


def _tiff_roles(axes: str, shape: tuple[int, ...], *, stack: bool, path: Path) -> list[str]:
    roles = []
    for a, n in zip(axes, shape):
        if a in "YX":
            roles.append(a)
        elif n == 1:
            roles.append(ROLE_ONE)
        elif a in "CS":
            roles.append(ROLE_C)
        else:
            roles.append("?")
    others = [i for i, r in enumerate(roles) if r == "?"]
    if stack:
        for i in others:
            roles[i] = ROLE_N
    elif others:
        lone = others[0] if len(others) == 1 and ROLE_C not in roles else None
        if lone is not None and axes[lone] in PLANE_AXES:
            # a movie or Z-stack read as channels would be segmented as one blend of its planes
            override = "".join("C" if i == lone else a for i, a in enumerate(axes))
            raise InvalidImageError(
                f"TIFF axes {axes!r} (shape {shape}) declare {shape[lone]} {axes[lone]} planes: "
                "a stack of 2-D images, not the channels of one; pass stack=True to read them "
                f"(N, H, W, C), or axes={override!r} to read the planes as channels",
                path=path,
            )
        if lone is not None:
            roles[lone] = ROLE_C
        else:
            raise InvalidImageError(
                f"TIFF axes {axes!r} (shape {shape}) hold more than channels; pass stack=True to "
                "read a stack (N, H, W, C), or axes= to say which axis is which",
                path=path,
            )
    return roles


def _channels_last_pages(axes: str, shape: tuple[int, ...]) -> bool:
    """Whether a 3-D series of unknown planes is numpy (H, W, C) that tifffile stored as H pages
    W x C px (its default for 2 or 4 channels): pages at most 4 px wide, more than 4 of them."""
    return (
        len(shape) == 3 and axes[0] in "QI" and axes[1:] == "YX" and shape[2] <= 4 < min(shape[:2])
    )


def _planar_rgb_from_array(tif, page, axes: str, shape: tuple[int, ...]) -> bool:
    """Whether the file is a numpy (3|4, H, W) array that ``tifffile.imwrite`` stored without
    photometric or axes as planar RGB(A) (its default, deprecated there): a 3- or 4-plane Z-stack
    or movie saved so reads as one colour image."""
    return (
        axes == "SYX"
        and len(shape) == 3
        and shape[0] in (3, 4)
        and bool(getattr(tif, "is_shaped", False))
        and int(getattr(page, "planarconfig", 1) or 1) == 2
    )


def read_tiff(
    path: Path, *, axes, stack, section, lazy, pixels_only: bool = False, series: int | None = None
) -> GridImage:
    """Read series ``series`` (tifffile's index; None: the main image, :func:`main_series`);
    ``pixels_only`` drops the note that a lazy read was made eagerly."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise InvalidImageError(f"not a readable TIFF file ({brief(exc)})", path=path) from exc
    try:
        try:
            index, asked = choose_series(tif, series, path), series
            series = tif.series[index]
            tif_axes = series_axes(tif, series)
            shape = tuple(series.shape)
            dtype = series.dtype
            page = series.pages[0] if series.pages else tif.pages[0]
            photometric = getattr(page, "photometric", None)
        except ConfigError:  # series= beyond the file's images
            raise
        except Exception as exc:
            raise InvalidImageError(f"damaged TIFF structure ({brief(exc)})", path=path) from exc
        if not shape or 0 in shape:
            raise InvalidImageError(f"TIFF holds no pixels (shape {shape})", path=path)
        if asked is None:  # the main image: the others a user would expect, said
            warn_other_series(tif, index, path)
        use_axes = tif_axes if axes is None else axes.upper()
        if axes is None and _channels_last_pages(tif_axes, shape):
            use_axes = "YXC"  # numpy (H, W, C) saved by tifffile.imwrite without axes
            warn_caller(
                f"{path}: TIFF pages of {shape[1]}x{shape[2]} px ({shape[0]} of them, axes "
                f"{tif_axes!r}) are a channels-last array (H, W, C) = {shape} written without "
                f"axes metadata: read as {shape[2]} channels; axes={tif_axes!r} reads the pages "
                "as they are"
            )
        if axes is None and _planar_rgb_from_array(tif, page, tif_axes, shape):
            warn_caller(
                f"{path}: {shape[0]} planes of {shape[1]}x{shape[2]} px written by "
                f"tifffile.imwrite from a {shape} array without axes are stored as planar "
                f"{'RGB' if shape[0] == 3 else 'RGBA'} (tifffile's default): read as one colour "
                "image; if they are Z planes or time points, write the file with "
                "metadata={'axes': 'ZYX'} (or 'TYX')"
            )
        if len(use_axes) != len(shape):
            raise ConfigError(
                f"axes={axes!r} has {len(use_axes)} letters but the TIFF array has "
                f"{len(shape)} axes (shape {shape}, tifffile axes {tif_axes!r})",
                path=path,
            )
        if "Y" not in use_axes or "X" not in use_axes:
            raise InvalidImageError(
                f"TIFF axes {tif_axes!r} (shape {shape}) have no Y and X; pass axes=", path=path
            )
        palette = photometric is not None and int(photometric) == 3
        meta = {
            "format": "tiff",
            "dtype": np.dtype(dtype).name,
            "axes": tif_axes,
            "shape": shape,
            "photometric": getattr(photometric, "name", photometric),
        }
        if index:
            meta["series"] = index
        if axes is not None:
            meta["axes_override"] = use_axes
        elif channels_declared(series, photometric, dtype):
            meta["channels_declared"] = str(series.kind)
        meta.update(microscopy_meta(tif, page, index))
        if palette:
            return _read_tiff_palette(page, path, meta, section, lazy=lazy, stack=stack)
        roles = _tiff_roles(use_axes, shape, stack=stack, path=path)
        ny, nx = shape[use_axes.index("Y")], shape[use_axes.index("X")]
        ys, xs = section_slices(section, ny, nx, path)
        alpha = _has_alpha(page, use_axes, shape)
        # an uncompressed contiguous file: where its pixels lie (nothing mapped yet)
        mm = _tiff_layout(tif, series, shape, path) if lazy or section is not None else None
        # a compressed or tiled file: a zarr view that decodes only the tiles a window touches
        chunks = (
            _tiff_chunks(path, shape, index)
            if mm is None and (lazy or section is not None)
            else None
        )
        window = (ys.stop - ys.start, xs.stop - xs.start)
        if lazy and mm is not None:
            # each window through a mapping of its own, of the window's pages only (read_mapped):
            # a map held open would keep every page read resident, so a whole slide read window
            # by window would fill memory; a map of the whole file fails under an address-space
            # limit (ulimit -v) smaller than the file
            handle = open(path, "rb")  # the file as opened now: a file replaced later is not read
            holder = [(handle, *mm)]
            del mm

            def close_map() -> None:
                holder[0] = None
                handle.close()

            return _lazy_tiff(
                lambda idx: read_mapped(holder[0], idx),
                close_map,
                roles=roles,
                origin=(ys.start, xs.start),
                window=window,
                path=path,
                meta={**meta, "alpha": "kept" if alpha else None},
            )
        if lazy and chunks is not None:
            array, source = chunks
            return _lazy_tiff(
                lambda idx: _decode(array, idx, path),
                source.close,
                roles=roles,
                origin=(ys.start, xs.start),
                window=window,
                path=path,
                meta={**meta, "alpha": "kept" if alpha else None, "chunks": tuple(array.chunks)},
            )
        if lazy and not pixels_only:
            warn_caller(f"{path}: {_UNMAPPED}; it was read into memory")
        if mm is not None or chunks is not None:  # a section: read only those pixels
            n = int(np.prod(shape, dtype=np.int64)) // (ny * nx) * window[0]
            check_memory(n * window[1], np.dtype(dtype).itemsize, path)
            if mm is not None:
                raw = read_mapped((str(path), *mm), raw_index(roles, ys, xs))
            else:
                try:
                    raw = _decode(chunks[0], raw_index(roles, ys, xs), path)
                finally:
                    chunks[1].close()
        else:
            check_pixel_limit(ny * nx, path, source=f"the TIFF ({ny} x {nx})", windowed=True)
            check_memory(int(np.prod(shape, dtype=np.int64)), np.dtype(dtype).itemsize, path)
            try:
                raw = series.asarray()[raw_index(roles, ys, xs)]
            except Exception as exc:
                raise InvalidImageError(
                    f"cannot decode TIFF pixels ({brief(exc)})", path=path
                ) from exc
    finally:
        tif.close()
    if alpha:
        raw, roles, meta["alpha"] = _drop_opaque_alpha(raw, roles, use_axes, dtype)
    data = arrange_axes(to_float32(raw, path=path), roles, stack=stack)
    return decoded_image(transparent_as_no_data(data, meta), path, meta, lazy=lazy)


def _lazy_tiff(read_raw, close_source, *, roles, origin, window, path: Path, meta) -> GridImage:
    """A lazy GridImage whose windows ``read_raw(index)`` takes from the file's stored array
    (``origin``: where ``window`` starts in it); ``close_source`` releases the file."""
    closed = [False]
    n_chan = int(np.prod([n for n, r in zip(meta["shape"], roles) if r == ROLE_C]))
    # as an eager read: transparent pixels are no data and the alpha is dropped, window by window
    alpha = meta.get("alpha") == "kept" and n_chan in (2, 4)
    if alpha:
        n_chan -= 1
        meta = {**meta, "alpha": "dropped; fully transparent pixels are no data (NaN)"}

    first_window = first_call()

    def reader(ys: slice, xs: slice) -> np.ndarray:
        if closed[0]:
            raise InvalidImageError("LazyImage was closed", path=path)
        idx = raw_index(roles, shift_axes(ys, origin[0]), shift_axes(xs, origin[1]))
        raw = read_raw(idx)  # the precision checked on the first window only
        window = arrange_axes(to_float32(raw, path=path, check=first_window()), roles, stack=False)
        if alpha:
            window = transparent_as_no_data(window, {"alpha": "kept"})
        return window

    def close() -> None:
        closed[0] = True
        close_source()

    data = LazyImage(reader, (*window, n_chan), path=str(path), closer=close)
    return GridImage(data, path=str(path), meta=meta)


_UNMAPPED = (
    "this TIFF cannot be read window by window (its pixels are compressed or bit-packed in one "
    'piece, or zarr is missing: pip install "sciconv[ome]")'
)


def _tiff_chunks(path: Path, shape: tuple[int, ...], index: int = 0):
    """``(zarr array, TiffFile)``: series ``index`` at full resolution as tifffile's zarr store
    shows it, decoding only the tiles or strips that a read touches; None without zarr, or when
    the image is stored as one piece (a window would decode all of it every time)."""
    import tifffile

    try:
        import zarr
    except ImportError:
        return None
    tif = tifffile.TiffFile(path)
    try:
        array = zarr.open(tif.series[index].aszarr(level=0), mode="r")
        if tuple(array.shape) == tuple(shape) and array.nchunks > 1:
            return array, tif
    except Exception:  # a layout tifffile's store does not handle: the whole-image read
        pass
    tif.close()
    return None


def _decode(array, index, path: Path) -> np.ndarray:
    """``array[index]`` of a zarr view of a TIFF, a damaged tile as an InvalidImageError."""
    try:
        return np.asarray(array[index])
    except Exception as exc:
        raise InvalidImageError(f"cannot decode TIFF pixels ({brief(exc)})", path=path) from exc


def _tiff_layout(tif, series, shape: tuple[int, ...], path: Path):
    """``(dtype, shape, offset, "C")`` of the first series when its pixels lie uncompressed and
    contiguous in the file (as :func:`tifffile.memmap` would map them, without mapping the whole
    series), or None (compressed, tiled, not contiguous, or the file is shorter)."""
    try:
        offset = series.dataoffset
        dtype = np.dtype(tif.byteorder + np.dtype(series.dtype).char)
        size = os.path.getsize(path)
    except Exception:
        return None
    if offset is None or tuple(series.shape) != tuple(shape):
        return None
    if offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > size:
        return None
    return dtype.str, tuple(int(n) for n in shape), int(offset), "C"


def _has_alpha(page, axes: str, shape) -> bool:
    """Whether the last colour sample is alpha: the file says so (extra sample 1, associated,
    or 2, unassociated alpha), or RGB has a 4th sample. An extra sample of unspecified meaning
    (0) beside grey is data: tifffile writes an (H, W, 2) or (H, W, 4) grey array so (taken for
    alpha, a second channel's zeros made the first NaN; dropped, a channel would be lost)."""
    if "S" not in axes:
        return False
    n = shape[axes.index("S")]
    extras = tuple(int(e) for e in getattr(page, "extrasamples", ()) or ())
    if n not in (2, 4):
        return False
    if extras and extras[-1] in (1, 2):
        return True
    photometric = getattr(page, "photometric", None)
    return n == 4 and photometric is not None and int(photometric) == 2  # RGB


def _drop_opaque_alpha(raw: np.ndarray, roles, axes: str, dtype):
    """Drop the last sample of the S axis when it is fully opaque (the dtype's maximum); else
    ``"kept"``: :func:`transparent_as_no_data` drops it once its alpha-0 pixels are NaN."""
    s = [i for i, (a, r) in enumerate(zip(axes, roles)) if a == "S" and r != ROLE_ONE]
    if not s:
        return raw, roles, None
    # position of S among the axes that remain in raw (degenerate axes were indexed away)
    live = [i for i, r in enumerate(roles) if r != ROLE_ONE]
    pos = live.index(s[0])
    alpha = np.take(raw, -1, axis=pos)
    top = np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else 1.0
    if np.all(alpha == top):
        return np.delete(raw, -1, axis=pos), roles, "dropped (fully opaque)"
    return raw, roles, "kept"


def _read_tiff_palette(page, path, meta, section, *, lazy: bool, stack: bool) -> GridImage:
    """An indexed-colour TIFF expanded to RGB, in the colours' own 8 bits when the 16-bit
    colormap holds them scaled (x257 full range, or x256 as Pillow writes them: read as 0-65280
    before, 256 times the PNG of the same image)."""
    h, w = (int(n) for n in page.shape[:2])
    check_pixel_limit(h * w, path, source=f"the palette TIFF ({h} x {w})")
    check_memory(h * w * 3, np.dtype(page.dtype).itemsize, path)  # indices, then RGB
    try:
        idx = page.asarray()
        rgb = np.moveaxis(np.asarray(page.colormap)[:, idx], 0, -1)
    except Exception as exc:
        raise InvalidImageError(f"cannot decode palette TIFF ({brief(exc)})", path=path) from exc
    if rgb.dtype == np.uint16:
        colours = np.asarray(page.colormap)
        for factor in (257, 256):
            if np.all(colours % factor == 0) and colours.max() // factor <= 255:
                rgb = (rgb // factor).astype(np.uint8)
                break
    meta["palette"] = "expanded to RGB"
    ys, xs = section_slices(section, rgb.shape[0], rgb.shape[1], path)
    # decoded whole (a palette image is small): windows of it for a lazy read
    return decoded_image(to_float32(rgb[ys, xs], path=path), path, meta, lazy=lazy, stack=stack)


def tiff_scale_meta(path: Path, series: int | None = None) -> dict:
    """The pixel size metadata of a TIFF (``pixel_size``, ``pixel_unit``) for series ``series``
    (None: the main image, as :func:`read_tiff` reads it), reading no pixels."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            index = main_series(tif) if series is None else int(series)
            chosen = tif.series[index]
            page = chosen.pages[0] if chosen.pages else tif.pages[0]
            return microscopy_meta(tif, page, index)
    except Exception as exc:
        raise InvalidImageError(f"not a readable TIFF file ({brief(exc)})", path=path) from exc


def resolution_tags(meta: dict) -> dict:
    """tifffile ``imwrite`` keywords that store ``meta``'s pixel size as baseline resolution tags
    (pixels per centimetre), which image software and :func:`sciconv.io.read` read back; empty
    without a pixel size in a length unit.

    Examples
    --------
    >>> resolution_tags({"pixel_size": (0.5, 0.25), "pixel_unit": "µm"})
    {'resolution': (40000.0, 20000.0), 'resolutionunit': 'CENTIMETER'}
    >>> resolution_tags({"pixel_size": (1.0, 1.0), "pixel_unit": "pixel"})
    {}
    """
    size = _pixel_size_in(meta, "cm")
    if size is None:
        return {}
    return {"resolution": (1.0 / size[1], 1.0 / size[0]), "resolutionunit": "CENTIMETER"}


def _pixel_size_in(meta: dict, to: str) -> tuple[float, float] | None:
    """``meta``'s pixel size ``(dy, dx)`` in the length unit ``to``; None without a positive one
    in a length unit."""
    size, unit = meta.get("pixel_size"), length_unit(meta.get("pixel_unit") or "µm")
    if size is None or unit not in UNIT_METRES:
        return None
    dy, dx = (convert_length(float(v), unit, to) for v in size)
    return (dy, dx) if dx > 0 and dy > 0 else None


def z_step_um(meta: dict) -> float | None:
    """``meta``'s Z step (``z_spacing``, in its ``pixel_unit``) in µm; None without one or
    outside a length unit.

    Examples
    --------
    >>> z_step_um({"z_spacing": 2.0, "pixel_unit": "um"})
    2.0
    >>> round(z_step_um({"z_spacing": 500, "pixel_unit": "nm"}), 9)
    0.5
    """
    step, unit = meta.get("z_spacing"), length_unit(meta.get("pixel_unit") or "µm")
    if step is None or unit not in UNIT_METRES:
        return None
    return convert_length(float(step), unit, "µm")


#: The axis order of an ImageJ hyperstack.
IMAGEJ_AXES = "TZCYXS"


def resolution_um(meta: dict) -> dict:
    """tifffile ``imwrite`` keywords for an ImageJ file's pixel size: resolution in pixels per
    µm (ImageJ's ``unit`` metadata says µm); empty without a pixel size in a length unit.

    Examples
    --------
    >>> resolution_um({"pixel_size": (0.5, 0.25), "pixel_unit": "µm"})
    {'resolution': (4.0, 2.0)}
    """
    size = _pixel_size_in(meta, "µm")
    return {} if size is None else {"resolution": (1.0 / size[1], 1.0 / size[0])}


def imagej_hyperstack(
    data, axes: str, dtype, source: dict, meta: dict, shape: tuple | None = None
) -> tuple | None:
    """``(data, metadata)`` that write a stack product as an ImageJ hyperstack (tifffile
    ``imagej=True``), for an ImageJ input: Fiji reads its T and Z axes, Z step (``spacing``),
    frame interval (``finterval``) and unit, where it opens tifffile's own description as a flat
    run of slices. ``meta`` is what the plain TIFF would record (``z_spacing_um``,
    ``time_interval_s``, ``history``, ``channel_names``): the history goes to ImageJ's ``Info``.

    Integer labels become uint16 (or float32, exact up to 2**24) as ImageJ stores no 32-bit
    integers. None when ImageJ cannot hold the stack (axes out of ImageJ's order, 16-bit colour,
    a stack of integer pages streamed page by page, labels beyond 2**24).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((2, 3, 4, 5), np.int32); labels[1, 2, 3, 4] = 7
    >>> data, ij = imagej_hyperstack(labels, "TZYX", labels.dtype, {}, {"z_spacing_um": 1.5})
    >>> data.dtype.name, ij["axes"], ij["spacing"], ij["unit"]
    ('uint16', 'TZYX', 1.5, 'um')
    >>> imagej_hyperstack(labels, "ZTYX", labels.dtype, {}, {}) is None  # not ImageJ's order
    True
    """
    positions = [IMAGEJ_AXES.find(a) for a in axes]
    if -1 in positions or positions != sorted(positions) or isinstance(data, np.memmap):
        return None  # (a memory-mapped stack streams page by page as a plain TIFF, not copied)
    dtype = np.dtype(dtype)
    if "S" in axes and dtype != np.uint8:
        return None
    if dtype.kind in "biu":
        if not isinstance(data, np.ndarray) or data.size == 0:
            return None
        lo, hi = int(data.min()), int(data.max())
        if dtype.kind == "b" or (dtype == np.uint8):
            data = data.astype(np.uint8, copy=False)
        elif lo >= 0 and hi < 2**16:
            data = data.astype(np.uint16)
        elif -(2**24) <= lo and hi <= 2**24:
            data = data.astype(np.float32)
        else:
            return None
    elif dtype != np.float32:
        if not isinstance(data, np.ndarray):
            return None
        data = data.astype(np.float32)
    ij: dict = {"axes": axes}
    if resolution_um(source):
        ij["unit"] = "um"
    if meta.get("z_spacing_um") is not None:
        ij["spacing"] = float(meta["z_spacing_um"])
        ij["unit"] = "um"
    if meta.get("time_interval_s") is not None:
        ij["finterval"] = float(meta["time_interval_s"])
    if meta.get("history"):
        ij["Info"] = "\n".join(str(line) for line in meta["history"])
    names, shape = meta.get("channel_names"), shape or getattr(data, "shape", None)
    if names and "C" in axes and shape is not None:  # a slice label per page, channel by channel
        planes = int(np.prod([n for a, n in zip(axes, shape) if a in "TZ"], dtype=np.int64))
        ij["Labels"] = [str(name) for name in names] * planes
    return data, ij
