"""Dask: block-wise prediction with ``map_overlap``, unchanged on a ``dask.distributed`` cluster.

The settings are resolved once, for the whole image, and travel to the blocks as a frozen
:class:`PredictionSettings` with the normalization limits; the model travels as its ``.keras``
file (:class:`ModelHandle`), loaded once per worker process with :func:`sciconv.models.load`.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
import warnings
import weakref
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from sciconv._warnings import caught
from sciconv.errors import InferenceError, SciconvWarning
from sciconv.inference._core import predict_array
from sciconv.inference._model import Runner
from sciconv.inference._settings import PredictionSettings, check_overlap
from sciconv.inference._source import Source, compute_limits
from sciconv.inference._tiles import round_up


class ModelHandle:
    """A picklable reference to a Keras model: its ``.keras`` file, loaded once per process.

    Workers load the file with :func:`sciconv.models.load` (its safety checks, ``trust`` as given),
    so a model holding a Lambda layer reaches a process-based scheduler only with ``trust=True``;
    without it the worker raises :class:`~sciconv.errors.InferenceError` saying so (a threaded
    scheduler uses the in-memory model and needs no reload).

    Examples
    --------
    >>> import pickle, keras
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    >>> handle = pickle.loads(pickle.dumps(ModelHandle(model)))
    >>> handle.get() is model  # same process: the live model, nothing reloaded
    True
    """

    _live: ClassVar[weakref.WeakValueDictionary] = weakref.WeakValueDictionary()
    _loaded: ClassVar[dict] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: keras.Model, *, trust: bool = False):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            try:
                with caught() as quiet:  # TensorFlow's variables under NumPy 2: one
                    # DeprecationWarning per weight ("__array__ ... copy keyword"), not ours
                    quiet.filterwarnings(
                        "ignore", message=r"__array__ implementation doesn't accept a copy"
                    )
                    model.save(path)
            except Exception as err:  # unregistered custom layers, unserializable config
                raise InferenceError(
                    f"model {model.name!r} cannot be saved as .keras to ship it to dask workers "
                    f"({type(err).__name__}: {err}); register its custom layers with "
                    "keras.saving.register_keras_serializable"
                ) from err
            self.payload = path.read_bytes()
        self.name = model.name
        self.trust = bool(trust)
        self.key = hashlib.sha256(self.payload).hexdigest() + (":trusted" if trust else "")
        ModelHandle._live[self.key] = model

    @classmethod
    def from_path(cls, path, *, trust: bool = False) -> ModelHandle:
        """A handle carrying a ``.keras`` file as it is on disk (checked by loading it here)."""
        from sciconv.models import load

        model = load(path, trust=trust, compile=False)
        handle = cls.__new__(cls)
        handle.payload = Path(path).read_bytes()
        handle.name = model.name
        handle.trust = bool(trust)
        handle.key = hashlib.sha256(handle.payload).hexdigest() + (":trusted" if trust else "")
        ModelHandle._live[handle.key] = model
        return handle

    def __getstate__(self):
        return {"payload": self.payload, "key": self.key, "name": self.name, "trust": self.trust}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def get(self) -> keras.Model:
        model = ModelHandle._live.get(self.key) or ModelHandle._loaded.get(self.key)
        if model is not None:
            return model
        with ModelHandle._lock:
            if self.key not in ModelHandle._loaded:
                ModelHandle._loaded[self.key] = self._load()
            return ModelHandle._loaded[self.key]

    def _load(self) -> keras.Model:
        from sciconv.errors import UnsafeModelError
        from sciconv.models import load

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            path.write_bytes(self.payload)
            try:
                return load(path, trust=self.trust, compile=False)
            except UnsafeModelError as err:
                raise InferenceError(
                    f"model {self.name!r} cannot be loaded in a dask worker process: {err}. "
                    "Workers load the model file with sciconv.models.load's safety checks; "
                    "if you trust the model, pass trust=True (predict_instances_blocks), or run "
                    "dask with a threaded scheduler (dask.config.set(scheduler='threads')), "
                    "which uses the model in memory"
                ) from err


def _block(
    block, *, handle, settings: PredictionSettings, limits, margin: int, grid, block_info=None
):
    """Predict one block of a dask array (with its margins) and trim the margins off."""
    info = block_info[0]  # boundary="none": no margin beyond the image edges
    # the block's tiles on the whole image's divisor grid (``grid``: the chunks along y and x)
    offset = [
        sum(chunks[:loc]) - (margin if loc > 0 else 0)
        for chunks, loc in zip(grid, info["chunk-location"][:2], strict=True)
    ]
    s = settings.within(offset, [sum(c) for c in grid])
    # as in the numpy path: a block smaller than the tile gets a tile of its own size
    s = s.fit_to(block.shape[:2])
    source = Source(block, promote=False, path=None)
    out = np.zeros((*block.shape[:2], s.outputs), dtype=np.float32)
    predict_array(Runner(handle.get()), source, s, limits, out, progress=False)
    if margin == 0:
        return out
    trim = []
    for axis in (0, 1):
        loc, num = info["chunk-location"][axis], info["num-chunks"][axis]
        lo = margin if loc > 0 else 0
        hi = block.shape[axis] - (margin if loc < num - 1 else 0)
        trim.append(slice(lo, hi))
    return out[trim[0], trim[1]]


def predict_dask(model: keras.Model, image, s: PredictionSettings, *, path, stacklevel: int):
    """A lazy ``(H, W, K)`` dask array of the predictions of ``image`` (a dask array)."""
    import dask.array as da

    if image.ndim == 2:
        image = image[..., None]
    image = image.rechunk({2: -1}).astype(np.float32)
    h, w, _ = (int(v) for v in image.shape)
    limits = compute_limits(Source(image, promote=False, path=path), s.normalization)
    check_overlap(model, s, (h, w), stacklevel=stacklevel + 1)
    depth = round_up(max(s.overlap, 1), s.divisor) if s.overlap else 0
    if depth and min(min(c) for c in image.chunks[:2]) <= depth:  # blocks must exceed margins
        from dask.array.overlap import ensure_minimum_chunksize

        image = image.rechunk(
            {a: ensure_minimum_chunksize(depth + 1, image.chunks[a]) for a in (0, 1)}
        )
    # one tile size for every block (traced once): the largest block with its margins, on the
    # divisor grid wherever it falls
    s = s.fit_to([max(c) + 2 * depth + s.divisor for c in image.chunks[:2]])
    return da.map_overlap(
        _block,
        image,
        depth={0: depth, 1: depth, 2: 0},
        boundary="none",
        trim=False,
        dtype=np.float32,
        chunks=(image.chunks[0], image.chunks[1], (s.outputs,)),
        meta=np.empty((0, 0, 0), dtype=np.float32),
        handle=ModelHandle(model),
        settings=s,
        limits=limits,
        margin=depth,
        grid=tuple(tuple(int(n) for n in c) for c in image.chunks[:2]),
    )


#: Memory a dask worker needs for TensorFlow and a model like the pretrained nuclei one (measured:
#: 1.9-2.0 GiB a worker, most of it TensorFlow's, never given back) before it pauses at 80 % of
#: its limit: :func:`worker_results` says so for workers with less.
WORKER_MEMORY = 3 * 2**30
#: Seconds between looks at the workers while a block result is awaited, and how many looks in
#: a row must find every worker paused before the run is given up.
_PATIENCE_S = 30.0
_PAUSED_LOOKS = 3


def worker_results(scheduler, futures, *, patience: float = _PATIENCE_S):
    """The results of ``futures`` in order, each released once taken; refusing to wait forever.

    A ``dask.distributed`` worker pauses at 80 % of its memory limit and never resumes when
    TensorFlow holds that memory: with 2 GB workers every block waited, silently, for ever
    (QA: 9 minutes, no progress, no error). Workers below :data:`WORKER_MEMORY` get a warning
    before the blocks are sent, and while a result is awaited the workers are looked at every
    ``patience`` seconds: when every one is paused three looks in a row, the blocks not run are
    cancelled and an :class:`~sciconv.errors.InferenceError` names their limits and the fix.
    """
    limits = _worker_field(scheduler, "memory_limit")
    small = {a: m for a, m in limits.items() if m and m < WORKER_MEMORY}
    if small:
        warnings.warn(
            f"dask workers with memory limits of {_gib(min(small.values()))}: TensorFlow and the "
            f"model take about 2 GiB a worker and dask pauses one at 80 % of its limit; give "
            f"them at least {_gib(WORKER_MEMORY)} (LocalCluster(memory_limit='3GiB'))",
            SciconvWarning,
            stacklevel=4,
        )
    from distributed import TimeoutError as DaskTimeout

    for k, future in enumerate(futures):
        stuck = 0  # looks in a row at workers all paused (one may be a pause they leave)
        while True:
            try:
                result = future.result(timeout=patience)
                break
            except (DaskTimeout, TimeoutError):
                statuses = [str(s) for s in _worker_field(scheduler, "status").values()]
                stuck = stuck + 1 if statuses and all(s == "paused" for s in statuses) else 0
                if stuck >= _PAUSED_LOOKS:
                    with contextlib.suppress(Exception):  # the blocks not run: not left queued
                        scheduler.cancel(futures[k:])
                    raise InferenceError(
                        f"every dask worker ({len(statuses)}) is paused for memory (limits "
                        f"{', '.join(_gib(m) for m in limits.values())}) "
                        "and no block can finish: TensorFlow and the model take about 2 GiB "
                        f"a worker; give them at least {_gib(WORKER_MEMORY)} "
                        "(LocalCluster(memory_limit='3GiB')), or fewer workers with more memory"
                    ) from None
        future.release()
        yield result


def _worker_field(scheduler, key: str) -> dict:
    """``key`` (``memory_limit``, ``status``) of every worker, by address; empty when the
    scheduler does not say (not a distributed Client, or no answer)."""
    try:
        workers = _workers(scheduler)
    except Exception:
        return {}
    return {a: w.get(key) for a, w in workers.items()}


def _workers(scheduler) -> dict:
    try:  # every worker (some releases list 5 by default)
        return scheduler.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # a release without the argument
        return scheduler.scheduler_info()["workers"]


def _gib(n) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "none"
