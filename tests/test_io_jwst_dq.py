"""JWST ``_cal`` DQ planes read the way the jwst pipeline reads them, and DES's ``WGT``.

QA 55: a NIRCam ``_cal`` whose DQ had ``JUMP_DET`` (a cosmic ray fitted out of the ramp: the
slope is good) on 20 % of the pixels was read with every set bit bad: 26 % of the pixels NaN,
aperture fluxes 22 % low, every object ``flag_masked``. The pipeline's own resample and
outlier_detection drop only ``DO_NOT_USE`` (1) and ``NON_SCIENCE`` (512) (``good_bits =
"~DO_NOT_USE+NON_SCIENCE"``). And a DES tile's ``WGT`` (inverse variance) was not read as the
image's errors, while HST's ``WHT`` (exposure-time weight) must not be.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import sciconv as sc
from sciconv import io
from sciconv.postprocess import measure
from tests._helpers import run_cli

DO_NOT_USE, SATURATED, JUMP_DET, NON_SCIENCE, REFERENCE_PIXEL = 1, 2, 4, 512, 2**31
STARS = [(20, 20), (20, 44), (44, 20), (44, 44)]


def _field(shape=(64, 64), seed=3):
    """Four stars (sigma 1.5 px, flux 100) on a sky of rms 0.05, and their flux truth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = rng.normal(0, 0.05, shape)
    for y, x in STARS:
        image += 100 / (2 * np.pi * 1.5**2) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.5)
    return image.astype(np.float32)


def _dq(shape=(64, 64), seed=5):
    """DO_NOT_USE + REFERENCE_PIXEL on a 4-pixel border, JUMP_DET on 20 % of the pixels, a
    NON_SCIENCE patch, a fully saturated pixel (DO_NOT_USE + SATURATED) and a partly
    saturated one (SATURATED alone: its slope from the first groups is good)."""
    rng = np.random.default_rng(seed)
    dq = np.zeros(shape, np.uint32)
    dq[rng.random(shape) < 0.2] |= JUMP_DET
    for edge in (np.s_[:4, :], np.s_[-4:, :], np.s_[:, :4], np.s_[:, -4:]):
        dq[edge] |= DO_NOT_USE | REFERENCE_PIXEL
    dq[50:56, 6:12] |= NON_SCIENCE
    dq[30, 30] |= DO_NOT_USE | SATURATED
    dq[31, 31] |= SATURATED
    return dq


def _cal(path, *, telescope_in="primary", telescope="JWST"):
    """A level-2 ``_cal`` as the jwst pipeline writes it: PRIMARY (no data), SCI, ERR, DQ."""
    primary = fits.PrimaryHDU()
    sci = fits.ImageHDU(_field(), name="SCI")
    sci.header["BUNIT"] = "MJy/sr"
    target = primary if telescope_in == "primary" else sci
    target.header["TELESCOP"] = telescope
    primary.header["INSTRUME"] = "NIRCAM"
    dq = _dq()
    fits.HDUList(
        [
            primary,
            sci,
            fits.ImageHDU(np.full((64, 64), 0.05, np.float32), name="ERR"),
            fits.ImageHDU(dq, name="DQ"),
        ]
    ).writeto(path)
    return dq


