"""zscale limits barely move when a few pixels are masked, and clean images keep their limits
(QA: seeded by the count of finite pixels, one NaN redrew the whole 1000-pixel sample: limits
79..144 became 73..146 and a sky detector's catalog changed by 5 %)."""

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


def test_clean_images_keep_the_limits_models_were_trained_with():
    """Without bad pixels the sample is the 1000 places it always was (models record zscale)."""
    image = _sky((300, 200), seed=2)
    places = np.unique(np.random.default_rng(image.size).integers(0, image.size, 1000))
    expect = ZScaleInterval(n_samples=1000).get_limits(image.astype(np.float64).ravel()[places])
    lim = pp.compute_limits(image, method="zscale")
    assert (lim.vmin[0], lim.vmax[0]) == pytest.approx(expect, rel=1e-12)


def test_masked_pixels_only_drop_their_own_samples():
    from sciconv.preprocess._limits import zscale_sample

    image = _sky((300, 300), seed=3)
    places = np.unique(np.random.default_rng(image.size).integers(0, image.size, 1000))
    masked = image.copy()
    masked[:3] = np.nan  # three rows flagged
    hit = np.count_nonzero(places < 3 * 300)
    assert hit > 0
    kept = zscale_sample(masked, 1000)
    np.testing.assert_array_equal(kept, image.ravel()[places[places >= 3 * 300]])
