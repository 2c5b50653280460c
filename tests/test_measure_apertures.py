"""Fixed-aperture photometry in ``measure(aperture=)``.

QA 56 (one field in several bands and nights): ``flux``, the segment sum, takes a share of the
total that changes with seeing and SNR, so g - r from labels shared across bands of different
seeing was 0.14 mag off (8 sigma) and constant stars looked variable over four nights; and its
error holds for the footprint as given only. A circle of one size on the sky, at the weighted
centroid, measured by photutils, fixes both.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astropy.wcs import WCS
from scipy.special import erf

from sciconv.errors import ConfigError
from sciconv.io import GridImage
from sciconv.postprocess import measure, read_catalog, write_catalog


def _wcs(scale_arcsec: float, shape=(64, 64)) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    w.wcs.cd = [[-scale_arcsec / 3600, 0.0], [0.0, scale_arcsec / 3600]]
    return w


def _stars(shape, stars, sigma: float) -> np.ndarray:
    """Pixel-integrated Gaussians: ``stars`` rows of (x, y, flux), ``sigma`` in pixels."""
    img = np.zeros(shape)
    ys, xs = np.arange(shape[0]), np.arange(shape[1])
    s2 = np.sqrt(2) * sigma
    for x0, y0, f in stars:
        gx = 0.5 * (erf((xs + 0.5 - x0) / s2) - erf((xs - 0.5 - x0) / s2))
        gy = 0.5 * (erf((ys + 0.5 - y0) / s2) - erf((ys - 0.5 - y0) / s2))
        img += f * np.outer(gy, gx)
    return img


def _discs(shape, centres, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k, (x0, y0) in enumerate(centres, 1):
        labels[(xx - x0) ** 2 + (yy - y0) ** 2 <= radius**2] = k
    return labels


def test_aperture_flux_of_a_gaussian_is_its_enclosed_flux():
    """A noiseless Gaussian (sigma 2 px) on a flat sky of 10: the aperture flux at r = 3 and
    6 px is the analytic enclosed flux F (1 - exp(-r^2 / 2 s^2)) (s^2 = sigma^2 + 1/12, the
    pixel's integration), the background map's sum taken off."""
    shape, flux, sigma = (48, 48), 1000.0, 2.0
    image = _stars(shape, [(23.3, 24.6, flux)], sigma) + 10.0
    labels = _discs(shape, [(23.3, 24.6)], 3.0)
    t = measure(labels, intensity=image, background=np.full(shape, 10.0), aperture=[3, 6.0])
    s2 = sigma**2 + 1 / 12
    # photutils weighs pixel-constant values by their overlap: 1 % low at r = 1.5 sigma
    for name, r, rel in (("flux_aper_3pix", 3.0, 1.5e-2), ("flux_aper_6pix", 6.0, 2e-3)):
        want = flux * (1 - np.exp(-(r**2) / (2 * s2)))
        assert t[name][0] == pytest.approx(want, rel=rel), name
    assert t["flux"][0] < 0.7 * flux  # the segment's share, which apertures do not depend on
    assert "flux_aper_3pix: r = 3 pix" in t.meta["APERTURE"]
    assert not t["flag_aper_3pix_edge"][0] and not t["flag_aper_6pix_masked"][0]


def _band(seeing_px, stars, rng, sky=100.0, noise=2.0, shape=(64, 64)):
    image = _stars(shape, stars, seeing_px) + sky + rng.normal(0, noise, shape)
    return GridImage(image[..., None].astype(np.float32), wcs=_wcs(0.25, shape))


def test_aperture_colour_of_two_bands_of_different_seeing_is_unbiased():
    """repro_2's set-up: labels from r (FWHM 1.0"), measured in g (FWHM 1.6"): the segment
    colour is biased by the seeing, a 3 arcsec aperture's is the true one."""
    rng = np.random.default_rng(3)
    pos = [(16.2, 15.7), (46.4, 17.1), (15.5, 47.3), (47.1, 46.2)]
    fr = np.array([4000.0, 8000.0, 6000.0, 10000.0])
    colour = np.array([0.3, 0.8, 0.5, 1.1])  # g - r, mag
    fg = fr * 10 ** (-0.4 * colour)
    r = _band(1.0 / 0.25 / 2.3548, [(*p, f) for p, f in zip(pos, fr)], rng)
    g = _band(1.6 / 0.25 / 2.3548, [(*p, f) for p, f in zip(pos, fg)], rng)
    labels = _discs((64, 64), pos, 3.5)
    kw = {"background": 100.0, "error": 2.0, "aperture": 3 * u.arcsec}
    tr, tg = measure(labels, intensity=r, **kw), measure(labels, intensity=g, **kw)
    seg = -2.5 * np.log10(np.asarray(tg["flux"]) / np.asarray(tr["flux"]))
    aper = -2.5 * np.log10(np.asarray(tg["flux_aper"]) / np.asarray(tr["flux_aper"]))
    assert np.median(seg - colour) > 0.1  # the segment loses more of g's wider PSF
    assert np.abs(aper - colour).max() < 0.03
    assert tr.meta["APERTURE"].startswith("flux_aper: r = 3 arcsec = 12 pix")
    assert tr["flux_aper"].unit == tr["flux"].unit and "r = 3 arcsec" in tr["flux_aper"].description


def test_an_arcsec_radius_is_the_same_sky_aperture_on_two_pixel_scales():
    """One star on 0.2"/px and 0.4"/px grids: a 2 arcsec radius is 10 and 5 pixels, and the
    two fluxes agree (the same share of the star); non-square pixels give the sky's circle as
    an ellipse (1 arcsec on 0.1" x 0.2" pixels: 10 x 5 px)."""
    star = 5000.0
    fluxes = []
    for scale, shape in ((0.2, (80, 80)), (0.4, (40, 40))):
        sigma = 0.5 / scale  # 0.5 arcsec
        centre = (shape[1] / 2 - 0.3, shape[0] / 2 + 0.2)
        image = _stars(shape, [(*centre, star)], sigma)
        img = GridImage(image[..., None].astype(np.float32), wcs=_wcs(scale, shape))
        t = measure(_discs(shape, [centre], 2), intensity=img, background=0.0, aperture="2 arcsec")
        assert f"= {2 / scale:g} pix" in t.meta["APERTURE"]
        fluxes.append(float(t["flux_aper"][0]))
    assert fluxes[0] == pytest.approx(fluxes[1], rel=2e-3)
    assert fluxes[0] == pytest.approx(
        star * (1 - np.exp(-(4**2) / 2 / (1 + 1 / 12 / 6.25))), rel=5e-3
    )

    w = _wcs(0.1, (40, 40))
    w.wcs.cd = [[-0.1 / 3600, 0.0], [0.0, 0.2 / 3600]]  # x 0.1", y 0.2"
    img = GridImage(np.ones((40, 40, 1), np.float32), wcs=w)
    t = measure(_discs((40, 40), [(20, 20)], 2), intensity=img, aperture=1 * u.arcsec)
    assert "10 x 5 pix" in t.meta["APERTURE"]
    assert t["flux_aper"][0] == pytest.approx(np.pi * 10 * 5, rel=1e-6)  # no background: sum


def test_aperture_error_matches_the_scatter_over_noise_realisations():
    """30 noise realisations of 9 faint stars on fixed labels: flux_aper's scatter over its
    quoted error is 1 (within the statistics of 270 values), and a correlated-noise R = 4
    doubles the error for the aperture's area as it does flux_err."""
    rng = np.random.default_rng(11)
    shape, noise = (90, 90), 3.0
    pos = [(15.0 + 30 * i + 0.3, 15.0 + 30 * j - 0.2) for i in range(3) for j in range(3)]
    truth = _stars(shape, [(*p, 400.0) for p in pos], 1.5)
    labels = _discs(shape, pos, 4)
    flux, quoted = [], []
    for _ in range(30):
        image = truth + rng.normal(0, noise, shape)
        t = measure(labels, intensity=image, background=0.0, error=noise, aperture=5)
        flux.append(np.asarray(t["flux_aper"]))
        quoted.append(np.asarray(t["flux_aper_err"]))
    flux, quoted = np.array(flux), np.array(quoted)
    assert np.allclose(quoted, noise * np.sqrt(np.pi * 25), rtol=1e-9)
    pulls = (flux - flux.mean(axis=0)) / quoted * np.sqrt(30 / 29)
    assert 0.88 < pulls.std() < 1.12
    t4 = measure(
        labels, intensity=image, background=0.0, error=noise, aperture=5, noise_correlation=4.0
    )
    assert np.allclose(t4["flux_aper_err"], 2 * noise * np.sqrt(np.pi * 25), rtol=1e-9)
    assert "sqrt(R)" in t4["flux_aper_err"].description


def test_masked_nan_and_edge_pixels_are_left_out_and_flagged():
    """A masked pixel and a NaN pixel inside an aperture are left out of its sum and counted
    in aper_masked_fraction; an aperture crossing the image's edge is flagged."""
    shape = (40, 40)
    image = np.full(shape, 2.0)
    image[20, 12] = np.nan  # inside object 2's aperture (r = 4 around (10, 20))
    bad = np.zeros(shape, bool)
    bad[10, 30] = True  # inside object 3's (around (30, 10))
    labels = _discs(shape, [(20, 30), (10, 20), (30, 10), (1, 38)], 1.5)
    t = measure(labels, intensity=image, mask=bad, background=1.0, error=0.5, aperture=4)
    area = np.pi * 16
    assert t["flag_aper_masked"].tolist() == [False, True, True, False]
    assert t["flag_aper_edge"].tolist() == [False, False, False, True]
    np.testing.assert_allclose(t["aper_masked_fraction"][:3], [0.0, 1 / area, 1 / area])
    np.testing.assert_allclose(t["flux_aper"][:3], [area, area - 1, area - 1], rtol=1e-9)
    np.testing.assert_allclose(t["flux_aper_err"][1], 0.5 * np.sqrt(area - 1), rtol=1e-9)
    # the corner object (1, 38): part of its circle off the image, none of it masked, so its
    # sum is (2 - 1) x the part on the image
    assert 0.3 * area < t["flux_aper"][3] < 0.7 * area and t["aper_masked_fraction"][3] == 0


def test_multi_channel_apertures_are_per_channel():
    """A 2-plane intensity gives flux_aper of shape (N, 2), each plane equal to its own."""
    rng = np.random.default_rng(5)
    shape = (40, 40)
    planes = [_stars(shape, [(20.2, 19.6, f)], 1.8) + rng.normal(0, 1, shape) for f in (300, 900)]
    labels = _discs(shape, [(20.2, 19.6)], 3)
    both = measure(labels, intensity=np.stack(planes, -1), background=0.0, error=1.0, aperture=6)
    assert both["flux_aper"].shape == (1, 2) and both["flux_aper_err"].shape == (1, 2)
    # the centroid weights both planes: the same centre given to each plane alone
    for k, plane in enumerate(planes):
        one = measure(labels, intensity=plane, background=0.0, error=1.0, aperture=6)
        shift = abs(float(one["x_weighted"][0] - both["x_weighted"][0]))
        assert both["flux_aper"][0, k] == pytest.approx(one["flux_aper"][0], abs=1 + 50 * shift)
        assert both["flux_aper_err"][0, k] == pytest.approx(one["flux_aper_err"][0], rel=1e-9)


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".vot"])
def test_aperture_columns_survive_the_catalog_writers(tmp_path, suffix):
    """Two radii on a 2-channel image in adu: CSV splits the (N, 2) columns
    (flux_aper_2arcsec_0, ...); FITS and VOTable keep them with their units."""
    shape = (48, 48)
    planes = [_stars(shape, [(20.0, 24.0, f), (34.0, 30.0, f / 2)], 2.0) for f in (500, 800)]
    pixels = np.stack(planes, -1).astype(np.float32)
    img = GridImage(pixels, wcs=_wcs(0.25, shape), meta={"bunit": "adu"})
    labels = _discs(shape, [(20, 24), (34, 30)], 3)
    t = measure(labels, intensity=img, background=0.0, error=1.0, aperture=[2, 3] * u.arcsec)
    path = write_catalog(t, tmp_path / f"cat{suffix}")
    back = read_catalog(path)
    if suffix == ".csv":
        for name in ("flux_aper_2arcsec", "flux_aper_3arcsec_err"):
            for k in range(2):
                np.testing.assert_allclose(back[f"{name}_{k}"], t[name][:, k], rtol=1e-6)
        assert [str(v) for v in back["flag_aper_3arcsec_edge"]] == ["False", "False"]
        return
    for name in ("flux_aper_2arcsec", "flux_aper_2arcsec_err", "flux_aper_3arcsec"):
        np.testing.assert_allclose(back[name], t[name], rtol=1e-6)
        assert back[name].unit == u.adu
        assert back[name].description.endswith(
            ", r = 2 arcsec" if "2" in name else ", r = 3 arcsec"
        )
    assert back["flux_aper_2arcsec"].meta["ucd"] == "phot.flux;arith.diff"
    assert back["flux_aper_2arcsec_err"].meta["ucd"] == "stat.error;phot.flux"
    assert [bool(v) for v in back["flag_aper_2arcsec_masked"]] == [False, False]
    np.testing.assert_allclose(back["aper_3arcsec_masked_fraction"], 0.0)


