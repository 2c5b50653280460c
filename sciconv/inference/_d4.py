"""``predict_d4``: image-level prediction averaged over the flips and 90° rotations (D4 TTA).

A classifier (or regressor) of sky cutouts should not care how a cutout is oriented. Trained
with D4 augmentation it nearly does; averaging its outputs over the 8 transformed copies of each
image makes the prediction exactly invariant and usually a little better (the 8 views are
8 slightly different looks at the same object). The spread over the 8 views is a cheap measure
of how much the model still depends on orientation. For per-pixel (dense) models use
``predict_tiled(..., tta="d4")`` or :func:`sciconv.inference.predict_uncertainty`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, overload

import keras
import numpy as np

from sciconv._validation import check_int
from sciconv.augment import d4_inverse, d4_transform
from sciconv.datasets.prepare import FilePrep
from sciconv.errors import InferenceError
from sciconv.inference._model import check_single_io
from sciconv.io import as_array
from sciconv.models import get_metadata
from sciconv.models.invariant import d4_elements
from sciconv.preprocess import BAD_PIXEL_FILL, NormSpec, fill_nan

__all__ = ["predict_d4"]

#: ``augment.d4_transform`` elements that keep a non-square shape: identity, 180° rotation and
#: the two flips.
_SHAPE_KEEPING = (0, 2, 4, 6)


def _as_batch(images) -> tuple[np.ndarray, bool]:
    """``(N, H, W, C)`` float32 and whether a single image (2-D or 3-D) was given (a masked
    array's or a GridImage's masked pixels NaN, :func:`sciconv.io.as_array`)."""
    x = np.asarray(as_array(images))
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise InferenceError(f"images must be a numeric array; got dtype {x.dtype}")
    if x.ndim == 2:
        return x[None, :, :, None], True
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise InferenceError(
        f"images must be one image (H, W) or (H, W, C), or a batch (N, H, W, C); got shape "
        f"{x.shape}"
    )


def _check_input_size(model, shape: tuple) -> None:
    """Refuse images whose size or channels differ from a model's fixed input (Keras raised a
    ValueError, or a graph error from deep inside TensorFlow)."""
    want = tuple(getattr(model, "input_shape", None) or ())[1:]
    got = tuple(int(v) for v in shape[1:])
    if len(want) == len(got) and all(w is None or w == g for w, g in zip(want, got)):
        return
    if len(want) == len(got):
        grey = " (a batch of grey images is (N, H, W, 1))" if want[-1] == 1 != got[-1] else ""
        raise InferenceError(
            f"model {model.name!r} takes images of {tuple(want)} (H, W, C); got {got}{grey}: "
            "crop or resize them to its input (sciconv.inference.predict_files fits files to it)"
        )


# For type checkers: the mean; ``(mean, std)`` with ``return_std=True``.
@overload
def predict_d4(
    model: keras.Model,
    images,
    *,
    normalize: str | Mapping | NormSpec | None = "model",
    batch_size: int = 32,
    return_std: Literal[False] = False,
) -> np.ndarray: ...
@overload
def predict_d4(
    model: keras.Model,
    images,
    *,
    normalize: str | Mapping | NormSpec | None = "model",
    batch_size: int = 32,
    return_std: Literal[True],
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def predict_d4(
    model: keras.Model,
    images,
    *,
    normalize: str | Mapping | NormSpec | None = "model",
    batch_size: int = 32,
    return_std: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def predict_d4(
    model: keras.Model,
    images,
    *,
    normalize: str | Mapping | NormSpec | None = "model",
    batch_size: int = 32,
    return_std: bool = False,
):
    """Predict images averaged over their 8 flips/90° rotations (test-time augmentation).

    Each image is normalized on its own (as :func:`sciconv.datasets.from_folder` and
    :func:`sciconv.inference.predict_files` do), then the model runs on every element of D4
    (:func:`sciconv.augment.d4_transform`) and the outputs (softmax or sigmoid probabilities, or
    regression values) are averaged. Non-square images get the 4 elements that keep their shape
    (identity, 180° rotation, the two flips). A per-pixel output ``(N, H, W, K)`` is turned back
    (:func:`sciconv.augment.d4_inverse`) before averaging. The model runs ``8 x`` as often.

    Parameters
    ----------
    model : keras.Model
        A classifier or regressor taking ``(N, H, W, C)`` (any one-input, one-output model).
    images : array
        A batch ``(N, H, W, C)``, or one image ``(H, W, C)`` / ``(H, W)``: raw pixels by default.
    normalize : "model", "default", method name, dict, NormSpec or None, optional
        Per-image normalization, as for :func:`sciconv.inference.predict_files`: ``"model"``
        (default) applies the spec the model recorded (the shared default when it recorded
        none); None feeds the pixels as they are (already normalized arrays).
    batch_size : int, optional
        Images per model call. Default 32.
    return_std : bool, optional
        Also return the standard deviation of the outputs over the transforms.

    Returns
    -------
    mean : ndarray of float32
        ``(N, K)`` for a batch (``(K,)`` for one image); the per-pixel shape for dense models.
    std : ndarray of float32
        Same shape as ``mean``; only with ``return_std=True``. Zero for an invariant model.

    Raises
    ------
    InferenceError
        Not a one-input, one-output Keras model, images of a wrong shape or dtype, a bad
        ``normalize`` or ``batch_size``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.inference import predict_d4
    >>> inputs = keras.Input((8, 8, 1))
    >>> x = keras.layers.Flatten()(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    >>> mean, std = predict_d4(model, np.ones((3, 8, 8, 1)), normalize=None, return_std=True)
    >>> mean.shape, bool(np.allclose(mean.sum(axis=1), 1)), bool(np.allclose(std, 0, atol=1e-6))
    ((3, 2), True, True)
    """
    model = check_single_io(model, purpose="predict_d4")
    batch_size = check_int(batch_size, name="batch_size", minimum=1, error=InferenceError)
    x, single = _as_batch(images)
    _check_input_size(model, x.shape)
    prep = FilePrep.create(
        normalize=normalize, recorded=get_metadata(model).get("normalization"), error=InferenceError
    )
    if prep.normalization is not None:
        x = np.stack([prep.normalize(img) for img in x])
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():  # bad pixels as training saw them
        x = fill_nan(x, method=BAD_PIXEL_FILL)
    elements = range(8) if d4_elements(*x.shape[1:3]) == 8 else _SHAPE_KEEPING
    total = total_sq = None
    for k in elements:
        xt = d4_transform(x, k, axes=(1, 2))
        y = _predict(model, xt, batch_size)
        if y.ndim == 4:  # a dense output: back to the image's orientation before averaging
            if y.shape[1:3] != xt.shape[1:3]:
                raise InferenceError(
                    f"model {model.name!r} maps images {xt.shape[1:3]} to maps {y.shape[1:3]}; "
                    "predict_d4 turns back only same-size per-pixel outputs"
                )
            y = d4_inverse(y, k, axes=(1, 2))
        y = y.astype(np.float64)
        total = y if total is None else total + y
        total_sq = y * y if total_sq is None else total_sq + y * y
    n = len(elements)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    if single:
        mean, std = mean[0], std[0]
    return (mean, std) if return_std else mean


def _predict(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    outs = []
    for start in range(0, len(x), batch_size):
        y = model.predict_on_batch(x[start : start + batch_size])
        if isinstance(y, (list, tuple, dict)):
            raise InferenceError(
                f"model {model.name!r} returns several outputs; predict_d4 needs one"
            )
        outs.append(np.asarray(y, dtype=np.float32))
    return np.concatenate(outs)
