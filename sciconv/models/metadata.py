"""Read and write the sciconv metadata stored inside a model.

Builders (:func:`~sciconv.models.classifier`, :func:`~sciconv.models.regressor`,
:func:`~sciconv.models.segmenter`) place a :class:`~sciconv.models.layers.SciconvMetadata` layer
right after the input and fill it with ``task``, ``num_classes``, ``input_channels`` and (segmenter)
``divisor``. :func:`sciconv.training.fit` adds ``normalization`` and ``class_names``; the
pretrained-model code adds ``postprocess``. The dictionary is part of the layer config, so it is
saved in the ``.keras`` file and read back by :func:`sciconv.models.load` (or plain
``keras.models.load_model`` once ``sciconv.models`` is imported).

Known keys: ``"task"`` (``"classification"``, ``"multilabel"``, ``"regression"``,
``"segmentation"``), ``"num_classes"``, ``"outputs"``, ``"uncertainty"``, ``"class_names"``,
``"normalization"`` (a :mod:`sciconv.preprocess` spec dict), ``"divisor"`` (H and W must be
multiples of it), ``"postprocess"`` (keyword arguments for ``sciconv.postprocess.instances``),
``"input_channels"``, ``"instance_output"``, ``"pixel_scale"`` (the physical pixel size of the
training images, ``{"y": 0.5, "x": 0.5, "unit": "um"}`` as
:meth:`sciconv.io.PixelScale.to_dict` writes it; absent when unknown; :func:`set_metadata` also
takes a :class:`~sciconv.io.PixelScale` or an astropy Quantity for it, and
:func:`get_pixel_scale` reads it back). Any other JSON-able key may be added. The settings
prediction reads (``postprocess``, ``normalization``, ``input_transform``, ``object_size``,
``object_size_range``, ``pixel_scale``) are checked when they are set, as
:func:`~sciconv.models.load` and prediction check them, so a typo never reaches a saved file.

Examples
--------
>>> import keras
>>> from sciconv.models import classifier, get_metadata, set_metadata
>>> model = classifier((16, 16, 1), 3, filters=(4,), dense=(8,))
>>> get_metadata(model)["task"]
'classification'
>>> set_metadata(model, class_names=["a", "b", "c"])
>>> get_metadata(model)["class_names"]
['a', 'b', 'c']
"""

from __future__ import annotations

import keras
import numpy as np

from sciconv._validation import not_a_model
from sciconv.errors import ConfigError, ModelError
from sciconv.io import PixelScale
from sciconv.models._validate_meta import check_metadata
from sciconv.models.layers import SciconvMetadata, check_jsonable

__all__ = [
    "attach_metadata",
    "get_metadata",
    "get_pixel_scale",
    "metadata_layer",
    "model_task",
    "set_metadata",
]


def _validate_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise ModelError(not_a_model(model))


def metadata_layer(model: keras.Model) -> SciconvMetadata | None:
    """Return the model's :class:`~sciconv.models.layers.SciconvMetadata` layer, or None if it has
    none.

    Parameters
    ----------
    model : keras.Model
        A sciconv model, any Keras model, or one that nests a sciconv model as a layer.

    Examples
    --------
    >>> from sciconv.models import metadata_layer, regressor
    >>> metadata_layer(regressor((8, 8, 1), filters=(2,), dense=())).name
    'regressor_metadata'
    """
    _validate_model(model)
    for layer in model.layers:
        if isinstance(layer, SciconvMetadata):
            return layer
    for layer in model.layers:  # a sciconv model nested inside a user's model
        if isinstance(layer, keras.Model):
            found = metadata_layer(layer)
            if found is not None:
                return found
    return None


def get_metadata(model: keras.Model) -> dict:
    """Return a copy of the sciconv metadata stored in ``model`` (``{}`` if it has none).

    Parameters
    ----------
    model : keras.Model
        A model built by :mod:`sciconv.models`, loaded from a ``.keras`` file, or any Keras model.

    Returns
    -------
    dict
        A deep copy in plain JSON types (dict, list, str, int, float, bool, None): changing it
        does not change the model (use :func:`set_metadata`), and ``json.dumps`` writes it,
        also after the model was exported.

    Examples
    --------
    >>> from sciconv.models import get_metadata, segmenter
    >>> meta = get_metadata(segmenter((None, None, 1), depth=2, filters=4))
    >>> meta["task"], meta["divisor"], meta["input_channels"]
    ('segmentation', 4, 1)
    """
    layer = metadata_layer(model)
    return {} if layer is None else layer.metadata_copy()


