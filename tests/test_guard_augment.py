"""Guards of the intensity augmentations (mutation-testing survivor u03).

u03: contrast scales the deviations from *each sample's own* mean: every image keeps its mean
(its brightness does not depend on which images share its batch), and its deviations are
scaled by one factor in ``[1 - contrast, 1 + contrast]``.
"""

from __future__ import annotations

import numpy as np

from sciconv.augment import augment_batch


def test_contrast_pivots_on_each_samples_own_mean():
    rng = np.random.default_rng(0)
    levels = [0.1, 0.9, 0.5, -0.3]  # a dim, a bright, a mid and a negative image
    x = np.stack([rng.normal(m, 0.05, (16, 16, 1)) for m in levels]).astype(np.float32)
    contrast = 0.5
    for seed in (3, 11):
        xa = augment_batch(x, seed=seed, d4=False, contrast=contrast).numpy()
        mean_in, mean_out = x.mean(axis=(1, 2, 3)), xa.mean(axis=(1, 2, 3))
        np.testing.assert_allclose(mean_out, mean_in, atol=1e-5)
        dev_in = x - mean_in[:, None, None, None]
        dev_out = xa - mean_in[:, None, None, None]
        factors = (dev_out * dev_in).sum(axis=(1, 2, 3)) / (dev_in**2).sum(axis=(1, 2, 3))
        assert ((factors >= 1 - contrast) & (factors <= 1 + contrast)).all()
        # one factor per sample: out = mean + factor * (x - mean), pixel by pixel
        np.testing.assert_allclose(dev_out, factors[:, None, None, None] * dev_in, atol=1e-5)
        assert not np.allclose(factors, 1.0)  # the augmentation did change the contrast


def test_a_constant_image_is_unchanged_by_contrast_in_any_batch():
    x = np.stack([np.full((8, 8, 1), 0.2), np.full((8, 8, 1), 0.8)]).astype(np.float32)
    xa = augment_batch(x, seed=5, d4=False, contrast=0.9).numpy()
    np.testing.assert_allclose(xa, x, atol=1e-6)