def _apertures(shape=(64, 64), r=5.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    labels = np.zeros(shape, np.int32)
    for i, (y, x) in enumerate(STARS):
        labels[np.hypot(yy - y, xx - x) <= r] = i + 1
    return labels


@pytest.mark.parametrize("telescope_in", ["primary", "sci"])
def test_jwst_dq_default_is_the_pipeline_rule(tmp_path, telescope_in):
    path = tmp_path / "jw01345001001_02101_00001_nrcb1_cal.fits"
    dq = _cal(path, telescope_in=telescope_in)
    img = io.read(path)
    pipeline_bad = (dq & (DO_NOT_USE | NON_SCIENCE)) != 0
    np.testing.assert_array_equal(img.mask[..., 0], pipeline_bad)
    assert pipeline_bad.mean() < 0.25 < ((dq & JUMP_DET) != 0).mean() + pipeline_bad.mean()
    # JUMP_DET and partly saturated pixels keep their values; DO_NOT_USE ones are NaN
    raw = fits.getdata(path, "SCI")
    good = ~pipeline_bad
    np.testing.assert_array_equal(img.data[..., 0][good], raw[good])
    assert bool(np.isfinite(img.data[31, 31, 0])) and bool(np.isnan(img.data[30, 30, 0]))
    # the rule is recorded where the mask came from
    assert img.meta["mask_from"] == "mask HDU 3 (DQ), planes DO_NOT_USE+NON_SCIENCE"
    # aperture photometry sees every star pixel: the sums of the raw pixels, nothing flagged
    table = measure(_apertures(), intensity=img, background=0.0)
    for row in table:
        np.testing.assert_allclose(row["flux"], raw[_apertures() == row["label"]].sum(), rtol=1e-5)
    assert not np.any(table["flag_masked"])
    # the same rule region by region (lazy) and for a section
    lazy = io.read(path, lazy=True)
    assert bool(np.isnan(lazy.data[0:2, 0:2]).all()) and bool(np.isfinite(lazy.data[31, 31]).all())
    np.testing.assert_array_equal(np.isnan(np.asarray(lazy.data)[..., 0]), pipeline_bad)
    cut = io.read(path, section=(slice(10, 40), slice(5, 60)))
    np.testing.assert_array_equal(cut.mask[..., 0], pipeline_bad[10:40, 5:60])


def test_an_explicit_ignore_flags_still_wins(tmp_path):
    path = tmp_path / "jw_cal.fits"
    dq = _cal(path)
    every = io.read(path, ignore_flags="0")  # said explicitly: every set bit is bad
    np.testing.assert_array_equal(every.mask[..., 0], dq != 0)
    assert every.meta["mask_from"] == "mask HDU 3 (DQ)"
    assert int(io.read(path, ignore_flags=[]).mask.sum()) == int((dq != 0).sum())
    only_jumps = io.read(path, ignore_flags=f"~{JUMP_DET}")
    np.testing.assert_array_equal(only_jumps.mask[..., 0], (dq & JUMP_DET) != 0)
    nothing = io.read(path, ignore_flags=None)
    assert nothing.mask is None or not nothing.mask.any()
    assert io.read(path, mask_hdu=None).meta.get("mask_from") is None


def test_other_telescopes_keep_every_set_bit_bad(tmp_path):
    """HST's DQ (and any file without a pipeline rule) is read as before: every set bit."""
    path = tmp_path / "hst_flt.fits"
    dq = _cal(path, telescope="HST")
    np.testing.assert_array_equal(io.read(path).mask[..., 0], dq != 0)


def test_named_plane_flags_rules():
    from sciconv.io._masks import PIPELINE_BAD_FLAGS, named_plane_flags

    dq, jwst = fits.Header({"EXTNAME": "DQ"}), fits.Header({"TELESCOP": "jwst "})
    assert named_plane_flags(dq, 0, context=(None, jwst)) == ("~513", ["DO_NOT_USE", "NON_SCIENCE"])
    assert named_plane_flags(dq, 0, context=[fits.Header({"TELESCOP": "ROMAN"})])[0] == "~513"
    assert named_plane_flags(dq, 0) == (0, None)  # no telescope said: every bit
    # a JWST file's MASK HDU is not its DQ: the rule is the DQ's
    assert named_plane_flags(fits.Header({"EXTNAME": "MASK"}), 0, context=[jwst]) == (0, None)
    assert named_plane_flags(dq, "~4", context=[jwst]) == ("~4", None)
    assert named_plane_flags(dq, False, context=[jwst]) == (False, None)
    # Rubin planes named in MP_ cards still come first
    rubin = fits.Header([("EXTNAME", "DQ"), ("MP_BAD", 0), ("HIERARCH MP_DETECTED", 5)])
    assert named_plane_flags(rubin, 0, context=[jwst]) == ("~1", ["BAD"])
    assert PIPELINE_BAD_FLAGS["JWST"] == {"DO_NOT_USE": 1, "NON_SCIENCE": 512}


@pytest.fixture(scope="module")
def everything_model(tmp_path_factory):
    """A segmenter that calls every pixel foreground: one object covering the image."""
    path = tmp_path_factory.mktemp("jwst_cli") / "all.keras"
    model = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2)
    last = model.layers[-2] if model.layers[-1].weights == [] else model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.array([0.0, 9.0], bias.dtype)])
    model.save(path)
    return path


