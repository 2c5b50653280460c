"""Flux errors in catalogs: per-pixel errors (own uncertainty, or background rms + Poisson with
the header's effective gain) summed in quadrature over each object, as photutils does.

QA (2026-12-05): no catalog had any flux error, and ``to_photutils`` dropped a CCDData's
uncertainty (``segment_fluxerr`` all NaN, no unit).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty

from sciconv import postprocess
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io import GridImage


def _flux_err(cat):
    """photutils >= 3 spells it segment_flux_err (segment_fluxerr before)."""
    if hasattr(type(cat), "segment_flux_err"):
        return cat.segment_flux_err
    return cat.segment_fluxerr


def _grid(data, bunit=None, **header):
    return GridImage(np.asarray(data, np.float32)[..., None], header=header, meta={"bunit": bunit})


@pytest.mark.parametrize(
    ("bunit", "header", "want"),
    [
        ("ELECTRONS", {"EXPTIME": 60.0}, 1.0),
        ("ELECTRONS/S", {"EXPTIME": 60.0}, 60.0),
        ("adu", {"GAIN": 2.0}, 2.0),
        ("ADU/S", {"GAIN": 2.0, "EXPTIME": 300.0}, 600.0),
        ("DN", {"ATODGAIN": 1.5}, 1.5),
        ("COUNTS", {"CCDGAIN": 4.0}, 4.0),
        ("adu", {}, None),  # no gain keyword: unknown
        ("ELECTRONS/S", {}, None),  # no EXPTIME
        ("Jy", {"GAIN": 2.0}, None),  # a calibrated unit: no photon count known
        # no BUNIT at all: a GAIN card's pixels are ADU, as SExtractor reads a raw frame (QA:
        # it was unknown, and the bright stars' errors 4 times too small)
        (None, {"GAIN": 2.0}, 2.0),
        (None, {"EXPTIME": 60.0}, None),
    ],
)
def test_effective_gain_from_unit_and_header(bunit, header, want):
    assert postprocess.effective_gain(_grid(np.zeros((2, 2)), bunit, **header)) == want


def test_a_grid_image_made_from_a_header_reads_its_bunit():
    """QA: GridImage(pixels, header=hdr) ignored the header's BUNIT (unit None: no Poisson term
    in the errors, fluxes without a unit), though its docstring promised it."""
    from astropy.io import fits

    header = fits.Header({"BUNIT": "ADU", "GAIN": 2.0})
    img = GridImage(np.zeros((2, 2, 1), np.float32), header=header)
    assert str(img.unit) == "adu" and postprocess.effective_gain(img) == 2.0
    over = GridImage(np.zeros((2, 2, 1), np.float32), header=header, meta={"bunit": "ELECTRONS"})
    assert str(over.unit) == "electron"  # meta["bunit"] (a reader's) first


def test_effective_gain_given_and_refused():
    img = _grid(np.zeros((2, 2)))
    assert postprocess.effective_gain(img, 3) == 3.0
    assert postprocess.effective_gain(img, None) is None
    with pytest.raises(ConfigError, match="gain must be 'auto' or a number > 0"):
        postprocess.effective_gain(img, -1.0)


def test_flux_err_matches_the_scatter_of_fluxes_over_noise_realisations():
    """The error bar means what it says: over 300 Poisson + read-noise realisations of one field
    (adu, gain 2), the flux's standard deviation equals the median flux_err within 10 %."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    truth_e = 200.0 + 3000.0 * np.exp(-((yy - 32) ** 2 + (xx - 30) ** 2) / (2 * 3.0**2))
    labels = ((yy - 32) ** 2 + (xx - 30) ** 2 <= 36).astype(np.int32)
    fluxes, errors = [], []
    for _ in range(300):
        electrons = rng.poisson(truth_e) + rng.normal(0, 5.0, truth_e.shape)
        img = _grid(electrons / 2.0, "adu", GAIN=2.0)  # adu: 2 electrons each
        level, rms = postprocess.background_and_rms(img, labels, box_size=16)
        error, source = postprocess.estimate_error(img, background=level, background_rms=rms)
        row = postprocess.measure(labels, intensity=img, background=level, error=error)[0]
        fluxes.append(row["flux"])
        errors.append(row["flux_err"])
    assert source == "background rms + Poisson (effective gain 2)"
    scatter, quoted = np.std(fluxes), np.median(errors)
    assert quoted == pytest.approx(scatter, rel=0.10), (quoted, scatter)
    # the background's noise alone (no Poisson term) underestimates it by far here
    _, no_gain = postprocess.estimate_error(img, background=level, background_rms=rms, gain=None)
    assert no_gain.startswith("background rms only")


