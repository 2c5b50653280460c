"""What a Keras image model takes and how far it sees: its input checks, channels, fixed size,
divisor and measured receptive field (:func:`receptive_field`, cached per model and kept on disk
per architecture and weights, so a new process does not measure it again).

A model's own properties, used by inference (tiles, overlaps) and by the exports (the halo a
BioImage.IO package declares), so they live with the models.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import weakref
from collections.abc import Mapping

import keras
import numpy as np

from sciconv._fork import refuse_forked_tensorflow
from sciconv._validation import not_a_model
from sciconv.errors import InferenceError, SciconvWarning
from sciconv.models.layers import SciconvMetadata
from sciconv.models.metadata import get_metadata
from sciconv.models.precision import float32_model

__all__ = [
    "architecture_digest",
    "measure_receptive_field",
    "model_channels",
    "model_divisor",
    "model_fixed_hw",
    "receptive_field",
    "validate_model",
]


def validate_model(model) -> keras.Model:
    """Return ``model`` if it is a one-input, one-output 2-D image model.

    Parameters
    ----------
    model : keras.Model
        The model inference is asked to run.

    Returns
    -------
    keras.Model
        ``model`` itself.

    Raises
    ------
    InferenceError
        Not a Keras model, several inputs or outputs, or an input that is not (None, H, W, C).

    Examples
    --------
    >>> import keras
    >>> net = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 3)])
    >>> from sciconv.models.introspect import validate_model
    >>> validate_model(net) is net
    True
    >>> validate_model("model.keras")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.errors.InferenceError: model must be a keras.Model; got str (a file? load it: ...)
    """
    if not isinstance(model, keras.Model):
        raise InferenceError(not_a_model(model))
    refuse_forked_tensorflow("run a model")
    if len(model.inputs) != 1:
        raise InferenceError(
            f"model {model.name!r} has {len(model.inputs)} inputs; tiled prediction needs one "
            "image input of shape (None, H, W, C)"
        )
    if len(model.input_shape) != 4:
        raise InferenceError(
            f"model {model.name!r} takes inputs of shape {model.input_shape}; tiled prediction "
            "needs a 2-D image model with input (None, H, W, C)"
        )
    if len(model.outputs) != 1:  # QA: a segmenter(instance_output=...) met numpy's errors
        raise InferenceError(
            f"model {model.name!r} has {len(model.outputs)} outputs; sciconv predicts models "
            "with one (a segmenter(instance_output=...) trains its second output as a helper "
            "target): predict its first, keras.Model(model.inputs, model.outputs[0]), or "
            "call model.predict"
        )
    return model


def model_channels(model) -> int | None:
    """Input channels C of ``model`` (None when it takes any).

    Parameters
    ----------
    model : keras.Model
        A model with an image input ``(None, H, W, C)``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.introspect import model_channels
    >>> model_channels(keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)]))
    3
    """
    c = model.input_shape[-1]
    return None if c is None else int(c)


def model_fixed_hw(model) -> tuple[int, int] | None:
    """The (H, W) a fixed-size model takes, or None when it takes any size.

    Parameters
    ----------
    model : keras.Model
        A model with an image input ``(None, H, W, C)``.

    Raises
    ------
    InferenceError
        Only one of H and W fixed.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.introspect import model_fixed_hw
    >>> model_fixed_hw(keras.Sequential([keras.Input((64, 48, 1)), keras.layers.Conv2D(2, 1)]))
    (64, 48)
    >>> print(model_fixed_hw(keras.Sequential([keras.Input((None, None, 1)), keras.layers.ReLU()])))
    None
    """
    h, w = model.input_shape[1:3]
    if h is None and w is None:
        return None
    if h is None or w is None:
        raise InferenceError(
            f"model {model.name!r} has input shape {model.input_shape}: fix both H and W or neither"
        )
    return int(h), int(w)


def model_divisor(meta: Mapping) -> int:
    """What tile sides must be multiples of (``meta["divisor"]``, e.g. ``2**depth`` of a U-Net).

    Parameters
    ----------
    meta : mapping
        A model's metadata (:func:`~sciconv.models.get_metadata`); a missing or unreadable
        divisor is 1.

    Examples
    --------
    >>> from sciconv.models.introspect import model_divisor
    >>> model_divisor({"divisor": 8}), model_divisor({}), model_divisor({"divisor": "?"})
    (8, 1, 1)
    """
    d = meta.get("divisor", 1)
    try:
        d = int(d)
    except (TypeError, ValueError):
        d = 1
    return max(d, 1)


def architecture_digest(model: keras.Model) -> str | None:
    """A digest of ``model``'s architecture (its class and config, not its weights, nor its
    sciconv metadata).

    Models of one architecture share what depends on it alone: a model loaded twice, or the
    wrappers :func:`sciconv.inference.uncertainty_model` builds around it on each call, share
    one ``precision="auto"`` decision. The metadata (normalization, input transform,
    post-processing) changes neither the network's speed nor its receptive field: a model whose
    ``set_metadata`` changed kept its decision in its process while a fresh process timed it
    again and could choose the other precision (QA: probabilities 0.19 apart on one image).

    Parameters
    ----------
    model : keras.Model
        The model whose architecture is digested.

    Returns
    -------
    str or None
        A hex SHA-256 digest; None where the config cannot be serialized (a subclassed model
        without ``get_config``).

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.introspect import architecture_digest
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    >>> twin = keras.Model.from_config(model.get_config())  # other weights, same architecture
    >>> architecture_digest(twin) == architecture_digest(model)
    True
    """
    try:
        text = json.dumps(_without_metadata(model.get_config()), sort_keys=True, default=repr)
    except Exception:  # a subclassed model without get_config
        return None
    return hashlib.sha256(f"{type(model).__name__}:{text}".encode()).hexdigest()


def _without_metadata(config):
    """A functional model's config with its metadata layer's record left out."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        return config
    layers = [
        {**layer, "config": {k: v for k, v in layer["config"].items() if k != "metadata"}}
        if isinstance(layer, dict)
        and layer.get("class_name") == SciconvMetadata.__name__
        and isinstance(layer.get("config"), dict)
        else layer
        for layer in config["layers"]
    ]
    return {**config, "layers": layers}


