"""A base install (no extras, or zarr missing on Python 3.10) says what to install, before any
work, naming the file (packaging QA: block-wise runs of large images died with "unexpected
ModuleNotFoundError: No module named 'zarr'"; --format ome-zarr failed after segmenting the
first input, naming the hidden scratch folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import tomllib
from _helpers import assert_one_line_error, run_cli

from sciconv import inference, io
from sciconv.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]


def _no(monkeypatch, *modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_block_wise_labels_without_zarr_name_the_install(monkeypatch, tmp_path):
    _no(monkeypatch, "zarr")
    with pytest.raises(MissingDependencyError, match=r"pip install 'zarr>=3'") as err:
        inference.predict_instances_blocks(
            _tiny_model(), np.zeros((32, 32), np.float32), out=tmp_path / "l.zarr", block=16
        )
    assert "l.zarr" in str(err.value)
    assert not any(tmp_path.iterdir())  # no scratch left behind


def test_lazy_labels_without_zarr_name_the_install(monkeypatch, tmp_path):
    tifffile.imwrite(tmp_path / "l.tif", np.arange(12, dtype=np.uint16).reshape(3, 4))
    before = (tmp_path / "l.tif").read_bytes()
    _no(monkeypatch, "zarr")
    with pytest.raises(MissingDependencyError, match=r"l\.tif.*zarr >= 3"):
        io.read_labels(tmp_path / "l.tif", lazy=True)
    assert (tmp_path / "l.tif").read_bytes() == before
    assert io.read_labels(tmp_path / "l.tif").shape == (3, 4)  # the eager read needs none


def test_cli_ome_zarr_without_the_extra_fails_before_any_input(monkeypatch, capsys, tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((16, 16), np.uint8))
    before = (tmp_path / "a.tif").read_bytes()
    _no(monkeypatch, "ome_zarr", "ome_zarr.io")
    args = ("predict", "pretrained:nuclei", tmp_path / "a.tif", "--out", tmp_path / "out")
    code, _, err = run_cli(capsys, *args, "--format", "ome-zarr", "--quiet")
    assert code != 0
    assert_one_line_error(err, 'pip install "sciconv[ome]"')
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert (tmp_path / "a.tif").read_bytes() == before


def test_dependencies_cover_what_the_base_install_runs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {r.split(";")[0].split(">")[0].split("[")[0].strip() for r in project["dependencies"]}
    assert {"zarr", "requests", "keras"} <= base
    (keras,) = [r for r in project["dependencies"] if r.startswith("keras")]
    # 3.12: export(opset=) honoured; covers 3.7's ModelCheckpoint(double_checkpoint=) (QA floors)
    assert keras == "keras>=3.12"
    extras = project["optional-dependencies"]
    assert extras["all"] == ["sciconv[ome,onnx,napari,bioimageio,distributed]"]
    assert set(extras["all"][0][8:-1].split(",")) <= set(extras)
    assert (ROOT / "sciconv" / "py.typed").exists()


def _tiny_model():
    import keras

    from sciconv.models import attach_metadata

    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Conv2D(2, 1, activation="softmax")(inputs)
    return attach_metadata(keras.Model(inputs, outputs))
