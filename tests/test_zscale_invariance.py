"""zscale limits are a function of an image's good pixels: no-data around them moves nothing.

QA (invariance report, finding 2): zscale fitted its line to 1000 pixels drawn by a generator
seeded by the image's size. One extra NaN row below the real HST cutout (every good pixel the
same) redrew the sample and moved vmax from 2182 to 1807; 1 to 40 NaN rows spread vmax over
1801-2452, and the demo's zscale sky detector changed a quarter of its catalog.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.visualization import ZScaleInterval

from sciconv import io, simulate
from sciconv import preprocess as pp
from sciconv.preprocess._zscale import ZSCALE_PIXELS, zscale_limits, zscale_values


@pytest.fixture(scope="module")
def hst(data_dir) -> np.ndarray:
    """The bundled HST/ACS cutout (512 x 512, electrons/s), float32."""
    image = io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    return np.asarray(image.data[..., 0], dtype=np.float32)


@pytest.fixture(scope="module")
def sky() -> np.ndarray:
    """A 1024 x 1024 simulated sky (QA's), its integer ADU dithered to continuous values."""
    image, _, _ = simulate.sky_field((1024, 1024), seed=3)
    dither = np.random.default_rng(0).uniform(-0.5, 0.5, image.shape)
    return (image + dither).astype(np.float32)


def _limits(x, **kwargs) -> tuple[float, float]:
    lim = pp.compute_limits(x, method="zscale", **kwargs)
    return float(lim.vmin[0]), float(lim.vmax[0])


def _rms(x) -> float:
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def _astropy_kept(x) -> tuple[float, float]:
    """astropy's ZScaleInterval on every value of rank 1/1001 to 1000/1001 (the expected least
    and greatest of its default 1000-value sample)."""
    from sciconv.preprocess._zscale import zscale_clamp

    s = np.sort(np.asarray(x, dtype=np.float64).ravel())
    first, last = zscale_clamp(s.size)
    kept = s[first : last + 1]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's polyfit warns on flat data
        return ZScaleInterval(n_samples=kept.size).get_limits(kept)


NO_DATA = {
    "1 NaN row below": ((0, 1), (0, 0)),
    "2 NaN rows above": ((2, 0), (0, 0)),
    "7 NaN rows below": ((0, 7), (0, 0)),
    "40 NaN rows below": ((0, 40), (0, 0)),
    "1 NaN column": ((0, 0), (1, 0)),
    "16 px NaN frame": ((16, 16), (16, 16)),
}


@pytest.mark.parametrize("pad", NO_DATA.values(), ids=NO_DATA.keys())
def test_no_data_around_a_real_image_leaves_its_zscale_limits_unchanged(hst, pad):
    clean = _limits(hst)
    assert _limits(np.pad(hst, pad, constant_values=np.nan)) == clean
    # as a (H, W, 1) image and through a normalization spec (what models record)
    framed = np.pad(hst, pad, constant_values=np.nan)[..., None]
    lim = pp.NormSpec("zscale").limits(framed)
    assert (float(lim.vmin[0]), float(lim.vmax[0])) == clean


@pytest.mark.parametrize("n", [1, 2, 3, 999, 1000, 1001, 1501, 1502, 2002, 262_144, 10**7])
def test_clamp_ranks_are_the_expected_extremes_of_a_1000_value_sample(n):
    """The min and max of 1000 of n values have expected ranks (n + 1) / 1001 and
    1000 (n + 1) / 1001 (numpy's "weibull" quantiles): the nearest ranks are kept."""
    from sciconv.preprocess._zscale import zscale_clamp

    first, last = zscale_clamp(n)
    assert 0 <= first <= last == n - 1 - first
    if n > 1000:
        assert abs((first + 1) - (n + 1) / 1001) <= 0.5
        assert abs((last + 1) - 1000 * (n + 1) / 1001) <= 0.5
    else:
        assert (first, last) == (0, n - 1)
    x = np.arange(float(n))
    q = np.quantile(x, [1 / 1001, 1000 / 1001], method="weibull")
    assert np.all(np.abs(q - (first, last)) <= 0.5)


def test_zscale_limits_of_a_real_image_are_astropys_on_the_kept_pixels(hst):
    """astropy's ZScaleInterval on every pixel of rank 1/1001 to 1000/1001 (55.2, 1992; the
    1000-pixel draw gave 50.0, 2182; every pixel 30.4 (the image's minimum), 2016). astropy's
    own code takes seconds here (its rejection grows the mask with an O(n^2) convolution), so
    it runs on a 128 x 128 corner; the whole image is checked against the values it gives."""
    corner = hst[:128, :128]
    assert _limits(corner) == pytest.approx(_astropy_kept(corner), rel=1e-9)
    vmin, vmax = _limits(hst)
    first = round((hst.size + 1) / 1001) - 1
    assert vmin == float(np.sort(hst.ravel())[first])  # z1 is below the least kept pixel
    assert vmin == pytest.approx(55.1763, abs=1e-3)
    assert vmax == pytest.approx(1991.986, abs=1e-2)


@pytest.mark.parametrize("n", [1, 2, 4, 5, 6, 40, 1000, 20_000])
@pytest.mark.parametrize("kind", ["sky", "quantized", "flat", "two levels", "dead pixel"])
def test_zscale_limits_equal_astropys(n, kind):
    """astropy's on all values up to 1000 (its default sample holds them all), on the kept
    ones above."""
    rng = np.random.default_rng(n)
    x = rng.normal(100.0, 10.0, n)
    if kind == "sky":
        x[rng.integers(0, n, max(1, n // 50))] += rng.uniform(100, 5000, max(1, n // 50))
    elif kind == "quantized":
        x = np.round(x / 5.0) * 5.0
    elif kind == "flat":
        x[:] = 3.0
    elif kind == "two levels":
        x = np.where(rng.random(n) < 0.3, 1000.0, 10.0)
    else:
        x[n // 2] = -1e4
    expect = _astropy_kept(x)
    if n <= 1000:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert expect == ZScaleInterval(n_samples=n).get_limits(x)
    got = zscale_limits(x)
    span = max(float(expect[1] - expect[0]), 1e-12)
    assert got == pytest.approx(expect, rel=1e-9, abs=1e-9 * span)


@pytest.mark.parametrize("value", [-1e4, 1e6])
@pytest.mark.parametrize("image", ["hst", "sky"])
def test_one_outlier_pixel_leaves_the_limits_unchanged(image, value, request):
    """QA: one dead pixel set vmin (the least of every pixel): -1.5 sky rms on the simulated
    sky; on the HST cutout, rejected, it grew its rejection over the lowest 0.5 % of the values
    and moved vmax by 1.7 % of the span. Now the outlier is left out: the limits move no more
    than a pixel's value does (2e-4 of the span)."""
    x = request.getfixturevalue(image)
    clean = _limits(x)
    hit = x.copy()
    hit[300, 200] = value
    got = _limits(hit)
    span = clean[1] - clean[0]
    assert got == pytest.approx(clean, abs=1e-3 * span)
    assert abs(got[0] - clean[0]) < 1e-3 * _rms(x)


CROPS = {"256 x 256 corner": np.s_[:256, :256], "512 x 256 inside": np.s_[300:812, 500:756]}


@pytest.mark.parametrize("crop", CROPS.values(), ids=CROPS.keys())
def test_a_crop_of_a_sky_gets_the_whole_images_vmin(sky, crop):
    """vmin is the rank 1/1001 value (z1 falls below it), not the least pixel, whose depth grows
    with the count (QA: 256 x 256 crop 70 against 65 for the whole 1024 x 1024 sky)."""
    whole, part = _limits(sky), _limits(sky[crop])
    assert abs(part[0] - whole[0]) < 0.1 * _rms(sky)  # vmax: the crop's own sources


def test_subsample_of_a_large_image_is_fixed_by_its_good_pixels():
    """Above ``max_samples`` zscale fits a fixed subsample of the finite area: a NaN frame or
    NaN rows leave every place (and the limits) as they are, and the limits have converged to
    those of every pixel."""
    rng = np.random.default_rng(5)
    image = rng.normal(100.0, 10.0, (500, 400)).astype(np.float32)
    image.flat[rng.integers(0, image.size, 400)] += rng.exponential(500.0, 400).astype(np.float32)
    sub = _limits(image, max_samples=50_000)
    for pad in NO_DATA.values():
        padded = np.pad(image, pad, constant_values=np.nan)
        assert _limits(padded, max_samples=50_000) == sub
        np.testing.assert_array_equal(zscale_values(padded, 50_000), zscale_values(image, 50_000))
    every = _limits(image)
    assert abs(sub[0] - every[0]) < 0.05 * 10.0  # sky sigma 10
    assert abs(sub[1] - every[1]) < 0.01 * (every[1] - every[0])


def test_large_image_uses_the_default_cap_and_no_data_moves_nothing():
    """A channel over :data:`ZSCALE_PIXELS` (1 million; here 2.2 million pixels) is
    subsampled, with the same limits whatever NaN surrounds it, within 0.01 sky sigma of every
    pixel's."""
    rng = np.random.default_rng(6)
    image = rng.normal(100.0, 10.0, (1100, 2000)).astype(np.float32)
    assert ZSCALE_PIXELS == 1_000_000 < image.size
    clean = _limits(image)
    assert _limits(np.pad(image, ((0, 1), (3, 0)), constant_values=np.nan)) == clean
    every = _limits(image, max_samples=image.size)
    assert clean == pytest.approx(every, abs=0.01 * 10.0)


def test_lazy_image_is_read_on_a_grid_and_a_small_one_whole(hst):
    """A lazy array is read on a strided grid of about ``max_samples`` pixels (default 1
    million), never whole; one smaller than that gives the in-memory limits."""
    da = pytest.importorskip("dask.array")
    clean = _limits(hst)
    assert _limits(da.from_array(hst, chunks=128)) == clean
    framed = da.from_array(np.pad(hst, 16, constant_values=np.nan), chunks=128)
    assert _limits(framed) == clean

    class Counting:
        def __init__(self, data):
            self.data, self.shape, self.read = data, data.shape, 0

        def __getitem__(self, key):
            out = self.data[key]
            self.read += out.size
            return out

    big = Counting(np.tile(hst, (6, 6)))  # 9.4 million pixels
    vmin, vmax = _limits(big)
    assert 0 < big.read <= 1_100_000
    assert 30.0 <= vmin < 200.0 < vmax < 3000.0


def test_batch_and_channels_each_get_their_own_invariant_limits(hst):
    other = hst[::-1] * 2.0 + 7.0
    both = np.stack([hst, other], axis=-1)
    lim = pp.compute_limits(both, method="zscale")
    framed = pp.compute_limits(
        np.pad(both, ((0, 3), (5, 0), (0, 0)), constant_values=np.nan), method="zscale"
    )
    np.testing.assert_array_equal(framed.vmin, lim.vmin)
    np.testing.assert_array_equal(framed.vmax, lim.vmax)
    assert (lim.vmin[0], lim.vmax[0]) == _limits(hst)
    assert (lim.vmin[1], lim.vmax[1]) == _limits(other)
    batch = pp.compute_limits(np.stack([both, both[::-1]]), method="zscale")
    np.testing.assert_array_equal(batch.vmin[0], lim.vmin)
