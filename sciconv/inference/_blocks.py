"""Instance labels and a catalog for images larger than memory, block by block, with stitching.

The image is cut into square **cores** of ``block`` pixels; each core is predicted and labelled
with a **margin** of context around it (its *window*), read from the image alone (numpy memmap,
zarr, dask or a lazy :class:`~sciconv.io.GridImage`), so memory holds one window at a time.

Which block keeps which object (each object once, whole, never split at a seam) is decided in
``sciconv.inference._stitch``; objects that no window holds whole are kept in pieces, and
objects that every block left to another (cut in the window that should hold them whole) are
counted after the last block; both are reported in a :class:`~sciconv.errors.SciconvWarning`
with the number of objects and the margin that would hold them.

Labels are renumbered globally, block after block in row-major order (1..N, no duplicates), so a
run on a ``dask.distributed`` cluster writes the same labels as the single-process run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
from collections.abc import Mapping

import keras
import numpy as np

from sciconv._progress import progress_bar
from sciconv.errors import InferenceError, InvalidImageError
from sciconv.inference._block_background import (
    background_catalog,
    empty_catalog,
    measure_window,
)
from sciconv.inference._block_output import BlockOutput, report_overlaps
from sciconv.inference._block_scores import add_block_scores, owned_scores, score_map
from sciconv.inference._core import predict_array
from sciconv.inference._dask import ModelHandle, worker_results
from sciconv.inference._decisions import note_settled, note_transform
from sciconv.inference._instance_args import is_pixel_scale, postprocess_kwargs, zoom_factor
from sciconv.inference._instances import auto_size_decides, decide_size
from sciconv.inference._model import Runner
from sciconv.inference._second_pass import (
    ObjectStats,
    SecondPassCheck,
    blocks_second_pass,
    check_switches,
    smoothed_limits_sample,
)
from sciconv.inference._settings import check_overlap, resolve_settings
from sciconv.inference._size_probe import check_size_on_crop
from sciconv.inference._source import (
    Source,
    check_channels,
    check_precision,
    compute_limits,
    is_dask,
    validate_image,
)
from sciconv.inference._stitch import BlockPlan, report_stitching, select_owned
from sciconv.inference._tiles import padded_extent
from sciconv.inference._zoom import ZoomGrid
from sciconv.io import PixelScale, file_map, read_mapped
from sciconv.io._common import warn_caller
from sciconv.models import get_metadata
from sciconv.models.introspect import receptive_field
from sciconv.preprocess import NormSpec
from sciconv.preprocess._transform import InputTransform, resolve_input_transform

#: Default core side of a block (pixels).
DEFAULT_BLOCK = 4096
#: Default largest object side (pixels) the automatic margin plans for.
DEFAULT_MAX_OBJECT = 64
#: Second differences inside objects a block keeps for the ``denoise`` check (evenly spaced)
_MAX_DIFFS = 50_000


class _Windows:
    """Picklable window reads (H, W, C) float32 from a numpy/memmap/zarr/dask/lazy image."""

    def __init__(self, array):
        self.array = array
        self.memmap = file_map(array)
        self.shape = tuple(int(s) for s in array.shape)

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.memmap is not None:  # a memmap pickles as a full copy: ship the file reference
            state["array"] = None  # (reads go through it: the array is not needed there)
        return state

    def read(self, ys: tuple[int, int], xs: tuple[int, int], dtype=np.float32) -> np.ndarray:
        if self.memmap is not None:  # a map of its own: the pages read leave the resident set
            block = read_mapped(self.memmap, (slice(*ys), slice(*xs)), dtype=dtype)
        else:
            block = self.array[ys[0] : ys[1], xs[0] : xs[1]]
            if is_dask(block):
                block = block.compute(scheduler="sync")
            block = np.asarray(block, dtype=dtype)
        return block[..., None] if block.ndim == 2 else block


def _resolve_transform(model, sample: np.ndarray, path) -> InputTransform | None:
    """The model's recorded input transform, resolved once on the image's limits sample.

    The result (:class:`sciconv.preprocess._transform.InputTransform`) is pointwise, so every
    window gets the channel step and the flip the whole-image path
    (:func:`sciconv.preprocess.apply_input_transform`) gives the whole image. The flip value comes
    from the sample (its maximum), which may differ from the whole image's on a subsampled huge
    image: any constant does, since the normalization limits are affine-invariant.
    """
    spec = get_metadata(model).get("input_transform")
    if not spec:
        return None
    return note_transform(resolve_input_transform(sample, spec), spec)


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
    bad=None,
    background=False,
    gain=None,
    measure=None,
    second=None,
    saturation=None,
    zoom=None,
    min_size=0,
    measure_limits=None,
    errors=None,
):
    """Predict and label one block; return its owned objects (window-relative) and rows.

    ``measure``: a :class:`SecondPassCheck` whose measures of the owned objects (in the window
    stretched by ``measure_limits``, the image's own) the result carries as ``"stats"``;
    ``second``: a :class:`~sciconv.inference._second_pass.SecondPass` that makes the model's
    input of the transformed window (``limits`` is then None); ``zoom``: the
    :class:`~sciconv.inference._zoom.ZoomGrid` the window is resampled on before the model sees
    it, its labels mapped back (``min_size``: the smallest object kept then, input pixels), as
    :func:`~sciconv.inference.predict_instances` resamples the whole image."""
    from sciconv import postprocess

    i, j = index
    (wy0, wy1), (wx0, wx1) = plan.window(i, j)
    raw = windows.read((wy0, wy1), (wx0, wx1))
    data = raw if transform is None else transform(raw)
    if second is not None:
        data = second(data)
    model = handle.get()
    # the window's tiles on the whole image's divisor grid (of the resampled image when it is
    # resampled, its pixels on that image's grid): it computes what the whole image does
    if zoom is None:
        seen = data
        settings = settings.within((wy0, wx0), plan.shape)
    else:
        seen, corner = zoom.window(data, (wy0, wx0), path=path)
        settings = settings.within(corner, zoom.zoomed)
    if auto_tile:  # the tiles "auto" picks for this window (the whole window when it fits)
        extent = [
            padded_extent(n, settings.divisor, o)[1]
            for n, o in zip(seen.shape[:2], settings.origin, strict=True)
        ]
        fit = resolve_settings(
            model,
            (*extent, seen.shape[2]),
            tile="auto",
            overlap=settings.overlap,
            batch_size=settings.batch_size,
            normalize=None,
            precision=settings.precision,
            path=path,
        )
        s = dataclasses.replace(settings, tile=fit.tile, batch_size=fit.batch_size)
    else:
        s = settings.fit_to(seen.shape[:2])
    prob = np.zeros((*seen.shape[:2], s.outputs), dtype=np.float32)
    source = Source(seen, promote=False, path=path)
    predict_array(Runner(model), source, s, limits, prob, progress=False)
    labels = postprocess.instances(prob, **kwargs)
    scores = score_map(labels, prob)  # each object's score, carried back with its pixels
    del prob, seen
    if zoom is not None:
        labels = zoom.labels_back(labels, corner, (wy0, wx0), data.shape[:2], min_size=min_size)
        scores = zoom.values_back(scores, corner, (wy0, wx0), data.shape[:2])
    keep, cut, left = select_owned(labels, plan, (i, j))
    ids = np.cumsum(keep, dtype=np.int32) * keep  # owned objects renumbered 1..n in label order
    n = int(keep.sum())
    labels = ids[labels]
    scores = owned_scores(labels, scores, n)  # the owned objects', in their new numbering
    stats = None
    if measure is not None:  # the second-pass checks' measures of the owned objects
        stats = ObjectStats.of(
            labels,
            measure.stretch(data, measure_limits),
            diffs=measure.snr_of is not None,
            max_diffs=_MAX_DIFFS,
            raw=raw,
        )
    if n == 0:
        return {
            "labels": None,
            "origin": (wy0, wx0),
            "n": 0,
            "table": None,
            "cut": cut,
            "left": left,
            "stats": stats,
            "scores": scores,
        }
    rows, cols = np.nonzero(labels.any(axis=1))[0], np.nonzero(labels.any(axis=0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    table = None
    if catalog:  # without a background (the image's is measured after the labels)
        error = None if errors is None else errors.read((wy0, wy1), (wx0, wx1))
        table = measure_window(
            labels, raw, (wy0, wx0), wcs=wcs, bad=bad, error=error, sky=None, saturation=saturation
        )
    return {
        "labels": labels[r0:r1, c0:c1],
        "origin": (wy0 + int(r0), wx0 + int(c0)),
        "n": n,
        "table": table,
        "cut": cut,
        "left": left,
        "stats": stats,
        "scores": scores,
    }


def _auto_margin(model, margin, max_object: int | None, divisor: int, zoom: float = 1.0) -> int:
    """The block margin in the image's pixels; ``max_object`` in the image's pixels (None: the
    default's pixels as the model sees them, ``DEFAULT_MAX_OBJECT / zoom``)."""
    if max_object is not None and (
        isinstance(max_object, bool)
        or not isinstance(max_object, (int, np.integer))
        or max_object < 1
    ):
        raise InferenceError(f"max_object must be a positive int or None; got {max_object!r}")
    if margin != "auto":
        if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
            raise InferenceError(f"margin must be a non-negative int or 'auto'; got {margin!r}")
        reach = math.ceil(max(receptive_field(model)) / zoom)
        if margin < reach:  # as check_overlap says of tiles (review: 40 of 76 nuclei changed)
            warn_caller(
                f"block margin {margin} px is below the model's receptive field ({reach} px): "
                "labels near the seams differ from a whole-image call; margin='auto' holds them",
                "sciconv",
            )
        return int(margin)
    if max_object is None:
        max_object = math.ceil(DEFAULT_MAX_OBJECT / zoom)
    r = max(receptive_field(model))
    # an owned object reaches max_object / 2 past its core; its pixels need r more of context
    # (the model's pixels) for an exact prediction, and a little more for the smoothed distance
    # transform
    need = math.ceil((r + 16) / zoom) + int(max_object) // 2
    return -(-need // divisor) * divisor


def predict_instances_blocks(
    model: keras.Model | str | os.PathLike,
    image,
    *,
    block: int | None = None,
    margin: int | str = "auto",
    max_object: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    catalog: bool = True,
    wcs=None,
    mask: str | np.ndarray | None = "auto",
    background: bool | str = "auto",
    scheduler=None,
    trust: bool = False,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    precision: str = "auto",
    progress: bool = True,
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    scale: float | str | None = "auto",
    object_size: float | str | None = "auto",
    **overrides,
):
    """Instance labels (and a catalog) of an image of any size, block by block, stitched.

    Each ``block`` x ``block`` core is predicted (:func:`predict_tiled` settings and normalization
    limits resolved once for the whole image) and labelled with the model's recorded
    post-processing on a window ``margin`` pixels wider; each object is kept once, whole, by the
    block that owns it (see ``sciconv.inference._stitch``), and labels are renumbered 1..N
    globally. Memory holds one window at a time (plus ``out`` when it is an in-memory array).

    Parameters
    ----------
    model : keras.Model or path
        A segmenter, or a ``.keras`` file (loaded with :func:`sciconv.models.load` and ``trust``).
    image : ndarray, memmap, zarr array, dask array or GridImage
        Raw pixels (H, W) or (H, W, C); read window by window, never whole.
    block : int, optional
        Core side in the image's pixels. Default :data:`DEFAULT_BLOCK` (divided by the factor
        of enlarged blocks, so a window holds as many pixels as the model sees unresampled).
    margin : int or "auto", optional
        Context around each core (the image's pixels). ``"auto"``: the receptive-field
        half-width (:func:`receptive_field`) + 16, divided by the resampling factor, +
        ``max_object / 2``, rounded up to the model's divisor (96 for the pretrained nuclei
        model unresampled).
    max_object : int, optional
        Largest object side (the image's pixels) ``margin="auto"`` plans for. Default: 64 as
        the model sees them (``64 / factor`` image pixels when the blocks are resampled).
    out : None or path, optional
        None: labels in memory. A ``.zarr`` path (chunks of ``min(block, 1024)``) or ``.npy``
        path: written block by block to a temporary neighbour, renamed on success.
    overwrite : bool, optional
        Replace an existing ``out``.
    catalog : bool, optional
        Also return :func:`sciconv.postprocess.measure` of every object (on its whole footprint,
        raw pixels as intensity), one row per label, in label order, with its ranking
        ``score`` (:func:`sciconv.postprocess.object_scores`, from its block's probabilities).
    wcs : astropy.wcs.WCS, optional
        Adds ``ra``/``dec`` to the catalog; default: ``image.wcs`` of a GridImage.
    mask : "auto", None or array of bool, shape (H, W) or (H, W, C), optional
        Bad pixels (True = bad; numpy, memmap, zarr or dask, read window by window): the catalog
        gains ``flag_masked`` and ``masked_fraction`` exactly as
        :func:`sciconv.postprocess.measure` ``(mask=)`` gives them on the whole image.
        ``"auto"`` (default): a GridImage's ``mask``, or for a lazy one (whose bad pixels are NaN)
        its non-finite pixels, as for a float array in memory that has any; no mask columns for
        other inputs (memory maps, zarr and dask arrays are not scanned). None: no mask columns.
    background : bool or {"auto", "map", "none"}, optional
        True/``"map"``: catalog ``flux``, ``background`` (and weighted centroids) against the
        whole image's background map without its objects (``background_and_rms``'s, measured
        after the labels on the box grid of the image, so independent of ``block``; see
        ``sciconv.inference._block_background``), and ``flux_err`` from its noise and the
        sources' Poisson noise (the image's gain).
        ``"auto"`` (default): so for an image with a celestial WCS, as ``sciconv predict`` and
        :func:`predict_mosaic` do. False/``"none"``: raw pixel sums.
    scheduler : None or dask.distributed.Client, optional
        None: blocks run one after another here. A ``Client``: blocks run on its workers (the
        model travels as its ``.keras`` file, loaded once per worker with
        :func:`sciconv.models.load`); the labels are identical.
    trust : bool, optional
        Let workers load a model file holding Lambda layers (as ``sciconv.models.load(trust=)``).
    tile, overlap, batch_size, normalize, blend, tta, precision
        As for :func:`predict_tiled`.
    progress : bool, optional
        A progress bar over blocks.
    brightness, denoise : "auto" or None, optional
        As for :func:`~sciconv.inference.predict_instances`, decided once for the whole image
        from the objects of every block: when its objects are faint or noisy, every block is
        segmented again (the first pass's labels are dropped), with one stretch for all.
    scale : "auto", float, PixelScale, Quantity or None, optional
        Resample every block window by this factor before the model sees it, its labels back
        to the image's pixels (nearest neighbour), as :func:`~sciconv.inference.predict_instances`
        resamples a whole image: ``"auto"`` (default): by the ratio of the image's and the
        model's pixel scales when both are known; a number: that factor; a PixelScale or
        Quantity: the image's pixel scale; None: the image's pixels. The catalog is measured on
        the image's own pixels.
    object_size : "auto", float, Quantity or None, optional
        As for :func:`~sciconv.inference.predict_instances`: a diameter (pixels or physical)
        sets the resampling. ``"auto"`` (default; models that record their training objects'
        size, e.g. the pretrained nuclei model): the busiest 1024 x 1024 crop is segmented as
        :func:`~sciconv.inference.predict_instances` would (on a slide that holds several
        apart, the 3 busiest of up to 5 x 5 spread over it: when they disagree, a factor that
        brings all their objects within 2x of the training size, else the median of their
        factors, a warning naming each;
        :func:`~sciconv.inference._size_probe.check_size_on_crop`), and when its objects need
        resampling (too small, too large, pieces of larger ones), every block is resampled by
        that one factor, with a warning (a second or so per crop). None: no check.
    **overrides
        Keywords of :func:`sciconv.postprocess.instances`, replacing the recorded ones.

    Returns
    -------
    labels : ndarray, np.memmap or zarr.Array of int32, shape (H, W)
        0 = background, objects 1..N.
    table : astropy.table.Table
        Only with ``catalog=True``: ``(labels, table)``.

    Warns
    -----
    SciconvWarning
        Objects that no window holds whole (kept in pieces), or that every block left to
        another (missing from the labels): the number of objects, where the first is, and the
        ``margin`` that would hold them.

    Raises
    ------
    InferenceError
        Bad ``block``/``margin``/``out``/``mask``, or anything :func:`predict_tiled` raises.
    OutputExistsError
        ``out`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sciconv.inference import predict_instances_blocks
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
    from sciconv import postprocess

    if isinstance(model, (str, os.PathLike)):
        handle = ModelHandle.from_path(model, trust=trust)
        model = handle.get()
    else:
        handle = ModelHandle(model, trust=trust) if scheduler is not None else _LocalHandle(model)
    kwargs = postprocess_kwargs(model, get_metadata(model), overrides)
    if wcs is None:
        wcs = getattr(image, "wcs", None)
    if not isinstance(background, (bool, np.bool_)):  # "auto": sky images (a celestial WCS)
        background = postprocess.wants_background(background, types.SimpleNamespace(wcs=wcs))
    arr, path = validate_image(image)
    bad = _resolve_mask(image, mask, arr)
    check_channels(model, image)
    if block is not None and (
        isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 16
    ):
        raise InferenceError(
            f"block must be an int of at least 16 pixels; got {block!r}", path=path
        )
    h, w = int(arr.shape[0]), int(arr.shape[1])
    if isinstance(bad, _Windows) and bad.shape[:2] != (h, w):
        raise InferenceError(
            f"mask must have the image's height and width {(h, w)}; got shape {bad.shape}",
            path=path,
        )
    check_switches(brightness, denoise)
    zoom = first = zoom_factor(model, image, scale, object_size)  # given scale or size, pixels
    windows = _Windows(arr)
    source = Source(arr, promote=len(arr.shape) == 2, path=path)
    sample = source.limits_sample()
    check_precision(source, sample)  # blocks are read in float32
    transform = None
    if normalize is not None:
        try:
            transform = _resolve_transform(model, sample, path)
        except InvalidImageError as exc:  # about the image (its shape, its file), not a sample
            shown = f"got shape {tuple(np.shape(sample))}"
            raise InvalidImageError(
                exc.message.replace(shown, f"got shape {tuple(arr.shape)}"), path=path
            ) from exc
    channels = arr.shape[2] if len(arr.shape) == 3 else 1
    if transform is not None:
        channels = transform.out_channels(channels)

    def settings_of(hw):  # the prediction settings of an image of hw pixels (the model's)
        return resolve_settings(
            model,
            (*hw, channels),
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            normalize=normalize,
            blend=blend,
            tta=tta,
            precision=precision,
            pad_mode="reflect",
            path=path,
        )

    settings = settings_of((h, w))  # checked before the size check's crop runs
    if auto_size_decides(object_size, scale):
        given = dict(normalize=normalize, precision=precision, progress=False)
        zoom = _size_on_crop(
            model,
            windows,
            (h, w),
            zoom,
            tiled=given,
            tta=tta,
            overrides=overrides,
            brightness=brightness,
            denoise=denoise,
        )
    grid = None if zoom == 1.0 else ZoomGrid.of((h, w), zoom, path=path)
    zoomed = (h, w) if grid is None else grid.zoomed
    if grid is not None:  # the settings of the image the model sees
        settings = settings_of(zoomed)
    check_overlap(model, settings, zoomed, stacklevel=2)
    if transform is not None:  # a sample of rows and columns is no image: pixel by pixel
        whole = tuple(np.shape(sample)[:2]) == (h, w)
        sample = (transform if whole else transform.pointwise())(np.asarray(sample, np.float32))
    # the image's own limits measure its objects for the second passes, as predict_instances
    # measures them; the model sees the resampled image stretched by that image's limits
    input_limits = compute_limits(
        Source(np.asarray(sample), promote=False, path=path), settings.normalization
    )
    limits = input_limits
    if grid is not None and settings.normalization is not None:
        resampled = grid.sample(windows.read, transform=transform, path=path)
        limits = compute_limits(Source(resampled, promote=False, path=path), settings.normalization)
        del resampled
    if block is None:  # enlarged blocks: as many pixels per window as the model sees unresampled
        block = max(16, round(DEFAULT_BLOCK / max(zoom, 1.0)))
    plan = BlockPlan(
        (h, w),
        block=int(block),
        margin=_auto_margin(model, margin, max_object, settings.divisor, zoom),
    )
    _check_window(plan, zoom, path)
    min_size = overrides.get("min_size")  # a given one counts the image's pixels
    if zoom != 1.0 and min_size is not None:
        kwargs = dict(kwargs, min_size=min_size * zoom**2)
    task = dict(
        handle=handle,
        windows=windows,
        plan=plan,
        settings=settings,
        auto_tile=isinstance(tile, str) and tile == "auto",
        limits=limits,
        transform=transform,
        kwargs=kwargs,
        catalog=catalog and not background,  # else measured after the labels, on their sky
        wcs=wcs,
        path=path,
        bad=bad if catalog else None,
        background=bool(background),
        gain=postprocess.effective_gain(image) if catalog and background else None,
        errors=postprocess.error_windows(image) if catalog else None,
        saturation=postprocess.saturation_level(image) if catalog else None,
        zoom=grid,
        measure_limits=input_limits,
        min_size=min_size or 0,
    )
    check = None
    if normalize is not None:
        check = SecondPassCheck.of(model, normalize, brightness=brightness, denoise=denoise)
    task["measure"] = check

    def new_output():
        return BlockOutput(out, (h, w), chunk=min(int(block), 1024), overwrite=overwrite)

    output = None
    try:
        output = new_output()
        ran = _run(plan, task, output, scheduler=scheduler, progress=progress)
        second = None
        if check is not None and np.all(input_limits.vmax > input_limits.vmin):
            second = blocks_second_pass(
                check,
                ObjectStats.merged(s for s in ran["stats"] if s is not None),
                input_limits,
                lambda: smoothed_limits_sample(windows.read, (h, w), transform),
                path=path,
            )
        if second is not None:  # every block again, with the second pass's input
            output.abort()
            output = new_output()
            task.update(limits=None, measure=None, second=second)
            ran = _run(plan, task, output, scheduler=scheduler, progress=progress)
        report_stitching(plan, ran, output.array, settings.divisor)
        report_overlaps(output, plan.margin)
        table = ran["table"]
        correlation = None  # the whole image's noise correlation: flux_err of resampled images
        said = postprocess.resampled_by(image)  # measure(noise_correlation="auto")'s rule
        if catalog and said is not None and (background or task["errors"] is not None):
            channels = windows.shape[2] if len(windows.shape) == 3 else 1
            correlation = postprocess.NoiseCorrelation.from_windows(
                windows.read, output.array, (h, w), channels
            ).gate(said)
        if catalog and background:  # the image's background under every block's objects
            counts = ran["counts"]
            table = background_catalog(
                plan,
                task,
                output.array,
                counts,
                tile=plan.block,
                counts_header=postprocess.says_counts(image),
                correlation=correlation,
            )
            table = empty_catalog(task) if table is None else table
        elif table is not None:  # measured block by block with independent pixels
            postprocess.apply_noise_correlation(table, correlation)
        labels = output.finish(overwrite, _label_attrs(image, wcs, model))
    except BaseException:
        if output is not None:
            output.abort()
        raise
    note_settled(zoom, first, scale, object_size, get_metadata(model), brightness, denoise)
    unit = getattr(image, "unit", None)  # a GridImage's BUNIT, an NDData's unit
    if table is not None and "flux_err" in table.colnames:
        errors = np.asarray(table["flux_err"], dtype=np.float64)
        if task["errors"] is not None:  # the file's (or NDData's) own, as the whole image's
            source = "image uncertainty"
        elif errors.size and not np.isfinite(errors).any():  # no block's sky measured
            source = postprocess.NO_RMS
        else:
            source = postprocess.error_source(task["gain"], correlation)
        table.meta["FLUXERR"] = postprocess.flux_error_note(source, table)
    if table is not None and unit is not None:  # the blocks measured raw arrays, unitless
        for name in ("flux_sum", "flux_mean", "flux", "flux_err", "background"):
            if name in table.colnames:
                table[name].unit = unit
    if table is not None:  # sizes in um / arcsec, Jy, a plane's frequency: as whole images
        given = PixelScale.from_value(scale) if is_pixel_scale(scale) else None
        postprocess.add_image_columns(table, image, pixel_scale=given, wcs=wcs)
        add_block_scores(table, ran["scores"], postprocess.instance_threshold(task["kwargs"]))
    return (labels, table) if catalog else labels


#: The most pixels a block window may give the model (8192 x 8192): an enlarged block's window
#: grows with the factor squared (block 2048 resampled by 4: 5.9 GB; by 16, out of memory)
MAX_WINDOW_PIXELS = 8192 * 8192


def _check_window(plan: BlockPlan, zoom: float, path) -> None:
    """Refuse enlarged windows that would give the model more than :data:`MAX_WINDOW_PIXELS`
    pixels (windows the caller sized at the image's own pixels, or shrunk, are left as given)."""
    if zoom <= 1.0:
        return
    side = min(plan.block + 2 * plan.margin, max(plan.shape))
    seen = math.ceil(side * zoom)
    if seen * seen <= MAX_WINDOW_PIXELS:
        return
    most = int(math.isqrt(MAX_WINDOW_PIXELS) / zoom) - 2 * plan.margin
    fix = f"give block={most} or less" if most >= 16 else "resample the image less (scale=)"
    raise InferenceError(
        f"block={plan.block} with a margin of {plan.margin} px resampled by {zoom:.3g} gives "
        f"the model windows of {seen} x {seen} pixels (at most {MAX_WINDOW_PIXELS:,}): {fix}",
        path=path,
    )


def _size_on_crop(
    model, windows, shape, factor, *, tiled, tta, overrides, brightness, denoise
) -> float:
    """``object_size="auto"`` of a block-wise run: the factor every block is resampled by, as
    :func:`~sciconv.inference.predict_instances` decides it on the busiest crops (their
    median; the first pass at ``factor``, the one the pixel scales give); ``factor`` for a
    model that records no training size."""
    meta = get_metadata(model)
    if meta.get("object_size") is None or meta.get("object_size_range") is None:
        return factor

    def decide(ys, xs):
        return decide_size(
            model,
            windows.read(ys, xs),
            factor=factor,
            brightness=brightness,
            denoise=denoise,
            tiled=tiled,
            tta=tta,
            overrides=overrides,
        )

    return check_size_on_crop(windows.read, shape, decide, factor, meta=meta)


def _label_attrs(image, wcs, model) -> dict:
    """What a zarr label array records of its image: the WCS (FITS header text), the pixel
    scale and the provenance (:data:`sciconv.io.ZARR_ARRAY_ATTRS`)."""
    import sciconv

    attrs: dict = {
        "version": sciconv.__version__,
        "history": [f"sciconv block-wise instance labels, model {model.name}"],
    }
    if wcs is not None:
        attrs["wcs"] = wcs.to_header(relax=True).tostring()
    scale = getattr(image, "pixel_scale", None)
    if scale is not None:
        attrs["pixel_scale"] = scale.to_dict()
    return attrs


def _resolve_mask(image, mask, arr):
    """None, ``"nonfinite"`` (a lazy GridImage's NaN pixels, or those of a float array in
    memory that has any, as ``measure(mask="auto")`` takes them: ``arr``, the image's pixels
    with a masked array's or an NDData's masked pixels NaN) or a :class:`_Windows` of bools."""
    from sciconv.io import GridImage

    if mask is None:
        return None
    if isinstance(mask, str):
        if mask != "auto":
            raise InferenceError(f"mask must be 'auto', None or an array of bool; got {mask!r}")
        if not isinstance(image, GridImage):
            in_memory = type(arr) is np.ndarray and arr.dtype.kind == "f"  # not a memmap
            return "nonfinite" if in_memory and not np.isfinite(arr).all() else None
        if image.mask is None:
            return "nonfinite"
        mask = image.mask
    if not hasattr(mask, "shape") or len(mask.shape) not in (2, 3):
        raise InferenceError(
            "mask must be an array of bool of shape (H, W) or (H, W, C) (True = bad); got "
            f"{type(mask).__name__} of shape {getattr(mask, 'shape', None)}"
        )
    return _Windows(mask)


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
        # hash=False: a second pass scatters them again, and the same key would race with the
        # release of the first pass's copies ("lost dependencies")
        k: scheduler.scatter(v, broadcast=True, hash=False)
        if k in ("handle", "windows", "errors") and v is not None
        else v
        for k, v in task.items()
    }
    futures = [scheduler.submit(_segment_block, index, pure=False, **shipped) for index in indices]
    yield from worker_results(scheduler, futures)  # not for ever on workers paused for memory


def _run(plan, task, output, *, scheduler, progress) -> dict:
    """Every block through ``output``: the catalog, the blocks' measures and their pieces."""
    from astropy.table import vstack

    n_blocks = plan.grid[0] * plan.grid[1]
    bar = progress_bar(n_blocks, desc="predict_instances_blocks", unit="block", enabled=progress)
    catalog = task["catalog"]
    offset, cut, left, tables, stats, counts, scores = 0, [], [], [], [], [], []
    try:
        for result in _results(plan, task, scheduler):
            if result["n"]:
                output.paste(result["labels"], result["origin"], offset)
                scores.append(result["scores"])  # a catalog measured later gets them too
                if catalog:
                    table = result["table"]
                    table["label"] += offset
                    tables.append(table)
            offset += result["n"]
            counts.append(result["n"])
            cut.extend(result["cut"])
            left.extend(result["left"])
            stats.append(result["stats"])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    table = None
    if catalog:
        table = vstack(tables, metadata_conflicts="silent") if tables else empty_catalog(task)
    return {
        "table": table,
        "stats": stats,
        "cut": cut,
        "left": left,
        "objects": offset,
        "counts": counts,
        "scores": np.concatenate(scores) if scores else np.zeros(0, np.float32),
    }


__all__ = ["DEFAULT_BLOCK", "DEFAULT_MAX_OBJECT", "BlockPlan", "predict_instances_blocks"]