def model_task(model: keras.Model) -> str | None:
    """The model's task: the recorded ``"task"``, else guessed from a plain Keras model's output.

    An output ``(N, K)`` is taken for a classification (softmax, or logits: a linear one of
    several units), a multi-label one (sigmoid) or a regression (one linear unit);
    ``(N, H, W, K)`` for a per-pixel (segmentation) model; anything else gives None.

    Parameters
    ----------
    model : keras.Model
        A sciconv model or any Keras model.

    Returns
    -------
    str or None
        ``"classification"``, ``"multilabel"``, ``"regression"``, ``"segmentation"`` or None.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models import model_task
    >>> inputs = keras.Input((None, None, 1))
    >>> model_task(keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs)))
    'segmentation'
    >>> flat = keras.layers.GlobalAveragePooling2D()(inputs)
    >>> model_task(keras.Model(inputs, keras.layers.Dense(1)(flat)))
    'regression'
    """
    _validate_model(model)
    task = get_metadata(model).get("task")
    if task:
        return str(task)
    rank = len(model.outputs[0].shape) if len(model.outputs) == 1 else None
    if rank == 2:  # by the output's activation (QA: a linear regressor was compiled with
        # sparse cross-entropy: loss 0 and no learning, or TensorFlow's label-range error);
        # a linear output of several units is a classifier's logits (review)
        activation = output_activation(model)
        if activation == "linear" and model.outputs[0].shape[-1] == 1:
            return "regression"
        return "multilabel" if activation == "sigmoid" else "classification"
    return {4: "segmentation"}.get(rank)


def output_activation(model: keras.Model) -> str | None:
    """The name of the last layer's activation (``"softmax"``, ``"linear"``), or None."""
    layer = model.layers[-1] if model.layers else None
    if type(layer).__name__ == "Softmax":
        return "softmax"
    return getattr(getattr(layer, "activation", None), "__name__", None)


def set_metadata(model: keras.Model, **items) -> None:
    """Update the metadata stored in ``model``; the change persists when the model is saved.

    Parameters
    ----------
    model : keras.Model
        A model that holds a :class:`~sciconv.models.layers.SciconvMetadata` layer (every sciconv
        builder adds one; wrap
        other models with :func:`attach_metadata`).
    **items
        JSON-able values (str, int, float, bool, None, list, dict). A value of None removes the key.
        The settings prediction reads are checked as :func:`sciconv.models.load` and prediction
        check them, so a typo never reaches a saved file: ``postprocess`` (keyword arguments of
        :func:`sciconv.postprocess.instances`, see :func:`check_postprocess`),
        ``normalization`` (a spec dict or a :class:`~sciconv.preprocess.NormSpec`),
        ``input_transform`` (:func:`sciconv.preprocess.validate_input_transform`),
        ``object_size`` (the training objects' typical diameter: a positive number of pixels,
        or an astropy Quantity converted with the model's ``pixel_scale``, given in the same
        call or recorded), ``object_size_range`` (``[low, high]`` pixels) and ``pixel_scale``.

    Raises
    ------
    ModelError
        If the model has no metadata layer, a value is not JSON-able, or a checked setting is
        wrong (the message names the key).

    Examples
    --------
    >>> from sciconv.models import classifier, get_metadata, set_metadata
    >>> model = classifier((16, 16, 1), 2, filters=(4,), dense=())
    >>> set_metadata(model, normalization={"method": "minmax"})
    >>> get_metadata(model)["normalization"]
    {'method': 'minmax'}
    >>> set_metadata(model, postprocess={"treshold": 0.5})
    Traceback (most recent call last):
    ...
    sciconv.errors.ModelError: metadata 'postprocess': recorded post-processing setting 'treshold' ...
    """  # noqa: E501
    layer = metadata_layer(model)
    if layer is None:
        raise ModelError(
            f"model {model.name!r} holds no sciconv metadata layer; build it with "
            "sciconv.models builders or wrap it with sciconv.models.attach_metadata(model)"
        )
    updates = _checked(items, recorded=layer.metadata)
    for key, value in updates.items():
        if value is None:
            layer.metadata.pop(key, None)
        else:
            layer.metadata[key] = value


