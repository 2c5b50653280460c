"""Untrusted ``.keras`` files (QA 53, finding 1): sciconv's own checks refuse what Keras 3.12
loads in safe mode, a TFSMLayer and an HDF5 weights file that reads other files."""

from __future__ import annotations

import io
import json
import zipfile

import h5py
import keras
import pytest

from sciconv.errors import ModelError, UnsafeModelError
from sciconv.models import loading


def _plain(tmp_path):
    inp = keras.Input((4,))
    path = tmp_path / "plain.keras"
    keras.Model(inp, keras.layers.Dense(16, name="d")(inp)).save(path)
    return path


def _rewrite(src, dst, **members):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, members.get(name, zin.read(name)))
    return dst


@pytest.fixture
def old_keras(monkeypatch):
    """Stand in for a Keras whose safe mode misses the case: it must never be reached."""

    def load_model(*args, **kwargs):
        raise AssertionError("Keras was asked to load the file")

    monkeypatch.setattr(keras.saving, "load_model", load_model)


def _weights_with(plain, build):
    """``plain``'s weights copied into a new HDF5 file, ``build(dst, name, obj)`` writing the
    Dense bias (``.../vars/1``)."""
    with zipfile.ZipFile(plain) as z:
        src = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as dst:

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                dst.require_group(name)
            elif name.endswith("vars/1"):
                build(dst, name, obj)
            else:
                dst.create_dataset(name, data=obj[()])

        src.visititems(copy)
    return buf.getvalue()


def test_tfsmlayer_refused_by_sciconv_itself(tmp_path, old_keras):
    plain = _plain(tmp_path)
    with zipfile.ZipFile(plain) as z:
        config = json.loads(z.read("config.json"))
    dense = next(x for x in config["config"]["layers"] if x["class_name"] == "Dense")
    dense.update(class_name="TFSMLayer", module="keras.layers", registered_name=None)
    dense["config"]["filepath"] = str(tmp_path / "savedmodel")
    bad = _rewrite(plain, tmp_path / "tfsm.keras", **{"config.json": json.dumps(config)})
    with pytest.raises(UnsafeModelError, match="TFSMLayer layer 'd'") as info:
        loading.load(bad)
    assert str(bad) in str(info.value)


def test_export_module_and_vocabulary_file_refused():
    assert "TFSMLayer" in loading._find_unsafe(
        {"class_name": "TFSMLayer", "module": "keras.src.export.tfsm_layer", "config": {}}
    )
    found = loading._find_unsafe(
        {"class_name": "StringLookup", "module": "keras.layers", "config": {"vocabulary": "/e"}}
    )
    assert "'/e'" in found
    listed = {"class_name": "StringLookup", "module": "keras.layers", "config": {"vocabulary": []}}
    assert loading._find_unsafe(listed) is None


@pytest.mark.parametrize("kind", ["external", "virtual", "softlink", "extlink"])
def test_weights_reading_other_files_refused(tmp_path, old_keras, kind):
    plain = _plain(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"API_KEY=hunter2".ljust(64, b"."))

    def build(dst, name, obj):
        if kind == "external":
            dst.create_dataset(name, shape=obj.shape, dtype=obj.dtype, external=[(secret, 0, 64)])
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=obj.shape, dtype=obj.dtype)
            layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "x", shape=obj.shape)
            dst.create_virtual_dataset(name, layout)
        elif kind == "softlink":
            dst[name] = h5py.SoftLink("/elsewhere")
        else:
            dst[name] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/x")

    weights = _weights_with(plain, build)
    bad = _rewrite(plain, tmp_path / f"{kind}.keras", **{"model.weights.h5": weights})
    said = {
        "external": "secret.txt",
        "virtual": "virtual",
        "softlink": "soft link",
        "extlink": "external link",
    }
    with pytest.raises(UnsafeModelError, match=said[kind]) as info:
        loading.load(bad)
    assert str(bad) in str(info.value) and "model.weights.h5" in str(info.value)


def test_plain_model_still_loads_and_keras_h5_refusal_is_unsafe(tmp_path):
    plain = _plain(tmp_path)
    model = loading.load(plain)
    assert model.get_layer("d").bias.shape == (16,)
    refusal = ValueError("Not allowed: H5 file with external Dataset: [('/x', 0, 64)]")
    assert loading._classify_keras_error(refusal) == "unsafe"


def test_unreadable_weights_named(tmp_path):
    plain = _plain(tmp_path)
    bad = _rewrite(plain, tmp_path / "junk.keras", **{"model.weights.h5": b"not hdf5" * 10})
    with pytest.raises(ModelError, match=r"model\.weights\.h5 is not an HDF5 file") as info:
        loading.load(bad)
    assert str(bad) in str(info.value)


def test_compressed_member_checked_too(tmp_path, old_keras):
    plain = _plain(tmp_path)
    secret = tmp_path / "s"
    secret.write_bytes(bytes(64))
    weights = _weights_with(
        plain,
        lambda dst, name, obj: dst.create_dataset(
            name, shape=obj.shape, dtype=obj.dtype, external=[(secret, 0, 64)]
        ),
    )
    bad = tmp_path / "deflated.keras"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            zout.writestr(name, weights if name == "model.weights.h5" else zin.read(name))
    with pytest.raises(UnsafeModelError, match="external dataset"):
        loading.load(bad)
