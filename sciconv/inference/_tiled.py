"""``predict_tiled``: dense prediction on numpy, memory-mapped, lazy or dask images."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, overload

import keras
import numpy as np

from sciconv._atomic import atomic_output
from sciconv._validation import look_up_option
from sciconv.errors import InferenceError
from sciconv.inference._core import predict_array
from sciconv.inference._dask import predict_dask
from sciconv.inference._frame import find_frame, note
from sciconv.inference._model import Runner
from sciconv.inference._settings import (
    AUTO_MEMORY_BUDGET,
    check_overlap,
    resolve_settings,
    tta_mode,
)
from sciconv.inference._source import (
    Source,
    check_channels,
    check_precision,
    compute_limits,
    input_transform,
    is_dask,
    validate_image,
)
from sciconv.inference._tiles import round_up
from sciconv.preprocess import NormSpec

if TYPE_CHECKING:
    import dask.array as da

#: A dask image too narrow for block margins is computed and predicted whole up to this size.
NARROW_DASK_PIXELS = 2**26


def _narrow_dask(arr, s, path) -> np.ndarray | None:
    """None when every block of the dask image ``arr`` can carry its margins (the overlap
    rounded up to the divisor, on each side: ``map_overlap`` needs an axis longer than that);
    else the image computed as numpy when it has at most :data:`NARROW_DASK_PIXELS` pixels.

    Raises
    ------
    InferenceError
        A larger image too narrow for the margins (a long strip).
    """
    depth = round_up(max(s.overlap, 1), s.divisor) if s.overlap else 0
    h, w = (int(n) for n in arr.shape[:2])
    if min(h, w) > depth:
        return None
    if h * w > NARROW_DASK_PIXELS:
        raise InferenceError(
            f"dask image of shape {tuple(arr.shape)} is narrower than the tile margins "
            f"({depth} pixels, from overlap={s.overlap}): pass a smaller overlap=, or cut the "
            "strip into pieces wider than that",
            path=path,
        )
    return np.asarray(arr.compute())


def open_out(out, shape, *, overwrite: bool):
    """Return (array to fill, finalizer) for ``out`` = None, an array, or a ``.npy`` path."""
    if out is None:
        return np.zeros(shape, dtype=np.float32), None
    if isinstance(out, np.ndarray):
        if out.shape != shape or out.dtype != np.float32:
            raise InferenceError(
                f"out must be a float32 array of shape {shape}; got {out.dtype} {out.shape}"
            )
        out[...] = 0
        return out, None
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        if path.suffix != ".npy":
            raise InferenceError(
                "out must name a .npy file (it is written as a numpy memory map)", path=path
            )
        ctx = atomic_output(path, overwrite=overwrite)
        tmp = ctx.__enter__()
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        return arr, (ctx, path)
    raise InferenceError(
        "out must be None, a float32 numpy array or a path ending in .npy; "
        f"got {type(out).__name__}"
    )


def _check_uncertainty(model, uncertainty, *, tta, out) -> tuple[keras.Model | None, list | None]:
    """Validate ``uncertainty=`` of :func:`predict_tiled`; return (model, ensemble members)."""
    from sciconv.inference._uncertainty import UNCERTAINTY_METHODS

    members = list(model) if isinstance(model, (list, tuple)) else None
    if uncertainty is None:
        if members is not None:
            raise InferenceError(
                f"model is a list of {len(members)} models: pass uncertainty='ensemble' to "
                "average them (mean and std), or give one keras.Model"
            )
        return model, None
    look_up_option(uncertainty, UNCERTAINTY_METHODS, name="uncertainty", error=InferenceError)
    if tta_mode(tta) is not None:
        raise InferenceError(
            f"tta={tta!r} and uncertainty={uncertainty!r} do not combine: uncertainty='tta' "
            "already averages the 8 D4 transforms; leave tta=None"
        )
    if out is not None:
        raise InferenceError(
            "out= is not available with uncertainty= (two maps come back, mean and std); "
            "write them yourself, e.g. with sciconv.postprocess.write_products(uncertainty=std)"
        )
    if members is not None and uncertainty != "ensemble":
        raise InferenceError(
            f"a list of models is an ensemble: use uncertainty='ensemble', not {uncertainty!r}"
        )
    return (None, members) if members is not None else (model, None)


# For type checkers: a dask image gives dask arrays, an ``out`` path an np.memmap, any other
# image an ndarray; ``uncertainty`` gives ``(mean, std)``.
@overload
def predict_tiled(
    model: keras.Model | Sequence[keras.Model],
    image: da.Array,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    uncertainty: None = None,
    pad_mode: str = "reflect",
    progress: bool = True,
    out: str | os.PathLike | np.ndarray | None = None,
    overwrite: bool = False,
    memory_budget: int = AUTO_MEMORY_BUDGET,
    precision: str = "auto",
) -> da.Array: ...
@overload
def predict_tiled(
    model: keras.Model | Sequence[keras.Model],
    image: da.Array,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    uncertainty: str,
    pad_mode: str = "reflect",
    progress: bool = True,
    out: str | os.PathLike | np.ndarray | None = None,
    overwrite: bool = False,
    memory_budget: int = AUTO_MEMORY_BUDGET,
    precision: str = "auto",
) -> tuple[da.Array, da.Array]: ...
@overload
def predict_tiled(
    model: keras.Model | Sequence[keras.Model],
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    uncertainty: None = None,
    pad_mode: str = "reflect",
    progress: bool = True,
    out: str | os.PathLike,
    overwrite: bool = False,
    memory_budget: int = AUTO_MEMORY_BUDGET,
    precision: str = "auto",
) -> np.memmap: ...
@overload
def predict_tiled(
    model: keras.Model | Sequence[keras.Model],
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    uncertainty: None = None,
    pad_mode: str = "reflect",
    progress: bool = True,
    out: np.ndarray | None = None,
    overwrite: bool = False,
    memory_budget: int = AUTO_MEMORY_BUDGET,
    precision: str = "auto",
) -> np.ndarray: ...
@overload
def predict_tiled(
    model: keras.Model | Sequence[keras.Model],
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    uncertainty: str,
    pad_mode: str = "reflect",
    progress: bool = True,
    out: str | os.PathLike | np.ndarray | None = None,
    overwrite: bool = False,
    memory_budget: int = AUTO_MEMORY_BUDGET,
    precision: str = "auto",
) -> tuple[np.ndarray, np.ndarray]: ...
def predict_tiled(
    model: keras.Model | Sequence[keras.Model],
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    uncertainty: str | None = None,
    pad_mode: str = "reflect",
    progress: bool = True,
    out: str | os.PathLike | np.ndarray | None = None,
    overwrite: bool = False,
    memory_budget: int = AUTO_MEMORY_BUDGET,
    precision: str = "auto",
):
    """Per-pixel prediction on an image of any size, tile by tile.

    Parameters
    ----------
    model : keras.Model or list of keras.Model
        A model mapping (N, h, w, C) to (N, h, w, K) (a :func:`sciconv.models.segmenter` or any
        fully convolutional Keras model with ``padding="same"``); a list of such models (same
        input and output shapes) with ``uncertainty="ensemble"``.
    image : ndarray of shape (H, W) or (H, W, C), GridImage, memmap or dask array
        Raw pixels. A :class:`~sciconv.io.GridImage` from ``sciconv.io.read(path, lazy=True)`` and
        a memory map are read tile by tile, never whole. A dask array gives a dask array back
        (built with ``map_overlap``, so it runs unchanged on a ``dask.distributed`` cluster; the
        model travels to the workers as ``.keras`` bytes and is loaded once per worker process).
        H and W must be at least 2.
    tile : int, (int, int) or "auto", optional
        Tile size (multiple of the model's divisor, at least the divisor). ``"auto"`` (default)
        takes the largest tile whose activations fit ``memory_budget`` (estimated from the widest
        layer), at most :data:`AUTO_TILE_MAX`, and the whole image when it fits; tiles are then
        equalized so little is recomputed, and ``batch_size`` is lowered to stay in budget.
        :func:`resolve_settings` shows what it picks.
    overlap : int or "auto", optional
        Pixels shared by neighbouring tiles (stride = tile - overlap, rounded down to the divisor).
        Default ``"auto"``: twice the measured receptive-field half-width
        (:func:`receptive_field`, measured once per model and cached), the least overlap for
        which stitched tiles match the whole-image call; an explicit smaller overlap warns
        (:class:`~sciconv.errors.SciconvWarning`).
    batch_size : int, optional
        Tiles per model call. Default 8. Every tile has the same size, so the model is traced
        once for full batches and at most once more (batch-size agnostic) for a shorter last one.
    normalize : "model", "default", method name, dict, NormSpec or None, optional
        ``"model"`` (default): the spec the model was trained with
        (``get_metadata(model)["normalization"]``, else
        :data:`sciconv.preprocess.DEFAULT_NORMALIZATION`); ``"default"``: that default; a method
        name (``"zscale"``, ...), a spec dict or a :class:`~sciconv.preprocess.NormSpec` (see
        :func:`sciconv.preprocess.resolve_normalization`); or None for raw pixels.
        Limits are computed once over the whole image (a subsample of a lazy or huge one), then
        applied to every tile. Unless None, a model that records an ``input_transform`` (e.g.
        the pretrained nuclei model: RGB -> grey, brightfield flipped; see
        :func:`sciconv.preprocess.apply_input_transform`) gets it applied first.
    blend : {"gaussian", "linear", "none"}, optional
        How overlaps are merged: a Gaussian window (sigma = tile / 8); a linear ramp across the
        overlap; or ``"none"``: every pixel is taken from the one tile whose centre region holds
        it. Weights are normalized by their sum at every pixel. Blended windows are zero in the
        outer receptive-field half-width ``r`` (:func:`receptive_field`, at most
        ``overlap // 2``) at every tile edge inside the image, where the tile's own zero padding
        corrupts the prediction; the image's own edges keep their weights. So for a fully
        convolutional model every mode reproduces the whole-image call (to float precision)
        whenever ``overlap >= 2 * r``, as ``overlap="auto"`` ensures.
    tta : None or "d4", optional
        ``"d4"`` averages the predictions of the eight flips/rotations of each tile, each undone
        before averaging (8 model calls per batch). True and False (``predict_files``' form,
        ``sciconv predict --tta``) say the same as ``"d4"`` and None.
    uncertainty : None, "tta", "mc_dropout" or "ensemble", optional
        Also estimate a per-pixel uncertainty and return ``(mean, std)``, both (H, W, K):
        ``"tta"``, the 8 D4 transforms of every tile; ``"mc_dropout"``, 8 samples with the
        model's dropout kept active; ``"ensemble"``, one pass of each model of a list given as
        ``model``. Runs :func:`sciconv.inference.predict_uncertainty` (see it, and
        :func:`sciconv.inference.uncertainty_model`, for the number of samples, the predictive
        entropy instead of the std, and the seed), i.e. this same function on a wrapper model
        whose output is the mean and the std, streamed tile by tile; everything else (tiling,
        blending, normalization, NaN, dask) behaves as for the mean alone. Not with ``tta``
        or ``out``. Default None: the mean alone.
    pad_mode : {"reflect", "symmetric", "edge", "constant"}, optional
        How an image is padded up to the model's divisor (``"constant"`` pads with 0 after
        normalization, as the model pads). Tiles never extend beyond the image's extent on the
        divisor grid. Default ``"reflect"``.
    progress : bool, optional
        Show progress over tiles on ``sys.stderr``. Default True. A terminal gets a ``tqdm`` bar,
        a notebook the widget bar (``tqdm.auto``); a log file, a pipe or CI output gets a few
        plain lines (one per quarter of the tiles, no carriage returns, no escape codes). False:
        silent. Not for dask input (use ``dask.diagnostics.ProgressBar`` or the distributed
        dashboard there).
    out : None, ndarray or path, optional
        Where to write: a new array (default), a float32 (H, W, K) array filled in place, or a
        ``.npy`` path written as a memory map (atomically; ``overwrite=True`` to replace).
    overwrite : bool, optional
        Replace an existing ``out`` file.
    memory_budget : int, optional
        Bytes of activations ``tile="auto"`` plans for. Default :data:`AUTO_MEMORY_BUDGET` (1 GiB).
    precision : {"auto", "float32", "bfloat16"}, optional
        Compute precision. ``"bfloat16"`` runs a float32 model rebuilt under Keras's
        ``mixed_bfloat16`` policy with the same weights (its output layers stay float32); the
        result is float32 either way. ``"auto"`` (default) picks bfloat16 only on hardware with
        native bfloat16 (CPU AVX512-BF16 or AMX-BF16, GPU compute capability >= 8) when a quick
        timing on first use (cached per model) finds it at least 10 % faster; elsewhere float32.

    Returns
    -------
    ndarray (or np.memmap, or dask array) of shape (H, W, K), float32
        Same H and W as ``image``. NaN where any input channel is NaN or infinite. With
        ``uncertainty``: a tuple ``(mean, std)`` of two such arrays.

    Raises
    ------
    InferenceError
        Wrong channel count for the model, a tile smaller than the model's minimum or not a
        multiple of its divisor, an overlap that leaves no stride, an image smaller than 2 x 2, an
        image with no finite pixel to normalize, a model without a same-size per-pixel output; an
        ``uncertainty`` that is not one of :data:`UNCERTAINTY_METHODS` (the message lists them),
        ``uncertainty`` with ``tta`` or ``out``, a list of models without
        ``uncertainty="ensemble"``.

    Notes
    -----
    Every argument is validated once, before any pixel is read, into a frozen
    :class:`PredictionSettings` (:func:`resolve_settings`).

    Dask: every block is extended by ``overlap`` pixels (rounded up to the divisor) on each side
    that has a neighbour (``map_overlap(boundary="none")``), tiled as a numpy image, and trimmed.
    The result equals the numpy one wherever both reproduce the whole-image call
    (``blend="none"``, ``overlap >= 2 * receptive-field half-width``); with blending, the seams fall
    at other places and the two differ by the blending error. Normalization limits come from the
    whole dask array (one subsampled pass) before the graph is built. A dask image with an axis
    no longer than those margins (smaller than the overlap) is computed and predicted whole as
    numpy, and given back as a dask array; a large one (a long strip) raises ``InferenceError``.

    No-data frame: the rows and columns at the edges of an image in memory whose every value
    is NaN or infinite (a mosaic reprojected onto a larger grid) are cropped before anything
    else (input transform, normalization limits, tiling) and come back NaN, so the image gives
    its bare data's result whatever the frame's width (predicted with it, the frame was seen
    mirrored, and a frame not a multiple of the divisor shifted the data against the model's
    pooling grid). The crop is recorded in :func:`decisions` (``nodata_frame``). Not looked for
    in memory maps, lazy images and dask arrays (they would be read whole).

    Small images: a tile is never larger than the image needs: an image smaller than ``tile`` is
    predicted at its own size rounded up to the divisor, padded (``pad_mode``) symmetrically, and
    the padding cropped off (so each image size is a new input shape: in a long-lived process
    TensorFlow's oneDNN keeps 2-3 MiB per shape, levelling off near 1.9 GiB after ~700 sizes;
    ``TF_ENABLE_ONEDNN_OPTS=0`` before TensorFlow is imported keeps it to tens of MiB, QA 54);
    reflection of an axis shorter than the padding repeats the reflection. 1-pixel (and
    1-row/1-column) images raise :class:`~sciconv.errors.InferenceError`: they have no 2-D
    neighbourhood.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sciconv.inference import predict_tiled
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    >>> image = np.random.default_rng(0).normal(size=(50, 70)).astype("float32")
    >>> whole = np.asarray(model(image[None, ..., None]))[0]
    >>> tiled = predict_tiled(model, image, tile=32, overlap=8, blend="none", normalize=None,
    ...                       progress=False)
    >>> bool(np.allclose(tiled, whole, atol=1e-5))
    True
    >>> mean, std = predict_tiled(model, image, tile=32, overlap=8, normalize=None,
    ...                           uncertainty="tta", progress=False)
    >>> mean.shape, std.shape
    ((50, 70, 1), (50, 70, 1))
    """
    model, members = _check_uncertainty(model, uncertainty, tta=tta, out=out)
    if uncertainty is not None:
        from sciconv.inference._uncertainty import predict_uncertainty

        return predict_uncertainty(
            model,
            image,
            method=uncertainty,
            models=members,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            normalize=normalize,
            blend=blend,
            pad_mode=pad_mode,
            progress=progress,
            overwrite=overwrite,
            memory_budget=memory_budget,
            precision=precision,
        )
    arr, path = validate_image(image)
    frame = find_frame(arr)  # a no-data frame: predicted without it, as the bare image
    if frame is not None:
        arr = frame.crop(arr)
        note(frame)
    if normalize is not None:
        check_channels(model, image)
        arr = input_transform(model, arr, path)
    s = resolve_settings(
        model,
        arr.shape,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        normalize=normalize,
        blend=blend,
        tta=tta,
        pad_mode=pad_mode,
        memory_budget=memory_budget,
        precision=precision,
        path=path,
    )
    if is_dask(arr):
        if out is not None:
            raise InferenceError(
                "out= is not supported for dask input; store the returned dask array yourself "
                "(e.g. result.to_zarr(path) or dask.array.store)"
            )
        computed = _narrow_dask(arr, s, path)
        if computed is None:
            return predict_dask(model, arr, s, path=path, stacklevel=2)
        chunks, arr = arr.chunks[:2], computed  # predicted whole, given back as dask
    else:
        chunks = None
    source = Source(arr, promote=len(arr.shape) == 2, path=path)
    h, w, _ = source.shape
    if s.normalization is None:  # raw pixels: the model gets them in float32
        check_precision(source)
    limits = compute_limits(source, s.normalization)
    check_overlap(model, s, (h, w), stacklevel=2)
    full = (h, w) if frame is None else frame.shape
    target, finalize = open_out(out, (*full, s.outputs), overwrite=overwrite)
    try:
        inner = target if frame is None else frame.inside(target, np.nan)
        predict_array(Runner(model), source, s, limits, inner, progress=progress)
    except BaseException:
        if finalize is not None:
            inner = None  # a view of the out file: released with it
            del target
            finalize[0].__exit__(*sys.exc_info())
        raise
    if finalize is None:
        if chunks is not None:
            import dask.array as da

            return da.from_array(target, chunks=(*chunks, -1))
        return target
    ctx, final_path = finalize
    target.flush()
    del target, inner
    ctx.__exit__(None, None, None)
    return np.load(final_path, mmap_mode="r+")
