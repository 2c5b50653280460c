"""``predict_instances``: tiled prediction, then the model's recorded post-processing."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal, overload

import keras
import numpy as np

from sciconv._validation import look_up_option
from sciconv._warnings import caught
from sciconv.errors import InferenceError, SciconvWarning
from sciconv.inference._decisions import note_settled, trial
from sciconv.inference._frame import crop_frame
from sciconv.inference._instance_args import is_pixel_scale, postprocess_kwargs, zoom_factor
from sciconv.inference._scale import AUTO_SIZE_MIN_OBJECTS, auto_size_factor, same_factor
from sciconv.inference._second_pass import check_switches, second_pass_input
from sciconv.inference._settings import tta_mode
from sciconv.inference._size_probe import (
    PROBE_LEVELS,
    boundary_share,
    check_size_on_crop,
    grew,
    holds_crops_apart,
    probe_factor,
    wants_probe,
)
from sciconv.inference._source import check_channels, computed_once, is_dask, validate_image
from sciconv.inference._tiled import predict_tiled
from sciconv.inference._zoom import rescale_image, resize_labels
from sciconv.io._precision import wider_than_float32
from sciconv.models import get_metadata
from sciconv.preprocess import NormSpec

#: Images with more pixels than this go block by block (:func:`predict_instances_blocks`).
AUTO_BLOCK_PIXELS = 2 * 4096 * 4096


# For type checkers: the labels; ``(labels, prob)`` with ``return_prob=True``; ``(labels, prob,
# std)`` with ``uncertainty``. The last: ``return_prob`` not known until run time.
@overload
def predict_instances(
    model: keras.Model,
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    precision: str = "auto",
    scale: float | str | None = "auto",
    object_size: float | Any | str | None = "auto",
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    progress: bool = True,
    return_prob: Literal[False] = False,
    uncertainty: None = None,
    block: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    **overrides,
) -> np.ndarray: ...
@overload
def predict_instances(
    model: keras.Model,
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    precision: str = "auto",
    scale: float | str | None = "auto",
    object_size: float | Any | str | None = "auto",
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    progress: bool = True,
    return_prob: Literal[True],
    uncertainty: None = None,
    block: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    **overrides,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def predict_instances(
    model: keras.Model,
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    precision: str = "auto",
    scale: float | str | None = "auto",
    object_size: float | Any | str | None = "auto",
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    progress: bool = True,
    return_prob: bool = False,
    uncertainty: str,
    block: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    **overrides,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def predict_instances(
    model: keras.Model,
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    precision: str = "auto",
    scale: float | str | None = "auto",
    object_size: float | Any | str | None = "auto",
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    progress: bool = True,
    return_prob: bool = False,
    uncertainty: str | None = None,
    block: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    **overrides,
) -> np.ndarray | tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def predict_instances(
    model: keras.Model,
    image,
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    precision: str = "auto",
    scale: float | str | None = "auto",
    object_size: float | Any | str | None = "auto",
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    progress: bool = True,
    return_prob: bool = False,
    uncertainty: str | None = None,
    block: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    **overrides,
):
    """Instance labels for an image of any size: :func:`predict_tiled` + postprocess.instances.

    Images of more than :data:`AUTO_BLOCK_PIXELS` pixels (and any image when ``block`` or ``out``
    is given) are segmented block by block with flat memory by
    :func:`~sciconv.inference._blocks.predict_instances_blocks` (objects stitched at the seams,
    labels renumbered globally); smaller ones in one piece.

    An image in memory inside a no-data frame (edge rows and columns of NaN only) is segmented
    without it, every pass, and the results pasted back (labels 0, maps NaN in the frame): the
    bare data's result, whatever the frame's width (:func:`predict_tiled`; not with ``block``).

    The post-processing parameters are the model's recorded ones
    (``get_metadata(model)["postprocess"]``), updated by ``overrides``; their names are checked
    against :func:`sciconv.postprocess.instances` before anything is predicted.

    Objects much larger or smaller than those the model was trained on segment badly (the
    pretrained nuclei model scores AP@0.5 0.60 on six real fluorescence images enlarged 3x, 0.89
    with ``scale=1/3``). ``scale`` resamples the image first, as StarDist's
    ``scale`` and Cellpose's ``diameter`` do: the model and the post-processing run on the
    resampled image and the labels are resampled back (nearest neighbour) to the input's height
    and width; block by block, each block window is resampled and its labels mapped back.

    Parameters
    ----------
    model : keras.Model
        A segmenter with 2 (background/foreground) or 3 (background/interior/boundary) outputs.
    image : ndarray, GridImage, memmap or dask array
        Raw pixels, as for :func:`predict_tiled` (in one piece, a dask result is computed; block
        by block, windows are read one at a time).
    tile, overlap, batch_size, normalize, blend, tta, progress
        Passed to :func:`predict_tiled`.
    precision : {"auto", "float32", "bfloat16"}
        Compute precision of the model, as for :func:`predict_tiled` (``"auto"``: bfloat16 only
        on hardware with native bfloat16 where it measures faster). In bfloat16 the pretrained
        nuclei model's validation AP@0.5 moved by -0.001 over its 99 validation images
        (fluorescence -0.001, colour -0.004, grey brightfield +0.006; ``benchmarks/README.md``).
    scale : "auto", float, PixelScale, Quantity or None
        ``"auto"`` (default): resample when the image and the model both know their pixel scale
        (:attr:`sciconv.io.GridImage.pixel_scale`, the ``pixel_scale`` the model was trained at)
        and they differ, by their ratio (:func:`resolve_scale`; a warning when only the model's
        is known). A PixelScale or Quantity: the image's pixel scale. ``None``: no resampling.
        A number: resample by this factor first, whatever the metadata say (e.g. 0.5
        for objects twice the size of the training ones; bilinear, anti-aliased when shrinking;
        in one piece a lazy or dask image is read whole; block by block, window by window).
        For the pretrained nuclei model,
        ``sciconv.models.pretrained_info("nuclei")["object_diameter_px"]`` gives the
        training sizes (median 18 px; 10-47 px between the 10th and 90th percentile of images),
        so ``scale = 18 / (your nuclei's diameter in pixels)``, or say the diameter with
        ``object_size``.
    object_size : "auto", float, astropy.units.Quantity or None
        ``"auto"`` (default): after the first pass, the median diameter of the objects found
        (:func:`sciconv.postprocess.equivalent_diameters`) is compared with the sizes the
        model segments well (metadata ``"object_size_range"``; for the pretrained nuclei model
        7.4-65.9 px, the training images' nucleus sizes between their 10th and 90th
        percentile times its training zoom 0.7-1.4); outside them (and with at least
        :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects) the image is segmented again,
        resampled to the training size, with a :class:`~sciconv.errors.SciconvWarning` saying
        so (:func:`~sciconv.inference.auto_size_factor`). Inside them, a three-class model's
        objects that hold little boundary probability (under 0.10 on average: large objects,
        or pieces of objects larger still) are segmented once more at half resolution (and at
        half of that, up to 1/8, while they keep growing); when a probe finds objects at least
        1.5 times larger, the image is segmented at the training size of those (a warning says
        so: nuclei 3-5 times the training size came out in pieces, AP@0.5 0.08-0.32 -> 0.56-0.81;
        ``benchmarks/real_nuclei_large.py``). Objects below the range that hold that little
        boundary are such pieces too (small nuclei hold 0.5-0.7): they are probed, not
        enlarged (a real image enlarged 2x: 7 px fragments, AP@0.5 0.00 enlarged, 1.00
        probed). Otherwise, or for a model that records no size or range, the first pass is
        the result. Measured on
        the 99 validation images (``benchmarks/real_nuclei_scale.py``): unchanged as they are;
        shrunk to half, fluorescence AP@0.5 0.734 -> 0.796; enlarged 3x, 0.680 -> 0.702
        (colour 0.467 -> 0.504); enlarged 2x, 0.807 -> 0.800. An explicit ``scale`` (a
        number, or None) turns it off. Block by block the busiest crops decide
        and every block is resampled by that factor
        (:func:`~sciconv.inference.predict_instances_blocks`,
        :func:`~sciconv.inference._size_probe.check_size_on_crop`). In one piece, an image that
        holds several 1024 px crops apart and whose objects were kept inside the range is
        checked on its busiest crops too (from the first pass cut to them: a region of larger
        or smaller objects that the median of all hides; a 3840 px mosaic of real nuclei
        enlarged 5x, AP@0.5 0.45 -> 0.78). In one piece it does not resample
        to more than :data:`AUTO_BLOCK_PIXELS` pixels (a warning says so).
        ``None``: the first pass is the result.
        A number or Quantity: the typical diameter of the objects in the image, instead of
        ``scale``: in pixels, or
        physical (``8 * u.um``, ``1.5 * u.arcsec``) when the image's pixel scale is known (a
        :class:`~sciconv.io.GridImage` read from a file that records it, an NDData with a
        celestial WCS, or ``scale=`` given as the pixel scale, e.g. ``0.3 * u.um``). The image
        is resampled by ``training size / object size in pixels``, the training size being the
        model's metadata ``"object_size"`` (pixels; for the pretrained nuclei model the median
        nucleus diameter of its training images, ``pretrained_info("nuclei")
        ["object_diameter_px"]["image_median_p50"]``). A
        :class:`~sciconv.errors.ConfigError` when the size is physical and the image's pixel
        scale unknown, or the model records no training size; an
        :class:`~sciconv.errors.InferenceError` with a numeric or None ``scale``.
    brightness : "auto" or None
        ``"auto"`` (default): when the model records the brightness of its training objects
        (metadata ``"object_level"``; the pretrained nuclei model does) and the median object
        of the first pass sits below the faintest of them in the stretched image (a few objects
        far brighter than the rest set the top of the stretch: raw 16-bit images with mitotic
        or clumped nuclei), the image is segmented again with the stretch's top set on the
        typical object, brighter pixels saturated, and a warning says so
        (:func:`~sciconv.inference.second_pass_input`; real fluorescence images with 5 % of
        the nuclei 8x / 20x brighter: AP@0.5 0.767 -> 0.830 / 0.599 -> 0.836; no validation
        image triggers it; ``benchmarks/real_nuclei_brightness.py``). Block by block, decided
        once from every block's objects, and every block segmented again
        (:func:`~sciconv.inference.predict_instances_blocks`). ``None``: the first pass's
        stretch is kept.
    denoise : "auto" or None
        ``"auto"`` (default): when the model records how far its training objects stood above
        the pixel noise (metadata ``"object_snr"``; the pretrained nuclei model does) and the
        first pass's objects stand less far (:func:`~sciconv.inference.object_snr`: low-light
        images), the image is smoothed with a Gaussian of one pixel and segmented again, with a
        warning (the bundled real images at 10 / 30 / 120 photons at their brightest: AP@0.5
        0.437 / 0.614 / 0.813 -> 0.710 / 0.746 / 0.811; no validation image triggers it). A
        first pass with fewer than :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects is
        judged on the whole image's pixel noise, and a posterised image (few distinct values)
        is smoothed too (fewer than 16: 7 grey levels 0.417 -> 0.560). With
        ``brightness``, one second pass does both (block by block too). ``None``: no smoothing.
    return_prob : bool
        Also return the class probabilities ``(H, W, K)`` float32 that the labels came from (with
        ``scale``: resampled back to the input's size, bilinear). Not block by block.
    uncertainty : {None, "tta", "mc_dropout"}
        Also compute the per-pixel spread (:func:`predict_uncertainty`: the 8 D4 transforms, or
        8 samples with dropout active); the labels then come from the mean of the samples, and
        the result gains the spread map: ``(labels, prob, std)`` — give both to
        :func:`sciconv.postprocess.object_scores` for each object's score and uncertainty. Not
        block by block, and not with ``tta`` (``"tta"`` is D4 test-time augmentation already).
    block : int or None
        Segment block by block with cores of this side (pixels); default: block by block, with
        cores of 4096, only above :data:`AUTO_BLOCK_PIXELS`.
    out : None or path
        A ``.zarr`` or ``.npy`` path the labels are written to block by block (atomically), for
        labels that do not fit in memory; implies block by block.
    overwrite : bool
        Replace an existing ``out``.
    **overrides
        Keyword arguments of :func:`sciconv.postprocess.instances` (``threshold``, ``min_size``,
        ``method``, ``min_distance``, ...) that replace the model's recorded ones. A given
        ``min_size`` counts the input's pixels, whatever resampling runs (a recorded one, the
        pixels the model sees). Labels found on a resampled image keep each object's largest
        4-connected piece when mapped back.

    Returns
    -------
    ndarray of int32, shape (H, W)
        0 = background, objects numbered 1..N; ``(labels, prob)`` with ``return_prob=True``;
        ``(labels, prob, std)`` with ``uncertainty``.

    Raises
    ------
    InferenceError
        An override (or a recorded post-processing key) that :func:`sciconv.postprocess.instances`
        does not take, raised before any prediction runs; a ``scale`` that is not a positive
        number; a size as ``object_size`` with a numeric or None ``scale``, or a string other than
        ``"auto"``; ``block``/``out`` with ``return_prob``; anything :func:`predict_tiled` raises.
    ConfigError
        A physical ``object_size`` when the image's pixel scale is unknown (or in units that do
        not convert to it); ``object_size`` for a model that records no training object size.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sciconv.inference import predict_instances
    >>> inputs = keras.Input((None, None, 1))
    >>> logits = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(
    ...     [[[[-1.0, 1.0]]]]))(inputs)
    >>> model = keras.Model(inputs, keras.layers.Softmax()(logits))
    >>> image = np.zeros((32, 32), "float32"); image[4:12, 4:12] = 5; image[20:28, 18:30] = 5
    >>> labels = predict_instances(model, image, normalize=None, progress=False)
    >>> labels.dtype, int(labels.max())
    (dtype('int32'), 2)
    """
    meta = get_metadata(model)
    kwargs = postprocess_kwargs(model, meta, overrides)
    check_switches(brightness, denoise)
    if normalize is not None:
        check_channels(model, image)
    if uncertainty is not None:
        look_up_option(uncertainty, ("tta", "mc_dropout"), name="uncertainty", error=InferenceError)
        if tta_mode(tta) is not None:
            raise InferenceError("uncertainty= already averages samples; leave tta=None")
        if block is not None or out is not None:
            raise InferenceError("uncertainty= is not available block by block (block=, out=)")
    frame = None
    if block is None and out is None:  # a no-data frame: every pass runs on the data inside it
        image, frame = crop_frame(image)
    second = dict(brightness=brightness, denoise=denoise)
    tiled = dict(
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        normalize=normalize,
        blend=blend,
        precision=precision,
        progress=progress,
    )
    if _blockwise(image, block=block, out=out, return_prob=return_prob or uncertainty is not None):
        from sciconv.inference._blocks import predict_instances_blocks

        labels = predict_instances_blocks(
            model,
            image,
            block=block,
            out=out,
            overwrite=overwrite,
            catalog=False,
            tta=tta,
            brightness=brightness,
            denoise=denoise,
            scale=scale,
            object_size=object_size,
            **tiled,
            **overrides,
        )
        return labels if frame is None else frame.paste(np.asarray(labels), 0)
    first = zoom_factor(model, image, scale, object_size)
    found, used = _whole(
        model,
        image,
        meta=meta,
        kwargs=kwargs,
        factor=first,
        auto=auto_size_decides(object_size, scale),
        **second,
        tiled=tiled,
        tta=tta,
        uncertainty=uncertainty,
        maps=return_prob or uncertainty is not None,
        given_min_size=overrides.get("min_size"),
    )
    note_settled(used, first, scale, object_size, meta, **second)
    if frame is not None:
        found = frame.paste_results(found)
    if uncertainty is not None:
        return found
    return (found[0], found[1]) if return_prob else found[0]


def decide_size(
    model: keras.Model,
    image,
    *,
    factor: float,
    brightness: str | None,
    denoise: str | None,
    tiled: Mapping,
    tta: str | None,
    overrides: Mapping,
) -> tuple[float, float | None]:
    """The resampling factor :func:`predict_instances` with ``object_size="auto"`` settles on
    for ``image`` (an image in memory, e.g. a crop of a slide), its first pass at ``factor``,
    and the median diameter (the image's pixels) of the objects it rests on.

    Block-wise runs decide their one factor for all blocks with it. Its warnings (the size
    decision, a second pass) are the caller's to keep or drop.

    Returns
    -------
    (float, float or None)
        The factor, and the diameter (None: fewer than
        :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects, or a model that records no
        training size).

    Examples
    --------
    >>> import numpy as np, keras
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> decide_size(model, np.zeros((32, 32)), factor=1.0, brightness=None, denoise=None,
    ...             tiled=dict(normalize=None, progress=False), tta=None, overrides={})
    (1.0, None)
    """
    meta = get_metadata(model)
    with trial():  # a crop's decisions are not the image's
        return _decide(
            model,
            image,
            meta=meta,
            kwargs=postprocess_kwargs(model, meta, overrides),
            factor=factor,
            brightness=brightness,
            denoise=denoise,
            tiled=tiled,
            tta=tta,
            given_min_size=overrides.get("min_size"),
        )


def _decide(model, image, *, meta, factor, tiled, first=None, **given) -> tuple:
    """:func:`decide_size` with the post-processing ``kwargs`` resolved (``first``: the first
    pass at factor 1.0, made already)."""
    found, used = _whole(
        model,
        image,
        meta=meta,
        factor=factor,
        auto=True,
        tiled=dict(tiled, progress=False),
        uncertainty=None,
        maps=False,
        first=first,
        decide_only=True,
        **given,
    )
    from sciconv.postprocess import equivalent_diameters

    if meta.get("object_size") is None:
        return used, None
    if found is None:  # resampled to the training size: the objects' size set the factor
        return used, float(meta["object_size"]) / used
    if used == factor:  # kept: its size when inside the range (pieces not enlarged say nothing)
        return used, _size_kept_in_range(found[0], factor, meta)
    sizes = equivalent_diameters(found[0])  # a probe's objects
    return used, (float(np.median(sizes)) if len(sizes) >= AUTO_SIZE_MIN_OBJECTS else None)


def _whole(
    model,
    image,
    *,
    meta: Mapping,
    kwargs: dict,
    factor: float,
    auto: bool,
    brightness,
    denoise,
    tiled: dict,
    tta,
    uncertainty,
    maps: bool,
    given_min_size,
    first: tuple | None = None,
    decide_only: bool = False,
) -> tuple[tuple, float]:
    """:func:`predict_instances` of an image in one piece: ``((labels, prob, std), factor)``,
    the factor being the resampling the result was segmented at (1.0: none). ``auto``: the size
    is ``object_size="auto"``'s to decide (on the busiest crops of an image that holds several
    apart); ``maps``: prob and std back at the input's size. ``first``: the first pass at
    ``factor`` 1.0, already made; ``decide_only``: the factor is wanted, not the result (its
    labels are None when it is not the first pass)."""
    from sciconv import postprocess

    def segment(img, kwargs=kwargs):
        std = None
        if uncertainty is not None:
            from sciconv.inference._uncertainty import predict_uncertainty

            prob, std = predict_uncertainty(model, img, method=uncertainty, **tiled)
        else:
            prob = predict_tiled(model, img, tta=tta, **tiled)
        if is_dask(prob):
            prob = prob.compute()
            std = None if std is None else std.compute()
        return postprocess.instances(prob, **kwargs), prob, std

    shares = {}  # zoom -> boundary_share of that pass (object_size="auto"'s probe)

    def at(zoom):  # (labels, prob, std) at the input's size, the image resampled by zoom
        if zoom == 1.0:
            found = segment(image)
            shares[zoom] = boundary_share(found[0], found[1])
            return found
        arr, path = validate_image(image)
        hw = (int(arr.shape[0]), int(arr.shape[1]))
        # a given min_size counts the input's pixels; the recorded one, the model's
        scaled = kwargs
        if given_min_size is not None:
            scaled = dict(kwargs, min_size=given_min_size * zoom**2)
        labels, *found = segment(rescale_image(arr, zoom, path=path), scaled)
        shares[zoom] = boundary_share(labels, found[0])
        if maps:
            from skimage.transform import resize

            found = [
                None
                if m is None
                else resize(m, (*hw, m.shape[-1]), order=1, preserve_range=True).astype(np.float32)
                for m in found
            ]
        return (resize_labels(labels, hw, min_size=given_min_size or 0), *found)

    sized = all(meta.get(key) is not None for key in ("object_size", "object_size_range"))
    again = None
    with computed_once():  # the second-pass check reuses the first pass's transform and limits
        if first is not None:
            found = first
            shares[factor] = boundary_share(first[0], first[1])
        else:
            found = at(factor)
        # objects outside the model's sizes are resampled first: their brightness and noise are
        # not judged (zero-shot QA: nuclei enlarged 2x, cut into pieces by the first pass, read
        # as a faint image; its saturated second pass gave 3454 objects for 13 nuclei, AP 1.00
        # -> 0.00)
        out_of_range = (
            auto
            and sized
            and auto_size_factor(
                found[0], factor, meta["object_size"], meta.get("object_size_range")
            )
        )
        if (brightness is not None or denoise is not None) and not out_of_range:
            again = second_pass_input(
                model,
                image,
                found[0],
                normalize=tiled["normalize"],
                brightness=brightness,
                denoise=denoise,
            )
    if again is not None:  # every later pass takes this image as it is
        image, tiled["normalize"] = again, None
        found = at(factor)
    probing = wants_probe(shares[factor]) and sized
    # objects that look too small but hold little boundary inside them are pieces of larger
    # ones (small objects are mostly boundary, 0.5-0.7): enlarging would cut them finer
    again = None
    if auto:
        again = auto_size_again(meta, found[0], factor, enlarge=not probing, stacklevel=4)
    if again is None and auto and probing:
        # sizes in range, but little boundary inside the objects: pieces of larger ones? Look
        # at half the resolution, and again while the objects there are larger pieces still
        best, level = (found, factor), factor
        for _ in range(PROBE_LEVELS):
            level /= 2
            if min(found[0].shape) * level < 32:
                break
            probe = at(level)
            if not grew(best[0][0], probe[0], shares[level]):
                break
            best = (probe, level)
            if not wants_probe(shares[level]):
                break
        if best[0] is not found:
            again = probe_factor(meta, found[0], best[0][0], best[1] / factor, stacklevel=4)
            if same_factor(again, best[1]):
                return best
    if (
        again is None
        and auto
        and sized
        and not decide_only
        and _kept_in_range(found[0], factor, meta)
    ):
        # the median of all objects may hide a region of larger or smaller ones: the busiest
        # crops of an image that holds several apart vote (a mosaic of real nuclei enlarged 5x:
        # AP@0.5 0.45 -> 0.78); a resampling decided on all objects stands (on single real
        # images enlarged 3x, the crops' fewer objects decided worse: 0.909 -> 0.828)
        again = _vote_on_crops(
            model, image, found, factor, meta=meta, kwargs=kwargs, tiled=tiled, tta=tta,
            given_min_size=given_min_size,
        )  # fmt: skip
        again = None if same_factor(again, factor) else again
    if again is None:
        return found, factor
    return (None if decide_only else at(again)), again


def _size_kept_in_range(labels, factor: float, meta: Mapping) -> float | None:
    """The median diameter (input pixels) of a first pass's objects kept for lying inside the
    sizes the model segments well; None when they were kept for being too few, or are pieces
    that were not enlarged (outside the range)."""
    from sciconv.postprocess import equivalent_diameters

    sizes = equivalent_diameters(labels)
    if len(sizes) < AUTO_SIZE_MIN_OBJECTS:
        return None
    if auto_size_factor(labels, factor, meta["object_size"], meta.get("object_size_range")):
        return None
    return float(np.median(sizes))


def _kept_in_range(labels, factor: float, meta: Mapping) -> bool:
    """Whether an image that holds several crops apart kept its first pass's objects for lying
    inside the sizes the model segments well (:func:`_size_kept_in_range`)."""
    return holds_crops_apart(np.shape(labels)) and (
        _size_kept_in_range(labels, factor, meta) is not None
    )


def _vote_on_crops(model, image, found, factor, *, meta, kwargs, tiled, tta, given_min_size):
    """``object_size="auto"`` of an image in one piece that holds several crops apart: the
    busiest crops vote (:func:`~sciconv.inference._size_probe.check_size_on_crop`), each
    deciding as an image of its own would, from the first pass ``found`` cut to it (at factor
    1.0; at another factor the crop is segmented anew). A resampling to more than
    :data:`AUTO_SIZE_MAX_PIXELS` pixels keeps the first pass, with a warning (only that one)."""
    arr = validate_image(image)[0]
    h, w = int(arr.shape[0]), int(arr.shape[1])

    def read(ys, xs):
        window = arr[ys[0] : ys[1], xs[0] : xs[1]]
        wide = wider_than_float32(window.dtype)  # normalized in float64, as the whole image
        return np.asarray(window.compute() if is_dask(window) else window, "f8" if wide else "f4")

    def decide(ys, xs):
        first = None
        if factor == 1.0:
            cut = (slice(*ys), slice(*xs))
            first = (found[0][cut], found[1][cut], None)
        return _decide(
            model,
            read(ys, xs),
            meta=meta,
            kwargs=kwargs,
            factor=factor,
            brightness=None,  # the image's second pass (if any) made already
            denoise=None,
            tiled=tiled,
            tta=tta,
            given_min_size=given_min_size,
            first=first,
        )

    with caught("always", record=True) as said:  # said below, unless too large
        decided = check_size_on_crop(read, (h, w), decide, factor, whole=True, meta=meta)
    pixels = round(h * decided) * round(w * decided)
    if pixels <= AUTO_SIZE_MAX_PIXELS:
        for note in said:
            warnings.warn_explicit(note.message, note.category, note.filename, note.lineno)
    else:
        warnings.warn(
            f"object_size='auto': resampling by {decided:g} would make an image of {pixels:,} "
            f"pixels, more than the {AUTO_SIZE_MAX_PIXELS:,} segmented in one piece, so the "
            f"first pass is kept. Segment it block by block at that factor "
            f"(predict_instances(..., scale={decided:g}, block=4096): each block is resampled, "
            "in flat memory)",
            SciconvWarning,
            stacklevel=4,
        )
        return factor
    return decided


#: ``object_size="auto"`` does not resample to more pixels than this (it would run in one piece)
AUTO_SIZE_MAX_PIXELS = AUTO_BLOCK_PIXELS


def auto_size_decides(object_size, scale) -> bool:
    """Whether ``object_size="auto"`` decides the resampling (an explicit ``scale``, a number
    or None, wins)."""
    if not (isinstance(object_size, str) and object_size == "auto"):
        return False
    return (isinstance(scale, str) and scale == "auto") or is_pixel_scale(scale)


def auto_size_again(
    meta: Mapping,
    labels,
    factor: float,
    *,
    found: str = "the objects found",
    enlarge: bool = True,
    stacklevel: int = 2,
) -> float | None:
    """The decision of ``object_size="auto"`` after a first pass, said in a warning.

    :func:`~sciconv.inference.auto_size_factor` on the first pass's labels; when it resamples,
    a :class:`~sciconv.errors.SciconvWarning` says so, unless the resampled image would have
    more than :data:`AUTO_SIZE_MAX_PIXELS` pixels (it would run in one piece): then the first
    pass is kept, with a warning saying why.

    Parameters
    ----------
    meta : mapping
        The model's metadata (``object_size``, ``object_size_range``).
    labels : array_like of int, shape (H, W) or (N, H, W)
        The first pass's labels; ``(N, H, W)``: the planes of a stack, one decision for all.
    factor : float
        The zoom factor of the first pass.
    found : str, optional
        What the warning calls the objects measured.
    enlarge : bool, optional
        False: an enlargement is not made (objects too small that are pieces of larger ones,
        which the half-resolution probe looks at instead); the first pass is kept, unsaid.
    stacklevel : int, optional
        Of the warning.

    Returns
    -------
    float or None
        The factor to segment again at; None to keep the first pass.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.inference import auto_size_again
    >>> meta = {"object_size": 18.0, "object_size_range": (8.0, 66.0)}
    >>> print(auto_size_again(meta, np.zeros((64, 64), int), 1.0))  # no objects: keep
    None
    """
    training = meta.get("object_size")
    again = auto_size_factor(labels, factor, training, meta.get("object_size_range"))
    if again is None or (again > factor and not enlarge):
        return None
    low, high = meta["object_size_range"]
    found = (
        f"object_size='auto': {found} are {training / again * factor:.3g} px across "
        f"as the model saw them, outside the {low:g}-{high:g} px it segments well"
    )
    h, w = np.shape(labels)[-2:]
    pixels = round(h * again) * round(w * again)
    if pixels > AUTO_SIZE_MAX_PIXELS:  # a huge image in one piece: the caller decides
        warnings.warn(
            f"{found}; resampling by {again:g} to the training size ({training:g} px) would "
            f"make an image of {pixels:,} pixels, more than the {AUTO_SIZE_MAX_PIXELS:,} "
            f"segmented in one piece, so the first pass is kept. Segment it block by block at "
            f"that factor (predict_instances(..., scale={again:g}, block=4096): each block is "
            "resampled, in flat memory)",
            SciconvWarning,
            stacklevel=stacklevel,
        )
        return None
    warnings.warn(
        f"{found}; segmented again with the image resampled by {again:g} (to the training "
        f"size, {training:g} px). Pass scale= or object_size= to choose, object_size=None to "
        "keep the first pass",
        SciconvWarning,
        stacklevel=stacklevel,
    )
    return again


def _blockwise(image, *, block, out, return_prob) -> bool:
    """Whether :func:`predict_instances` goes block by block (asked for, or a big image)."""
    asked = block is not None or out is not None
    if asked and return_prob:
        raise InferenceError(
            "block= and out= (block-by-block instances) do not return probabilities "
            "(return_prob=True); call predict_tiled for them"
        )
    if asked:
        return True
    if return_prob:
        return False
    shape = getattr(image, "shape", None)
    if shape is None or len(shape) not in (2, 3):  # a wrapper (GridImage), or refused there
        shape = validate_image(image)[0].shape
    return int(shape[0]) * int(shape[1]) > AUTO_BLOCK_PIXELS
