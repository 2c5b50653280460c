"""A long-running notebook or service process (QA): caches follow the model's metadata, let the
model go, and the automatic precision is recorded with the other automatic decisions."""

from __future__ import annotations

import gc
import weakref

import numpy as np

import sciconv as sc
from sciconv.inference import _precision


def _segmenter():
    return sc.models.segmenter((None, None, 1), num_classes=3, depth=2, filters=4)


def _image():
    return np.random.default_rng(0).normal(100.0, 10.0, (32, 32)).astype(np.float32)


def test_predict_uncertainty_follows_set_metadata():
    """The per-model wrapper kept the metadata of the first call: after set_metadata the next
    call returned exactly the old output (mean map 0.99 off a fresh model's)."""
    model = _segmenter()
    image = _image()
    before = sc.inference.predict_uncertainty(model, image, method="tta", progress=False)
    sc.models.set_metadata(model, normalization={"method": "minmax"})
    after = sc.inference.predict_uncertainty(model, image, method="tta", progress=False)
    fresh = sc.models.segmenter((None, None, 1), num_classes=3, depth=2, filters=4)
    fresh.set_weights(model.get_weights())
    sc.models.set_metadata(fresh, normalization={"method": "minmax"})
    want = sc.inference.predict_uncertainty(fresh, image, method="tta", progress=False)
    for got, ref in zip(after, want):
        np.testing.assert_allclose(got, ref, atol=1e-5)
    assert not np.allclose(before[0], after[0], atol=1e-3)


def test_models_given_to_predict_uncertainty_are_freed():
    """A weak-key cache of wrappers that each hold their model kept every model alive (QA: 20
    reloads of the pretrained model, 19 MiB each)."""
    model = _segmenter()
    sc.inference.predict_uncertainty(model, _image(), method="tta", progress=False)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_the_automatic_precision_is_a_recorded_decision():
    model = _segmenter()
    with sc.inference.decisions() as decided:
        sc.inference.predict_tiled(model, _image(), precision="auto", progress=False)
    assert decided["precision"] in ("float32 (auto)", "bfloat16 (auto)") or decided[
        "precision"
    ].endswith("(auto: SCICONV_PRECISION)")


def test_a_damaged_precision_decision_is_replaced(monkeypatch, tmp_path):
    monkeypatch.setenv("SCICONV_DATA_DIR", str(tmp_path))
    path = _precision.decision_file("some architecture")
    path.parent.mkdir(parents=True)
    path.write_text("bfloa\n")
    assert _precision._keep_decision("some architecture", "float32") == "float32"
    assert path.read_text().strip() == "float32"
