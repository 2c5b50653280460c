"""Model introspection: what a Keras model takes and gives, and the runners that call it.

Everything tiled prediction needs to know about a model is read here once: its one image input,
channels, fixed input size, divisor (from the sciconv metadata), output channels, an activation
memory estimate, and its measured receptive field (:func:`receptive_field`, cached per model).
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Mapping

import keras
import numpy as np

from sciconv.errors import InferenceError, SciconvWarning
from sciconv.inference._tiles import round_up
from sciconv.models import get_metadata
from sciconv.models.precision import all_layers, bfloat16_model, float32_model


def validate_model(model) -> keras.Model:
    """Return ``model`` if it is a one-input 2-D image model; raise
    :class:`~sciconv.errors.InferenceError`."""
    if not isinstance(model, keras.Model):
        raise InferenceError(f"model must be a keras.Model; got {type(model).__name__}")
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
    return model


def check_single_io(model, *, purpose: str, name: str = "model") -> keras.Model:
    """Return ``model`` if it is a Keras model with one input and one output; raise
    :class:`~sciconv.errors.InferenceError` naming ``name`` and the ``purpose`` it is needed for."""
    if not isinstance(model, keras.Model):
        raise InferenceError(f"{name} must be a keras.Model; got {type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InferenceError(
            f"{name} {model.name!r} must have one input and one output for {purpose}; it has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    return model


def model_channels(model) -> int | None:
    """Input channels C of ``model`` (None when it takes any)."""
    c = model.input_shape[-1]
    return None if c is None else int(c)


def model_fixed_hw(model) -> tuple[int, int] | None:
    """The (H, W) a fixed-size model takes, or None when it takes any size."""
    h, w = model.input_shape[1:3]
    if h is None and w is None:
        return None
    if h is None or w is None:
        raise InferenceError(
            f"model {model.name!r} has input shape {model.input_shape}: fix both H and W or neither"
        )
    return int(h), int(w)


def model_divisor(meta: Mapping) -> int:
    """What tile sides must be multiples of (``meta["divisor"]``, e.g. ``2**depth`` of a U-Net)."""
    d = meta.get("divisor", 1)
    try:
        d = int(d)
    except (TypeError, ValueError):
        d = 1
    return max(d, 1)


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
    of changing sizes (:func:`receptive_field`), which would otherwise retrace it at every size.
    """

    def __init__(self, model: keras.Model, *, eager: bool = False):
        self.model = model
        self.eager = eager
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


# --------------------------------------------------------------------------------------------------
# receptive field

_RF_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def receptive_field(model: keras.Model, *, max_size: int = 1024, seed: int = 0) -> tuple[int, int]:
    """Measure how far (in pixels, per axis) an input pixel influences the model's output.

    An impulse is added to a seeded random image and the output pixels that change are located
    (StarDist's ``_compute_receptive_field`` idea, measured rather than looked up in a table). The
    probe grows (64, 128, ... up to ``max_size`` pixels) until the changed region stays inside it.
    The result is cached per model.

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
    >>> receptive_field(model)
    (3, 3)
    """
    result, reach = measure_receptive_field(model, max_size=max_size, seed=seed)
    if reach is not None:
        warnings.warn(
            f"model {model.name!r}: the output depends on inputs as far as the probe reaches "
            f"({reach} px); its receptive field may be global (pooling over the whole "
            "image), so tiles cannot reproduce a whole-image call",
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
    None. Cached per model."""
    validate_model(model)
    cached = _RF_CACHE.get(model)
    if cached is not None:
        return cached
    divisor = model_divisor(get_metadata(model))
    fixed = model_fixed_hw(model)
    channels = model_channels(model) or 1
    runner = Runner(model, eager=True)
    rng = np.random.default_rng(seed)
    if fixed:
        sizes = [fixed]
    else:
        side, sizes = max(64, 4 * divisor), []
        while True:
            sizes.append((round_up(side, divisor),) * 2)
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
    _RF_CACHE[model] = (result, reach)
    return result, reach
