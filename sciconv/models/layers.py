"""Custom Keras layers of sciconv (all registered with ``package="sciconv"``).

:class:`~sciconv.models.layers.TargetScale` gives a regressor's outputs in the targets' units
(it learns standardized ones). :class:`~sciconv.models.layers.SciconvMetadata` is an identity
layer placed right after a model's input. It
carries a JSON-able dictionary (task, class names, normalization spec, divisor, post-processing
settings) in its config, so the information travels inside the ``.keras`` file and survives
``save`` / ``load`` in another process, with no side file. When the dictionary has a ``"divisor"``
entry (a U-Net needs H and W divisible by ``2**depth``) the layer also checks the spatial size of
its input whenever that size is known when the graph is traced, and raises
:class:`~sciconv.errors.ModelError` with a clear message instead of a shape error deep inside
TensorFlow.

Examples
--------
>>> import keras
>>> from sciconv.models.layers import SciconvMetadata
>>> layer = SciconvMetadata({"task": "classification"}, name="meta")
>>> SciconvMetadata.from_config(layer.get_config()).metadata
{'task': 'classification'}
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import keras

from sciconv._fork import refuse_forked_tensorflow
from sciconv.errors import ModelError

__all__ = [
    "LOG_VAR_LIMIT",
    "BilinearUpSampling2D",
    "SciconvMetadata",
    "TargetScale",
    "check_jsonable",
]

#: A regressor's standardized log-variance is clipped to [-LOG_VAR_LIMIT, LOG_VAR_LIMIT] (sigma
#: from 5.5e-4 to 1808 standard deviations of the targets) before :class:`TargetScale` turns it
#: into the targets' units.
LOG_VAR_LIMIT = 15.0


def check_jsonable(metadata: dict, *, name: str = "metadata") -> dict:
    """Return a JSON round-tripped deep copy of ``metadata`` (tuples become lists).

    Raises :class:`~sciconv.errors.ModelError` naming the offending entry when a value cannot be
    written as JSON (arrays, objects, NaN).

    Parameters
    ----------
    metadata : dict
        The dictionary to check, with str keys.
    name : str, optional
        What to call it in the error message (default ``"metadata"``).

    Examples
    --------
    >>> from sciconv.models.layers import check_jsonable
    >>> check_jsonable({"divisor": 16, "shape": (1, 2)})
    {'divisor': 16, 'shape': [1, 2]}
    """
    if not isinstance(metadata, dict):
        raise ModelError(f"{name} must be a dict; got {type(metadata).__name__}")
    out = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ModelError(f"{name} keys must be strings; got {key!r}")
        try:
            out[key] = json.loads(json.dumps(_plain(value), allow_nan=False))
        except (TypeError, ValueError) as err:
            raise ModelError(
                f"{name}[{key!r}] cannot be stored in a model file (it must be JSON-able: "
                f"str, int, float, bool, None, list, dict); got {value!r} ({err})"
            ) from None
    return out


def _plain(value: Any) -> Any:
    """Convert numpy scalars and tuples to plain Python so json can write them."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _plain_copy(value: Any) -> Any:
    """A deep copy of JSON-like ``value`` with every mapping a dict and every sequence a list
    (tracking wrappers of Keras or TensorFlow unwrapped); other leaves are deep-copied."""
    if isinstance(value, Mapping):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(item) for item in value]
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):  # subclasses (an IntEnum; numpy's float64 below) made plain
        return int(value)
    if isinstance(value, float):
        return float(value)
    return _plain(copy.deepcopy(value))


def _runtime_divisor_check(inputs, divisor: int):
    """Guard sizes only known at run time (TensorFlow backend; other backends trace eagerly)."""
    if keras.backend.backend() != "tensorflow":
        return inputs
    import tensorflow as tf

    hw = tf.shape(inputs)[1:3]
    check = tf.debugging.assert_equal(
        tf.math.floormod(hw, divisor),
        tf.zeros_like(hw),
        message=(
            f"sciconv: input height and width must be multiples of {divisor} for this model "
            "(2**depth of its U-Net); pad the image (sciconv.inference.predict_tiled does this) "
            "or crop it. Got height, width ="
        ),
        summarize=2,
    )
    with tf.control_dependencies([check]):
        return tf.identity(inputs)


