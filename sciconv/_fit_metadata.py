"""What :func:`sciconv.training.fit` copies from the training data into the model's metadata,
and the mismatches between the two that it refuses before training."""

from __future__ import annotations

import inspect
import json
from typing import Any

import numpy as np

from sciconv._fit_data import replicas
from sciconv._warnings import caught
from sciconv.errors import ConfigError, ModelError
from sciconv.io._common import warn_caller
from sciconv.models.metadata import get_metadata, metadata_layer, set_metadata
from sciconv.preprocess import RAW_NORMALIZATION, is_raw_normalization

__all__ = [
    "adapt_target_scale",
    "check_input_transform",
    "check_normalization",
    "check_target",
    "check_validation_data",
    "infer_normalization",
    "record_dataset_metadata",
    "record_training_provenance",
    "resume_exactness",
]


def _warn_unprepared(model, meta: dict, train) -> None:
    """Say when arrays (or a plain tf.data dataset) given to a model that records how its inputs
    were prepared cannot have been prepared so (QA: the pretrained nuclei model trained on raw,
    unflipped pixels and a 2-class mask, silently, then predicted with its own preparation):
    it records an input transform or a target, which arrays do not carry, or the arrays look
    raw where it records a normalization (or normalized where it records raw pixels)."""

    recorded = meta["normalization"]
    with caught("ignore"):  # its own advice is for a model that records nothing
        looks = infer_normalization(model, train)
    raw_now = looks is not None and is_raw_normalization(looks)
    mismatch = looks is not None and raw_now != is_raw_normalization(recorded)
    if not (mismatch or meta.get("input_transform") or meta.get("target")):
        return
    said = [f"normalization {recorded.get('method', recorded)!r}"]
    if meta.get("input_transform"):
        said.append(f"input transform {dict(meta['input_transform'])}")
    if meta.get("target"):
        said.append(f"target {meta['target']!r}")
    warn_caller(
        f"model {model.name!r} records {', '.join(said)}, which prediction applies; these "
        "arrays (or this plain dataset) are trained on as given"
        + (" and look " + ("raw" if raw_now else "normalized") if mismatch else "")
        + ". Prepare them the same way, e.g. sciconv.datasets.from_pairs(images, masks, "
        "**sciconv.datasets.trained_settings(model)) or from_arrays(..., "
        "normalize=<the recorded normalization>)",
        "sciconv",
    )


def record_dataset_metadata(model, train) -> dict:
    """Copy task / class names / normalization / input transform / target / pixel scale /
    input size from ``train``'s attributes into ``model``'s metadata; return what was copied.

    Raises
    ------
    ModelError
        The data's task or class count does not match the model.
    ConfigError
        The model records the normalization, input transform or target it was trained with and
        the dataset makes its inputs or targets otherwise (:func:`check_normalization`,
        :func:`check_input_transform`, :func:`check_target`).

    Examples
    --------
    >>> import tensorflow as tf, sciconv as sc
    >>> model = sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())
    >>> ds = tf.data.Dataset.from_tensor_slices(([[0.0]], [0])).batch(1)
    >>> ds.class_names = ["a", "b"]
    >>> record_dataset_metadata(model, ds)["class_names"]
    ['a', 'b']
    """
    meta = get_metadata(model)
    found = {}
    for key in ("task", "class_names", "normalization", "pixel_scale"):
        value = getattr(train, key, None)
        if value is not None:
            found[key] = list(value) if key == "class_names" else value
    task = found.get("task")
    if task is not None and meta.get("task") and task != meta["task"]:
        raise ModelError(
            f"the training data is for task {task!r} but model {model.name!r} was built for "
            f"{meta['task']!r}; build the model with the matching sciconv.models builder"
        )
    names = found.get("class_names")
    k = meta.get("num_classes")
    if names and k and meta.get("task") != "regression" and len(names) != k:
        fix = f"build it with num_classes={len(names)}"
        if meta.get("task") == "segmentation" and k == 3:  # a trained model cannot change
            fix += (
                ", or make the dataset's classes the model's: from_pairs(target='touching' or "
                "'boundary') for background / interior / boundary, or num_classes=3"
            )
        raise ModelError(
            f"the training data has {len(names)} classes {names} but model {model.name!r} "
            f"outputs {k}; {fix}"
        )
    if hasattr(train, "normalization"):  # a sciconv dataset: None there means raw pixels
        check_normalization(model, meta.get("normalization"), train.normalization)
        given = getattr(train, "input_transform", None)
        check_input_transform(model, meta.get("input_transform"), given)
        if given and not meta.get("input_transform"):
            found["input_transform"] = dict(given)
        if train.normalization is None and not meta.get("normalization"):
            found["normalization"] = dict(RAW_NORMALIZATION)
    elif not meta.get("normalization"):  # arrays or a plain tf.data dataset: as they look
        spec = infer_normalization(model, train)
        if spec is not None:
            found["normalization"] = spec
    else:  # a trained model fine-tuned on arrays: nothing says how they were prepared
        _warn_unprepared(model, meta, train)
    target = getattr(train, "target", None)
    if target is not None and meta.get("task", "segmentation") == "segmentation":
        check_target(model, meta.get("target"), target)
        if not meta.get("target"):
            found["target"] = target
    found.update(_input_size_metadata(model, train))
    # a recorded normalization stays as it was written (the dataset's is the same, or refused)
    keep = {k: v for k, v in found.items() if k != "normalization" or not meta.get(k)}
    if keep and metadata_layer(model) is not None:
        set_metadata(model, **keep)
    return found


