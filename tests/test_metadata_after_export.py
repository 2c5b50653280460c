"""Exporting a model does not change it: its metadata stay plain JSON after an ONNX export.

QA: Keras' ONNX export walks the model's trackable tree and wrapped the metadata layer's nested
dicts in TensorFlow ``_DictWrapper`` objects, in place; ``json.dumps(get_metadata(model))``, a
later ``export_bioimageio`` and a second ONNX export of the same model then failed.
"""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

import sciconv as sc
from sciconv.models import get_metadata, metadata_layer, set_metadata
from sciconv.models.layers import SciconvMetadata

NESTED = {
    "normalization": {"method": "percentile", "low": 1.0, "high": 99.8},
    "postprocess": {"threshold": 0.5},
    "class_names": ["background", "interior", "boundary"],
    "notes": {"sample": {"id": 3, "tags": [{"a": 1}, "b"]}, "empty": {}},
}


def _plain_types(value, where="metadata") -> None:
    """Fail naming the entry when ``value`` holds anything but exact JSON types."""
    if isinstance(value, dict):
        assert type(value) is dict, f"{where} is a {type(value).__name__}"
        for key, item in value.items():
            assert type(key) is str, f"{where} key {key!r}"
            _plain_types(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        assert type(value) is list, f"{where} is a {type(value).__name__}"
        for i, item in enumerate(value):
            _plain_types(item, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), (
            f"{where} is a {type(value).__name__}"
        )


def _model():
    model = sc.models.segmenter((None, None, 1), num_classes=3, depth=1, filters=4)
    set_metadata(model, **NESTED)
    return model


def test_onnx_export_leaves_metadata_plain_and_exports_again(tmp_path):
    pytest.importorskip("tf2onnx")
    onnx = pytest.importorskip("onnx")
    model = _model()
    before = get_metadata(model)
    config_before = json.dumps(model.get_config(), sort_keys=True)

    sc.models.export(model, tmp_path / "a.onnx")
    after = get_metadata(model)
    _plain_types(after)
    assert after == before
    assert json.loads(json.dumps(after)) == before
    assert json.dumps(model.get_config(), sort_keys=True) == config_before
    _plain_types(metadata_layer(model).get_config()["metadata"])

    # the same model exported again, then packaged for BioImage.IO
    sc.models.export(model, tmp_path / "b.onnx")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "b.onnx")).metadata_props}
    assert json.loads(props["sciconv"]) == before
    pytest.importorskip("bioimageio.spec")
    from sciconv.models.bioimageio import export_bioimageio

    package = export_bioimageio(model, tmp_path / "seg.zip", onnx=True)
    with zipfile.ZipFile(package) as zf:
        assert {"rdf.yaml", "model.keras"} <= set(zf.namelist())
    export_bioimageio(model, tmp_path / "seg2.zip", onnx=True)  # twice: QA's second one failed
    sc.models.export(model, tmp_path / "c.onnx")
    assert get_metadata(model) == before
    _plain_types(get_metadata(model))


def test_metadata_is_untracked_and_changes_in_place_persist(tmp_path):
    model = _model()
    layer = metadata_layer(model)
    # Keras tracks nothing of it (TensorFlow's export wrapped what Keras tracked)
    assert type(layer.metadata) is dict and type(layer.metadata["notes"]) is dict
    assert "metadata" not in getattr(layer, "_tracked", [])
    # the stored dict is the layer's own: changes in place (as loading does) reach the file
    layer.metadata["extra"] = {"k": [1, 2]}
    assert get_metadata(model)["extra"] == {"k": [1, 2]}
    copy = get_metadata(model)
    copy["notes"]["sample"]["id"] = 99
    assert get_metadata(model)["notes"]["sample"]["id"] == 3
    model.save(tmp_path / "m.keras")
    loaded = sc.models.load(tmp_path / "m.keras")
    assert get_metadata(loaded) == get_metadata(model)
    _plain_types(get_metadata(loaded))
    clone = keras.models.clone_model(model)
    assert get_metadata(clone) == get_metadata(model)
    _plain_types(get_metadata(clone))
    x = np.ones((1, 8, 8, 1), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), x)


def test_config_round_trip_and_older_configs():
    """An older file's config holds the metadata as a dict: it loads as before."""
    old_config = {
        "name": "meta",
        "trainable": False,
        "dtype": "float32",
        "metadata": {"task": "segmentation", "divisor": 4, "normalization": {"method": "minmax"}},
    }
    layer = SciconvMetadata.from_config(old_config)
    assert layer.metadata == old_config["metadata"]
    config = layer.get_config()
    assert config["metadata"] == old_config["metadata"]
    _plain_types(config["metadata"])
    again = SciconvMetadata.from_config(config)
    assert again.get_config() == config
    layer.metadata = {"task": "classification", "shape": (1, 2)}  # assigned: checked, plain
    assert layer.metadata == {"task": "classification", "shape": [1, 2]}
    with pytest.raises(sc.errors.ModelError, match="'bad'"):
        layer.metadata = {"bad": object()}