@keras.saving.register_keras_serializable(package="sciconv")
class SciconvMetadata(keras.layers.Layer):
    """Identity layer that stores a model's sciconv metadata in its config.

    Parameters
    ----------
    metadata : dict, optional
        JSON-able dictionary. Read and update it with :func:`sciconv.models.get_metadata` and
        :func:`sciconv.models.set_metadata` rather than touching the layer.
    **kwargs
        Standard layer arguments (``name``, ``dtype``).

    Notes
    -----
    The layer returns its input unchanged. If ``metadata["divisor"]`` is set and the spatial size
    of the input is known when the model is traced, a size not divisible by it raises
    :class:`~sciconv.errors.ModelError`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models import SciconvMetadata
    >>> layer = SciconvMetadata({"divisor": 4})
    >>> tuple(layer(np.ones((1, 8, 8, 1), "float32")).shape)
    (1, 8, 8, 1)
    >>> layer(np.ones((1, 6, 8, 1), "float32"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.errors.ModelError: ...input height and width must be multiples of 4...
    """

    def __init__(self, metadata: dict | None = None, **kwargs):
        # every sciconv model is built, loaded, cloned or unpickled through this layer, before
        # its weights: a pool worker forked after TensorFlow started would hang there
        refuse_forked_tensorflow("make a sciconv model (build, load, unpickle)")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.metadata = dict(metadata or {})
        self.supports_masking = True

    # The dictionary is kept out of Keras' and TensorFlow's automatic dependency tracking: Keras
    # wrapped it in a ``TrackedDict`` and TensorFlow's SavedModel walk (which ONNX export runs)
    # turned its nested dicts into ``_DictWrapper`` objects, in place, so that the metadata were
    # no longer JSON after an export (QA). It holds nothing to track (no weights, no layers).
    @property
    def metadata(self) -> dict:
        """The layer's own metadata dictionary (plain JSON types; set_metadata updates it)."""
        try:
            return self.__dict__["_sciconv_metadata"]
        except KeyError:  # read before __init__ set it (hasattr must say False, not raise)
            raise AttributeError("metadata") from None

    @metadata.setter
    def metadata(self, value: dict) -> None:
        object.__setattr__(self, "_sciconv_metadata", check_jsonable(dict(value)))

    def __setattr__(self, name, value):
        if name == "metadata":  # past Keras' and TensorFlow's trackers (they wrap dicts)
            type(self).metadata.fset(self, value)
            return
        super().__setattr__(name, value)

    def metadata_copy(self) -> dict:
        """A deep copy of :attr:`metadata` made of plain Python types: every mapping a dict and
        every sequence a list, whatever was put in the dictionary in place (tracking wrappers
        of Keras or TensorFlow unwrapped), so that ``json.dumps`` writes it.

        Examples
        --------
        >>> from sciconv.models.layers import SciconvMetadata
        >>> layer = SciconvMetadata({"normalization": {"method": "minmax"}})
        >>> copy = layer.metadata_copy()
        >>> copy["normalization"]["method"] = "zscore"
        >>> layer.metadata["normalization"]
        {'method': 'minmax'}
        """
        return _plain_copy(self.metadata)

    def _check_spatial(self, shape) -> None:
        divisor = self.metadata.get("divisor")
        if not divisor or len(shape) != 4:
            return
        bad = [int(s) for s in shape[1:3] if s is not None and int(s) % int(divisor)]
        if bad:
            raise ModelError(
                f"input height and width must be multiples of {divisor} for this model "
                f"(2**depth of its U-Net); got an input of shape {tuple(shape)}. Pad the image "
                f"(sciconv.inference.predict_tiled does this) or crop it to a multiple of {divisor}"
            )

    def compute_output_shape(self, input_shape):
        self._check_spatial(input_shape)
        return input_shape

    def call(self, inputs):
        shape = tuple(inputs.shape)
        self._check_spatial(shape)
        divisor = self.metadata.get("divisor")
        if divisor and len(shape) == 4 and None in shape[1:3]:
            inputs = _runtime_divisor_check(inputs, int(divisor))
        return inputs

    def get_config(self) -> dict:
        config = super().get_config()
        config["metadata"] = self.metadata_copy()
        return config


