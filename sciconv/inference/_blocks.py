"""Instance labels and a catalog for images larger than memory, block by block, with stitching.

The image is cut into square **cores** of ``block`` pixels; each core is predicted and labelled
with a **margin** of context around it (its *window*), read from the image alone (numpy memmap,
zarr, dask or a lazy :class:`~sciconv.io.GridImage`), so memory holds one window at a time.

Ownership rule (each object kept exactly once, never split at a seam): an object of a window is
*whole* there when it touches no window edge that is not an image edge. Of all the windows in
which an object can be whole, its **owner** is the block whose core holds the centre of the
object's bounding box, or, when the object is not whole in that window (an object larger than
the margin), the candidate block whose core is nearest that centre. Every window that sees the
object whole computes the same owner from the object's own pixels, so the object is kept once,
with its whole footprint (which may reach into a neighbouring core). Objects cut in every window
(wider than the margin allows) are kept in pieces by the block holding each piece's centre and
counted in a :class:`~sciconv.errors.SciconvWarning`.

Labels are renumbered globally, block after block in row-major order (1..N, no duplicates), so a
run on a ``dask.distributed`` cluster writes the same labels as the single-process run.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
from scipy import ndimage as ndi

from sciconv.errors import InferenceError, OutputExistsError, SciconvWarning
from sciconv.inference._core import predict_array
from sciconv.inference._dask import ModelHandle
from sciconv.inference._model import Runner, receptive_field
from sciconv.inference._settings import check_overlap, resolve_settings
from sciconv.inference._source import Source, compute_limits, is_dask, validate_image
from sciconv.models import get_metadata
from sciconv.preprocess import NormSpec

#: Default core side of a block (pixels).
DEFAULT_BLOCK = 4096
#: Default largest object side (pixels) the automatic margin plans for.
DEFAULT_MAX_OBJECT = 64


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """The block grid of an image: cores of ``block`` pixels, windows ``margin`` wider.

    Examples
    --------
    >>> plan = BlockPlan((100, 70), block=40, margin=8)
    >>> plan.grid, plan.window(1, 1)
    ((3, 2), ((32, 88), (32, 70)))
    """

    shape: tuple[int, int]
    block: int
    margin: int

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(math.ceil(n / self.block) for n in self.shape)

    def core(self, i: int, j: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((y0, y1), (x0, x1))`` of the core of block ``(i, j)``."""
        b = self.block
        return tuple((k * b, min((k + 1) * b, n)) for k, n in zip((i, j), self.shape, strict=True))

    def window(self, i: int, j: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((y0, y1), (x0, x1))`` of the window of block ``(i, j)`` (core + margin, clipped)."""
        m = self.margin
        return tuple(
            (max(lo - m, 0), min(hi + m, n))
            for (lo, hi), n in zip(self.core(i, j), self.shape, strict=True)
        )

    def _axis_candidates(self, lo: int, hi: int, axis: int) -> list[int]:
        """Blocks along ``axis`` whose window holds ``[lo, hi)`` without touching a cut edge."""
        n, b, m = self.shape[axis], self.block, self.margin
        out = []
        for k in range(max(0, (lo - m) // b - 1), min(self.grid[axis], hi // b + 2)):
            w0, w1 = max(k * b - m, 0), min((k + 1) * b + m, n)
            if (lo > w0 or w0 == 0) and (hi < w1 or w1 == n):
                out.append(k)
        return out

    def owner(self, box: tuple[int, int, int, int]) -> tuple[int, int] | None:
        """The block owning an object with bounding box ``(y0, x0, y1, x1)`` (max exclusive).

        None when no window holds the object whole.
        """
        y0, x0, y1, x1 = box
        cy, cx = (y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2
        rows = self._axis_candidates(y0, y1, 0)
        cols = self._axis_candidates(x0, x1, 1)
        if not rows or not cols:
            return None
        home = (cy // self.block, cx // self.block)
        if home[0] in rows and home[1] in cols:
            return home

        def distance(k: int, c: int, axis: int) -> int:
            lo, hi = k * self.block, min((k + 1) * self.block, self.shape[axis]) - 1
            return max(lo - c, c - hi, 0)

        return min(
            ((i, j) for i in rows for j in cols),
            key=lambda ij: (max(distance(ij[0], cy, 0), distance(ij[1], cx, 1)), ij),
        )


class _Windows:
    """Picklable window reads (H, W, C) float32 from a numpy/memmap/zarr/dask/lazy image."""

    def __init__(self, array):
        self.array = array
        self.memmap = None
        if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.filename:
            order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
            self.memmap = (array.filename, array.dtype.str, array.shape, array.offset, order)
        self.shape = tuple(int(s) for s in array.shape)

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.memmap is not None:  # a memmap pickles as a full copy: ship the file reference
            state["array"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.array is None:
            name, dtype, shape, offset, order = self.memmap
            self.array = np.memmap(
                name, dtype=dtype, mode="r", shape=shape, offset=offset, order=order
            )

    def read(self, ys: tuple[int, int], xs: tuple[int, int]) -> np.ndarray:
        block = self.array[ys[0] : ys[1], xs[0] : xs[1]]
        if is_dask(block):
            block = block.compute(scheduler="sync")
        block = np.asarray(block, dtype=np.float32)
        return block[..., None] if block.ndim == 2 else block


@dataclasses.dataclass(frozen=True)
class _Transform:
    """A model's recorded input transform, resolved once for the whole image (pointwise after)."""

    to_gray: bool
    flip_at: float | None  # invert as ``flip_at - x`` (any constant: limits are affine-invariant)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        if self.to_gray and data.shape[-1] in (3, 4):
            data = data[..., :3].mean(axis=-1, keepdims=True, dtype=np.float32)
        if self.flip_at is not None:
            data = np.float32(self.flip_at) - data
        return data


def _resolve_transform(model, sample: np.ndarray, path) -> _Transform | None:
    from sciconv import preprocess

    spec = get_metadata(model).get("input_transform")
    if not spec:
        return None
    gray = preprocess.apply_input_transform(sample, {**spec, "invert": False})
    full = preprocess.apply_input_transform(sample, spec)
    top = float(np.nanmax(gray)) if np.isfinite(gray).any() else 0.0
    flipped = not np.allclose(full, gray, equal_nan=True)
    return _Transform(bool(spec.get("to_gray", False)), top if flipped else None)


def _segment_block(
    index,
    *,
    handle,
    windows,
    plan,
    settings,
    auto_tile,
    limits,
    transform,
    kwargs,
    catalog,
    wcs,
    path,
):
    """Predict and label one block; return its owned objects (window-relative) and rows."""
    from sciconv import postprocess

    i, j = index
    (wy0, wy1), (wx0, wx1) = plan.window(i, j)
    raw = windows.read((wy0, wy1), (wx0, wx1))
    data = raw if transform is None else transform(raw)
    model = handle.get()
    if auto_tile:  # the tiles "auto" picks for this window (the whole window when it fits)
        fit = resolve_settings(
            model,
            data.shape,
            tile="auto",
            overlap=settings.overlap,
            batch_size=settings.batch_size,
            normalize=None,
            path=path,
        )
        s = dataclasses.replace(settings, tile=fit.tile, batch_size=fit.batch_size)
    else:
        s = settings.fit_to(data.shape[:2])
    prob = np.zeros((*data.shape[:2], s.outputs), dtype=np.float32)
    source = Source(data, promote=False, path=path)
    predict_array(Runner(model), source, s, limits, prob, progress=False)
    labels = postprocess.instances(prob, **kwargs)
    del prob
    keep = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    cut = 0
    (cy0, cy1), (cx0, cx1) = plan.core(i, j)
    for lab, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        box = (sl[0].start + wy0, sl[1].start + wx0, sl[0].stop + wy0, sl[1].stop + wx0)
        owner = plan.owner(box)
        if owner is None:  # cut here and everywhere: keep the piece whose centre is ours
            cy, cx = (box[0] + box[2] - 1) // 2, (box[1] + box[3] - 1) // 2
            if cy0 <= cy < cy1 and cx0 <= cx < cx1 and not _whole_elsewhere(plan, box, (i, j)):
                keep[lab] = 1
                cut += 1
        elif owner == (i, j):
            keep[lab] = 1
    ids = np.cumsum(keep, dtype=np.int32) * keep  # owned objects renumbered 1..n in label order
    n = int(keep.sum())
    labels = ids[labels]
    if n == 0:
        return {"labels": None, "origin": (wy0, wx0), "n": 0, "table": None, "cut": cut}
    rows, cols = np.nonzero(labels.any(axis=1))[0], np.nonzero(labels.any(axis=0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    table = None
    if catalog:
        sub_wcs = None if wcs is None else wcs.slice((slice(wy0, wy1), slice(wx0, wx1)))
        table = postprocess.measure(labels, intensity=raw, wcs=sub_wcs)
        for name in ("x", "x_weighted", "bbox_xmin", "bbox_xmax"):
            if name in table.colnames:
                table[name] += wx0
        for name in ("y", "y_weighted", "bbox_ymin", "bbox_ymax"):
            if name in table.colnames:
                table[name] += wy0
    return {
        "labels": labels[r0:r1, c0:c1],
        "origin": (wy0 + int(r0), wx0 + int(c0)),
        "n": n,
        "table": table,
        "cut": cut,
    }


def _whole_elsewhere(plan: BlockPlan, box, here) -> bool:
    """Whether another window could hold an object seen cut here (so that block owns it)."""
    y0, x0, y1, x1 = box
    rows = plan._axis_candidates(y0, y1, 0)
    cols = plan._axis_candidates(x0, x1, 1)
    return any((r, c) != here for r in rows for c in cols)


class _Output:
    """Where the labels go: a numpy array, a ``.npy`` memmap or a zarr array, written atomically."""

    def __init__(self, out, shape: tuple[int, int], *, chunk: int, overwrite: bool):
        self.final = None
        self.tmp = None
        if out is None:
            self.array = np.zeros(shape, dtype=np.int32)
            return
        if not isinstance(out, (str, os.PathLike)):
            raise InferenceError(
                f"out must be None or a path ending in .zarr or .npy; got {type(out).__name__}"
            )
        path = Path(out)
        if path.suffix not in (".zarr", ".npy"):
            raise InferenceError("out must name a .zarr store or a .npy file", path=path)
        if path.exists() and not overwrite:
            raise OutputExistsError("output exists; pass overwrite=True to replace it", path=path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.final = path
        self.tmp = (
            Path(
                tempfile.mkdtemp(
                    prefix=f".{path.stem}.{os.getpid()}.", suffix=".part", dir=path.parent
                )
            )
            / path.name
        )
        if path.suffix == ".npy":
            self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.int32, shape=shape)
        else:
            import zarr

            self.array = zarr.create_array(
                store=str(self.tmp),
                shape=shape,
                chunks=(chunk, chunk),
                dtype="int32",
                fill_value=0,
            )

    def paste(self, labels: np.ndarray, origin: tuple[int, int], offset: int) -> None:
        y0, x0 = origin
        region = (slice(y0, y0 + labels.shape[0]), slice(x0, x0 + labels.shape[1]))
        current = np.asarray(self.array[region])
        mask = labels > 0
        current[mask] = labels[mask] + offset
        self.array[region] = current

    def finish(self, overwrite: bool):
        if self.final is None:
            return self.array
        if isinstance(self.array, np.memmap):
            self.array.flush()
        del self.array
        holder = self.tmp.parent
        try:
            if self.final.exists():
                if not overwrite:
                    raise OutputExistsError(
                        "output appeared while writing; not replaced", path=self.final
                    )
                old = holder / (self.final.name + ".old")
                os.replace(self.final, old)
            os.replace(self.tmp, self.final)
        finally:
            shutil.rmtree(holder, ignore_errors=True)
        if self.final.suffix == ".npy":
            return np.load(self.final, mmap_mode="r")
        import zarr

        return zarr.open_array(str(self.final), mode="r")

    def abort(self):
        if self.tmp is not None:
            self.array = None
            shutil.rmtree(self.tmp.parent, ignore_errors=True)


def _auto_margin(model, margin, max_object: int, divisor: int) -> int:
    if margin != "auto":
        if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
            raise InferenceError(f"margin must be a non-negative int or 'auto'; got {margin!r}")
        return int(margin)
    r = max(receptive_field(model))
    # an owned object reaches max_object / 2 past its core; its pixels need r more of context
    # for an exact prediction, and a little more for the smoothed distance transform
    return -(-(r + int(max_object) // 2 + 16) // divisor) * divisor


def predict_instances_blocks(
    model: keras.Model | str | os.PathLike,
    image,
    *,
    block: int = DEFAULT_BLOCK,
    margin: int | str = "auto",
    max_object: int = DEFAULT_MAX_OBJECT,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    catalog: bool = True,
    wcs=None,
    scheduler=None,
    trust: bool = False,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    progress: bool = True,
    **overrides,
):
    """Instance labels (and a catalog) of an image of any size, block by block, stitched.

    Each ``block`` x ``block`` core is predicted (:func:`predict_tiled` settings, resolved once
    for the whole image, normalization limits computed once over it) and labelled with the model's
    recorded post-processing on a window ``margin`` pixels wider; each object is kept once, whole,
    by the block that owns it (see the module notes), and labels are renumbered 1..N globally.
    Memory holds one window at a time (plus ``out`` when it is an in-memory array).

    Parameters
    ----------
    model : keras.Model or path
        A segmenter, or a ``.keras`` file (loaded with :func:`sciconv.models.load` and ``trust``).
    image : ndarray, memmap, zarr array, dask array or GridImage
        Raw pixels (H, W) or (H, W, C); read window by window, never whole.
    block : int, optional
        Core side in pixels. Default :data:`DEFAULT_BLOCK`.
    margin : int or "auto", optional
        Context around each core. ``"auto"``: the receptive-field half-width
        (:func:`receptive_field`) + ``max_object / 2`` + 16, rounded up to the model's divisor
        (96 for the pretrained nuclei model).
    max_object : int, optional
        Largest object side (pixels) ``margin="auto"`` plans for. Default 64.
    out : None or path, optional
        None: labels in memory. A ``.zarr`` path (chunks of ``min(block, 1024)``) or ``.npy``
        path: written block by block to a temporary neighbour, renamed on success.
    overwrite : bool, optional
        Replace an existing ``out``.
    catalog : bool, optional
        Also return :func:`sciconv.postprocess.measure` of every object (on its whole footprint,
        raw pixels as intensity), one row per label, in label order.
    wcs : astropy.wcs.WCS, optional
        Adds ``ra``/``dec`` to the catalog; default: ``image.wcs`` of a GridImage.
    scheduler : None or dask.distributed.Client, optional
        None: blocks run one after another here. A ``Client``: blocks run on its workers (the
        model travels as its ``.keras`` file, loaded once per worker with
        :func:`sciconv.models.load`); the labels are identical.
    trust : bool, optional
        Let workers load a model file holding Lambda layers (as ``sciconv.models.load(trust=)``).
    tile, overlap, batch_size, normalize, blend, tta
        As for :func:`predict_tiled`.
    progress : bool, optional
        A progress bar over blocks.
    **overrides
        Keywords of :func:`sciconv.postprocess.instances`, replacing the recorded ones.

    Returns
    -------
    labels : ndarray, np.memmap or zarr.Array of int32, shape (H, W)
        0 = background, objects 1..N.
    table : astropy.table.Table
        Only with ``catalog=True``: ``(labels, table)``.

    Raises
    ------
    InferenceError
        Bad ``block``/``margin``/``out``, or anything :func:`predict_tiled` raises.
    OutputExistsError
        ``out`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import numpy as np, keras
    >>> inputs = keras.Input((None, None, 1))
    >>> logits = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(
    ...     [[[[-1.0, 1.0]]]]))(inputs)
    >>> model = keras.Model(inputs, keras.layers.Softmax()(logits))
    >>> image = np.zeros((48, 48), "float32"); image[12:20, 10:30] = 5
    >>> labels = predict_instances_blocks(model, image, block=16, margin=24, catalog=False,
    ...                                   normalize=None, progress=False, min_size=4)
    >>> int(labels.max()), int((labels == 1).sum())
    (1, 160)
    """
    from sciconv.inference._instances import postprocess_kwargs

    if isinstance(model, (str, os.PathLike)):
        handle = ModelHandle.from_path(model, trust=trust)
        model = handle.get()
    else:
        handle = ModelHandle(model, trust=trust) if scheduler is not None else _LocalHandle(model)
    kwargs = postprocess_kwargs(model, get_metadata(model), overrides)
    if wcs is None:
        wcs = getattr(image, "wcs", None)
    arr, path = validate_image(image)
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 16:
        raise InferenceError(
            f"block must be an int of at least 16 pixels; got {block!r}", path=path
        )
    h, w = int(arr.shape[0]), int(arr.shape[1])
    windows = _Windows(arr)
    sample_source = Source(arr, promote=len(arr.shape) == 2, path=path)
    transform = None
    if normalize is not None:
        transform = _resolve_transform(model, sample_source.limits_sample(), path)
    channels = arr.shape[2] if len(arr.shape) == 3 else 1
    if transform is not None and transform.to_gray and channels in (3, 4):
        channels = 1
    settings = resolve_settings(
        model,
        (h, w, channels),
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        normalize=normalize,
        blend=blend,
        tta=tta,
        pad_mode="reflect",
        path=path,
    )
    check_overlap(model, settings, (h, w), stacklevel=2)
    sample = sample_source.limits_sample()
    if transform is not None:
        sample = transform(np.asarray(sample, dtype=np.float32))
    limits = compute_limits(
        Source(np.asarray(sample), promote=False, path=path), settings.normalization
    )
    plan = BlockPlan(
        (h, w), block=int(block), margin=_auto_margin(model, margin, max_object, settings.divisor)
    )
    task = dict(
        handle=handle,
        windows=windows,
        plan=plan,
        settings=settings,
        auto_tile=isinstance(tile, str) and tile == "auto",
        limits=limits,
        transform=transform,
        kwargs=kwargs,
        catalog=catalog,
        wcs=wcs,
        path=path,
    )
    output = _Output(out, (h, w), chunk=min(int(block), 1024), overwrite=overwrite)
    try:
        labels, table = _run(
            plan, task, output, scheduler=scheduler, progress=progress, catalog=catalog
        )
        labels = output.finish(overwrite)
    except BaseException:
        output.abort()
        raise
    return (labels, table) if catalog else labels


class _LocalHandle:
    """The in-process stand-in for :class:`ModelHandle` (nothing saved, nothing shipped)."""

    def __init__(self, model):
        self.model = model

    def get(self):
        return self.model


def _results(plan: BlockPlan, task: dict, scheduler):
    """Block results in row-major order (the order the global numbering follows)."""
    indices = [(i, j) for i in range(plan.grid[0]) for j in range(plan.grid[1])]
    if scheduler is None:
        for index in indices:
            yield _segment_block(index, **task)
        return
    if not hasattr(scheduler, "submit"):
        raise InferenceError(
            f"scheduler must be None or a dask.distributed Client; got {type(scheduler).__name__}"
        )
    shipped = {
        k: scheduler.scatter(v, broadcast=True) if k in ("handle", "windows") else v
        for k, v in task.items()
    }
    futures = [scheduler.submit(_segment_block, index, pure=False, **shipped) for index in indices]
    for future in futures:
        result = future.result()
        future.release()
        yield result


def _run(plan, task, output, *, scheduler, progress, catalog):
    from astropy.table import vstack

    n_blocks = plan.grid[0] * plan.grid[1]
    bar = keras.utils.Progbar(n_blocks, unit_name="block") if progress else None
    offset, cut, tables = 0, 0, []
    for done, result in enumerate(_results(plan, task, scheduler), start=1):
        if result["n"]:
            output.paste(result["labels"], result["origin"], offset)
            if catalog:
                table = result["table"]
                table["label"] += offset
                tables.append(table)
        offset += result["n"]
        cut += result["cut"]
        if bar is not None:
            bar.update(done)
    if cut:
        warnings.warn(
            f"{cut} object(s) reach beyond the block margin ({plan.margin} px) in every block "
            "and were kept in pieces; raise margin= (or max_object=)",
            SciconvWarning,
            stacklevel=3,
        )
    table = None
    if catalog:
        if tables:
            table = vstack(tables, metadata_conflicts="silent")
        else:
            from sciconv import postprocess

            channels = task["windows"].shape[2] if len(task["windows"].shape) == 3 else 1
            table = postprocess.measure(
                np.zeros((1, 1), np.int32), intensity=np.zeros((1, 1, channels)), wcs=task["wcs"]
            )
    return None, table


__all__ = ["DEFAULT_BLOCK", "DEFAULT_MAX_OBJECT", "BlockPlan", "predict_instances_blocks"]
