"""Correlated noise of resampled images (QA errbars, finding 1).

A drizzled / i2d / reprojected image shares each input pixel between neighbouring output
pixels: the variance of an aperture sum is ``R`` times the sum of the pixel variances, and
``flux_err`` summed in quadrature was 1.42x too small on a bilinear-resampled image, with a
correct per-pixel ERR HDU and from the background rms alike. ``measure`` now measures ``R`` on
the background and applies it where the correlation is a resampling's; white noise and sky
structure (a crowded HST field, unlabelled wings) keep the old numbers bit for bit. By default
("auto") only where the header says the image was resampled: these images carry a drizzle card.
"""

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage as ndi

from sciconv import io, postprocess
from sciconv.errors import ConfigError
from sciconv.io import GridImage
from sciconv.postprocess._noise_correlation import (
    APPLIED_NOTE,
    CORRELATED_FLUX_ERR,
    NoiseCorrelation,
    apply_noise_correlation,
    flux_error_note,
    noise_correlation,
)

H = W = 160
DRIZZLED = {"D001KERN": "square", "D001PIXF": 1.0}  # drizzle's cards: resampled


def _drizzled(pixels, **meta):
    """A GridImage of ``pixels`` (H, W) whose header says it was drizzled."""
    return GridImage(pixels[..., None].astype(np.float32), header=fits.Header(DRIZZLED), meta=meta)


_TURN = np.deg2rad(17.0)
_M = np.array([[np.cos(_TURN), -np.sin(_TURN)], [np.sin(_TURN), np.cos(_TURN)]])


def _resampled(white):
    """White noise resampled on a rotated, shifted grid with bilinear weights (drizzle with
    pixfrac 1 at the native scale, reproject, JWST's resample do this to the noise)."""
    centre = np.array(white.shape) / 2
    offset = centre - _M @ centre + [0.37, 0.61]
    return ndi.affine_transform(white, _M, offset=offset, order=1, mode="reflect")


def _apertures(shape=(H, W), radius2=16, step=20):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    k = 0
    for y in range(step, shape[0] - step + 1, step):
        for x in range(step, shape[1] - step + 1, step):
            k += 1
            labels[(yy - y) ** 2 + (xx - x) ** 2 <= radius2] = k
    return labels


@pytest.fixture(scope="module")
def realisations():
    """120 realisations of the resampled noise (sigma 10 per input pixel), the true 1-sigma of
    each output pixel and of each aperture's sum."""
    rng = np.random.default_rng(0)
    labels = _apertures()
    reals = np.array([_resampled(rng.normal(0, 10.0, (H, W))) for _ in range(120)])
    ids = labels.ravel()
    sums = np.array([np.bincount(ids, r.ravel())[1:] for r in reals])
    return labels, reals, reals.std(axis=0, ddof=1), sums.std(axis=0, ddof=1)


def test_err_hdu_flux_err_of_a_resampled_image_matches_the_aperture_scatter(realisations, tmp_path):
    labels, reals, err, scatter = realisations
    path = tmp_path / "i2d_like.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(
                reals[0].astype(np.float32), fits.Header({"BUNIT": "ELECTRONS", **DRIZZLED}), "SCI"
            ),
            fits.ImageHDU(err.astype(np.float32), name="ERR"),
        ]
    ).writeto(path)
    img = io.read(path)
    table = postprocess.measure(labels, intensity=img, background=0.0)
    ratio = np.median(scatter) / np.median(table["flux_err"])
    assert ratio == pytest.approx(1.0, abs=0.08)  # was 1.42 (independent pixels)
    plain = postprocess.measure(labels, intensity=img, background=0.0, noise_correlation=None)
    assert np.median(scatter) / np.median(plain["flux_err"]) > 1.3  # what it was
    assert table.meta["FLUXERR"] == "image uncertainty" + APPLIED_NOTE
    assert table.meta["FLUXCORR"].startswith("correlated noise: R(k) = var(k x k sum)")
    assert "flux_err x sqrt(R(sqrt(area)))" in table.meta["FLUXCORR"]
    assert table["flux_err"].description == CORRELATED_FLUX_ERR
    assert "FLUXCORR" not in plain.meta and plain["flux_err"].description != CORRELATED_FLUX_ERR
    # the catalog file keeps the note
    back = postprocess.read_catalog(postprocess.write_catalog(table, tmp_path / "cat.ecsv"))
    assert back.meta["FLUXCORR"] == table.meta["FLUXCORR"]
    assert back["flux_err"].description == CORRELATED_FLUX_ERR


