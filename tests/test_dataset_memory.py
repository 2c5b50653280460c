"""Datasets rebuilt in a long-lived process (a notebook cell run again, a service building one
per request) free what they read once they are dropped (QA long-lived finding 1).

TensorFlow keeps every ``tf.numpy_function`` callable alive in its process-wide default graph;
``from_pairs``' callables closed over the decoded images, targets and bad-pixel maps, so each
rebuild kept another copy for good (6 rebuilds of 60 DSB2018 pairs: +94 MiB each). The numpy
steps are now held by the datasets only (``sciconv.datasets._numpy_steps``).
"""

from __future__ import annotations

import gc
import shutil
import tracemalloc
import warnings
import weakref

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from sciconv import datasets  # noqa: E402
from sciconv.datasets import _images, _pairs  # noqa: E402
from sciconv.datasets._numpy_steps import NumpyStep  # noqa: E402


@pytest.fixture
def nuclei(data_dir):
    """The bundled real fluorescence images (15, 6.7 MiB decoded) and their labels."""
    src = data_dir / "real" / "nuclei"
    return src / "images", src / "labels"


@pytest.fixture
def classes(data_dir, tmp_path):
    """Two class folders of the bundled cell images (for from_folder)."""
    for k, p in enumerate(sorted((data_dir / "cells" / "images").iterdir())):
        (tmp_path / "ab"[k % 2]).mkdir(exist_ok=True)
        shutil.copy(p, tmp_path / "ab"[k % 2] / p.name)
    return tmp_path


@pytest.fixture
def scans(monkeypatch):
    """Weak references to what every from_pairs build decoded (its ``Scan``: the images)."""
    refs = []

    def spied(*args, **kwargs):
        scanned = real(*args, **kwargs)
        refs.append(weakref.ref(scanned))
        return scanned

    real = _pairs.scan
    monkeypatch.setattr(_pairs, "scan", spied)
    return refs


@pytest.fixture
def preps(monkeypatch):
    """Weak references to the ``FilePrep`` of every lazily decoded from_folder split."""
    refs = []

    def spied(*args, **kwargs):
        refs.append(weakref.ref(kwargs["prep"]))
        return real(*args, **kwargs)

    real = _images.lazy_pipeline
    monkeypatch.setattr(_images, "lazy_pipeline", spied)
    return refs


def _pairs_dataset(nuclei, **kw):
    img, lab = nuclei
    kw = {"patch_size": 32, "validation_split": 0.2, "seed": 0, "batch_size": 4, **kw}
    return datasets.from_pairs(img, lab, **kw)


def _batches(ds, n):
    return [[t.numpy() for t in batch] for batch in ds.take(n)]


def _live(refs):
    gc.collect()
    return [r for r in refs if r() is not None]


@pytest.mark.parametrize("patch_size", [32, None])
def test_dropped_pairs_dataset_frees_its_images(nuclei, scans, patch_size):
    train, val = _pairs_dataset(nuclei, patch_size=patch_size, augment=True)
    assert scans[0]().arrays is not None  # decoded into memory (the cache this is about)
    _batches(train, 2), _batches(val, 2), _batches(train.resume_at(5), 1)
    it = iter(train)
    next(it)
    del train
    assert len(_live(scans)) == 1  # the iterator still reads it
    del val, it
    assert _live(scans) == []


def test_dropped_lazy_pairs_and_folder_datasets_free_their_data(nuclei, classes, scans, preps):
    """Read lazily (``cache=False``, a cache file), the numpy steps hold the file list and the
    preparation: freed with the datasets too."""
    train, val = _pairs_dataset(nuclei, cache=False)
    assert scans[0]().arrays is None
    for cache in (False, classes / "cache"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny cell images, class sizes: not the point here
            f_train, f_val = datasets.from_folder(
                classes, image_size=32, validation_split=0.25, batch_size=4, cache=cache
            )
        _batches(f_train, 2), _batches(f_val, 1), _batches(train, 1), _batches(val, 1)
    assert len(preps) == 4 and len(_live(preps)) == 2  # every split decoded lazily
    del train, val, f_train, f_val
    assert _live(scans) == [] and _live(preps) == []


def test_rebuilds_do_not_grow_memory(nuclei, scans):
    """A cell run again five times holds one build's data at most (before: all of them)."""

    def build():
        train, val = _pairs_dataset(nuclei)
        _batches(train, 1), _batches(val, 1)
        return train

    train = build()  # TensorFlow's own one-off allocations (kernels, tracing caches)
    data = sum(a.nbytes for a in scans[0]().arrays if a is not None)
    del train
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            build()
            gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert data > 6 * 2**20 and grown < data / 2, (grown, data)
    assert _live(scans) == []


def test_kept_datasets_keep_working_after_gc(nuclei):
    """Only the dataset holds its numpy steps: a dataset kept in a variable (or one drawn from
    it, an iterator) still reads the same batches after the others are dropped."""
    expected = _pairs_dataset(nuclei, augment=True)
    want = _batches(expected[0].resume_at(3), 2), _batches(expected[1], 3)
    del expected
    train, val = _pairs_dataset(nuclei, augment=True)
    resumed, it = train.resume_at(3), iter(val)
    del train, val
    gc.collect()
    got = _batches(resumed, 2), [[t.numpy() for t in next(it)] for _ in range(3)]
    for a, b in zip([*want[0], *want[1]], [*got[0], *got[1]]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_a_step_freed_under_a_running_graph_says_so():
    """A dataset rebuilt from its graph (a variant tensor) that outlives the Python datasets
    cannot call a freed step: a clear error, not a crash or a silent wrong batch."""

    def cloned():
        step = NumpyStep(lambda v: v * 2)
        ds = step.kept_by(tf.data.Dataset.range(3).map(lambda i: step([i], tf.int64)))
        assert [int(v) for v in ds] == [0, 2, 4]
        return tf.data.experimental.from_variant(ds._variant_tensor, ds.element_spec), step

    clone, step = cloned()
    held = weakref.ref(step)
    del step
    gc.collect()
    assert held() is None  # only the dataset held it
    with pytest.raises(tf.errors.OpError, match=r"dataset step .*<lambda> was freed"):
        list(clone)
