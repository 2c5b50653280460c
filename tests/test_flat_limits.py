"""An interval is flat relative to the data's magnitude, never below an absolute span (QA: an image
in W m-2 Hz-1, 1 uJy = 1e-32, normalized to all zeros by every method)."""

from __future__ import annotations

import numpy as np
import pytest

from sciconv import preprocess as pp

METHODS = ["percentile", "minmax", "zscale", "asinh", "zscore"]


def _ujy_field() -> np.ndarray:
    """A sky field in uJy per pixel: noise 0.05 uJy, 15 sources of 1-50 uJy."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    image = rng.normal(0.0, 0.05, (128, 128))
    for _ in range(15):
        y, x = rng.uniform(10, 118, 2)
        flux = rng.uniform(1, 50) / (2 * np.pi * 1.5**2)
        image += flux * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.5)
    return image.astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("unit", [1e-32, 1e-36, 1e30])
def test_physical_units_normalize_like_the_same_image_in_ujy(method, unit):
    ujy = _ujy_field()
    si = (ujy.astype(np.float64) * unit).astype(np.float32)  # W m-2 Hz-1: float32 holds it
    expect = pp.normalize(ujy, method=method)
    got = pp.normalize(si, method=method)
    assert np.ptp(expect) >= 1.0  # an image, not the flat 0 of a collapsed interval
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-5)
    lim = pp.compute_limits(si, method=method)
    ref = pp.compute_limits(ujy, method=method)
    np.testing.assert_allclose(lim.vmin / unit, ref.vmin, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lim.vmax / unit, ref.vmax, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [0.0, 3e-32, 7.0, -2e20])
def test_constant_images_still_give_zero(method, value):
    y = pp.normalize(np.full((16, 16), value, np.float32), method=method)
    assert y.dtype == np.float32 and np.all(y == 0.0)


@pytest.mark.parametrize("method", METHODS)
def test_float32_resolution_steps_are_flat(method):
    # steps of float32's resolution around 7, or spans below its smallest normal number
    # (subnormal pixels): flat, as before (a unit span: the steps stay below 1e-5)
    base = np.float32(7.0)
    x = np.full((16, 16), base, np.float32)
    x[::2] = np.nextafter(base, np.float32(8.0))
    np.testing.assert_allclose(pp.normalize(x, method=method), 0.0, atol=1e-5)
    tiny = np.zeros((16, 16), np.float32)
    tiny[::3] = np.float32(1e-40)
    np.testing.assert_allclose(pp.normalize(tiny, method=method), 0.0, atol=1e-30)
