"""OME-Zarr (NGFF) through ``ome-zarr`` and ``zarr``: multiscale images in, label pyramids out.

Reading takes one resolution level of the first multiscale image of the store as a dask array
(``ome_zarr.reader.Reader``), so ``lazy=True`` reads only the chunks asked for. Writing puts
instance labels back into the image's store as an NGFF ``labels/<name>`` group
(``ome_zarr.writer.write_labels``): a nearest-neighbour pyramid with as many levels as the
image has, the image's NGFF version and its physical pixel size.

Both need the optional extra ``pip install "sciconv[ome]"`` (zarr, ome-zarr); without it a
:class:`MissingDependencyError` says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np

from sciconv._validation import refuse_swapped
from sciconv.errors import (
    ConfigError,
    InvalidImageError,
    MissingDependencyError,
    OutputExistsError,
    SciconvError,
)
from sciconv.io._common import brief, check_memory, check_pixel_limit, first_call, to_float32
from sciconv.io._files import user_path, validate_path
from sciconv.io._image import GridImage, LazyImage
from sciconv.io._ngff_meta import NGFF_UNITS, level_frame, node_metadata, physical_meta
from sciconv.io._tiff import PLANE_AXES

UNITS_NGFF = {v: k for k, v in NGFF_UNITS.items()}
# PixelScale units (astropy's spelling) -> NGFF
ASTROPY_NGFF = {
    "um" if k == "µm" else ("Angstrom" if k == "Å" else k): v for k, v in UNITS_NGFF.items()
}


def zarr_module(path=None):
    """Import zarr (a dependency of sciconv on Python 3.11+: block-wise label maps, lazy label
    stores), or raise :class:`MissingDependencyError` naming ``path`` and the install line.

    Examples
    --------
    >>> zarr_module().__name__
    'zarr'
    """
    try:
        import zarr
    except ImportError as exc:
        raise MissingDependencyError(
            f"this needs zarr >= 3 ({brief(exc)}), which sciconv installs on Python 3.11 and "
            "later; install it with: pip install 'zarr>=3' (or write a .npy label map)",
            path=path,
        ) from exc
    return zarr


def ome_zarr_modules(path=None):
    """Import zarr and ome-zarr, or raise :class:`MissingDependencyError` with the install line."""
    try:
        import ome_zarr.format
        import ome_zarr.io
        import ome_zarr.reader
        import ome_zarr.writer
        import zarr
    except ImportError as exc:
        raise MissingDependencyError(
            f"OME-Zarr needs zarr and ome-zarr ({brief(exc)}); "
            'install them with: pip install "sciconv[ome]"',
            path=path,
        ) from exc
    return zarr, ome_zarr


class _ReadNoise(logging.Filter):
    """Drops ome-zarr's log warnings that every read of a valid NGFF 0.4 store gives ("version
    mismatch: detected: FormatV04, requested: FormatV05", "no parent found for <Label>": up to
    a dozen lines a read, through logging's last-resort handler), in the threads inside
    :func:`_quiet_reads` only; put once on ome-zarr's two loggers and inert elsewhere."""

    BENIGN = ("version mismatch: detected", "no parent found for")

    def __init__(self):
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record):
        if threading.get_ident() not in self.threads:
            return True
        return not str(record.msg).startswith(self.BENIGN)


_READ_NOISE = _ReadNoise()
_NOISE_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_reads():
    """ome-zarr's benign reading warnings not shown in this thread while the block runs."""
    with _NOISE_LOCK:
        for name in ("ome_zarr.io", "ome_zarr.reader"):
            logger = logging.getLogger(name)
            if _READ_NOISE not in logger.filters:
                logger.addFilter(_READ_NOISE)
    me = threading.get_ident()
    inside = me in _READ_NOISE.threads
    _READ_NOISE.threads.add(me)
    try:
        yield
    finally:
        if not inside:
            _READ_NOISE.threads.discard(me)


