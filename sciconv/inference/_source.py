"""Image sources: any accepted image kind -> uniform ``(H, W, C)`` float32 window reads.

A numpy array, a memory map, a :class:`~sciconv.io.GridImage` (whose ``.data`` may be a lazy
:class:`~sciconv.io.LazyImage`) or a dask array. Normalization limits are measured here, once per
image, on the same pixels for every kind (a subsample of a lazy or huge image).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from sciconv import io, preprocess
from sciconv.errors import InferenceError, SciconvError
from sciconv.inference._decisions import note_transform
from sciconv.io import file_map, read_mapped
from sciconv.io._precision import check_float32_precision, wider_than_float32
from sciconv.models import get_metadata
from sciconv.preprocess._transform import resolve_input_transform

#: Normalization statistics of an image over 4x this many pixels come from a subsample of 1x-4x
#: this many pixels on random rows and columns (whatever holds the image: memory, memory map,
#: file or dask).
_LIMIT_SAMPLES = 1_000_000


def is_dask(x) -> bool:
    """Whether ``x`` is a dask array (without importing dask)."""
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "map_overlap")


def validate_image(image) -> tuple[Any, str | None]:
    """Return (array-like of shape (H, W[, C]), path) from any accepted image kind."""
    if image is None:
        raise InferenceError("image is None; pass a numpy array, GridImage or dask array")
    if isinstance(image, (str, os.PathLike)):
        raise InferenceError(
            f"image is a path ({os.fspath(image)!r}); read it first with sciconv.io.read(path, "
            "lazy=True) and pass the GridImage"
        )
    if type(image).__module__.startswith("astropy.nddata"):
        from astropy.nddata import NDData

        if isinstance(image, NDData):  # masked pixels become NaN, (C, H, W) becomes (H, W, C)
            image = io.GridImage.from_nddata(image)
    path = getattr(image, "path", None)
    path = None if path is None else str(path)
    image = io.as_array(image)
    if image is None:
        raise InferenceError("image is None; pass a numpy array, GridImage or dask array")
    if not hasattr(image, "shape") or not hasattr(image, "__getitem__"):
        try:
            image = np.asarray(image)
        except Exception as err:  # any conversion failure is a bad image
            raise InferenceError(
                f"image must be an array, GridImage or dask array; got {type(image).__name__}"
            ) from err
    try:
        np.dtype(getattr(image, "dtype", np.float32))
    except TypeError:  # a tensor (TensorFlow, JAX, torch): numpy's view of its values
        image = np.asarray(image)
    shape = tuple(int(s) for s in image.shape)
    if len(shape) not in (2, 3):
        hint = ""
        if len(shape) == 4:  # io.read(path, stack=True)
            hint = (
                " (a stack (N, H, W, C): segment its planes one by one, stack.data[i], as "
                "sciconv predict does for TIFF movies and Z-stacks)"
            )
        raise InferenceError(
            f"image must have shape (H, W) or (H, W, C); got shape {shape}{hint}", path=path
        )
    dtype = np.dtype(getattr(image, "dtype", np.float32))
    if dtype.kind not in "biuf":
        raise InferenceError(f"image must hold real numbers; got dtype {dtype}", path=path)
    if min(shape[:2]) < 2:
        if len(shape) == 3 and shape[0] <= 4 < min(shape[1:]):  # (C, H, W) as numpy holds it
            raise InferenceError(
                f"image of shape {shape} looks channel-first (C, H, W); images are (H, W) or "
                "(H, W, C): pass np.moveaxis(image, 0, -1) (or image[0] for one channel)",
                path=path,
            )
        raise InferenceError(
            f"image of shape {shape} is too small: predict_tiled needs at least 2 pixels along H "
            "and W (a single row, column or pixel has no 2-D neighbourhood to pad by reflection)",
            path=path,
        )
    if len(shape) == 3 and shape[2] < 1:
        raise InferenceError(f"image of shape {shape} has no channels", path=path)
    return image, path


# channel names of a nuclear stain (check_channels names such a channel in its error)
_NUCLEAR_STAIN = re.compile(
    r"dapi|hoechst|draq|nucle|\bdna\b|h2b|sytox|to-?pro|nucblue|nucspot|\bpi\b|propidium",
    re.IGNORECASE,
)


def check_channels(model, image) -> None:
    """Refuse a multi-channel TIFF of separate stains for a model that takes colour.

    A model with an ``input_transform`` converting to RGB or grey (the pretrained nuclei model)
    reads three or four channels as R, G, B (and alpha): a fluorescence OME-TIFF or ImageJ
    composite of DAPI, phalloidin and mCherry was averaged to grey, merging the nuclei with the
    other stains (AP@0.5 0.000, the products written all the same). The file says its channels
    are separate images (:func:`sciconv.io.stored_as_channels`): the error lists them, names
    a channel that looks like a nuclear stain, and says how to pass one alone.

    Raises
    ------
    InferenceError
        For such an image and such a model.
    """
    if not io.stored_as_channels(image):
        return
    spec = get_metadata(model).get("input_transform") or {}
    if not (spec.get("to_rgb") or spec.get("to_gray")):
        return
    n = int(image.shape[-1])
    names = image.meta.get("channel_names") or []
    names = [str(v) for v in names] if len(names) == n else [""] * n
    listed = ", ".join(f"{k} {v!r}" if v else str(k) for k, v in enumerate(names))
    nuclear = [k for k, v in enumerate(names) if _NUCLEAR_STAIN.search(v)]
    hint = ""
    if len(nuclear) == 1:
        k = nuclear[0]
        hint = f"; channel {k} ({names[k]!r}) looks like the nuclear stain (--channel {k})"
    taken = (
        "the model would take them as R, G, B and average them, merging nuclei with the other "
        "stains"
        if n in (3, 4)
        else "the model takes one grey or colour image"
    )
    raise InferenceError(
        f"the image holds {n} separate channels ({listed}), stored as grey images, not the "
        f"colours of one picture; {taken}: segment the nuclear channel alone "
        f"(GridImage.channel(k); sciconv predict --channel K){hint}",
        path=getattr(image, "path", None),
    )


#: The results :func:`computed_once` keeps: key -> (the objects the key names, kept alive so
#: their ids stay theirs, the result)
_ONCE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("sciconv_once", default=None)


@contextlib.contextmanager
def computed_once() -> Iterator[None]:
    """Within the block, :func:`input_transform` and :func:`compute_limits` of one array are
    computed once.

    :func:`~sciconv.inference.predict_instances` measures its first pass's objects in the image
    as the model got it (:func:`~sciconv.inference.second_pass_input`): the same input
    transform and normalization limits its first pass computed a moment before (0.2-0.7 s of a
    1024^2 call, QA profiling). The results are keyed on the identity of the model, the array
    and the spec, and the arrays are kept alive until the block ends (an id is never reused
    within it), so keep the block short: the transformed image lives as long as it does.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import NormSpec
    >>> source = Source(np.arange(16.0).reshape(4, 4), promote=True, path=None)
    >>> with computed_once():
    ...     compute_limits(source, NormSpec("minmax")) is compute_limits(source, NormSpec("minmax"))
    True
    """
    token = _ONCE.set({})
    try:
        yield
    finally:
        _ONCE.reset(token)


def _once(key: tuple, keep: tuple, compute: Callable[[], Any]) -> Any:
    memo = _ONCE.get()
    if memo is None:
        return compute()
    try:
        hit = memo.get(key)
    except TypeError:  # an unhashable spec: computed every time
        return compute()
    if hit is None:
        hit = memo[key] = (keep, compute())
    return hit[1]


def input_transform(model, arr, path):
    """Apply the model's recorded ``input_transform`` (e.g. RGB -> grey, brightfield flipped).

    Models trained on transformed images (the pretrained nuclei model: grey, nuclei brighter than
    the background) record the transform in their metadata, like their normalization, so raw RGB
    or brightfield pixels can be passed as they are. The flip is decided once on the same pixels
    the normalization limits come from (:meth:`Source.limits_sample`: every pixel up to 4 million,
    a regular subsample above), so an image in memory, a memory map, a lazy file, a dask array and
    the block-wise path all transform alike; the transform is then applied pixel by pixel (on a
    dask array block by block, lazily).
    """
    spec = get_metadata(model).get("input_transform")
    if spec is None:
        return arr
    return _once(
        ("input_transform", id(model), id(arr), path),
        (model, arr),
        lambda: _transformed(arr, spec, path),
    )


def check_precision(source: Source, sample=None) -> None:
    """Warn when the image's pixels lose their signal in the float32 the model's input is
    computed in (:func:`~sciconv.io._precision.check_float32_precision` on ``sample``, default
    :meth:`Source.limits_sample`); once per image within :func:`computed_once`. Nothing is
    read for float32, 8- and 16-bit pixels."""
    if not wider_than_float32(getattr(source.array, "dtype", np.float32)):
        return
    _once(
        ("float32", id(source.array), source.path),
        (source.array,),
        lambda: check_float32_precision(
            source.limits_sample() if sample is None else sample,
            path=source.path,
            name="image",
        ),
    )


def _transformed(arr, spec, path):
    source = Source(arr, promote=len(arr.shape) == 2, path=path)
    sample = source.limits_sample()
    check_precision(source, sample)  # the transform computes in float32
    try:
        transform = note_transform(resolve_input_transform(sample, spec), spec)
    except SciconvError as exc:  # e.g. a channel count the model cannot take: name the file
        if exc.path is not None or path is None:
            raise
        raise type(exc)(exc.message, path=path) from exc
    if not is_dask(arr):
        # in memory: at once; a memory map or lazy file: window by window as the tiles read it
        return TransformedArray(arr, transform) if source.lazy else transform(np.asarray(arr))
    if arr.ndim == 2:
        arr = arr[..., None]
    arr = arr.rechunk({2: -1})  # the channel step needs every channel of a pixel in one chunk
    # chunks meet with no overlap: a saturated plateau cut by a chunk's edge would be raised
    # otherwise on each side (restore_saturated needs the plateau whole)
    transform = transform.pointwise()
    channels = transform.out_channels(int(arr.shape[2]))
    return arr.map_blocks(transform, dtype=np.float32, chunks=(*arr.chunks[:2], (channels,)))


class TransformedArray:
    """A lazy image seen through a pointwise input transform: each read is transformed.

    Keeps a memory map or a lazy file lazy: tiles are read and converted one at a time (only the
    limits sample is read at once: every pixel up to 4 million, a subsample above); ``shape`` is
    the transformed one, always ``(H, W, C)``.
    """

    def __init__(self, array, transform):
        self.array = array
        self.transform = transform
        h, w = (int(n) for n in array.shape[:2])
        channels = int(array.shape[2]) if len(array.shape) == 3 else 1
        self.shape = (h, w, transform.out_channels(channels))
        self.dtype = np.dtype(np.float32)
        self.ndim = 3
        self._map = file_map(array)

    def __getitem__(self, key) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError("TransformedArray takes [rows, columns] slices only")
        if self._map is not None:
            return self.transform(read_mapped(self._map, key))
        return self.transform(np.asarray(self.array[key]))


class Source:
    """Uniform (H, W, C) window reads from an array-like (numpy, memmap, LazyImage, dask block)."""

    def __init__(self, array, *, promote: bool, path: str | None):
        self.array = array
        self.promote = promote  # a 2-D array: add the channel axis after slicing
        self.path = path
        shape = tuple(int(s) for s in array.shape)
        self.shape = (*shape, 1) if promote else shape
        self._map = file_map(array)  # a memory-mapped file: each read maps it anew (flat RSS)

    @property
    def lazy(self) -> bool:
        return not isinstance(self.array, np.ndarray) or isinstance(self.array, np.memmap)

    def read(self, ys: slice, xs: slice, *, exact: bool = False) -> np.ndarray:
        """The window ``(H, W, C)`` in float32; with ``exact``, 64-bit pixels and 32-bit
        integers in float64 (the normalization stretches them before they become float32: a
        large pedestal under a faint signal, or values past float32's range, survive it)."""
        if self._map is not None:
            block = read_mapped(self._map, (ys, xs))
        else:
            block = np.asarray(self.array[ys, xs])
        if self.promote or block.ndim == 2:
            block = block[..., None]
        wide = exact and wider_than_float32(block.dtype)  # float64, 32- and 64-bit integers
        return block.astype(np.float64 if wide else np.float32, copy=False)

    def limits_sample(self):
        """What to measure normalization limits on: the same pixels for every source kind.

        The sample depends on the image's shape only, never on how it is stored, so an array in
        memory, its memory map, a lazy file and a dask array normalize alike (and a block-wise
        run reproduces the whole-image one): every pixel below ``4 * _LIMIT_SAMPLES`` pixels,
        otherwise the rows and columns of :func:`sample_lines` (1 to 4 million pixels), each
        row read alone (the pages of a huge memory map or file that are read never pile up).
        Rows and columns at random places, not every n-th: a mosaic of repeated tiles (scanner
        fields, detector chips) aliased with a regular grid, which then saw the same few places
        of every tile (limits 38k instead of 137k on a 16k mosaic).
        """
        h, w = self.shape[:2]
        lines = sample_lines(h, w)
        if lines is None:
            if is_dask(self.array):
                sub = np.asarray(self.array.compute())
                return sub[..., None] if sub.ndim == 2 else sub
            if not self.lazy:
                return self.array if not self.promote else self.array[..., None]
            return self.read(slice(None), slice(None))
        rows, cols = lines
        if is_dask(self.array):
            sub = np.asarray(self.array[rows][:, cols].compute())
        elif isinstance(self.array, np.ndarray) and self._map is None:
            sub = np.asarray(self.array[np.ix_(rows, cols)])
        else:  # a memory map or a lazy file: one full-width row at a time
            sub = np.concatenate([self.read(slice(r, r + 1), slice(None))[:, cols] for r in rows])
        return sub[..., None] if sub.ndim == 2 else sub


def sample_lines(h: int, w: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows and columns an image's normalization limits are measured on; None: every pixel.

    Images of up to ``4 * _LIMIT_SAMPLES`` pixels are measured whole. Larger ones on one row
    and one column in ``step`` (``step = floor(sqrt(h * w / _LIMIT_SAMPLES))``), drawn at random
    (sorted, without repeats) from a generator seeded by the shape: the same image always gets
    the same pixels, spread over all of it as a regular grid would be, but with no spacing for a
    periodic mosaic to alias with.

    Examples
    --------
    >>> rows, cols = sample_lines(4096, 8192)
    >>> len(rows), len(cols), bool((np.diff(rows) > 0).all())
    (819, 1638, True)
    >>> sample_lines(1000, 1000) is None
    True
    """
    if h * w <= 4 * _LIMIT_SAMPLES:
        return None
    step = max(1, math.floor(math.sqrt(h * w / _LIMIT_SAMPLES)))
    rng = np.random.default_rng([h, w])
    rows = np.sort(rng.choice(h, size=max(1, h // step), replace=False))
    cols = np.sort(rng.choice(w, size=max(1, w // step), replace=False))
    return rows, cols


def compute_limits(source: Source, spec: preprocess.NormSpec | None):
    """Normalization limits of the whole image (None for raw pixels)."""
    if spec is None:
        return None
    return _once(
        ("limits", id(source.array), source.promote, spec),
        (source.array,),
        lambda: _limits(source, spec),
    )


def _limits(source: Source, spec: preprocess.NormSpec):
    limits = spec.limits(source.limits_sample())
    if not (np.all(np.isfinite(limits.vmin)) and np.all(np.isfinite(limits.vmax))):
        raise InferenceError(
            "normalization limits are not finite: the image has no finite pixel (or values "
            "beyond float32's range, +-3.4e38, which the model computes in)",
            path=source.path,
        )
    return limits
