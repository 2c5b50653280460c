"""tf.data pipelines: in-memory batches, lazily decoded files, augmentation, seeds, caching.

Every training batch is a function of the dataset's ``seed`` and of its index in an endless
stream of passes (stateless seeds ``(seed, index, stream)``, :func:`stateless_seed`): pass ``p``
visits the images in an order seeded by ``(seed, p)``, and the random crops and the
augmentation of a batch are seeded by its index. ``ds.resume_at(n)`` gives that stream from
batch ``n`` on without drawing the batches before it, which :func:`sciconv.training.fit` uses
to resume a run on the batches the uninterrupted run would have drawn. Iterated directly, a
training dataset yields one pass, a new one each time (drawn from ``seed``); the same ``seed``
gives the same batches each time a dataset is built.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
import re
import threading
import warnings
import weakref
from pathlib import Path

import numpy as np
import tensorflow as tf

from sciconv._workdir_lock import lock_folder
from sciconv.augment import augment_batch
from sciconv.datasets._numpy_steps import NumpyStep
from sciconv.datasets._scan import reason
from sciconv.datasets._validate import check_cache_room
from sciconv.errors import ConfigError, DatasetError, SciconvWarning, WriteError

AUTOTUNE = tf.data.AUTOTUNE

#: The random streams of a dataset's seed (the ``stream`` of :func:`stateless_seed`): each
#: random choice draws from its own, so no two draw the same numbers. ``PATCH_DRAW`` and
#: ``CHUNK_ORDER`` are :func:`~sciconv.datasets.from_pairs`'s patches and their mixing.
PASS_ORDER, PATCH_DRAW, CHUNK_ORDER, CROP, BLOCK_ORDER, BLOCK_START, AUGMENT = 4, 5, 6, 7, 8, 9, 11
#: A training dataset iterated directly (not through ``.resume_at``) shows one of this many
#: passes, drawn anew on every iteration.
PASS_KEYS = 2**24
#: The images read back from a cache file are shuffled in blocks of at most this many images
#: and bytes (a cache file is read in order, not at random).
BLOCK_IMAGES = 4096
BLOCK_BYTES = 512 * 2**20


def no_autograph(fn):
    """Trace ``fn`` for tf.data as written: no AutoGraph pass (seconds of tracing saved)."""
    return tf.autograph.experimental.do_not_convert(fn)


def stateless_seed(seed: int, index, stream: int):
    """The stateless seed of draw ``index`` of ``stream`` of a dataset's ``seed``, shape (2,).

    Parameters
    ----------
    seed : int
        The dataset's seed.
    index : int or tf.Tensor
        The batch (or image, pass, chunk) the draw is for.
    stream : int
        One of the streams above (:data:`AUGMENT`, ...), below 16.

    Returns
    -------
    tf.Tensor
        int64 ``(seed, index * 16 + stream)``, as ``tf.random.stateless_*`` take it.

    Examples
    --------
    >>> stateless_seed(3, 2, AUGMENT).numpy().tolist()
    [3, 43]
    """
    index = tf.cast(index, tf.int64)
    return tf.stack([tf.constant(seed, tf.int64), index * 16 + stream])


def pass_order(p, n: int, seed: int, shuffle: bool):
    """The order in which pass ``p`` of an endless stream visits ``n`` images.

    Parameters
    ----------
    p : int or tf.Tensor
        The pass.
    n : int
        The number of images.
    seed : int
        The dataset's seed.
    shuffle : bool
        False: every pass in turn, ``0 .. n - 1``.

    Returns
    -------
    tf.Tensor
        int64 ``(n,)``, a permutation seeded by ``(seed, p)``.

    Examples
    --------
    >>> a = pass_order(0, 5, 1, True).numpy().tolist()
    >>> sorted(a), a == pass_order(0, 5, 1, True).numpy().tolist()
    ([0, 1, 2, 3, 4], True)
    >>> pass_order(7, 3, 1, False).numpy().tolist()
    [0, 1, 2]
    """
    order = tf.range(n, dtype=tf.int64)
    if not shuffle:
        return order
    return tf.random.experimental.stateless_shuffle(order, seed=stateless_seed(seed, p, PASS_ORDER))


def pass_image(slot, n: int, seed: int, shuffle: bool):
    """The image shown at place ``slot`` of an endless stream of passes over ``n`` images.

    Pass ``p = slot // n`` shows every image once, in the order :func:`pass_order` gives. Pure
    TensorFlow: no Python runs in tf.data's threads for it.

    Examples
    --------
    >>> sorted(int(pass_image(s, 4, 0, True)) for s in range(4, 8))
    [0, 1, 2, 3]
    """
    if not shuffle:
        return slot % n
    return tf.gather(pass_order(slot // n, n, seed, True), slot % n)


def first_batch(first) -> int:
    """``first`` checked as the batch index ``.resume_at`` takes: an int >= 0.

    Examples
    --------
    >>> first_batch(3)
    3
    """
    if isinstance(first, (bool, np.bool_)) or not isinstance(first, (int, np.integer)):
        raise ConfigError(f"resume_at takes a batch index >= 0; got {first!r}")
    if first < 0:
        raise ConfigError(f"resume_at takes a batch index >= 0; got {first}")
    return int(first)


def augment_seeded(batch, s, options: dict, weighted: bool = False):
    """Augment one batch ``(x, y)`` (or ``(x, y, w)``) with the stateless seed ``s``.

    With weights, y and w ride one tensor, so they get the same D4 move.

    Parameters
    ----------
    batch : tuple of tf.Tensor
        ``(x, y)`` or, ``weighted``, ``(x, y, w)`` with y and w ``(N, H, W)``.
    s : tf.Tensor
        Stateless seed, shape (2,).
    options : dict
        Options of :func:`sciconv.augment.augment_batch` (a ``"crop"`` key is ignored).
    weighted : bool, optional
        Whether the batch carries per-pixel weights. Default False.

    Returns
    -------
    tuple of tf.Tensor

    Examples
    --------
    >>> x = tf.reshape(tf.range(8.0), (2, 2, 2, 1))
    >>> xa, ya = augment_seeded((x, tf.constant([0, 1])), stateless_seed(0, 0, AUGMENT), {})
    >>> sorted(tf.reshape(xa, [-1]).numpy().tolist()) == list(range(8)), ya.numpy().tolist()
    (True, [0, 1])
    """
    options = {k: v for k, v in options.items() if k != "crop"}
    if not weighted:
        return augment_batch(batch[0], batch[1], seed=s, **options)
    x, y, w = batch
    x, yw = augment_batch(x, tf.stack([tf.cast(y, tf.float32), w], axis=-1), seed=s, **options)
    return x, tf.cast(tf.round(yw[..., 0]), tf.int32), yw[..., 1]


def augment_indexed(ds, aug: dict, seed: int, first: int, weighted: bool = False):
    """Augment batches with stateless seeds ``(seed, batch index)``, the index counted from
    ``first``: a stream resumed at batch ``first`` augments as the whole stream did.

    Examples
    --------
    >>> ds = tf.data.Dataset.from_tensors((tf.zeros((2, 4, 4, 1)), tf.constant([0, 1])))
    >>> x, y = next(iter(augment_indexed(ds, {"d4": True}, 0, 5)))
    >>> tuple(x.shape), y.numpy().tolist()
    ((2, 4, 4, 1), [0, 1])
    """
    seeds = tf.data.Dataset.counter(first).map(lambda b: stateless_seed(seed, b, AUGMENT))
    ds = tf.data.Dataset.zip((ds, seeds))
    return ds.map(
        no_autograph(lambda batch, s: augment_seeded(batch, s, aug, weighted)),
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


def indexed_passes(n: int, batch_size: int, seed: int, one_pass, finish, *, training: bool):
    """A dataset whose batches are a function of ``seed`` and their index (``.resume_at``).

    Pass ``p`` of the endless stream is ``one_pass(p, start)``: the batches of pass ``p`` from
    its image ``start`` on (a multiple of ``batch_size``; the last batch of a pass may be
    short, and no batch spans two passes). ``finish(ds)`` maps the pairs ``(batch, index)``
    to the batches (crops, augmentation seeded by the index).

    Parameters
    ----------
    n, batch_size : int
        Images per pass and images per batch.
    seed : int
        The dataset's seed (the pass a direct iteration shows is drawn from it).
    one_pass, finish : callable
        See above.
    training : bool
        True: an iteration of the returned dataset shows one pass drawn anew each time, and it
        carries ``.resume_at(first)`` (the endless stream from batch ``first`` on, carrying
        ``.resume_at`` too) and ``.steps_per_epoch`` (the batches of one pass). False: pass 0.

    Returns
    -------
    tf.data.Dataset
        One pass.

    Examples
    --------
    >>> def one_pass(p, start):
    ...     idx = tf.data.Dataset.from_tensor_slices(pass_order(p, 5, 0, True)[start:]).batch(2)
    ...     first = p * 3 + start // 2
    ...     return tf.data.Dataset.zip((idx, tf.data.Dataset.range(first, (p + 1) * 3)))
    >>> ds = indexed_passes(5, 2, 0, one_pass, lambda d: d, training=True)
    >>> ds.steps_per_epoch, [int(b) for _, b in ds.resume_at(4).take(3)]
    (3, [4, 5, 6])
    """
    steps = -(-n // batch_size)

    def ended(ds):
        return finish(ds).prefetch(AUTOTUNE)

    if not training:
        return ended(one_pass(tf.constant(0, tf.int64), tf.constant(0, tf.int64)))

    def resume_at(first: int = 0):
        first = first_batch(first)
        p0, start = first // steps, (first % steps) * batch_size
        passes = tf.data.Dataset.counter(p0).flat_map(
            lambda p: one_pass(p, start * tf.cast(tf.equal(p, p0), tf.int64))
        )
        return attach(ended(passes), resume_at=resume_at, steps_per_epoch=steps)

    # iterated directly: one pass, another one on every iteration (as Keras reshuffles)
    key = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    ds = ended(key.flat_map(lambda r: one_pass(r % PASS_KEYS, tf.constant(0, tf.int64))))
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return attach(ds, resume_at=resume_at, steps_per_epoch=steps)


def _numbered(items, p, start, *, steps: int, batch_size: int):
    """Pass ``p``'s items from ``start`` on, batched, each batch with its index in the stream
    (``one_pass`` of :func:`indexed_passes`); the items first, so they are read to their end."""
    index = tf.data.Dataset.range(p * steps + start // batch_size, (p + 1) * steps)
    return tf.data.Dataset.zip((items.batch(batch_size), index))


def _index_batches(n: int, batch_size: int, seed: int, shuffle: bool):
    """``one_pass`` of :func:`indexed_passes` for images in memory: the images' indices."""
    steps = -(-n // batch_size)

    def one_pass(p, start):
        idx = tf.data.Dataset.from_tensor_slices(pass_order(p, n, seed, shuffle)[start:])
        return _numbered(idx, p, start, steps=steps, batch_size=batch_size)

    return one_pass


def _gathered(ds, data):
    """Pairs ``(indices, b)`` -> ``(batch of arrays, b)``; ``data``: the arrays, repeated."""
    return tf.data.Dataset.zip((ds, data)).map(
        no_autograph(lambda ib, d: (tuple(tf.gather(a, ib[0]) for a in d), ib[1])),
        num_parallel_calls=AUTOTUNE,
    )


def array_batches(arrays: tuple, *, batch_size: int, seed: int, shuffle: bool = True):
    """Batches of in-memory arrays as a function of ``seed`` and their index (``.resume_at``).

    Parameters
    ----------
    arrays : tuple of array_like
        ``(x, y[, w])``, the same length ``N``.
    batch_size : int
        Samples per batch.
    seed : int
        Seed of the order of every pass.
    shuffle : bool, optional
        Shuffle every pass. Default True.

    Returns
    -------
    tf.data.Dataset
        One pass of batches ``(x, y[, w])``, with ``.resume_at`` and ``.steps_per_epoch``
        (see :func:`indexed_passes`).

    Examples
    --------
    >>> ds = array_batches((np.arange(5.0), np.arange(5)), batch_size=2, seed=0)
    >>> ds.steps_per_epoch, sorted(int(v) for b in ds.resume_at(3).take(3) for v in b[1])
    (3, [0, 1, 2, 3, 4])
    """
    n = len(arrays[0])
    data = tf.data.Dataset.from_tensors(tuple(arrays)).repeat()
    return indexed_passes(
        n,
        batch_size,
        seed,
        _index_batches(n, batch_size, seed, shuffle),
        lambda ds: _gathered(ds, data).map(lambda batch, b: batch),
        training=True,
    )


def memory_pipeline(x, y, *, size, batch_size, shuffle, seed, aug, training=True):
    """Batches gathered from in-memory tensors (the Keras numpy-array path, plus augmentation);
    random crops and augmentation seeded by the batch index (:func:`indexed_passes`)."""
    n = len(x)
    crop = x.shape[1:3] != tuple(size)
    random_crop = crop and aug is not None and aug.get("crop", True)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    def finish(ds):
        def prepare(xy, b):
            x, y = xy
            if crop:
                x = batch_crop(x, size, seed=stateless_seed(seed, b, CROP) if random_crop else None)
            if aug is not None:
                x, y = augment_seeded((x, y), stateless_seed(seed, b, AUGMENT), aug)
            return x, y

        return _gathered(ds, data).map(no_autograph(prepare), num_parallel_calls=AUTOTUNE)

    one_pass = _index_batches(n, batch_size, seed, shuffle)
    return indexed_passes(n, batch_size, seed, one_pass, finish, training=training)


def lazy_pipeline(
    paths, y, *, prep, channels, batch_size, shuffle, seed, aug, cache_file, training=True
):
    """Files decoded in parallel by numpy workers (optionally kept in a TF cache file).

    Without a cache file, pass ``p`` decodes the files in the order of :func:`pass_order`, each
    cropped at random by its place in the stream. A cache file is read in its own order (a
    shuffle of the files by the seed when ``shuffle``): pass ``p`` crops its images (by their
    place) and shuffles them in blocks of :data:`BLOCK_IMAGES`, the blocks starting at a place
    drawn for the pass, all seeded by ``(seed, p)``.
    """
    n = len(paths)
    h, w = prep.size
    paths = list(paths)
    labels = tf.constant(np.asarray(y))
    crops = aug is not None and aug.get("crop", True) and prep.policy in ("crop", "auto")
    # a cache file keeps what was decoded: the whole images, cropped at random after it
    # (QA: the cache had frozen one centre crop while the dataset recorded random crops)
    crop_cached = crops and cache_file is not None
    steps = -(-n // batch_size)

    def load(i, slot):
        path = paths[int(i)]
        try:
            x = prep.read(path, finite=True)  # all NaN: not learnt silently as zeros
            if crop_cached:
                x = prep.fit(x, keep_larger=True)
            elif crops:
                x = prep.random_fit(x, [seed, CROP, int(slot)])
            else:
                x = prep.fit(x)
        except Exception as exc:  # validated up front; last-resort fallback
            warnings.warn(
                f"{path}: could not be decoded during training ({reason(exc)}); "
                "a zero image was used instead",
                SciconvWarning,
                stacklevel=1,
            )
            x = np.zeros((h, w, channels), np.float32)
        return np.ascontiguousarray(x, dtype=np.float32)

    step = NumpyStep(load)  # held by the datasets only, not by TensorFlow (QA: leaked)

    def decode(i, slot):
        x = step([i, slot], tf.float32)
        x.set_shape((None, None, channels) if crop_cached else (h, w, channels))
        return x, tf.gather(labels, i)

    def batches(items, p, start):
        return _numbered(items, p, start, steps=steps, batch_size=batch_size)

    if cache_file is None:

        def one_pass(p, start):
            items = tf.data.Dataset.from_tensor_slices(
                (
                    pass_order(p, n, seed, shuffle)[start:],
                    p * n + tf.range(start, n, dtype=tf.int64),
                )
            )
            items = items.map(no_autograph(decode), num_parallel_calls=AUTOTUNE, deterministic=True)
            return batches(items, p, start)

    else:
        # a cache being written is this process's (a killed run's lockfile is cleared) and its
        # folder is writable with room for it: checked now, not as TF errors mid-epoch (QA)
        hold = hold_cache(cache_file, need_bytes=n * h * w * channels * 4)
        # the files in an order of the seed's (the cache file's name records the seed)
        order = np.random.default_rng([seed, BLOCK_ORDER]).permutation(n) if shuffle else range(n)
        cached = tf.data.Dataset.from_tensor_slices(np.asarray(order, np.int64))
        cached = cached.map(
            no_autograph(lambda i: decode(i, tf.constant(0, tf.int64))),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        ).cache(os.fspath(cache_file))
        block = int(max(1, min(n, BLOCK_IMAGES, BLOCK_BYTES // (h * w * channels * 4))))

        def crop(xy, slot):
            s = stateless_seed(seed, slot, CROP)
            return tf.image.stateless_random_crop(xy[0], (h, w, channels), s), xy[1]

        def mix(parts, k, p):
            perm = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(parts[0])[0], dtype=tf.int64),
                seed=stateless_seed(seed, p * (math.ceil(n / block) + 1) + k, BLOCK_ORDER),
            )
            return tuple(tf.gather(t, perm) for t in parts)

        def blocks_of(items, p):
            """The pass's images shuffled in blocks that start at a place drawn per pass (after
            that many placeholders, left out after the shuffle): which images share a block
            changes from pass to pass (review: fixed blocks mixed the same images every epoch)."""
            spec = items.element_spec
            if not all(t.shape.is_fully_defined() for t in spec):  # no placeholder to make
                blocks = tf.data.Dataset.zip((items.batch(block), tf.data.Dataset.counter()))
                return blocks.map(no_autograph(lambda xy, k: mix(xy, k, p))).unbatch()
            start = tf.random.stateless_uniform(
                [], stateless_seed(seed, p, BLOCK_START), 0, block, dtype=tf.int64
            )
            blank = (*(tf.zeros(t.shape, t.dtype) for t in spec), tf.constant(False))
            marked = items.map(lambda *xy: (*xy, tf.constant(True)))
            both = tf.data.Dataset.from_tensors(blank).repeat(start).concatenate(marked)
            blocks = tf.data.Dataset.zip((both.batch(block), tf.data.Dataset.counter()))
            items = blocks.map(no_autograph(lambda xyr, k: mix(xyr, k, p))).unbatch()
            return items.filter(lambda *xyr: xyr[-1]).map(lambda *xyr: xyr[:-1])

        def one_pass(p, start, _hold=hold):  # every dataset drawn from it holds the lock
            items = cached
            if crop_cached:  # (item, slot): the item first, so the cache is read to its end
                slots = tf.data.Dataset.range(p * n, (p + 1) * n)
                items = tf.data.Dataset.zip((items, slots)).map(no_autograph(crop))
            if shuffle:
                items = blocks_of(items, p)
            return batches(items.skip(start), p, start)

    def finish(ds):
        if aug is None:
            return ds.map(lambda batch, b: batch)
        return ds.map(
            no_autograph(
                lambda batch, b: augment_seeded(batch, stateless_seed(seed, b, AUGMENT), aug)
            ),
            num_parallel_calls=AUTOTUNE,
        )

    ds = step.kept_by(indexed_passes(n, batch_size, seed, one_pass, finish, training=training))
    if cache_file is not None and hold is not None:
        ds._sciconv_cache_hold = hold  # released when the dataset (and those drawn from it) go
    return ds


#: A TensorFlow cache file's own files beside its prefix ``{name}``: the shards a first pass
#: writes (``{name}_0.lockfile``, ``{name}_0.data-00000-of-00001.tempstate123``, ...) and the
#: merged files while they are written.
_TF_CACHE_PART = r"(?:_\d+)?\.(?:lockfile|index|data-\d+-of-\d+)(?:\.tempstate\d+)?"
_HOLDS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_HOLDS_LOCK = threading.Lock()


class _CacheHold:
    """This process's lock on a cache file being written; released when no dataset holds it
    (or at exit)."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.release = weakref.finalize(self, stack.close)


def cache_lock_name(cache_file: str | os.PathLike) -> str:
    """The name of the lock file beside a cache file prefix, in its folder.

    Examples
    --------
    >>> cache_lock_name("/data/cache/galaxies.0123456789ab.train")
    '.galaxies.0123456789ab.train.lock'
    """
    return f".{Path(cache_file).name}.lock"


def hold_cache(cache_file: str | os.PathLike, *, need_bytes: int = 0) -> _CacheHold | None:
    """Lock the TensorFlow cache file ``cache_file`` for this process while it is written.

    TensorFlow's ``{cache_file}_0.lockfile`` holds no process id: a run killed in its first pass
    left it, and every later run failed with TensorFlow's AlreadyExistsError (QA). A sciconv
    lock beside it (``.{name}.lock``, with the pid: :func:`~sciconv._workdir_lock.lock_folder`)
    tells a live writer from a dead one: taken, the dead run's TensorFlow files of this prefix
    are removed; held by a live process, the cache is refused. Taking it is also the check that
    the folder is writable, and its free space is checked against ``need_bytes``. A cache
    already complete (its ``.index`` written) is only read: nothing is locked.

    Parameters
    ----------
    cache_file : str or os.PathLike
        The prefix given to ``tf.data.Dataset.cache``.
    need_bytes : int, optional
        The least the cache will take (its images as float32).

    Returns
    -------
    object or None
        The hold: the lock is released when it is garbage collected (keep it with the
        datasets that write the cache); None for a complete cache.

    Raises
    ------
    DatasetError
        Another live process writes this cache (or one on another host: the message names the
        lock file to delete if it is dead).
    WriteError
        The cache folder is not writable or has not ``need_bytes`` free.

    Examples
    --------
    >>> import os, tempfile
    >>> prefix = os.path.join(tempfile.mkdtemp(), "c.0123.train")
    >>> hold = hold_cache(prefix)
    >>> sorted(os.listdir(os.path.dirname(prefix)))
    ['.c.0123.train.lock']
    >>> del hold
    >>> os.listdir(os.path.dirname(prefix))
    []
    """
    prefix = Path(cache_file)
    if Path(f"{prefix}.index").is_file():  # complete: TensorFlow only reads it
        return None
    key = os.path.realpath(prefix)
    with _HOLDS_LOCK:
        hold = _HOLDS.get(key)
        if hold is not None and hold.release.alive:  # another dataset of this process's
            return hold
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(
                lock_folder(prefix.parent, name=cache_lock_name(prefix), what="cache",
                            busy=DatasetError)
            )  # fmt: skip
        except DatasetError as err:
            raise DatasetError(
                f"{err.message} (another cache= path, or cache=False)", path=prefix
            ) from err
        except WriteError as err:
            cause = err.__cause__
            why = getattr(cause, "strerror", None) or (type(cause).__name__ if cause else "")
            raise WriteError(
                f"cannot write the cache file in {prefix.parent} ({why or err.message}); pass "
                "cache= a path in a writable folder, or cache=False",
                path=prefix,
            ) from err
        hold = _HOLDS[key] = _CacheHold(stack)
    try:
        _remove_dead_cache_parts(prefix)
        check_cache_room(prefix, need_bytes)
    except BaseException:
        with _HOLDS_LOCK:
            _HOLDS.pop(key, None)
        hold.release()
        raise
    return hold


def _remove_dead_cache_parts(prefix: Path) -> None:
    """Remove TensorFlow's files of an unfinished cache ``prefix`` (its lock is held now, so
    their writer is dead: a run killed in its first pass)."""
    part = re.compile(re.escape(prefix.name) + _TF_CACHE_PART)
    try:
        names = os.listdir(prefix.parent)
    except OSError:
        return
    for name in names:
        if part.fullmatch(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(prefix.parent / name)


def attach(ds, **attrs):
    """Set the Python attributes a returned dataset carries (``.class_names``, ...)."""
    for key, value in attrs.items():
        setattr(ds, key, value)
    global _built
    _built = True  # close_iterators has iterators to look for at exit
    return ds


_built = False


def close_iterators() -> None:
    """At exit, once a dataset was built: free the tf.data iterators still alive.

    A script that ends holding an iterator (``batch = next(it)`` with ``it = iter(ds)`` at
    module level) hung for ever at exit (4 of 4 runs over a ``from_pairs`` dataset): Python
    frees the iterator only while finalizing, when TensorFlow's threads can no longer enter
    Python to finish the ``numpy_function`` calls in flight (they exit instead), and the
    iterator's destructor waits for them. Here, before finalizing, each live iterator's
    resource is released while those calls can still finish. Called at exit by ``sciconv``'s
    own handler, registered on ``import sciconv``: the exit handlers a program registers after
    importing sciconv run before it, their iterators still working.
    """
    if not _built:
        return
    for obj in gc.get_objects():
        try:  # the handle is private to TensorFlow's OwnedIterator: dropping it frees it
            if isinstance(obj, tf.data.Iterator) and "_iterator_resource" in vars(obj):
                del obj._iterator_resource
        except Exception:  # an object that refuses isinstance or vars: not an iterator
            continue


def fingerprint(paths, *parts, labels=None) -> str:
    """Names a cache file after the files (path, size, mtime), the settings and the labels
    (the cache holds them beside the images: a corrected catalog read the old ones back)."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        # surrogateescape: a name that is not UTF-8 is its bytes (a UTF-8 one as before)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    h.update(repr(parts).encode())
    if labels is not None:
        labels = np.ascontiguousarray(labels)
        h.update(f"{labels.dtype.str}{labels.shape}".encode())
        h.update(labels.tobytes())
    return h.hexdigest()[:12]