def test_an_angle_radius_without_a_sky_scale_is_refused():
    labels = _discs((20, 20), [(10, 10)], 2)
    with pytest.raises(
        ConfigError, match=r"aperture radius 2 arcsec is an angle.*no pixel scale.*in pixels"
    ):
        measure(labels, intensity=np.ones((20, 20)), aperture=2 * u.arcsec)
    microscope = GridImage(
        np.ones((20, 20, 1), np.float32), meta={"pixel_size": (0.5, 0.5), "pixel_unit": "um"}
    )
    with pytest.raises(ConfigError, match="a pixel scale in um"):
        measure(labels, intensity=microscope, aperture="2 arcsec")
    t = measure(labels, intensity=microscope, aperture=2 * u.um)  # 4 px
    assert t["flux_aper"][0] == pytest.approx(np.pi * 16, rel=1e-6)
    for wrong, message in (
        (-1, "positive"),
        (3 * u.Jy, "pixels, an angle"),
        ("two", "not a radius"),
        ([2, 2.0], "given twice"),
    ):
        with pytest.raises(ConfigError, match=message):
            measure(labels, intensity=np.ones((20, 20)), aperture=wrong)
    with pytest.raises(ConfigError, match="needs the intensity"):
        measure(labels, aperture=3)


def test_an_empty_catalog_gets_empty_aperture_columns():
    t = measure(np.zeros((20, 20), int), intensity=np.ones((20, 20)), error=1.0, aperture=3)
    assert len(t) == 0 and {"flux_aper", "flux_aper_err", "flag_aper_edge"} <= set(t.colnames)
    assert isinstance(t, Table)


