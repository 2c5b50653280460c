"""Layers that turn a model's output into calibrated probabilities and uncertainty.

Their home is here, in :mod:`sciconv.models`, so a saved model that holds them (a model from
:func:`sciconv.calibration.calibrate` or :func:`sciconv.inference.uncertainty_model`) loads with
:func:`sciconv.models.load` or ``keras.models.load_model`` once ``sciconv.models`` is imported.

- :class:`D4Transform`: one of the eight flips/rotations of the spatial axes (or its inverse);
- :class:`D4Moments`: a per-pixel model's mean and spread over the eight, the model traced once;
- :class:`AlwaysDropout`: dropout that stays active at inference (MC dropout);
- :class:`RepeatBatch`: repeats a batch ``samples`` times (one batch for all MC samples);
- :class:`EnsembleMoments`: mean and spread (standard deviation or entropy) over members;
- :class:`TemperatureScaling`: ``softmax(log p / T)`` or ``sigmoid(logit(p) / T)``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from sciconv._validation import check_int, look_up_option
from sciconv.errors import ConfigError, InferenceError

__all__ = [
    "CALIBRATION_MODES",
    "UNCERTAINTY_OUTPUTS",
    "AlwaysDropout",
    "D4Moments",
    "D4Transform",
    "EnsembleMoments",
    "RepeatBatch",
    "TemperatureScaling",
]

#: How probabilities are rescaled: ``softmax(log p / T)`` or ``sigmoid(logit(p) / T)``.
CALIBRATION_MODES = ("softmax", "sigmoid")
#: The spread an uncertainty model reports beside the mean.
UNCERTAINTY_OUTPUTS = ("std", "entropy")
_EPS = 1e-7
#: The least probability :class:`TemperatureScaling` (softmax) and
#: :func:`sciconv.calibration.fit_temperature` take the log of: float32's smallest normal
#: number, so ``log p`` keeps the logits' differences (softmax is shift-invariant) down to
#: float32's underflow. Clipped at 1e-7 (before 2026-12-07), an over-confident classifier's
#: logits were flattened and its fitted temperature too small: ECE 0.042 / 0.062 after
#: calibration instead of 0.014 (logit scales 10 / 20; QA against Guo et al.'s logit scaling).
SOFTMAX_FLOOR = float(np.finfo(np.float32).tiny)


def _d4(x, k: int, *, inverse: bool = False):
    """Element ``k`` of D4 (or its inverse) on axes 1, 2 of ``x``: see :class:`D4Transform`."""
    transpose, flips = bool(k & 4), [a for a, bit in ((1, 1), (2, 2)) if k & bit]
    if transpose and not inverse:
        x = ops.transpose(x, (0, 2, 1, 3))
    for axis in flips:
        x = ops.flip(x, axis=axis)
    if transpose and inverse:
        x = ops.transpose(x, (0, 2, 1, 3))
    return x


def _moments(y, spread: str):
    """``concat[mean, std]`` or ``concat[mean, entropy]`` over axis 0 of ``y`` (S, N, ..., K)."""
    y = ops.cast(y, "float32")
    mean = ops.mean(y, axis=0)
    if spread == "std":
        spread = ops.sqrt(ops.maximum(ops.mean(ops.square(y - mean), axis=0), 0.0))
    else:
        p = ops.clip(mean, _EPS, 1.0 - _EPS)
        if mean.shape[-1] == 1:
            spread = -(p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p))
        else:
            spread = -ops.sum(p * ops.log(p), axis=-1, keepdims=True)
    return ops.concatenate([mean, spread], axis=-1)


@keras.saving.register_keras_serializable(package="sciconv")
class D4Transform(keras.layers.Layer):
    """Element ``k`` of the dihedral group D4 on the rows and columns of a batch (N, H, W, C).

    ``k`` is read as three bits: ``k & 4`` transposes rows and columns first, then ``k & 1``
    flips the rows and ``k & 2`` flips the columns. With ``inverse=True`` the layer undoes the
    same element (flips first, then the transpose), so
    ``D4Transform(k, inverse=True)(D4Transform(k)(x)) == x``. A transpose swaps H and W.

    Parameters
    ----------
    k : int
        Element of D4, ``0 <= k < 8``.
    inverse : bool, optional
        Apply the inverse element. Default False.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(6, dtype="float32").reshape(1, 2, 3, 1)
    >>> from sciconv.models.uncertainty_layers import D4Transform
    >>> y = D4Transform(5)(x)
    >>> tuple(y.shape), np.asarray(y)[0, :, :, 0].tolist()
    ((1, 3, 2, 1), [[2.0, 5.0], [1.0, 4.0], [0.0, 3.0]])
    >>> bool(np.array_equal(D4Transform(5, inverse=True)(y), x))
    True
    """

    def __init__(self, k: int, *, inverse: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.k = check_int(k, name="k", minimum=0, error=InferenceError)
        if self.k > 7:
            raise InferenceError(f"k must be an element of D4, 0 <= k < 8; got k={k}")
        self.inverse = bool(inverse)

    def call(self, inputs):
        return _d4(inputs, self.k, inverse=self.inverse)

    def compute_output_shape(self, input_shape):
        if self.k & 4:
            n, h, w, c = input_shape
            return (n, w, h, c)
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(k=self.k, inverse=self.inverse)
        return config


@keras.saving.register_keras_serializable(package="sciconv")
class AlwaysDropout(keras.layers.Layer):
    """Dropout that stays active at inference (Monte-Carlo dropout), with a fixed seed.

    The masks come from a stateless generator seeded with ``seed``, so the same call always gets
    the same masks. With ``samples=S`` (what :func:`sciconv.inference.uncertainty_model` builds)
    the batch is read as ``S`` copies of ``N`` examples, copies outermost (as
    :class:`RepeatBatch` stacks them): copy ``s`` of every example gets the same mask, one per
    ``s`` drawn for the example's shape (H, W, C). An example's ``S`` masks so depend on
    ``seed``, ``S`` and its shape only, not on the batch size ``N`` nor on the other examples of
    the batch (one tile gives the same samples alone as in a batch of 8, or as the last, shorter
    batch). Without ``samples`` (None, as in the layers saved before 2026-12-07) one mask is
    drawn for the whole batch: an example's masks then depend on its place in the batch and on
    the batch's size.

    Parameters
    ----------
    rate : float
        Fraction of the units dropped, ``0 <= rate < 1``; kept units are scaled by
        ``1 / (1 - rate)`` as in ``keras.layers.Dropout``.
    spatial : bool, optional
        Drop whole channels (``SpatialDropout2D``: one mask value per sample and channel).
    seed : int, optional
        Seed of the stateless mask generator. Default 0.
    samples : int or None, optional
        ``S``: the batch is ``S * N`` examples, copy ``s`` of example ``n`` at row ``s * N + n``,
        and copy ``s`` of every example gets mask ``s``; the batch size must be a multiple of
        ``S``. None (default): one mask per row of the batch, drawn for the whole batch at once.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models.uncertainty_layers import AlwaysDropout
    >>> layer = AlwaysDropout(0.5, seed=1, samples=2)
    >>> x = np.ones((2 * 3, 4, 4, 2), "float32")  # 2 samples of 3 examples, samples outermost
    >>> y = np.asarray(layer(x))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> bool(np.array_equal(y[0], y[2])), bool(np.array_equal(y[0], y[3]))  # rows: s * 3 + n
    (True, False)
    >>> one = np.asarray(layer(np.ones((2, 4, 4, 2), "float32")))  # the same masks for N = 1
    >>> bool(np.array_equal(one[0], y[0]) and np.array_equal(one[1], y[3]))
    True
    """

    def __init__(
        self,
        rate: float,
        *,
        spatial: bool = False,
        seed: int = 0,
        samples: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise InferenceError(f"rate must be in [0, 1); got rate={rate!r}")
        self.rate = float(rate)
        self.spatial = bool(spatial)
        self.seed = int(seed)
        self.samples = (
            None
            if samples is None
            else check_int(samples, name="samples", minimum=1, error=InferenceError)
        )

    def call(self, inputs):
        if self.rate == 0.0:
            return inputs
        rank = len(inputs.shape)
        spatial = self.spatial and rank >= 3
        if self.samples is None:  # one draw for the whole batch (as saved before 2026-12-07)
            noise_shape = (None,) + (1,) * (rank - 2) + (None,) if spatial else None
            return keras.random.dropout(inputs, self.rate, noise_shape=noise_shape, seed=self.seed)
        # (S * N, ...) -> (S, N, ...): one mask per sample, broadcast over the N examples
        shape = ops.shape(inputs)
        grouped = ops.reshape(inputs, (self.samples, shape[0] // self.samples, *shape[1:]))
        middle = (1,) * (rank - 2) + (None,) if spatial else (None,) * (rank - 1)
        y = keras.random.dropout(
            grouped, self.rate, noise_shape=(self.samples, 1, *middle), seed=self.seed
        )
        return ops.reshape(y, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rate=self.rate, spatial=self.spatial, seed=self.seed, samples=self.samples)
        return config


@keras.saving.register_keras_serializable(package="sciconv")
class RepeatBatch(keras.layers.Layer):
    """Stack ``samples`` copies of a batch: (N, ...) -> (samples * N, ...), copies outermost.

    Parameters
    ----------
    samples : int
        Number of copies (>= 1).
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models.uncertainty_layers import RepeatBatch
    >>> y = RepeatBatch(3)(np.arange(2, dtype="float32").reshape(2, 1))
    >>> np.asarray(y)[:, 0].tolist()
    [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    """

    def __init__(self, samples: int, **kwargs):
        super().__init__(**kwargs)
        self.samples = check_int(samples, name="samples", minimum=1, error=InferenceError)

    def call(self, inputs):
        return ops.concatenate([inputs] * self.samples, axis=0)

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        return (None if n is None else n * self.samples, *input_shape[1:])

    def get_config(self) -> dict:
        config = super().get_config()
        config["samples"] = self.samples
        return config


@keras.saving.register_keras_serializable(package="sciconv")
class EnsembleMoments(keras.layers.Layer):
    """Mean and spread of ``S`` predictions: ``concat[mean (K), std (K)]`` or ``[mean, entropy]``.

    Parameters
    ----------
    samples : int or None, optional
        With a single input tensor of shape (S * N, ..., K) (copies outermost, as made by
        :class:`RepeatBatch`): ``S``. None (default) when the input is a list of ``S`` tensors of
        shape (N, ..., K).
    output : {"std", "entropy"}, optional
        ``"std"`` (default): the population standard deviation of each channel over the samples.
        ``"entropy"``: the predictive entropy of the mean, in nats: ``-sum_k p_k log p_k`` over
        the channels for K > 1 (probabilities summing to 1), the binary entropy for K = 1.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models.uncertainty_layers import EnsembleMoments
    >>> a, b = np.zeros((1, 2, 2, 1), "float32"), np.ones((1, 2, 2, 1), "float32")
    >>> np.asarray(EnsembleMoments()([a, b]))[0, 0, 0].tolist()
    [0.5, 0.5]
    >>> round(float(np.asarray(EnsembleMoments(output="entropy")([a, b]))[0, 0, 0, 1]), 4)
    0.6931
    """

    def __init__(self, samples: int | None = None, *, output: str = "std", **kwargs):
        super().__init__(**kwargs)
        self.samples = (
            None
            if samples is None
            else check_int(samples, name="samples", minimum=1, error=InferenceError)
        )
        self.spread = look_up_option(
            output, UNCERTAINTY_OUTPUTS, name="output", error=InferenceError
        )

    def _stack(self, inputs):
        if isinstance(inputs, (list, tuple)):
            return ops.stack(list(inputs), axis=0)
        shape = ops.shape(inputs)
        return ops.reshape(inputs, (self.samples, shape[0] // self.samples, *shape[1:]))

    def call(self, inputs):
        return _moments(self._stack(inputs), self.spread)

    def compute_output_shape(self, input_shape):
        shape = (
            input_shape[0]
            if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple))
            else input_shape
        )
        n, *middle, k = shape
        if self.samples is not None and n is not None:
            n = n // self.samples
        extra = k if self.spread == "std" else 1
        return (n, *middle, None if k is None else k + extra)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(samples=self.samples, output=self.spread)
        return config


@keras.saving.register_keras_serializable(package="sciconv")
class D4Moments(keras.layers.Layer):
    """A per-pixel model's mean and spread over the 8 D4 transforms of its input, traced once.

    The 8 transformed copies of a batch (N, H, W, C) are stacked into one tensor
    (8, N, H, W, C) and run through ``model`` by one loop (``keras.ops.scan``, passes free to
    overlap), so the graph holds the model once and it is traced once per tile shape instead
    of 8 times, while each pass keeps the batch size N (measured on a 2-core CPU: one batch of
    ``8 N`` instead ran 1.3-1.8x slower than 8 batches of N). Square
    tiles (H = W known when the call is traced, as for the tiles of
    :func:`sciconv.inference.predict_tiled`) make one stack of 8; other shapes two stacks of 4,
    the four that keep the shape (identity, the flips, the 180° rotation) and the four
    transposed ones, which are (W, H). Each prediction is transformed back and the 8 reduced as
    by :class:`EnsembleMoments`: the output is ``concat[mean (K), std (K)]`` or
    ``concat[mean (K), entropy (1)]``.

    Parameters
    ----------
    model : keras.Model
        Per-pixel: (N, H, W, C) -> (N, H, W, K) for any H, W it is given. Held, not copied: the
        layer shares its weights.
    output : {"std", "entropy"}, optional
        The spread, as for :class:`EnsembleMoments`. Default ``"std"``.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.models.uncertainty_layers import D4Moments
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(1, 1, use_bias=False)(inputs))
    >>> y = np.asarray(D4Moments(model)(np.ones((2, 4, 6, 1), "float32")))
    >>> y.shape, bool(np.abs(y[..., 1]).max() < 1e-6)  # a 1x1 conv commutes with D4
    ((2, 4, 6, 2), True)
    """

    def __init__(self, model: keras.Model, *, output: str = "std", **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, dict):  # from a saved config
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, keras.layers.Layer):
            raise InferenceError(f"model must be a Keras model; got {type(model).__name__}")
        self.model = model
        self.spread = look_up_option(
            output, UNCERTAINTY_OUTPUTS, name="output", error=InferenceError
        )

    def build(self, input_shape):
        if not self.model.built:
            self.model.build(input_shape)
        self.built = True

    def _passes(self, stacked, out_shape):
        """``model`` on each of the G copies of ``stacked`` (G, N, h, w, C): (G, N, h, w, K)."""
        if out_shape[-1] is None:  # K unknown before the call: one batch of G * N instead
            g = stacked.shape[0]
            y = self.model(ops.concatenate([stacked[i] for i in range(g)], axis=0))
            return ops.stack(ops.split(ops.cast(y, "float32"), g, axis=0), axis=0)

        def one_pass(carry, x):
            return None, ops.cast(self.model(x), "float32")

        init = ops.zeros(out_shape, "float32")  # scan's template of one pass's output
        # passes free to overlap (TensorFlow's parallel_iterations), as the 8 separate calls did
        return ops.scan(one_pass, init, stacked, unroll=int(stacked.shape[0]))[1]

    def call(self, inputs):
        h, w = inputs.shape[1], inputs.shape[2]
        groups = [range(8)] if h is not None and h == w else [range(4), range(4, 8)]
        n, rows, cols = (ops.shape(inputs)[i] for i in range(3))
        k = self._channels()
        preds = []
        for ks in groups:
            stacked = ops.stack([_d4(inputs, e) for e in ks], axis=0)
            size = (rows, cols) if ks[0] < 4 else (cols, rows)  # elements 4-7 transpose
            y = self._passes(stacked, (n, *size, k))
            preds.extend(_d4(y[i], e, inverse=True) for i, e in enumerate(ks))
        return _moments(ops.stack(preds, axis=0), self.spread)

    def _channels(self):
        """K, the output channels of a functional or Sequential model; None for other models."""
        outputs = getattr(self.model, "outputs", None)
        return outputs[0].shape[-1] if outputs else None

    def compute_output_shape(self, input_shape):
        k = self._channels()
        extra = k if self.spread == "std" else 1
        return (*tuple(input_shape)[:-1], None if k is None else k + extra)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(model=keras.saving.serialize_keras_object(self.model), output=self.spread)
        return config


@keras.saving.register_keras_serializable(package="sciconv")
class TemperatureScaling(keras.layers.Layer):
    """Rescale probabilities by a temperature: ``softmax(log p / T)`` or ``sigmoid(logit p / T)``.

    Applied on a classifier's probabilities, so the model's output stays probabilities (and the
    argmax is unchanged). ``T > 1`` softens over-confident outputs, ``T < 1`` sharpens them,
    ``T = 1`` is the identity.

    Parameters
    ----------
    temperature : float
        ``T > 0``.
    mode : {"softmax", "sigmoid"}, optional
        ``"softmax"`` (default) for classes that exclude each other (rows sum to 1);
        ``"sigmoid"`` for multi-label or binary outputs (each entry its own probability).
    floor : float, optional
        The least probability taken the log of (default :meth:`default_floor`: the clip the
        temperature was fitted with; a layer saved before it was recorded keeps 1e-7).
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models.uncertainty_layers import TemperatureScaling
    >>> p = np.array([[0.9, 0.1]], "float32")
    >>> np.round(np.asarray(TemperatureScaling(2.0)(p)), 3).tolist()
    [[0.75, 0.25]]
    >>> np.round(np.asarray(TemperatureScaling(2.0, mode="sigmoid")(p)), 3).tolist()
    [[0.75, 0.25]]
    """

    def __init__(
        self, temperature: float, *, mode: str = "softmax", floor: float | None = None, **kwargs
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        t = float(temperature)
        if not np.isfinite(t) or t <= 0:
            raise ConfigError(f"temperature must be a finite number > 0; got {temperature!r}")
        self.temperature = t
        self.mode = look_up_option(mode, CALIBRATION_MODES, name="mode")
        # the clip its temperature was fitted with: SOFTMAX_FLOOR (softmax) or 1e-7
        self.floor = float(floor) if floor is not None else self.default_floor(self.mode)

    @staticmethod
    def default_floor(mode: str) -> float:
        """The least probability taken the log of: :data:`SOFTMAX_FLOOR` for softmax, 1e-7 for
        sigmoid (float32 ``p`` near 1 has lost its logit below that).

        Parameters
        ----------
        mode : {"softmax", "sigmoid"}
            The layer's mode.

        Returns
        -------
        float

        Examples
        --------
        >>> from sciconv.models.uncertainty_layers import TemperatureScaling
        >>> TemperatureScaling.default_floor("sigmoid")
        1e-07
        """
        return SOFTMAX_FLOOR if mode == "softmax" else _EPS

    def call(self, inputs):
        ops = keras.ops
        if self.mode == "softmax":
            p = ops.clip(ops.cast(inputs, "float32"), self.floor, 1.0)
            return ops.softmax(ops.log(p) / self.temperature, axis=-1)
        p = ops.clip(ops.cast(inputs, "float32"), self.floor, 1.0 - self.floor)
        return ops.sigmoid((ops.log(p) - ops.log(1.0 - p)) / self.temperature)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(temperature=self.temperature, mode=self.mode, floor=self.floor)
        return config

    @classmethod
    def from_config(cls, config):
        # a layer saved before its floor was recorded keeps the clip its temperature was fitted
        # with (1e-7 in both modes), so an older calibrated model predicts as it did
        return cls(**{"floor": _EPS, **config})
