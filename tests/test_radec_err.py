"""Sky-position errors: ``ra_err`` / ``dec_err`` beside ``ra`` / ``dec`` (QA errbars, gaps).

Catalogs had the weighted centroid's pixel errors but no error on the sky. ``ra_err`` (the error
of ``ra * cos(dec)``, on the sky) and ``dec_err`` come from the pixel errors and their
covariance through the WCS's local Jacobian, in arcsec.
"""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import CartesianRepresentation, SkyCoord, UnitSphericalRepresentation
from astropy.wcs import WCS

from sciconv import postprocess
from sciconv.postprocess._sky_errors import sky_errors, sky_jacobians


def _wcs(angle_deg=35.0, scales=(0.05, 0.08), dec=-30.0, shape=(48, 48)):
    """A TAN WCS rotated by ``angle_deg`` with pixels of ``scales`` arcsec (x, y)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, dec]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    w.wcs.cd = rot @ np.diag([-scales[0] / 3600, scales[1] / 3600])
    return w


def test_the_jacobian_is_the_wcs_scale_and_rotation():
    w = _wcs(angle_deg=35.0, scales=(0.05, 0.08), dec=0.0)
    jac = sky_jacobians(w, [24.0], [24.0])[0]
    # east = -d(RA)/d(pixel) of the CD matrix's first row (RA grows to the east)
    cd = w.wcs.cd * 3600
    expected = np.array([[cd[0, 0], cd[0, 1]], [cd[1, 0], cd[1, 1]]])
    np.testing.assert_allclose(jac, expected, atol=1e-6)
    var_x, var_y, cov = 0.04, 0.09, 0.01
    ra_err, dec_err = sky_errors(w, [24.0], [24.0], [var_x], [var_y], [cov])
    pix = np.array([[var_x, cov], [cov, var_y]])
    sky = expected @ pix @ expected.T
    assert ra_err[0] == pytest.approx(np.sqrt(sky[0, 0]), rel=1e-6)
    assert dec_err[0] == pytest.approx(np.sqrt(sky[1, 1]), rel=1e-6)


def test_measure_gives_ra_dec_errors_with_units_and_ucds():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, 20.0]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :40]
    image = 500 * np.exp(-((yy - 20.3) ** 2 + (xx - 19.6) ** 2) / 8.0) + rng.normal(0, 2, yy.shape)
    labels = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 25).astype(np.int32)
    table = postprocess.measure(labels, intensity=image, wcs=w, background=0.0, error=2.0)
    assert table["ra_err"].unit == u.arcsec and table["dec_err"].unit == u.arcsec
    assert table["ra_err"].meta["ucd"] == "stat.error;pos.eq.ra"
    assert table["dec_err"].meta["ucd"] == "stat.error;pos.eq.dec"
    # axes along RA/Dec, square 0.2" pixels: the pixel errors times the scale
    assert table["ra_err"][0] == pytest.approx(table["x_weighted_err"][0] * 0.2, rel=1e-4)
    assert table["dec_err"][0] == pytest.approx(table["y_weighted_err"][0] * 0.2, rel=1e-4)
    # no pixel errors, no sky errors
    assert "ra_err" not in postprocess.measure(labels, intensity=image, wcs=w).colnames
    assert "ra_err" not in postprocess.measure(labels, wcs=w).colnames


@pytest.mark.parametrize("dec", [-30.0, 89.99])
def test_ra_dec_errors_match_the_scatter_of_sky_positions(dec):
    """A star on a rotated WCS with unequal pixel scales (and one at the pole, where ra itself
    swings): the on-sky scatter of the positions over 400 noise draws is ra_err / dec_err."""
    w = _wcs(angle_deg=35.0, scales=(0.05, 0.08), dec=dec)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:48, :48]
    star = 900.0 * np.exp(-((yy - 23.7) ** 2 / (2 * 2.0**2) + (xx - 24.4) ** 2 / (2 * 3.0**2)))
    labels = ((yy - 24) ** 2 / 36.0 + (xx - 24) ** 2 / 81.0 <= 1).astype(np.int32)
    rows = [
        postprocess.measure(
            labels, intensity=star + rng.normal(0, 5.0, star.shape), wcs=w, background=0.0,
            error=5.0,
        )[0]
        for _ in range(400)
    ]  # fmt: skip
    where = SkyCoord([r["ra"] for r in rows], [r["dec"] for r in rows], unit="deg")
    mean = CartesianRepresentation(np.mean(where.cartesian.xyz, axis=1))
    centre = SkyCoord(mean.represent_as(UnitSphericalRepresentation), frame="icrs")
    east, north = centre.spherical_offsets_to(where)
    for offsets, name in ((east, "ra_err"), (north, "dec_err")):
        scatter = np.std(offsets.to_value(u.arcsec), ddof=1)
        quoted = np.median([r[name] for r in rows])
        assert quoted == pytest.approx(scatter, rel=0.12), (name, quoted, scatter)
    assert np.isfinite([r["ra_err"] for r in rows]).all()


def test_block_windows_give_the_whole_image_sky_errors():
    """A block-wise catalog measures each window with the sliced WCS: the same ra_err."""
    from sciconv.inference._block_background import measure_window

    w = _wcs(angle_deg=20.0, scales=(0.1, 0.1), dec=45.0, shape=(96, 96))
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:96, :96]
    image = rng.normal(0, 1.0, yy.shape)
    labels = np.zeros(yy.shape, np.int32)
    for i, (y, x) in enumerate(((30, 30), (30, 70), (70, 50)), 1):
        image += 200 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 6.0)
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= 16] = i
    whole = postprocess.measure(labels, intensity=image, wcs=w, background=0.0, error=1.0)
    window = (slice(50, 96), slice(20, 90))
    part = measure_window(
        labels[window], image[window], (50, 20), wcs=w, bad=None, error=np.ones((46, 70)),
        sky=0.0, saturation=None,
    )  # fmt: skip
    assert list(part["label"]) == [3]
    assert part["ra_err"][0] == pytest.approx(whole["ra_err"][2], rel=1e-9)
    assert part["dec_err"][0] == pytest.approx(whole["dec_err"][2], rel=1e-9)


def test_written_catalogs_keep_the_sky_errors(tmp_path):
    w = _wcs(shape=(32, 32))
    labels = np.zeros((32, 32), np.int32)
    labels[10:16, 12:20] = 1
    image = np.random.default_rng(3).normal(10.0, 1.0, (32, 32))
    table = postprocess.measure(labels, intensity=image, wcs=w, background=0.0, error=1.0)
    for suffix in (".fits", ".vot", ".ecsv"):
        back = postprocess.read_catalog(postprocess.write_catalog(table, tmp_path / f"c{suffix}"))
        assert back["ra_err"].unit == u.arcsec, suffix
        assert back["dec_err"][0] == pytest.approx(table["dec_err"][0], rel=1e-6)
