"""The napari reader: FITS and TIFF files and OME-Zarr stores through :func:`sciconv.io.read`, as
layer data tuples.

Pure functions (no Qt, no napari import): napari calls :func:`napari_get_reader` with a path and
gets :func:`read_layers` back when sciconv reads that kind of file or folder; :func:`read_layers`
returns ``[(data, kwargs, "image"), ...]``, the tuples napari turns into layers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciconv import io
from sciconv.errors import SciconvError

__all__ = ["LAZY_PIXELS", "READ_EXTENSIONS", "napari_get_reader", "read_layers", "wcs_summary"]

#: File name endings the plugin opens (the manifest lists the same patterns).
READ_EXTENSIONS = tuple(io.FITS_EXTENSIONS) + tuple(io.TIFF_EXTENSIONS)

LayerData = tuple[Any, dict[str, Any], str]

#: TIFF images of more pixels than this (or with a resolution pyramid) open lazily: one dask
#: array per pyramid level (napari's multiscale layer), tiles decoded as napari shows them.
LAZY_PIXELS = 64 * 2**20


def _supported(path: Any) -> bool:
    if not isinstance(path, (str, os.PathLike)):
        return False
    name = os.fspath(path).lower()
    if any(name.endswith(ext.lower()) for ext in READ_EXTENSIONS) and Path(path).is_file():
        return True
    return _ome_zarr_image(path)


def _ome_zarr_image(path: str | os.PathLike) -> bool:
    """True for a folder :func:`sciconv.io.read` reads as an OME-Zarr image: a store
    (``*.ome.zarr``, ``*.zarr``) or one of its ``labels/<name>`` groups, a movie or Z-stack
    (NGFF ``t``/``z`` axes, :func:`sciconv.io.plane_axes`) included (QA: refused)."""
    if not Path(path).is_dir() or not io.is_zarr(path):
        return False
    try:
        if io.plane_axes(path)[0]:  # read(stack=True) reads it; a plain read refuses it
            return True
    except Exception:  # not a multiscale image (a plain array, a bare group): read says
        pass
    try:
        return io.read(path, lazy=True).meta.get("format") == "ome-zarr"
    except Exception:  # not an image (a bare group, a plate), or no ome-zarr: not ours
        return False


def napari_get_reader(path: str | Sequence[str]) -> Callable[..., list[LayerData]] | None:
    """Return :func:`read_layers` when sciconv reads ``path`` (FITS, TIFF, OME-Zarr), else None.

    Parameters
    ----------
    path : str or list of str
        What napari asks about: one path or several (all must be FITS or TIFF files, or
        OME-Zarr image folders).

    Returns
    -------
    callable or None

    Examples
    --------
    >>> from sciconv.napari import napari_get_reader
    >>> napari_get_reader("notes.txt") is None
    True
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_supported(p) for p in paths):
        return None
    return read_layers


def wcs_summary(wcs: Any) -> dict[str, Any] | None:
    """The celestial WCS in plain values: axis types, reference pixel and sky position, scale.

    Parameters
    ----------
    wcs : astropy.wcs.WCS or None
        A celestial 2-D WCS (:attr:`sciconv.io.GridImage.wcs`).

    Returns
    -------
    dict or None
        ``ctype``, ``crpix`` (1-based, as in the header), ``crval`` (degrees), ``radesys``,
        ``pixel_scale_arcsec`` ``(y, x)``; None without a WCS.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> from sciconv.napari import wcs_summary
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]; w.wcs.cdelt = [-1e-4, 1e-4]
    >>> s = wcs_summary(w)
    >>> s["ctype"], [round(v, 2) for v in s["pixel_scale_arcsec"]]
    (['RA---TAN', 'DEC--TAN'], [0.36, 0.36])
    """
    if wcs is None:
        return None
    from astropy.wcs.utils import proj_plane_pixel_scales

    scale_xy = proj_plane_pixel_scales(wcs) * 3600.0
    return {
        "ctype": [str(c) for c in wcs.wcs.ctype],
        "crpix": [float(v) for v in wcs.wcs.crpix],
        "crval": [float(v) for v in wcs.wcs.crval],
        "radesys": str(wcs.wcs.radesys),
        "pixel_scale_arcsec": (float(scale_xy[1]), float(scale_xy[0])),
    }


