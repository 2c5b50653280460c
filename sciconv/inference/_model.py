"""The runners that call a model on tiles, and what tiled prediction reads from it besides
:mod:`sciconv.models.introspect` (its input checks, channels, divisor, receptive field): its
output channels and an activation memory estimate.
"""

from __future__ import annotations

import threading
import weakref

import keras
import numpy as np

from sciconv._fork import refuse_forked_tensorflow
from sciconv._validation import not_a_model
from sciconv.errors import InferenceError
from sciconv.models.introspect import model_channels, model_fixed_hw
from sciconv.models.precision import all_layers, bfloat16_model, float32_model


def check_single_io(model, *, purpose: str, name: str = "model") -> keras.Model:
    """Return ``model`` if it is a Keras model with one input and one output; raise
    :class:`~sciconv.errors.InferenceError` naming ``name`` and the ``purpose`` it is needed for."""
    refuse_forked_tensorflow("run a model")
    if not isinstance(model, keras.Model):
        raise InferenceError(not_a_model(model, name))
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InferenceError(
            f"{name} {model.name!r} must have one input and one output for {purpose}; it has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    return model


def output_channels(model) -> int:
    """Output channels K of a per-pixel model ``(None, H, W, K)``."""
    k = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    if k is None:
        raise InferenceError(
            f"model {model.name!r} has output shape {model.output_shape}; tiled prediction needs "
            "a known number of output channels K in (None, H, W, K)"
        )
    return int(k)


_BPP_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bytes_per_pixel(model) -> float:
    """A conservative estimate of activation memory per input pixel (float32, one image).

    Three live tensors of the widest layer, plus input and output. For a functional model each
    layer's width counts at its own resolution (shapes traced symbolically on a probe image, no
    computation), so a U-Net's wide bottleneck at 1/8 resolution counts as 1/64 of its channels;
    otherwise every layer counts at full resolution. Cached per model.
    """
    cached = _BPP_CACHE.get(model)
    if cached is None:
        try:
            cached = _traced_bytes_per_pixel(model)
        except Exception:  # not a functional graph, or shapes that need a real input
            cached = _widest_bytes_per_pixel(model)
        _BPP_CACHE[model] = cached
    return cached


def _traced_bytes_per_pixel(model) -> float:
    fixed = model_fixed_hw(model)
    h, w = fixed or (256, 256)
    c = model_channels(model) or 1
    outputs = [layer.output for layer in model.layers[1:]]
    probe = keras.Model(model.inputs, outputs)
    specs = probe.compute_output_spec(keras.KerasTensor((1, h, w, c)))
    widest = max(int(np.prod(spec.shape[1:])) / (h * w) for spec in keras.tree.flatten(specs))
    k = output_channels(model)
    return 4.0 * (3 * max(widest, 1.0) + c + k)


def _widest_bytes_per_pixel(model) -> float:
    widest = 1
    for layer in all_layers(model):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if shape and shape[-1] is not None:
            widest = max(widest, int(shape[-1]))
    c_in = model_channels(model) or 1
    k = model.output_shape[-1] or 1
    return 4.0 * (3 * widest + c_in + k)


# --------------------------------------------------------------------------------------------------
# runners


class Runner:
    """Calls a per-pixel model on float32 batches and checks its output once per tile size.

    Tiles go through ``predict_on_batch``, whose compiled function is traced once per batch
    shape (all tiles have one size). ``eager=True`` calls the model directly instead: for probes
    of changing sizes (:func:`receptive_field`), which would otherwise retrace it at every size,
    and for a model built under a multi-replica ``tf.distribute`` strategy.
    """

    def __init__(self, model: keras.Model, *, eager: bool = False):
        refuse_forked_tensorflow("run a model")
        self.model = model
        # a model built under a multi-replica tf.distribute strategy: Keras' predict_on_batch
        # splits the batch over the replicas and gives 2 rows for 1 (QA, MirroredStrategy)
        strategy = getattr(model, "distribute_strategy", None)
        self.eager = eager or getattr(strategy, "num_replicas_in_sync", 1) > 1
        self.lock = threading.Lock()
        self.checked: set = set()
        self.resolved: dict = {}  # precision -> the model run (weights synced once per runner)

    def __call__(self, batch: np.ndarray, *, precision: str = "float32") -> np.ndarray:
        model = self.resolved.get(precision)
        if model is None:
            if precision == "bfloat16":
                model = bfloat16_model(self.model)
            else:  # a model saved under a mixed policy computes in float32 when asked to
                model = float32_model(self.model)
            if model is not self.model:  # a cached rebuild: the weights as they are now
                model.set_weights(self.model.get_weights())
            self.resolved[precision] = model
        with self.lock:
            y = model(batch, training=False) if self.eager else model.predict_on_batch(batch)
        if isinstance(y, (list, tuple, dict)):
            raise InferenceError(
                f"model {self.model.name!r} returns {len(y)} outputs; tiled prediction needs one "
                "per-pixel output of shape (N, H, W, K)"
            )
        y = np.asarray(y)
        key = batch.shape[1:3]
        if key not in self.checked:
            if y.ndim != 4 or y.shape[:3] != batch.shape[:3]:
                raise InferenceError(
                    f"model {self.model.name!r} maps a batch of shape {batch.shape} to "
                    f"{y.shape}; tiled prediction needs a same-size per-pixel output (a fully "
                    "convolutional model with padding='same', e.g. sciconv.models.segmenter)"
                )
            self.checked.add(key)
        return y.astype(np.float32, copy=False)

    def run(self, batch: np.ndarray, tta: str | None, *, precision: str = "float32") -> np.ndarray:
        """Predict ``batch``; with ``tta="d4"`` average the 8 flips/rotations, each undone."""
        if tta is None:
            return self(batch, precision=precision)
        from sciconv.augment import d4_inverse, d4_transform

        acc = None
        for k in range(8):  # batches: axes 1, 2 are H, W
            y = self(d4_transform(batch, k, axes=(1, 2)), precision=precision)
            y = d4_inverse(y, k, axes=(1, 2))
            acc = y.astype(np.float32, copy=True) if acc is None else acc + y
        return acc / np.float32(8)


def image_level_refusal(model: keras.Model, shape) -> str:
    """The message refusing ``model`` for :func:`predict_files` when its output ``shape`` is not
    ``(N, K)``: a per-pixel (segmentation) model."""
    return (
        f"predict_files needs an image-level model (a classifier or regressor with output "
        f"(N, K)); model {model.name!r} outputs shape {tuple(shape)}, per-pixel maps of a "
        "segmenter: use sciconv.inference.predict_instances (objects) or predict_tiled "
        "(probability maps) instead"
    )


def check_image_level(model: keras.Model) -> keras.Model:
    """Return ``model`` if its one output is ``(N, K)``; raise
    :class:`~sciconv.errors.InferenceError` for a per-pixel model (a segmenter)."""
    shape = model.output_shape
    if isinstance(shape, list) or (shape and isinstance(shape[0], (tuple, list))):
        raise InferenceError(
            f"model {model.name!r} has {len(shape)} outputs; predict_files needs one (N, K) output"
        )
    if len(shape) != 2:
        raise InferenceError(image_level_refusal(model, shape))
    return model


class ClassifierRunner:
    """Calls an image-level model (classifier, regressor); its output must be (N, K)."""

    def __init__(self, model: keras.Model):
        self.model = model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        y = self.model.predict_on_batch(batch)
        if isinstance(y, (list, tuple, dict)):
            raise InferenceError(
                f"model {self.model.name!r} returns {len(y)} outputs; predict_files needs one"
            )
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 2 or len(y) != len(batch):
            raise InferenceError(image_level_refusal(self.model, (None, *y.shape[1:])))
        return y
