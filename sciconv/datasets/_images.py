"""The shared core of the file builders (folder, catalog), in-memory images, class weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from sciconv.datasets._arrays import center_crop, image_array
from sciconv.datasets._labels import array_labels
from sciconv.datasets._pipelines import attach, fingerprint, lazy_pipeline, memory_pipeline
from sciconv.datasets._scan import (
    cache_budget,
    check_channels,
    check_sizes,
    collect_warnings,
    common_scale,
    pixel_scales,
    report_bad,
    report_warnings,
    scan,
    split,
    split_key,
)
from sciconv.datasets._validate import (
    finite_images,
    validate_augment,
    validate_cache,
    validate_positive_int,
    validate_seed,
    validate_split,
)
from sciconv.datasets.prepare import FilePrep
from sciconv.errors import DatasetError
from sciconv.io import image_pixel_scale
from sciconv.io._common import warn_caller, warn_if_channels_first
from sciconv.preprocess import NormSpec


def build_image_datasets(
    paths: list[str],
    labels: np.ndarray,
    *,
    skipped: list[tuple[str, str]],
    what: str,
    task: str,
    class_names: list[str],
    strata: np.ndarray | None,
    image_size,
    validation_split,
    batch_size,
    shuffle,
    seed,
    augment,
    normalize,
    size_policy,
    cache,
    strict,
    check_empty: Callable | None = None,
):
    """Shared core of from_folder/from_catalog: scan, validate, split, build pipelines."""
    prep = FilePrep.create(normalize=normalize, image_size=image_size, size_policy=size_policy)
    fraction = validate_split(validation_split)
    batch_size = validate_positive_int(batch_size, "batch_size")
    seed = validate_seed(seed)
    aug = validate_augment(augment)
    cache = validate_cache(cache)
    spec, size, policy = prep.normalization, prep.size, prep.policy
    recorded = None if spec is None else spec.to_dict()

    # random crops need the full images: keep them (padded up to size) in memory when cropping
    keep_larger = aug is not None and aug.get("crop", True) and policy in ("crop", "auto")
    decode = None
    budget = 0.0
    if cache in ("auto", True):
        budget = math.inf if cache is True else cache_budget()

        def decode(path):
            x = prep.read(path, finite=True)  # all NaN trained as zeros with its label (QA)
            return np.ascontiguousarray(prep.fit(x, keep_larger=keep_larger)), x.shape

    with collect_warnings() as records:
        scanned = scan(paths, decode, budget=budget)
    report_warnings(records, what=what, stacklevel=4)
    bad = list(skipped) + [(paths[j], r) for j, r in sorted(scanned.bad.items())]
    report_bad(bad, strict=strict, what=what)
    good = np.array([j for j in range(len(paths)) if j not in scanned.bad], dtype=np.int64)
    if check_empty is not None:
        check_empty(good)
    if len(good) == 0:
        raise DatasetError(f"no readable image in {what}")
    g_paths = [paths[j] for j in good]
    g_shapes = [scanned.shapes[j] for j in good]
    scale = common_scale(g_paths, pixel_scales(g_paths), what=what, stacklevel=4)
    channels = check_channels(g_paths, g_shapes, grey_to_rgb=True)
    size = check_sizes(g_paths, g_shapes, size, policy)
    prep = FilePrep(spec, size, policy, channels)
    if scanned.arrays is not None:  # decoded before the channel count was known
        scanned.arrays[:] = [None if a is None else prep.to_channels(a) for a in scanned.arrays]
    labels = labels[good]
    strata = None if strata is None else strata[good]
    keys = [split_key(p) for p in g_paths]
    train_idx, val_idx = split(len(good), fraction, seed, strata, list(class_names), keys=keys)

    cache_mode = (
        "memory" if scanned.arrays is not None else ("file" if isinstance(cache, Path) else "none")
    )
    common = {
        "class_names": list(class_names),
        "normalization": recorded,
        "seed": seed,  # the one used (drawn when None): the split and shuffles it made repeat
        "task": task,
        "cache_mode": cache_mode,
        # recorded into the model by training.fit so predict_files prepares cutouts the same way
        "image_size": None if size is None else [int(v) for v in size],
        "size_policy": policy,
        # the files' typical (H, W), recorded by fit: predict_files says when files differ
        "file_size": [int(v) for v in np.median([s[:2] for s in g_shapes], axis=0)],
        # the files' common pixel scale ({"y", "x", "unit"}), recorded into the model by fit
        "pixel_scale": None if scale is None else scale.to_dict(),
    }

    def counts(idx):
        if task != "classification":
            return None
        return np.bincount(labels[idx], minlength=len(class_names))

    def build(idx, training):
        sub_paths = [g_paths[i] for i in idx]
        y = labels[idx]
        if scanned.arrays is not None:
            arrs = [scanned.arrays[good[i]] for i in idx]
            # validation: the centre; training: random crops (memory_pipeline) of the part all
            # images have, so files of several sizes still crop at random (QA: one fixed centre)
            window = size if not training else tuple(min(a.shape[k] for a in arrs) for k in (0, 1))
            arrs = [center_crop(a, *window) if a.shape[:2] != window else a for a in arrs]
            x = np.stack(arrs)
            ds = memory_pipeline(
                x,
                y,
                size=size,
                batch_size=batch_size,
                shuffle=shuffle and training,
                seed=seed,
                aug=aug if training else None,
                training=training,
            )
        else:
            cache_file = None
            if isinstance(cache, Path):
                # whole images are cached for random crops, windows otherwise (review: a cache
                # made with one augment= was read back by the other)
                whole = bool(training and aug is not None and aug.get("crop", True))
                # a shuffled training split is cached in its seed's order (lazy_pipeline)
                mixed = ("mixed", seed) if training and shuffle else ()
                parts = (recorded, size, policy, task, channels, whole, *mixed)
                fp = fingerprint(sub_paths, *parts, labels=y)
                cache_file = f"{cache}.{fp}.{'train' if training else 'val'}"
            ds = lazy_pipeline(
                sub_paths,
                y,
                prep=prep,
                channels=channels,
                batch_size=batch_size,
                shuffle=shuffle and training,
                seed=seed,
                aug=aug if training else None,
                cache_file=cache_file,
                training=training,
            )
        # a regressor's targets: fit standardizes them (models.layers.TargetScale)
        targets = y if task == "regression" else None
        return attach(
            ds,
            file_paths=sub_paths,
            class_counts=counts(idx),
            targets=targets,
            augmentation=aug if training else None,  # what fit records in config.json
            batch_size=batch_size,
            **common,
        )

    if val_idx is None:
        return build(train_idx, True)
    return build(train_idx, True), build(val_idx, False)


def _warn_channels_first(images, raw: list[np.ndarray], names: list[str]) -> None:
    """One warning if the images look channels-first: the (N, C, H, W) array, or the first
    (C, H, W) image of a list (NDData are (C, H, W) by convention and already moved)."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        warn_if_channels_first(images.shape, name="images", batch=True)
        return
    for a, n in zip(raw, names):
        if warn_if_channels_first(a.shape, name=n, batch=False):
            return


