"""OME-Zarr stores of images larger than memory and their labels (whole slides, sky mosaics).

:func:`write_ome_zarr_mosaic` writes labels written block by block (a zarr array on disk) and
the image they were predicted on as a new NGFF store, in flat memory: the image read by windows,
each level computed chunk by chunk from the one before, the labels under it as an NGFF label
image (an image-less store is not valid NGFF: its labels need an image of as many levels).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sciconv.errors import ConfigError, InvalidImageError, OutputExistsError
from sciconv.io._image import GridImage
from sciconv.io._pyramid import halve
from sciconv.io._scale import PixelScale
from sciconv.io._zarr import (
    ASTROPY_NGFF,
    ZARR_ARRAY_ATTRS,
    level_transform,
    ome_zarr_modules,
    plain_array,
    tidy_labels_group,
)

#: Chunk side (pixels) of the image levels :func:`write_ome_zarr_mosaic` writes.
MOSAIC_CHUNK = 1024
_WINDOW_VALUES = 1 << 22  # the image is read by windows of at most this many values


def write_ome_zarr_mosaic(
    path: str | Path,
    labels: str | Path,
    image,
    *,
    levels: int = 3,
    name: str = "instances",
    move: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write labels on disk and their image as a new OME-Zarr (NGFF 0.5) store, in flat memory.

    The store's multiscale image is ``image`` (read by windows; a file's 8- and 16-bit integers
    kept, else float32), its NGFF label image ``labels/<name>`` the labels. Level ``i`` halves
    level ``i - 1`` (labels: every other pixel, so ids survive; image: 2 x 2 means), chunk by
    chunk from the level written before. A pixel size in a length unit is the NGFF scale; the
    labels' :data:`ZARR_ARRAY_ATTRS` (WCS, pixel scale, provenance) go to the store and label
    group too, where :func:`sciconv.io.read` finds them. Built next to ``path``, renamed onto it.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.ome.zarr`` store to create.
    labels : str or os.PathLike
        A 2-D integer zarr array (H, W), e.g. ``predict_instances_blocks(out="x.zarr")``'s.
    image : GridImage or array_like, shape (H, W) or (H, W, C)
        The pixels the labels were predicted on (a lazily read GridImage is read by windows).
    levels : int, optional
        Resolution levels. Default 3.
    name : str, optional
        The label image's name (``labels/<name>``). Default ``"instances"``.
    move : bool, optional
        Move ``labels`` into the store as its level 0 (a rename, no copy; gone afterwards, also
        when the write fails) instead of copying it chunk by chunk. Default False.
    overwrite : bool, optional
        Replace an existing store. Default False.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InvalidImageError
        ``labels`` is not a 2-D integer zarr array, or ``image`` is not of its size.
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, zarr
    >>> from sciconv import io
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> ids = zarr.create_array(str(folder / "ids.zarr"), shape=(64, 48), dtype="int32")
    >>> ids[8:20, 8:20] = 7
    >>> store = write_ome_zarr_mosaic(
    ...     folder / "m.ome.zarr", folder / "ids.zarr", np.ones((64, 48), "uint8"), levels=2)
    >>> [p.relative_to(store).as_posix() for p in io.ome_zarr_labels(store)["instances"]]
    ['labels/instances/s0', 'labels/instances/s1']
    >>> io.read(store, level=1).shape, int(io.read_labels(store / "labels/instances/s1").max())
    ((32, 24, 1), 7)
    """
    zarr, ome_zarr = ome_zarr_modules(path)
    import dask.array

    from sciconv._atomic import atomic_store

    path, labels = Path(path), Path(labels)
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ConfigError(f"name must be a plain folder name such as 'nuclei'; got {name!r}")
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ConfigError(f"levels must be an int >= 1; got {levels!r}")
    levels = int(levels)
    source = plain_array(labels) if labels.is_dir() else None
    if source is None or np.dtype(source.dtype).kind not in "iu":
        raise InvalidImageError("labels must be a 2-D integer zarr array", path=labels)
    hw = (int(source.shape[0]), int(source.shape[1]))
    read, channels, dtype = _window_reader(image, hw)
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists; pass overwrite=True to replace it", path=path)
    attrs = dict(source.attrs.get(ZARR_ARRAY_ATTRS) or {})
    scale = image.pixel_scale if isinstance(image, GridImage) else None
    scale = scale or PixelScale.from_value(attrs.get("pixel_scale"))
    unit = ASTROPY_NGFF.get(getattr(scale, "unit", None))  # NGFF space units are lengths
    dy, dx = (float(scale.y), float(scale.x)) if unit else (1.0, 1.0)
    move = move and source.metadata.dimension_names == ("y", "x")  # NGFF 0.5 asks it of levels
    with atomic_store(path, overwrite=overwrite) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        _image_pyramid(root, read, hw, channels, dtype, levels)
        group = root.require_group("labels").require_group(name)
        if move:  # level 0 of the labels: moved in, or copied chunk by chunk
            os.replace(labels, tmp / "labels" / name / "s0")
        else:
            copy = dask.array.from_zarr(str(labels))
            group.create_array(
                "s0", shape=copy.shape, chunks=copy.chunksize, dtype=copy.dtype,
                dimension_names=("y", "x"), fill_value=0, attributes={ZARR_ARRAY_ATTRS: attrs},
            )  # fmt: skip
            dask.array.store(copy, group["s0"], lock=False, scheduler="threads")
        _halvings(group, group["s0"], levels, mean=None)
        fmt = ome_zarr.format.FormatV05()
        for node, axes, lead in ((root, "cyx", [1.0]), (group, "yx", [])):
            ome_zarr.writer.write_multiscales_metadata(
                node, fmt=fmt, axes=axes, name="image" if node is root else name,
                datasets=[{"path": f"s{k}", "coordinateTransformations": level_transform(
                    k, lead, dy, dx, mean=node is root)} for k in range(levels)],
                axes_units=None if unit is None else {"y": unit, "x": unit},
            )  # fmt: skip
            node.attrs[ZARR_ARRAY_ATTRS] = attrs
        ome_zarr.writer.write_label_metadata(
            root["labels"], name, fmt=fmt, source={"image": "../../"}
        )
        tidy_labels_group(root["labels"], fmt.version)
    return path