def _contrast_limits(data: np.ndarray) -> list[float] | None:
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [1.0, 99.8])
    return [float(lo), float(hi) if hi > lo else float(lo) + 1.0]


def _sample(level) -> np.ndarray:
    """At most about a million pixels of ``level`` (every k-th row and column), in memory."""
    step = max(1, int(np.sqrt(level.shape[-3] * level.shape[-2] / 1e6)))
    return np.asarray(level[..., ::step, ::step, :])


def _slide_levels(path) -> list | None:
    """A whole slide's resolution levels as dask arrays ``(H, W, C)`` in the file's dtype (read
    through tifffile's zarr store as napari asks for tiles), for a TIFF (not a stack) of more
    than :data:`LAZY_PIXELS` pixels or with a pyramid; None for anything else (or without zarr).
    """
    if not os.fspath(path).lower().endswith(io.TIFF_EXTENSIONS):
        return None
    try:
        import dask.array as da
        import tifffile
        import zarr
    except ImportError:
        return None
    from sciconv.io._tiff_series import main_series

    tif = tifffile.TiffFile(path)  # held by the stores (their pages) for as long as napari reads
    series = tif.series[main_series(tif)]  # the image io.read reads: an SCN's scan, not its macro
    axes, sizes, n_levels = series.axes, dict(zip(series.axes, series.shape)), len(series.levels)
    if (
        "Y" not in axes
        or "X" not in axes
        or (n_levels == 1 and sizes["Y"] * sizes["X"] <= LAZY_PIXELS)
        or any(n > 1 for a, n in sizes.items() if a not in "YXCS")
    ):
        tif.close()
        return None
    index = tuple(slice(None) if a in "YXCS" else 0 for a in axes)  # size-1 axes dropped
    kept = [a for a in axes if a in "YXCS"]
    order = [kept.index("Y"), kept.index("X")] + [i for i, a in enumerate(kept) if a in "CS"]
    levels = []
    for level in range(n_levels):
        array = da.from_zarr(zarr.open(series.aszarr(level=level), mode="r"))
        array = array[index].transpose(order)
        levels.append(array if array.ndim == 3 else array[..., None])
    return levels


def _layers(
    img: io.GridImage, stack: tuple[str, tuple[int, ...]] = ("", ()), levels: list | None = None
) -> list[LayerData]:
    """The layers of one image; ``stack``: its T/Z axes and sizes (:func:`sciconv.io.plane_axes`)
    when ``img`` was read with ``stack=True``, which then lead its layers' axes; ``levels``: a
    slide's lazy resolution levels (:func:`_slide_levels`), shown instead of ``img``'s pixels."""
    axes, sizes = stack
    if levels is None:
        data = np.asarray(img.data)
        levels = [data.reshape(*sizes, *data.shape[1:]) if axes else data]
    data = levels[0]
    path = Path(img.path) if img.path else None
    name = io.image_stem(path) if path is not None else "image"
    metadata: dict[str, Any] = {
        "path": os.fspath(path) if path is not None else None,
        "sciconv_meta": dict(img.meta),
        "header": img.header,
        "wcs": img.wcs,
        "wcs_info": wcs_summary(img.wcs),
        "stack_axes": axes or None,
    }
    kwargs: dict[str, Any] = {"name": name, "metadata": metadata}
    if len(levels) > 1:
        kwargs["multiscale"] = True

    def shown(arrays):  # napari's data: the array, or the list of levels of a pyramid
        return arrays[0] if len(arrays) == 1 else arrays

    scale = img.meta.get("pixel_size")
    if img.wcs is None and scale is not None:
        z_step = img.meta.get("z_spacing")  # one step per plane
        interval = img.meta.get("time_interval")  # seconds per frame, else frames are counted
        given = {"Z": z_step, "T": interval}
        steps = [float(given[a]) if given.get(a) is not None else 1.0 for a in axes]
        kwargs["scale"] = (*steps, *(float(v) for v in scale))
        length = str(img.meta.get("pixel_unit", "pixel")).replace("µ", "u")
        kwargs["units"] = length  # for every axis
        if "T" in axes:
            frame = "s" if interval is not None else "pixel"
            kwargs["units"] = (*(frame if a == "T" else length for a in axes), length, length)
    channels = data.shape[-1]
    dtype = str(img.meta.get("dtype", ""))
    colour = channels in (3, 4) and not io.stored_as_channels(img)  # RGB, not 3 stains
    if colour and img.header is None and dtype in ("uint8", "uint16"):
        kwargs["rgb"] = True
        kwargs["contrast_limits"] = [0.0, float(np.iinfo(dtype).max)]
        return [(shown(levels), kwargs, "image")]
    whole = dtype.startswith(("int", "uint")) or (dtype == "float32" and img.meta.get("imagej"))
    if channels == 1 and name.endswith("_labels") and whole:  # (ImageJ: over 65,535 as float32)
        # sciconv's instance labels (NAME_labels.fits/.tif/.zarr): a labels layer, one colour
        # per object, not a grey image
        return [(shown([_as_labels(level[..., 0]) for level in levels]), kwargs, "labels")]
    sample = _sample(levels[-1])  # a pyramid's smallest level, every k-th pixel of a big one
    if channels == 1:
        limits = _contrast_limits(sample[..., 0])
        if limits is not None:
            kwargs["contrast_limits"] = limits
        return [(shown([level[..., 0] for level in levels]), kwargs, "image")]
    names = img.meta.get("channel_names") or [f"{name} [{i}]" for i in range(channels)]
    kwargs["channel_axis"] = 0
    kwargs["name"] = [str(n) for n in names]
    limits = [_contrast_limits(sample[..., c]) for c in range(channels)]
    if all(lim is not None for lim in limits):
        kwargs["contrast_limits"] = limits
    return [(shown([np.moveaxis(level, -1, 0) for level in levels]), kwargs, "image")]


