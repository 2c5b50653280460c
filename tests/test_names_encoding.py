"""Names that are not UTF-8 (latin-1 bytes, as Python's surrogate escapes) and control
characters in names: hashing, training, ONNX export, errors and the CLI's lines (QA round 53)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from _helpers import latin1_path
from PIL import Image

import sciconv as sc
from sciconv._cli_common import say
from sciconv._cli_predict_plan import expand_inputs
from sciconv._fit_split import describe_split
from sciconv.datasets._pipelines import fingerprint
from sciconv.datasets._scan import stable_order
from sciconv.errors import InvalidImageError, SciconvWarning, name_text


def _png(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((16, 16)) * 255).astype("u1")).save(path, format="PNG")


def test_name_text_escapes_the_bytes_and_keeps_utf8_names():
    assert name_text(os.fsdecode(b"/data/caf\xe9.fits")) == "/data/caf\\xe9.fits"
    assert name_text("Größe 観測 🔭.fits") == "Größe 観測 🔭.fits"
    assert name_text(Path("a\nb.fits")) == "a\nb.fits"  # kept unless asked
    assert name_text("a\nb\x1b.fits", controls=True) == "a\\nb\\x1b.fits"
    assert name_text("🧑\u200d🔬 a b", controls=True) == "🧑\u200d🔬 a b"  # emoji joiner kept


def test_stable_order_hashes_a_latin1_key_as_its_bytes_and_utf8_keys_as_before():
    keys = ["spiral/g1.png", "Größe/観測.png"]
    before = [int.from_bytes(hashlib.sha256(f"7:{k}".encode()).digest()[:8], "big") for k in keys]
    assert stable_order(keys, 7).tolist() == before  # existing splits unchanged
    odd = "spiral/" + os.fsdecode(b"caf\xe9.png")
    want = int.from_bytes(hashlib.sha256(b"7:spiral/caf\xe9.png").digest()[:8], "big")
    assert stable_order([odd], 7).tolist() == [want]


def test_split_digest_and_cache_fingerprint_take_latin1_names(tmp_path):
    plain = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "Größe.png")]
    names = "a/x.png\nb/Größe.png"
    out = describe_split(type("D", (), {"file_paths": plain})())
    assert out["training_sha"] == hashlib.sha256(names.encode()).hexdigest()[:16]  # as before
    odd = [plain[0], os.fsdecode(os.fsencode(tmp_path) + b"/b/caf\xe9.png")]
    out = describe_split(type("D", (), {"file_paths": odd})())
    assert out["training_sha"] == hashlib.sha256(b"a/x.png\nb/caf\xe9.png").hexdigest()[:16]
    path = latin1_path(tmp_path, b"caf\xe9.png")
    Path(path).write_bytes(b"x")
    assert len(fingerprint([path], "a")) == 12
    assert fingerprint([path], "a") != fingerprint([path], "b")


def test_from_folder_splits_a_folder_holding_a_latin1_name(tmp_path):
    root = tmp_path / "galaxies"
    for c, cls in enumerate(("spiral", "elliptical")):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            _png(root / cls / f"g{i}.png", 10 * c + i)
    odd = latin1_path(root / "spiral", b"caf\xe9.png")
    os.rename(root / "spiral" / "g0.png", odd)
    train, val = sc.datasets.from_folder(root, image_size=16, validation_split=0.2, seed=0)
    every = [*train.file_paths, *val.file_paths]
    assert odd in every and len(every) == 10


def _tiny_fit(workdir, **kw):
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 16, 16, 1)).astype("f4"), rng.integers(0, 2, 8)
    m = sc.models.classifier(input_shape=(16, 16, 1), num_classes=2, filters=(4,), dense=(4,))
    sc.models.set_metadata(m, normalization=sc.preprocess.RAW_NORMALIZATION)
    sc.training.fit(m, (x, y), epochs=1, workdir=workdir, verbose=0, batch_size=8, **kw)
    return json.loads((Path(workdir) / "config.json").read_text())


def test_fit_tensorboard_under_a_latin1_folder_writes_logs_by_a_relative_path(
    tmp_path, monkeypatch
):
    project = Path(latin1_path(tmp_path, b"Projet_caf\xe9"))
    project.mkdir()
    monkeypatch.chdir(project)  # the workdir given absolute, as an API user does
    config = _tiny_fit(project / "run")
    assert config["status"] == "finished"
    assert any((project / "run" / "logs").rglob("events.out.tfevents.*"))


def test_fit_tensorboard_under_a_latin1_folder_warns_and_trains_without_logs(tmp_path, monkeypatch):
    project = Path(latin1_path(tmp_path, b"Projet_caf\xe9"))
    project.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.warns(SciconvWarning, match=r"only UTF-8 file names.*Projet_caf\\xe9"):
        config = _tiny_fit(project / "run")
    assert config["status"] == "finished"
    assert sorted(os.listdir(project / "run")) == [
        "best.keras",
        "config.json",
        "last.keras",
        "log.csv",
    ]


def test_onnx_export_to_a_latin1_folder_is_written_and_checked(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("tf2onnx")
    folder = Path(latin1_path(tmp_path, b"mod\xe8les"))
    folder.mkdir()
    m = sc.models.classifier(input_shape=(16, 16, 1), num_classes=2, filters=(4,), dense=(4,))
    out = sc.models.export(m, folder / "m.onnx")
    assert os.listdir(folder) == ["m.onnx"]
    onnx.checker.check_model(onnx.load(os.fspath(out)))


def test_sciconv_error_about_a_latin1_name_encodes_and_keeps_its_path(tmp_path):
    path = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.fits")
    with pytest.raises(InvalidImageError) as info:
        sc.io.read(path)
    text = str(info.value)
    text.encode("utf-8")  # printable in a strict UTF-8 locale, a log file
    assert "caf\\xe9.fits: file not found" in text
    assert info.value.path == path  # the name to open, as given


def test_say_escapes_latin1_bytes_and_line_breaks_in_names(capsys):
    say(os.fsdecode(b"data/caf\xe9.fits:"), "0 objects -> new\nline_labels.fits")
    assert capsys.readouterr().out == "data/caf\\xe9.fits: 0 objects -> new\\nline_labels.fits\n"


def test_predict_inputs_do_not_warn_about_a_sub_folder_given_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "night2").mkdir(parents=True)
    _png(tmp_path / "data" / "a.png", 0)
    _png(tmp_path / "data" / "night2" / "b.png", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        found = expand_inputs(["data", "data/night2/"])
    assert [p.name for p in found] == ["a.png", "b.png"]
    with pytest.warns(SciconvWarning, match="sub-folder.s. night2 not searched"):
        expand_inputs(["data"])  # not given: still said
