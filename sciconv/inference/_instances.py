"""``predict_instances``: tiled prediction, then the model's recorded post-processing."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping

import keras
import numpy as np

from sciconv._validation import look_up_option
from sciconv.errors import InferenceError
from sciconv.inference._source import is_dask, validate_image
from sciconv.inference._tiled import predict_tiled
from sciconv.models import get_metadata
from sciconv.preprocess import NormSpec


def _instances_keywords() -> tuple[str, ...]:
    """The keyword parameters of :func:`sciconv.postprocess.instances` (all but the data)."""
    from sciconv import postprocess

    params = list(inspect.signature(postprocess.instances).parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params[1:] if p.kind in kinds)


def postprocess_kwargs(model, meta: Mapping, overrides: Mapping) -> dict:
    """The model's recorded post-processing updated by ``overrides``, every name checked."""
    allowed = _instances_keywords()
    recorded = dict(meta.get("postprocess") or {})
    for key in recorded:
        if key not in allowed:
            raise InferenceError(
                f"model {model.name!r} records postprocess key {key!r}, which "
                f"sciconv.postprocess.instances does not take (it takes "
                f"{', '.join(repr(a) for a in allowed)}); fix the model's metadata with "
                "sciconv.models.set_metadata"
            )
    for key in overrides:
        look_up_option(
            key,
            allowed,
            name="a post-processing keyword of predict_instances (sciconv.postprocess.instances)",
            error=InferenceError,
        )
    recorded.update(overrides)
    return recorded


def _check_scale(scale, *, path) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise InferenceError(f"scale must be a positive number or None; got {scale!r}", path=path)
    return value


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
    scale: float | None = None,
    progress: bool = True,
    return_prob: bool = False,
    **overrides,
):
    """Instance labels for an image of any size: :func:`predict_tiled` + postprocess.instances.

    The post-processing parameters are the model's recorded ones
    (``get_metadata(model)["postprocess"]``), updated by ``overrides``; their names are checked
    against :func:`sciconv.postprocess.instances` before anything is predicted.

    Objects much larger or smaller than those the model was trained on segment badly (the
    pretrained nuclei model scores AP@0.5 0.60 on six real fluorescence images enlarged 3x, 0.89
    with ``scale=1/3``). ``scale`` resamples the image first, as StarDist's
    ``scale`` and Cellpose's ``diameter`` do: the model and the post-processing run on the
    resampled image and the labels are resampled back (nearest neighbour) to the input's height
    and width.

    Parameters
    ----------
    model : keras.Model
        A segmenter with 2 (background/foreground) or 3 (background/interior/boundary) outputs.
    image : ndarray, GridImage, memmap or dask array
        Raw pixels, as for :func:`predict_tiled` (a dask result is computed: labels need the
        whole probability map).
    tile, overlap, batch_size, normalize, blend, tta, progress
        Passed to :func:`predict_tiled`.
    scale : float or None
        ``None`` (default): no resampling. A number: resample by this factor first (e.g. 0.5
        for objects twice the size of the training ones; bilinear, anti-aliased when shrinking;
        a lazy or dask image is read whole). For the pretrained nuclei model,
        ``sciconv.models.pretrained_info("nuclei")["object_diameter_px"]`` gives the
        training sizes (median 18 px; 10-47 px between the 10th and 90th percentile of images),
        so ``scale = 18 / (your nuclei's diameter in pixels)``.
    return_prob : bool
        Also return the class probabilities ``(H, W, K)`` float32 that the labels came from (with
        ``scale``: resampled back to the input's size, bilinear).
    **overrides
        Keyword arguments of :func:`sciconv.postprocess.instances` (``threshold``, ``min_size``,
        ``method``, ``min_distance``, ...) that replace the model's recorded ones.

    Returns
    -------
    ndarray of int32, shape (H, W)
        0 = background, objects numbered 1..N; ``(labels, prob)`` with ``return_prob=True``.

    Raises
    ------
    InferenceError
        An override (or a recorded post-processing key) that :func:`sciconv.postprocess.instances`
        does not take, raised before any prediction runs; a ``scale`` that is not a positive
        number; anything :func:`predict_tiled` raises.

    Examples
    --------
    >>> import numpy as np, keras
    >>> inputs = keras.Input((None, None, 1))
    >>> logits = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(
    ...     [[[[-1.0, 1.0]]]]))(inputs)
    >>> model = keras.Model(inputs, keras.layers.Softmax()(logits))
    >>> image = np.zeros((32, 32), "float32"); image[4:12, 4:12] = 5; image[20:28, 18:30] = 5
    >>> labels = predict_instances(model, image, normalize=None, progress=False)
    >>> labels.dtype, int(labels.max())
    (dtype('int32'), 2)
    """
    from sciconv import postprocess

    kwargs = postprocess_kwargs(model, get_metadata(model), overrides)

    def segment(img) -> tuple[np.ndarray, np.ndarray]:
        prob = predict_tiled(
            model,
            img,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            normalize=normalize,
            blend=blend,
            tta=tta,
            progress=progress,
        )
        if is_dask(prob):
            prob = prob.compute()
        return postprocess.instances(prob, **kwargs), prob

    def result(labels, prob):
        return (labels, prob) if return_prob else labels

    if scale is None:
        return result(*segment(image))
    arr, path = validate_image(image)
    scale = _check_scale(scale, path=path)
    if scale == 1.0:
        return result(*segment(image))
    hw = (int(arr.shape[0]), int(arr.shape[1]))
    labels, prob = segment(_rescale_image(arr, scale, path=path))
    if return_prob:
        from skimage.transform import resize

        prob = resize(prob, (*hw, prob.shape[-1]), order=1, preserve_range=True)
        prob = prob.astype(np.float32)
    return result(_resize_labels(labels, hw), prob)


def _rescale_image(arr, scale: float, *, path) -> np.ndarray:
    from skimage.transform import rescale

    data = np.asarray(arr.compute() if is_dask(arr) else arr, dtype=np.float32)
    out_hw = [round(n * scale) for n in data.shape[:2]]
    if min(out_hw) < 2 or out_hw[0] * out_hw[1] > 2**31:
        raise InferenceError(
            f"scale {scale} turns an image of {data.shape[:2]} pixels into {out_hw}", path=path
        )
    return rescale(
        data,
        scale,
        order=1,
        mode="reflect",
        preserve_range=True,
        anti_aliasing=scale < 1,
        channel_axis=-1 if data.ndim == 3 else None,
    ).astype(np.float32)


def _resize_labels(labels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from skimage.segmentation import relabel_sequential
    from skimage.transform import resize

    out = resize(labels, hw, order=0, preserve_range=True, anti_aliasing=False)
    return relabel_sequential(out.astype(np.int32))[0].astype(np.int32)
