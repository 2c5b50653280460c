"""Integer electron frames with read noise are no photon counts (QA errbars, finding 3).

A CCD/CMOS frame in electrons (``BUNIT = ELECTRONS``, or ADU at ``GAIN = 1``) stored as uint16
after its offset is subtracted: sky 15 e-, read noise 3.5 e-, background rms
``sqrt(15 + 3.5**2) = 5.22``. Its header made it "counts", the Poisson-shape test was skipped,
and the rms came out ``sqrt(level) = 3.88`` (read noise dropped, flux_err 1.2-1.4x too small).
Only a header naming a photon-counting instrument skips the test now, whole image and block-wise
alike (``says_counts``); X-ray counts keep their Poisson background.
"""

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io, postprocess
from sciconv.inference._block_background import ImageBackground
from sciconv.postprocess import BackgroundHistogram

SKY, READ_NOISE = 15.0, 3.5
TRUE_RMS = np.sqrt(SKY + READ_NOISE**2)


def _frame(rng, shape=(192, 192)):
    electrons = rng.poisson(SKY, shape) + rng.normal(0, READ_NOISE, shape)
    return np.clip(np.round(electrons), 0, None).astype(np.uint16)


@pytest.mark.parametrize(
    "cards", [{"BUNIT": "ELECTRONS"}, {"BUNIT": "ADU", "GAIN": 1.0}, {"GAIN": 1.0}]
)
def test_an_electron_frame_keeps_its_read_noise(cards, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "frame.fits"
    fits.PrimaryHDU(_frame(rng), fits.Header(cards)).writeto(path)
    img = io.read(path)
    assert postprocess.effective_gain(img) == 1.0  # its Poisson term is still right
    assert not postprocess.says_counts(img)
    level, rms = postprocess.background_and_rms(img)
    assert np.median(rms) == pytest.approx(TRUE_RMS, rel=0.05)  # was sqrt(15) = 3.88
    assert np.median(level) == pytest.approx(SKY, abs=0.6)
    error, source = postprocess.estimate_error(img, background=level, background_rms=rms)
    assert source == "background rms + Poisson (effective gain 1)"
    assert np.median(error) > TRUE_RMS * 0.95
    # the block-wise background decides by the same rule (its histogram, tile by tile)
    data = np.asarray(img.data, np.float64)
    blocks = ImageBackground.of(
        lambda ys, xs, dtype=np.float64: data[ys[0] : ys[1], xs[0] : xs[1]].astype(dtype),
        np.zeros(data.shape[:2], np.int32),
        data.shape[:2],
        1,
        tile=128,
        says_counts=postprocess.says_counts(img),
    )
    block_level, block_rms = blocks.window((0, data.shape[0]), (0, data.shape[1]))
    np.testing.assert_allclose(block_rms, rms, rtol=1e-12)
    np.testing.assert_allclose(block_level, level, rtol=1e-12)


def test_flux_err_of_an_electron_frame_matches_the_scatter():
    """A 1500 e- star and a 8000 e- galaxy: flux_err matches the scatter over 60 realisations
    (was 1.24x and 1.31x too small; the galaxy's 2828 faint pixels each add the positive part
    of their noise to the Poisson term, photutils' rule: 5-10 % conservative)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:192, :192]
    sources = [(48.4, 144.1, 2.0, 1500.0, 7), (140.5, 96.5, 14.0, 8000.0, 30)]
    model = np.full(yy.shape, SKY)
    labels = np.zeros(yy.shape, np.int32)
    for i, (y, x, s, f, r) in enumerate(sources, 1):
        model += f * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s)) / (2 * np.pi * s * s)
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = i
    header = fits.Header({"BUNIT": "ELECTRONS"})
    fluxes, errors = [], []
    for _ in range(60):
        pixels = rng.poisson(model) + rng.normal(0, READ_NOISE, model.shape)
        data = np.clip(np.round(pixels), 0, None).astype(np.uint16)
        img = io.GridImage(data[..., None], header=header, meta={"dtype": "uint16"})
        level, rms = postprocess.background_and_rms(img, labels)
        error, _ = postprocess.estimate_error(img, labels, background=level, background_rms=rms)
        table = postprocess.measure(labels, intensity=img, background=level, error=error)
        fluxes.append(np.asarray(table["flux"]))
        errors.append(np.asarray(table["flux_err"]))
    ratio = np.std(fluxes, axis=0, ddof=1) / np.median(errors, axis=0)
    assert np.all((ratio > 0.8) & (ratio < 1.15)), ratio


def _counts(rng, shape=(192, 192)):
    """X-ray counts: Poisson at 0.5 to 3 counts/px across the field (a gradient)."""
    rate = 0.5 + 2.5 * np.linspace(0, 1, shape[1])[None, :] * np.ones(shape)
    return rng.poisson(rate).astype(np.int32)


@pytest.mark.parametrize(
    "cards, header_says",
    [
        ({"TELESCOP": "CHANDRA", "INSTRUME": "ACIS"}, True),
        ({"TELESCOP": "XMM", "BUNIT": "count"}, True),
        ({"BUNIT": "count"}, False),  # no mission: its histogram decides, and is Poisson's
        ({}, False),
    ],
)
def test_xray_counts_keep_the_poisson_background(cards, header_says, tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "counts.fits"
    fits.PrimaryHDU(_counts(rng), fits.Header(cards)).writeto(path)
    img = io.read(path)
    assert postprocess.says_counts(img) == header_says
    level, rms = postprocess.background_and_rms(img)
    np.testing.assert_array_equal(rms, np.sqrt(level))  # the counts path
    assert 0.6 < np.median(level) < 2.8


def test_a_photon_counting_header_skips_the_histogram_test():
    """A strongly varying X-ray background (0.2 to 4 counts/px) is no single Poisson pmf: the
    Chandra header still says counts, an electrons frame's does not."""
    rng = np.random.default_rng(3)
    rate = 0.2 + 3.8 * np.linspace(0, 1, 256)[None, :] * np.ones((256, 256))
    counts = rng.poisson(rate)
    hist = BackgroundHistogram.of(counts)
    assert hist.counts_rate() is None  # the histogram alone: not Poisson's pmf
    chandra = io.GridImage(counts[..., None], header=fits.Header({"TELESCOP": "CHANDRA"}))
    electrons = io.GridImage(counts[..., None], header=fits.Header({"BUNIT": "ELECTRONS"}))
    assert hist.counts_rate(postprocess.says_counts(chandra)) is not None
    assert hist.counts_rate(postprocess.says_counts(electrons)) is None
    with_gain = io.GridImage(
        counts[..., None], header=fits.Header({"TELESCOP": "CHANDRA", "GAIN": 1.0})
    )
    assert not postprocess.says_counts(with_gain)  # a detector gain: a CCD's ADU