def test_background_rms_flux_err_of_a_resampled_image_matches_the_aperture_scatter(
    realisations,
):
    """No ERR HDU: the background rms of a smoothed image is itself too low; the same R."""
    labels, reals, _, scatter = realisations
    img = _drizzled(reals[1], bunit="ELECTRONS")
    level, rms = postprocess.background_and_rms(img, labels)
    error, source = postprocess.estimate_error(img, labels, background=level, background_rms=rms)
    table = postprocess.measure(labels, intensity=img, background=level, error=error)
    assert np.median(scatter) / np.median(table["flux_err"]) == pytest.approx(1.0, abs=0.08)
    assert "flux_err x sqrt(R" in table.meta["FLUXCORR"]
    # no source above the background: nothing to divide by R in the Poisson term's place
    assert "over R(inf)" in source or source.endswith("(effective gain 1)")
    assert flux_error_note(source, table) == source + APPLIED_NOTE


def test_box_sum_ratio_is_measured_as_box_sums_give_it():
    """R(k) from the background's correlation equals var(k x k sums) / (k^2 var) of a large
    realisation (2.066 at 8 px for this kernel) within 3 %."""
    rng = np.random.default_rng(1)
    big = _resampled(rng.normal(0, 1.0, (1200, 1200)))[100:-100, 100:-100]
    corr = noise_correlation(big)
    var = big.var()
    for k in (2, 4, 8, 16):
        n = big.shape[0] // k
        sums = big[: n * k, : n * k].reshape(n, k, n, k).sum(axis=(1, 3))
        truth = sums.var() / (k * k * var)
        assert corr.ratio([k * k])[0, 0] == pytest.approx(truth, rel=0.03), k
    assert bool(corr.applied[0]) and not corr.structure[0]


@pytest.mark.parametrize("size", [128, 200, 512])
def test_white_noise_keeps_its_flux_err_bit_for_bit(size):
    rng = np.random.default_rng(size)
    labels = _apertures((size, size), step=32)
    for image in (
        rng.normal(100.0, 5.0, (size, size)),
        np.round(rng.poisson(20.0, (size, size)) + rng.normal(0, 3.0, (size, size))),
    ):
        auto = postprocess.measure(labels, intensity=image, background=100.0, error=5.0)
        plain = postprocess.measure(
            labels, intensity=image, background=100.0, error=5.0, noise_correlation=None
        )
        np.testing.assert_array_equal(auto["flux_err"], plain["flux_err"])
        np.testing.assert_array_equal(auto["x_weighted_err"], plain["x_weighted_err"])
        assert "FLUXCORR" not in auto.meta  # "auto" does not measure what it would not apply
        measured = postprocess.measure(
            labels, intensity=image, background=100.0, error=5.0, noise_correlation="measure"
        )
        np.testing.assert_array_equal(measured["flux_err"], plain["flux_err"])
        assert "consistent with independent pixels" in measured.meta["FLUXCORR"]


