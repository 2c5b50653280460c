"""zscale limits barely move when a few pixels are masked; clean images get astropy's zscale of
every pixel between the expected extremes of its 1000-pixel sample (QA: seeded by the count of
finite pixels, one NaN redrew the whole 1000-pixel sample: limits 79..144 became 73..146 and a
sky detector's catalog changed by 5 %)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.visualization import ZScaleInterval

from sciconv import preprocess as pp

SIGMA = 10.0


def _sky(shape, seed=0) -> np.ndarray:
    """Sky 100 +- 10 with 40 point sources."""
    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, SIGMA, shape)
    ys, xs = rng.integers(0, shape[0], 40), rng.integers(0, shape[1], 40)
    image[ys, xs] += rng.uniform(200, 5000, 40)
    return image.astype(np.float32)


@pytest.mark.parametrize("max_samples", [1_000_000, 50_000])  # whole image, and a subsample
def test_masking_a_few_pixels_barely_moves_the_limits(max_samples):
    image = _sky((400, 400))
    clean = pp.compute_limits(image, method="zscale", max_samples=max_samples)
    rng = np.random.default_rng(1)
    for k in list(range(1, 9)) * 3:
        masked = image.copy()
        masked.flat[rng.choice(masked.size, k, replace=False)] = np.nan
        lim = pp.compute_limits(masked, method="zscale", max_samples=max_samples)
        # before: vmin moved by up to 1 sky sigma (it is the sample's minimum)
        assert abs(lim.vmin[0] - clean.vmin[0]) < 0.05 * SIGMA, (k, lim.vmin, clean.vmin)
        assert abs(lim.vmax[0] - clean.vmax[0]) < 0.05 * SIGMA, (k, lim.vmax, clean.vmax)


def test_clean_images_get_astropys_zscale_of_the_kept_pixels():
    """zscale is fitted to every pixel of rank 1/1001 to 1000/1001 (no 1000-pixel draw, whose
    limits were a random variable: vmin was the sample's minimum, here 68 instead of 54)."""
    from sciconv.preprocess._zscale import zscale_clamp

    image = _sky((300, 200), seed=2)
    pixels = np.sort(image.astype(np.float64).ravel())
    first, last = zscale_clamp(pixels.size)  # 59 pixels left out at each end
    assert (first, last) == (59, pixels.size - 60)
    kept = pixels[first : last + 1]
    expect = ZScaleInterval(n_samples=kept.size).get_limits(kept)
    lim = pp.compute_limits(image, method="zscale")
    assert (lim.vmin[0], lim.vmax[0]) == pytest.approx(expect, rel=1e-9)


def test_masked_pixels_only_drop_their_own_samples():
    """Above ``max_samples`` zscale fits a fixed subsample: masking pixels inside the image
    drops their values and keeps every other place."""
    from sciconv.preprocess._zscale import zscale_values

    image = _sky((300, 300), seed=3).astype(np.float64)
    image += np.arange(image.size).reshape(image.shape) * 1e-9  # every value unique
    masked = image.copy()
    masked[100:103] = np.nan  # three rows flagged
    masked[5, 7] = np.inf
    full = zscale_values(image, 5000)
    kept = zscale_values(masked, 5000)
    assert 4000 < full.size <= 5000
    gone = np.isin(full, image[100:103].ravel()) | (full == image[5, 7])
    assert gone.any()
    np.testing.assert_array_equal(kept, full[~gone])
