"""sciconv.models.export: ONNX files that onnxruntime runs like Keras, with sciconv metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

import sciconv as sc  # noqa: E402
from sciconv.errors import ConfigError, ModelError, OutputExistsError  # noqa: E402


@pytest.fixture(scope="module")
def segmenter():
    model = sc.models.segmenter((None, None, 1), num_classes=3, depth=2, filters=4)
    sc.models.set_metadata(
        model,
        normalization={"method": "percentile", "low": 1.0, "high": 99.8},
        input_transform={"to_gray": True, "invert": "auto"},
        postprocess={"threshold": 0.5},
        class_names=["background", "interior", "boundary"],
    )
    return model


def test_onnx_matches_keras(tmp_path, segmenter):
    path = sc.models.export(segmenter, tmp_path / "seg.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    for shape in [(1, 32, 48, 1), (2, 24, 16, 1)]:  # any H, W multiple of the divisor
        x = rng.normal(size=shape).astype(np.float32)
        got = session.run(None, {name: x})[0]
        want = np.asarray(segmenter(x, training=False))
        assert got.shape == want.shape == (*shape[:3], 3)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_onnx_metadata_props(tmp_path, segmenter):
    path = sc.models.export(segmenter, tmp_path / "seg.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["task"] == "segmentation"
    assert props["sciconv_version"] == sc.__version__
    assert json.loads(props["normalization"]) == {"method": "percentile", "low": 1.0, "high": 99.8}
    assert json.loads(props["postprocess"]) == {"threshold": 0.5}
    # the step before normalization (RGB/grey, flipping bright backgrounds) has its own entry
    assert json.loads(props["input_transform"]) == {"to_gray": True, "invert": "auto"}
    assert json.loads(props["sciconv"]) == sc.models.get_metadata(segmenter)
    assert json.loads(props["class_names"])[1] == "interior"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["task"] == "segmentation"


def test_export_errors(tmp_path, segmenter):
    path = sc.models.export(segmenter, tmp_path / "a.onnx")
    with pytest.raises(OutputExistsError):
        sc.models.export(segmenter, path)
    with pytest.raises(ConfigError, match="format must be one of"):
        sc.models.export(segmenter, tmp_path / "b.onnx", format="tflite")
    with pytest.raises(ModelError, match=r"keras\.Model"):
        sc.models.export(object(), tmp_path / "c.onnx")


def test_an_unloadable_graph_is_refused_and_a_fresh_model_records_its_normalization(tmp_path):
    """export returned normally for an uncertainty wrapper onnxruntime could not load ("Invalid
    tensor data type 0"); a model that recorded no normalization had no normalization entry, so
    the README recipe fed raw pixels (0.50 off predict_tiled)."""
    seg = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2)
    wrapper = sc.inference.uncertainty_model(seg, "tta")
    with pytest.raises(ModelError, match=r"tta\.onnx: the ONNX graph .* is not valid"):
        sc.models.export(wrapper, tmp_path / "tta.onnx")
    assert not (tmp_path / "tta.onnx").exists() and not list(tmp_path.iterdir())
    path = sc.models.export(seg, tmp_path / "fresh.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["normalization"]) == sc.preprocess.DEFAULT_NORMALIZATION
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(1).gamma(2.0, 50.0, (32, 32)).astype(np.float32)
    x = sc.preprocess.normalize_spec(image[..., None], json.loads(props["normalization"]))
    got = session.run(None, {session.get_inputs()[0].name: x[None]})[0][0]
    want = sc.inference.predict_tiled(seg, image, progress=False, precision="float32")
    np.testing.assert_allclose(got, want, atol=1e-4)
