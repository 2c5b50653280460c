"""Fixed apertures on maps in MJy/sr and Jy/beam, under correlated noise, and their cost.

QA 56 review: ``flux_aper`` of one 10 uJy star in two JWST bands of 0.031" and 0.063" pixels
(MJy/sr) was 442.7 and 107.2 "MJy / sr" (a 1.54 mag colour error), never converted to Jy as
``flux`` is; ``apply_noise_correlation`` scaled ``flux_err`` but left ``flux_aper_err`` 2x too
small under ``R = 4`` while ``FLUXCORR`` said it was applied; and each radius and channel made
four photutils passes (1e5 objects and two radii: 24 s).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from photutils.aperture.core import PixelAperture
from scipy import ndimage as ndi

from sciconv.errors import ConfigError
from sciconv.io import GridImage
from sciconv.postprocess import apply_noise_correlation, measure
from sciconv.postprocess._noise_correlation import NoiseCorrelation

ARCSEC_PER_RAD = 206264.80624709636


def _sky_wcs(scale_arcsec: float, n: int, projection: str = "TAN") -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = [f"RA---{projection}", f"DEC--{projection}"]
    w.wcs.crval = [53.1, -27.8]
    w.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    w.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    return w


def _gaussian(n: int, sigma_px: float) -> np.ndarray:
    """A unit-sum Gaussian at the image's centre (pixel-integrated)."""
    from scipy.special import erf

    edges = np.arange(n + 1) - 0.5 - (n - 1) / 2
    g = np.diff(0.5 * (1 + erf(edges / (np.sqrt(2) * sigma_px))))
    return np.outer(g, g)


def _central_disc(n: int, radius_px: float) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    c = (n - 1) / 2
    return (((xx - c) ** 2 + (yy - c) ** 2) <= radius_px**2).astype(np.int32)


def _i2d(scale_arcsec: float, total_jy: float = 1e-5) -> tuple[np.ndarray, GridImage]:
    """A JWST-like i2d band in MJy/sr of a 0.1" Gaussian star of ``total_jy``: labels, image."""
    n = round(3.0 / scale_arcsec)
    pixel_sr = (scale_arcsec / ARCSEC_PER_RAD) ** 2
    data = total_jy * _gaussian(n, 0.1 / scale_arcsec) / pixel_sr / 1e6  # MJy/sr
    img = GridImage(
        data[..., None].astype(np.float64), wcs=_sky_wcs(scale_arcsec, n), meta={"bunit": "MJy/sr"}
    )
    return _central_disc(n, 0.3 / scale_arcsec), img


def test_flux_aper_of_an_mjy_per_sr_image_is_in_jy_and_the_same_on_two_pixel_scales():
    """One 10 uJy star in bands of 0.031" and 0.063" pixels: flux_density_aper (r = 0.5",
    0.4") is 1e-5 Jy in both (the sums in MJy/sr differ by the pixel areas, 4.13x), converted
    by the segment flux's own factor, its error too."""
    got = {}
    for scale in (0.031, 0.063):
        labels, img = _i2d(scale)
        error = np.full(img.data.shape, 1e-3)
        t = measure(
            labels,
            intensity=img,
            wcs=img.wcs,
            background=0.0,
            error=error,
            aperture=["0.5 arcsec", "0.4 arcsec"],
            noise_correlation=None,
        )
        factor = t["flux_density"][0] / t["flux"][0]  # the pixel's solid angle in Jy/(MJy/sr)
        assert factor == pytest.approx((scale / ARCSEC_PER_RAD) ** 2 * 1e6, rel=1e-9)
        for tag in ("0p5arcsec", "0p4arcsec"):
            name = f"flux_density_aper_{tag}"
            assert str(t[name].unit) == "Jy"
            assert str(t[f"{name}_err"].unit) == "Jy"
            assert t[name][0] == pytest.approx(t[f"flux_aper_{tag}"][0] * factor, rel=1e-12)
            assert t[f"{name}_err"][0] == pytest.approx(
                t[f"flux_aper_{tag}_err"][0] * factor, rel=1e-12
            )
            assert t[name].meta["ucd"] == "phot.flux.density"
        got[scale] = t
    small, large = (float(got[s]["flux_density_aper_0p5arcsec"][0]) for s in (0.031, 0.063))
    assert small == pytest.approx(1e-5, rel=2e-3)
    assert large == pytest.approx(small, rel=2e-3)  # before: 4.13x apart, in "MJy / sr"
    sums = [float(got[s]["flux_aper_0p5arcsec"][0]) for s in (0.031, 0.063)]
    assert sums[0] / sums[1] == pytest.approx((0.063 / 0.031) ** 2, rel=1e-2)


