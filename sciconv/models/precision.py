"""A model rebuilt under another Keras dtype policy with the same weights.

Inference runs a float32 model in bfloat16 (:func:`bfloat16_model`, the output layers kept
float32) and a model saved under a mixed policy in float32 (:func:`float32_model`); export writes
the float32 copy of a mixed-precision model (:func:`with_policy`, built afresh). The two cached
rebuilds keep the weights they were built with: a caller that may have trained the model since
copies them over once per use (``clone.set_weights(model.get_weights())``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator

import keras

__all__ = ["all_layers", "bfloat16_model", "float32_model", "mixed_dtypes", "with_policy"]

_BF16_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_F32_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def all_layers(model: keras.Model) -> Iterator:
    """Every layer of ``model``, those of nested models included.

    Parameters
    ----------
    model : keras.Model
        The model whose layers are yielded, each nested model before its own layers.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.precision import all_layers
    >>> inputs = keras.Input((4,))
    >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> [type(layer).__name__ for layer in all_layers(keras.Model(inputs, inner(inputs)))]
    ['InputLayer', 'Sequential', 'Dense']
    """
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def mixed_dtypes(model: keras.Model) -> list[str]:
    """The compute dtypes other than float32 that ``model``'s layers use (sorted; [] for a
    float32 model).

    Parameters
    ----------
    model : keras.Model
        The model whose layers (nested models' included) are inspected.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.precision import mixed_dtypes
    >>> inputs = keras.Input((None, None, 1))
    >>> mixed_dtypes(keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs)))
    []
    """
    dtypes = {getattr(layer, "compute_dtype", None) for layer in all_layers(model)}
    return sorted(str(d) for d in dtypes - {"float32", None})


def _set_policy(config, policy: str, keep: set[str]) -> None:
    """Set ``dtype`` of every layer config under ``config`` (in place), but InputLayers and
    the layers named in ``keep``."""
    if isinstance(config, dict):
        inner = config.get("config")
        if (
            "class_name" in config
            and isinstance(inner, dict)
            and "dtype" in inner
            and config["class_name"] != "InputLayer"
            and inner.get("name") not in keep
        ):
            inner["dtype"] = policy
        for value in config.values():
            _set_policy(value, policy, keep)
    elif isinstance(config, list):
        for value in config:
            _set_policy(value, policy, keep)


def with_policy(model: keras.Model, policy: str, *, keep: Iterable[str] = ()) -> keras.Model:
    """``model`` rebuilt from its config with every layer (but InputLayers and ``keep``) under
    the dtype ``policy``, with the same weights; a new model each call (its metadata as they are
    now).

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model (rebuilt from ``get_config``; not changed).
    policy : str
        A Keras dtype policy name, e.g. ``"float32"`` or ``"mixed_bfloat16"``.
    keep : iterable of str, optional
        Names of layers that keep the dtype their config records (default: none).

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.precision import with_policy
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> with_policy(model, "mixed_bfloat16").layers[1].compute_dtype
    'bfloat16'
    """
    config = model.get_config()
    _set_policy(config.get("layers", config), policy, set(keep))
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def bfloat16_model(model: keras.Model) -> keras.Model:
    """``model`` rebuilt under the ``mixed_bfloat16`` policy with the same weights (cached per
    model: its weights are those of the first call, see the module notes).

    The output layers stay float32.

    Parameters
    ----------
    model : keras.Model
        A float32 functional or Sequential model (not changed).

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.precision import bfloat16_model
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(keras.layers.Conv2D(4, 3)(inputs)))
    >>> fast = bfloat16_model(model)
    >>> fast.layers[1].compute_dtype, fast.layers[2].compute_dtype
    ('bfloat16', 'float32')
    """
    cached = _BF16_MODELS.get(model)
    if cached is not None:
        return cached
    config = model.get_config()
    outputs = config.get("output_layers") or []
    if outputs and isinstance(outputs[0], str):  # one output: ["name", 0, 0]
        outputs = [outputs]
    keep = {out[0] for out in outputs}
    if not keep and model.layers:  # a Sequential model: its last layer gives the output
        keep = {model.layers[-1].name}
    clone = with_policy(model, "mixed_bfloat16", keep=keep)
    _BF16_MODELS[model] = clone
    return clone


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` itself when it computes in float32; else (a model saved under a mixed policy,
    e.g. trained after ``sciconv.devices.configure()`` chose ``mixed_bfloat16``) rebuilt in
    float32 with the same weights (cached per model, as :func:`bfloat16_model`), so
    ``precision="float32"`` means float32.

    Parameters
    ----------
    model : keras.Model
        The model to run in float32 (not changed).

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.precision import bfloat16_model, float32_model
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> float32_model(model) is model, float32_model(bfloat16_model(model)).layers[1].compute_dtype
    (True, 'float32')
    """
    if not mixed_dtypes(model):  # not cached: the cache would hold the model alive
        return model
    cached = _F32_MODELS.get(model)
    if cached is not None:
        return cached
    clone = with_policy(model, "float32")
    _F32_MODELS[model] = clone
    return clone