def _zarr_levels(path, n_levels: int) -> list:
    """An OME-Zarr image's resolution levels as dask arrays ``(H, W, C)`` over
    :func:`sciconv.io.read` ``(lazy=True)``: chunks read as napari shows them."""
    import dask.array as da

    levels = []
    for level in range(n_levels):
        lazy = io.read(path, level=level, lazy=True).data
        chunks = (min(lazy.shape[0], 1024), min(lazy.shape[1], 1024), lazy.shape[2])
        levels.append(da.from_array(lazy, chunks=chunks, name=False, asarray=True))
    return levels


def _label_layer(store: Path, name: str, levels: list[Path]) -> LayerData:
    """One NGFF label image (``labels/<name>``): its integer levels through
    :func:`sciconv.io.read_labels`, lazily, at the physical pixel size of its level 0."""
    data = [io.read_labels(p, lazy=True) for p in levels]
    meta = io.read(store / "labels" / name, lazy=True).meta
    kwargs: dict[str, Any] = {
        "name": f"{io.image_stem(store)} {name}",
        "metadata": {"path": os.fspath(store / "labels" / name), "sciconv_meta": dict(meta)},
    }
    if len(data) > 1:
        kwargs["multiscale"] = True
    if meta.get("pixel_size") is not None:
        kwargs["scale"] = tuple(float(v) for v in meta["pixel_size"])
        kwargs["units"] = str(meta.get("pixel_unit", "pixel")).replace("µ", "u")
    return (data if len(data) > 1 else data[0], kwargs, "labels")


def _zarr_layers(path) -> list[LayerData]:
    """An OME-Zarr image (its levels a multiscale layer, one layer per channel named by the
    channel names) and a labels layer per NGFF label image (``labels/instances``,
    ``labels/mask`` ...); a ``labels/<name>`` group opened by itself gives its labels layer. A
    movie or Z-stack opens as a TIFF one does: its full resolution, ``T``/``Z`` axes first,
    scaled by the store's frame interval and Z step."""
    path = Path(path)
    if path.parent.name == "labels":  # one label image of a store
        store = path.parent.parent
        levels = io.ome_zarr_labels(store).get(path.name)
        if levels:
            return [_label_layer(store, path.name, levels)]
    stack = io.plane_axes(path)
    if stack[0]:  # a movie or Z-stack: one layer with a slider per axis
        return _layers(io.read(path, stack=True), stack)
    img = io.read(path, lazy=True)
    layers = _layers(img, levels=_zarr_levels(path, len(img.meta["levels"])))
    for name, levels in io.ome_zarr_labels(path).items():
        layers.append(_label_layer(path, name, levels))
    return layers