def _radio(scale_arcsec: float, flux_jy: float = 0.25, fwhm_arcsec: float = 6.0):
    """A point source of ``flux_jy`` in a Jy/beam map (beam FWHM 6") of ``scale_arcsec``
    pixels: labels, image, the beam's area in pixels."""
    n = round(96.0 / scale_arcsec)
    sigma = fwhm_arcsec / (2 * math.sqrt(2 * math.log(2))) / scale_arcsec
    beam = 2 * math.pi * sigma**2  # pixels
    data = flux_jy * beam * _gaussian(n, sigma)  # Jy/beam: the peak is the flux
    header = fits.Header({"BMAJ": fwhm_arcsec / 3600, "BMIN": fwhm_arcsec / 3600, "BPA": 0.0})
    img = GridImage(
        data[..., None],
        header=header,
        wcs=_sky_wcs(scale_arcsec, n, "SIN"),
        meta={"bunit": "JY/BEAM"},
    )
    return _central_disc(n, 8.0 / scale_arcsec), img, beam


def test_flux_aper_of_a_jy_per_beam_map_is_in_jy_and_the_same_on_two_pixel_scales():
    """A 0.25 Jy point source under a 6" beam on 1" and 2" pixels: flux_density_aper (r = 15")
    is 0.25 Jy in both (the sums in Jy/beam differ by 4x), the error over sqrt(beam pixels)."""
    got = []
    for scale in (1.0, 2.0):
        labels, img, beam = _radio(scale)
        t = measure(
            labels,
            intensity=img,
            wcs=img.wcs,
            background=0.0,
            error=np.full(img.data.shape, 1e-3),
            aperture="15 arcsec",
        )
        assert t.meta["BEAMPIX"] == pytest.approx(beam, rel=1e-9)
        assert str(t["flux_density_aper"].unit) == "Jy"
        assert t["flux_density_aper"][0] == pytest.approx(t["flux_aper"][0] / beam, rel=1e-12)
        assert t["flux_density_aper_err"][0] == pytest.approx(
            t["flux_aper_err"][0] / math.sqrt(beam), rel=1e-12
        )
        got.append(float(t["flux_density_aper"][0]))
    assert got[0] == pytest.approx(0.25, rel=1e-3)
    assert got[1] == pytest.approx(got[0], rel=1e-3)


def _field(rng, shape=(64, 64)):
    labels = np.zeros(shape, np.int32)
    labels[26:38, 26:38] = 1
    labels[8:14, 40:50] = 2
    return labels, rng.normal(0.0, 1.0, shape)


def test_apply_noise_correlation_scales_the_aperture_errors_once():
    """R = 4 given afterwards: flux_aper_err (both radii) x 2, as measure(noise_correlation=4)
    gives them (its own application is the same single step); before, they were left as they
    were while FLUXCORR said R was applied."""
    labels, img = _field(np.random.default_rng(0))
    kw = dict(intensity=img, error=1.0, background=0.0, aperture=[4, 6])
    plain = measure(labels, noise_correlation=None, **kw)
    later = apply_noise_correlation(measure(labels, noise_correlation=None, **kw), 4.0)
    given = measure(labels, noise_correlation=4.0, **kw)
    for name in ("flux_aper_4pix_err", "flux_aper_6pix_err", "flux_err"):
        np.testing.assert_allclose(later[name], 2.0 * plain[name], rtol=1e-12)
        np.testing.assert_allclose(given[name], later[name], rtol=1e-12)  # once, not twice
    assert later["flux_aper_4pix_err"].description.startswith("error of flux_aper x sqrt(R)")
    np.testing.assert_array_equal(later["flux_aper_4pix"], plain["flux_aper_4pix"])
    with pytest.raises(ConfigError, match="already carry"):
        apply_noise_correlation(given, 4.0)