def _open_multiscale(path: Path):
    """The first multiscale image node of an OME-Zarr store (``ome_zarr.reader.Node``)."""
    _, ome_zarr = ome_zarr_modules(path)
    with _quiet_reads():
        location = ome_zarr.io.parse_url(str(path), mode="r")
        if location is None:
            raise InvalidImageError("not an OME-Zarr store (no zarr group found)", path=path)
        images = [
            node
            for node in ome_zarr.reader.Reader(location)()
            if node.data and any(type(s).__name__ == "Multiscales" for s in node.specs)
        ]
    # a label group's Reader also yields its parent image: take the group asked for first
    here = str(location.path).rstrip("/")
    if images:
        return min(images, key=lambda n: str(n.zarr.path).rstrip("/") != here)
    raise InvalidImageError("OME-Zarr store holds no multiscale image", path=path)


def _stored_image(path: Path):
    """:func:`_open_multiscale` of a store that must exist (the readers' entry)."""
    if not path.is_dir():
        raise InvalidImageError("OME-Zarr store not found (expected a folder)", path=path)
    return _open_multiscale(path)


def _axis_letters(node, ndim: int, path: Path) -> tuple[list[str], str]:
    """The NGFF axis names of a multiscale node and their upper-case first letters."""
    axes_meta = node.metadata.get("axes") or []
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
    if len(names) != ndim:
        names = ["t", "c", "z", "y", "x"][-ndim:]
    letters = "".join(n.upper()[:1] for n in names)
    if "Y" not in letters or "X" not in letters:
        raise InvalidImageError(f"OME-Zarr axes {names} have no y and x", path=path)
    return names, letters


def zarr_axes(path: Path) -> tuple[str, tuple[int, ...]]:
    """The axis letters (``"TCZYX"``, ...) and full-resolution shape of an OME-Zarr store, from
    its metadata alone (no pixels read). A ``t`` axis of one time point is left out unless the
    store gives its frame interval (a scale in a time unit): bioformats2raw and others write
    every image as ``t, c, z, y, x``, while a movie of one frame keeps its ``T``."""
    node = _stored_image(path)
    shape = tuple(int(n) for n in node.data[0].shape)
    names, letters = _axis_letters(node, len(shape), path)
    if "T" in letters and shape[letters.index("T")] == 1:
        if "time_interval" not in physical_meta(node_metadata(node), names, 0, path):
            i = letters.index("T")
            letters, shape = letters[:i] + letters[i + 1 :], shape[:i] + shape[i + 1 :]
    return letters, shape


#: Key of the attributes sciconv writes on a plain zarr array it produces (block-wise labels):
#: ``{"wcs": FITS header text, "pixel_scale": PixelScale.to_dict(), "history": [...]}``.
ZARR_ARRAY_ATTRS = "sciconv"

#: Chunks (y, x) of the arrays write_ome_zarr and write_ome_zarr_labels write, per channel: a
#: level was one chunk (ome-zarr-py's default), so a viewer or a lazy read of one window
#: decompressed the whole level (432 MB for a 6000² RGB float image)
CHUNK_YX = (1024, 1024)


