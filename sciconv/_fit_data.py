"""The checks of :func:`sciconv.training.fit`'s data against its model, before anything trains.

Each refusal names what does not fit and how to build it instead: a wrong channel count, a fixed
input size the images do not have, targets the model has no outputs for (a broadcast loss would
train on them without a word), validation images padded to a multiple the U-Net cannot take
(found after a whole training epoch otherwise), and ``class_weight`` entries for classes that do
not exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from sciconv._validation import is_one_hot, not_whole
from sciconv.datasets._validate import finite_images
from sciconv.errors import ConfigError, ModelError
from sciconv.io._common import warn_caller
from sciconv.models import get_metadata

__all__ = [
    "as_fit_arrays",
    "check_class_weight",
    "check_data_shapes",
    "check_replica_split",
    "replicas",
]


def _stack(a, *, name: str, what: str) -> np.ndarray:
    """One array from an array or a list of equal-shape arrays (a ragged list is refused)."""
    try:
        arr = np.asarray(a)
    except ValueError:
        arr = None
    if arr is None or arr.dtype == object:
        shapes = sorted({str(np.shape(v)) for v in a})[:4] if isinstance(a, list | tuple) else []
        raise ConfigError(
            f"{name}: the {what} must all have the same shape to stack into one array; got "
            f"shapes {', '.join(shapes)} (crop or pad them, or build a dataset with "
            "sciconv.datasets.from_arrays(..., image_size=...))"
        )
    if arr.ndim == 0:
        raise ConfigError(f"{name}: the {what} must hold one entry per sample; got {a!r}")
    return arr


def as_fit_arrays(model, data, *, name: str):
    """``data`` as ``(x, y[, sample_weight])`` arrays with checked labels; a dataset as it is.

    Lists become arrays (``y`` stays one array per output for a model with several outputs).
    Labels are checked against the model (:func:`check_label_values`); one-hot rows for a
    classifier trained with a sparse loss become class ids.

    Examples
    --------
    >>> from sciconv.models import classifier
    >>> model = classifier((4, 4, 1), 2, filters=(2,), dense=())
    >>> x, y = as_fit_arrays(model, ([np.zeros((4, 4, 1))] * 2, [[0, 1], [1, 0]]), name="train")
    >>> x.shape, y.tolist()
    ((2, 4, 4, 1), [1, 0])
    """
    if not isinstance(data, tuple):
        return data
    if any(isinstance(part, tf.data.Dataset) for part in data):
        raise ConfigError(
            f"{name}: got a tuple holding tf.data.Dataset objects, where a dataset or (x, y) "
            "arrays were expected; a loader with validation_split returns (train, val): pass "
            "fit(model, train, validation_data=val)"
        )
    several = {"images": len(model.inputs) > 1, "labels": len(model.outputs) > 1}
    arrays = []
    for part, what in zip(data, ("images", "labels", "sample weights")):
        if isinstance(part, tuple | list) and several.get(what, False):
            arrays.append(tuple(_stack(v, name=name, what=what) for v in part))
        else:
            arrays.append(_stack(part, name=name, what=what))
    n = len(arrays[0][0] if isinstance(arrays[0], tuple) else arrays[0])
    for part in arrays[1:]:
        for arr in part if isinstance(part, tuple) else (part,):
            if len(arr) != n:
                raise ConfigError(
                    f"{name}: x and y must hold as many samples; got {n} and {len(arr)}"
                )
    arrays[1] = check_label_values(model, arrays[1], name=name)
    if not isinstance(arrays[0], tuple):  # images without a finite pixel: left out
        keep = finite_images(arrays[0], name=name, error=ConfigError)
        if len(keep) < n:
            arrays = [
                tuple(v[keep] for v in part) if isinstance(part, tuple) else part[keep]
                for part in arrays
            ]
    return tuple(arrays)


def _sparse_loss(model) -> bool:
    """True when ``model`` trains with sparse class ids: fit compiles it, or its loss is sparse."""
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        return True
    losses = model.loss if isinstance(model.loss, list | tuple) else [model.loss]
    names = [
        loss if isinstance(loss, str) else getattr(loss, "name", getattr(loss, "__name__", ""))
        for loss in losses
    ]
    return any("sparse" in str(n).lower() for n in names)


def _check_ids(y: np.ndarray, k: int, *, name: str, model) -> None:
    if y.dtype.kind not in "biuf":
        raise ConfigError(f"{name}: labels must be class ids 0..{k - 1}; got dtype {y.dtype}")
    if y.size == 0:
        return
    sample = not_whole(y)[:3].tolist()
    if sample:
        raise ConfigError(
            f"{name}: labels must be whole class ids 0..{k - 1}; got values that are not "
            f"integers (e.g. {sample}). A classifier learns one class per image: round "
            "them, or train a regressor for continuous targets"
        )
    low, high = y.min(), y.max()
    if low < 0 or high >= k:
        raise ConfigError(
            f"{name}: labels must be class ids 0..{k - 1} (model {model.name!r} has {k} "
            f"classes); got {int(low)}..{int(high)}. Relabel them, or build the model with "
            f"num_classes={int(high) + 1}" + (" (ids start at 0)" if low < 0 else "")
        )


def check_label_values(model, y, *, name: str):
    """Refuse labels ``model`` cannot learn; return one-hot rows as class ids.

    A classifier (or a segmenter) trained with a sparse loss needs whole class ids in
    ``0..num_classes - 1``: a fractional id was cast to a class silently, an id out of range
    failed deep inside TensorFlow. One-hot rows ``(N, num_classes)`` become ids (their
    ``argmax``); other rows (soft or multi-hot labels) are refused, naming the fix. Regression
    targets must be finite (a NaN target gave a NaN loss without a word).

    Examples
    --------
    >>> from sciconv.models import classifier
    >>> model = classifier((4, 4, 1), 3, filters=(2,), dense=())
    >>> try:
    ...     check_label_values(model, np.array([0, 3]), name="train")
    ... except Exception as err:
    ...     print(str(err).split(". ")[0])
    train: labels must be class ids 0..2 (model 'classifier' has 3 classes); got 0..3
    """
    meta = get_metadata(model)
    task = meta.get("task")
    first = y[0] if isinstance(y, tuple) else y
    if task == "regression":
        ys = y if isinstance(y, tuple) else (y,)
        if any(v.dtype.kind in "fc" and not np.all(np.isfinite(v)) for v in ys):
            raise ConfigError(
                f"{name}: regression targets must be finite; some are NaN or inf (they give a "
                "NaN loss): drop those samples or fill the targets"
            )
        return y
    if task not in ("classification", "segmentation") or not _sparse_loss(model):
        return y
    k = meta.get("num_classes") or model.outputs[0].shape[-1]
    if k is None:
        return y
    k = int(k)
    if task == "segmentation":
        if first.ndim == 3 or (first.ndim == 4 and first.shape[-1] == 1):
            _check_ids(first, k, name=name, model=model)
        return y
    if first.ndim >= 3:
        raise ModelError(
            f"{name}: labels of shape {first.shape} hold a label per pixel, but model "
            f"{model.name!r} is a classifier (one class per image); for masks build a "
            "segmenter (sciconv.models.unet) and train it on sciconv.datasets.from_pairs or "
            "(images, masks) arrays"
        )
    if first.ndim == 2 and first.shape[1] > 1:
        return _one_hot_ids(first, k, name=name)
    _check_ids(first, k, name=name, model=model)
    return y


def _one_hot_ids(y: np.ndarray, k: int, *, name: str) -> np.ndarray:
    if y.shape[1] != k:
        raise ConfigError(
            f"{name}: labels have {y.shape[1]} columns (shape {y.shape}) but the model has {k} "
            f"classes; pass class ids (N,) 0..{k - 1} or one-hot rows of width {k}"
        )
    if not is_one_hot(y):
        raise ConfigError(
            f"{name}: labels of shape {y.shape} are not one-hot rows (a single 1 per row); "
            "pass class ids (N,), or for soft labels compile the model yourself with "
            "loss='categorical_crossentropy', or for several labels per image build "
            "classifier(..., multilabel=True)"
        )
    return np.argmax(y, axis=1).astype(np.int32)


def _label_shape(data) -> tuple | None:
    """The batch shape of the labels of ``data`` (arrays or a dataset); None when unknown."""
    if isinstance(data, tuple):
        y = data[1]
        return None if isinstance(y, tuple) else tuple(np.shape(y))
    spec = data.element_spec
    y = spec[1] if isinstance(spec, tuple) and len(spec) > 1 else None
    return tuple(y.shape) if hasattr(y, "shape") else None


def check_data_shapes(model, data, *, name: str) -> None:
    """Refuse data ``model`` cannot train on (module notes); ``name`` is the argument's name.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models import regressor
    >>> model = regressor((8, 8, 1), 1, filters=(2,), dense=())
    >>> x = np.zeros((4, 8, 8, 1), np.float32)
    >>> try:
    ...     check_data_shapes(model, (x, np.zeros((4, 2))), name="train")
    ... except Exception as err:
    ...     print(err)
    train has 2 targets per image but model 'regressor' outputs 1; build it with outputs=2
    """
    if len(model.inputs) != 1:
        return
    want = tuple(model.inputs[0].shape)
    if isinstance(data, tuple):
        x_shape = tuple(data[0].shape)
        batched = True
    else:
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise ConfigError(
                f"{name} must yield (images, labels) pairs; it yields {spec}. Build it with "
                "sciconv.datasets or map it to (x, y)"
            )
        x_spec = spec[0]
        if not hasattr(x_spec, "shape"):
            return
        x_shape = tuple(x_spec.shape)
        batched = len(x_shape) == len(want)
        if len(x_shape) == len(want) - 1:
            raise ConfigError(
                f"{name} yields single images of shape {x_shape}, not batches; batch it first, "
                f"e.g. {name}.batch(32)"
            )
    if not (batched and len(x_shape) == len(want)):
        return
    if want[-1] is not None and x_shape[-1] is not None and x_shape[-1] != want[-1]:
        raise ModelError(
            f"{name} holds images with {x_shape[-1]} channel(s) (shape {x_shape}) but model "
            f"{model.name!r} expects {want[-1]} (input shape {want})"
        )
    if len(want) == 4:
        _check_size(model, name, want, x_shape, data)
    _check_targets(model, name, _label_shape(data))


def _check_size(model, name: str, want: tuple, x_shape: tuple, data) -> None:
    fixed, given = want[1:3], x_shape[1:3]
    if None not in fixed and None not in given and tuple(fixed) != tuple(given):
        raise ModelError(
            f"{name} holds {given[0]} x {given[1]} images but model {model.name!r} takes "
            f"{fixed[0]} x {fixed[1]} (input shape {want}); build it with "
            f"input_shape={(*given, want[-1])} or size the images to it "
            f"(from_folder(image_size={fixed[0]}))"
        )
    divisor = get_metadata(model).get("divisor")
    if divisor and None not in given and any(int(n) % int(divisor) for n in given):
        raise ModelError(
            f"{name} holds {given[0]} x {given[1]} images but model {model.name!r} needs sides "
            f"that are multiples of {divisor} (2**depth); use a patch_size / image_size that is "
            "one"
        )
    multiple = getattr(data, "pad_to_multiple", None)
    if divisor and multiple and int(multiple) % int(divisor):
        raise ModelError(
            f"{name} pads its images to a multiple of {multiple} but model {model.name!r} needs "
            f"multiples of {divisor} (2**depth); build the dataset with "
            f"pad_to_multiple={divisor}"
        )


def _check_targets(model, name: str, y_shape: tuple | None) -> None:
    """Regression and multi-label targets: as many per image as the model has outputs."""
    if y_shape is None or len(y_shape) > 2:
        return
    meta = get_metadata(model)
    task = meta.get("task")
    width = 1 if len(y_shape) == 1 else y_shape[-1]
    if width is None:
        return
    if task == "regression" and meta.get("outputs") is not None:
        n, fix = int(meta["outputs"]), f"outputs={width}"
    elif task == "multilabel" and meta.get("num_classes") is not None:
        n, fix = int(meta["num_classes"]), f"num_classes={width}"
    else:
        return
    if int(width) != n:
        what = "targets" if task == "regression" else "labels"
        raise ModelError(
            f"{name} has {width} {what} per image but model {model.name!r} outputs {n}; "
            f"build it with {fix}"
        )


def check_class_weight(model, class_weight, class_names=None) -> dict | None:
    """``class_weight`` as ``{class id: weight}`` for every class of ``model``.

    Keys are class ids or class names (``class_names``, else the model's); classes not named
    weigh 1. Unknown classes, and weights that are not finite numbers >= 0, are refused (Keras
    builds its weight table up to the largest key: a class above it failed deep inside
    TensorFlow, an unknown id was ignored).

    Examples
    --------
    >>> from sciconv.models import classifier
    >>> model = classifier((8, 8, 1), 3, filters=(2,), dense=())
    >>> check_class_weight(model, {"b": 4}, ["a", "b", "c"])
    {0: 1.0, 1: 4.0, 2: 1.0}
    """
    if class_weight is None:
        return None
    if not isinstance(class_weight, Mapping):
        raise ConfigError(f"class_weight must be a dict {{class id: weight}}; got {class_weight!r}")
    meta = get_metadata(model)
    if meta.get("task") == "segmentation":
        raise ConfigError(
            "class_weight works for image-level labels only; for segmentation use a loss that "
            "handles imbalance (sciconv.losses.bce_dice_loss, the default, or focal_loss) or "
            "per-pixel sample weights (yield (x, y, weights) from the dataset)"
        )
    task = meta.get("task")
    if task in ("multilabel", "regression"):  # Keras would weigh by argmax / rounded targets
        if task == "multilabel":
            how = "its first positive label"
            fix = (
                "weigh the rare labels in the loss (keras.losses.BinaryFocalCrossentropy), or "
                "pass per-sample weights (a dataset yielding (x, y, weights))"
            )
        else:
            how, fix = "its target rounded to a class id", "pass per-sample weights instead"
        raise ConfigError(
            f"class_weight is for single-label classifiers; this model's task is {task!r} "
            f"(Keras would silently weigh each sample by {how}): {fix}"
        )
    k = meta.get("num_classes")
    if k is None:
        return dict(class_weight)
    names = list(class_names or meta.get("class_names") or [])
    out, unknown = {}, []
    for key, weight in class_weight.items():
        if isinstance(key, str) and key in names:
            index = names.index(key)
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < k:
            index = int(key)
        else:
            unknown.append(key)
            continue
        ok = isinstance(weight, (int, float, np.number)) and not isinstance(weight, bool)
        if not ok or not math.isfinite(float(weight)) or float(weight) < 0:
            raise ConfigError(f"class_weight[{key!r}] must be a number >= 0; got {weight!r}")
        out[index] = float(weight)
    if unknown:
        listed = f" {names}" if names else ""
        raise ConfigError(
            f"class_weight names unknown class(es) {unknown}; the classes are 0..{k - 1}{listed}"
        )
    return {i: out.get(i, 1.0) for i in range(int(k))}


#: Largest ratio of the most to the least frequent class that :func:`warn_imbalance` lets pass.
IMBALANCE_RATIO = 10.0


def warn_imbalance(model, train, class_weight) -> None:
    """Warn when a classifier's training classes differ more than :data:`IMBALANCE_RATIO`
    times in size and no ``class_weight`` is given: the model then learns to answer the large
    class (QA: 60 ellipticals, 3 spirals, every image called elliptical, val_accuracy 0.92).
    The warning gives the weights that balance them.

    Examples
    --------
    >>> import warnings, numpy as np, tensorflow as tf, sciconv as sc
    >>> model = sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())
    >>> ds = tf.data.Dataset.from_tensor_slices(([[0.0]], [0]))
    >>> ds.class_counts, ds.class_names = np.array([60, 3]), ["elliptical", "spiral"]
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn_imbalance(model, ds, None)
    >>> "class_weight={'elliptical': 1.0, 'spiral': 20.0}" in str(seen[0].message)
    True
    """
    counts = getattr(train, "class_counts", None)
    if class_weight is not None or counts is None:
        return
    if get_metadata(model).get("task") != "classification":
        return
    counts = np.asarray(counts, dtype=np.float64)
    present = counts[counts > 0]
    if present.size < 2 or present.max() < IMBALANCE_RATIO * present.min():
        return
    names = list(getattr(train, "class_names", None) or range(len(counts)))
    weights = {names[i]: round(float(counts.max() / c), 2) for i, c in enumerate(counts) if c > 0}
    sizes = ", ".join(f"{names[i]!s}: {int(c)}" for i, c in enumerate(counts))
    warn_caller(
        f"the training classes are imbalanced ({sizes}): the model may learn to answer the "
        "largest, and accuracy hides it; pass fit(..., class_weight=...) to weigh them, e.g. "
        f"class_weight={weights} (YAML: training.class_weight)",
        "sciconv",
    )


def check_replica_split(model, batch_size) -> None:
    """Refuse training batches that do not split evenly over a multi-replica strategy's
    replicas: Keras gives each an equal share of every batch, and an uneven one from the first
    step failed deep in TensorFlow (review: batch 3 on 2 replicas, "Inputs to operation AddN
    ... [2,8,8,1] != [1,8,8,1]"; plain Keras fails the same way).

    Examples
    --------
    >>> from sciconv.models import classifier
    >>> check_replica_split(classifier((4, 4, 1), 2, filters=(2,), dense=()), 3)  # 1 replica
    """
    n = replicas(model)
    if n < 2 or not batch_size or int(batch_size) % n == 0:
        return
    fit = -(-int(batch_size) // n) * n
    raise ConfigError(
        f"training batches of {batch_size} do not split evenly over the {n} replicas of "
        f"model {model.name!r} (tf.distribute gives each an equal share of every batch): use "
        f"a multiple of {n} (e.g. batch_size={fit})"
    )


def replicas(model) -> int:
    """The replicas of ``model``'s distribution strategy (1 without one), which share every
    batch.

    Examples
    --------
    >>> from sciconv.models import classifier
    >>> replicas(classifier((4, 4, 1), 2, filters=(2,), dense=()))
    1
    """
    strategy = getattr(model, "distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1))
