"""Pyramids: reduced-resolution levels of images too large to view whole, and how TIFF stores them.

A whole slide's labels or a survey mosaic's probabilities (20k x 20k pixels) written as one
strip-organised image make a viewer page the whole file to show an overview. Images taller or
wider than :data:`PYRAMID_MIN_SIDE` are written tiled, with levels each half the previous one
(:func:`pyramid_shapes`, :func:`halve`: labels by nearest neighbour, ids kept; floats by a
NaN-aware 2 x 2 mean) stored as SubIFDs, as tifffile's pyramidal OME-TIFF example writes them
(:func:`write_pyramid`), which QuPath, napari and OMERO open lazily. :func:`tiff_layout` is how
any array is laid out in TIFF pages (axes, photometric).

An image read from a reduced level or a section (``read(store, level=1)``, ``section=``) is
placed in its file's full-resolution image by :func:`full_resolution_frame` (QuPath's objects
are in full-resolution pixels).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sciconv.errors import ConfigError

#: A 2-D image (no stack axes) taller or wider than this many pixels is written to TIFF and
#: OME-TIFF tiled, with a pyramid of reduced levels (:func:`write_pyramid`). At this size the
#: whole image (16 Mpx, 64 MiB as float32) still opens in a fraction of a second; above it a
#: viewer that pages a strip-organised file reads hundreds of megabytes to show an overview.
PYRAMID_MIN_SIDE = 4096
#: The side of the square tiles of a pyramidal TIFF, all levels.
PYRAMID_TILE = 512
#: Levels halve until the longest side is at most this many pixels (the overview a viewer opens).
PYRAMID_TOP_SIDE = 1024
#: The compression of pyramidal TIFF, all dtypes: DEFLATE, which every TIFF reader decodes.
#: Measured on 8192 x 8192 pixels: int32 labels 256 MB -> 7 MB (pyramid included), a dense
#: float32 probability map 8% smaller (more where it has NaN or constant background).
PYRAMID_COMPRESSION = "zlib"


def plane_layout(shape: Sequence[int], dtype) -> tuple[str, str]:
    """How one ``(H, W[, C])`` image is stored in TIFF: its axes and photometric.

    One channel (or none) is ``"YX"``, uint8/uint16 RGB stays interleaved (``"YXS"``), other
    channels become planes (``"CYX"``).

    Examples
    --------
    >>> import numpy as np
    >>> plane_layout((5, 6, 1), np.float32), plane_layout((5, 6, 3), np.uint8)
    (('YX', 'minisblack'), ('YXS', 'rgb'))
    >>> plane_layout((5, 6, 3), np.float32)
    ('CYX', 'minisblack')
    """
    if len(shape) == 2 or shape[-1] == 1:
        return "YX", "minisblack"
    if shape[-1] == 3 and np.dtype(dtype) in (np.uint8, np.uint16, np.bool_):  # bool: as uint8
        return "YXS", "rgb"
    return "CYX", "minisblack"


def tiff_layout(arr: np.ndarray, stack_axes: str = "") -> tuple[Any, str, str, dict]:
    """``(H, W[, C])`` after the stack axes, as tifffile stores it: data, axes, photometric and
    the keywords ``imwrite`` needs for it.

    One channel is dropped, uint8/uint16 RGB stays interleaved (``S``), other channels become
    planes ``C`` before ``Y`` and ``X``: for a stack, handed to tifffile one ``(H, W)`` page at
    a time (a stack held in a memory map is never copied whole).
    """
    lead = len(stack_axes)
    axes, photometric = plane_layout(arr.shape[lead:], arr.dtype)
    if axes == "YX":
        return (arr[..., 0] if arr.ndim == lead + 3 else arr), stack_axes + axes, photometric, {}
    if axes == "YXS":
        return arr, stack_axes + axes, photometric, {}
    if not lead:
        return np.ascontiguousarray(np.moveaxis(arr, -1, 0)), "CYX", "minisblack", {}
    planes = arr.reshape(-1, *arr.shape[lead:])
    pages = (np.ascontiguousarray(p[..., c]) for p in planes for c in range(arr.shape[-1]))
    shape = (*arr.shape[:lead], arr.shape[-1], *arr.shape[lead : lead + 2])
    return pages, stack_axes + "CYX", "minisblack", {"shape": shape, "dtype": arr.dtype}


def is_pyramidal(shape: Sequence[int], stack_axes: str = "") -> bool:
    """Whether an image of ``shape`` (after ``stack_axes``) is written tiled with a pyramid:
    a 2-D image, ``(H, W)`` or ``(H, W, C)``, taller or wider than :data:`PYRAMID_MIN_SIDE`.

    Examples
    --------
    >>> is_pyramidal((20000, 20000)), is_pyramidal((4096, 4096, 3))
    (True, False)
    >>> is_pyramidal((2, 5000, 5000), "T")  # a stack
    False
    """
    if stack_axes or len(shape) not in (2, 3):
        return False
    return max(int(shape[0]), int(shape[1])) > PYRAMID_MIN_SIDE


def pyramid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """``(H, W)`` of each reduced level: each half the previous one (rounded up) until the
    longest side is at most :data:`PYRAMID_TOP_SIDE`.

    Examples
    --------
    >>> pyramid_shapes(8192, 5000)
    [(4096, 2500), (2048, 1250), (1024, 625)]
    >>> pyramid_shapes(1000, 900)
    []
    """
    shapes = []
    while max(height, width) > PYRAMID_TOP_SIDE:
        height, width = -(-height // 2), -(-width // 2)
        shapes.append((height, width))
    return shapes


def level_count(hw, *, min_side: int, most: int) -> int:
    """How many levels a pyramid of an image of ``hw`` (H, W) pixels has: full resolution,
    then halvings while the smaller side keeps ``min_side`` pixels, ``most`` levels at most.

    Examples
    --------
    >>> level_count((8192, 6000), min_side=256, most=10)
    5
    >>> level_count((100, 100), min_side=64, most=3)
    1
    """
    small, levels = min(int(n) for n in hw), 1
    while levels < most and small // 2**levels >= min_side:
        levels += 1
    return levels


#: ``meta`` keys that place an image read from a pyramid level or a section in the full-resolution
#: image of its file (:func:`full_resolution_frame`): the level's pixel size in full-resolution
#: pixels ``(dy, dx)``, where the level's pixel edge 0 lies in full-resolution pixels
#: ``(y, x)``, and the first row and column of the section read, in the level's pixels.
FRAME_KEYS = ("level_downsample", "level_offset", "section_origin")


class FullResolutionFrame(NamedTuple):
    """Where an image's pixels lie in the full-resolution (level 0) image of its file.

    A pixel edge at row ``r`` and column ``c`` of the image (``(0, 0)`` the top-left corner of
    its first pixel, QuPath's convention) is at ``(y0 + dy * r, x0 + dx * c)`` in
    full-resolution pixels.
    """

    dy: float
    dx: float
    y0: float
    x0: float

    @property
    def identity(self) -> bool:
        """Whether the image is its file's full-resolution image (no level, no section)."""
        return self == (1.0, 1.0, 0.0, 0.0)


def full_resolution_frame(image) -> FullResolutionFrame:
    """How an image read from a pyramid level or a section sits in its file's full-resolution
    image: what objects found on it need to be placed in QuPath, which works in the
    full-resolution (level 0) pixels of a slide.

    Taken from the :data:`FRAME_KEYS` of ``image.meta`` that :func:`sciconv.io.read` records:
    ``meta["level_downsample"]`` and ``meta["level_offset"]`` for a reduced level of an
    OME-Zarr pyramid (its NGFF scale and translation relative to level 0) and
    ``meta["section_origin"]`` for a ``section=`` read. An image without them is its own
    full-resolution image.

    Parameters
    ----------
    image : GridImage or mapping
        The image (or its ``meta``).

    Returns
    -------
    FullResolutionFrame
        ``(dy, dx, y0, x0)``: a pixel edge ``(r, c)`` of the image is at ``(y0 + dy * r,
        x0 + dx * c)`` in full-resolution pixels.

    Raises
    ------
    ConfigError
        A key holds something else than two finite numbers (a downsample must be positive).

    Examples
    --------
    >>> full_resolution_frame({})
    FullResolutionFrame(dy=1.0, dx=1.0, y0=0.0, x0=0.0)
    >>> frame = full_resolution_frame({"level_downsample": (2.0, 2.0), "section_origin": (10, 20)})
    >>> frame  # level 1, read from row 10, column 20 of that level
    FullResolutionFrame(dy=2.0, dx=2.0, y0=20.0, x0=40.0)
    >>> frame.y0 + frame.dy * 3  # the level's row edge 3 of the section: level 0's 26
    26.0
    """
    meta = getattr(image, "meta", image)
    if meta is None:
        meta = {}
    if not hasattr(meta, "get"):
        raise ConfigError(f"need a GridImage or its meta (a mapping); got {type(image).__name__}")
    path = getattr(image, "path", None)
    fy, fx = _pair(meta, "level_downsample", (1.0, 1.0), path, positive=True)
    oy, ox = _pair(meta, "level_offset", (0.0, 0.0), path)
    sy, sx = _pair(meta, "section_origin", (0.0, 0.0), path)
    return FullResolutionFrame(fy, fx, oy + fy * sy, ox + fx * sx)


def _pair(meta, key: str, default: tuple[float, float], path, *, positive: bool = False):
    value = meta.get(key)
    if value is None:
        return default
    try:
        pair = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or not all(np.isfinite(pair)) or (positive and min(pair) <= 0):
        kind = "positive numbers" if positive else "numbers"
        raise ConfigError(
            f'meta["{key}"] must be two finite {kind} (y, x); got {value!r}', path=path
        )
    return pair


def halve(block: np.ndarray) -> np.ndarray:
    """``block`` (rows, columns[, channels]) at half the size, rounded up: integers by nearest
    (every second pixel: label ids kept, no new values), floats by the NaN-aware mean of each
    2 x 2 block (NaN where all four are NaN; the last row or column alone at an odd size).

    Examples
    --------
    >>> import numpy as np
    >>> halve(np.array([[1, 2, 3], [4, 5, 6]]))
    array([[1, 3]])
    >>> halve(np.array([[1.0, np.nan, np.nan], [3.0, np.nan, 5.0]], dtype=np.float32))
    array([[2., 5.]], dtype=float32)
    """
    if block.dtype.kind != "f":
        return block[::2, ::2]
    odd = ((0, block.shape[0] % 2), (0, block.shape[1] % 2)) + ((0, 0),) * (block.ndim - 2)
    if odd[0][1] or odd[1][1]:
        block = np.pad(block, odd, constant_values=np.nan)
    work = np.float64 if block.dtype == np.float64 else np.float32
    rows, cols = block.shape[0] // 2, block.shape[1] // 2
    quads = block.reshape(rows, 2, cols, 2, *block.shape[2:])
    valid = ~np.isnan(quads)
    total = np.where(valid, quads, 0).sum(axis=(1, 3), dtype=work)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / valid.sum(axis=(1, 3))).astype(block.dtype)


