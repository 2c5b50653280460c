"""``sciconv predict --hdu all``: every science chip of a multi-chip FITS file (HST ``SCI,1`` to
``SCI,N``, DECam's CCD extensions) segmented as a job of its own, with products named by chip
(``NAME.SCI_2_labels.fits``), skipped, refused and failed per chip; other inputs as without
``--hdu``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from _helpers import assert_one_line_error, run_cli, threshold_model
from astropy.io import fits
from astropy.table import Table

from sciconv.errors import SciconvWarning

SHAPE = (48, 48)
#: Where the sources of each chip are: chip k (1-based) holds k of them.
SPOTS = [(10, 10), (24, 30), (38, 14)]


def _sky(seed: int, n: int) -> np.ndarray:
    """Noise around 100 with ``n`` Gaussian sources (sigma 2 px, peak 400)."""
    img = np.random.default_rng(seed).normal(100.0, 1.0, SHAPE).astype(np.float32)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for cy, cx in SPOTS[:n]:
        img += (400 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)).astype(np.float32)
    return img


def _flt(path, chips=(1, 2, 3), nan_chip=None):
    """An HST-like file: SCI, ERR, DQ per chip; chip k holds k sources; chip 3's DQ flags a
    corner; ``nan_chip``'s pixels are all NaN (a damaged chip)."""
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["TELESCOP"] = "HST"
    for ver in chips:
        sci = np.full(SHAPE, np.nan, np.float32) if ver == nan_chip else _sky(ver, ver)
        dq = np.zeros(SHAPE, np.int16)
        if ver == 3:
            dq[:4, -4:] = 4
        hdus += [
            fits.ImageHDU(sci, name="SCI", ver=ver),
            fits.ImageHDU(np.full(SHAPE, 2.0, np.float32), name="ERR", ver=ver),
            fits.ImageHDU(dq, name="DQ", ver=ver),
        ]
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("hdu_all") / "thr.keras"
    threshold_model().save(path)
    return path


def _predict(capsys, model, *inputs_and_options):
    return run_cli(capsys, "predict", model, *inputs_and_options, "--background", "none")


def _warnings(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("sciconv: warning:")]


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("sciconv: error:")]


def _names(out) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def test_each_chip_gets_its_own_products_named_by_chip(capsys, tmp_path, model):
    flt = _flt(tmp_path / "jabc01abq_flt.fits")
    out = tmp_path / "o"
    code, said, err = _predict(
        capsys, model, flt, "--out", out, "--hdu", "all", "--regions", "ellipse"
    )
    assert code == 0, err
    ends = ("_catalog.ecsv", "_labels.fits", "_prob.fits", "_regions.reg")
    assert _names(out) == [f"jabc01abq_flt.SCI_{k}{end}" for k in (1, 2, 3) for end in ends]
    assert not any("science image HDUs" in ln for ln in _warnings(err)), err  # no chips note
    for k in (1, 2, 3):
        assert (
            f"jabc01abq_flt.fits[SCI,{k}]: {k} objects -> jabc01abq_flt.SCI_{k}_labels.fits" in said
        )
        catalog = Table.read(out / f"jabc01abq_flt.SCI_{k}_catalog.ecsv")
        assert catalog.meta["HDU"] == f"SCI,{k}"
        assert len(catalog) == k  # chip k's k sources, not the first chip's one
        labels = fits.getdata(out / f"jabc01abq_flt.SCI_{k}_labels.fits")
        for cy, cx in SPOTS[:k]:  # each found where that chip has it
            assert labels[cy, cx] > 0
        for cy, cx in SPOTS[k:]:
            assert labels[cy, cx] == 0
        history = list(fits.getheader(out / f"jabc01abq_flt.SCI_{k}_labels.fits")["HISTORY"])
        assert f"  hdu = ('SCI', {k})" in history  # recorded as --hdu SCI,k records it
        regions = (out / f"jabc01abq_flt.SCI_{k}_regions.reg").read_text()
        assert regions.count("ellipse(") == k
        assert f"# sciconv   hdu = ('SCI', {k})" in regions
    # each chip's DQ of its own EXTVER: chip 3's flagged corner is its bad pixels only
    masks = {}
    for k in (1, 2, 3):
        with fits.open(out / f"jabc01abq_flt.SCI_{k}_labels.fits") as hdul:
            masks[k] = [np.asarray(h.data) for h in hdul if h.name == "MASK"]
    assert masks[1] == [] and masks[2] == []
    assert len(masks[3]) == 1 and int(np.count_nonzero(masks[3][0])) == 16


