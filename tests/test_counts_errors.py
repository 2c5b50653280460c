"""Photon-counts images (X-ray): Poisson error bars, an unbiased background, no zero errors.

QA /tmp/qa53/stats 1, 2: on an XMM-like image (``BUNIT = 'count'``, 0.05 count/px) the
background rms was 0, so every ``flux_err`` was 0 and the SNR infinite, and the background level
(a sigma-clipped median) was 0 below 0.69 count/px, so faint sources carried the whole
background (+96 % at 0.6 count/px).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from sciconv import postprocess
from sciconv.errors import SciconvWarning
from sciconv.io import GridImage

H = W = 256
CENTRES = [(y, x) for y in range(32, H - 31, 48) for x in range(32, W - 31, 48)]


def _xray(rate, rng, counts=30, header=None, poisson_sources=False):
    """A counts image with 30-count point sources (PSF sigma 1.2 px) and their footprints."""
    yy, xx = np.mgrid[:H, :W]
    img = rng.poisson(rate, (H, W)).astype(np.int32)
    labels = np.zeros((H, W), np.int32)
    for k, (y, x) in enumerate(CENTRES, 1):
        n = rng.poisson(counts) if poisson_sources else counts
        py = np.clip(rng.normal(y, 1.2, n).round().astype(int), 0, H - 1)
        px = np.clip(rng.normal(x, 1.2, n).round().astype(int), 0, W - 1)
        np.add.at(img, (py, px), 1)
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= 16] = k
    if header is None:
        header = {"BUNIT": "count", "TELESCOP": "XMM", "INSTRUME": "EPN", "EXPOSURE": 3e4}
    bunit = header.get("BUNIT")
    grid = GridImage(
        img[..., None].astype(np.float32), header=fits.Header(header), meta={"bunit": bunit}
    )
    return grid, labels


def _catalog(grid, labels):
    bkg, rms = postprocess.background_and_rms(grid, labels)
    err, how = postprocess.estimate_error(grid, background=bkg, background_rms=rms)
    return postprocess.measure(labels, intensity=grid, background=bkg, error=err), bkg, rms, how


def test_xray_counts_get_poisson_flux_errors():
    grid, labels = _xray(0.05, np.random.default_rng(2))
    table, _, rms, how = _catalog(grid, labels)
    assert how == "background rms + Poisson (effective gain 1)"
    assert np.allclose(rms, np.sqrt(0.05), rtol=0.1)  # was 0 everywhere
    flux, err = np.asarray(table["flux"]), np.asarray(table["flux_err"])
    expected = np.sqrt(flux + 0.05 * np.asarray(table["area"]))  # sqrt(source + background)
    assert np.allclose(err, expected, rtol=0.08)
    x_err = np.asarray(table["x_weighted_err"])
    assert np.all((x_err > 0.1) & (x_err < 0.4))  # ~1.2 / sqrt(30) = 0.22 px, was 0


def test_xray_flux_pulls_have_unit_spread():
    """(flux - truth) / flux_err over noise draws (Poisson sources and background): std ~ 1."""
    rng = np.random.default_rng(7)
    pulls = []
    for _ in range(8):
        grid, labels = _xray(0.05, rng, poisson_sources=True)
        table = _catalog(grid, labels)[0]
        pulls.append((np.asarray(table["flux"]) - 30 * 0.996) / np.asarray(table["flux_err"]))
    pulls = np.concatenate(pulls)
    assert np.isfinite(pulls).all()
    assert 0.85 < pulls.std() < 1.15
    assert abs(pulls.mean()) < 0.35


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_counts_background_is_the_poisson_mean(rate):
    """The median of Poisson(rate < ln 2) counts is 0: the level is their clipped mean."""
    grid, labels = _xray(rate, np.random.default_rng(3))
    table, bkg, rms, _ = _catalog(grid, labels)
    assert abs(float(np.median(bkg)) - rate) < 0.05 * rate + 0.005  # was 0.000
    assert abs(float(np.median(rms)) - np.sqrt(rate)) < 0.05 * np.sqrt(rate)
    assert abs(float(np.mean(table["flux"])) - 30) < 1.5  # was 44 at 0.3, 59 at 0.6


def test_counts_background_ignores_an_unlabelled_source():
    rng = np.random.default_rng(4)
    img = rng.poisson(0.2, (128, 128)).astype(np.float32)
    img[60:66, 60:66] += 40  # a bright source nobody labelled
    level, rms = postprocess.background_and_rms(img)
    assert abs(float(np.median(level)) - 0.2) < 0.02
    assert abs(float(np.median(rms)) - np.sqrt(0.2)) < 0.03


def test_float_and_adu_images_keep_the_clipped_median():
    """Only Poisson counts change estimator: a float sky and an integer ADU frame with read
    noise (variance far from the mean) give photutils' sigma-clipped median as before."""
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MedianBackground

    rng = np.random.default_rng(5)
    for img in (
        100 + rng.normal(0, 3, (256, 256)) + rng.exponential(2, (256, 256)),
        np.round(1000 + rng.normal(0, 5, (256, 256))),
    ):
        level, rms = postprocess.background_and_rms(img)
        ref = Background2D(
            img,
            (64, 64),
            filter_size=(3, 3),
            sigma_clip=SigmaClip(sigma=3.0),
            bkg_estimator=MedianBackground(),
            exclude_percentile=50.0,
        )
        assert np.array_equal(level, ref.background)
        assert np.array_equal(rms, ref.background_rms)


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ({"BUNIT": "count", "TELESCOP": "XMM"}, 1.0),
        ({"BUNIT": "counts", "TELESCOP": "CHANDRA", "INSTRUME": "ACIS"}, 1.0),
        ({"TELESCOP": "CHANDRA", "INSTRUME": "ACIS"}, 1.0),  # dmcopy: no BUNIT
        ({"BUNIT": "ct/s", "TELESCOP": "SRG", "EXPOSURE": 2000.0}, 2000.0),
        ({"BUNIT": "count", "TELESCOP": "XMM", "GAIN": 3.0}, 3.0),  # a gain card wins
        ({"BUNIT": "count", "TELESCOP": "SWIFT", "INSTRUME": "BAT"}, None),  # coded mask
        ({"BUNIT": "COUNTS", "TELESCOP": "INT", "INSTRUME": "WFC"}, None),  # a CCD's ADU
        ({"BUNIT": "count"}, None),
        ({"EXPTIME": 30.0}, None),  # integers with an exposure say nothing of the gain
    ],
)
def test_effective_gain_of_photon_counts(header, want):
    image = GridImage(
        np.zeros((4, 4, 1), np.float32),
        header=fits.Header(header),
        meta={"bunit": header.get("BUNIT")},
    )
    assert postprocess.effective_gain(image) == want


def test_zero_rms_without_gain_is_nan_and_warned():
    """A noise-free background (rms 0) and no gain: no error is known, not an error of 0."""
    img = np.full((64, 64), 100.0)
    img[30:34, 30:34] += 50
    labels = np.zeros((64, 64), np.int32)
    labels[30:34, 30:34] = 1
    with pytest.warns(SciconvWarning, match=r"rms is 0 .*those pixels is NaN, not 0"):
        err, how = postprocess.estimate_error(img, labels, gain=None)
    assert how == postprocess.NO_POISSON
    assert np.isnan(err).all()
    table = postprocess.measure(labels, intensity=img, background=100.0, error=err)
    assert np.isnan(table["flux_err"][0])  # was 0: an SNR of infinity


def test_sparse_counts_without_a_gain_have_a_background_error():
    """A plain array of counts (gain unknown): the Poisson rms of the background, never 0."""
    rng = np.random.default_rng(6)
    img = rng.poisson(0.05, (256, 256)).astype(np.float32)
    err, how = postprocess.estimate_error(img)
    assert how == postprocess.NO_POISSON
    assert np.allclose(err, np.sqrt(0.05), rtol=0.15)
