"""Reproducibility QA (``/tmp/qa47/repro``): what the automatic settings decided, the input,
the software stack and the model's identity are recorded in the products, by the command line
and the API route, without making an identical rerun look different to ``--skip-existing``."""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import sciconv as sc
from sciconv import inference, io, postprocess
from sciconv._cli_predict_batch import differing_setting
from sciconv._cli_predict_history import model_identity
from sciconv._cli_predict_options import add_predict_parser
from sciconv.inference._decisions import note_decision, note_transform, trial
from sciconv.postprocess import (
    comment_regions,
    input_record,
    model_digest,
    software_record,
)
from sciconv.preprocess._transform import InputTransform

ROOT = Path(__file__).resolve().parents[1]
NUCLEI = sorted((ROOT / "data/real/nuclei/images").glob("*"))


def _net(seed: int = 0):
    """A tiny segmenter, named as a fresh process names it (two trainings: the same names)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 1), name="image")
    conv = keras.layers.Conv2D(2, 1, activation="softmax", name="conv")
    return keras.Model(inputs, conv(inputs), name="net")


def _blobs():
    image = np.zeros((48, 48), np.float32)
    image[4:12, 4:12] = 5
    image[20:28, 18:30] = 5
    return image


# ------------------------------------------------------------------ 1. the decision log
def test_decisions_log_records_what_auto_decided_and_nothing_without_a_log():
    net = _net()
    with inference.decisions() as decided:
        inference.predict_instances(net, _blobs(), normalize=None, progress=False)
    assert decided["scale"] == "1 (auto)"
    assert decided["brightness"] == decided["denoise"] == "none (auto)"
    inference.predict_instances(net, _blobs(), normalize=None, progress=False)  # no log: fine
    with inference.decisions() as outer:
        with inference.decisions() as inner:
            note_decision("scale", "2 (auto)")
        with trial():  # a crop's trial: not kept
            note_decision("denoise", "gaussian 1 px (auto)")
    assert inner == outer == {"scale": "2 (auto)"}


def test_decisions_log_is_per_thread():
    seen = {}

    def other():
        with inference.decisions() as mine:
            note_decision("scale", "3 (auto)")
        seen.update(mine)

    with inference.decisions() as decided:
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        note_decision("scale", "1 (auto)")
    assert decided == {"scale": "1 (auto)"} and seen == {"scale": "3 (auto)"}


def test_blockwise_decides_once_for_the_whole_image():
    with inference.decisions() as decided:
        inference.predict_instances(_net(), _blobs(), normalize=None, progress=False, block=16)
    assert decided["scale"] == "1 (auto)" and decided["denoise"] == "none (auto)"


def test_input_transform_flip_is_recorded():
    """The pretrained model's brightfield flip (QA: products mentioned neither transform nor
    decision)."""
    net = sc.models.attach_metadata(_net(), input_transform={"invert": "auto"})
    bright = np.full((32, 32), 200.0, np.float32)
    bright[8:16, 8:16] = 20
    with inference.decisions() as decided:
        inference.predict_instances(net, bright, progress=False)
    assert decided["input_transform"] == "flipped about 200 (auto)"
    with inference.decisions() as decided:
        inference.predict_instances(net, 200 - bright, progress=False)
    assert decided["input_transform"] == "not flipped (auto)"
    colour = InputTransform(to_gray=False, to_rgb=True, flip_at=231.0, gains=(1.0, 1.02, 1.1),
                            black_padding=True)  # fmt: skip
    with inference.decisions() as decided:
        note_transform(colour, {"to_rgb": True, "invert": "auto"})
    assert decided["input_transform"] == (
        "flipped about 231, white balance gains 1/1.02/1.1, black padding as no data (auto)"
    )


@pytest.mark.skipif(not NUCLEI, reason="needs the bundled real nuclei images")
@pytest.mark.filterwarnings("ignore::sciconv.errors.SciconvWarning")  # the resampling's
def test_cli_records_the_resampling_decision_and_skip_existing_accepts_it(tmp_path, capsys):
    """QA: big8x.tif said scale = 'auto' while the labels came from a resampling by 0.185
    (here real nuclei shrunk to 0.4x, under the training size: resampled by about 2.75)."""
    from _helpers import run_cli
    from skimage.transform import rescale

    small = rescale(io.read(NUCLEI[0]).data[..., 0].astype(np.float32), 0.4, order=1)
    enlarged = tmp_path / "small.tif"
    io.write(enlarged, small.astype(np.float32))
    out = tmp_path / "out"
    args = ("predict", "pretrained:nuclei", enlarged, "--out", out, "--precision", "float32")
    code, _, err = run_cli(capsys, *args, "--quiet")
    assert code == 0, err
    history = Table.read(out / "small_catalog.ecsv").meta["HISTORY"]
    scale = next(line for line in history if line.startswith("  scale = "))
    assert "(auto: objects " in scale and float(scale.split("'")[1].split()[0]) > 2
    assert any(line.startswith("  denoise = '") and "(auto" in line for line in history)
    digest = hashlib.sha256(enlarged.read_bytes()).hexdigest()
    assert f"sciconv input {enlarged.resolve()} sha256:{digest}" in history
    assert any(line.startswith("sciconv stack: python ") for line in history)
    assert "  background = 'auto'" in history
    # an identical rerun, its command rebuilt from HISTORY ('auto' parses): skipped
    code, stdout, err = run_cli(capsys, *args, "--skip-existing", "--tile", "auto",
                                "--scale", "auto")  # fmt: skip
    assert code == 0, err
    assert "skipped, its products exist" in stdout


# ------------------------------------------------------------------ 2. the API route
def test_api_route_records_model_settings_decisions_and_input(tmp_path):
    net = _net()
    path = io.write(tmp_path / "cells.fits", _blobs())
    image = io.read(path)
    settings = dict(scale="auto", denoise="auto", brightness="auto", normalize=None)
    with inference.decisions() as decided:
        labels, prob = inference.predict_instances(
            net, image, return_prob=True, progress=False, **settings
        )
    paths = postprocess.write_products(
        tmp_path / "out", prob=prob, labels=labels, like=image, model=net,
        params=settings, decisions=decided,
    )  # fmt: skip
    with fits.open(paths["labels"]) as hdul:
        history = [str(h) for h in hdul[0].header["HISTORY"]]
    text = " ".join(history)
    assert f"sciconv prediction with model {net.name}" in history
    assert f"model_id = '{model_digest(net)}'" in text
    assert "  scale = '1 (auto)'" in history and "  denoise = 'none (auto)'" in history
    assert "sciconv input" in text and "sha256:" in text and "sciconv stack:" in text


# ------------------------------------------------------------------ 3, 4. input and stack
def test_input_record_hashes_the_file_and_names_large_ones(tmp_path):
    f = tmp_path / "a.fits"
    f.write_bytes(b"x" * 1000)
    assert (
        input_record(f) == f"sciconv input {f} sha256:{hashlib.sha256(f.read_bytes()).hexdigest()}"
    )
    assert "not hashed, over" in input_record(f, limit=100)
    assert input_record(tmp_path).endswith("(a folder: not hashed)")


def test_software_record_names_versions_device_and_onednn(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    line = software_record()
    for name in ("tensorflow ", "keras ", "numpy ", "astropy ", "CPU "):
        assert name in line
    assert line.endswith("TF_ENABLE_ONEDNN_OPTS=0")


# ------------------------------------------------------------------ --skip-existing
def test_skip_existing_compares_settings_as_asked(tmp_path):
    lines = [
        "sciconv prediction with model m.keras",
        "  scale = '0.185 (auto: objects 97.8 px)'",
        "  denoise = 'gaussian 1 px (auto: median object SNR 4.85 < 5.56)'",
        "  input_transform = 'flipped about 241 (auto)'",
        "sciconv stack: whatever",
    ]
    product = io.write(tmp_path / "a_labels.fits", np.zeros((4, 4), np.int32), history=lines)
    wanted = ["sciconv prediction with model m.keras", "  scale = 'auto'", "  denoise = 'auto'",
              "  background = 'auto'"]  # fmt: skip
    assert differing_setting(product, wanted) is None
    wanted[1] = "  scale = 0.5"
    assert "scale" in differing_setting(product, wanted)


# ------------------------------------------------------------------ 7. model identity
def test_model_id_is_the_content_not_the_file_bytes(tmp_path):
    a, b = tmp_path / "a" / "best.keras", tmp_path / "b" / "best.keras"
    for target in (a, b):
        target.parent.mkdir()
        _net(seed=1).save(target)
    ids = [model_identity(p, shipped=False, model=keras.models.load_model(p)) for p in (a, b)]
    assert ids[0] == ids[1] and ids[0].startswith("sha256:")
    other = _net(seed=1)
    other.layers[-1].kernel.assign(other.layers[-1].kernel * 2)
    assert model_digest(other) != ids[0]
    assert model_identity(Path("pretrained:nuclei"), shipped=True).startswith("sciconv ")


# ------------------------------------------------------------------ 8. 'auto' parses
def test_every_setting_recorded_as_auto_parses():
    parser = argparse.ArgumentParser()
    add_predict_parser(parser.add_subparsers())
    args = parser.parse_args(["predict", "m.keras", "a.fits", "--out", "o", "--tile", "auto",
                              "--scale", "auto", "--block-margin", "auto", "--overlap", "auto",
                              "--object-size", "auto", "--precision", "auto"])  # fmt: skip
    assert (args.tile, args.scale, args.block_margin) == (None, None, None)


# ------------------------------------------------------------------ 9. GeoJSON, regions
def test_geojson_and_regions_carry_the_provenance(tmp_path):
    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 2:6] = 1
    lines = ["sciconv prediction with model m.keras", "  scale = '1 (auto)'"]
    provenance = {"software": "sciconv", "history": lines}
    out = postprocess.write_geojson(labels, tmp_path / "a.geojson", properties=provenance)
    data = json.loads(out.read_text())
    assert data["properties"]["history"] == lines and len(data["features"]) == 1
    assert postprocess.geojson_to_labels(out, (16, 16)).max() == 1
    regions = pytest.importorskip("regions")
    reg = postprocess.write_regions(postprocess.measure(labels), tmp_path / "a.reg")
    comment_regions(reg, [*lines, software_record()])  # "; CPU ...": no region of its own
    text = reg.read_text().splitlines()
    assert text[1:3] == [
        "# sciconv prediction with model m.keras",
        "# sciconv   scale = '1 (auto)'",
    ]
    assert len(regions.Regions.read(str(reg), format="ds9")) == 1


# ------------------------------------------------------------------ 10. VOTable
def test_votable_provenance_survives_table_read(tmp_path):
    table = postprocess.with_provenance(
        Table({"label": [1]}), ["sciconv prediction with model m.keras"], source="/d/a.fits"
    )
    vot = postprocess.write_catalog(table, tmp_path / "a.vot")
    description = Table.read(vot).meta["description"]
    assert "INPUT = a.fits" in description and "model m.keras" in description


def test_with_provenance_takes_a_str_as_one_history_line():
    # fuzzing QA: "my step" became HISTORY = ['m', 'y', ' ', 's', ...]
    table = Table({"label": [1]}, meta={"HISTORY": "before"})
    out = postprocess.with_provenance(table, "my step")
    assert out.meta["HISTORY"] == ["before", "my step"]
    assert postprocess.with_provenance(table, None).meta["HISTORY"] == "before"
    assert table.meta["HISTORY"] == "before"  # the input table is not changed


# ------------------------------------------------------------------ 11. OME-TIFF bytes
def test_ome_tiff_products_are_byte_identical(tmp_path):
    labels = np.arange(64, dtype=np.int32).reshape(8, 8)
    a = io.write(tmp_path / "a.ome.tif", labels, history=["x"])
    b = io.write(tmp_path / "b.ome.tif", labels, history=["x"])
    assert a.read_bytes() == b.read_bytes()
    c = io.write(tmp_path / "c.ome.tif", labels + 1, history=["x"])
    assert a.read_bytes()[-2000:] != c.read_bytes()[-2000:]


def test_mosaic_products_record_the_whole_images_decisions(tmp_path):
    """Block-wise ("decided once for the whole image"): the labels store and the catalog."""
    path = io.write(tmp_path / "m.fits", _blobs())
    outs = inference.predict_mosaic(
        _net(), path, tmp_path / "out", block=16, normalize=None, progress=False, geojson=True
    )
    history = Table.read(outs["catalog"]).meta["HISTORY"]
    assert "  scale = '1 (auto)'" in history and "  denoise = 'none (auto)'" in history
    assert any(line.startswith(f"sciconv input {path.resolve()} sha256:") for line in history)
    geo = json.loads(outs["geojson"].read_text())
    assert geo["properties"]["history"] == history