def adapt_target_scale(model, train) -> dict | None:
    """Set a regressor's :class:`~sciconv.models.layers.TargetScale` from its training targets
    (an ``(x, y)`` tuple's ``y``, or a sciconv dataset's ``.targets``), so the network learns
    standardized targets whatever their units; recorded as the metadata ``target_scale``. A
    model whose layer is set (trained, resumed, fine-tuned) keeps it, a clone (identity
    weights) is set anew; None when nothing is set.

    Examples
    --------
    >>> import numpy as np, sciconv as sc
    >>> model = sc.models.regressor((8, 8, 1), filters=(2,), dense=())
    >>> adapt_target_scale(model, (np.zeros((3, 8, 8, 1)), np.array([10.0, 20.0, 30.0])))
    {'offset': [20.0], 'scale': [8.164966]}
    """
    from sciconv.models.layers import TargetScale

    meta = get_metadata(model)
    if meta.get("task") != "regression":
        return None
    layers = [layer for layer in model.layers if isinstance(layer, TargetScale)]
    if len(layers) == 1 and not layers[0].is_identity() and meta.get("target_scale") is not None:
        return None  # set (trained, fine-tuned); a clone or rebuild is identity again: set anew
    y = train[1] if isinstance(train, tuple) else getattr(train, "targets", None)
    if len(layers) != 1 or y is None or isinstance(y, tuple) or len(y) < 2:
        return None
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if y.shape[1] != layers[0].n_outputs or not np.isfinite(y).all():
        return None  # refused elsewhere, with the reason
    layers[0].adapt(y)
    scale = {  # seven significant digits (a spread of 1e-7 m is not 0)
        "offset": [float(f"{v:.7g}") for v in layers[0].offset.numpy()],
        "scale": [float(f"{v:.7g}") for v in layers[0].scale.numpy()],
    }
    if metadata_layer(model) is not None:
        set_metadata(model, target_scale=scale)
    return scale


#: Arrays given to ``fit`` whose median exceeds this, or whose robust spread (1.4826 MAD)
#: exceeds :data:`UNSCALED_SPREAD`, look like unscaled pixel values (counts, ADU), not
#: standardized ones (z-scores, whose bright sources reach hundreds: not judged by the tail):
#: ``fit`` warns.
UNSCALED_LEVEL = 50.0
UNSCALED_SPREAD = 10.0