def test_same_products_as_hdu_chip_and_other_inputs_as_without_hdu(capsys, tmp_path, model):
    flt = _flt(tmp_path / "x_flt.fits")
    decam = tmp_path / "c4d_ooi_r.fits.fz"
    hdus = [fits.PrimaryHDU()]
    hdus += [fits.CompImageHDU(_sky(k, k + 1), name=n) for k, n in enumerate(("S29", "S30", "N4"))]
    fits.HDUList(hdus).writeto(decam)
    single = tmp_path / "one.fits"
    fits.writeto(single, _sky(7, 2))
    tif = tmp_path / "cells.tif"
    import tifffile

    tifffile.imwrite(tif, _sky(8, 1))
    out = tmp_path / "all"
    code, _, err = _predict(capsys, model, flt, decam, single, tif, "--out", out, "--hdu", "all")
    assert code == 0, err
    names = _names(out)
    for tag, n in (("S29", 1), ("S30", 2), ("N4", 3)):
        catalog = Table.read(out / f"c4d_ooi_r.{tag}_catalog.ecsv")
        assert catalog.meta["HDU"] == tag and len(catalog) == n
    assert {"one_labels.fits", "one_catalog.ecsv", "cells_labels.tif"} <= set(names)  # no tag
    assert len(Table.read(out / "one_catalog.ecsv")) == 2
    assert not any(n.startswith(("one.", "cells.")) for n in names)
    # a chip's products hold what --hdu SCI,2 gives for it
    code, _, err = _predict(capsys, model, flt, "--out", tmp_path / "sci2", "--hdu", "SCI,2")
    assert code == 0, err
    one = fits.getdata(tmp_path / "sci2" / "x_flt_labels.fits")
    assert np.array_equal(fits.getdata(out / "x_flt.SCI_2_labels.fits"), one)


def test_tiff_products_of_a_chip_keep_their_mask_file(capsys, tmp_path, model):
    flt = _flt(tmp_path / "j_flt.fits")
    out = tmp_path / "o"
    code, _, err = _predict(capsys, model, flt, "--out", out, "--hdu", "all", "--format", "tiff")
    assert code == 0, err
    import tifffile

    assert [p.name for p in sorted(out.glob("*_mask.tif"))] == ["j_flt.SCI_3_mask.tif"]
    assert int(np.count_nonzero(tifffile.imread(out / "j_flt.SCI_3_mask.tif"))) == 16
    assert len(Table.read(out / "j_flt.SCI_2_catalog.ecsv")) == 2