def _window_reader(image, hw: tuple[int, int]):
    """``read(rows, cols)``: ``image``'s (h, w, C) window as stored (a file's 8- or 16-bit
    integers when no FITS scaling changed them, bad pixels 0; else float32); C; that dtype."""
    data = image.data if isinstance(image, GridImage) else image
    shape = tuple(int(n) for n in getattr(data, "shape", np.shape(data)))
    shape = (*shape, 1) if len(shape) == 2 else shape
    if len(shape) != 3 or shape[:2] != hw:
        raise InvalidImageError(f"image must be (H, W) or (H, W, C) = {hw}; got {shape}")
    meta = image.meta if isinstance(image, GridImage) else {}
    raw = np.dtype(meta.get("dtype") or getattr(data, "dtype", None) or np.float32)
    scaled = (
        meta.get("bscale", 1.0) != 1.0
        or (meta.get("bzero", 0.0) != 0.0 and raw.kind != "u")
        or meta.get("scaling") is not None  # Pan-STARRS asinh pixels: read linear, not integers
    )
    dtype = raw if raw.kind in "iu" and raw.itemsize <= 2 and not scaled else np.dtype("f4")

    def read(ys: slice, xs: slice) -> np.ndarray:
        window = np.asarray(data[ys, xs])
        window = window[..., None] if window.ndim == 2 else window
        if dtype.kind == "f" or window.dtype == dtype:
            return window.astype(dtype, copy=False)
        info = np.iinfo(dtype)
        return np.clip(np.rint(np.nan_to_num(window, nan=0.0)), info.min, info.max).astype(dtype)

    return read, shape[2], dtype


def _image_pyramid(root, read, hw, channels: int, dtype, levels: int) -> None:
    """Level ``s0`` (C, H, W) read by windows of whole chunks, then 2 x 2 means."""

    side, (h, w) = int(MOSAIC_CHUNK), hw
    first = root.create_array(
        "s0", shape=(channels, h, w), chunks=(1, min(side, h), min(side, w)), dtype=dtype,
        dimension_names=("c", "y", "x"), fill_value=0,
    )  # fmt: skip
    step = side * max(1, _WINDOW_VALUES // (side * side * channels))
    for y0, x0 in ((y, x) for y in range(0, h, side) for x in range(0, w, step)):
        ys, xs = slice(y0, min(y0 + side, h)), slice(x0, min(x0 + step, w))
        first[:, ys, xs] = np.moveaxis(read(ys, xs), -1, 0)
    _halvings(root, first, levels, mean=dtype)


def _halvings(group, first, levels: int, *, mean) -> None:
    """Levels ``s1``, ``s2``, ... of ``group`` after its level ``first``, each half the level
    before (rounded up), read back chunk by chunk and reduced by :func:`sciconv.io._pyramid.halve`
    as the TIFF pyramids are: an image (C, H, W) by NaN-aware 2 x 2 means, in the dtype
    ``mean``; with ``mean=None`` labels (H, W) by every other pixel."""
    import dask.array as da

    def reduce(block: np.ndarray) -> np.ndarray:
        if mean is None:
            return halve(block)
        out = np.moveaxis(halve(np.moveaxis(block, 0, -1).astype(np.float32)), -1, 0)
        return out.astype(mean) if mean.kind == "f" else np.rint(out).astype(mean)

    array = first
    for k in range(1, levels):
        last = da.from_zarr(array)
        last = last.rechunk(  # even chunks: each halves alone as the whole level would
            tuple(c if i < last.ndim - 2 else 2 * max(1, c // 2) for i, c in
                  enumerate(array.chunks))
        )  # fmt: skip
        halved = tuple(
            c if i < last.ndim - 2 else tuple(-(-n // 2) for n in c)
            for i, c in enumerate(last.chunks)
        )
        half = da.map_blocks(reduce, last, chunks=halved, dtype=mean or last.dtype)
        array = group.create_array(
            f"s{k}", shape=half.shape, dtype=half.dtype, fill_value=0,
            chunks=tuple(min(c, n) for c, n in zip(first.chunks, half.shape)),
            dimension_names=first.metadata.dimension_names,
        )  # fmt: skip
        da.store(half.rechunk(array.chunks), array, lock=False, scheduler="threads")


__all__ = ["MOSAIC_CHUNK", "write_ome_zarr_mosaic"]