def infer_normalization(model, train) -> dict | None:
    """The normalization a model fitted on arrays (or a plain ``tf.data`` dataset) records,
    judged on its first images: the default one when they are already normalized that way (the
    default changes nothing on them); :data:`~sciconv.preprocess.RAW_NORMALIZATION` (pixels
    used as given, so prediction does not re-stretch them) when they are plainly in other units
    (median above 1.25, 0.1st percentile below -0.25 or 99.9th above 50: counts, z-scores;
    a median above :data:`UNSCALED_LEVEL` or a robust spread above :data:`UNSCALED_SPREAD`,
    unscaled counts, gets a warning);
    otherwise nothing, with a warning that prediction will apply the default and how to say
    otherwise (patches cut from normalized images, ``x / 255`` or ``x / 1000``: all look alike
    here). None also for models that do not take
    one image batch ``(N, H, W, C)``.

    Recording nothing made every predict path stretch a model trained on raw counts with the
    default percentiles.

    Examples
    --------
    >>> import numpy as np, sciconv as sc
    >>> model = sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())
    >>> x = np.random.default_rng(0).normal(0, 1, (4, 8, 8, 1)).astype("float32")  # z-scores
    >>> infer_normalization(model, (x, np.zeros(4)))
    {'method': 'none'}
    >>> infer_normalization(model, (sc.preprocess.normalize(x[0])[None], np.zeros(1)))["method"]
    'percentile'
    """
    import warnings

    import numpy as np

    from sciconv.errors import SciconvWarning
    from sciconv.preprocess import DEFAULT_NORMALIZATION, normalize

    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4:
        return None
    try:
        if isinstance(train, tuple):
            x = train[0][:8]  # only the images looked at are converted
        else:
            first = next(iter(train.take(1)))
            x = first[0] if isinstance(first, (tuple, list)) else first
        x = np.asarray(x, dtype=np.float32)
    except Exception:  # a dataset that cannot be peeked at: nothing known, nothing recorded
        return None
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.size == 0:
        return None
    x = x[:8]
    if all(
        np.allclose(normalize(image, **DEFAULT_NORMALIZATION), image, atol=1e-3, equal_nan=True)
        for image in x
    ):
        return dict(DEFAULT_NORMALIZATION)
    finite = x[np.isfinite(x)]
    lo, mid, hi = np.percentile(finite, (0.1, 50, 99.9)) if finite.size else (0.0, 0.5, 1.0)
    # on the bulk, not the tail: normalized images go past 1 at their bright sources by design
    if mid > 1.25 or lo < -0.25 or hi > 50:
        spread = 1.4826 * float(np.median(np.abs(finite - mid))) if finite.size else 0.0
        if abs(mid) > UNSCALED_LEVEL or spread > UNSCALED_SPREAD:
            warnings.warn(
                f"fit: the training images look like unscaled pixel values (median {mid:.4g}, "
                f"0.1-99.9th percentiles {lo:.4g} to {hi:.4g}); they go to the network as given, "
                "which learns poorly from them (QA: a regressor's RMSE 16.6 against 0.10). "
                "Normalize them as sciconv prepares files: sciconv.datasets.from_arrays(images, "
                "labels) (it records the normalization for prediction), or normalize each image "
                "(sciconv.preprocess.normalize) and record the spec with "
                "sciconv.models.set_metadata(model, normalization=...) before fit",
                SciconvWarning,
                stacklevel=4,
            )
        return dict(RAW_NORMALIZATION)
    warnings.warn(
        f"fit: the training images are on a 0-1 scale but not each normalized the default way "
        f"({DEFAULT_NORMALIZATION}); prediction will apply that default to new images. If "
        "they were scaled otherwise (a fixed factor, say), record it before fit: "
        "sciconv.models.set_metadata(model, normalization=sciconv.preprocess.RAW_NORMALIZATION) "
        "(pixels as given) or your spec",
        SciconvWarning,
        stacklevel=4,
    )
    return None


def _canonical(spec: Any) -> dict | None:
    """A spec dict with every option of :func:`sciconv.preprocess.normalize` filled in."""
    if not spec:
        return None
    from sciconv.preprocess import normalize

    params = inspect.signature(normalize).parameters
    full = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    full.update(dict(spec))
    return json.loads(json.dumps(full, sort_keys=True, default=repr))


def _same_normalization(a: Any, b: Any) -> bool:
    """Two normalization specs mean the same (raw pixels, None or ``{"method": "none"}``,
    both times; else equal once every option is filled in)."""
    if (a is None or is_raw_normalization(a)) and (b is None or is_raw_normalization(b)):
        return True
    return _canonical(a) == _canonical(b)


