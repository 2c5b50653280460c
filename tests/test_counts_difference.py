"""Difference images: a fading (negative) source is located and given Poisson errors by its own
sign.

QA /tmp/qa53/stats 7: the weighted centroid behind ra/dec used only positive pixels, so a
negative source was placed by its noise (1.46 px rms against 0.11 for a positive one), and the
Poisson term of its pixels (the reference image's photons) was dropped from ``flux_err``.
"""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from sciconv import postprocess
from sciconv.io import GridImage

H = W = 256


def _difference(rng, noise=10.0):
    yy, xx = np.mgrid[:H, :W]
    img = rng.normal(0, noise, (H, W))
    labels = np.zeros((H, W), np.int32)
    truth = []
    k = 0
    for y0 in range(32, H - 31, 48):
        for x0 in range(32, W - 31, 48):
            k += 1
            y, x = y0 + rng.uniform(-3, 3), x0 + rng.uniform(-3, 3)
            f = (-1) ** k * 3000.0
            img += f / (2 * np.pi * 4.0) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8.0)
            labels[(yy - y) ** 2 + (xx - x) ** 2 <= 36] = k
            truth.append((x, y, f))
    return img, labels, np.array(truth)


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150, 2]
    w.wcs.crpix = [128, 128]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    return w


def test_negative_sources_are_located_by_their_own_pixels():
    img, labels, truth = _difference(np.random.default_rng(3))
    w = _wcs()
    err = np.full(img.shape, 10.0)
    table = postprocess.measure(labels, intensity=img, wcs=w, background=0.0, error=err)
    neg = truth[:, 2] < 0
    off = np.hypot(table["x_weighted"] - truth[:, 0], table["y_weighted"] - truth[:, 1])
    assert np.sqrt(np.mean(off[neg] ** 2)) < 0.2  # was 1.46 px: placed by positive noise
    assert np.sqrt(np.mean(off[~neg] ** 2)) < 0.2
    # the quoted error is the |flux|-weighted one, as small as a positive source's
    assert np.all(np.asarray(table["x_weighted_err"])[neg] < 0.2)
    want = w.pixel_to_world(truth[neg, 0], truth[neg, 1]).icrs
    sep = want.separation(w.pixel_to_world(table["x_weighted"][neg], table["y_weighted"][neg]))
    assert np.all(sep.arcsec < 0.1)
    assert table.meta["RADECSRC"] == "x_weighted, y_weighted"


def test_a_negative_object_mirrors_a_positive_one():
    """The same object negated gets the same centroid and centroid error."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:32, :32]
    img = 500 * np.exp(-((yy - 15.3) ** 2 + (xx - 16.6) ** 2) / 8.0) + rng.normal(0, 5, (32, 32))
    labels = (np.hypot(yy - 15.3, xx - 16.6) < 6).astype(np.int32)
    kw = {"background": 0.0, "error": np.full((32, 32), 5.0)}
    pos = postprocess.measure(labels, intensity=img, **kw)
    neg = postprocess.measure(labels, intensity=-img, **kw)
    for name in ("x_weighted", "y_weighted", "x_weighted_err", "y_weighted_err"):
        assert np.isclose(neg[name][0], pos[name][0], rtol=1e-9, atol=1e-12), name


def test_negative_objects_keep_the_reference_poisson_term():
    """With the labels, a fading object's pixels carry |data - background| / gain (the
    reference image's photons), as a brightening one's carry its own."""
    img, labels, truth = _difference(np.random.default_rng(4))
    grid = GridImage(img[..., None].astype(np.float32), meta={"bunit": "ELECTRONS"})
    err, how = postprocess.estimate_error(grid, labels, background=0.0, background_rms=10.0)
    assert how == "background rms + Poisson (effective gain 1)"
    table = postprocess.measure(labels, intensity=grid, background=0.0, error=err)
    fe = np.asarray(table["flux_err"])
    neg = truth[:, 2] < 0
    # sqrt(area * 100 + 3000) = 118 for both signs (was 106 for the negative ones: rms only)
    assert np.allclose(fe[neg].mean(), fe[~neg].mean(), rtol=0.02)
    assert np.allclose(fe, np.sqrt(100 * np.asarray(table["area"]) + 3000), rtol=0.03)
    # the background pixels (no object) keep photutils' rule: positive part only
    sky = labels == 0
    expect = np.sqrt(100 + np.clip(img[sky], 0, None))
    assert np.allclose(err[sky], expect)