def test_sky_structure_is_not_taken_for_correlated_noise(data_dir):
    """A crowded HST field (rho 0.3 at 4 px) and a bright star's unlabelled wings correlate the
    background far past a resampling kernel: reported, not applied (the flux_err photutils
    gives, as before)."""
    from photutils.segmentation import detect_sources

    img = io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    data = np.asarray(img.data[..., 0], np.float64)
    level, rms = postprocess.background_and_rms(img)
    labels = detect_sources(np.nan_to_num(data - level), 5 * np.median(rms), 8).data
    auto = postprocess.measure(labels, intensity=img, background=level, error=rms)
    plain = postprocess.measure(
        labels, intensity=img, background=level, error=rms, noise_correlation=None
    )
    np.testing.assert_array_equal(auto["flux_err"], plain["flux_err"])
    measured = postprocess.measure(
        labels, intensity=img, background=level, error=rms, noise_correlation="measure"
    )
    np.testing.assert_array_equal(measured["flux_err"], plain["flux_err"])
    assert "spread farther than a resampling's" in measured.meta["FLUXCORR"]

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    star = 3000.0 * np.exp(-((yy - 64) ** 2 + (xx - 60) ** 2) / (2 * 3.0**2))
    labels = ((yy - 64) ** 2 + (xx - 60) ** 2 <= 36).astype(np.int32)  # 2 sigma: wings out
    for _ in range(10):
        image = rng.poisson(200.0 + star) + rng.normal(0, 5.0, star.shape)
        corr = noise_correlation(image, labels)
        assert not corr.applied[0], corr.describe()


def test_resampled_sources_get_their_photons_variance():
    """Poisson sources on a resampled image: a pixel holds 1/R(inf) of its photons' variance,
    so estimate_error divides its Poisson term by R(inf) where measure applies sqrt(R): flux_err
    of bright and faint stars matches their scatter (R on everything: 0.78x)."""
    rng = np.random.default_rng(7)
    big = 320
    yy, xx = np.mgrid[:big, :big]
    truth = np.full((big, big), 50.0)
    for _ in range(24):
        y, x = rng.uniform(90, big - 90, 2)
        flux = 10 ** rng.uniform(2.7, 4.3)
        truth += flux * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.5) / (4.5 * np.pi)

    def observe():
        electrons = rng.poisson(truth) + rng.normal(0, 5.0, truth.shape)
        return _resampled(electrons)[64:-64, 64:-64]

    from photutils.segmentation import detect_sources

    mean = _resampled(truth)[64:-64, 64:-64]
    labels = detect_sources(mean - 50.0, 11.0, 5).data
    ids = labels.ravel()
    sums = np.array([np.bincount(ids, observe().ravel())[1:] for _ in range(150)])
    scatter = sums.std(axis=0, ddof=1)
    errors = []
    for _ in range(5):
        img = _drizzled(observe(), bunit="ELECTRONS")
        level, rms = postprocess.background_and_rms(img, labels)
        error, source = postprocess.estimate_error(
            img, labels, background=level, background_rms=rms
        )
        table = postprocess.measure(labels, intensity=img, background=level, error=error)
        errors.append(np.asarray(table["flux_err"]))
    assert "over R(inf)" in source
    ratio = scatter / np.median(errors, axis=0)
    assert len(ratio) > 8
    assert np.median(ratio) == pytest.approx(1.0, abs=0.08)
    assert ratio.min() > 0.8 and ratio.max() < 1.25


def test_tiles_and_window_reads_gather_the_whole_image_numbers():
    """Each box's numbers come from its own pixels: tiles on the box grid in any order, or the
    sampled boxes read through a window reader (a block-wise run's), give the same bits."""
    rng = np.random.default_rng(3)
    image = _resampled(rng.normal(0, 3.0, (300, 420))).astype(np.float32)  # a file's
    labels = _apertures(image.shape, radius2=30, step=40)
    whole = NoiseCorrelation.of(image, labels)
    grown = ndi.binary_dilation(labels > 0, iterations=3)
    tiles = NoiseCorrelation(image.shape)
    for y0, y1 in ((192, 300), (0, 64), (64, 192)):  # out of order, of several sizes
        for x0, x1 in ((320, 420), (0, 128), (128, 320)):
            window = (slice(y0, y1), slice(x0, x1))
            tiles.add((y0, x0), image[window].astype(np.float64), grown[window])
    tiles.finish()
    calls = []

    def read(ys, xs):
        calls.append((ys, xs))
        return image[ys[0] : ys[1], xs[0] : xs[1]]

    windows = NoiseCorrelation.from_windows(read, labels, image.shape)
    for other in (tiles, windows):
        np.testing.assert_array_equal(other.rho, whole.rho)
        assert other.ratio_inf[0] == whole.ratio_inf[0] and other.applied[0]
    assert len(calls) == len(whole.boxes) and all(y1 - y0 == 64 for (y0, y1), _ in calls)


