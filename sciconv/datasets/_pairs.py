"""Segmentation datasets from images and masks paired by file stem."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from sciconv._validation import check_bool, look_up_option, standardize_tuple
from sciconv._warnings import carried
from sciconv.datasets._arrays import pad_to
from sciconv.datasets._masks import check_label_image, check_masks, read_mask
from sciconv.datasets._numpy_steps import NumpyStep
from sciconv.datasets._pipelines import (
    AUTOTUNE,
    CHUNK_ORDER,
    PATCH_DRAW,
    attach,
    augment_indexed,
    first_batch,
    no_autograph,
    pass_image,
    stateless_seed,
)
from sciconv.datasets._scan import (
    MAX_LISTED,
    WORKERS,
    cache_budget,
    check_channels,
    collect_warnings,
    common_scale,
    pixel_scales,
    reason,
    report_bad,
    report_warnings,
    scan,
    split,
    split_key,
)
from sciconv.datasets._validate import (
    BOUNDARY_TARGETS,
    TARGETS,
    TOUCH_BAND,
    validate_augment,
    validate_fraction,
    validate_positive_int,
    validate_seed,
    validate_split,
)
from sciconv.datasets.patches import boundary_target, sample_patches
from sciconv.datasets.prepare import FilePrep
from sciconv.errors import ConfigError, DatasetError
from sciconv.io import pair_by_stem, read_pixels
from sciconv.io._common import warn_caller
from sciconv.io._files import find_same_name, user_path
from sciconv.preprocess import NormSpec, apply_input_transform


def _refuse_or_skip(refused: dict[int, DatasetError], n: int, *, strict: bool) -> None:
    """Raise for refused masks (not label images, fractions, shapes that differ from their
    image's) when ``strict`` or when they are at least half of the ``n`` readable pairs (a
    mistake in the data set as a whole: folders swapped, a class map without ``num_classes``),
    else leave them to be skipped with a warning (a few bad files among many)."""
    if not refused or (not strict and 2 * len(refused) < n):
        return
    first = refused[min(refused)]
    if len(refused) == 1:
        raise first
    raise DatasetError(
        f"{len(refused)} of {n} masks refused (each says why; the first: {first})"
    ) from first


def _mask_target(labels: np.ndarray, *, path: str, target: str, num_classes: int | None):
    """Turn a label image (H, W) into class ids per the target."""
    if target == "boundary":
        return boundary_target(labels)
    if target == "touching":
        return boundary_target(labels, touch=TOUCH_BAND)
    if num_classes is None:
        return (labels > 0).astype(np.uint8)
    top = int(labels.max())
    if top >= num_classes:
        raise DatasetError(
            f"mask holds label {top} but num_classes={num_classes} (class ids must be "
            f"0..{num_classes - 1}); for instance labels leave num_classes=None",
            path=path,
        )
    return labels.astype(np.uint8 if num_classes <= 256 else np.int32)


def _pad_multiple(x: np.ndarray, y: np.ndarray, multiple: int):
    h, w = y.shape
    th, tw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    return pad_to(x, th, tw, mode="reflect", center=False), pad_to(y, th, tw, center=False)


def _bad_pixels(raw: np.ndarray) -> np.ndarray | None:
    """Bool ``(H, W)``, True where any channel is bad (NaN/inf: BLANK, a DQ or mask flag); or
    None when every pixel is good (most images: nothing is kept for them)."""
    bad = ~np.isfinite(raw).all(axis=-1)
    return bad if bad.any() else None


def _either(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Pixels without weight: bad in the image, or ``ignore_label`` in the mask (None: none)."""
    if a is None or b is None:
        return b if a is None else a
    return a | b


def _weights(bad: np.ndarray | None, shape) -> np.ndarray:
    """float32 per-pixel weights: 0 at bad pixels, 1 elsewhere."""
    return np.ones(shape, np.float32) if bad is None else (~bad).astype(np.float32)