def test_cli_predict_on_a_cal_file_uses_the_pipeline_rule(capsys, tmp_path, everything_model):
    inputs = tmp_path / "in"
    inputs.mkdir()
    dq = _cal(inputs / "jw_cal.fits")
    code, _, err = run_cli(
        capsys, "predict", everything_model, inputs / "jw_cal.fits", "--out", tmp_path / "out",
        "--quiet", "--background", "none",
    )  # fmt: skip
    assert code == 0, err
    with fits.open(tmp_path / "out" / "jw_cal_prob.fits") as hdul:
        mask = hdul["MASK"].data.reshape(-1, *dq.shape)[0].astype(bool)
    np.testing.assert_array_equal(mask, (dq & (DO_NOT_USE | NON_SCIENCE)) != 0)
    assert len(Table.read(tmp_path / "out" / "jw_cal_catalog.ecsv")) >= 1
    # --ignore-flags 0 is the default: the rule; an expression of the user's wins
    code, _, err = run_cli(
        capsys, "predict", everything_model, inputs / "jw_cal.fits", "--out", tmp_path / "all",
        "--quiet", "--background", "none", "--ignore-flags", "~4",
    )  # fmt: skip
    assert code == 0, err
    with fits.open(tmp_path / "all" / "jw_cal_prob.fits") as hdul:
        mask = hdul["MASK"].data.reshape(-1, *dq.shape)[0].astype(bool)
    np.testing.assert_array_equal(mask, (dq & JUMP_DET) != 0)


# --------------------------------------------------------------------------- WGT / WHT


def _tile(path, name, weight):
    sci = fits.ImageHDU(_field(), name="SCI")
    sci.header["MAGZERO"] = 30.0
    fits.HDUList(
        [fits.PrimaryHDU(), sci, fits.ImageHDU(weight.astype(np.float32), name=name)]
    ).writeto(path)


def test_des_wgt_is_the_inverse_variance(tmp_path):
    """A DES coadd tile (SCI, MSK, WGT): WGT = 1 / sigma**2; 0 where there is no data."""
    weight = np.full((64, 64), 1 / 0.05**2)
    weight[:, 60:] = 0.0
    _tile(tmp_path / "DES0958+0209_r4575p01_g.fits", "WGT", weight)
    img = io.read(tmp_path / "DES0958+0209_r4575p01_g.fits")
    assert type(img.meta["uncertainty"]).__name__ == "InverseVariance"
    assert img.meta["uncertainty_from"] == "HDU 2 (WGT)"
    err, how = sc.postprocess.estimate_error(img)
    assert how == "image uncertainty" and err.shape == (64, 64)
    np.testing.assert_allclose(err[:, :60], 0.05, rtol=1e-5)
    assert np.isinf(err[:, 60:]).all()
    np.testing.assert_array_equal(img.mask[..., 0], weight == 0)  # no data: bad
    # window by window when lazy
    lazy = io.read(tmp_path / "DES0958+0209_r4575p01_g.fits", lazy=True)
    windows = lazy.meta["uncertainty_windows"]
    np.testing.assert_allclose(windows.read((0, 4), (0, 4)), 0.05, rtol=1e-5)


def test_hst_wht_is_not_an_error(tmp_path):
    """A drizzled HST image's WHT is an exposure-time weight (seconds), not 1 / sigma**2."""
    _tile(tmp_path / "jabc01010_drc.fits", "WHT", np.full((64, 64), 2000.0))
    img = io.read(tmp_path / "jabc01010_drc.fits")
    assert img.meta.get("uncertainty") is None and img.meta.get("uncertainty_from") is None
    assert img.meta["hdu"] == 1
