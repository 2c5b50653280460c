"""``noise_correlation="auto"`` applies a resampling's correlation only to an image whose header
says it was resampled (QA review of the correlated-noise factor, finding 1): a detector frame
(white noise) of a crowded field with an undersampled PSF measures as a resampling's, and its
flux_err came out 1.1-1.35x too large. ``"measure"`` applies it whatever the header says."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import NDData
from scipy import ndimage as ndi

from sciconv import postprocess
from sciconv.errors import ConfigError
from sciconv.io import GridImage
from sciconv.postprocess import resampled_by

SHAPE = (256, 256)


def _apertures(shape=SHAPE, step=32, radius2=16):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k, (y, x) in enumerate(
        ((y, x) for y in range(16, shape[0] - 15, step) for x in range(16, shape[1] - 15, step)),
        1,
    ):
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= radius2] = k
    return labels


def _crowded_frame(seed=0):
    """The reviewer's repro 1: a detector frame (Poisson + read noise, nothing resampled) of 3000
    faint sources below detection with a PSF of sigma 0.8 pixel."""
    rng = np.random.default_rng(11)
    deposit = np.zeros(SHAPE)
    ys, xs = rng.integers(0, SHAPE[0], 3000), rng.integers(0, SHAPE[1], 3000)
    np.add.at(deposit, (ys, xs), 150.0 * rng.power(0.3, 3000))
    sky = ndi.gaussian_filter(deposit, 0.8, mode="constant") + 100.0
    noise = np.random.default_rng(seed)
    return noise.poisson(sky).astype(np.float64) + noise.normal(0, 3.0, SHAPE)


def _resampled(seed=3, shape=(192, 192)):
    white = np.random.default_rng(seed).normal(100.0, 4.0, shape)
    return ndi.shift(white, (0.37, 0.61), order=1, mode="reflect")


def test_a_crowded_detector_frame_keeps_its_flux_err_bit_for_bit():
    img, labels = _crowded_frame(), _apertures()
    error, source = postprocess.estimate_error(img, labels, gain=1.0)
    plain_error, plain_source = postprocess.estimate_error(
        img, labels, gain=1.0, noise_correlation=None
    )
    np.testing.assert_array_equal(error, plain_error)
    assert source == plain_source == "background rms + Poisson (effective gain 1)"
    table = postprocess.measure(labels, intensity=img, background=100.0, error=error)
    plain = postprocess.measure(
        labels, intensity=img, background=100.0, error=error, noise_correlation=None
    )
    np.testing.assert_array_equal(table["flux_err"], plain["flux_err"])
    np.testing.assert_array_equal(table["x_weighted_err"], plain["x_weighted_err"])
    # the header says nothing: not measured (nothing would be applied), flux_err as before
    assert "FLUXCORR" not in table.meta
    assert table["flux_err"].description == plain["flux_err"].description
    forced = postprocess.measure(
        labels, intensity=img, background=100.0, error=error, noise_correlation="measure"
    )
    assert np.all(np.asarray(forced["flux_err"]) > 1.1 * np.asarray(plain["flux_err"]))


@pytest.mark.parametrize(
    "image_of",
    [
        lambda p: GridImage(p, header=fits.Header({"D001KERN": "square"})),
        lambda p: GridImage(p, meta={"primary": {"S_RESAMP": "COMPLETE"}}),
        lambda p: NDData(p[..., 0], meta={"HISTORY": ["resampled onto a common grid"]}),
    ],
    ids=["D001KERN", "primary S_RESAMP", "NDData HISTORY"],
)
def test_a_header_that_says_resampled_gets_the_factor(image_of):
    pixels = _resampled()[..., None].astype(np.float32)
    labels = _apertures(pixels.shape[:2], step=48)
    image = image_of(pixels)
    table = postprocess.measure(labels, intensity=image, background=100.0, error=4.0)
    plain = postprocess.measure(
        labels, intensity=image, background=100.0, error=4.0, noise_correlation=None
    )
    factor = np.asarray(table["flux_err"]) / np.asarray(plain["flux_err"])
    assert np.all(factor > 1.3)
    assert (
        f"flux_err x sqrt(R(sqrt(area))) (resampled: {resampled_by(image)})"
        in (table.meta["FLUXCORR"])
    )
    # the same image without its header: not measured; "measure" applies it
    bare = postprocess.measure(labels, intensity=pixels, background=100.0, error=4.0)
    np.testing.assert_array_equal(bare["flux_err"], plain["flux_err"])
    assert "FLUXCORR" not in bare.meta
    forced = postprocess.measure(
        labels, intensity=pixels, background=100.0, error=4.0, noise_correlation="measure"
    )
    np.testing.assert_array_equal(forced["flux_err"], table["flux_err"])


def test_estimate_error_divides_the_poisson_term_only_where_the_header_says_resampled():
    pixels = _resampled()
    labels = _apertures(pixels.shape, step=48)
    drizzled = GridImage(pixels[..., None], header=fits.Header({"NDRIZIM": 6}))
    _, source = postprocess.estimate_error(drizzled, labels, gain=1.0)
    assert "over R(inf)" in source
    for value in ("auto", None):
        _, source = postprocess.estimate_error(pixels, labels, gain=1.0, noise_correlation=value)
        assert source == "background rms + Poisson (effective gain 1)"
    _, source = postprocess.estimate_error(pixels, labels, gain=1.0, noise_correlation="measure")
    assert "over R(inf)" in source


def test_resampled_by_reads_the_cards_that_say_so():
    def of(cards, where="header"):
        if where == "primary":
            return resampled_by(GridImage(np.zeros((2, 2, 1), np.float32), meta={"primary": cards}))
        return resampled_by(GridImage(np.zeros((2, 2, 1), np.float32), header=fits.Header(cards)))

    assert of({"D003PIXF": 0.8}) == "D003PIXF = '0.8'"
    assert of({"RESAMPT1": "LANCZOS3"}) == "RESAMPT1 = 'LANCZOS3'"
    assert of({"SOFTNAME": "SWarp"}) == "SOFTNAME = 'SWarp'"
    assert of({"S_RESAMP": "COMPLETE"}, "primary") == "S_RESAMP = 'COMPLETE'"
    history = fits.Header()
    history.add_history("Drizzled with AstroDrizzle 3.7")
    assert of(history) == "HISTORY Drizzled with AstroDrizzle 3.7"
    # a detector frame's cards say nothing
    for cards in ({"S_RESAMP": "SKIPPED"}, {"SOFTNAME": "SExtractor"}, {"D001VER": "x"}, {}):
        assert of(cards) is None and of(cards, "primary") is None
    flat = fits.Header()
    flat.add_history("flat-fielded")
    assert of(flat) is None and resampled_by(np.zeros((4, 4))) is None


def test_noise_correlation_refuses_another_word():
    labels = _apertures((96, 96), step=48)
    with pytest.raises(ConfigError, match="'auto', 'measure'"):
        postprocess.measure(labels, intensity=np.ones((96, 96)), error=1.0, noise_correlation="x")


def test_a_jwst_i2d_file_says_it_was_resampled_from_its_primary_header(tmp_path):
    """JWST keeps S_RESAMP (and HST drizzle its HISTORY) in the primary header, the pixels in
    SCI: the read image must carry them for ``measure``'s "auto" decision."""
    from astropy.io import fits

    from sciconv import io
    from sciconv.postprocess import resampled_by

    primary = fits.PrimaryHDU()
    primary.header["S_RESAMP"] = "COMPLETE"
    sci = fits.ImageHDU(np.zeros((8, 8), np.float32), name="SCI")
    fits.HDUList([primary, sci]).writeto(tmp_path / "jw_i2d.fits")
    assert resampled_by(io.read(tmp_path / "jw_i2d.fits")) == "S_RESAMP = 'COMPLETE'"
    primary = fits.PrimaryHDU()
    primary.header.add_history("AstroDrizzle processing performed using:")
    fits.HDUList([primary, sci]).writeto(tmp_path / "j_drz.fits")
    assert resampled_by(io.read(tmp_path / "j_drz.fits")).startswith("HISTORY AstroDrizzle")
    fits.HDUList([fits.PrimaryHDU(), sci]).writeto(tmp_path / "plain.fits")
    assert resampled_by(io.read(tmp_path / "plain.fits")) is None