def test_a_large_image_is_sampled():
    rng = np.random.default_rng(5)
    image = rng.normal(0, 1.0, (3000, 2600)).astype(np.float32)
    corr = NoiseCorrelation.of(image)
    assert 150 < len(corr.boxes) <= 256 and corr.stride > 1
    assert not corr.applied[0] and abs(corr.ratio_inf[0] - 1.0) < 0.05


def test_channels_are_measured_each():
    rng = np.random.default_rng(2)
    image = np.stack(
        [_resampled(rng.normal(0, 4.0, (192, 192))), rng.normal(0, 4.0, (192, 192))], axis=-1
    )
    labels = _apertures((192, 192), step=48)
    table = postprocess.measure(  # a plain array: no header, "measure" applies it
        labels, intensity=image, background=0.0, error=4.0, noise_correlation="measure"
    )
    plain = postprocess.measure(
        labels, intensity=image, background=0.0, error=4.0, noise_correlation=None
    )
    factor = np.asarray(table["flux_err"]) / np.asarray(plain["flux_err"])
    assert np.all(factor[:, 0] > 1.3) and np.all(factor[:, 1] == 1.0)
    assert table.meta["FLUXCORR"].startswith("correlated noise per channel: ")


def test_a_given_ratio_and_refusals():
    labels = np.zeros((20, 20), np.int32)
    labels[5:10, 5:10] = 1
    image = np.ones((20, 20))
    table = postprocess.measure(labels, intensity=image, error=0.5, noise_correlation=4.0)
    assert table["flux_err"][0] == pytest.approx(2.5 * 2)  # sqrt(25) x 0.5 x sqrt(4)
    assert table.meta["FLUXCORR"] == "correlated noise: R = 4 given; flux_err x sqrt(R)"
    with pytest.raises(ConfigError, match="already carry a correlated-noise factor"):
        apply_noise_correlation(table, 2.0)
    for bad in ("bogus", -1.0, True, "drizzle"):
        with pytest.raises(ConfigError, match="noise_correlation"):
            postprocess.measure(labels, intensity=image, error=0.5, noise_correlation=bad)
    with pytest.raises(ConfigError, match="noise_correlation"):  # checked without flux_err too
        postprocess.measure(labels, intensity=image, noise_correlation="bogus")
    other = NoiseCorrelation.of(np.zeros((64, 64, 2)))
    with pytest.raises(ConfigError, match="1 channel"):
        postprocess.measure(labels, intensity=image, error=0.5, noise_correlation=other)
    unfinished = NoiseCorrelation((64, 64))
    with pytest.raises(ConfigError, match="not finished"):
        postprocess.measure(labels, intensity=image, error=0.5, noise_correlation=unfinished)
    # images under one 64-pixel box: nothing measured, nothing said
    small = postprocess.measure(labels, intensity=image, error=0.5)
    assert small["flux_err"][0] == pytest.approx(2.5) and "FLUXCORR" not in small.meta


def test_a_radio_map_is_left_to_its_beam_correction():
    """A map in Jy/beam: the beam's correlation is flux_density_err's (no second factor)."""
    from astropy.wcs import WCS

    rng = np.random.default_rng(4)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    beam = ndi.gaussian_filter(rng.normal(0, 1.0, (192, 192)), 1.5)
    header = fits.Header({"BMAJ": 4 / 3600, "BMIN": 4 / 3600})
    img = GridImage(beam[..., None], header=header, wcs=wcs, meta={"bunit": "JY/BEAM"})
    labels = _apertures((192, 192), step=48)
    table = postprocess.measure(labels, intensity=img, background=0.0, error=0.1)
    assert "FLUXCORR" not in table.meta
    pixels = postprocess.beam_pixels(img)
    np.testing.assert_allclose(table["flux_density_err"], table["flux_err"] / np.sqrt(pixels))
    np.testing.assert_allclose(table["flux_err"], 0.1 * np.sqrt(table["area"]))
