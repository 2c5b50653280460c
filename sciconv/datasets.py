"""tf.data pipelines from folders, CSV catalogs and image+mask pairs.

Files are read with :func:`sciconv.io.read` and normalized per image with
:func:`sciconv.preprocess.normalize_spec` (raw pixels in; the spec used is recorded on the dataset
as ``.normalization`` so a model can re-apply it at inference).

The defaults are the fast path:

- ``cache="auto"``: every file is decoded once, up front, by a thread pool; when the decoded data
  fit :data:`CACHE_BUDGET` (1 GiB) the dataset is built from in-memory tensors (as fast as
  ``model.fit(x, y)`` on numpy arrays). Otherwise files are only checked up front (header, shape,
  last row) and decoded lazily in parallel (``tf.numpy_function`` with
  ``num_parallel_calls=tf.data.AUTOTUNE``). ``cache="path/file"`` decodes lazily once and keeps
  a TensorFlow cache file (``path/file.<fingerprint>.train``/``.val``).
- Every file is validated before a pipeline exists, so bad input is a :class:`DatasetError` (or a
  :class:`SciconvWarning` for skipped files) naming the file, never an error in a tf.data worker.
- Shuffling and augmentation are seeded: the same ``seed`` gives the same batches, epoch after
  epoch, each time the dataset is built. Augmentation and random crops apply to the training split
  only; validation batches are identical every epoch.

Returned datasets carry Python attributes, as Keras does for ``class_names``: ``.class_names``,
``.normalization`` (spec dict or None), ``.task`` (``"classification"``, ``"multilabel"``,
``"regression"`` or ``"segmentation"``), ``.file_paths``, ``.class_counts`` (per class counts of
samples, or of pixels for segmentation; None for multilabel/regression), ``.cache_mode``
(``"memory"``, ``"file"`` or ``"none"``); the endless training dataset of :func:`from_pairs` also
has ``.steps_per_epoch`` (batches of one pass). They are lost by ``ds.map(...)``, like Keras's.

Examples
--------
>>> import tempfile, pathlib, numpy as np
>>> from astropy.io import fits
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for c, name in enumerate(["elliptical", "spiral"]):
...     (root / name).mkdir()
...     for i in range(4):
...         fits.writeto(root / name / f"{i}.fits", np.full((8, 8), c + i, "float32"))
>>> train, val = from_folder(root, validation_split=0.5, batch_size=4, seed=0)
>>> train.class_names, train.task
(['elliptical', 'spiral'], 'classification')
>>> x, y = next(iter(train))
>>> tuple(x.shape), x.dtype.name, y.dtype.name
((4, 8, 8, 1), 'float32', 'int32')
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from sciconv import augment as _augment
from sciconv import io as _io
from sciconv._validation import look_up_option, standardize_tuple
from sciconv.errors import ConfigError, DatasetError, SciconvError, SciconvWarning

__all__ = [
    "CACHE_BUDGET",
    "class_weights",
    "fetch",
    "from_catalog",
    "from_folder",
    "from_pairs",
    "load",
]

#: Decoded bytes kept in memory by ``cache="auto"`` (above it, files are decoded lazily).
CACHE_BUDGET = 1 << 30

_AUTOTUNE = tf.data.AUTOTUNE
_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
_SIZE_POLICIES = ("crop", "pad", "resize")
_TASKS = ("classification", "multilabel", "regression")
_TARGETS = ("semantic", "boundary")
_AUGMENT_KEYS = ("d4", "crop", "brightness", "contrast", "gaussian_noise", "poisson_noise")
_MAX_LISTED = 20
_TRUE = {"1", "1.0", "true", "yes", "y", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "f"}


# ============================================================================================
# Validation of arguments (once, at the boundary)
# ============================================================================================
def _validate_split(validation_split) -> float | None:
    if validation_split is None:
        return None
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or not 0 < validation_split < 1
    ):
        raise ConfigError(
            f"validation_split must be None or a fraction in (0, 1); got {validation_split!r}"
        )
    return float(validation_split)


def _validate_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive int; got {value!r}")
    return int(value)


def _validate_seed(seed) -> int:
    if seed is None:
        return int(np.random.default_rng().integers(0, 2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be None or an int >= 0; got {seed!r}")
    return int(seed)


def _validate_augment(augment) -> dict | None:
    """``False`` -> None; ``True`` -> D4 + random crops; a dict -> :func:`augment_batch` options."""
    if augment is False or augment is None:
        return None
    if augment is True:
        return {"d4": True, "crop": True}
    if isinstance(augment, Mapping):
        for key in augment:
            look_up_option(key, _AUGMENT_KEYS, name="augment key")
        options = {"d4": True, "crop": True, **augment}
        batch_opts = {k: v for k, v in options.items() if k != "crop"}
        _augment._validate_amounts(
            batch_opts.get("brightness", 0.0),
            batch_opts.get("contrast", 0.0),
            batch_opts.get("gaussian_noise", 0.0),
            batch_opts.get("poisson_noise"),
        )
        return options
    raise ConfigError(f"augment must be True, False or a dict of {_AUGMENT_KEYS}; got {augment!r}")


def _validate_normalization(normalize) -> dict | None:
    from sciconv import preprocess

    if normalize is None:
        return None
    if isinstance(normalize, str):
        spec = (
            dict(preprocess.DEFAULT_NORMALIZATION)
            if normalize == "default"
            else {"method": normalize}
        )
    elif isinstance(normalize, Mapping):
        spec = dict(normalize)
    else:
        raise ConfigError(
            f"normalize must be 'default', a method name, a spec dict or None; got {normalize!r}"
        )
    probe = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4, 1)
    preprocess.normalize_spec(probe, spec)  # raises ConfigError naming a bad method/key
    return spec


def _validate_cache(cache) -> str | Path | bool:
    if cache in ("auto", True, False, None):
        return False if cache is None else cache
    if isinstance(cache, (str, os.PathLike)):
        path = Path(cache)
        if not path.parent.is_dir():
            raise ConfigError(
                f"cache file folder does not exist: {path.parent} (cache={os.fspath(cache)!r})"
            )
        return path
    raise ConfigError(f"cache must be 'auto', True, False or a file path; got {cache!r}")


def _validate_image_size(image_size) -> tuple[int, int] | None:
    return None if image_size is None else standardize_tuple(image_size, 2, name="image_size")


# ============================================================================================
# Reading and preparing one file (numpy, thread-safe)
# ============================================================================================
_stem = _io._image_stem  # "a.fits.gz" -> "a": image/mask pairs are matched by stem


_FITS_BLOCK = 2880
_FAST_BITPIX = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_FAST_SUFFIXES = (".fits", ".fit", ".fts")


def _plain_fits_layout(path: str) -> tuple[np.dtype, tuple[int, int], int] | None:
    """(dtype, (H, W), data offset) of a plain FITS file, else None.

    Plain: an uncompressed primary HDU holding a 2-D image with no BSCALE/BZERO/BLANK scaling.
    Such files (most training cut-outs) are decoded with ``np.frombuffer`` (about 20x faster than
    a full header parse, which matters when files are decoded every epoch); every other file
    goes through :func:`sciconv.io.read`. Only the few keywords needed are parsed.
    """
    if not path.lower().endswith(_FAST_SUFFIXES):
        return None
    cards: dict[bytes, bytes] = {}
    with open(path, "rb") as fh:
        for n_block in range(1, 37):
            block = fh.read(_FITS_BLOCK)
            if len(block) < _FITS_BLOCK:
                return None
            for i in range(0, _FITS_BLOCK, 80):
                key = block[i : i + 8].rstrip()
                if key == b"END":
                    return _plain_layout_from_cards(cards, n_block * _FITS_BLOCK)
                if block[i + 8 : i + 10] == b"= " and key in _FAST_KEYS:
                    cards[key] = block[i + 10 : i + 80].split(b"/")[0].strip()
    return None


_FAST_KEYS = {b"SIMPLE", b"BITPIX", b"NAXIS", b"NAXIS1", b"NAXIS2", b"BSCALE", b"BZERO", b"BLANK"}


def _plain_layout_from_cards(cards: dict, offset: int):
    try:
        if cards.get(b"SIMPLE") != b"T" or b"BLANK" in cards or int(cards[b"NAXIS"]) != 2:
            return None
        if float(cards.get(b"BSCALE", b"1")) != 1.0 or float(cards.get(b"BZERO", b"0")) != 0.0:
            return None
        dtype = np.dtype(_FAST_BITPIX[int(cards[b"BITPIX"])])
        w, h = int(cards[b"NAXIS1"]), int(cards[b"NAXIS2"])
    except (KeyError, ValueError):
        return None
    return (dtype, (h, w), offset) if h > 0 and w > 0 else None


def _read_plain_fits(path: str) -> np.ndarray | None:
    layout = _plain_fits_layout(path)
    if layout is None:
        return None
    dtype, (h, w), offset = layout
    with open(path, "rb") as fh:
        fh.seek(offset)
        raw = fh.read(h * w * dtype.itemsize)
    if len(raw) < h * w * dtype.itemsize:
        return None  # truncated: io.read gives the proper error
    x = np.frombuffer(raw, dtype).reshape(h, w, 1).astype(np.float32)
    if dtype.kind == "f":
        x[~np.isfinite(x)] = np.nan
    return x


def _read_pixels(path: str) -> np.ndarray:
    """Pixels (H, W, C) float32, NaN where bad (plain FITS fast path, else sciconv.io.read)."""
    data = _read_plain_fits(path)
    if data is not None:
        return data
    data = np.asarray(_io.read(path).data, dtype=np.float32)
    if data.ndim != 3 or data.shape[0] < 1 or data.shape[1] < 1:
        raise DatasetError(f"expected pixels (H, W, C); got shape {data.shape}", path=path)
    return data


def _probe(path: str) -> tuple[int, int, int]:
    """Cheap check of a file: header + shape, and the last row read (catches truncation)."""
    layout = _plain_fits_layout(path)
    if layout is not None:
        dtype, (h, w), offset = layout
        if os.path.getsize(path) >= offset + h * w * dtype.itemsize:
            return (h, w, 1)
    data = _io.read(path, lazy=True).data
    try:
        shape = tuple(int(s) for s in data.shape)
        if len(shape) != 3 or shape[0] < 1 or shape[1] < 1:
            raise DatasetError(f"expected pixels (H, W, C); got shape {shape}", path=path)
        np.asarray(data[shape[0] - 1 : shape[0], 0 : shape[1]])
    finally:
        if hasattr(data, "close"):
            data.close()
    return shape


def _pad_to(x: np.ndarray, h: int, w: int, *, mode: str = "constant", center: bool = True):
    """Pad rows/columns up to at least ``(h, w)`` (never crops)."""
    dh, dw = max(0, h - x.shape[0]), max(0, w - x.shape[1])
    if not dh and not dw:
        return x
    top, left = (dh // 2, dw // 2) if center else (0, 0)
    pads = [(top, dh - top), (left, dw - left)] + [(0, 0)] * (x.ndim - 2)
    if mode == "reflect" and (x.shape[0] == 1 or x.shape[1] == 1):
        mode = "edge"
    return np.pad(x, pads, mode=mode)


def _center_crop(x: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
    return x[top : top + h, left : left + w]


@dataclass(frozen=True)
class _Prep:
    """How one image file becomes a training array: read, normalize, fit to size."""

    spec: dict | None
    size: tuple[int, int] | None
    policy: str

    def normalize(self, x: np.ndarray) -> np.ndarray:
        from sciconv import preprocess

        x = preprocess.normalize_spec(x, self.spec)
        x = np.asarray(x, dtype=np.float32)
        return np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)

    def fit(self, x: np.ndarray, *, keep_larger: bool = False) -> np.ndarray:
        if self.size is None:
            return x
        h, w = self.size
        if self.policy == "resize":
            if x.shape[:2] == (h, w):
                return x
            from skimage.transform import resize

            down = x.shape[0] > h or x.shape[1] > w
            out = resize(x, (h, w, x.shape[2]), order=1, anti_aliasing=down, preserve_range=True)
            return out.astype(np.float32)
        x = _pad_to(x, h, w)
        return x if keep_larger else _center_crop(x, h, w)

    def random_fit(self, x: np.ndarray, seed: int) -> np.ndarray:
        h, w = self.size
        x = _pad_to(x, h, w)
        rng = np.random.default_rng(seed)
        top = int(rng.integers(0, x.shape[0] - h + 1))
        left = int(rng.integers(0, x.shape[1] - w + 1))
        return x[top : top + h, left : left + w]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SciconvError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _collect_warnings():
    """Record the warnings raised while files are read by a thread pool (reported as one)."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", UserWarning)  # SciconvWarning, AstropyUserWarning
        yield records