def from_arrays(
    images,
    labels,
    *,
    class_names: list[str] | None = None,
    image_size=None,
    validation_split: float | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = 0,
    augment: bool | dict = False,
    normalize: str | dict | NormSpec | None = "default",
    size_policy: str = "auto",
):
    """A classification or regression dataset from images in memory: arrays, NDData, CCDData.

    Each image is prepared as :func:`from_folder` prepares a file: masked pixels (an
    NDData/CCDData ``mask``, a GridImage's ``mask``, NaN) are excluded from the normalization
    statistics and are filled after it (:data:`sciconv.preprocess.BAD_PIXEL_FILL`); ``(C, H,
    W)`` NDData cubes become ``(H, W, C)``. The images' common pixel scale (from their
    celestial WCS or microscopy metadata) is recorded as ``.pixel_scale``, as for files.

    Parameters
    ----------
    images : sequence of array_like, GridImage or astropy.nddata.NDData, or ndarray
        ``N`` images ``(H, W)`` or ``(H, W, C)``, or one array ``(N, H, W)`` / ``(N, H, W, C)``
        (channels last; images that look channels-first, ``(C, H, W)`` with C <= 4 and H, W
        > 16, get one :class:`~sciconv.errors.SciconvWarning`; NDData are moved, as on read).
    labels : array_like
        ``(N,)`` integer class ids, bools or class names (classification), or floats ``(N,)``
        / ``(N, K)`` (regression). With ``class_names``, whole numbers ``(N,)`` / ``(N, 1)``
        and one-hot rows ``(N, len(class_names))`` are class ids too; other labels then make
        a regression dataset, with a warning that ``class_names`` is ignored.
    class_names : list of str, optional
        Classification only; default ``["0", "1", ...]`` (the sorted names for string labels).
    image_size, validation_split, batch_size, shuffle, seed, augment, normalize, size_policy
        As for :func:`from_folder`.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches ``(x, y)``, x float32 ``(N, H, W, C)``.

    Raises
    ------
    DatasetError
        No images, a count of labels that differs, class ids outside ``class_names`` (or
        above 2**31 - 1), regression targets that are not finite, an image that is not 2-D or
        3-D numbers, different channel counts, or different sizes without ``image_size``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from sciconv.datasets import from_arrays
    >>> frames = [CCDData(np.full((8, 8), i, float), unit="adu") for i in range(4)]
    >>> ds = from_arrays(frames, [0, 1, 0, 1], batch_size=4, shuffle=False)
    >>> x, y = next(iter(ds))
    >>> tuple(x.shape), y.numpy().tolist(), ds.task
    ((4, 8, 8, 1), [0, 1, 0, 1], 'classification')
    """
    prep = FilePrep.create(normalize=normalize, image_size=image_size, size_policy=size_policy)
    fraction = validate_split(validation_split)
    batch_size = validate_positive_int(batch_size, "batch_size")
    seed, aug = validate_seed(seed), validate_augment(augment)
    items = list(images)
    task, y, class_names = array_labels(labels, class_names, len(items))
    names = [f"images[{i}]" for i in range(len(items))]
    losses: list = []  # images whose signal float32 loses: said once for all of them
    raw = [image_array(im, name=n, losses=losses)[0] for im, n in zip(items, names)]
    if losses:
        listed = ", ".join(n for n, _ in losses[:3]) + (", ..." if len(losses) > 3 else "")
        where = f"{len(losses)} of {len(raw)} images ({listed}) lose their signal; {losses[0][0]}: "
        warn_caller(losses[0][1].message(where), "sciconv")
    _warn_channels_first(images, raw, names)
    keep = finite_images(raw, name="images")
    if len(keep) < len(raw):  # all NaN: nothing to learn (files are skipped the same way)
        items, raw, names = ([seq[i] for i in keep] for seq in (items, raw, names))
        y = y[keep]
    check_channels(names, [a.shape for a in raw])
    size = check_sizes(names, [a.shape for a in raw], prep.size, prep.policy)
    keep_larger = aug is not None and aug.get("crop", True) and prep.policy in ("crop", "auto")
    fitted = [
        FilePrep(prep.normalization, size, prep.policy).fit(
            prep.normalize(a), keep_larger=keep_larger
        )
        for a in raw
    ]
    scale = common_scale(
        names, [image_pixel_scale(im) for im in items], what="the images", stacklevel=3
    )
    strata = y if task == "classification" else None
    train_idx, val_idx = split(len(items), fraction, seed, strata, class_names)
    spec = prep.normalization
    common = {
        "class_names": class_names,
        "normalization": None if spec is None else spec.to_dict(),
        "seed": seed,
        "task": task,
        "cache_mode": "memory",
        "image_size": [int(v) for v in size],
        "size_policy": prep.policy,
        "file_size": [int(v) for v in np.median([a.shape[:2] for a in raw], axis=0)],
        "pixel_scale": None if scale is None else scale.to_dict(),
        "file_paths": [],
    }

    def build(idx, training):
        arrs = [fitted[i] for i in idx]
        if not training or len({a.shape for a in arrs}) > 1:
            arrs = [center_crop(a, *size) if a.shape[:2] != size else a for a in arrs]
        sub = y[idx]
        ds = memory_pipeline(
            np.stack(arrs),
            sub,
            size=size,
            batch_size=batch_size,
            shuffle=shuffle and training,
            seed=seed,
            aug=aug if training else None,
            training=training,
        )
        counts = np.bincount(sub, minlength=len(class_names)) if task == "classification" else None
        targets = sub if task == "regression" else None
        augmentation = aug if training else None  # what fit records in config.json
        return attach(
            ds,
            class_counts=counts,
            targets=targets,
            augmentation=augmentation,
            batch_size=batch_size,
            **common,
        )

    if val_idx is None:
        return build(train_idx, True)
    return build(train_idx, True), build(val_idx, False)