def halve_image(image) -> np.ndarray:
    """``image`` (H, W[, C]), any array that slices, at half the size (:func:`halve`), read and
    reduced 2 x :data:`PYRAMID_TILE` rows at a time.

    Examples
    --------
    >>> import numpy as np
    >>> halve_image(np.arange(3000 * 5, dtype=np.int32).reshape(3000, 5)).shape
    (1500, 3)
    """
    height = int(image.shape[0])
    out = None
    step = 2 * PYRAMID_TILE
    for y0 in range(0, height, step):
        part = halve(np.asarray(image[y0 : y0 + step]))
        if out is None:
            out = np.empty(((height + 1) // 2, *part.shape[1:]), part.dtype)
        out[y0 // 2 : y0 // 2 + part.shape[0]] = part
    return out


def in_memory(array) -> bool:
    """Whether ``array`` is a numpy array in memory: not a memory map (nor a view of one), not
    a zarr or dask array or :class:`LazyImage`, which :func:`write_pyramid` reads band by band.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> x = np.zeros((4, 4), np.int32)
    >>> npy = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
    >>> mm = np.lib.format.open_memmap(npy, "w+", x.dtype, x.shape)
    >>> in_memory(x), in_memory(mm), in_memory(np.asarray(mm)[1:3])
    (True, False, False)
    """
    if not isinstance(array, np.ndarray):
        return False
    base = array
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return False
        base = getattr(base, "base", None)
    return True


def _tiles_and_level1(
    image, axes: str, dtype: np.dtype, level1: np.ndarray
) -> Iterator[np.ndarray]:
    """Level 0's tiles in tifffile's order (plane by plane, then row by row) from ``image``
    (H, W[, C]) read :data:`PYRAMID_TILE` rows at a time, each band reduced into ``level1``
    (:func:`halve`) on the way, so that the source is read once (a plane of ``"CYX"`` reads
    its channel of each band)."""
    height, width = int(image.shape[0]), int(image.shape[1])
    if axes == "CYX":
        planes: list[Callable[[int, int], Any]] = [
            (lambda y0, y1, c=c: image[y0:y1, :, c]) for c in range(int(image.shape[2]))
        ]
    elif len(image.shape) == 3 and axes == "YX":
        planes = [lambda y0, y1: image[y0:y1, :, 0]]
    else:
        planes = [lambda y0, y1: image[y0:y1]]
    for c, band_of in enumerate(planes):
        target = level1[..., c] if axes == "CYX" else level1
        for y0 in range(0, height, PYRAMID_TILE):
            band = np.asarray(band_of(y0, y0 + PYRAMID_TILE)).astype(dtype, copy=False)
            small = halve(band)
            target[y0 // 2 : y0 // 2 + small.shape[0]] = small
            for x0 in range(0, width, PYRAMID_TILE):
                yield band[:, x0 : x0 + PYRAMID_TILE]


def write_pyramid(
    tmp: Path,
    image,
    *,
    ome: bool,
    metadata: dict[str, Any],
    resolution: dict[str, Any],
    software: str | None = None,
) -> None:
    """A tiled, pyramidal (OME-)TIFF of ``image`` (H, W[, C]) through tifffile's own writer.

    Level 0 is the image in :data:`PYRAMID_TILE` square tiles, compressed with
    :data:`PYRAMID_COMPRESSION`, in a BigTIFF; the reduced levels (:func:`pyramid_shapes`, each
    made from the one before by :func:`halve`) are its SubIFDs (``subfiletype=1``), as tifffile's
    pyramidal OME-TIFF example writes them, and carry the resolution tags of their scale. An
    image in memory is handed to tifffile whole; a memory map, zarr or dask array or
    :class:`LazyImage` is read band by band, as an iterator of tiles, and reduced on the way.

    ``metadata`` is the first page's (OME keywords, or a plain TIFF's JSON description, without
    ``axes``); ``resolution`` is level 0's ``resolution``/``resolutionunit`` keywords, or empty.
    """
    import tifffile

    height, width = int(image.shape[0]), int(image.shape[1])
    dtype = np.dtype(np.uint8 if np.dtype(image.dtype).kind == "b" else image.dtype)
    axes, photometric = plane_layout(tuple(image.shape), dtype)
    shapes = pyramid_shapes(height, width)
    options: dict[str, Any] = {
        "photometric": photometric,
        "tile": (PYRAMID_TILE, PYRAMID_TILE),
        "compression": PYRAMID_COMPRESSION,
    }
    if software is not None:
        options["software"] = software

    def scaled(level: int) -> dict[str, Any]:
        if not resolution:
            return {}
        rx, ry = resolution["resolution"]
        return {**resolution, "resolution": (rx / 2**level, ry / 2**level)}

    # the levels' JSON description names their axes, so tifffile reads a plain TIFF's levels
    # as the pyramid of its one series; OME-XML describes level 0 and tifffile the SubIFDs
    level_meta: dict[str, Any] = {} if ome else {"metadata": {"axes": axes}}
    first = {"subifds": len(shapes) or None, "metadata": {"axes": axes, **metadata}}
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=ome) as tif:
        if in_memory(image):
            data = tiff_layout(image.astype(dtype, copy=False))[0]
            tif.write(data, **first, **scaled(0), **options)
            del data
            level = halve_image(image) if shapes else None
        else:
            half = ((height + 1) // 2, (width + 1) // 2)
            if axes == "YX":
                stored, level = (height, width), np.empty(half, dtype)
            else:
                n_chan = int(image.shape[2])
                stored = (height, width, n_chan) if axes == "YXS" else (n_chan, height, width)
                level = np.empty((*half, n_chan), dtype)
            tiles = _tiles_and_level1(image, axes, dtype, level)
            tif.write(tiles, shape=stored, dtype=dtype, **first, **scaled(0), **options)
        for k in range(1, len(shapes) + 1):
            if k > 1:
                level = halve_image(level)
            tif.write(tiff_layout(level)[0], subfiletype=1, **level_meta, **scaled(k), **options)


__all__ = [
    "FRAME_KEYS",
    "PYRAMID_COMPRESSION",
    "PYRAMID_MIN_SIDE",
    "PYRAMID_TILE",
    "PYRAMID_TOP_SIDE",
    "FullResolutionFrame",
    "full_resolution_frame",
    "halve",
    "halve_image",
    "in_memory",
    "is_pyramidal",
    "level_count",
    "plane_layout",
    "pyramid_shapes",
    "tiff_layout",
    "write_pyramid",
]
