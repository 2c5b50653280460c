"""``sciconv predict --series N``: the image of a TIFF holding several (a plate well's
positions as an OME-TIFF's series) is recorded in the products' HISTORY as ``--hdu`` is, so
``--skip-existing`` refuses one position's products for another's, and the catalog says which
position it measured (QA 56).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli, threshold_model
from astropy.table import Table

from sciconv.errors import SciconvWarning
from sciconv.postprocess import read_catalog

SHAPE = (48, 48)
#: Where the spots of each position are: position k (0-based) holds k + 1 of them.
SPOTS = [(10, 10), (24, 30), (38, 14)]
NAMES = ["A01 field 1", "A01 field 2", "A01 field 3"]


def _field(k: int) -> np.ndarray:
    """Noise around 100 with ``k + 1`` Gaussian spots (sigma 2 px, peak 400)."""
    img = np.random.default_rng(k).normal(100.0, 1.0, SHAPE).astype(np.float32)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for cy, cx in SPOTS[: k + 1]:
        img += (400 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)).astype(np.float32)
    return img


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "thr.keras"
    threshold_model().save(path)
    return path


@pytest.fixture
def well(tmp_path):
    """A plate reader's well: one OME-TIFF, its three positions as series, named."""
    path = tmp_path / "A01.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        for k, name in enumerate(NAMES):
            tw.write(_field(k), metadata={"axes": "YX", "Name": name})
    return path


def _predict(capsys, model, *inputs_and_options):
    return run_cli(capsys, "predict", model, *inputs_and_options, "--background", "none")


def _history(path) -> list[str]:
    with tifffile.TiffFile(path) as tif:
        xml = tifffile.xml2dict(tif.ome_metadata) if tif.is_ome else {}
        image = xml.get("OME", {}).get("Image", {})
        image = image[0] if isinstance(image, list) else image
        if image:
            return str(image.get("Description") or "").splitlines()
        return list(tif.shaped_metadata[0].get("history", []))


def test_products_and_catalog_record_the_series(capsys, tmp_path, model, well):
    out = tmp_path / "o"
    code, _, err = _predict(capsys, model, well, "--out", out, "--series", "1")
    assert code == 0, err
    catalog = Table.read(out / "A01_catalog.ecsv")
    assert len(catalog) == 2  # position 2's two spots, not position 1's one
    assert "  series = 1" in catalog.meta["HISTORY"]  # as "  hdu = ('SCI', 2)" is
    assert "  series = 1" in _history(out / "A01_labels.ome.tif")


@pytest.mark.parametrize("before", [["--series", "1"], []], ids=["series1", "default"])
def test_skip_existing_refuses_another_series_products(capsys, tmp_path, model, well, before):
    out = tmp_path / "o"
    said = contextlib.nullcontext() if before else pytest.warns(SciconvWarning, match="3 images")
    with said:  # without --series: the first position, the others named
        code, _, err = _predict(capsys, model, well, "--out", out, *before)
    assert code == 0, err
    made = {p.name: p.read_bytes() for p in out.iterdir()}
    rows = len(Table.read(out / "A01_catalog.ecsv"))
    code, said, err = _predict(
        capsys, model, well, "--out", out, "--series", "2", "--skip-existing"
    )
    assert code != 0 and "skipped" not in said  # QA 56: "skipped, its products exist", exit 0
    recorded = before[1] if before else "not set"
    assert_one_line_error(err, "A01.ome.tif", f"series = {recorded} (this run: 2)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == made  # nothing written
    assert len(Table.read(out / "A01_catalog.ecsv")) == rows


def test_skip_existing_skips_the_same_series(capsys, tmp_path, model, well):
    out = tmp_path / "o"
    code, _, err = _predict(capsys, model, well, "--out", out, "--series", "2")
    assert code == 0, err
    code, said, err = _predict(
        capsys, model, well, "--out", out, "--series", "2", "--skip-existing"
    )
    assert code == 0, err
    assert "skipped, its products exist" in said + err
    assert len(Table.read(out / "A01_catalog.ecsv")) == 3  # position 3's three spots


def test_series_record_names_the_position(tmp_path, well):
    import argparse

    from sciconv._cli_predict_history import series_record

    def record(path, series):
        return series_record(path, argparse.Namespace(series=series))

    assert record(well, 1) == {"SERIES": 1, "SERIESNM": "A01 field 2"}
    assert record(well, -1) == {"SERIES": 2, "SERIESNM": "A01 field 3"}  # the index read
    assert record(well, None) == {"SERIES": 0, "SERIESNM": "A01 field 1"}  # read by default
    plain = tmp_path / "plain.tif"
    with tifffile.TiffWriter(plain) as tw:  # two unnamed series
        tw.write(np.zeros(SHAPE, np.uint8))
        tw.write(np.ones(SHAPE, np.uint8))
    assert record(plain, 1) == {"SERIES": 1}
    one = tmp_path / "one.tif"
    tifffile.imwrite(one, np.zeros(SHAPE, np.uint8))
    assert record(one, None) == {}  # one image: nothing to tell apart
    assert record(tmp_path / "a.fits", None) == {}
    gone = tmp_path / "gone.tif"
    assert record(gone, 1) == {"SERIES": 1}  # unreadable since: the index asked


@pytest.mark.parametrize("fmt", ["ecsv", "fits", "votable"])
def test_catalog_meta_names_the_position(capsys, tmp_path, model, well, fmt):
    out = tmp_path / "o"
    code, _, err = _predict(
        capsys, model, well, "--out", out, "--series", "1", "--catalog-format", fmt
    )
    assert code == 0, err
    (path,) = out.glob("A01_catalog.*")
    catalog = read_catalog(path)  # a VOTable's INFO elements back as meta
    assert int(catalog.meta["SERIES"]) == 1
    assert catalog.meta["SERIESNM"] == "A01 field 2"