@keras.saving.register_keras_serializable(package="sciconv")
class BilinearUpSampling2D(keras.layers.Layer):
    """Bilinear x2 upsampling (half-pixel centres, edges clamped) that works on any H, W.

    Gives the same values as ``keras.layers.UpSampling2D(2, interpolation="bilinear")``, but is
    written with slicing, ``stack`` and ``reshape`` only, so it also works when H and W are unknown
    until run time (``UpSampling2D`` bilinear fails there under TensorFlow graph tracing) and
    compiles under XLA. Channels-last input ``(N, H, W, C)`` -> ``(N, 2H, 2W, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models import BilinearUpSampling2D
    >>> x = np.array([0.0, 4.0], "float32").reshape(1, 1, 2, 1)
    >>> BilinearUpSampling2D()(x)[0, 0, :, 0].numpy().tolist()
    [0.0, 1.0, 3.0, 4.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @staticmethod
    def _upsample_axis(x, axis: int):
        ops = keras.ops
        n = x.shape[axis]
        first = ops.take(x, [0], axis=axis)
        last = ops.take(x, [-1], axis=axis) if n is not None else None
        if last is None:
            size = ops.shape(x)[axis]
            last = ops.take(x, ops.expand_dims(size - 1, 0), axis=axis)
        padded = ops.concatenate([first, x, last], axis=axis)
        size = ops.shape(padded)[axis]
        prev = _slice_axis(padded, axis, 0, size - 2)
        nxt = _slice_axis(padded, axis, 2, size)
        even = 0.75 * x + 0.25 * prev
        odd = 0.75 * x + 0.25 * nxt
        stacked = ops.stack([even, odd], axis=axis + 1)
        shape = list(ops.shape(x))
        shape[axis] = shape[axis] * 2
        return ops.reshape(stacked, shape)

    def call(self, inputs):
        x = self._upsample_axis(inputs, 1)
        return self._upsample_axis(x, 2)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, c)


def _slice_axis(x, axis: int, start, stop):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


@keras.saving.register_keras_serializable(package="sciconv")
class TargetScale(keras.layers.Layer):
    """A regressor's standardized outputs in the targets' units.

    The network learns targets of mean 0 and standard deviation 1 (a flux in ADU of 1e5, a size
    of 3 px alike): this layer, the last of :func:`sciconv.models.regressor`, maps its outputs
    ``z`` to ``offset + scale * z``, and with ``uncertainty`` the log-variance ``v`` (clipped to
    :data:`LOG_VAR_LIMIT` in standardized units) to ``v + 2 log(scale)``, so a 1-sigma error bar
    is ``exp(v / 2)`` standard deviations of the targets, whatever their units. ``offset`` and
    ``scale`` are non-trainable weights set from the training targets by
    :func:`sciconv.training.fit` (:meth:`adapt`) before it trains; 0 and 1 (identity) until then.

    Parameters
    ----------
    outputs : int
        Number of targets (the mean columns of the input).
    uncertainty : bool, optional
        The input holds ``[mean, log_var]`` (``2 * outputs`` columns) rather than the means
        alone (default False).
    **kwargs
        Standard layer arguments (``name``; ``dtype`` defaults to ``"float32"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models.layers import TargetScale
    >>> layer = TargetScale(1, uncertainty=True)
    >>> layer.adapt(np.array([[100.0], [300.0]]))
    >>> [round(float(v), 3) for v in layer(np.array([[1.0, 0.0]], "float32"))[0]]
    [300.0, 9.21]
    """

    def __init__(self, outputs: int, uncertainty: bool = False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.n_outputs = int(outputs)
        self.uncertainty = bool(uncertainty)
        self.offset = self.add_weight(
            name="offset", shape=(self.n_outputs,), initializer="zeros", trainable=False
        )
        self.scale = self.add_weight(
            name="scale", shape=(self.n_outputs,), initializer="ones", trainable=False
        )

    def adapt(self, targets) -> None:
        """Set ``offset`` and ``scale`` to the mean and standard deviation of ``targets``
        ``(N, outputs)`` (a constant target: scale 1).

        Parameters
        ----------
        targets : array_like
            The training targets, ``(N, outputs)`` (or ``(N,)`` for one output).
        """
        import numpy as np

        y = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        if y.shape[1] != self.n_outputs:
            raise ModelError(
                f"TargetScale of {self.n_outputs} outputs cannot adapt to targets of shape "
                f"{y.shape}"
            )
        std = y.std(axis=0).astype("float32")  # a spread float32 cannot hold: scale 1
        self.offset.assign(y.mean(axis=0).astype("float32"))
        self.scale.assign(np.where(std > 0, std, 1.0).astype("float32"))

    def is_identity(self) -> bool:
        """Whether ``offset`` and ``scale`` are still 0 and 1 (not adapted)."""
        import numpy as np

        return bool(
            np.all(np.asarray(self.offset.numpy()) == 0)
            and np.all(np.asarray(self.scale.numpy()) == 1)
        )

    def call(self, inputs):
        ops = keras.ops
        n = self.n_outputs
        if not self.uncertainty:
            return self.offset + self.scale * inputs
        mean = self.offset + self.scale * inputs[..., :n]
        log_var = ops.clip(inputs[..., n:], -LOG_VAR_LIMIT, LOG_VAR_LIMIT)
        # var(offset + scale z) = scale**2 var(z), whatever the sign of scale
        return ops.concatenate([mean, log_var + 2.0 * ops.log(ops.abs(self.scale))], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(outputs=self.n_outputs, uncertainty=self.uncertainty)
        return config
