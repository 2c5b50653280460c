"""Per-pixel uncertainty as Keras model wrappers that :func:`predict_tiled` runs unchanged.

:func:`uncertainty_model` wraps a per-pixel model into one whose output is the mean of ``S``
stochastic or transformed predictions followed by their spread, ``concat[mean (K), std (K)]``
(or ``concat[mean (K), entropy (1)]``):

- ``"tta"``: the 8 elements of the dihedral group D4 (flips and transposes of the tile, each
  undone on the output before averaging; :class:`D4Moments` stacks them and runs the model over
  the stack in one loop, so it is traced once per tile shape); exact zero spread for a
  D4-equivariant model;
- ``"mc_dropout"``: Monte-Carlo dropout: a clone of the model whose ``Dropout`` /
  ``SpatialDropout`` layers stay active at inference (:class:`AlwaysDropout`, with a fixed seed)
  while every other layer (BatchNorm included) stays in inference mode and shares the model's
  weights; the ``S`` samples run as one batch. Sample ``s`` of every tile of one size gets the
  same mask, drawn from the seed, the layer, ``s`` and the tile's size: a tile's samples do not
  depend on the batch it runs in, so a prediction is the same for every ``batch_size`` and
  reproducible for the same ``seed``, ``samples``, ``tile`` and ``overlap``. A different
  ``tile`` or ``overlap`` moves the tiles over the image and so draws other masks at each pixel
  (a change of the order of the spread itself, like another seed), except for a model whose
  dropout layers are all ``SpatialDropout`` (one mask value per channel, none per pixel): its
  maps are the whole image's for every ``tile`` once ``overlap >= 2 r``, as the mean's are;
- ``"ensemble"``: several models with the same input and output.

Because the wrapper is an ordinary ``keras.Model`` carrying the base model's sciconv metadata
(divisor, normalization, input transform), tiling, blending, normalization and dask streaming all
work as for the mean alone. :func:`predict_uncertainty` runs it and splits the channels;
``predict_tiled(model, image, uncertainty=method)`` (a list of models for ``"ensemble"``) is the
same call spelled as the issue asks.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, overload

import keras
import numpy as np

from sciconv._validation import check_int, look_up_option
from sciconv.errors import InferenceError
from sciconv.inference._model import check_single_io
from sciconv.inference._tiled import predict_tiled
from sciconv.inference._tiles import round_up
from sciconv.models import get_metadata
from sciconv.models.introspect import model_divisor, receptive_field
from sciconv.models.layers import SciconvMetadata
from sciconv.models.precision import all_layers
from sciconv.models.uncertainty_layers import (
    UNCERTAINTY_OUTPUTS,
    AlwaysDropout,
    D4Moments,
    EnsembleMoments,
    RepeatBatch,
)

if TYPE_CHECKING:
    import dask.array as da

__all__ = [
    "UNCERTAINTY_METHODS",
    "UNCERTAINTY_OUTPUTS",
    "UNCERTAINTY_PRECISION",
    "has_dropout",
    "predict_uncertainty",
    "split_moments",
    "uncertainty_model",
]

#: How the spread is estimated: the 8 D4 transforms, dropout kept on, or several models.
UNCERTAINTY_METHODS = ("tta", "mc_dropout", "ensemble")
#: What ``precision="auto"`` means for uncertainty maps: spreads of a few thousandths need float32.
UNCERTAINTY_PRECISION = "float32"
_EPS = 1e-7


# --------------------------------------------------------------------------------------------------
# layers


# --------------------------------------------------------------------------------------------------
# wrappers


def _validate_per_pixel(model, *, name: str = "model") -> None:
    check_single_io(model, purpose="an uncertainty wrapper", name=name)
    if len(model.inputs[0].shape) != 4 or len(model.outputs[0].shape) != 4:
        raise InferenceError(
            f"{name} {model.name!r} must map (N, H, W, C) to (N, H, W, K); it maps "
            f"{tuple(model.inputs[0].shape)} to {tuple(model.outputs[0].shape)}"
        )


def _is_dropout(layer) -> bool:
    return isinstance(layer, keras.layers.Dropout) and not isinstance(layer, AlwaysDropout)


def has_dropout(model: keras.Model) -> bool:
    """Whether ``model`` has a Dropout (or SpatialDropout) layer, nested ones included: what
    ``method="mc_dropout"`` samples with.

    Examples
    --------
    >>> from sciconv.models import segmenter
    >>> has_dropout(segmenter((None, None, 1), depth=1, filters=2))
    False
    """
    return any(_is_dropout(layer) for layer in all_layers(model))


def _mc_dropout_clone(model: keras.Model, seed: int, samples: int) -> keras.Model:
    """Clone ``model`` sharing every layer except Dropout, which becomes :class:`AlwaysDropout`
    drawing one mask per sample for batches of ``samples`` copies (:class:`RepeatBatch`)."""
    counter = iter(range(1_000_000))

    def clone(layer):
        if _is_dropout(layer):
            spatial = isinstance(
                layer,
                (
                    keras.layers.SpatialDropout1D,
                    keras.layers.SpatialDropout2D,
                    keras.layers.SpatialDropout3D,
                ),
            )
            return AlwaysDropout(
                layer.rate,
                spatial=spatial,
                seed=seed + 7919 * next(counter),
                samples=samples,
                name=f"{layer.name}_mc",
            )
        return layer  # shared: same weights, same inference behaviour

    try:
        return keras.models.clone_model(model, clone_function=clone, recursive=True)
    except (ValueError, TypeError) as err:
        raise InferenceError(
            f"mc_dropout needs a functional or Sequential Keras model to clone; cloning "
            f"{model.name!r} failed: {err}"
        ) from None


def _spatial_check(model: keras.Model, method: str) -> None:
    h, w = model.inputs[0].shape[1:3]
    if method == "tta" and h is not None and w is not None and h != w:
        raise InferenceError(
            f"tta transposes tiles, so model {model.name!r} needs square inputs or a free "
            f"spatial size (None, None); its input is {h} x {w}. Use method='mc_dropout' or "
            "'ensemble', or rebuild the model with input_shape=(None, None, C)"
        )


def _ensemble_members(model, models) -> list:
    members = list(models) if models is not None else []
    if model is not None and all(m is not model for m in members):
        members.insert(0, model)
    if len(members) < 2:
        raise InferenceError(
            f"method='ensemble' needs at least 2 models (model plus models=[...]); got "
            f"{len(members)}"
        )
    for i, m in enumerate(members):
        _validate_per_pixel(m, name=f"models[{i}]")
    first = members[0]
    for i, m in enumerate(members[1:], start=1):
        if tuple(m.inputs[0].shape[1:]) != tuple(first.inputs[0].shape[1:]) or (
            m.outputs[0].shape[-1] != first.outputs[0].shape[-1]
        ):
            raise InferenceError(
                f"ensemble members must share input and output shapes: models[0] maps "
                f"{tuple(first.inputs[0].shape)} -> {tuple(first.outputs[0].shape)}, "
                f"models[{i}] ({m.name!r}) maps {tuple(m.inputs[0].shape)} -> "
                f"{tuple(m.outputs[0].shape)}"
            )
    return _unique_names(members)


def _unique_names(members: list) -> list:
    """Members with one name each: two ``segmenter`` models (or two runs' ``best.keras``) would
    be two layers of one name in the wrapper, which Keras refuses. A repeated name is given a
    ``_member{i}`` view of the same layers and weights."""
    names = [m.name for m in members]
    return [
        m
        if names.count(m.name) == 1
        else keras.Model(m.inputs[0], m.outputs[0], name=f"{m.name}_member{i}")
        for i, m in enumerate(members)
    ]


def uncertainty_model(
    model: keras.Model | None,
    method: str = "tta",
    *,
    models=None,
    samples: int = 8,
    output: str = "std",
    seed: int = 0,
) -> keras.Model:
    """Wrap a per-pixel model so it predicts a mean and an uncertainty map in one call.

    Parameters
    ----------
    model : keras.Model or None
        A per-pixel model (N, H, W, C) -> (N, H, W, K), e.g. a :func:`sciconv.models.segmenter`.
        May be None for ``method="ensemble"`` when ``models`` holds them all.
    method : {"tta", "mc_dropout", "ensemble"}, optional
        ``"tta"`` (default): the 8 D4 flips/transposes of each tile, each undone before averaging
        (:class:`~sciconv.models.uncertainty_layers.D4Moments`: 8 passes at the batch size, the
        model traced once per square tile shape, twice for other shapes; tiles are transposed,
        so a model with a fixed non-square input raises). ``"mc_dropout"``: ``samples`` passes
        with the model's ``Dropout`` / ``SpatialDropout`` layers active and everything else in
        inference mode (BatchNorm uses its moving statistics); the passes run as one batch of
        ``samples * N``, sample ``s`` of each of the ``N`` inputs with the same masks (see
        ``seed``). ``"ensemble"``: one pass of each model (``model`` plus ``models``).
    models : sequence of keras.Model, optional
        Ensemble members (same input and output shapes). Only for ``method="ensemble"``.
    samples : int, optional
        Monte-Carlo samples for ``"mc_dropout"``. Default 8 (8 forward passes, like ``"tta"``).
    output : {"std", "entropy"}, optional
        Spread channel(s): ``"std"`` (default, one per output channel) or the predictive
        ``"entropy"`` of the mean (one channel; see :class:`EnsembleMoments`).
    seed : int, optional
        Seed of the Monte-Carlo dropout masks. Default 0. Each dropout layer draws ``samples``
        masks from it for the input's shape (H, W), one per sample, shared by the ``N`` inputs of
        a batch, so an input's output does not depend on the batch size or on the other inputs
        of the batch, only on the seed, ``samples`` and its shape. Another seed gives other
        masks.

    Returns
    -------
    keras.Model
        (N, H, W, C) -> (N, H, W, K + K) for ``"std"`` or (N, H, W, K + 1) for ``"entropy"``:
        the mean first. It shares the weights of ``model`` (no copy) and carries its sciconv
        metadata (divisor as the least common multiple of the members', normalization, input
        transform) plus ``uncertainty_method``, ``uncertainty_output``, ``uncertainty_samples``
        and ``mean_channels``, so :func:`sciconv.inference.predict_tiled` tiles it as the model.
        Saved and loaded like any sciconv model.

    Raises
    ------
    InferenceError
        Unknown ``method`` or ``output``; a model that is not a one-input, one-output per-pixel
        Keras model; fewer than 2 ensemble members or members of different shapes; a fixed
        non-square input with ``"tta"``; a model ``"mc_dropout"`` cannot clone, or one with no
        dropout layer (its spread would be 0 everywhere: an error bar of 0, not an error bar).

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.inference import uncertainty_model
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> wrapper = uncertainty_model(model, "tta")
    >>> y = np.asarray(wrapper(np.ones((1, 8, 12, 1), "float32")))
    >>> y.shape, bool(np.abs(y[..., 2:]).max() < 1e-5)  # a 1x1 conv commutes with D4: no spread
    ((1, 8, 12, 4), True)
    """
    method = look_up_option(method, UNCERTAINTY_METHODS, name="method", error=InferenceError)
    output = look_up_option(output, UNCERTAINTY_OUTPUTS, name="output", error=InferenceError)
    samples = check_int(samples, name="samples", minimum=2, error=InferenceError)
    if models is not None and method != "ensemble":
        raise InferenceError(f"models= is only for method='ensemble'; got method={method!r}")
    if method == "ensemble":
        members = _ensemble_members(model, models)
    else:
        _validate_per_pixel(model)
        members = [model]
    base = members[0]
    _spatial_check(base, method)
    meta = dict(get_metadata(base).items())  # a plain dict (Keras tracks layer dicts)
    divisors = [int(get_metadata(m).get("divisor", 1) or 1) for m in members]
    if max(divisors) > 1:
        meta["divisor"] = math.lcm(*divisors)
    channels = base.outputs[0].shape[-1]
    n_samples = {"tta": 8, "mc_dropout": samples, "ensemble": len(members)}[method]
    meta.update(
        uncertainty_method=method,
        uncertainty_output=output,
        uncertainty_samples=n_samples,
        mean_channels=None if channels is None else int(channels),
    )
    inputs = keras.Input(shape=base.inputs[0].shape[1:], name=f"{base.name}_{method}_input")
    x = SciconvMetadata(meta, name=f"{base.name}_{method}_metadata")(inputs)
    if method == "tta":  # one batch of the 8 transforms (wrappers saved before: 8 model calls)
        moments = D4Moments(base, output=output, name=f"{base.name}_tta_moments")(x)
    elif method == "ensemble":
        preds = [m(x) for m in members]
        moments = EnsembleMoments(output=output, name=f"{base.name}_ensemble_moments")(preds)
    else:
        if not has_dropout(base):
            raise InferenceError(
                f"model {base.name!r} has no Dropout or SpatialDropout layer: mc_dropout "
                "samples would all be equal and the spread 0 everywhere, an error bar of 0 "
                "(use method='tta' or 'ensemble', or build the model with dropout)"
            )
        clone = _mc_dropout_clone(base, seed, samples)
        repeated = RepeatBatch(samples, name=f"{base.name}_mc_repeat")(x)
        moments = EnsembleMoments(samples, output=output, name=f"{base.name}_mc_moments")(
            clone(repeated)
        )
    return keras.Model(inputs, moments, name=f"{base.name}_{method}")


#: The attribute of a model that holds its wrappers: on the model itself, so they go with it
#: (a weak-key dict of wrappers, each holding its model, kept every model alive: QA, 19 MiB per
#: reloaded model)
_WRAPPERS_ATTR = "_sciconv_uncertainty_wrappers"


def _cached_wrapper(model, method, models, samples, output, seed) -> keras.Model:
    """One wrapper per (model, settings, metadata), so repeated calls reuse its trace and
    receptive field; a ``set_metadata`` since builds a new one (the wrapper copies the metadata:
    QA, the old normalization kept, mean maps 0.99 off)."""
    if model is None or models is not None:
        return uncertainty_model(
            model, method, models=models, samples=samples, output=output, seed=seed
        )
    meta = json.dumps(get_metadata(model), sort_keys=True, default=str)
    cached = model.__dict__.get(_WRAPPERS_ATTR)
    if cached is None or cached[0] != meta:
        cached = (meta, {})
        object.__setattr__(model, _WRAPPERS_ATTR, cached)  # not a tracked sub-layer of it
    per_model = cached[1]
    key = (method, samples, output, seed)
    if key not in per_model:
        per_model[key] = uncertainty_model(model, method, samples=samples, output=output, seed=seed)
    return per_model[key]


def _auto_overlap(wrapper: keras.Model, members) -> int:
    """``overlap="auto"`` for ``wrapper`` from its members' receptive fields.

    The wrapper reaches as far as its widest member (a D4 transpose only swaps the axes, and
    ``overlap="auto"`` takes the larger axis anyway), so twice the members' largest half-width,
    rounded up to the wrapper's divisor, is what measuring the wrapper would give; measuring the
    members (cached per model, usually done by a plain prediction already) costs one model call
    per probe instead of ``S``, and a wrapper run on a single tile is not probed at all.
    """
    r = max(max(receptive_field(m)) for m in members)
    return round_up(2 * r, model_divisor(get_metadata(wrapper))) if r else 0


# For type checkers: ``(mean, spread)``, dask arrays for a dask image.
@overload
def predict_uncertainty(
    model: keras.Model | None,
    image: da.Array,
    *,
    method: str = "tta",
    models=None,
    samples: int = 8,
    output: str = "std",
    seed: int = 0,
    **predict_tiled_kwargs,
) -> tuple[da.Array, da.Array]: ...
@overload
def predict_uncertainty(
    model: keras.Model | None,
    image,
    *,
    method: str = "tta",
    models=None,
    samples: int = 8,
    output: str = "std",
    seed: int = 0,
    **predict_tiled_kwargs,
) -> tuple[np.ndarray, np.ndarray]: ...
def predict_uncertainty(
    model: keras.Model | None,
    image,
    *,
    method: str = "tta",
    models=None,
    samples: int = 8,
    output: str = "std",
    seed: int = 0,
    **predict_tiled_kwargs,
):
    """Per-pixel prediction with an uncertainty map, tile by tile: ``(mean, spread)``.

    ``predict_tiled(model, image, uncertainty=method)`` calls this function.

    Builds (once per model and settings) the :func:`uncertainty_model` wrapper and runs
    :func:`sciconv.inference.predict_tiled` on it, so tiling, blending, normalization, NaN
    handling, memory maps and dask input behave exactly as for the mean alone. The spread maps of
    overlapping tiles are blended like the means. ``overlap="auto"`` comes from the receptive
    field of ``model`` (or of the ensemble's widest member), which is the wrapper's.

    Parameters
    ----------
    model : keras.Model or None
        The per-pixel model (None only for an ensemble given whole in ``models``).
    image : ndarray (H, W) or (H, W, C), GridImage, memmap or dask array
        Raw pixels, as for :func:`sciconv.inference.predict_tiled`.
    method, models, samples, output, seed
        See :func:`uncertainty_model`. With ``method="mc_dropout"`` the maps are reproducible for
        the same ``seed``, ``samples``, ``tile`` and ``overlap`` (and the same image size, which
        places the tiles), whatever the ``batch_size``: the ``S`` masks depend on the tile's size,
        not on its batch. Another ``tile`` or ``overlap`` places other masks at each pixel and
        changes the maps by about as much as another ``seed`` (within the Monte-Carlo error);
        not so when every dropout layer is a ``SpatialDropout`` (masks per channel only): then
        any ``tile`` gives the whole image's maps when ``overlap >= 2 r`` (``"auto"``).
    **predict_tiled_kwargs
        Passed to :func:`sciconv.inference.predict_tiled` (``tile``, ``overlap``, ``batch_size``,
        ``normalize``, ``blend``, ``progress``, ...). ``tta`` and ``uncertainty`` are not
        accepted (choose ``method=``) and neither is ``out`` (two maps come back).
        ``precision="auto"`` (the default) computes in float32 here: a spread of a few
        thousandths is below bfloat16's resolution (steps of 1/256 near 1), so the maps would
        come out quantized; ask for ``precision="bfloat16"`` to trade that for speed.

    Returns
    -------
    mean : ndarray of shape (H, W, K), float32
        The mean prediction (with ``method="tta"``, equal to ``predict_tiled(..., tta="d4")``).
    spread : ndarray of shape (H, W, K) for ``output="std"``, (H, W, 1) for ``"entropy"``
        The standard deviation over the samples, or the predictive entropy of the mean. NaN where
        the input is NaN. Dask input gives dask arrays.

    Raises
    ------
    InferenceError
        See :func:`uncertainty_model` and :func:`sciconv.inference.predict_tiled`; also ``tta=``
        or ``out=`` in ``predict_tiled_kwargs``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.inference import predict_uncertainty
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    >>> mean, std = predict_uncertainty(model, np.random.default_rng(0).random((20, 30)),
    ...                                 tile=16, overlap=4, normalize=None, progress=False)
    >>> mean.shape, std.shape, bool((std >= 0).all())
    ((20, 30, 1), (20, 30, 1), True)
    """
    for bad, hint in (
        ("tta", "choose method='tta'"),
        ("out", "two maps come back"),
        ("uncertainty", "choose method="),
    ):
        if bad in predict_tiled_kwargs:
            raise InferenceError(f"predict_uncertainty does not take {bad}= ({hint})")
    if predict_tiled_kwargs.get("precision", "auto") == "auto":
        predict_tiled_kwargs["precision"] = UNCERTAINTY_PRECISION
    wrapper = _cached_wrapper(model, method, models, samples, output, seed)
    if isinstance(predict_tiled_kwargs.get("overlap", "auto"), str):
        if predict_tiled_kwargs.get("overlap", "auto") == "auto":
            members = _ensemble_members(model, models) if method == "ensemble" else [model]
            predict_tiled_kwargs["overlap"] = _auto_overlap(wrapper, members)
    k = get_metadata(wrapper)["mean_channels"]
    both = predict_tiled(wrapper, image, **predict_tiled_kwargs)
    if k is None:  # channels unknown when the model was built: half and half for "std"
        k = both.shape[-1] // 2 if output == "std" else both.shape[-1] - 1
    return both[..., :k], both[..., k:]


def split_moments(prediction: np.ndarray, model: keras.Model):
    """Split a wrapper's (H, W, K + K') output into ``(mean, spread)`` by its metadata.

    Parameters
    ----------
    prediction : ndarray, shape (..., K + K')
        The wrapper's output (e.g. from :func:`predict_tiled`), mean channels first.
    model : keras.Model
        The wrapper (:func:`uncertainty_model`), whose ``mean_channels`` metadata gives K.

    Raises
    ------
    InferenceError
        If ``model`` is not an uncertainty wrapper.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.inference import split_moments, uncertainty_model
    >>> inputs = keras.Input((None, None, 1))
    >>> wrapper = uncertainty_model(keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs)))
    >>> mean, std = split_moments(np.zeros((4, 4, 6)), wrapper)
    >>> mean.shape, std.shape
    ((4, 4, 3), (4, 4, 3))
    """
    k = get_metadata(model).get("mean_channels")
    if k is None:
        raise InferenceError(
            f"model {model.name!r} is not an uncertainty wrapper (its metadata has no "
            "mean_channels); build it with uncertainty_model"
        )
    return prediction[..., :k], prediction[..., k:]
