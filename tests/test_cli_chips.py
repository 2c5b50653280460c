"""``sciconv predict`` on archive files as surveys serve them (QA 55).

- Multi-chip exposures (finding 3): an HST ``_flt`` (``SCI,1`` + ``SCI,2``) or a DECam ``ooi``
  file (one extension per CCD) was segmented on its first chip only, silently; the catalog did
  not say which chip it held.
- Empty catalogs (finding 4): a ZTF mask flagging every star's pixels gave 0 objects, exit 0,
  no word.
- Separate error files (finding 6): ``--uncertainty-file`` / ``--uncertainty-type``, as
  ``--mask`` takes a bad-pixel file.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import sciconv as sc
from sciconv.io._chips import science_hdus
from tests._helpers import assert_one_line_error, run_cli

SHAPE = (32, 40)


def _model(path, bias):
    model = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2)
    last = model.layers[-2] if model.layers[-1].weights == [] else model.layers[-1]
    kernel, _ = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.array(bias, np.float32)])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Segmenters that call every pixel foreground (one object: the image) or none."""
    root = tmp_path_factory.mktemp("cli_chips")
    return _model(root / "all.keras", [0.0, 9.0]), _model(root / "none.keras", [9.0, 0.0])


def _sky(seed, star=True):
    img = np.random.default_rng(seed).normal(100.0, 1.0, SHAPE).astype(np.float32)
    if star:
        img[14:18, 18:22] += 500.0
    return img


def _flt(path):
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["TELESCOP"] = "HST"
    for ver in (1, 2):
        hdus += [
            fits.ImageHDU(_sky(ver), name="SCI", ver=ver),
            fits.ImageHDU(np.full(SHAPE, 2.0, np.float32), name="ERR", ver=ver),
            fits.ImageHDU(np.zeros(SHAPE, np.int16), name="DQ", ver=ver),
        ]
    fits.HDUList(hdus).writeto(path)
    return path


def _warnings(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("sciconv: warning:")]


def _predict(capsys, model, image, out, *extra):
    return run_cli(
        capsys, "predict", model, image, "--out", out, "--background", "none", *extra
    )  # fmt: skip


def test_the_other_chip_of_an_flt_is_named_and_the_catalog_says_which_it_holds(
    capsys, tmp_path, models
):
    flt = _flt(tmp_path / "jabc01abq_flt.fits")
    code, _, err = _predict(capsys, models[0], flt, tmp_path / "o1", "--quiet")
    assert code == 0, err
    said = _warnings(err)  # with --quiet too: the result is half the exposure
    assert len(said) == 1, err
    assert "jabc01abq_flt.fits has 2 science image HDUs (SCI,1, SCI,2)" in said[0]
    assert "segmented SCI,1 only" in said[0] and "--hdu SCI,2" in said[0]
    assert Table.read(tmp_path / "o1" / "jabc01abq_flt_catalog.ecsv").meta["HDU"] == "SCI,1"
    # the chip asked for: nothing to say, and its catalog tells it apart from the first's
    code, _, err = _predict(capsys, models[0], flt, tmp_path / "o2", "--quiet", "--hdu", "SCI,2")
    assert code == 0, err
    assert _warnings(err) == []
    assert Table.read(tmp_path / "o2" / "jabc01abq_flt_catalog.ecsv").meta["HDU"] == "SCI,2"


def test_the_ccds_of_a_decam_file_are_named(capsys, tmp_path, models):
    path = tmp_path / "c4d_200101_012345_ooi_r_v1.fits.fz"
    hdus = [fits.PrimaryHDU()]
    hdus += [fits.CompImageHDU(_sky(k), name=n) for k, n in enumerate(("S29", "S30", "N4"))]
    fits.HDUList(hdus).writeto(path)
    code, _, err = _predict(capsys, models[0], path, tmp_path / "o", "--quiet")
    assert code == 0, err
    said = _warnings(err)
    assert len(said) == 1 and "has 3 science image HDUs (S29, S30, N4)" in said[0], err
    assert "segmented S29 only" in said[0] and "--hdu S30 (and so on)" in said[0]
    catalog = Table.read(tmp_path / "o" / "c4d_200101_012345_ooi_r_v1_catalog.ecsv")
    assert catalog.meta["HDU"] == "S29"