def _report_warnings(records, *, what: str, stacklevel: int) -> None:
    # probing reads lazily; a file that cannot be memory-mapped is read whole, which is fine
    msgs = [
        str(r.message)
        for r in records
        if issubclass(r.category, UserWarning) and "memory-mapped" not in str(r.message)
    ]
    if not msgs:
        return
    shown = "; ".join(dict.fromkeys(msgs[:3]))
    warnings.warn(
        f"reading the files of {what} gave {len(msgs)} warning(s), e.g.: {shown}",
        SciconvWarning,
        stacklevel=stacklevel,
    )


@dataclass
class _Scan:
    shapes: list  # raw (H, W, C) per file, None where bad
    arrays: list | None  # decoded arrays (None when the budget was exceeded: lazy path)
    bad: dict  # index -> reason


def _scan(paths: Sequence[str], decode: Callable | None, *, budget: float) -> _Scan:
    """Decode (while within ``budget`` bytes) or probe every file in a thread pool."""
    n = len(paths)
    shapes: list = [None] * n
    arrays: list | None = [None] * n if decode is not None and budget > 0 else None
    bad: dict = {}
    total = 0
    chunk = max(64, 8 * _WORKERS)

    def run(fn, path):
        try:
            return fn(path), None
        except Exception as exc:  # every failure is reported with its file
            return None, _reason(exc)

    with ThreadPoolExecutor(_WORKERS) as pool:
        for start in range(0, n, chunk):
            idx = range(start, min(n, start + chunk))
            fn = decode if arrays is not None else _probe
            results = pool.map(lambda j, fn=fn: run(fn, paths[j]), idx)
            for j, (res, err) in zip(idx, results):
                if err is not None:
                    bad[j] = err
                elif arrays is not None:
                    arrays[j] = res[0]
                    shapes[j] = res[1]
                    total += res[0].nbytes
                else:
                    shapes[j] = res
            if arrays is not None and total > budget:
                arrays = None  # over budget: drop what was decoded, probe the rest
    return _Scan(shapes, arrays, bad)


