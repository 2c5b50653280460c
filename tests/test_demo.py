"""Tests for ``sciconv.demo`` (and ``sciconv demo``): the promised outputs, its data, its parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli

from sciconv import demo


@pytest.mark.slow
def test_demo_fast_writes_promised_files(capsys, tmp_path):
    from astropy.table import Table

    from sciconv import io

    out = tmp_path / "demo"
    code, stdout, err = run_cli(capsys, "demo", "--fast", "--out", out)
    assert code == 0, err
    for name in ("galaxy_classifier.keras", "nuclei_segmenter.keras", "sky_detector.keras"):
        assert (out / "models" / name).stat().st_size > 0
    for name in (
        "galaxy_curves.png", "galaxy_confusion.png", "galaxy_gradcam.png", "cells_curves.png",
        "cells_overlay.png", "sky_field.png", "sky_catalog.png", "real_nuclei_overlay.png",
    ):  # fmt: skip
        assert (out / "plots" / name).read_bytes()[:4] == b"\x89PNG"
    prob = io.read(out / "predictions" / "sky_field_prob.fits")
    assert prob.wcs is not None and prob.wcs.has_celestial
    # the products' convention: the full class cube, its planes named by CLASSi cards
    assert prob.shape[-1] == 2
    assert (prob.header["CLASS0"], prob.header["CLASS1"]) == ("sky", "source")
    np.testing.assert_allclose(prob.data.sum(axis=-1), 1.0, atol=1e-4)
    assert "sky_detector.keras" in " ".join(str(h) for h in prob.header["HISTORY"])
    labels = io.read(out / "predictions" / "sky_field_labels.fits")
    assert labels.wcs is not None and labels.shape == (*prob.shape[:2], 1)
    cat = Table.read(out / "predictions" / "sky_catalog.ecsv")
    assert {"ra", "dec"} <= set(cat.colnames) and len(cat) > 0
    assert list((out / "predictions").glob("cells_*_labels.tif"))
    assert list((out / "predictions").glob("real_nuclei_*_labels.tif"))
    metrics = json.loads((out / "metrics.json").read_text())
    report = (out / "report.md").read_text()
    g, c, s, r = (metrics[k] for k in ("galaxies", "cells", "sky", "real_nuclei"))
    for value in (g["accuracy"], c["iou"], c["ap50"], s["completeness"], s["purity"], r["ap50"]):
        assert 0.0 <= value <= 1.0
    # the report and the printed headline carry the same numbers as metrics.json
    for text in (report, stdout):
        assert f"accuracy {g['accuracy']:.3f}" in text
        assert f"AP@0.5 {c['ap50']:.3f}" in text
        assert f"completeness {s['completeness']:.3f}" in text
        assert f"AP@0.5 {r['ap50']:.3f}" in text
    for link in ("plots/galaxy_confusion.png", "plots/sky_field.png", "plots/cells_overlay.png"):
        assert f"]({link})" in report
    # every file the demo wrote is listed, and exists
    assert all(Path(f).is_file() for f in metrics["files"])
    # the pretrained model segments real nuclei far better than chance
    assert r["ap50"] > 0.5
    # ... brightfield ones too (colour / grey, passed as read), reported the same way
    b = r["brightfield"]
    assert b["n_images"] == 4 and b["ap50"] > 0.3
    for text in (report, stdout):
        assert f"AP@0.5 {b['ap50']:.3f}" in text
    # a second run refuses before any work, naming the folder and the flag
    code, _, err = run_cli(capsys, "demo", "--fast", "--out", out)
    assert code == 1
    assert_one_line_error(err, str(out), "--overwrite")


def test_demo_missing_data_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "--data", tmp_path / "nodata", "--out", tmp_path / "o")
    assert code == 1
    assert_one_line_error(err, "nodata", "bundled data folder not found")
    (tmp_path / "partial").mkdir()
    code, _, err = run_cli(capsys, "demo", "--data", tmp_path / "partial", "--out", tmp_path / "o")
    assert code == 1
    assert_one_line_error(err, "galaxies", "missing")


def test_demo_public_names():
    assert sorted(demo.__all__) == ["DATA_PARTS", "DemoSettings", "find_data", "headline", "run"]
    assert demo.find_data().name == "data" and (demo.find_data() / "galaxies").is_dir()
    assert set(demo.DATA_PARTS) >= {"galaxies", "sky", "real_nuclei_images"}
    assert demo.DemoSettings.fast().sky_steps < demo.DemoSettings.full().sky_steps


def test_demo_refuses_a_folder_holding_an_earlier_demo(tmp_path):
    from sciconv.demo._output import prepare_out
    from sciconv.errors import OutputExistsError

    (tmp_path / "report.md").write_text("old")
    with pytest.raises(OutputExistsError, match=r"already holds demo outputs \(report.md\)"):
        prepare_out(tmp_path, overwrite=False)
    prepare_out(tmp_path, overwrite=True)
    assert (tmp_path / "predictions").is_dir() and (tmp_path / "report.md").read_text() == "old"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="must be a folder"):
        prepare_out(tmp_path / "file", overwrite=True)


def test_demo_pairs_compressed_fits_images_with_tiff_masks(tmp_path):
    """The demo pairs images and masks by the datasets rule: "a.fits.gz" goes with "a.tif"."""
    from sciconv import io
    from sciconv.demo._cells import _split_pairs
    from sciconv.errors import DatasetError

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("a", "b", "c", "d"):
        io.write(tmp_path / "images" / f"{name}.fits.gz", np.zeros((8, 8), np.float32))
        tifffile.imwrite(tmp_path / "masks" / f"{name}.tif", np.zeros((8, 8), np.int32))
    train, test = _split_pairs(tmp_path / "images", tmp_path / "masks", seed=0)
    pairs = sorted(train + test)
    assert [(p.name, m.name) for p, m in pairs] == [
        (f"{n}.fits.gz", f"{n}.tif") for n in ("a", "b", "c", "d")
    ]
    assert len(test) == 1 and len(train) == 3
    (tmp_path / "masks" / "d.tif").unlink()
    missing = r"d\.fits\.gz has no mask: expected a file with stem 'd'"
    with pytest.raises(DatasetError, match=missing):
        _split_pairs(tmp_path / "images", tmp_path / "masks", seed=0)


def test_demo_real_nuclei_part_without_brightfield_samples(tmp_path, data_dir):
    """An own --data folder with real/nuclei but no real/nuclei_brightfield: the brightfield
    score is left out, not an error; the real/nuclei pairs are found by the stem rule."""
    import shutil

    from sciconv import io
    from sciconv.demo._output import Writer
    from sciconv.demo._real_nuclei import run_real_nuclei

    src = data_dir / "real" / "nuclei"
    real = tmp_path / "real" / "nuclei"
    (real / "images").mkdir(parents=True)
    (real / "labels").mkdir()
    names = sorted(p.name for p in (src / "images").glob("*.tif"))[:2]
    for name in names:
        shutil.copy(src / "images" / name, real / "images" / name)
        shutil.copy(src / "labels" / name, real / "labels" / name)
    shutil.copy(src / "labels" / names[0], real / "labels" / "orphan.tif")  # no image: left out
    paths = {"real_nuclei_images": real / "images", "real_nuclei_labels": real / "labels"}
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    (out / "predictions").mkdir()
    writer = Writer(out, overwrite=False)
    result = run_real_nuclei(paths, demo.DemoSettings.fast(), writer, lambda *a: None)
    assert result["n_images"] == 2 and 0.5 < result["ap50"] <= 1.0
    assert "brightfield" not in result
    # the labels went through the one product writer: named by the stem rule, int32 TIFF
    (labels,) = (f for f in writer.files if f.name.endswith("_labels.tif"))
    assert labels.name == f"real_nuclei_{io.image_stem(names[0])[:12]}_labels.tif"
    assert io.read(labels).meta["dtype"] == "int32"


def test_sky_training_set_centres_patches_on_sources():
    """The sky part trains on the one foreground-centred sampler (datasets.patches)."""
    from sciconv.demo._sky import _sky_training_set

    settings = demo.DemoSettings.fast()
    ds = _sky_training_set(settings, patch=32, batch=8)
    assert ds.class_names == ["sky", "source"] and ds.normalization == {"method": "zscale"}
    n = settings.sky_steps * 8
    x, y = (np.asarray(t) for t in next(iter(ds.unbatch().batch(n))))
    assert x.shape == (n, 32, 32, 1) and y.shape == (n, 32, 32) and y.dtype == np.int32
    assert set(np.unique(y)) <= {0, 1}
    with_source = y.reshape(n, -1).any(axis=1).mean()
    assert with_source >= 0.5  # centred ones all hold a source, uniform ones some
    # the same seed gives the same patches
    again = _sky_training_set(settings, patch=32, batch=8).unbatch().batch(n)
    x2 = np.asarray(next(iter(again))[0])
    np.testing.assert_array_equal(np.sort(x.ravel()), np.sort(x2.ravel()))