def _checked(items: dict, recorded: dict | None = None) -> dict:
    """``items`` as :func:`set_metadata` records them: pixel scales and a physical object size
    converted, the settings prediction reads checked (:func:`check_metadata`), JSON-able."""
    items = dict(items)
    if items.get("pixel_scale") is not None:
        items["pixel_scale"] = _pixel_scale_dict(items["pixel_scale"])
    if hasattr(items.get("object_size"), "unit"):  # a Quantity: in pixels of the model's scale
        scale = items.get("pixel_scale", (recorded or {}).get("pixel_scale"))
        items["object_size"] = _size_in_pixels(items["object_size"], scale)
    return check_jsonable(check_metadata(items), name="metadata")


def _size_in_pixels(size, scale) -> float:
    """A physical ``object_size`` (astropy Quantity) in pixels of the model's pixel scale."""
    from astropy import units as u

    scale = PixelScale.from_value(scale) if scale is not None else None
    if scale is None:
        raise ModelError(
            f"metadata 'object_size': {size} is in physical units but the model records no "
            "pixel_scale to convert it with; give it in pixels, or pass pixel_scale= too"
        )
    try:
        value = u.Quantity(size).to_value(scale.quantity.unit)  # "inch" needs imperial
    except (u.UnitsError, TypeError) as exc:
        raise ModelError(
            f"metadata 'object_size': {size} does not convert to the model's pixel scale unit "
            f"({scale.unit})"
        ) from exc
    if np.ndim(value) != 0:
        raise ModelError(f"metadata 'object_size' must be one size; got {size}")
    return float(f"{float(value) / scale.mean:.12g}")


def _pixel_scale_dict(value) -> dict:
    try:
        return PixelScale.from_value(value).to_dict()
    except ConfigError as exc:
        raise ModelError(f"metadata pixel_scale: {exc.message}") from exc


def get_pixel_scale(model: keras.Model) -> PixelScale | None:
    """The pixel scale the model was trained at (metadata ``"pixel_scale"``), or None.

    Parameters
    ----------
    model : keras.Model
        A sciconv model (or any Keras model: None without metadata).

    Returns
    -------
    sciconv.io.PixelScale or None

    Raises
    ------
    ModelError
        The recorded value is not a pixel scale.

    Examples
    --------
    >>> from sciconv.models import classifier, get_pixel_scale, set_metadata
    >>> model = classifier((8, 8, 1), 2, filters=(2,), dense=())
    >>> get_pixel_scale(model) is None
    True
    >>> set_metadata(model, pixel_scale={"y": 0.2, "x": 0.2, "unit": "arcsec"})
    >>> get_pixel_scale(model)
    PixelScale(y=0.2, x=0.2, unit='arcsec')
    """
    value = get_metadata(model).get("pixel_scale")
    return None if value is None else PixelScale.from_value(_pixel_scale_dict(value))


def attach_metadata(model: keras.Model, **items) -> keras.Model:
    """Wrap a single-input Keras model so it carries sciconv metadata.

    Returns a new functional model ``Input -> SciconvMetadata -> model``; weights are shared with
    ``model``. Models built by sciconv already carry metadata; for them this only updates it.

    Parameters
    ----------
    model : keras.Model
        A single-input Keras model (or a sciconv model, updated in place and returned).
    **items
        JSON-able metadata entries, as in :func:`set_metadata` (checked as there).

    Returns
    -------
    keras.Model
        The wrapped model, or ``model`` itself when it already carries metadata.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models import attach_metadata, get_metadata
    >>> inputs = keras.Input((8, 8, 1))
    >>> plain = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> wrapped = attach_metadata(plain, task="segmentation")
    >>> get_metadata(wrapped)
    {'task': 'segmentation'}
    """
    _validate_model(model)
    if metadata_layer(model) is not None:
        set_metadata(model, **items)
        return model
    if len(model.inputs) != 1:
        raise ModelError(
            f"attach_metadata needs a model with one input; {model.name!r} has {len(model.inputs)}"
        )
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name=f"{model.name}_input")
    items = {k: v for k, v in _checked(items).items() if v is not None}
    x = SciconvMetadata(items, name=f"{model.name}_metadata")(inputs)
    return keras.Model(inputs, model(x), name=model.name)
