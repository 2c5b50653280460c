"""tf.data pipelines: in-memory batches, lazily decoded files, augmentation, seeds, caching.

Shuffling and augmentation are seeded: the same ``seed`` gives the same batches, epoch after
epoch, each time a dataset is built.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import os
import warnings

import numpy as np
import tensorflow as tf

from sciconv.augment import augment_batch
from sciconv.datasets._scan import reason
from sciconv.errors import SciconvWarning

AUTOTUNE = tf.data.AUTOTUNE


def no_autograph(fn):
    """Trace ``fn`` for tf.data as written: no AutoGraph pass (seconds of tracing saved)."""
    return tf.autograph.experimental.do_not_convert(fn)


def seed_stream(seed: int):
    """Per-element stateless seeds, shape (2,), different every epoch, same every build."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def augment_map(ds, aug: dict, seed: int):
    options = {k: v for k, v in aug.items() if k != "crop"}
    ds = tf.data.Dataset.zip((ds, seed_stream(seed)))
    return ds.map(
        no_autograph(lambda xy, s: augment_batch(xy[0], xy[1], seed=s, **options)),
        num_parallel_calls=AUTOTUNE,
    )


def batch_crop(x, size, *, seed=None):
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


def memory_pipeline(x, y, *, size, batch_size, shuffle, seed, aug):
    """Batches gathered from in-memory tensors (the Keras numpy-array path, plus augmentation)."""
    n = len(x)
    idx = tf.data.Dataset.range(n)
    if shuffle:
        idx = idx.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    idx = idx.batch(batch_size)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    ds = tf.data.Dataset.zip((idx, data)).map(
        no_autograph(lambda i, d: (tf.gather(d[0], i), tf.gather(d[1], i))),
        num_parallel_calls=AUTOTUNE,
    )
    if x.shape[1:3] != tuple(size):
        if aug is not None and aug.get("crop", True):
            ds = tf.data.Dataset.zip((ds, seed_stream(seed + 7))).map(
                no_autograph(lambda xy, s: (batch_crop(xy[0], size, seed=s), xy[1])),
                num_parallel_calls=AUTOTUNE,
            )
        else:
            ds = ds.map(
                no_autograph(lambda a, b: (batch_crop(a, size), b)), num_parallel_calls=AUTOTUNE
            )
    if aug is not None:
        ds = augment_map(ds, aug, seed)
    return ds.prefetch(AUTOTUNE)


def lazy_pipeline(paths, y, *, prep, channels, batch_size, shuffle, seed, aug, cache_file):
    """Files decoded in parallel by numpy workers (optionally kept in a TF cache file)."""
    n = len(paths)
    h, w = prep.size
    paths = list(paths)
    crops = aug is not None and aug.get("crop", True) and prep.policy in ("crop", "auto")
    # a cache file keeps what was decoded: the whole images, cropped at random after it
    # (QA: the cache had frozen one centre crop while the dataset recorded random crops)
    crop_cached = crops and cache_file is not None

    def load(i, s):
        path = paths[int(i)]
        try:
            x = prep.read(path, finite=True)  # all NaN: not learnt silently as zeros
            if crop_cached:
                x = prep.fit(x, keep_larger=True)
            else:
                x = prep.random_fit(x, int(s) % 2**63) if crops else prep.fit(x)
        except Exception as exc:  # validated up front; last-resort fallback
            warnings.warn(
                f"{path}: could not be decoded during training ({reason(exc)}); "
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
        x.set_shape((None, None, channels) if crop_cached else (h, w, channels))
        return x, iy[1]

    ds = ds.map(no_autograph(decode), num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache_file is not None:
        ds = ds.cache(os.fspath(cache_file))
        if shuffle:
            ds = ds.shuffle(min(n, 4096), seed=seed, reshuffle_each_iteration=True)
    if crop_cached:
        ds = tf.data.Dataset.zip((ds, seed_stream(seed + 7))).map(
            no_autograph(
                lambda xy, s: (tf.image.stateless_random_crop(xy[0], (h, w, channels), s), xy[1])
            ),
            num_parallel_calls=AUTOTUNE,
        )
    ds = ds.batch(batch_size)
    if aug is not None:
        ds = augment_map(ds, aug, seed)
    return ds.prefetch(AUTOTUNE)


def attach(ds, **attrs):
    """Set the Python attributes a returned dataset carries (``.class_names``, ...)."""
    for key, value in attrs.items():
        setattr(ds, key, value)
    _close_iterators_at_exit()
    return ds


_EXIT_HOOK: list = []


def _close_iterators_at_exit() -> None:
    """Once a dataset is built, free the tf.data iterators still alive when Python exits.

    A script that ends holding an iterator (``batch = next(iter(ds))`` at module level) hung
    for ever at exit (4 of 4 runs over a ``from_pairs`` dataset): Python frees the iterator
    only while finalizing, when TensorFlow's threads can no longer enter Python to finish the
    ``numpy_function`` calls in flight (they exit instead), and the iterator's destructor waits
    for them. At exit, before finalizing, each live iterator's resource is released here while
    those calls can still finish (the iterators are unusable after it: the process is ending).
    """
    if _EXIT_HOOK:
        return
    _EXIT_HOOK.append(True)
    atexit.register(_close_iterators)


def _close_iterators() -> None:
    for obj in gc.get_objects():
        # the handle is private to TensorFlow's OwnedIterator: dropping it frees the resource
        if isinstance(obj, tf.data.Iterator) and "_iterator_resource" in vars(obj):
            del obj._iterator_resource


def fingerprint(paths, *parts, labels=None) -> str:
    """Names a cache file after the files (path, size, mtime), the settings and the labels
    (the cache holds them beside the images: a corrected catalog read the old ones back)."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(repr(parts).encode())
    if labels is not None:
        labels = np.ascontiguousarray(labels)
        h.update(f"{labels.dtype.str}{labels.shape}".encode())
        h.update(labels.tobytes())
    return h.hexdigest()[:12]