def _report_bad(
    items: Sequence[tuple[str, str]], *, strict: bool, what: str, stacklevel: int = 4
) -> None:
    """One error (strict) or one warning listing every skipped file with its reason."""
    if not items:
        return
    listed = "; ".join(f"{p} ({r})" for p, r in items[:_MAX_LISTED])
    more = f"; and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    if strict:
        raise DatasetError(
            f"{len(items)} unreadable or non-image file(s) in {what} (strict=True): {listed}{more}"
        )
    warnings.warn(
        f"skipped {len(items)} unreadable or non-image file(s) in {what}: {listed}{more}",
        SciconvWarning,
        stacklevel=stacklevel,
    )


def _check_channels(paths: Sequence[str], shapes: Sequence) -> int:
    by_c: dict[int, str] = {}
    for p, s in zip(paths, shapes):
        by_c.setdefault(s[2], p)
    if len(by_c) > 1:
        ex = ", ".join(f"{c} channel(s): {p}" for c, p in sorted(by_c.items()))
        raise DatasetError(
            f"images have different channel counts ({ex}); convert them to one channel count "
            "before building a dataset"
        )
    return next(iter(by_c))


def _check_sizes(paths, shapes, size, policy) -> tuple[int, int]:
    """Resolve the output (H, W) and check the size policy can honour it."""
    if size is None:
        by_hw: dict[tuple, str] = {}
        for p, s in zip(paths, shapes):
            by_hw.setdefault(tuple(s[:2]), p)
        if len(by_hw) > 1:
            ex = ", ".join(f"{hw[0]}x{hw[1]}: {p}" for hw, p in list(by_hw.items())[:5])
            raise DatasetError(
                f"images have different sizes ({ex}); pass image_size=(H, W) with "
                "size_policy='crop', 'pad' or 'resize'"
            )
        return next(iter(by_hw))
    if policy == "pad":
        big = [(p, s) for p, s in zip(paths, shapes) if s[0] > size[0] or s[1] > size[1]]
        if big:
            ex = ", ".join(f"{p} ({s[0]}x{s[1]})" for p, s in big[:5])
            raise DatasetError(
                f"{len(big)} image(s) larger than image_size={size} with size_policy='pad' "
                f"(which never crops): {ex}; use size_policy='crop' or 'resize'"
            )
    return size


# ============================================================================================
# Splitting and class statistics
# ============================================================================================
def _split(n: int, fraction: float | None, seed: int, strata: np.ndarray | None):
    """Deterministic split of ``range(n)``; stratified by ``strata`` (class ids) when given."""
    all_idx = np.arange(n)
    if fraction is None:
        return all_idx, None
    rng = np.random.default_rng(seed)
    groups = [all_idx] if strata is None else [all_idx[strata == c] for c in np.unique(strata)]
    val = []
    for g in groups:
        k = round(len(g) * fraction)
        val.extend(rng.permutation(g)[:k].tolist())
    val_idx = np.array(sorted(val), dtype=np.int64)
    train_idx = np.setdiff1d(all_idx, val_idx)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DatasetError(
            f"validation_split={fraction} of {n} file(s) leaves an empty "
            f"{'validation' if len(val_idx) == 0 else 'training'} set; use more files or "
            "another fraction"
        )
    return train_idx, val_idx


def class_weights(data, *, num_classes: int | None = None) -> dict[int, float]:
    """Class weights for ``model.fit(class_weight=...)`` that balance imbalanced classes.

    ``weight[c] = total / (num_classes * count[c])`` (the "balanced" rule: a class with half
    the average count weighs 2); a class with no samples gets weight 0.

    Parameters
    ----------
    data : tf.data.Dataset or array_like
        A dataset built by this module (its ``.class_counts`` are used: samples for
        classification, pixels for segmentation), or integer class ids of any shape (labels
        ``(N,)`` or masks ``(N, H, W)``).
    num_classes : int, optional
        Number of classes (default: from the dataset, or ``max(label) + 1``).

    Returns
    -------
    dict of int to float

    Examples
    --------
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
    k = len(counts) if num_classes is None else _validate_positive_int(num_classes, "num_classes")
    if len(counts) > k:
        raise DatasetError(f"labels go up to {len(counts) - 1} but num_classes={k}")
    counts = np.pad(counts, (0, k - len(counts)))
    total = counts.sum()
    return {c: (float(total / (k * counts[c])) if counts[c] else 0.0) for c in range(k)}


# ============================================================================================
# Pipelines
# ============================================================================================
def _no_autograph(fn):
    """Trace ``fn`` for tf.data as written: no AutoGraph pass (seconds of tracing saved)."""
    return tf.autograph.experimental.do_not_convert(fn)


def _seed_stream(seed: int):
    """Per-element stateless seeds, shape (2,), different every epoch, same every build."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def _augment_map(ds, aug: dict, seed: int):
    options = {k: v for k, v in aug.items() if k != "crop"}
    ds = tf.data.Dataset.zip((ds, _seed_stream(seed)))
    return ds.map(
        _no_autograph(lambda xy, s: _augment.augment_batch(xy[0], xy[1], seed=s, **options)),
        num_parallel_calls=_AUTOTUNE,
    )