def _photutils_passes(image, region, left_out, background, error):
    """The aperture sums as photutils' own passes give them: one aperture_photometry per
    channel (with the error), one for the background map, area_overlap on and off the mask."""
    from photutils.aperture import aperture_photometry

    on = region.area_overlap(left_out)
    kept = region.area_overlap(left_out, mask=left_out)
    flux, err = [], []
    for k in range(image.shape[-1]):
        sums = aperture_photometry(
            image[..., k], region, error=error[..., k], mask=left_out, method="exact"
        )
        under = aperture_photometry(background[..., k], region, mask=left_out, method="exact")
        flux.append(np.asarray(sums["aperture_sum"]) - np.asarray(under["aperture_sum"]))
        err.append(np.asarray(sums["aperture_sum_err"]))
    return np.asarray(on), np.asarray(kept), np.stack(flux, -1), np.stack(err, -1)


@pytest.mark.parametrize("radius", [4.5, "0.9 arcsec"])
def test_aperture_sums_equal_photutils_passes(radius):
    """Masks built once per radius give photutils' aperture_photometry/area_overlap numbers
    (to 1e-10 of the gross sums): 3 channels with a NaN, bad pixels, a background and error
    map, apertures off the edges, a circle and an ellipse (skewed 0.1" x 0.2" pixels)."""
    from sciconv.postprocess._apertures import parse_apertures

    rng = np.random.default_rng(11)
    shape = (70, 90)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    centres = [(2.3, 3.1), (30.6, 40.2), (60.1, 20.7), (88.4, 66.9), (45.5, 35.5), (10.0, 60.0)]
    labels = _discs(shape, centres, 2.5)
    image = rng.normal(10.0, 1.0, (*shape, 3))
    image[39:42, 29:32, 1] = np.nan
    bad = np.zeros(shape, bool)
    bad[18:23, 58:61] = True
    background = 10.0 + 0.01 * xx[..., None] + 0.02 * yy[..., None] * np.arange(1, 4)
    error = rng.uniform(0.5, 2.0, (*shape, 3))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cd = [[-0.1 / 3600, 0.03 / 3600], [0.01 / 3600, 0.2 / 3600]]
    t = measure(
        labels,
        intensity=image,
        wcs=wcs,
        mask=bad,
        background=background,
        error=error,
        aperture=radius,
        noise_correlation=None,
    )
    (ap,) = parse_apertures(radius, wcs=wcs)
    assert (ap.a == ap.b) == (radius == 4.5)
    left_out = ~np.isfinite(image).all(axis=-1) | bad
    region = ap.region(np.column_stack([t["x_weighted"], t["y_weighted"]]))
    on, kept, flux, err = _photutils_passes(image, region, left_out, background, error)
    gross = np.abs(flux).max() + np.abs(background).max() * ap.area
    np.testing.assert_allclose(t["flux_aper"], flux, rtol=1e-10, atol=1e-10 * gross)
    np.testing.assert_allclose(t["flux_aper_err"], err, rtol=1e-10)
    fraction = np.clip(np.round(1.0 - kept / on, 12), 0.0, 1.0)
    np.testing.assert_allclose(t["aper_masked_fraction"], fraction, rtol=1e-10, atol=1e-12)
    assert t["flag_aper_edge"].tolist() == (on < ap.area * (1 - 1e-6)).tolist()
    assert t["flag_aper_edge"].any() and t["flag_aper_masked"].sum() >= 2