def test_the_weighted_centroid_error_matches_its_scatter_over_noise_realisations():
    """QA: no position error at all. x/y_weighted_err (the pixel errors propagated, as
    SExtractor's ERRX2) equal the centroid's scatter over 300 noise realisations within 10 %
    for a bright star (SNR ~ 200) and err 10-15 % high for a faint one (SNR ~ 30: the positive
    pixels weigh the centroid, a clip the first-order propagation does not follow), the
    footprint held fixed."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:48, :48]
    labels = ((yy - 24) ** 2 + (xx - 23) ** 2 <= 30).astype(np.int32)
    for peak, rel in ((400.0, 0.10), (60.0, 0.15)):
        truth = peak * np.exp(-((yy - 24.3) ** 2 + (xx - 22.8) ** 2) / (2 * 2.0**2))
        rows = []
        for _ in range(300):
            data = truth + rng.normal(0, 5.0, truth.shape)
            rows.append(postprocess.measure(labels, intensity=data, error=5.0, background=0.0)[0])
        for axis in ("x", "y"):
            scatter = np.std([r[f"{axis}_weighted"] for r in rows])
            quoted = np.median([r[f"{axis}_weighted_err"] for r in rows])
            assert quoted == pytest.approx(scatter, rel=rel), (peak, axis, quoted, scatter)
            assert quoted >= 0.95 * scatter  # never much too small


def test_measure_flux_err_equals_photutils_segment_fluxerr(data_dir):
    """Same labels, background and error: sciconv's flux / flux_err and photutils' segment_flux /
    segment_fluxerr agree (real HST cutout, electrons), and to_photutils keeps the unit."""
    from sciconv import io

    img = io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    data = np.asarray(img.data[..., 0], np.float64)
    from photutils.segmentation import detect_sources

    level, rms = postprocess.background_and_rms(img)
    labels = detect_sources(np.nan_to_num(data - level), 5 * np.median(rms), 8).data
    level, rms = postprocess.background_and_rms(img, labels)
    error, source = postprocess.estimate_error(img, background=level, background_rms=rms)
    assert source == "background rms + Poisson (effective gain 1)"  # BUNIT = ELECTRONS
    table = postprocess.measure(labels, intensity=img, background=level, error=error, mask=None)
    _, cat = postprocess.to_photutils(labels, img, error=error, background=level, mask=None)
    assert cat.segment_flux.unit == u.electron and table["flux_err"].unit == u.electron
    np.testing.assert_allclose(table["flux"], cat.segment_flux.value, rtol=1e-9)
    np.testing.assert_allclose(table["flux_err"], _flux_err(cat).value, rtol=1e-9)
    assert np.all(table["flux_err"] > 0)
    # the Poisson term matters on bright stars: more than the background's noise alone
    plain = postprocess.measure(labels, intensity=img, background=level, error=rms, mask=None)
    assert np.median(table["flux_err"] / plain["flux_err"]) > 1.05


def test_own_uncertainty_gives_flux_err_and_photutils_errors():
    """A CCDData's StdDevUncertainty: measure(error="auto") sums it; to_photutils passes it on
    (its segment_fluxerr was NaN for every object)."""
    data = np.ones((12, 12))
    err = np.full((12, 12), 0.5)
    ccd = CCDData(data, unit=u.electron, uncertainty=StdDevUncertainty(err))
    labels = np.zeros((12, 12), np.int32)
    labels[2:6, 2:6] = 1  # 16 pixels: error 0.5 * 4 = 2
    table = postprocess.measure(labels, intensity=ccd)
    assert table["flux_err"][0] == pytest.approx(2.0)
    assert table.meta["FLUXERR"] == "image uncertainty"
    _, cat = postprocess.to_photutils(labels, ccd)
    assert _flux_err(cat)[0] == 2.0 * u.electron
    assert "flux_err" not in postprocess.measure(labels, intensity=ccd, error=None).colnames


def test_error_shape_and_sign_are_checked():
    labels = np.zeros((4, 4), np.int32)
    labels[1:3, 1:3] = 1
    with pytest.raises(
        InvalidImageError, match=r"error must be a number or have the image's shape \(4, 4\)"
    ):
        postprocess.measure(labels, intensity=np.ones((4, 4)), error=np.ones((3, 3)))
    with pytest.raises(InvalidImageError, match="standard deviations"):
        postprocess.measure(labels, intensity=np.ones((4, 4)), error=-np.ones((4, 4)))
    with pytest.raises(ConfigError, match="together"):
        postprocess.estimate_error(np.ones((4, 4)), background=0.0)


def test_background_of_a_one_channel_image_is_two_dimensional():
    """estimate_background(GridImage) returned (H, W, 1), so data2d - bkg broadcast to
    (H, W, H) silently."""
    img = _grid(100 + np.random.default_rng(0).normal(0, 1, (96, 96)))
    assert postprocess.estimate_background(img, box_size=32).shape == (96, 96)
    level, rms = postprocess.background_and_rms(img, box_size=32)
    assert level.shape == rms.shape == (96, 96)
    assert float(np.median(rms)) == pytest.approx(1.0, rel=0.1)


def test_estimate_error_names_a_background_of_the_wrong_shape():
    with pytest.raises(InvalidImageError, match="background_rms must be a number or have"):
        postprocess.estimate_error(np.ones((4, 4)), background=0.0, background_rms=np.ones((3, 3)))


def test_nan_and_infinite_pixel_errors_carry_into_flux_err():
    """A pixel whose flux counts brings its error: an inverse variance of 0 (no data: inf)
    gave flux_err 0 and a NaN error gave a finite value, where photutils gives inf / NaN."""
    labels = np.zeros((6, 6), np.int32)
    labels[1:3, 1:3] = 1
    labels[4:6, 4:6] = 2
    error = np.ones((6, 6))
    error[1, 1] = np.inf
    error[4, 4] = np.nan
    table = postprocess.measure(labels, intensity=np.ones((6, 6)), error=error)
    assert np.isinf(table["flux_err"][0]) and np.isnan(table["flux_err"][1])
    _, cat = postprocess.to_photutils(labels, np.ones((6, 6)), error=error)
    assert np.isinf(_flux_err(cat)[0]) and np.isnan(_flux_err(cat)[1])


def test_crowded_field_gives_no_background_rms_rather_than_zero():
    """Objects grown by 3 px left one background pixel, whose spread is 0: every flux_err was
    0. Under MIN_BACKGROUND_PIXELS the rms is unknown (NaN) and a warning says why."""
    image = np.random.default_rng(0).normal(100, 2, (20, 20))
    labels = np.ones((20, 20), np.int32)
    labels[0, 0] = 0
    with pytest.warns(SciconvWarning, match="only 1 background pixels"):
        level, rms = postprocess.background_and_rms(image, labels, grow=0)
    assert np.isnan(rms).all() and np.isfinite(level).all()


def test_err_hdu_and_primary_exptime_of_a_real_style_mef(tmp_path):
    """JWST/HST files keep each pixel's error in an ERR extension and EXPTIME in the primary
    header (without INHERIT): catalogs took neither (background noise only, no Poisson term)."""
    from astropy.io import fits

    from sciconv import io

    sci = fits.ImageHDU(np.full((30, 40), 5.0, np.float32), name="SCI")
    sci.header["BUNIT"] = "MJy/sr"
    err = fits.ImageHDU(np.full((30, 40), 0.5, np.float32), name="ERR")
    fits.HDUList([fits.PrimaryHDU(), sci, err]).writeto(tmp_path / "cal.fits")
    img = io.read(tmp_path / "cal.fits")
    assert img.meta["uncertainty_from"] == "HDU 2 (ERR)"
    labels = np.zeros((30, 40), np.int32)
    labels[10:14, 10:14] = 1  # 16 pixels: 0.5 * 4
    error, source = postprocess.estimate_error(img, background=0.0, background_rms=9.0)
    assert source == "image uncertainty"
    table = postprocess.measure(labels, intensity=img, error=error)
    assert table["flux_err"][0] == pytest.approx(2.0)
    assert str(table["flux_err"].unit) == "MJy / sr"
    assert img.cutout(0, 10, 0, 10).meta["uncertainty"].array.shape == (10, 10)
    # e-/s with EXPTIME in the primary header only: the effective gain is the exposure time
    primary = fits.PrimaryHDU()
    primary.header["EXPTIME"] = 500.0
    drz = fits.ImageHDU(np.ones((8, 8), np.float32), name="SCI")
    drz.header["BUNIT"] = "ELECTRONS/S"
    fits.HDUList([primary, drz]).writeto(tmp_path / "drz.fits")
    assert postprocess.effective_gain(io.read(tmp_path / "drz.fits")) == 500.0


@pytest.mark.parametrize(
    ("name", "stored", "kind"),
    [
        ("VAR", 0.25, "VarianceUncertainty"),
        ("VARIANCE", 0.25, "VarianceUncertainty"),  # LSST calexps
        ("IVAR", 4.0, "InverseVariance"),  # SDSS, DESI, Legacy Surveys
        ("INVVAR", 4.0, "InverseVariance"),
    ],
)
def test_variance_and_inverse_variance_hdus_give_the_error_bars(tmp_path, name, stored, kind):
    """Survey files keep a variance or an inverse variance beside the image; they were ignored
    (QA: flux_err 0.663x the file's errors, from the noise model, silently). A pixel whose
    inverse variance is 0 holds no measurement: it is masked."""
    from astropy.io import fits

    from sciconv import io

    sci = fits.ImageHDU(np.full((30, 40), 5.0, np.float32), name="SCI")
    values = np.full((30, 40), stored, np.float32)
    values[0, 0] = 0.0  # an inverse variance of 0: no data, an infinite error
    fits.HDUList([fits.PrimaryHDU(), sci, fits.ImageHDU(values, name=name)]).writeto(
        tmp_path / "s.fits"
    )
    img = io.read(tmp_path / "s.fits")
    assert img.meta["uncertainty_from"] == f"HDU 2 ({name})"
    assert type(img.meta["uncertainty"]).__name__ == kind
    error, source = postprocess.estimate_error(img, background=0.0, background_rms=9.0)
    assert source == "image uncertainty" and error[5, 5] == pytest.approx(0.5)
    assert error[0, 0] == (np.inf if kind == "InverseVariance" else 0.0)
    # an inverse variance of 0 is no measurement: a bad pixel, as a DQ flag makes it (review)
    assert bool(img.mask[0, 0, 0]) == (kind == "InverseVariance")
    assert np.isnan(img.data[0, 0, 0]) == (kind == "InverseVariance")
    labels = np.zeros((30, 40), np.int32)
    labels[10:14, 10:14] = 1  # 16 pixels of sigma 0.5: 2.0
    assert postprocess.measure(labels, intensity=img, error=error)["flux_err"][0] == (
        pytest.approx(2.0)
    )


def test_an_unmeasurable_background_says_the_error_is_unknown():
    """Labels over the whole field leave no sky: every flux_err is NaN, and the catalog's
    FLUXERR said "background rms + Poisson" all the same (QA)."""
    image = np.random.default_rng(0).normal(100, 2, (20, 20))
    labels = np.ones((20, 20), np.int32)
    labels[0, 0] = 0
    with pytest.warns(SciconvWarning, match="background pixels"):
        error, source = postprocess.estimate_error(image, labels, gain=2.0, grow=0)
    assert np.isnan(error).all()
    assert source.startswith("unknown (background rms not measurable")


def test_error_hdus_are_not_read_as_the_image_and_their_names_say_their_kind(tmp_path):
    """A file whose IVAR came before its image had the IVAR read as the science HDU; a UTYPE
    card (CCDData's, for its UNCERT HDU) on an IVAR HDU made its values standard deviations."""
    from astropy.io import fits

    from sciconv import io

    ivar = fits.ImageHDU(np.full((8, 10), 4.0, np.float32), name="IVAR")
    ivar.header["UTYPE"] = "StdDevUncertainty"
    image = fits.ImageHDU(np.full((8, 10), 7.0, np.float32), name="FLUX")
    fits.HDUList([fits.PrimaryHDU(), ivar, image]).writeto(tmp_path / "f.fits")
    img = io.read(tmp_path / "f.fits")
    assert float(img.data[0, 0, 0]) == 7.0
    error, _ = postprocess.estimate_error(img)
    assert error[0, 0] == pytest.approx(0.5)
    assert postprocess.NO_RMS.startswith("unknown") and postprocess.NO_POISSON
    # a file of one DQ HDU (a mask file) is still read
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((4, 4), np.int16), name="DQ")]).writeto(
        tmp_path / "dq.fits"
    )
    assert io.read(tmp_path / "dq.fits").data.shape == (4, 4, 1)


