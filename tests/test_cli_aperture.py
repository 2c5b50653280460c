"""``sciconv predict --aperture``: fixed-aperture photometry in every catalog, with radii in
pixels or converted with each image's own pixel scale (the same circle on the sky in two bands
of different pixel scales), refused where it cannot apply."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_one_line_error, run_cli, threshold_model
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

#: Sources at these sky offsets from the field centre (arcsec), 2000 counts each.
OFFSETS = [(-4.0, -4.0), (3.0, 5.0), (5.0, -3.0)]


def _band(path, arcsec_per_pixel: float, n: int = 48):
    """A sky image of the same 3 stars (Gaussian, FWHM 1.2") on a grid of ``arcsec_per_pixel``."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    w.wcs.cdelt = [-arcsec_per_pixel / 3600, arcsec_per_pixel / 3600]
    yy, xx = np.mgrid[:n, :n]
    img = np.random.default_rng(1).normal(100.0, 0.5, (n, n))
    sigma = 1.2 / 2.355 / arcsec_per_pixel
    for dx, dy in OFFSETS:
        cx, cy = (n - 1) / 2 - dx / arcsec_per_pixel, (n - 1) / 2 + dy / arcsec_per_pixel
        img += (
            2000
            / (2 * np.pi * sigma**2)
            * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        )
    fits.PrimaryHDU(img.astype(np.float32), header=w.to_header()).writeto(path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("aperture") / "thr.keras"
    threshold_model(level=0.1).save(path)
    return path


def test_aperture_in_arcsec_is_the_same_on_the_sky_in_two_pixel_scales(capsys, tmp_path, model):
    fine, coarse = _band(tmp_path / "fine.fits", 0.2, 64), _band(tmp_path / "coarse.fits", 0.4)
    code, _, err = run_cli(
        capsys, "predict", model, fine, coarse, "--out", tmp_path / "o", "--quiet",
        "--aperture", "2arcsec", "6",
    )  # fmt: skip
    assert code == 0, err
    cats = [Table.read(tmp_path / "o" / f"{n}_catalog.ecsv") for n in ("fine", "coarse")]
    for cat in cats:
        assert {"flux_aper_2arcsec", "flux_aper_2arcsec_err", "flux_aper_6pix"} <= set(cat.colnames)
        assert len(cat) == 3
    fluxes = [np.sort(np.asarray(c["flux_aper_2arcsec"])) for c in cats]
    # 2" holds ~all of a 1.2" FWHM star on both grids (10 px there, 5 px here)
    np.testing.assert_allclose(fluxes[0], fluxes[1], rtol=0.02)
    np.testing.assert_allclose(fluxes[0], 2000, rtol=0.05)
    # 6 pixels are 1.2" on the fine grid, 2.4" on the coarse: not the same circle on the sky
    pix = [np.sort(np.asarray(c["flux_aper_6pix"])) for c in cats]
    assert np.all(pix[0] < 0.95 * pix[1])


def test_aperture_refused_before_any_input_when_not_a_radius(capsys, tmp_path, model):
    band = _band(tmp_path / "b.fits", 0.2)
    code, _, err = run_cli(capsys, "predict", model, band, "--out", tmp_path / "o",
                           "--aperture", "2 furlongs")  # fmt: skip
    assert code == 2 and "is not a radius" in err
    assert not (tmp_path / "o").exists()


def test_aperture_refused_block_by_block(capsys, tmp_path, model):
    band = _band(tmp_path / "b.fits", 0.2)
    code, _, err = run_cli(capsys, "predict", model, band, "--out", tmp_path / "o",
                           "--aperture", "2arcsec", "--block", "32")  # fmt: skip
    assert code != 0
    assert_one_line_error(err, "b.fits", "--aperture", "block-wise")