def _weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for w in model.get_weights():
        w = np.ascontiguousarray(w)
        digest.update(f"{w.dtype}{w.shape}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def _kept_file(model: keras.Model, max_size: int, seed: int):
    """Where a model's measured receptive field is kept across processes (None: not kept).

    The key is the architecture, the weights (a trained model's dead units could narrow what
    the probe sees) and the probe, with the Keras and sciconv versions."""
    from sciconv import __version__
    from sciconv._kept import kept_file

    arch = architecture_digest(model)
    if arch is None:
        return None
    key = (
        f"{arch}:{_weights_digest(model)}:{max_size}:{seed}:{_RF_PROBE_VERSION}:"
        f"{keras.__version__}:{__version__}"
    )
    try:
        return kept_file("receptive_field", key, ".json")
    except (OSError, RuntimeError, ValueError):  # no cache folder to name
        return None


def _read_kept_field(path) -> tuple[tuple[int, int], int | None] | None:
    from sciconv._kept import read_kept

    return _parse_field(None if path is None else read_kept(path))


def _parse_field(text: str | None) -> tuple[tuple[int, int], int | None] | None:
    try:
        (ry, rx), reach = json.loads(text)
        found = ((int(ry), int(rx)), None if reach is None else int(reach))
    except (TypeError, ValueError):  # nothing kept, or not a measure
        return None
    return found if min(found[0]) >= 0 else None


_RF_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Part of the key a receptive field is kept on disk under: raised when the probe changes
_RF_PROBE_VERSION = 1


def receptive_field(model: keras.Model, *, max_size: int = 1024, seed: int = 0) -> tuple[int, int]:
    """Measure how far (in pixels, per axis) an input pixel influences the model's output.

    An impulse is added to a seeded random image and the output pixels that change are located
    (StarDist's ``_compute_receptive_field`` idea, measured rather than looked up in a table). The
    probe grows (64, 128, ... up to ``max_size`` pixels) until the changed region stays inside it.
    The result is cached per model, and kept on disk per architecture and weights
    (``<sciconv.fetch.cache_dir()>/receptive_field/``) for later processes.

    Parameters
    ----------
    model : keras.Model
        A 2-D model with a same-size per-pixel output.
    max_size : int, optional
        Largest probe side. Default 1024. A model whose influence reaches past it (global pooling,
        attention) gets ``max_size // 2`` and a :class:`~sciconv.errors.SciconvWarning`.
    seed : int, optional
        Seed of the random background. Default 0.

    Returns
    -------
    tuple of int
        ``(ry, rx)``: the half-width of the receptive field along rows and columns, so an output
        pixel depends on inputs at most ``ry`` rows and ``rx`` columns away. Tiles reproduce the
        whole-image result when ``overlap >= 2 * max(ry, rx)`` (see :func:`predict_tiled`).

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input((None, None, 1))
    >>> x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 5, padding="same")(x))
    >>> from sciconv.models.introspect import receptive_field
    >>> receptive_field(model)
    (3, 3)
    """
    result, reach = measure_receptive_field(model, max_size=max_size, seed=seed)
    if reach is not None:
        fixed = model_fixed_hw(model)
        why = (
            f"its fixed {fixed[0]} x {fixed[1]} input (the probe can be no larger)"
            if fixed
            else "its receptive field may be global (pooling over the whole image)"
        )
        warnings.warn(
            f"model {model.name!r}: the output depends on inputs as far as the probe reaches "
            f"({reach} px): {why}, so tiles cannot reproduce a whole-image call",
            SciconvWarning,
            stacklevel=2,
        )
        _RF_CACHE[model] = (result, None)  # warned once
    return result


def measure_receptive_field(
    model: keras.Model, *, max_size: int = 1024, seed: int = 0
) -> tuple[tuple[int, int], int | None]:
    """:func:`receptive_field` without its warning: ``((ry, rx), reach)``, where ``reach`` is
    the probe side the influence reached (a global receptive field) not yet warned about, or
    None. Cached as :func:`receptive_field` caches it.

    Parameters
    ----------
    model : keras.Model
        A fully convolutional model with a same-size per-pixel output.
    max_size, seed
        As :func:`receptive_field`.

    Examples
    --------
    >>> import keras
    >>> net = keras.Sequential(
    ...     [keras.Input((None, None, 1)), keras.layers.Conv2D(1, 5, padding="same")]
    ... )
    >>> from sciconv.models.introspect import measure_receptive_field
    >>> measure_receptive_field(net)  # a 5 x 5 kernel reaches 2 px each way
    ((2, 2), None)
    """
    validate_model(model)
    cached = _RF_CACHE.get(model)
    if cached is not None:
        return cached
    kept = _kept_file(model, max_size, seed)
    cached = _read_kept_field(kept)
    if cached is None:
        cached = _measure(model, max_size=max_size, seed=seed)
        if kept is not None:
            from sciconv._kept import keep

            text = json.dumps([list(cached[0]), cached[1]])
            keep(kept, text, valid=lambda t: _parse_field(t) is not None)
    _RF_CACHE[model] = cached
    return cached


def _measure(model: keras.Model, *, max_size: int, seed: int):
    divisor = model_divisor(get_metadata(model))
    fixed = model_fixed_hw(model)
    channels = model_channels(model) or 1
    net = float32_model(model)  # a mixed-precision model measured in float32, as run

    def runner(batch: np.ndarray) -> np.ndarray:
        y = np.asarray(net(batch, training=False))
        if y.ndim != 4 or y.shape[:3] != batch.shape[:3]:
            raise InferenceError(
                f"model {model.name!r} maps a batch of shape {batch.shape} to {y.shape}; the "
                "receptive field is measured on a same-size per-pixel output (a fully "
                "convolutional model with padding='same', e.g. sciconv.models.segmenter)"
            )
        return y

    rng = np.random.default_rng(seed)
    if fixed:
        sizes = [fixed]
    else:
        side, sizes = max(64, 4 * divisor), []
        while True:
            sizes.append((-(-side // divisor) * divisor,) * 2)
            if side >= max_size:
                break
            side *= 2
    result = None
    for size in sizes:
        h, w = size
        background = rng.normal(size=(1, h, w, channels)).astype(np.float32)
        probe = background.copy()
        cy, cx = h // 2, w // 2
        probe[0, cy, cx, :] += 1.0
        # one image per call: some CPU kernels give two identical images of one batch outputs
        # that differ by ~1e-7 all over, which would read as a global receptive field
        diff = np.abs(runner(probe)[0] - runner(background)[0]).max(axis=-1)
        changed = np.argwhere(diff > 0)
        if changed.size == 0:
            result, reach = (0, 0), None
            break
        lo, hi = changed.min(axis=0), changed.max(axis=0)
        ry = int(max(cy - lo[0], hi[0] - cy))
        rx = int(max(cx - lo[1], hi[1] - cx))
        result = (ry, rx)
        if lo.min() > 0 and hi[0] < h - 1 and hi[1] < w - 1:
            reach = None
            break
    else:
        reach = sizes[-1][0]
    return result, reach