def class_weights(data, *, num_classes: int | None = None) -> dict[int, float]:
    """Class weights for ``model.fit(class_weight=...)`` that balance imbalanced classes.

    ``weight[c] = total / (num_classes * count[c])`` (the "balanced" rule: a class with half
    the average count weighs 2); a class with no samples gets weight 0.

    Parameters
    ----------
    data : tf.data.Dataset or array_like
        A dataset built by :mod:`sciconv.datasets` (its ``.class_counts`` are used: samples for
        classification, pixels for segmentation), or integer class ids of any shape (labels
        ``(N,)`` or masks ``(N, H, W)``).
    num_classes : int, optional
        Number of classes (default: from the dataset, or ``max(label) + 1``).

    Returns
    -------
    dict of int to float

    Examples
    --------
    >>> from sciconv.datasets import class_weights
    >>> class_weights([0, 0, 0, 1])
    {0: 0.6666666666666666, 1: 2.0}
    """
    counts = getattr(data, "class_counts", None)
    if counts is None and isinstance(data, tf.data.Dataset):
        task = getattr(data, "task", "unknown")
        raise DatasetError(
            f"class_weights needs class labels; this dataset's task is {task!r} "
            "(classification or segmentation datasets have class counts)"
        )
    if counts is None:
        labels = np.asarray(data)
        if labels.size == 0:
            raise DatasetError("class_weights got no labels")
        if not np.issubdtype(labels.dtype, np.integer):
            if not np.all(np.mod(labels, 1) == 0):
                raise DatasetError("class_weights needs integer class ids; got non-integer labels")
            labels = labels.astype(np.int64)
        if labels.min() < 0:
            raise DatasetError(f"class ids must be >= 0; got {int(labels.min())}")
        counts = np.bincount(labels.ravel())
    counts = np.asarray(counts, dtype=np.float64)
    k = len(counts) if num_classes is None else validate_positive_int(num_classes, "num_classes")
    if len(counts) > k:
        raise DatasetError(f"labels go up to {len(counts) - 1} but num_classes={k}")
    counts = np.pad(counts, (0, k - len(counts)))
    total = counts.sum()
    return {c: (float(total / (k * counts[c])) if counts[c] else 0.0) for c in range(k)}