def _validate_weights(sample_weights):
    if isinstance(sample_weights, (bool, np.bool_)) or (
        isinstance(sample_weights, str) and sample_weights == "auto"
    ):
        return sample_weights
    raise ConfigError(f"sample_weights must be 'auto', True or False; got {sample_weights!r}")


def _element_types(weighted: bool) -> tuple:
    """The dtypes of a pair dataset's elements: ``(x, y)`` or, weighted, ``(x, y, w)``."""
    return (tf.float32, tf.int32, tf.float32) if weighted else (tf.float32, tf.int32)


#: Patches of at most this many consecutive images' draws are shuffled together (the
#: training stream of :func:`from_pairs`), and at most :data:`CHUNK_BYTES` of them.
CHUNK_PATCHES = 2048
CHUNK_BYTES = 256 * 2**20


def from_pairs(
    images,
    masks,
    *,
    patch_size: int | tuple[int, int] | None = None,
    patches_per_image: int = 8,
    foreground_fraction: float = 0.5,
    target: str = "semantic",
    num_classes: int | None = None,
    validation_split: float | None = None,
    batch_size: int = 8,
    shuffle: bool = True,
    seed: int | None = 0,
    augment: bool | dict = False,
    normalize: str | dict | NormSpec | None = "default",
    pad_to_multiple: int = 16,
    cache: str | bool = "auto",
    strict: bool = False,
    sample_weights: str | bool = "auto",
    max_masked: float = 0.5,
    input_transform: Mapping | None = None,
    ignore_label: int | None = None,
    check_labels: bool = True,
    mask_suffix: str = "",
):
    """Segmentation dataset from images and masks paired by file stem.

    ``cells/images/a.tif`` pairs with ``cells/masks/a.tif`` (or ``a.fits``...; the rule of
    :func:`sciconv.io.pair_by_stem`). Masks are integer images, 0 = background: instance labels
    (1..n, one id per object: StarDist, Cellpose, QuPath/Fiji label exports, napari), binary
    masks (one value for foreground, e.g. 0/255) or class ids (with ``num_classes``); palette
    images are read as their indices, grey masks saved as RGB as one channel, and unlabelled
    pixels can be marked with ``ignore_label`` (:func:`sciconv.datasets.read_mask`). A mask that
    does not look like a label image (an image given as a mask, images and masks swapped, a
    JPEG, a class map without ``num_classes``: :func:`sciconv.datasets.check_label_image`) and
    masks without any background are refused; binary masks given to a boundary target warn
    (touching objects cannot be told apart in them). A few refused masks among many (or a mask
    whose shape differs from its image's) leave their pairs out with one warning naming each;
    with ``strict=True``, or when they are at least half of the pairs (a mistake in the data set
    as a whole), they are an error.

    Training yields random patches (``patch_size``), ``patches_per_image`` per image per epoch,
    a fraction of them centred on a foreground pixel; with ``augment`` image and mask get the same
    D4 transform. Validation yields whole images padded to a multiple of ``pad_to_multiple``
    (reflect for the image, 0 for the mask, at the bottom/right), one per batch unless all images
    share one padded size.

    The training dataset is endless (new random patches on every pass) and carries
    ``.steps_per_epoch``, the batches of one pass (``ceil(images * patches_per_image /
    batch_size)``; whole images: one per image). :func:`sciconv.training.fit` uses it as its
    default ``steps_per_epoch``, so any ``steps_per_epoch * epochs`` is trained in full; with
    ``keras.Model.fit`` pass ``steps_per_epoch=ds.steps_per_epoch`` (or another count) yourself.
    The validation dataset is finite: one pass per evaluation.

    Every training batch is a function of ``seed`` and its index in the stream (which images a
    pass visits in which order, their patches, the mixing of the patches of up to
    :data:`CHUNK_PATCHES` consecutive images, the augmentation), so ``ds.resume_at(n)`` gives
    the same stream from batch ``n`` on, without drawing the batches before it (at most one
    chunk's patches are drawn and skipped): :func:`sciconv.training.fit` resumes a killed run
    with it, which then trains on the batches the uninterrupted run would have. ``.source``
    records the (absolute) image and mask folders.

    Bad pixels (NaN, FITS ``BLANK``, a FITS ``DQ``/``MASK`` extension next to the image: what
    :func:`sciconv.io.read` masks) carry no weight: batches are then ``(x, y, w)`` with ``w``
    float32 ``(N, H, W)``, 0 at bad pixels (and at the padding of whole images), 1 elsewhere,
    which :func:`sciconv.training.fit` passes to the loss and the metrics. Normalization
    statistics are measured on the good pixels only, and bad pixels enter the model filled as
    prediction fills them (:data:`sciconv.preprocess.BAD_PIXEL_FILL`: mirrored good pixels). A
    training patch with more than ``max_masked`` of its pixels bad is not sampled (another is
    drawn), and foreground patches are centred on good foreground pixels.

    Parameters
    ----------
    images, masks : folder or list of paths
        The image files and the mask files (a folder is listed with :func:`sciconv.io.list_images`).
    patch_size : int or (int, int), optional
        Training patch size. Default None: whole images padded like validation ones.
    patches_per_image : int, optional
        Patches per image per epoch (sets ``.steps_per_epoch``). Default 8.
    foreground_fraction : float, optional
        Probability that a patch is centred on a random foreground pixel (else uniform; see
        :func:`sciconv.datasets.sample_patches`). Default 0.5.
    target : {"semantic", "boundary", "touching"}, optional
        ``"semantic"``: with ``num_classes=None`` masks are instance/binary labels and y is
        0 background / 1 foreground; with ``num_classes`` masks hold class ids ``< num_classes``.
        ``"boundary"``: masks are instance labels; y is 0 background / 1 interior / 2 boundary
        (:func:`sciconv.datasets.boundary_target`: the inner boundary of every object), which
        separates touching objects. ``"touching"``: the same, the boundary class also taking
        every object pixel within :data:`TOUCH_BAND` (2) pixels of another object (a wider band
        between touching objects): the target the pretrained nuclei model was trained on, so
        fine-tune it with this one. Recorded as ``.target`` (``fit`` stores it in the model and
        refuses to train a model on another).
    num_classes : int, optional
        See ``target``; a mask label ``>= num_classes`` is a :class:`~sciconv.errors.DatasetError`.
    validation_split : float, optional
        Fraction of the image pairs held out (seeded); then ``(train, val)`` is returned.
    batch_size : int, optional
        Default 8.
    shuffle, seed, augment, normalize, strict
        As in :func:`from_folder` (``augment``: D4 and intensity options; patches are random
        anyway).
    pad_to_multiple : int, optional
        Whole images are padded to a multiple of this (a U-Net of depth d needs ``2**d``).
        Default 16.
    cache : "auto" or bool, optional
        ``"auto"``: decoded images kept in memory when they fit
        :data:`~sciconv.datasets.CACHE_BUDGET`, else read lazily (masks are always held in
        memory, and so are the bad-pixel maps of the images that have bad pixels). Default
        ``"auto"``.
    sample_weights : "auto" or bool, optional
        Yield ``(x, y, w)`` per-pixel weights: ``"auto"`` when some image has bad pixels, and
        for whole images (the validation split, ``patch_size=None``) also when one is padded to
        ``pad_to_multiple``, and for patches when an image is smaller than ``patch_size`` (the
        padding mirrors the image, objects included, but is labelled 0: weight 0 keeps it out
        of the loss and the validation metrics); True always (all ones
        without bad pixels), False never (bad pixels then train as their filled values, and the
        padding as background). Default ``"auto"``; each dataset's ``.weighted`` says which.
    max_masked : float, optional
        Largest fraction of bad pixels in a training patch, in [0, 1]. Default 0.5.
    input_transform : dict, optional
        An input transform (:func:`sciconv.preprocess.apply_input_transform`) applied to every
        image before the normalization, as prediction applies the one a model records: to
        fine-tune the pretrained nuclei model pass its own
        (``sc.models.get_metadata(model)["input_transform"]``; or all of its settings at once:
        ``**sc.datasets.trained_settings(model)``), else its colour images reach it unflipped
        and ``fit`` refuses. Recorded as ``.input_transform``. Default None: none.
    ignore_label : int, optional
        The mask value of unlabelled pixels (e.g. 255 or -1): they become background with
        weight 0 (no loss, no metrics), as bad pixels do, so the batches are ``(x, y, w)``.
        Default None: every value is a label (needs ``sample_weights`` other than False).
    check_labels : bool, optional
        Refuse masks that do not look like label images
        (:func:`sciconv.datasets.check_label_image`). False for instance labels whose ids
        repeat across the image (numbered per tile). Default True.
    mask_suffix : str, optional
        The end of the masks' stems after their image's (:func:`sciconv.io.pair_by_stem`):
        ``"_masks"`` pairs ``a.tif`` with ``a_masks.tif``, also both in one folder given as
        ``images`` and ``masks`` (Cellpose). Default ``""``.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches ``(x, y)`` or ``(x, y, w)`` (see ``sample_weights``): x float32 ``(N, H, W, C)``,
        y int32 ``(N, H, W)`` class ids, w float32 ``(N, H, W)``; the training dataset is endless,
        with ``.steps_per_epoch``. ``.pixel_scale``: the image files' common pixel scale
        (``{"y", "x", "unit"}``, from their TIFF/OME/FITS metadata; None when unknown or when
        they differ, with a warning), which :func:`sciconv.training.fit` records in the model
        so that :func:`sciconv.inference.predict_instances` resamples images of another scale.

    Raises
    ------
    DatasetError
        A missing partner; a shape mismatch (naming both files), a mask label ``>= num_classes``,
        a non-integer mask, a mask that is not a label image (with ``strict`` or in at least half
        of the pairs, else those pairs are left out); masks without background, different
        channel counts, an empty split.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> from sciconv.datasets import from_pairs
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "img").mkdir(); (root / "lab").mkdir()
    >>> for i in range(2):
    ...     lab = np.zeros((20, 24), "int32"); lab[4:10, 5:12] = 1; lab[10:15, 5:12] = 2
    ...     tifffile.imwrite(root / "img" / f"c{i}.tif", (lab * 50 + i).astype("float32"))
    ...     tifffile.imwrite(root / "lab" / f"c{i}.tif", lab)
    >>> ds = from_pairs(root / "img", root / "lab", patch_size=16, target="boundary", seed=0)
    >>> x, y = next(iter(ds))
    >>> tuple(x.shape), tuple(y.shape), y.dtype.name, sorted(np.unique(y).tolist())
    ((8, 16, 16, 1), (8, 16, 16), 'int32', [0, 1, 2])
    >>> ds.steps_per_epoch  # 2 images x 8 patches, batches of 8
    2

    NaN pixels (bad) get weight 0:

    >>> img = (lab * 50.0).astype("float32"); img[:4] = np.nan
    >>> tifffile.imwrite(root / "img" / "c0.tif", img)
    >>> ds = from_pairs(root / "img", root / "lab", batch_size=2, seed=0, shuffle=False)
    >>> x, y, w = next(iter(ds))
    >>> tuple(w.shape), float(w[0, :4].numpy().max()), float(w[0, 4:20, :24].numpy().min())
    ((2, 32, 32), 0.0, 1.0)
    """
    psize = None if patch_size is None else standardize_tuple(patch_size, 2, name="patch_size")
    ppi = validate_positive_int(patches_per_image, "patches_per_image")
    fg_fraction = validate_fraction(foreground_fraction, "foreground_fraction")
    target = look_up_option(target, TARGETS, name="target")
    if num_classes is not None:
        num_classes = validate_positive_int(num_classes, "num_classes")
        if target in BOUNDARY_TARGETS and num_classes != 3:
            raise ConfigError(f"target={target!r} makes 3 classes; got num_classes={num_classes}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2; got {num_classes}")
    fraction = validate_split(validation_split)
    batch_size = validate_positive_int(batch_size, "batch_size")
    seed = validate_seed(seed)
    aug = validate_augment(augment)
    prep = FilePrep.create(normalize=normalize, input_transform=input_transform)
    spec = prep.normalization
    multiple = validate_positive_int(pad_to_multiple, "pad_to_multiple")
    sample_weights = _validate_weights(sample_weights)
    max_masked = validate_fraction(max_masked, "max_masked")
    whole = isinstance(ignore_label, (int, np.integer)) and not isinstance(ignore_label, bool)
    if ignore_label is not None and not whole:
        raise ConfigError(f"ignore_label must be an int (e.g. 255 or -1); got {ignore_label!r}")
    if ignore_label is not None and sample_weights is False:
        raise ConfigError(
            "ignore_label gives the unlabelled pixels weight 0, but sample_weights=False leaves "
            "the batches without weights (they would train as background): drop one of the two"
        )
    check_bool(check_labels, name="check_labels")
    if cache not in ("auto", True, False, None):
        raise ConfigError(
            f"from_pairs caches in memory only: cache must be 'auto', True or False; got {cache!r}"
        )

    images, masks = _spelled(images), _spelled(masks)  # typed in NFC, on disk in NFD
    pairs = pair_by_stem(images, masks, mask_suffix=mask_suffix)  # sorted by stem, partnered
    img_paths = [str(p) for p, _ in pairs]
    mask_paths = [str(m) for _, m in pairs]

    # masks: always read (label checks need every pixel); images: decoded or probed
    n = len(pairs)
    ys: list = [None] * n
    ignores: list = [None] * n  # where a mask holds ignore_label (no weight), or None
    bad: dict[int, str] = {}

    refused: dict[int, DatasetError] = {}  # masks read but refused (not label images, ...)

    def read_pair_mask(j):
        try:
            return read_mask(mask_paths[j], ignore_label=ignore_label), None
        except DatasetError as exc:
            refused[j] = exc
            return None, None
        except Exception as exc:  # reported with its file
            return None, reason(exc)

    budget = {"auto": cache_budget(), True: math.inf}.get(cache, 0.0)
    bad_by_path: dict = {}  # path -> bool (H, W) bad-pixel map, or None when all are good

    def decode_image(path):  # the file's own shape (channels before the input transform)
        raw = read_pixels(path)
        bad_by_path[path] = _bad_pixels(raw)  # before normalizing: it fills the NaN
        return prep.normalize(raw), raw.shape

    with collect_warnings() as records:
        with ThreadPoolExecutor(WORKERS) as pool:
            for j, (m, err) in enumerate(pool.map(carried(read_pair_mask), range(n))):
                if err is not None:
                    bad[j] = f"mask {mask_paths[j]}: {err}"
                elif j not in refused:
                    ys[j], ignores[j] = m
        scanned = scan(img_paths, decode_image if budget else None, budget=budget)
    report_warnings(records, what="image/mask pairs", stacklevel=3)
    for j, why in scanned.bad.items():
        bad.setdefault(j, why)
    labels = num_classes is None or target in BOUNDARY_TARGETS  # instance labels, binary masks
    for j in range(n):  # each pair on its own: refused, or its mask turned into the target
        if j in bad or j in refused:
            continue
        try:
            if tuple(scanned.shapes[j][:2]) != ys[j].shape:
                raise DatasetError(
                    f"image {img_paths[j]} is {scanned.shapes[j][0]}x{scanned.shapes[j][1]} but "
                    f"its mask {mask_paths[j]} is {ys[j].shape[0]}x{ys[j].shape[1]}"
                )
            if labels and check_labels:
                check_label_image(ys[j], mask_paths[j])
        except DatasetError as exc:
            refused[j] = exc
            continue
        if not labels:  # class ids beyond num_classes: the setting is wrong, not the file
            ys[j] = _mask_target(ys[j], path=mask_paths[j], target=target, num_classes=num_classes)
    _refuse_or_skip(refused, n - len(bad), strict=strict)  # of the readable pairs
    report_bad(
        [(img_paths[j], r) for j, r in sorted(bad.items())],
        strict=strict,
        what="image/mask pairs",
        stacklevel=3,
    )
    if refused:
        warn_caller(
            f"left out {len(refused)} of {n} image/mask pairs whose masks were refused: "
            + "; ".join(str(refused[j]) for j in sorted(refused)[:MAX_LISTED])
            + (f"; and {len(refused) - MAX_LISTED} more" if len(refused) > MAX_LISTED else ""),
            package="sciconv",
        )
        bad.update({j: "mask refused" for j in refused})
    good = [j for j in range(n) if j not in bad]
    if not good:
        raise DatasetError(f"no readable image/mask pair among {n}")
    channels = check_channels([img_paths[j] for j in good], [scanned.shapes[j] for j in good])
    # recorded into the model by fit, so predict_instances resamples images of another scale (a
    # segmenter trained on 0.5 um pairs found 316 objects for 103 at 0.25 um: compat QA)
    g_paths = [img_paths[j] for j in good]
    scale = common_scale(g_paths, pixel_scales(g_paths), what="image/mask pairs", stacklevel=3)
    if prep.transform is not None:  # what the transform makes of them (to_rgb: 3)
        probe = np.zeros((1, 1, channels), np.float32)
        channels = int(apply_input_transform(probe, prep.transform).shape[-1])
    if labels:  # checked together, then turned into the target
        check_masks(
            [ys[j] for j in good],
            [mask_paths[j] for j in good],
            boundary_target=target in BOUNDARY_TARGETS,
        )
        for j in good:
            ys[j] = _mask_target(ys[j], path=mask_paths[j], target=target, num_classes=None)
    missing = [img_paths[j] for j in good if img_paths[j] not in bad_by_path]
    if missing and sample_weights is not False:
        # read lazily (over the cache budget): one pass for the bad-pixel maps
        with ThreadPoolExecutor(WORKERS) as pool:
            for path, raw in zip(missing, pool.map(carried(read_pixels), missing)):
                bad_by_path[path] = _bad_pixels(raw)
    bads = {j: _either(bad_by_path.get(img_paths[j]), ignores[j]) for j in good}
    if sample_weights == "auto":
        weighted = any(b is not None for b in bads.values())
    else:
        weighted = bool(sample_weights)
    k = 3 if target in BOUNDARY_TARGETS else (num_classes or 2)
    if target in BOUNDARY_TARGETS:
        class_names = ["background", "interior", "boundary"]
    elif k == 2:
        class_names = ["background", "foreground"]
    else:
        class_names = ["background", *[f"class_{i}" for i in range(1, k)]]
    keys = [split_key(img_paths[j]) for j in good]
    train_idx, val_idx = split(len(good), fraction, seed, None, keys=keys)
    in_memory = scanned.arrays is not None

    def get(j):
        x = scanned.arrays[j] if in_memory else prep.normalize(read_pixels(img_paths[j]))
        return x, ys[j]

    def whole_batch(idx):
        """Batch size for whole images: ``batch_size`` when they share one padded size, else 1."""
        shapes = {tuple(-(-d // multiple) * multiple for d in ys[good[i]].shape) for i in idx}
        return batch_size if len(shapes) == 1 else 1

    def whole(idx, training):
        """Whole images padded to the multiple, and whether they come with weights: the
        reflected padding (mirrored objects, labelled 0) must not count, so "auto" weighs
        whole images whenever one of them is padded. Training: an endless stream, function of
        the batch index from ``first`` on (``.resume_at``)."""
        sel = [good[i] for i in idx]
        bs = whole_batch(idx)
        padded = any(d % multiple for j in sel for d in ys[j].shape)
        w_here = weighted or (sample_weights == "auto" and padded)
        types_here = _element_types(w_here)

        def load(i):
            j = sel[int(i)]
            x, y = get(j)
            h, w = y.shape
            x, y = _pad_multiple(x, y, multiple)
            x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)
            if not w_here:
                return x, y
            wts = np.zeros(y.shape, np.float32)  # the padding does not count either
            wts[:h, :w] = _weights(bads[j], (h, w))
            return x, y, wts

        step = NumpyStep(load)  # held by the datasets only, not by TensorFlow (QA: leaked)

        def decode(slot):
            i = pass_image(slot, len(sel), seed, shuffle and training)
            out = step([i], types_here)
            out[0].set_shape((None, None, channels))
            for t in out[1:]:
                t.set_shape((None, None))
            return tuple(out)

        def stream(first: int = 0):
            first = first_batch(first)
            if training:  # endless: fit() reads one pass from .steps_per_epoch
                slots = tf.data.Dataset.counter(first * bs)
            else:
                slots = tf.data.Dataset.range(len(sel))
            ds = slots.map(no_autograph(decode), num_parallel_calls=AUTOTUNE, deterministic=True)
            ds = ds.batch(bs)
            if training and aug is not None:
                ds = augment_indexed(ds, aug, seed, first, w_here)
            return step.kept_by(ds.prefetch(AUTOTUNE))

        return stream, w_here

    def patches(idx):
        """Random patches, and whether they come with weights: as for whole images, "auto"
        weighs them when an image is smaller than the patch (its padding mirrors objects).

        An endless stream of passes over the images (each pass in a new order), each image
        giving ``ppi`` patches from a generator seeded by ``(seed, its place in the stream)``;
        the patches of :data:`CHUNK_PATCHES` consecutive images are shuffled together (a
        permutation seeded by ``(seed, chunk)``). Every batch is so a function of its index:
        ``stream(first)`` starts at batch ``first`` by skipping at most one chunk's patches."""
        sel = [good[i] for i in idx]
        small = any(n < p for j in sel for n, p in zip(ys[j].shape, psize))
        w_here = weighted or (sample_weights == "auto" and small)
        types_here = _element_types(w_here)
        per_patch = int(np.prod(psize)) * channels * 4
        group = int(max(1, min(len(sel), CHUNK_PATCHES // ppi, CHUNK_BYTES // (ppi * per_patch))))
        chunk = group * ppi

        def sample(slot, i):
            j = sel[int(i)]
            x, y = get(j)
            rng = np.random.default_rng([seed, PATCH_DRAW, int(slot)])
            if not w_here:
                return sample_patches(x, y, size=psize, count=ppi, fg_fraction=fg_fraction, rng=rng)
            bad = bads[j] if bads[j] is not None else np.zeros(y.shape, bool)
            return sample_patches(
                x,
                y,
                size=psize,
                count=ppi,
                fg_fraction=fg_fraction,
                rng=rng,
                bad=bad,
                max_bad=max_masked,
            )

        step = NumpyStep(sample)  # held by the datasets only, not by TensorFlow (QA: leaked)

        def decode(slot):
            i = pass_image(slot, len(sel), seed, shuffle)
            out = step([slot, i], types_here)
            out[0].set_shape((ppi, *psize, channels))
            for t in out[1:]:
                t.set_shape((ppi, *psize))
            return tuple(out)

        def mix(q, *parts):  # (group, ppi, ...) -> (group * ppi, ...), shuffled
            flat = [tf.reshape(t, (chunk, *t.shape[2:])) for t in parts]
            if not shuffle:
                return tuple(flat)
            perm = tf.random.experimental.stateless_shuffle(
                tf.range(chunk, dtype=tf.int64), seed=stateless_seed(seed, q, CHUNK_ORDER)
            )
            return tuple(tf.gather(t, perm) for t in flat)

        def stream(first: int = 0):
            first = first_batch(first)
            q0, skip = divmod(first * batch_size, chunk)
            ds = tf.data.Dataset.counter(q0 * group)  # the images' places in the stream
            ds = ds.map(no_autograph(decode), num_parallel_calls=AUTOTUNE, deterministic=True)
            ds = tf.data.Dataset.zip((tf.data.Dataset.counter(q0), ds.batch(group)))
            ds = ds.map(no_autograph(lambda q, parts: mix(q, *parts)))
            ds = ds.unbatch().skip(skip).batch(batch_size)
            if aug is not None:
                ds = augment_indexed(ds, aug, seed, first, w_here)
            return step.kept_by(ds.prefetch(AUTOTUNE))

        return stream, w_here

    common = {
        "class_names": class_names,
        "normalization": None if spec is None else spec.to_dict(),
        "seed": seed,  # the one used (drawn when None): the split and patches it made repeat
        "validation_split": fraction,  # with .file_paths: what fit checks on a resume
        "task": "segmentation",
        "target": target,
        "input_transform": prep.transform,
        "cache_mode": "memory" if in_memory else "none",
        "pad_to_multiple": multiple,
        # the image files' common pixel scale ({"y", "x", "unit"}), recorded into the model by fit
        "pixel_scale": None if scale is None else scale.to_dict(),
    }

    def finish(ds, idx, **extra):
        sel = [good[i] for i in idx]
        counts = np.zeros(k, np.int64)
        for j in sel:
            good_y = ys[j] if bads[j] is None else ys[j][~bads[j]]  # bad pixels do not count
            counts += np.bincount(good_y.ravel(), minlength=k)[:k]
        masked = sum(0 if bads[j] is None else int(bads[j].sum()) for j in sel)
        return attach(
            ds,
            file_paths=[img_paths[j] for j in sel],
            mask_paths=[mask_paths[j] for j in sel],
            class_counts=counts,
            masked_pixels=masked,
            **common,
            **extra,
        )

    # the training split is endless; one epoch = one pass (every image, patches_per_image times)
    if psize:
        (stream, train_weighted), one_pass = (
            patches(train_idx),
            -(-len(train_idx) * ppi // batch_size),
        )
    else:
        (stream, train_weighted), one_pass = (
            whole(train_idx, True),
            -(-len(train_idx) // whole_batch(train_idx)),
        )
    train = finish(
        stream(0),
        train_idx,
        steps_per_epoch=one_pass,
        weighted=train_weighted,
        augmentation=aug,  # what fit records in config.json, with the patches and batches
        batch_size=batch_size,
        patch_size=None if psize is None else [int(v) for v in psize],
        patches_per_image=ppi if psize else None,
        resume_at=stream,  # fit: a resumed run goes on with the batches it would have drawn
        source={"kind": "pairs", "images": _where(images), "masks": _where(masks)},
    )
    if val_idx is None:
        return train
    val, val_weighted = whole(val_idx, False)
    return train, finish(val(0), val_idx, weighted=val_weighted)


def _spelled(data):
    """``images`` or ``masks`` with a folder or file that is missing as written but there in
    another Unicode normalization (NFC/NFD: a folder copied from a Mac, its name typed) given
    as the file system spells it; anything else as it is (pair_by_stem's errors say why)."""

    def one(p):
        if not isinstance(p, (str, os.PathLike)) or os.path.lexists(os.path.expanduser(p)):
            return p
        return find_same_name(os.path.expanduser(p)) or p

    if isinstance(data, (list, tuple)):
        return [one(p) for p in data]
    return one(data)


def _where(data):
    """The absolute folder (or files: their count and common folder) a dataset was read from."""
    if isinstance(data, (str, os.PathLike)):
        return os.path.abspath(user_path(data))  # ~ expanded, as pair_by_stem read it
    paths = [os.path.abspath(user_path(p)) for p in data]
    try:
        folder = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else None
    except ValueError:  # files on several drives
        folder = None
    return {"files": len(paths), "folder": folder}