def test_a_measured_correlation_is_taken_at_the_aperture_area_less_its_masked_share():
    """A NoiseCorrelation: flux_aper_err x sqrt(R(sqrt(kept area))) of the aperture (pi r^2
    less its masked share), not of the object's area; on an MJy/sr image the Jy error too."""
    rng = np.random.default_rng(1)
    corr = NoiseCorrelation.of(ndi.uniform_filter(rng.normal(0, 1, (256, 256)), 2)[..., None])
    assert corr.applied.all()
    labels, noise = _field(rng)
    scale = 0.1
    img = GridImage(noise[..., None], wcs=_sky_wcs(scale, 64), meta={"bunit": "MJy/sr"})
    mask = np.zeros(labels.shape, bool)
    mask[9:12, 44:47] = True  # 9 pixels inside object 2's aperture
    kw = dict(intensity=img, wcs=img.wcs, error=1.0, background=0.0, aperture=5, mask=mask)
    plain = measure(labels, noise_correlation=None, **kw)
    done = apply_noise_correlation(measure(labels, noise_correlation=None, **kw), corr)
    kept = 25 * math.pi * (1 - np.asarray(plain["aper_masked_fraction"]))
    assert plain["aper_masked_fraction"][1] > 0.05
    expected = np.asarray(plain["flux_aper_err"]) * np.sqrt(corr.ratio(kept)[:, 0])
    np.testing.assert_allclose(done["flux_aper_err"], expected, rtol=1e-12)
    np.testing.assert_allclose(
        done["flux_density_aper_err"],
        np.asarray(plain["flux_density_aper_err"]) * np.sqrt(corr.ratio(kept)[:, 0]),
        rtol=1e-12,
    )
    by_object = np.sqrt(corr.ratio(np.asarray(plain["area"], float))[:, 0])
    assert not np.allclose(done["flux_aper_err"] / plain["flux_aper_err"], by_object)


def test_aperture_errors_without_their_area_are_refused_before_anything_changes():
    """A catalog whose flux_aper lost its area (a writer that drops column meta): refused,
    naming the column, and the table is left as it was (no FLUXCORR, flux_err unchanged)."""
    labels, img = _field(np.random.default_rng(2))
    t = measure(labels, intensity=img, error=1.0, aperture=4, noise_correlation=None)
    del t["flux_aper"].meta["aperture_area"]
    before = np.array(t["flux_err"])
    with pytest.raises(ConfigError, match=r"flux_aper_err.*aperture_area"):
        apply_noise_correlation(t, 4.0)
    assert "FLUXCORR" not in t.meta
    np.testing.assert_array_equal(t["flux_err"], before)


def test_each_radius_builds_its_photutils_masks_once_for_all_channels(monkeypatch):
    """3 channels, a background map and an error map, two radii: the aperture masks are built
    twice in all (once per radius), not 16 times (before: area_overlap twice, then a sum and a
    background sum per channel, each building every mask again)."""
    built = []
    original = PixelAperture.to_mask

    def counting(self, *args, **kwargs):
        built.append(len(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PixelAperture, "to_mask", counting)
    rng = np.random.default_rng(3)
    labels = np.zeros((40, 40), np.int32)
    labels[5:9, 5:9], labels[20:26, 24:30] = 1, 2
    img = rng.normal(10.0, 1.0, (40, 40, 3))
    t = measure(
        labels,
        intensity=img,
        background=np.full((40, 40, 3), 10.0),
        error=np.ones((40, 40, 3)),
        aperture=[3, 5],
        noise_correlation=None,
    )
    assert built == [2, 2]
    assert t["flux_aper_3pix"].shape == (2, 3)