@pytest.mark.parametrize(
    "extensions",
    [
        ("SCI", "MSK", "WGT"),  # a DES coadd tile
        ("SCI", "WHT", "CTX"),  # an HST drizzled image
        ("SCI", "ERR", "DQ", "AREA", "VAR_POISSON", "VAR_RNOISE"),  # a JWST _cal
    ],
)
def test_the_planes_that_go_with_an_image_are_not_chips(tmp_path, extensions):
    path = tmp_path / "x.fits"
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(_sky(0), name=n) for n in extensions]
    fits.HDUList(hdus).writeto(path)
    assert science_hdus(path, 1) == []


def test_an_empty_catalog_from_an_image_with_sources_is_said(capsys, tmp_path, models):
    sky = tmp_path / "field.fits"
    fits.writeto(sky, _sky(3))
    code, _, err = _predict(capsys, models[1], sky, tmp_path / "o", "--quiet")
    assert code == 0, err  # a result, not an error
    assert len(Table.read(tmp_path / "o" / "field_catalog.ecsv")) == 0
    said = _warnings(err)
    assert len(said) == 1, err
    assert "field.fits: no objects found, though 16 of its 1280 finite pixels" in said[0]
    assert "--threshold" in said[0]
    # a ZTF-like mask flagging the star's pixels (value 2: a detected source) is named
    msk = tmp_path / "field_mskimg.fits"
    flags = np.zeros(SHAPE, np.int16)
    flags[13:19, 17:23] = 2
    fits.writeto(msk, flags)
    code, _, err = _predict(capsys, models[1], sky, tmp_path / "m", "--quiet", "--mask", str(msk))
    assert code == 0, err
    said = _warnings(err)
    assert (
        len(said) == 1
        and "field.fits: no objects found with 2.8% of its pixels masked" in (said[0])
    ), err
    assert "field_mskimg.fits" in said[0] and "--ignore-flags" in said[0]


def test_no_word_for_a_blank_field_or_a_catalog_with_objects(capsys, tmp_path, models):
    noise = tmp_path / "noise.fits"
    fits.writeto(noise, _sky(4, star=False))
    code, _, err = _predict(capsys, models[1], noise, tmp_path / "o", "--quiet")
    assert code == 0 and _warnings(err) == [], err  # nothing there to find
    star = tmp_path / "star.fits"
    fits.writeto(star, _sky(5))
    code, _, err = _predict(capsys, models[0], star, tmp_path / "p", "--quiet")
    assert code == 0 and _warnings(err) == [], err


@pytest.fixture
def pair(tmp_path):
    """An image and its inverse-variance map, named as a template finds them."""
    folder = tmp_path / "in"
    folder.mkdir()
    ivar = np.random.default_rng(2).uniform(0.5, 2.0, SHAPE).astype(np.float32)
    fits.writeto(folder / "tile.fits", _sky(6))
    fits.writeto(folder / "tile_invvar.fits", ivar)
    return folder, ivar


