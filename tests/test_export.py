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
    # how to pad sides that are not multiples of the divisor: reflect, centred (predict_tiled's)
    assert json.loads(props["divisor"]) == 4
    assert json.loads(props["padding"])["before"] == "(padded - size) // 2"
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
    # fuzzing QA: ONNX bytes were written into a file named .keras
    with pytest.raises(ConfigError, match=r"m\.keras: format='onnx' writes an ONNX file"):
        sc.models.export(segmenter, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


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


@pytest.fixture
def mixed_bfloat16():
    """The global policy sciconv.devices.configure() sets on bfloat16 hardware, then restored."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


@pytest.mark.parametrize("kind", ["segmenter", "classifier"])
def test_a_mixed_bfloat16_model_exports_as_its_float32_copy(tmp_path, mixed_bfloat16, kind):
    """A model built after configure() chose mixed_bfloat16 was refused ("unsupported type:
    tensor(bfloat16)") with a hint blaming random ops and wrappers."""
    from sciconv.inference._precision import float32_model

    if kind == "segmenter":
        model = sc.models.segmenter((None, None, 1), num_classes=3, depth=2, filters=4)
        shape = (2, 24, 40, 1)
    else:
        model = sc.models.classifier((16, 16, 1), 3, filters=(4, 8), dense=(8,), batch_norm=True)
        shape = (4, 16, 16, 1)
    assert model.layers[2].compute_dtype == "bfloat16"
    path = sc.models.export(model, tmp_path / f"{kind}.onnx")
    proto = onnx.load(str(path))
    assert onnx.TensorProto.BFLOAT16 not in {t.data_type for t in proto.graph.initializer}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    reference = float32_model(model)  # the float32 Keras model, same weights
    assert {layer.compute_dtype for layer in reference.layers[1:]} == {"float32"}
    np.testing.assert_allclose(got, np.asarray(reference(x, training=False)), atol=1e-5)
    # and the mixed model itself agrees to bfloat16 precision
    np.testing.assert_allclose(got, np.asarray(model(x, training=False)), atol=0.05)
    assert model.layers[2].compute_dtype == "bfloat16"  # the caller's model is left alone
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["sciconv"]) == sc.models.get_metadata(model)


def test_the_refusal_names_the_op_that_does_not_convert(tmp_path):
    seg = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2, dropout=0.2)
    wrapper = sc.inference.uncertainty_model(seg, "mc_dropout")
    with pytest.raises(ModelError, match=r"op StatelessRandomUniform\w* has no ONNX equivalent"):
        sc.models.export(wrapper, tmp_path / "mc.onnx")
    assert not list(tmp_path.iterdir())