def _batch_crop(x, size, *, seed=None):
    """Crop a batch (N, H, W, C) to ``size``: centre, or a random window per sample (seeded)."""
    h, w = size
    big_h, big_w = x.shape[1], x.shape[2]
    if (big_h, big_w) == (h, w):
        return x
    if seed is None:
        top, left = (big_h - h) // 2, (big_w - w) // 2
        return x[:, top : top + h, left : left + w]
    n = tf.shape(x)[0]
    s = tf.random.experimental.stateless_split(seed, 2)
    top = tf.random.stateless_uniform([n], s[0], 0, big_h - h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([n], s[1], 0, big_w - w + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(h)[None]
    cols = left[:, None] + tf.range(w)[None]
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def _memory_pipeline(x, y, *, size, batch_size, shuffle, seed, aug):
    """Batches gathered from in-memory tensors (the Keras numpy-array path, plus augmentation)."""
    n = len(x)
    idx = tf.data.Dataset.range(n)
    if shuffle:
        idx = idx.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    idx = idx.batch(batch_size)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    ds = tf.data.Dataset.zip((idx, data)).map(
        _no_autograph(lambda i, d: (tf.gather(d[0], i), tf.gather(d[1], i))),
        num_parallel_calls=_AUTOTUNE,
    )
    if x.shape[1:3] != tuple(size):
        if aug is not None and aug.get("crop", True):
            ds = tf.data.Dataset.zip((ds, _seed_stream(seed + 7))).map(
                _no_autograph(lambda xy, s: (_batch_crop(xy[0], size, seed=s), xy[1])),
                num_parallel_calls=_AUTOTUNE,
            )
        else:
            ds = ds.map(
                _no_autograph(lambda a, b: (_batch_crop(a, size), b)), num_parallel_calls=_AUTOTUNE
            )
    if aug is not None:
        ds = _augment_map(ds, aug, seed)
    return ds.prefetch(_AUTOTUNE)


def _lazy_pipeline(paths, y, *, prep, channels, batch_size, shuffle, seed, aug, cache_file):
    """Files decoded in parallel by numpy workers (optionally kept in a TF cache file)."""
    n = len(paths)
    h, w = prep.size
    paths = list(paths)
    random_crop = (
        aug is not None and aug.get("crop", True) and prep.policy == "crop" and cache_file is None
    )

    def load(i, s):
        path = paths[int(i)]
        try:
            x = prep.normalize(_read_pixels(path))
            x = prep.random_fit(x, int(s) % 2**63) if random_crop else prep.fit(x)
        except Exception as exc:  # validated up front; last-resort fallback
            warnings.warn(
                f"{path}: could not be decoded during training ({_reason(exc)}); "
                "a zero image was used instead",
                SciconvWarning,
                stacklevel=1,
            )
            x = np.zeros((h, w, channels), np.float32)
        return np.ascontiguousarray(x, dtype=np.float32)

    ds = tf.data.Dataset.from_tensor_slices((np.arange(n, dtype=np.int64), y))
    if shuffle and cache_file is None:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(
        (ds, tf.data.Dataset.random(seed=seed + 3, rerandomize_each_iteration=True))
    )

    def decode(iy, s):
        x = tf.numpy_function(load, [iy[0], s], tf.float32, stateful=False)
        x.set_shape((h, w, channels))
        return x, iy[1]

    ds = ds.map(_no_autograph(decode), num_parallel_calls=_AUTOTUNE, deterministic=True)
    if cache_file is not None:
        ds = ds.cache(os.fspath(cache_file))
        if shuffle:
            ds = ds.shuffle(min(n, 4096), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if aug is not None:
        ds = _augment_map(ds, aug, seed)
    return ds.prefetch(_AUTOTUNE)


def _attach(ds, **attrs):
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def _fingerprint(paths, *parts) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(repr(parts).encode())
    return h.hexdigest()[:12]


def _build_image_datasets(
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
    size = _validate_image_size(image_size)
    fraction = _validate_split(validation_split)
    batch_size = _validate_positive_int(batch_size, "batch_size")
    seed = _validate_seed(seed)
    aug = _validate_augment(augment)
    spec = _validate_normalization(normalize)
    policy = look_up_option(size_policy, _SIZE_POLICIES, name="size_policy")
    cache = _validate_cache(cache)

    # random crops need the full images: keep them (padded up to size) in memory when cropping
    keep_larger = aug is not None and aug.get("crop", True) and policy == "crop"
    prep = _Prep(spec, size, policy)
    decode = None
    budget = 0.0
    if cache in ("auto", True):
        budget = math.inf if cache is True else CACHE_BUDGET

        def decode(path):
            x = prep.normalize(_read_pixels(path))
            return np.ascontiguousarray(prep.fit(x, keep_larger=keep_larger)), x.shape

    with _collect_warnings() as records:
        scan = _scan(paths, decode, budget=budget)
    _report_warnings(records, what=what, stacklevel=4)
    bad = list(skipped) + [(paths[j], r) for j, r in sorted(scan.bad.items())]
    _report_bad(bad, strict=strict, what=what)
    good = np.array([j for j in range(len(paths)) if j not in scan.bad], dtype=np.int64)
    if check_empty is not None:
        check_empty(good)
    if len(good) == 0:
        raise DatasetError(f"no readable image in {what}")
    g_paths = [paths[j] for j in good]
    g_shapes = [scan.shapes[j] for j in good]
    channels = _check_channels(g_paths, g_shapes)
    size = _check_sizes(g_paths, g_shapes, size, policy)
    prep = _Prep(spec, size, policy)
    labels = labels[good]
    strata = None if strata is None else strata[good]
    train_idx, val_idx = _split(len(good), fraction, seed, strata)

    cache_mode = (
        "memory" if scan.arrays is not None else ("file" if isinstance(cache, Path) else "none")
    )
    common = {
        "class_names": list(class_names),
        "normalization": None if spec is None else dict(spec),
        "task": task,
        "cache_mode": cache_mode,
        # recorded into the model by training.fit so predict_files prepares cutouts the same way
        "image_size": None if size is None else [int(v) for v in size],
        "size_policy": policy,
    }

    def counts(idx):
        if task != "classification":
            return None
        return np.bincount(labels[idx], minlength=len(class_names))

    def build(idx, training):
        sub_paths = [g_paths[i] for i in idx]
        y = labels[idx]
        if scan.arrays is not None:
            arrs = [scan.arrays[good[i]] for i in idx]
            if not training or len({a.shape for a in arrs}) > 1:
                arrs = [_center_crop(a, *size) if a.shape[:2] != size else a for a in arrs]
            x = np.stack(arrs)
            ds = _memory_pipeline(
                x,
                y,
                size=size,
                batch_size=batch_size,
                shuffle=shuffle and training,
                seed=seed,
                aug=aug if training else None,
            )
        else:
            cache_file = None
            if isinstance(cache, Path):
                fp = _fingerprint(sub_paths, spec, size, policy, task)
                cache_file = f"{cache}.{fp}.{'train' if training else 'val'}"
            ds = _lazy_pipeline(
                sub_paths,
                y,
                prep=prep,
                channels=channels,
                batch_size=batch_size,
                shuffle=shuffle and training,
                seed=seed,
                aug=aug if training else None,
                cache_file=cache_file,
            )
        return _attach(ds, file_paths=sub_paths, class_counts=counts(idx), **common)

    if val_idx is None:
        return build(train_idx, True)
    return build(train_idx, True), build(val_idx, False)


# ============================================================================================
# from_folder
# ============================================================================================
def _list_images(folder: Path) -> list[Path]:
    return _io.list_images(folder)


def _list_folder_images(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files (by extension, via sciconv.io) and the other visible files of a folder."""
    images = _list_images(folder)
    names = {p.name for p in images}
    junk = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name in names:
            continue
        if p.is_symlink() and not p.exists():
            junk.append((p, "broken link"))
        elif p.is_file():
            junk.append((p, "not an image file"))
    return images, junk


def from_folder(
    path: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    validation_split: float | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    augment: bool | dict = False,
    normalize: str | dict | None = "default",
    size_policy: str = "crop",
    cache: str | bool | os.PathLike = "auto",
    strict: bool = False,
):
    """Classification dataset from a folder holding one sub-folder of images per class.

    Class names are the sorted sub-folder names; labels are their indices (int32). FITS, TIFF
    and PNG files may be mixed. Non-image or unreadable files are skipped with one
    :class:`SciconvWarning` that names them (``strict=True``: a :class:`DatasetError`).

    Parameters
    ----------
    path : str or path-like
        The folder; each visible sub-folder is a class.
    image_size : int or (int, int), optional
        Output ``(H, W)``. Default None: the images' own size, which must then be the same for all.
    validation_split : float, optional
        Fraction held out for validation, split per class (stratified) with ``seed``; then
        ``(train, val)`` is returned.
    batch_size : int, optional
        Default 32.
    shuffle : bool, optional
        Shuffle the training split each epoch (seeded). Default True.
    seed : int, optional
        Seed of the split, shuffle, crops and augmentation (None: a random one).
    augment : bool or dict, optional
        Training split only. True: a random D4 element per image and, with ``size_policy="crop"``
        and larger images, a random crop (instead of the centre crop). A dict adds options of
        :func:`sciconv.augment.augment_batch` (``brightness``, ``contrast``, ``gaussian_noise``,
        ``poisson_noise``; ``d4``/``crop`` False to turn those off). Default False.
    normalize : str, dict or None, optional
        ``"default"`` (:data:`sciconv.preprocess.DEFAULT_NORMALIZATION`), a method name, a spec
        dict, or None (raw float32). Applied per image on the whole image, before cropping; NaN and
        infinite pixels become 0 afterwards.
    size_policy : {"crop", "pad", "resize"}, optional
        ``"crop"``: cut a window of ``image_size`` (centre; random when augmenting), zero-pad
        smaller images. ``"pad"``: zero-pad to ``image_size``, never crop (a larger image is an
        error). ``"resize"``: resample (bilinear, anti-aliased) to ``image_size``.
    cache : "auto", bool or path, optional
        ``"auto"`` (default): in memory when the decoded images fit :data:`CACHE_BUDGET`, else
        decoded lazily every epoch. True: always in memory. False: always lazy. A path: lazy, with
        a TensorFlow cache file (``<path>.<fingerprint>.train``/``.val``).
    strict : bool, optional
        Unreadable or non-image files are an error instead of a warning. Default False.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches ``(x, y)``: x float32 ``(N, H, W, C)``, y int32 ``(N,)``. ``(train, val)`` when
        ``validation_split`` is given.

    Raises
    ------
    DatasetError
        Missing or empty folder, no class sub-folders, a class with no readable image, different
        channel counts, different sizes without ``image_size``, an empty split.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from astropy.io import fits
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["a", "b"]:
    ...     (root / name).mkdir()
    ...     for i in range(3):
    ...         fits.writeto(root / name / f"{i}.fits", np.eye(6, dtype="float32") * i)
    >>> ds = from_folder(root, image_size=4, batch_size=6, shuffle=False)
    >>> x, y = next(iter(ds))
    >>> tuple(x.shape), y.numpy().tolist()
    ((6, 4, 4, 1), [0, 0, 0, 1, 1, 1])
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(
            "not a folder (from_folder expects one sub-folder per class)", path=folder
        )
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DatasetError(
            "no class sub-folders; from_folder expects one sub-folder of images per class",
            path=folder,
        )
    paths: list[str] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    for c, d in enumerate(class_dirs):
        images, junk = _list_folder_images(d)
        skipped.extend((str(p), why) for p, why in junk)
        if not images:
            raise DatasetError(
                f"class folder {d.name!r} holds no image files"
                + (f" (only {len(junk)} non-image file(s))" if junk else ""),
                path=d,
            )
        paths.extend(str(p) for p in images)
        labels.extend([c] * len(images))
    labels_arr = np.asarray(labels, dtype=np.int32)

    def check_empty(good):
        present = set(labels_arr[good].tolist())
        for c, d in enumerate(class_dirs):
            if c not in present:
                raise DatasetError(f"class folder {d.name!r} holds no readable image", path=d)

    return _build_image_datasets(
        paths,
        labels_arr,
        skipped=skipped,
        what=str(folder),
        task="classification",
        class_names=[d.name for d in class_dirs],
        strata=labels_arr,
        image_size=image_size,
        validation_split=validation_split,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        augment=augment,
        normalize=normalize,
        size_policy=size_policy,
        cache=cache,
        strict=strict,
        check_empty=check_empty,
    )


# ============================================================================================
# from_catalog
# ============================================================================================
def _sorted_labels(values: set[str]) -> list[str]:
    try:
        return sorted(values, key=lambda v: (float(v), v))
    except ValueError:
        return sorted(values)


def _looks_continuous(class_names: list[str]) -> bool:
    """True when class labels are all numbers and some are not integers (e.g. a float column)."""
    try:
        values = [float(v) for v in class_names]
    except ValueError:
        return False
    return any(math.isfinite(v) and v != round(v) for v in values)


def _read_catalog(csv_path: Path, needed: list[str]):
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise DatasetError("empty CSV (no header row)", path=csv_path)
            fields = [f.strip() for f in reader.fieldnames]
            missing = [c for c in needed if c not in fields]
            if missing:
                raise DatasetError(
                    f"column(s) {missing} not found; available columns: {fields}", path=csv_path
                )
            reader.fieldnames = fields
            rows = []
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # blank line
                rows.append((reader.line_num, {k: (row.get(k) or "").strip() for k in needed}))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not a UTF-8 text CSV ({exc.reason})", path=csv_path) from None
    except csv.Error as exc:
        raise DatasetError(f"malformed CSV: {exc}", path=csv_path) from None
    if not rows:
        raise DatasetError("CSV has a header but no rows", path=csv_path)
    return rows


def from_catalog(
    csv_path: str | os.PathLike,
    *,
    path_column: str = "path",
    label_column: str | None = None,
    label_columns: Sequence[str] | None = None,
    task: str | None = None,
    on_missing: str = "error",
    on_duplicate: str = "error",
    image_size: int | tuple[int, int] | None = None,
    validation_split: float | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    augment: bool | dict = False,
    normalize: str | dict | None = "default",
    size_policy: str = "crop",
    cache: str | bool | os.PathLike = "auto",
    strict: bool = False,
):
    """Dataset from a CSV catalog: one row per image file, with its label(s) or target value(s).

    Read with the standard :mod:`csv` module (UTF-8, header row). Relative paths are relative to
    the CSV's folder.

    Parameters
    ----------
    csv_path : str or path-like
        The catalog.
    path_column : str, optional
        Column holding the image paths. Default ``"path"``.
    label_column : str, optional
        One label column: class labels (``task="classification"``, strings sorted into
        ``class_names``, numerically when they are all numbers) or, with ``task="regression"``,
        one float target.
    label_columns : sequence of str, optional
        Several 0/1 columns (``task="multilabel"``, y float32 ``(N, K)``) or several float
        targets (``task="regression"``, y float32 ``(N, K)``).
    task : {"classification", "multilabel", "regression"}, optional
        Default: classification with ``label_column``, multilabel with ``label_columns``.
    on_missing : {"error", "skip"}, optional
        A row whose file does not exist: a :class:`DatasetError` listing the rows (default), or
        dropped with one :class:`SciconvWarning` giving the count.
    on_duplicate : {"error", "first"}, optional
        The same file on several rows: a :class:`DatasetError` naming the lines (default; a file
        listed twice would leak between the splits or be over-weighted), or keep the first row
        with one :class:`SciconvWarning`.
    image_size, validation_split, batch_size, shuffle, seed, augment, normalize, size_policy, \
cache, strict
        As in :func:`from_folder`; the split is stratified by class for classification.
        ``augment`` flips and rotates images: use it only for targets that do not change under
        flips/rotations (class, redshift, Sérsic index), not for orientations (position angle).

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches ``(x, y)``: x float32 ``(N, H, W, C)``; y int32 ``(N,)`` (classification),
        float32 ``(N, K)`` (multilabel 0/1 and regression).

    Raises
    ------
    DatasetError
        Missing CSV or columns (naming the available ones), missing/duplicate files (naming the
        lines), unparsable labels (naming the line, column and value), plus the errors of
        :func:`from_folder`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from astropy.io import fits
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> rows = ["file,redshift,sersic"]
    >>> for i in range(4):
    ...     fits.writeto(root / f"g{i}.fits", np.full((8, 8), i, "float32"))
    ...     rows.append(f"g{i}.fits,{0.1 * i},{i + 1}")
    >>> _ = (root / "cat.csv").write_text("\\n".join(rows))
    >>> ds = from_catalog(root / "cat.csv", path_column="file", task="regression",
    ...                   label_columns=["redshift", "sersic"], batch_size=4, shuffle=False)
    >>> x, y = next(iter(ds))
    >>> tuple(x.shape), tuple(y.shape), y.dtype.name, ds.task
    ((4, 8, 8, 1), (4, 2), 'float32', 'regression')
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError("catalog CSV not found", path=csv_path)
    if (label_column is None) == (label_columns is None):
        raise ConfigError("give exactly one of label_column=... or label_columns=[...]")
    if label_columns is not None:
        if isinstance(label_columns, str) or not len(label_columns):
            raise ConfigError(
                f"label_columns must be a non-empty list of names; got {label_columns!r}"
            )
        label_columns = [str(c) for c in label_columns]
    task_defaulted = task is None
    if task is None:
        task = "classification" if label_column is not None else "multilabel"
    task = look_up_option(task, _TASKS, name="task")
    if task == "classification" and label_column is None:
        raise ConfigError("task='classification' needs label_column=...; got label_columns")
    if task == "multilabel" and label_columns is None:
        raise ConfigError("task='multilabel' needs label_columns=[...]; got label_column")
    on_missing = look_up_option(on_missing, ("error", "skip"), name="on_missing")
    on_duplicate = look_up_option(on_duplicate, ("error", "first"), name="on_duplicate")
    columns = [label_column] if label_column is not None else list(label_columns)
    rows = _read_catalog(csv_path, [path_column, *columns])

    # files: missing and duplicate rows
    base = csv_path.parent
    missing, seen, dups, kept = [], {}, [], []
    for line, row in rows:
        rel = row[path_column]
        full = (base / rel) if rel else None
        if full is None or not full.is_file():
            missing.append((line, rel))
            continue
        key = os.path.realpath(full)
        if key in seen:
            dups.append((seen[key], line, rel))
            continue
        seen[key] = line
        kept.append((line, str(full), row))
    if missing:
        listed = ", ".join(f"line {ln}: {p or '(empty)'}" for ln, p in missing[:_MAX_LISTED])
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        if on_missing == "error":
            raise DatasetError(
                f"{len(missing)} file(s) listed in column {path_column!r} not found (paths are "
                f"relative to {base}): {listed}{more}; pass on_missing='skip' to drop them",
                path=csv_path,
            )
        warnings.warn(
            f"{csv_path}: skipped {len(missing)} row(s) whose file is missing ({listed}{more})",
            SciconvWarning,
            stacklevel=2,
        )
    if dups:
        listed = ", ".join(f"lines {a} and {b}: {p}" for a, b, p in dups[:_MAX_LISTED])
        if on_duplicate == "error":
            raise DatasetError(
                f"{len(dups)} duplicate file path(s) ({listed}); remove them or pass "
                "on_duplicate='first'",
                path=csv_path,
            )
        warnings.warn(
            f"{csv_path}: {len(dups)} duplicate file path(s) ignored, first row kept ({listed})",
            SciconvWarning,
            stacklevel=2,
        )
    if not kept:
        raise DatasetError("no row of the catalog points to an existing file", path=csv_path)

    # labels
    def bad(line, col, value, want):
        raise DatasetError(
            f"line {line}, column {col!r}: cannot parse {value!r} as {want}", path=csv_path
        )

    lines = [ln for ln, _, _ in kept]
    if task == "classification":
        raw = []
        for ln, _, row in kept:
            if not row[label_column]:
                bad(ln, label_column, row[label_column], "a class label (empty)")
            raw.append(row[label_column])
        class_names = _sorted_labels(set(raw))
        if task_defaulted and _looks_continuous(class_names):
            warnings.warn(
                f"{csv_path}: column {label_column!r} holds {len(class_names)} distinct "
                "non-integer numbers, each made a class; pass task='regression' for a "
                "continuous target (or task='classification' to keep classes and silence this)",
                SciconvWarning,
                stacklevel=2,
            )
        ids = {name: i for i, name in enumerate(class_names)}
        y = np.array([ids[v] for v in raw], dtype=np.int32)
        strata = y
    else:
        y = np.zeros((len(kept), len(columns)), dtype=np.float32)
        for r, (ln, _, row) in enumerate(kept):
            for k, col in enumerate(columns):
                value = row[col]
                if task == "multilabel":
                    low = value.lower()
                    if low not in _TRUE and low not in _FALSE:
                        bad(ln, col, value, "0/1")
                    y[r, k] = 1.0 if low in _TRUE else 0.0
                else:
                    try:
                        y[r, k] = float(value)
                    except ValueError:
                        bad(ln, col, value, "a number")
                    if not np.isfinite(y[r, k]):
                        bad(ln, col, value, "a finite number")
        class_names = list(columns)
        strata = None
    del lines
    return _build_image_datasets(
        [p for _, p, _ in kept],
        y,
        skipped=[],
        what=str(csv_path),
        task=task,
        class_names=class_names,
        strata=strata,
        image_size=image_size,
        validation_split=validation_split,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        augment=augment,
        normalize=normalize,
        size_policy=size_policy,
        cache=cache,
        strict=strict,
    )


# ============================================================================================
# from_pairs (segmentation)
# ============================================================================================
def _list_inputs(value, name: str) -> list[Path]:
    if isinstance(value, (str, os.PathLike)):
        folder = Path(value)
        if folder.is_dir():
            files = _list_images(folder)
            if not files:
                raise DatasetError(f"{name} folder holds no image files", path=folder)
            return files
        if folder.is_file():
            return [folder]
        raise DatasetError(f"{name}: no such file or folder", path=folder)
    try:
        files = [Path(p) for p in value]
    except TypeError:
        raise ConfigError(f"{name} must be a folder or a list of paths; got {value!r}") from None
    if not files:
        raise DatasetError(f"{name} is an empty list")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise DatasetError(f"{name}: {len(missing)} file(s) not found: {missing[:_MAX_LISTED]}")
    return files


def _by_stem(files: list[Path], name: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        s = _stem(f)
        if s in out:
            raise DatasetError(
                f"{name}: two files share the stem {s!r} ({out[s]} and {f}); pairs are matched by "
                "stem, so each stem must be unique"
            )
        out[s] = f
    return out


def _mask_target(labels: np.ndarray, *, path: str, target: str, num_classes: int | None):
    """Turn a label image (H, W) into class ids per the target."""
    if target == "boundary":
        from skimage.segmentation import find_boundaries

        out = (labels > 0).astype(np.uint8)
        out[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
        return out
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


def _read_mask(path: str) -> np.ndarray:
    data = _read_pixels(path)
    if data.shape[2] != 1:
        raise DatasetError(f"a mask must have 1 channel; got {data.shape[2]}", path=path)
    m = data[..., 0]
    if not np.all(np.isfinite(m)) or np.any(m != np.round(m)) or m.min() < 0:
        raise DatasetError("a mask must hold integer labels >= 0 (no NaN, no fractions)", path=path)
    return m.astype(np.int64)


def _pad_multiple(x: np.ndarray, y: np.ndarray, multiple: int):
    h, w = y.shape
    th, tw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    return _pad_to(x, th, tw, mode="reflect", center=False), _pad_to(y, th, tw, center=False)


def _sample_patches(x, y, size, count, fg_fraction, rng):
    ph, pw = size
    x = _pad_to(x, ph, pw, mode="reflect", center=False)
    y = _pad_to(y, ph, pw, center=False)
    h, w = y.shape
    fg = np.flatnonzero(y) if fg_fraction else np.empty(0, np.int64)
    xs = np.empty((count, ph, pw, x.shape[2]), np.float32)
    ys = np.empty((count, ph, pw), np.int32)
    for p in range(count):
        if fg.size and rng.random() < fg_fraction:
            cy, cx = divmod(int(fg[rng.integers(fg.size)]), w)
            top = int(np.clip(cy - ph // 2, 0, h - ph))
            left = int(np.clip(cx - pw // 2, 0, w - pw))
        else:
            top = int(rng.integers(0, h - ph + 1))
            left = int(rng.integers(0, w - pw + 1))
        xs[p] = x[top : top + ph, left : left + pw]
        ys[p] = y[top : top + ph, left : left + pw]
    return xs, ys


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
    seed: int | None = None,
    augment: bool | dict = False,
    normalize: str | dict | None = "default",
    pad_to_multiple: int = 16,
    cache: str | bool = "auto",
    strict: bool = False,
):
    """Segmentation dataset from images and masks paired by file stem.

    ``cells/images/a.tif`` pairs with ``cells/masks/a.tif`` (or ``a.fits``...). Masks may be
    instance labels (0 = background, 1..n objects) or class ids.

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

    Parameters
    ----------
    images, masks : folder or list of paths
        The image files and the mask files (a folder is listed with :func:`sciconv.io.list_images`).
    patch_size : int or (int, int), optional
        Training patch size. Default None: whole images padded like validation ones.
    patches_per_image : int, optional
        Patches per image per epoch (sets ``.steps_per_epoch``). Default 8.
    foreground_fraction : float, optional
        Probability that a patch is centred on a random foreground pixel (else uniform).
        Default 0.5.
    target : {"semantic", "boundary"}, optional
        ``"semantic"``: with ``num_classes=None`` masks are instance/binary labels and y is
        0 background / 1 foreground; with ``num_classes`` masks hold class ids ``< num_classes``.
        ``"boundary"``: masks are instance labels; y is 0 background / 1 interior / 2 boundary
        (:func:`skimage.segmentation.find_boundaries`, ``mode="inner"``), which separates touching
        objects.
    num_classes : int, optional
        See ``target``; a mask label ``>= num_classes`` is a :class:`DatasetError`.
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
        ``"auto"``: decoded images kept in memory when they fit :data:`CACHE_BUDGET`, else read
        lazily (masks are always held in memory). Default ``"auto"``.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches ``(x, y)``: x float32 ``(N, H, W, C)``, y int32 ``(N, H, W)`` class ids; the
        training dataset is endless, with ``.steps_per_epoch``.

    Raises
    ------
    DatasetError
        A missing partner or a shape mismatch (naming both files), a mask label ``>= num_classes``,
        a non-integer mask, different channel counts, an empty split.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
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
    """
    psize = None if patch_size is None else standardize_tuple(patch_size, 2, name="patch_size")
    ppi = _validate_positive_int(patches_per_image, "patches_per_image")
    if (
        isinstance(foreground_fraction, bool)
        or not isinstance(foreground_fraction, (int, float))
        or not 0 <= foreground_fraction <= 1
    ):
        raise ConfigError(f"foreground_fraction must be in [0, 1]; got {foreground_fraction!r}")
    target = look_up_option(target, _TARGETS, name="target")
    if num_classes is not None:
        num_classes = _validate_positive_int(num_classes, "num_classes")
        if target == "boundary" and num_classes != 3:
            raise ConfigError(f"target='boundary' makes 3 classes; got num_classes={num_classes}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2; got {num_classes}")
    fraction = _validate_split(validation_split)
    batch_size = _validate_positive_int(batch_size, "batch_size")
    seed = _validate_seed(seed)
    aug = _validate_augment(augment)
    spec = _validate_normalization(normalize)
    multiple = _validate_positive_int(pad_to_multiple, "pad_to_multiple")
    if cache not in ("auto", True, False, None):
        raise ConfigError(
            f"from_pairs caches in memory only: cache must be 'auto', True or False; got {cache!r}"
        )

    # pair by stem
    img_by = _by_stem(_list_inputs(images, "images"), "images")
    mask_by = _by_stem(_list_inputs(masks, "masks"), "masks")
    mask_dir = Path(next(iter(mask_by.values()))).parent
    img_dir = Path(next(iter(img_by.values()))).parent
    for s, p in img_by.items():
        if s not in mask_by:
            raise DatasetError(
                f"image {p} has no mask: expected a file with stem {s!r} in {mask_dir}"
            )
    for s, p in mask_by.items():
        if s not in img_by:
            raise DatasetError(
                f"mask {p} has no image: expected a file with stem {s!r} in {img_dir}"
            )
    stems = sorted(img_by)
    img_paths = [str(img_by[s]) for s in stems]
    mask_paths = [str(mask_by[s]) for s in stems]

    # masks: always read (label checks need every pixel); images: decoded or probed
    prep = _Prep(spec, None, "crop")
    n = len(stems)
    ys: list = [None] * n
    bad: dict[int, str] = {}

    def read_pair_mask(j):
        try:
            return _read_mask(mask_paths[j]), None
        except DatasetError:
            raise
        except Exception as exc:  # reported with its file
            return None, _reason(exc)

    budget = {"auto": CACHE_BUDGET, True: math.inf}.get(cache, 0.0)

    def decode_image(path):
        x = prep.normalize(_read_pixels(path))
        return x, x.shape

    with _collect_warnings() as records:
        with ThreadPoolExecutor(_WORKERS) as pool:
            for j, (m, err) in enumerate(pool.map(read_pair_mask, range(n))):
                if err is not None:
                    bad[j] = f"mask {mask_paths[j]}: {err}"
                else:
                    ys[j] = m
        scan = _scan(img_paths, decode_image if budget else None, budget=budget)
    _report_warnings(records, what="image/mask pairs", stacklevel=3)
    for j, reason in scan.bad.items():
        bad.setdefault(j, reason)
    _report_bad(
        [(img_paths[j], r) for j, r in sorted(bad.items())],
        strict=strict,
        what="image/mask pairs",
        stacklevel=3,
    )
    good = [j for j in range(n) if j not in bad]
    if not good:
        raise DatasetError(f"no readable image/mask pair among {n}")
    for j in good:
        if tuple(scan.shapes[j][:2]) != ys[j].shape:
            raise DatasetError(
                f"image {img_paths[j]} is {scan.shapes[j][0]}x{scan.shapes[j][1]} but its mask "
                f"{mask_paths[j]} is {ys[j].shape[0]}x{ys[j].shape[1]}"
            )
    channels = _check_channels([img_paths[j] for j in good], [scan.shapes[j] for j in good])
    for j in good:
        ys[j] = _mask_target(ys[j], path=mask_paths[j], target=target, num_classes=num_classes)
    k = 3 if target == "boundary" else (num_classes or 2)
    if target == "boundary":
        class_names = ["background", "interior", "boundary"]
    elif k == 2:
        class_names = ["background", "foreground"]
    else:
        class_names = ["background", *[f"class_{i}" for i in range(1, k)]]
    train_idx, val_idx = _split(len(good), fraction, seed, None)
    in_memory = scan.arrays is not None

    def get(j):
        x = scan.arrays[j] if in_memory else prep.normalize(_read_pixels(img_paths[j]))
        return x, ys[j]

    def whole_batch(idx):
        """Batch size for whole images: ``batch_size`` when they share one padded size, else 1."""
        shapes = {tuple(-(-d // multiple) * multiple for d in ys[good[i]].shape) for i in idx}
        return batch_size if len(shapes) == 1 else 1

    def whole(idx, training):
        sel = [good[i] for i in idx]
        bs = whole_batch(idx)

        def load(i):
            x, y = _pad_multiple(*get(sel[int(i)]), multiple)
            return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)

        ds = tf.data.Dataset.range(len(sel))
        if training and shuffle:
            ds = ds.shuffle(len(sel), seed=seed, reshuffle_each_iteration=True)
        if training:
            ds = ds.repeat()  # endless: fit() reads one pass from .steps_per_epoch

        def decode(i):
            x, y = tf.numpy_function(load, [i], (tf.float32, tf.int32), stateful=False)
            x.set_shape((None, None, channels))
            y.set_shape((None, None))
            return x, y

        ds = ds.map(_no_autograph(decode), num_parallel_calls=_AUTOTUNE, deterministic=True).batch(
            bs
        )
        if training and aug is not None:
            ds = _augment_map(ds, aug, seed)
        return ds.prefetch(_AUTOTUNE)

    def patches(idx):
        sel = [good[i] for i in idx]

        def sample(i, s):
            x, y = get(sel[int(i)])
            rng = np.random.default_rng(int(s) % 2**63)
            return _sample_patches(x, y, psize, ppi, foreground_fraction, rng)

        ds = tf.data.Dataset.range(len(sel))
        if shuffle:
            ds = ds.shuffle(len(sel), seed=seed, reshuffle_each_iteration=True)
        # endless, and every pass draws new patches: the seed stream is zipped after the repeat,
        # so it runs on instead of restarting with each pass
        ds = tf.data.Dataset.zip(
            (ds.repeat(), tf.data.Dataset.random(seed=seed + 5, rerandomize_each_iteration=True))
        )

        def decode(i, s):
            x, y = tf.numpy_function(sample, [i, s], (tf.float32, tf.int32), stateful=False)
            x.set_shape((ppi, *psize, channels))
            y.set_shape((ppi, *psize))
            return x, y

        ds = ds.map(
            _no_autograph(decode), num_parallel_calls=_AUTOTUNE, deterministic=True
        ).unbatch()
        if shuffle:
            ds = ds.shuffle(min(len(sel) * ppi, 2048), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        if aug is not None:
            ds = _augment_map(ds, aug, seed)
        return ds.prefetch(_AUTOTUNE)

    common = {
        "class_names": class_names,
        "normalization": None if spec is None else dict(spec),
        "task": "segmentation",
        "cache_mode": "memory" if in_memory else "none",
        "pad_to_multiple": multiple,
    }

    def finish(ds, idx, **extra):
        sel = [good[i] for i in idx]
        counts = np.zeros(k, np.int64)
        for j in sel:
            counts += np.bincount(ys[j].ravel(), minlength=k)[:k]
        return _attach(
            ds,
            file_paths=[img_paths[j] for j in sel],
            mask_paths=[mask_paths[j] for j in sel],
            class_counts=counts,
            **common,
            **extra,
        )

    # the training split is endless; one epoch = one pass (every image, patches_per_image times)
    if psize:
        train, one_pass = patches(train_idx), -(-len(train_idx) * ppi // batch_size)
    else:
        train, one_pass = whole(train_idx, True), -(-len(train_idx) // whole_batch(train_idx))
    train = finish(train, train_idx, steps_per_epoch=one_pass)
    if val_idx is None:
        return train
    return train, finish(whole(val_idx, False), val_idx)


# ============================================================================================
# Public data sets (implemented in sciconv.fetch)
# ============================================================================================
def _fetch_module():
    try:
        from sciconv import fetch as module
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise DatasetError(f"sciconv.fetch is not available ({exc})") from None
    return module


def fetch(*args: Any, **kwargs: Any):
    """Download a public data set; see :func:`sciconv.fetch.fetch` (same arguments).

    Examples
    --------
    >>> from sciconv import datasets
    >>> path = datasets.fetch("dsb2018")  # doctest: +SKIP
    """
    return _fetch_module().fetch(*args, **kwargs)


def load(*args: Any, **kwargs: Any):
    """Load a fetched public data set; see :func:`sciconv.fetch.load` (same arguments).

    Examples
    --------
    >>> from sciconv import datasets
    >>> data = datasets.load("dsb2018")  # doctest: +SKIP
    """
    return _fetch_module().load(*args, **kwargs)