def _same_transform(a: Any, b: Any) -> bool:
    """Two input transform specs (or None) mean the same, every key filled in."""
    from sciconv.preprocess import validate_input_transform

    return (validate_input_transform(a) if a else None) == (
        validate_input_transform(b) if b else None
    )


def check_normalization(model, recorded: Any, dataset: Any) -> None:
    """Refuse to train a model that records its normalization on data normalized otherwise.

    A model from a builder records none, so any dataset's normalization becomes its own. A
    trained model (the pretrained nuclei model, a model from an earlier ``fit``) records the
    one its weights were fitted to; ``fit`` would otherwise overwrite it with the dataset's and
    feed the weights inputs they never saw (fine-tuning the nuclei model on per-channel stretched
    colour images dropped its colour AP@0.5 from 0.78 to 0.43).

    Raises
    ------
    ConfigError
        Naming both normalizations and the fix: build the dataset with ``normalize=`` the
        model's spec.

    Examples
    --------
    >>> check_normalization(None, None, {"method": "zscale"})  # nothing recorded: fine
    >>> check_normalization(None, {"method": "percentile"}, {"method": "percentile", "low": 1.0})
    """
    if not recorded or _same_normalization(recorded, dataset):
        return
    name = getattr(model, "name", "model")
    data = "raw pixels (normalize=None)" if not dataset else f"{dict(dataset)}"
    raise ConfigError(
        f"model {name!r} was trained on inputs normalized with {dict(recorded)} (its metadata "
        f"'normalization'), but the training dataset feeds it {data}: its weights would see "
        "inputs unlike those they were fitted to, and the model would record the dataset's "
        f"normalization instead of its own. Build the dataset with normalize={dict(recorded)} "
        f"(or **sciconv.datasets.trained_settings(model), which also gives its input transform "
        f"and target; sciconv train: dataset.normalize: {json.dumps(dict(recorded))}), or "
        "sciconv.models.set_metadata(model, normalization=...) first if the change is meant"
    )


def _check_replica_batches(model, validation_data) -> None:
    """Refuse validation batches smaller than a multi-replica strategy's replicas: Keras splits
    each batch over them and one with no image fails deep in TensorFlow (QA: from_pairs' whole
    validation images of several sizes come one per batch; 'Inputs to operation AddN ...')."""
    shares = replicas(model)
    if shares < 2:
        return
    import tensorflow as tf

    try:  # every batch's size (the last one too: review), a pass over the validation data
        sizes = validation_data.map(lambda *e: tf.shape(tf.nest.flatten(e)[0])[0])
        n = min((int(v) for v in sizes.as_numpy_iterator()), default=None)
    except Exception:  # nothing to look at: Keras will say what it finds
        return
    if n is not None and n < shares:
        raise ConfigError(
            f"validation_data comes in batches of {n} but model {model.name!r} trains on "
            f"{shares} replicas (tf.distribute), which each need an image of every batch "
            "(a smaller batch fails inside TensorFlow); from_pairs gives validation images of "
            "several sizes one by one: make them one size (or batch them by "
            f"{shares} or more), or evaluate after fit, outside the strategy"
        )


