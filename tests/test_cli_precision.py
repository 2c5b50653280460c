"""``sciconv predict --precision`` reaches the model call, on whole images and block by block."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import run_cli

import sciconv as sc
from sciconv.inference import _model, _precision


@pytest.fixture()
def spy(monkeypatch):
    """Record each bfloat16 rebuild the tile runner asks for."""
    calls = []

    def rebuild(model):
        calls.append(model.name)
        return _precision.bfloat16_model(model)

    monkeypatch.setattr(_model, "bfloat16_model", rebuild)
    return calls


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_precision")
    sc.models.segmenter((None, None, 1), depth=1, filters=2).save(root / "seg.keras")
    tifffile.imwrite(
        root / "im.tif", np.random.default_rng(0).normal(size=(40, 40)).astype(np.float32)
    )
    return root


@pytest.mark.parametrize("extra", [(), ("--block", "16")], ids=["whole", "blocks"])
def test_bfloat16_is_used_only_when_asked(capsys, seg, spy, tmp_path, extra):
    args = ("predict", seg / "seg.keras", seg / "im.tif", "--tile", "32", "--overlap", "18")
    code, _, err = run_cli(capsys, *args, "--out", tmp_path / "f", "--precision", "float32", *extra)
    assert code == 0, err
    assert spy == []
    code, _, err = run_cli(
        capsys, *args, "--out", tmp_path / "b", "--precision", "bfloat16", *extra
    )
    assert code == 0, err
    assert spy  # the model ran rebuilt in bfloat16
    written = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "f").iterdir())


def test_unknown_precision_is_a_usage_error(capsys, seg, tmp_path):
    code, _, err = run_cli(
        capsys, "predict", seg / "seg.keras", seg / "im.tif", "--out", tmp_path, "--precision",
        "float16",
    )  # fmt: skip
    assert code == 2
    assert "float16" in err and "bfloat16" in err  # names the bad value and the choices
