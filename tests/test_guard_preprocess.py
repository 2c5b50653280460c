"""Guards of the normalization limits of images larger than the subsample (mutation-testing
survivor r03).

r03: ``minmax`` limits, and the fallback of ``percentile`` on a nearly flat image, come from
every pixel of an in-memory image, not from the random subsample taken when a channel has more
than ``max_samples`` pixels: a subsample misses single-pixel peaks (stars), which then
normalise far above 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from sciconv.preprocess import compute_limits, normalize

MAX_SAMPLES = 100  # the subsample size; the images below have many more pixels


def _sky(shape=(48, 64), seed=1):
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, 5.0, shape).astype(np.float32)
    img[7, 9] = 60000.0  # a star: one bright pixel
    img[40, 50] = 20000.0
    img[30, 3] = -500.0  # a cold pixel
    return img


def test_minmax_limits_of_a_subsampled_image_equal_numpys_over_every_pixel():
    img = _sky()
    assert img.size > MAX_SAMPLES
    lim = compute_limits(img, method="minmax", max_samples=MAX_SAMPLES)
    assert lim.vmin.tolist() == [float(img.min())] == [-500.0]
    assert lim.vmax.tolist() == [float(img.max())] == [60000.0]
    y = normalize(img, method="minmax", max_samples=MAX_SAMPLES)
    assert float(y.max()) == pytest.approx(1.0) and float(y.min()) == pytest.approx(0.0)
    assert float(y[7, 9]) == pytest.approx(1.0)


def test_minmax_limits_per_image_and_channel_of_a_subsampled_batch():
    a, b = _sky(seed=1), _sky(seed=2) * 0.5
    batch = np.stack([np.stack([a, b], axis=-1), np.stack([b, a], axis=-1)])  # (2, H, W, 2)
    lim = compute_limits(batch, method="minmax", max_samples=MAX_SAMPLES)
    np.testing.assert_array_equal(lim.vmin, batch.min(axis=(1, 2)))
    np.testing.assert_array_equal(lim.vmax, batch.max(axis=(1, 2)))
    y = normalize(batch, method="minmax", max_samples=MAX_SAMPLES)
    np.testing.assert_allclose(y.max(axis=(1, 2)), 1.0, rtol=1e-6)


def test_minmax_of_an_image_just_over_the_default_subsample_size():
    img = np.zeros((1001, 1000), np.float32)  # 1,001,000 pixels > max_samples = 1,000,000
    img[::7, ::11] = 1.0
    img[123, 456] = 5000.0  # one hot pixel
    img[999, 3] = -7.0
    lim = compute_limits(img, method="minmax")
    assert (lim.vmin[0], lim.vmax[0]) == (-7.0, 5000.0)


def test_percentile_of_a_nearly_flat_subsampled_image_falls_back_to_every_pixels_range():
    """Percentiles of a flat sky are one value (no span): the limits fall back to the exact
    min/max of the whole image, which the subsample can miss."""
    img = np.full((48, 64), 7.0, np.float32)
    img[5, 5], img[40, 60] = 9.0, 5.0  # two pixels off the flat level
    lim = compute_limits(img, method="percentile", max_samples=MAX_SAMPLES)
    assert (lim.vmin[0], lim.vmax[0]) == (5.0, 9.0)
    y = normalize(img, max_samples=MAX_SAMPLES)
    assert (float(y.min()), float(y[0, 0]), float(y.max())) == pytest.approx((0.0, 0.5, 1.0))