def check_validation_data(model, validation_data, train=None) -> None:
    """Refuse validation data that is endless (evaluation would never end) or, as a sciconv
    dataset, prepared otherwise than the model's inputs (normalization, input transform,
    target: those the model records, else the training dataset's, which it will record):
    ``best.keras`` would be chosen on inputs prediction never gives it. Run before anything is
    recorded, so a refused call leaves the model as it was.

    Raises
    ------
    ConfigError
        Naming the problem and the fix.

    Examples
    --------
    >>> check_validation_data(None, None)
    """
    if validation_data is None or isinstance(validation_data, tuple):
        return
    cardinality = getattr(validation_data, "cardinality", None)
    if cardinality is not None:
        import tensorflow as tf

        if int(cardinality()) == int(tf.data.INFINITE_CARDINALITY):
            raise ConfigError(
                "validation_data is an endless dataset (e.g. the training split of from_pairs, "
                "which draws patches forever): its evaluation would never end; pass the "
                "validation split from_pairs(..., validation_split=...) returns, or a finite "
                "dataset"
            )
    _check_replica_batches(model, validation_data)
    if not hasattr(validation_data, "normalization"):  # arrays or a plain tf.data dataset
        return
    meta = get_metadata(model) if model is not None else {}

    def reference(key):
        if meta.get(key):
            return meta[key]
        return getattr(train, key, None) if hasattr(train, "normalization") else None

    name = getattr(model, "name", "model")
    norm = reference("normalization")
    if hasattr(train, "normalization") or meta.get("normalization"):
        if not _same_normalization(norm, validation_data.normalization):
            raise ConfigError(
                f"validation_data is normalized with {validation_data.normalization} but model "
                f"{name!r} gets {norm}: build both datasets with normalize={norm}"
            )
    want = reference("input_transform")
    given = getattr(validation_data, "input_transform", None)
    if not _same_transform(want, given):
        shown = f"the input transform {dict(given)}" if given else "no input transform"
        wanted = f"the input transform {dict(want)}" if want else "none"
        raise ConfigError(
            f"validation_data applies {shown} but model {name!r} gets {wanted}: build both "
            f"datasets with input_transform={dict(want) if want else None}"
        )
    target = getattr(validation_data, "target", None)
    if target is not None and meta.get("task", "segmentation") == "segmentation":
        check_target(model, reference("target"), target)


def check_input_transform(model, recorded: Any, dataset: Any) -> None:
    """Refuse to train a model that records an input transform on a dataset that applies
    another (or none).

    Prediction applies the recorded transform (the pretrained nuclei model flips bright-
    background colour images so nuclei are bright); a dataset without it trains the weights on
    the unflipped images, and the model still flips them at prediction: fine-tuned on 12
    colour images so, its AP@0.5 fell from 0.73 to 0.06 on colour and from 0.90 to 0.23 on
    fluorescence, with no sign in the training metrics.

    Raises
    ------
    ConfigError
        Naming both and the fix: build the dataset with ``input_transform=`` the model's spec
        (or ``**sciconv.datasets.trained_settings(model)``).

    Examples
    --------
    >>> check_input_transform(None, None, {"to_gray": True})  # nothing recorded: fine
    >>> check_input_transform(None, {"to_gray": True}, {"to_gray": True, "invert": False})
    """
    if not recorded or _same_transform(recorded, dataset):
        return
    name = getattr(model, "name", "model")
    data = "no input transform" if not dataset else f"the input transform {dict(dataset)}"
    raise ConfigError(
        f"model {name!r} takes its images through the input transform {dict(recorded)} (its "
        f"metadata 'input_transform', applied at prediction), but the training dataset applies "
        f"{data}: its weights would learn images unlike those prediction gives them. Build the "
        f"dataset with input_transform={dict(recorded)} (or **sciconv.datasets."
        f"trained_settings(model); sciconv train: dataset.input_transform: "
        f"{json.dumps(dict(recorded))}), or sciconv.models.set_metadata(model, "
        "input_transform=...) first if the change is meant"
    )


def check_target(model, recorded: str | None, dataset: str) -> None:
    """Refuse to train a segmenter that records its target (``"touching"``, ``"boundary"``, ...)
    on a dataset that makes another: its boundary class would change meaning (the pretrained
    nuclei model's band between touching nuclei is 2 px wider than ``"boundary"``'s).

    Examples
    --------
    >>> check_target(None, None, "boundary")
    >>> check_target(None, "touching", "boundary")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: model 'model' was trained on target 'touching' (its metadata \
'target'), but the training dataset makes target 'boundary'; build it with \
target='touching' (or **sciconv.datasets.trained_settings(model); sciconv train: \
dataset.target: touching)
    """
    if not recorded or recorded == dataset:
        return
    name = getattr(model, "name", "model")
    raise ConfigError(
        f"model {name!r} was trained on target {recorded!r} (its metadata 'target'), but the "
        f"training dataset makes target {dataset!r}; build it with target={recorded!r} "
        f"(or **sciconv.datasets.trained_settings(model); sciconv train: dataset.target: "
        f"{recorded})"
    )


# what the metadata ``training`` keeps of config.json's ``dataset.split``
_SPLIT_KEYS = ("unit", "training", "validation", "rule")