def plain_array(path: Path):
    """The zarr array at ``path`` when it is one (not a group, not OME-Zarr), else None."""
    zarr, _ = ome_zarr_modules(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception:  # not zarr at all: the OME-Zarr reader says what is wrong
        return None
    return node if isinstance(node, zarr.Array) and node.ndim == 2 else None


def _read_plain_array(array, path: Path, *, section, lazy: bool) -> GridImage:
    """A 2-D zarr array (sciconv's block-wise labels) as (H, W, 1), with the WCS and pixel size
    recorded in its attributes."""
    ny, nx = (int(n) for n in array.shape)
    ys, xs = (slice(0, ny), slice(0, nx))
    if section is not None:
        ys, xs = (slice(*s.indices(n)[:2]) for s, n in zip(section, (ny, nx)))
    attrs = dict(array.attrs.get(ZARR_ARRAY_ATTRS) or {})
    meta = {"format": "zarr", "dtype": np.dtype(array.dtype).name, "axes": "YX"}
    if section is not None:  # where the section sits (full_resolution_frame: QuPath GeoJSON)
        meta["section_origin"] = (ys.start, xs.start)
    wcs = _apply_recorded(attrs, meta, path, None if section is None else (ys, xs))

    first_window = first_call()

    def reader(ys_: slice, xs_: slice) -> np.ndarray:
        rows = slice(ys.start + ys_.start, ys.start + ys_.stop)
        cols = slice(xs.start + xs_.start, xs.start + xs_.stop)
        window = np.asarray(array[rows, cols])[..., None]  # precision: first window only
        return to_float32(window, path=path, check=first_window())

    shape = (ys.stop - ys.start, xs.stop - xs.start, 1)
    if lazy:
        return GridImage(LazyImage(reader, shape, path=str(path)), wcs=wcs, path=str(path),
                         meta=meta)  # fmt: skip
    _check_whole(shape, array.dtype, path, whole=section is None)
    data = reader(slice(0, shape[0]), slice(0, shape[1]))
    return GridImage(data, wcs=wcs, mask=np.isnan(data), path=str(path), meta=meta)


def _check_whole(shape, dtype, path: Path, *, whole: bool) -> None:
    """Refuse an eager read that cannot fit in free memory, or (``whole``: the whole image, not a
    section) that declares more pixels than twice ``PIL.Image.MAX_IMAGE_PIXELS``: a store of a
    few kB declaring a huge shape, its chunks all fill value, is a decompression bomb."""
    if whole:
        ny, nx = int(shape[-3]), int(shape[-2])
        check_pixel_limit(ny * nx, path, source=f"the zarr store ({ny} x {nx})", windowed=True)
    check_memory(int(np.prod(shape, dtype=np.int64)), np.dtype(dtype).itemsize, path)


def _apply_recorded(attrs: dict, meta: dict, path: Path, section):
    """The WCS sciconv's attributes (:data:`ZARR_ARRAY_ATTRS`) record, sliced to ``section``
    ((rows, columns) slices), or None; their pixel scale and history go into ``meta``."""
    scale = attrs.get("pixel_scale")
    if isinstance(scale, dict) and {"y", "x", "unit"} <= set(scale):
        meta.update(pixel_size=(scale["y"], scale["x"]), pixel_unit=scale["unit"])
    if attrs.get("history"):
        meta["history"] = list(attrs["history"])
    if not attrs.get("wcs"):
        return None
    from astropy.io import fits

    from sciconv.io._header import fits_wcs

    wcs = fits_wcs(fits.Header.fromstring(attrs["wcs"]), None, path)
    return wcs if wcs is None or section is None else wcs.slice(section)


def read_zarr(path: Path, *, level: int, stack: bool, section, lazy: bool) -> GridImage:
    """:func:`sciconv.io.read` of an OME-Zarr store: one resolution level as (H, W, C); or of a
    plain 2-D zarr array (the labels of block-wise instances) with its recorded WCS."""
    if path.is_dir() and not stack and level == 0:
        array = plain_array(path)
        if array is not None:
            return _read_plain_array(array, path, section=section, lazy=lazy)
    node = _stored_image(path)
    levels = [tuple(int(n) for n in d.shape) for d in node.data]
    if not 0 <= level < len(levels):
        raise ConfigError(
            f"level must be 0 to {len(levels) - 1} (the store has {len(levels)} resolution "
            f"levels, shapes {levels}); got {level}",
            path=path,
        )
    dask_array = node.data[level]
    names, letters = _axis_letters(node, dask_array.ndim, path)
    arranged = _arrange_dask(dask_array, letters, stack=stack, path=path)
    ny, nx = arranged.shape[-3], arranged.shape[-2]
    window = None
    if section is not None:
        window = tuple(slice(*s.indices(n)[:2]) for s, n in zip(section, (ny, nx)))
        arranged = arranged[..., window[0], window[1], :]
    meta = {
        "format": "ome-zarr",
        "dtype": np.dtype(dask_array.dtype).name,
        "axes": letters,
        "shape": levels[level],
        "level": level,
        "levels": levels,
    }
    # where the level and the section sit in level 0 (full_resolution_frame: QuPath GeoJSON)
    metadata = node_metadata(node)  # each level's transforms composed with the multiscale's
    meta.update(level_frame(metadata, letters, level, levels))
    if window is not None:
        meta["section_origin"] = (window[0].start, window[1].start)
    meta.update(physical_meta(metadata, names, level, path))
    recorded = _recorded(path)
    names_c = recorded.get("class_names")
    n = int(arranged.shape[-1])
    if "channel_names" not in meta and isinstance(names_c, list) and len(names_c) == n:
        if all(isinstance(v, str) for v in names_c):
            meta["channel_names"] = list(names_c)  # stores without omero labels keep them here
    wcs = None  # a mosaic store's level 0 is the grid its WCS describes (write_ome_zarr_mosaic)
    if level == 0 and not stack and {"wcs", "pixel_scale"} & set(recorded):
        wcs = _apply_recorded(recorded, meta, path, window)
    if lazy:
        if stack:
            raise ConfigError("stack=True and lazy=True cannot be combined; read the stack eagerly")

        first_window = first_call()

        def reader(ys: slice, xs: slice) -> np.ndarray:
            # in this thread (dask's pool of a forked parent has no threads here: a hang, QA)
            raw = np.asarray(arranged[ys, xs].compute(scheduler="sync"))
            return to_float32(raw, path=path, check=first_window())  # precision: first only

        return GridImage(
            LazyImage(reader, arranged.shape, path=str(path)), wcs=wcs, path=str(path), meta=meta
        )
    _check_whole(arranged.shape, dask_array.dtype, path, whole=section is None)
    data = to_float32(np.asarray(arranged.compute(scheduler="sync")), path=path)
    return GridImage(data, wcs=wcs, mask=np.isnan(data), path=str(path), meta=meta)


def _arrange_dask(array, letters: str, *, stack: bool, path: Path):
    """Move a dask array's axes to ``(H, W, C)`` (or ``(N, H, W, C)`` with ``stack``)."""
    import dask.array as da

    keep = [i for i, (a, n) in enumerate(zip(letters, array.shape)) if a in "YXC" or n > 1]
    array = array[tuple(slice(None) if i in keep else 0 for i in range(array.ndim))]
    letters = "".join(letters[i] for i in keep)
    others = [a for a in letters if a not in "YXC"]
    if others and not stack:
        if len(others) == 1 and "C" not in letters and others[0] in PLANE_AXES:
            raise InvalidImageError(
                f"OME-Zarr axes {letters!r} (shape {array.shape}) declare "
                f"{array.shape[letters.index(others[0])]} {others[0]} planes: a stack of 2-D "
                "images, not the channels of one; pass stack=True to read them (N, H, W, C)",
                path=path,
            )
        if len(others) == 1 and "C" not in letters:
            letters = letters.replace(others[0], "C")
            others = []
        else:
            raise InvalidImageError(
                f"OME-Zarr axes {letters!r} (shape {array.shape}) hold more than channels; "
                "pass stack=True to read a stack (N, H, W, C)",
                path=path,
            )
    if "C" not in letters:
        array, letters = array[..., None], letters + "C"
    order = [letters.index(a) for a in others] + [letters.index(a) for a in "YXC"]
    array = da.transpose(array, order)
    if stack:
        n = int(np.prod(array.shape[: len(others)], dtype=np.int64)) if others else 1
        array = array.reshape((n, *array.shape[len(others) :]))
    return array


def ome_zarr_labels(path: str | Path) -> dict[str, list[Path]]:
    """The NGFF label images of an OME-Zarr image, from its ``labels/`` metadata.

    Parameters
    ----------
    path : str or os.PathLike
        The image's store (``.ome.zarr`` folder).

    Returns
    -------
    dict of str to list of pathlib.Path
        Each label image's name (``labels/<name>``, in the order the store lists them) and the
        zarr arrays of its resolution levels, full resolution first: read each with
        :func:`sciconv.io.read_labels`. Empty when the store has no labels.

    Raises
    ------
    InvalidImageError
        ``path`` does not exist, or is not a zarr store.
    MissingDependencyError
        zarr / ome-zarr are not installed (``pip install "sciconv[ome]"``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> from sciconv.io import ome_zarr_labels
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "cells.ome.zarr"
    >>> _ = io.write_ome_zarr(store, np.zeros((32, 32), "uint16"), levels=2)
    >>> _ = io.write_ome_zarr_labels(store, np.ones((32, 32), "int32"), name="nuclei")
    >>> {k: [p.relative_to(store).as_posix() for p in v] for k, v in ome_zarr_labels(store).items()}
    {'nuclei': ['labels/nuclei/s0', 'labels/nuclei/s1']}
    """
    path = user_path(path)
    if not path.exists():  # a typo is not "a store without labels"
        validate_path(path)  # names a broken link, or says the file is not found
    if path.is_file():  # a TIFF, say: not a store (a folder)
        raise InvalidImageError("not a zarr store: a file, not a folder", path=path)
    zarr, _ = ome_zarr_modules(path)
    root = path / "labels"
    try:
        attrs = dict(zarr.open_group(str(root), mode="r").attrs)
    except Exception:  # no labels/ group (or not zarr): no label images
        return {}
    names = attrs.get("ome", attrs).get("labels")
    out: dict[str, list[Path]] = {}
    for name in dict.fromkeys(names if isinstance(names, list) else []):
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            continue
        try:
            label = dict(zarr.open_group(str(root / name), mode="r").attrs)
        except Exception:  # listed but missing: nothing to read
            continue
        levels = multiscale_levels(root / name, label)
        if levels:
            out[name] = levels
    return out


def multiscale_levels(path: Path, attrs: dict) -> list[Path]:
    """The arrays of the multiscale image group at ``path`` (its zarr attributes ``attrs``, NGFF
    0.4 or 0.5), full resolution first, from its first ``multiscales`` entry; [] when none.

    Examples
    --------
    >>> from pathlib import Path
    >>> attrs = {"ome": {"multiscales": [{"datasets": [{"path": "s0"}, {"path": "s1"}]}]}}
    >>> [p.as_posix() for p in multiscale_levels(Path("a.ome.zarr"), attrs)]
    ['a.ome.zarr/s0', 'a.ome.zarr/s1']
    """
    multiscales = attrs.get("ome", attrs).get("multiscales") or [{}]
    datasets = multiscales[0].get("datasets") if isinstance(multiscales[0], dict) else None
    return [
        Path(path) / str(d["path"])
        for d in datasets or []
        if isinstance(d, dict) and d.get("path") is not None
    ]


def _recorded(path: Path) -> dict:
    """What sciconv records in a store's (or label group's) ``sciconv`` attributes
    (:data:`ZARR_ARRAY_ATTRS`): class names, history, a mosaic's WCS and pixel scale; empty
    when nothing is recorded."""
    zarr, _ = ome_zarr_modules(path)
    try:
        attrs = zarr.open_group(str(path), mode="r").attrs.get(ZARR_ARRAY_ATTRS)
    except Exception:  # not a group of its own (a sub-path the reader resolved): no record
        return {}
    return dict(attrs) if isinstance(attrs, dict) else {}


def level_transform(k: int, lead: list, dy: float, dx: float, *, mean: bool) -> list[dict]:
    """NGFF coordinate transformations of level ``k``: its scale and, for an image level of
    2**k x 2**k means, the offset of its pixel centres ((2**k - 1) / 2 level-0 pixels; labels
    take every other pixel, no offset). Without it viewers that honour offsets (vizarr,
    neuroglancer) showed the overviews half a pixel off (QA).

    Examples
    --------
    >>> level_transform(1, [1.0], 0.5, 0.5, mean=True)[1]["translation"]
    [0.0, 0.25, 0.25]
    >>> level_transform(2, [], 1.0, 1.0, mean=False)
    [{'type': 'scale', 'scale': [4.0, 4.0]}]
    """
    step = 2**k
    out = [{"type": "scale", "scale": [*lead, dy * step, dx * step]}]
    if mean and k:
        shift = (step - 1) / 2
        out.append({"type": "translation", "translation": [*(0.0 for _ in lead), dy * shift,
                                                           dx * shift]})  # fmt: skip
    return out


def write_ome_zarr_labels(
    image: str | Path,
    labels,
    *,
    name: str = "labels",
    overwrite: bool = False,
) -> Path:
    """Write instance labels into an OME-Zarr image as an NGFF ``labels/<name>`` pyramid.

    The labels group gets one level per level of the image (nearest-neighbour downsampling by 2,
    so label ids survive), the image's NGFF version (0.4 or 0.5) and its pixel size, and the
    ``image-label`` metadata viewers (napari, QuPath, OMERO) look for.

    Parameters
    ----------
    image : str or os.PathLike
        The ``.ome.zarr`` store holding the image the labels were predicted on.
    labels : array_like of int, shape (H, W)
        Instance labels at the image's full resolution (level 0), 0 = background.
    name : str
        The label image's name (``labels/<name>``), e.g. ``"nuclei"``.
    overwrite : bool
        Replace an existing ``labels/<name>``; without it an existing one raises.

    Returns
    -------
    pathlib.Path
        The ``labels/<name>`` group written.

    Raises
    ------
    MissingDependencyError
        zarr / ome-zarr are not installed (``pip install "sciconv[ome]"``).
    InvalidImageError
        ``image`` is not an OME-Zarr image, or ``labels`` is not (H, W) integers of its size.
    OutputExistsError
        ``labels/<name>`` exists and ``overwrite`` is False.
    WriteError
        The disk or folder refused the write (full, quota, read-only). The group is written
        beside ``labels/<name>`` and renamed onto it: a failure leaves the old labels.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "cells.ome.zarr"
    >>> _ = io.write_ome_zarr(store, np.zeros((32, 32, 1), "uint16"), levels=2)
    >>> labels = np.zeros((32, 32), "int32"); labels[4:12, 4:12] = 1
    >>> io.write_ome_zarr_labels(store, labels, name="nuclei").relative_to(store).as_posix()
    'labels/nuclei'
    >>> io.read(store / "labels" / "nuclei", level=1).shape
    (16, 16, 1)
    """
    refuse_swapped(image, labels, call="sciconv.io.write_ome_zarr_labels(image, labels)")
    zarr, ome_zarr = ome_zarr_modules(image)
    image = user_path(image, what="image")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ConfigError(f"name must be a plain folder name such as 'nuclei'; got {name!r}")
    node = _open_multiscale(image)
    arr = np.asarray(labels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in node.metadata.get("axes", [])]
    base = tuple(int(n) for n in node.data[0].shape)
    want = (base[axes.index("y")], base[axes.index("x")]) if "y" in axes else base[-2:]
    if arr.dtype.kind not in "iub" or arr.shape != want:
        raise InvalidImageError(
            f"labels must be integer (H, W) = {want} like the image's level 0; got "
            f"{arr.dtype} {arr.shape}",
            path=image,
        )
    target = image / "labels" / name
    if target.exists() and not overwrite:
        raise OutputExistsError("labels exist; pass overwrite=True to replace them", path=target)
    version = _ngff_version(dict(zarr.open_group(str(image), mode="r").attrs))
    fmt = ome_zarr.format.format_from_version(version)
    physical = physical_meta(node_metadata(node), axes, 0, image)
    dy, dx = (float(v) for v in physical.get("pixel_size", (1.0, 1.0)))
    unit = UNITS_NGFF.get(physical.get("pixel_unit")) if "pixel_size" in physical else None
    # axes as dicts: ome-zarr-py then names the arrays' dimensions (NGFF 0.5 asks it)
    axes_meta = [{"name": a, "type": "space", **({"unit": unit} if unit else {})} for a in "yx"]
    arr = arr.astype(np.int32 if arr.dtype.kind == "b" else arr.dtype, copy=False)
    # every other pixel, level by level (ids survive), with the level's true offset: 0, as
    # level k's pixel j is level 0's pixel j 2**k (ome-zarr-py's own labels pyramid took
    # pixel j 2**k + 2**k - 1 and declared half a pixel: levels misplaced in vizarr; QA)
    steps = [2**k for k in range(len(node.data))]

    def write(scratch: Path) -> Path:  # the group, built in a store of its own: scratch/labels
        ome_zarr.writer.write_multiscale_labels(
            [arr[::step, ::step] for step in steps],
            zarr.open_group(str(scratch), mode="w", zarr_format=fmt.zarr_format),
            name=name,
            axes=axes_meta,
            fmt=fmt,
            coordinate_transformations=[
                level_transform(k, [], dy, dx, mean=False) for k in range(len(steps))
            ],
            label_metadata={"source": {"image": "../../"}},
            storage_options={"chunks": CHUNK_YX},
        )
        return scratch / "labels" / name

    _swap_in(target, write, overwrite=overwrite, listed=lambda: _list_label(image, name, fmt))
    return target


def _swap_in(target: Path, write, *, overwrite: bool, listed) -> None:
    """Build a group with ``write(scratch)`` in a hidden scratch folder beside ``target``
    (``_atomic.scratch_folder``), rename an old ``target`` into it and the new group onto
    ``target``, then call ``listed()`` and remove the scratch. A failure puts the old group back
    and leaves nothing else; a disk refusal is a WriteError naming ``target``."""
    from sciconv._atomic import abandon_scratch, remove_scratch, scratch_folder, target_error

    new_folder = not target.parent.is_dir()  # labels/ made here: removed again on failure
    scratch = scratch_folder(target)  # a WriteError naming target when it cannot be made
    old = moved = None
    try:
        built = write(scratch)
        if os.path.lexists(target):
            if not overwrite:
                raise OutputExistsError("labels appeared while writing; not replaced", path=target)
            old = scratch / "old"
            os.rename(target, old)
        os.rename(built, target)
        moved = built
        listed()
    except BaseException as exc:  # Ctrl-C too: the old group back in place
        restored = old is None
        with contextlib.suppress(OSError):
            if moved is not None:
                try:
                    os.rename(target, moved)
                except OSError:  # the new group out of the way anyhow: the old one comes back
                    shutil.rmtree(target)
            if old is not None:
                os.rename(old, target)
                restored = True
        if restored:  # else the old group stays in the scratch folder, not deleted with it
            abandon_scratch(scratch)  # zarr's I/O thread may still write into it
        if new_folder:
            _remove_bare_group(target.parent)
        if not isinstance(exc, Exception):
            raise
        mapped = target_error(exc, scratch, target)
        if mapped is None and not isinstance(exc, SciconvError):
            mapped = InvalidImageError(f"cannot write OME-Zarr labels ({brief(exc)})", path=target)
        if mapped is None:
            raise
        raise mapped from exc
    remove_scratch(scratch)  # and the old group in it


def _remove_bare_group(folder: Path) -> None:
    """Remove ``folder`` when it holds nothing but a zarr group's metadata files."""
    with contextlib.suppress(OSError):
        names = {entry.name for entry in folder.iterdir()}
        if names <= {"zarr.json", ".zgroup", ".zattrs"}:
            for name in names:
                (folder / name).unlink()
            folder.rmdir()


def _list_label(image: Path, name: str, fmt) -> None:
    """``name`` listed (once) in the ``labels/`` group of ``image``, made when missing, in one
    metadata write (zarr writes it atomically): a failure leaves the list as it was."""
    zarr, _ = ome_zarr_modules(image)
    listed = {"labels": [name]}
    made = {"ome": {"version": fmt.version, **listed}} if fmt.zarr_format == 3 else listed
    group = zarr.open_group(str(image / "labels"), zarr_format=fmt.zarr_format, attributes=made)
    tidy_labels_group(group, fmt.version, add=name)


def tidy_labels_group(group, version: str, *, add: str | None = None) -> None:
    """Make the ``labels/`` group's metadata what NGFF asks for, after
    ``ome_zarr.writer.write_labels`` (ome-zarr-py 0.18): NGFF 0.5 needs ``"version"`` in the
    group's ``ome`` attributes (left out, so validators such as ome-zarr-models rejected the
    whole store), and a label image rewritten with ``overwrite`` is listed once, not twice.
    ``add``: a label image's name listed too (once), in the same write.
    """
    attrs = dict(group.attrs)
    ome = attrs.get("ome")
    if not isinstance(ome, dict) and add is not None and group.metadata.zarr_format == 3:
        ome = {}
    if isinstance(ome, dict):  # NGFF 0.5 (zarr v3): all under "ome", with its version
        fixed = {"version": ome.get("version") or version, **ome}
        labels = _listed(ome.get("labels"), add)
        if labels is not None:
            fixed["labels"] = labels
        if fixed != ome:
            group.attrs["ome"] = fixed
        return
    labels = _listed(attrs.get("labels"), add)  # NGFF 0.4: the list at the top level
    if labels is not None and labels != attrs.get("labels"):
        group.attrs["labels"] = labels


def _listed(labels, add: str | None) -> list | None:
    """A ``labels`` list without repeats and with ``add`` in it; None when there is none."""
    if not isinstance(labels, list):
        return None if add is None else [add]
    return list(dict.fromkeys([*labels, *([] if add is None else [add])]))


def _ngff_version(attrs: dict) -> str:
    ome = attrs.get("ome", attrs)
    multiscales = ome.get("multiscales") or [{}]
    return str(ome.get("version") or multiscales[0].get("version") or "0.4")