def _as_labels(level):
    """A level's labels as signed integers, lazily for dask: integer ids as stored (unsigned
    ones of 32 bits and more as int64, never wrapped), a float level's (NaN = no object, ids
    below 2**24 exact in float32) as int32."""
    if np.issubdtype(level.dtype, np.signedinteger):  # FITS's big-endian in native order
        return level.astype(level.dtype.newbyteorder("="), copy=False)
    if np.issubdtype(level.dtype, np.unsignedinteger):
        return level.astype(np.int64 if level.dtype.itemsize >= 4 else np.int32)
    return np.nan_to_num(level, nan=0.0).astype(np.int32)  # numpy or dask (a float stack)


def _exact_labels(path):
    """A ``NAME_labels`` file's integer ids as stored (:func:`sciconv.io.read_labels`, lazily
    where it can), or None for any other file: :func:`sciconv.io.read` gives float32 pixels,
    whose ids merged from 2**24 on and wrapped past 2**31 - 1 (QA precision)."""
    if not io.image_stem(Path(path)).endswith("_labels"):
        return None
    try:
        return io.read_labels(path, lazy=True)
    except SciconvError:  # not integers (ImageJ's float32 over 65,535 ids), not one plane
        return None


def read_layers(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[LayerData]:
    """Read FITS or TIFF files, or OME-Zarr stores, with :func:`sciconv.io.read` into napari
    layer data tuples.

    A single-channel image gives one ``(H, W)`` layer with a 1-99.8 percentile contrast (NaN at
    bad pixels); an 8/16-bit RGB(A) TIFF one RGB layer; other channels one layer each
    (``channel_axis=0``, named from the file's channel names). A TIFF movie or Z-stack
    (:func:`sciconv.io.plane_axes`), or an OME-Zarr one, keeps its ``T``/``Z`` axes first, one
    slider each (the Z step and the frame interval, when the file records them, scale the Z and
    T axes). A TIFF of more than
    :data:`LAZY_PIXELS` pixels or with a resolution pyramid (a whole slide) opens lazily: one
    dask array per level in the file's dtype (a multiscale layer), tiles decoded as napari shows
    them. ``metadata`` holds the file path,
    sciconv's ``meta``, the FITS ``header``, the ``wcs`` object and ``wcs_info``
    (:func:`wcs_summary`); a microscopy pixel size becomes the layer's ``scale`` and ``units``.
    sciconv's integer ``NAME_labels`` products open as a labels layer (one colour per object).
    An OME-Zarr image (``sciconv predict --format ome-zarr``) opens lazily as a multiscale layer
    per channel (named by its channel names, e.g. the classes of a probability cube) at its
    physical pixel size, plus one labels layer per NGFF label image (``labels/instances``,
    ``labels/mask``, ...: integer ids read by :func:`sciconv.io.read_labels`, named
    ``"STEM NAME"``); a ``labels/<name>`` folder opened by itself gives its labels layer.

    Parameters
    ----------
    path : str, os.PathLike or list of them
        One file or several, or OME-Zarr folders.

    Returns
    -------
    list of (data, kwargs, "image" or "labels")

    Raises
    ------
    InvalidImageError
        A file cannot be read (the message names it).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> from sciconv.napari import read_layers
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.fits"
    >>> _ = io.write(p, np.arange(12, dtype=np.float32).reshape(3, 4))
    >>> [(data.shape, layer_type) for data, _, layer_type in read_layers(p)]
    [((3, 4), 'image')]
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers = []
    for p in paths:
        if _ome_zarr_image(p):  # an OME-Zarr store: the image and its label images
            layers.extend(_zarr_layers(p))
            continue
        stack = io.plane_axes(p)  # a movie or Z-stack: one layer with a slider per axis
        exact = None if stack[0] else _exact_labels(p)
        if exact is not None:  # the ids as stored, the metadata from a lazy read
            img = io.read(p, lazy=True)
            if isinstance(img.data, io.LazyImage):
                img.data.close()
            layers.extend(_layers(img, levels=[exact[..., None]]))
            continue
        levels = None if stack[0] else _slide_levels(p)
        if levels is not None:  # a whole slide: lazy levels, the metadata from a lazy read
            img = io.read(p, lazy=True)
            img.data.close()
            layers.extend(_layers(img, levels=levels))
            continue
        layers.extend(_layers(io.read(p, stack=bool(stack[0])), stack))
    return layers
