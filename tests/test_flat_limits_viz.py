"""viz stretches of a sparse counts image fall back to min..max, as preprocess does (QA: limits
-0.5..0.5, the empty sky mid-grey and one photon drawn as bright as a 50-count source)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from sciconv import viz


def _counts() -> np.ndarray:
    """A Chandra-like counts image: 99.9 % zeros, a few sources up to 11 counts."""
    rng = np.random.default_rng(1)
    image = rng.poisson(0.0005, (256, 256)).astype(np.int16)
    image[100:103, 50:53] = [[2, 5, 2], [5, 11, 5], [2, 5, 2]]
    image[200, 30] = 1
    return image


def _norm_of(fig):
    return fig.axes[0].get_images()[0].norm


@pytest.mark.parametrize("stretch", ["asinh", "zscale", "percentile", "linear"])
def test_sparse_counts_draw_from_black_to_the_brightest_pixel(stretch):
    image = _counts()
    assert (image == 0).mean() > 0.999
    norm = _norm_of(viz.show(image, stretch=stretch))
    assert (norm.vmin, norm.vmax) == (0.0, 11.0)
    at = np.clip(np.asarray(norm(np.array([0.0, 1.0, 11.0]))), 0, 1)
    assert at[0] == 0.0  # empty sky is the colormap's bottom (black), not mid-grey
    assert 0.0 < at[1] < 0.5 < at[2] == 1.0  # one photon is not a bright source


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_constant_image_still_draws_with_a_unit_range(value):
    norm = _norm_of(viz.show(np.full((32, 32), value), stretch="asinh"))
    assert (norm.vmin, norm.vmax) == (value - 0.5, value + 0.5)