def test_uncertainty_file_gives_the_catalog_its_flux_errors(capsys, tmp_path, models, pair):
    folder, ivar = pair
    out = tmp_path / "o"
    code, _, err = _predict(
        capsys, models[0], folder / "tile.fits", out, "--quiet",
        "--uncertainty-file", "{dir}/{stem}_invvar.fits", "--uncertainty-type", "ivar",
    )  # fmt: skip
    assert code == 0, err
    table = Table.read(out / "tile_catalog.ecsv")
    labels = fits.getdata(out / "tile_labels.fits").reshape(SHAPE)
    assert len(table) == 1 and (labels == table["label"][0]).any()
    inside = labels == table["label"][0]
    expected = np.sqrt(np.sum(1.0 / ivar[inside].astype(np.float64)))
    assert float(table["flux_err"][0]) == pytest.approx(expected, rel=1e-5)
    # without the file: the background noise (+ Poisson) model, not the map's errors
    code, _, err = _predict(capsys, models[0], folder / "tile.fits", tmp_path / "p", "--quiet")
    assert code == 0, err
    plain = Table.read(tmp_path / "p" / "tile_catalog.ecsv")
    assert "flux_err" not in plain.colnames or float(plain["flux_err"][0]) != pytest.approx(
        expected, rel=1e-2
    )


def test_block_wise_runs_take_the_uncertainty_file_too(capsys, tmp_path, models, pair):
    folder, _ = pair
    whole, blocks = tmp_path / "w", tmp_path / "b"
    side = ("--quiet", "--uncertainty-file", "{dir}/{stem}_invvar.fits", "--uncertainty-type")
    code, _, err = _predict(capsys, models[0], folder / "tile.fits", whole, *side, "ivar")
    assert code == 0, err
    code, _, err = _predict(
        capsys, models[0], folder / "tile.fits", blocks, "--block", "32", *side, "ivar"
    )
    assert code == 0, err
    a = Table.read(whole / "tile_catalog.ecsv")
    b = Table.read(next(blocks.glob("tile_catalog.*")))
    assert len(a) == len(b) == 1
    assert float(b["flux_err"][0]) == pytest.approx(float(a["flux_err"][0]), rel=1e-5)


def test_an_inferred_type_is_said_and_a_file_that_does_not_say_is_refused(
    capsys, tmp_path, models, pair
):
    folder, _ = pair
    code, out, err = _predict(
        capsys, models[0], folder / "tile.fits", tmp_path / "o",
        "--uncertainty-file", "{dir}/{stem}_invvar.fits",
    )  # fmt: skip
    assert code == 0, err
    assert any(
        "tile.fits: errors from" in ln and "(inverse variance: 'invvar' in its name)" in ln
        for ln in out.splitlines()
    ), out
    fits.writeto(folder / "tile.wt.fits", np.ones(SHAPE, np.float32))  # a PS1 .wt: variance
    code, _, err = _predict(
        capsys, models[0], folder / "tile.fits", tmp_path / "w", "--quiet",
        "--uncertainty-file", "{dir}/{stem}.wt.fits",
    )  # fmt: skip
    assert code == 2  # a usage error: say what the file holds
    assert_one_line_error(err, "tile.wt.fits", "nothing says", "--uncertainty-type")
    assert not list((tmp_path / "w").glob("tile_*"))


def test_uncertainty_file_options_are_checked_before_anything_runs(capsys, tmp_path, models, pair):
    folder, _ = pair
    out = tmp_path / "o"
    code, _, err = _predict(
        capsys, models[0], folder / "tile.fits", out, "--uncertainty-file", "{dir}/{stem}_x.fits"
    )
    assert code != 0
    assert_one_line_error(err, "tile.fits", "--uncertainty-file", "tile_x.fits")
    assert not out.exists()
    code, _, err = _predict(
        capsys, models[0], folder / "tile.fits", out, "--uncertainty-type", "var"
    )
    assert code != 0
    assert_one_line_error(err, "--uncertainty-type var", "--uncertainty-file")
    code, _, err = _predict(
        capsys, models[0], folder / "tile.fits", out, "--uncertainty-type", "ivar",
    )  # fmt: skip
    assert code != 0
    assert_one_line_error(err, "--uncertainty-type ivar", "--uncertainty-file")
    assert not out.exists()
    code, _, err = _predict(
        capsys, models[0], folder / "tile.fits", out, "--uncertainty-type", "sd"
    )
    assert code == 2 and "--uncertainty-type" in err