def test_skip_existing_and_overwrite_are_per_chip(capsys, tmp_path, model):
    flt = _flt(tmp_path / "j_flt.fits")
    out = tmp_path / "o"
    code, _, err = _predict(capsys, model, flt, "--out", out, "--hdu", "all", "--quiet")
    assert code == 0, err
    kept = {n: os.stat(out / n).st_mtime_ns for n in _names(out)}
    for p in out.glob("j_flt.SCI_2_*"):
        p.unlink()
    # without --overwrite or --skip-existing: refused, naming a chip's product, nothing run
    code, _, err = _predict(capsys, model, flt, "--out", out, "--hdu", "all", "--quiet")
    assert code == 1
    assert_one_line_error(err, "j_flt.SCI_1_", "output exists", "--overwrite")
    assert not list(out.glob("j_flt.SCI_2_*"))
    code, said, err = _predict(capsys, model, flt, "--out", out, "--hdu", "all", "--skip-existing")
    assert code == 0, err
    assert "j_flt.fits[SCI,1]: skipped, its products exist (--skip-existing)" in said
    assert "j_flt.fits[SCI,3]: skipped, its products exist (--skip-existing)" in said
    assert "j_flt.fits[SCI,2]: 2 objects -> j_flt.SCI_2_labels.fits" in said
    assert _names(out) == sorted(kept)
    for name, made in kept.items():  # the finished chips untouched
        if "SCI_2" not in name:
            assert os.stat(out / name).st_mtime_ns == made, name
    # a whole rerun: every chip skipped, counted as such
    code, said, err = _predict(capsys, model, flt, "--out", out, "--hdu", "all", "--skip-existing")
    assert code == 0, err
    assert said.count("skipped, its products exist") == 3


def test_a_damaged_chip_fails_alone(capsys, tmp_path, model):
    flt = _flt(tmp_path / "j_flt.fits", nan_chip=2)
    good = tmp_path / "b.fits"
    fits.writeto(good, _sky(5, 1))
    out = tmp_path / "o"
    code, said, err = _predict(
        capsys, model, flt, good, "--out", out, "--hdu", "all", "--keep-going"
    )
    assert code == 1
    errors = _errors(err)
    assert len(errors) == 2, err
    assert errors[0].startswith(f"sciconv: error: {flt}[SCI,2]: "), errors[0]
    assert "1 of 4 inputs failed" in errors[1] and f"{flt}[SCI,2]" in errors[1], errors[1]
    names = _names(out)
    assert not [n for n in names if "SCI_2" in n]  # nothing left of the failed chip
    for k in (1, 3):
        assert len(Table.read(out / f"j_flt.SCI_{k}_catalog.ecsv")) == k
    assert "b_catalog.ecsv" in names and "1 objects -> b_labels.fits" in said
    # without --keep-going the batch stops at the chip, naming it
    code, _, err = _predict(capsys, model, flt, "--out", tmp_path / "p", "--hdu", "all")
    assert code == 1
    assert_one_line_error(err, f"{flt}[SCI,2]")


def test_a_truncated_last_chip_fails_alone(capsys, tmp_path, model):
    path = tmp_path / "t_flt.fits"
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(_sky(v, v), name="SCI", ver=v) for v in (1, 2, 3)]
    fits.HDUList(hdus).writeto(path)
    with open(path, "r+b") as f:  # the last chip's pixels cut short
        f.truncate(os.path.getsize(path) - 4 * 2880)
    out = tmp_path / "o"
    with pytest.warns(SciconvWarning, match="may have been truncated"):  # said per chip read
        code, _, err = _predict(capsys, model, path, "--out", out, "--hdu", "all", "--keep-going")
    assert code == 1
    errors = _errors(err)
    assert errors[0].startswith(f"sciconv: error: {path}[SCI,3]: "), err
    assert "1 of 3 inputs failed" in errors[-1], err
    assert _names(out) == sorted(
        f"t_flt.SCI_{k}_{kind}"
        for k in (1, 2)
        for kind in ("catalog.ecsv", "labels.fits", "prob.fits")
    )


def test_block_wise_chips_are_refused_before_anything_runs(capsys, tmp_path, model):
    flt = _flt(tmp_path / "j_flt.fits")
    out = tmp_path / "o"
    code, _, err = _predict(capsys, model, flt, "--out", out, "--hdu", "all", "--block", "32")
    assert code == 2
    assert_one_line_error(err, "--hdu all", f"{flt}[SCI,1]", "--block")
    assert not out.exists()


def test_help_documents_hdu_all(capsys):
    code, text, _ = run_cli(capsys, "predict", "--help")
    assert code == 0
    text = " ".join(text.split())
    assert "'all': every science chip of a multi-chip file" in text
    assert "NAME.SCI_2_labels.fits" in text