def test_scaled_integer_error_hdus_lazy_no_data_and_damaged_ones(tmp_path):
    """Review: a uint16 inverse variance (int16 + BZERO 32768 in the file) was read unscaled,
    negative, and every pixel made bad; no-measurement pixels were bad only when read eagerly;
    a truncated error HDU broke lazy pixel reads."""
    import os

    from astropy.io import fits

    from sciconv import io

    ivar = np.full((6, 8), 1000, np.uint16)
    ivar[2, 3] = 0  # no measurement
    path = tmp_path / "u16.fits"
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(np.ones((6, 8), np.float32), name="SCI")]
    fits.HDUList([*hdus, fits.ImageHDU(ivar, name="IVAR")]).writeto(path)
    eager, lazy = io.read(path), io.read(path, lazy=True)
    assert postprocess.own_error(eager)[0, 0] == pytest.approx(1000**-0.5)
    assert postprocess.error_windows(lazy).read((0, 1), (0, 1))[0, 0] == pytest.approx(1000**-0.5)
    assert int(np.isnan(eager.data).sum()) == 1 and np.isnan(eager.data[2, 3, 0])
    window = np.asarray(lazy.data[1:4, 2:5])  # the lazy read says the same
    assert int(np.isnan(window).sum()) == 1 and np.isnan(window[1, 1, 0])
    # a truncated error HDU: the pixels without error bars, lazily as eagerly
    broken = tmp_path / "t.fits"
    big = [fits.PrimaryHDU(), fits.ImageHDU(np.ones((200, 200), np.float32), name="SCI")]
    fits.HDUList([*big, fits.ImageHDU(np.ones((200, 200), np.float32), name="ERR")]).writeto(broken)
    with open(broken, "r+b") as f:
        f.truncate(os.path.getsize(broken) - 100000)
    with pytest.warns(Warning):  # astropy: "File may have been truncated"
        lazy = io.read(broken, lazy=True)
    assert postprocess.error_windows(lazy) is None
    assert np.asarray(lazy.data[0:2, 0:2]).shape == (2, 2, 1)