#: The libraries whose versions a trained model's metadata ``training`` records.
VERSIONED = ("sciconv", "tensorflow", "keras", "numpy", "python")


def record_training_provenance(model, *, seed, recorded: dict, versions: dict) -> dict | None:
    """Record in ``model``'s metadata, as ``training``, how it was trained: ``fit``'s
    ``seed``, the dataset's seed (``data_seed``, its split), the split's hash (``split_sha``),
    counts and the revision of the rule that drew it (``split``; its ``rule``:
    :data:`sciconv.datasets.SPLIT_RULE`), the digest of the training files
    (``content_sha256``), where they were read from (``source``) and the library versions; so
    a model shared without its run folder still says. Small (a few hundred bytes) and
    JSON-able; returns what was recorded (None for a model without a metadata layer).

    Examples
    --------
    >>> import sciconv as sc
    >>> model = sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())
    >>> out = record_training_provenance(model, seed=1, recorded={}, versions={"numpy": "2"})
    >>> out, sc.models.get_metadata(model)["training"]["seed"]
    ({'seed': 1, 'versions': {'numpy': '2'}}, 1)
    """
    split = recorded.get("split") if isinstance(recorded.get("split"), dict) else {}
    content = recorded.get("content") if isinstance(recorded.get("content"), dict) else {}
    source = recorded.get("source")
    items = {
        "seed": seed,
        "data_seed": recorded.get("seed"),
        "split_sha": split.get("sha") or split.get("training_sha"),
        # with the revision of the rule that drew it (sciconv.datasets.SPLIT_RULE), if one did
        "split": {k: split.get(k) for k in _SPLIT_KEYS if k in split or k != "rule"}
        if split
        else None,
        "content_sha256": content.get("sha256"),
        "source": source if len(json.dumps(source, default=str)) <= 600 else None,
        "versions": {k: versions[k] for k in VERSIONED if k in versions},
    }
    items = {k: v for k, v in items.items() if v is not None}
    if metadata_layer(model) is None:
        return None
    set_metadata(model, training=items)
    return items


def resume_exactness(train, fit_data, augment) -> tuple[bool, str]:
    """Whether a resumed run of ``fit`` trains on the batches the uninterrupted run would
    have (``resume_exact`` in config.json), and why (``resume_note``).

    Examples
    --------
    >>> import numpy as np
    >>> resume_exactness((np.zeros(2), np.zeros(2)), None, None)[0]
    True
    """
    inside = (
        "; randomness inside the model (dropout) is not restored (it is not in the weights "
        "backup), so a model with dropout still differs"
    )
    if isinstance(train, tuple) and augment is None:
        return True, "arrays: Keras shuffles them anew every epoch from the restored state" + inside
    if callable(getattr(fit_data, "resume_at", None)):
        return True, (
            "the dataset resumes at the batch the run reached (dataset.resume_at): the same "
            "images, patches, order and augmentation as the uninterrupted run" + inside
        )
    return False, (
        "this data pipeline restarts its shuffling, random crops and augmentation when a run "
        "resumes: the resumed epochs draw what the first epochs drew, so a killed and resumed "
        "run differs from an uninterrupted one (sciconv datasets and arrays resume exactly; "
        "fit's own augmentation needs a seed: fit(seed=...) or the dataset's)"
    )


def _input_size_metadata(model, train) -> dict:
    """``image_size`` / ``size_policy`` the images were fitted to, for ``predict_files``.

    Taken from the dataset's ``.image_size`` / ``.size_policy`` attributes when it carries them,
    else the model's fixed input size with ``"crop"`` (the default of ``datasets.from_folder``).
    Nothing for models that take any size (segmenters): those see whole images.
    """
    size = getattr(train, "image_size", None)
    if size is None:
        shape = model.input_shape if len(model.inputs) == 1 else None
        if shape is not None and len(shape) == 4 and None not in shape[1:3]:
            size = shape[1:3]
    if size is None:
        return {}
    policy = getattr(train, "size_policy", None) or "crop"
    out = {"image_size": [int(v) for v in size], "size_policy": str(policy)}
    files = getattr(train, "file_size", None)
    if files is not None:  # the files' typical size before fitting, for predict_files' check
        out["file_size"] = [int(v) for v in files]
    return out
