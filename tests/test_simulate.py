"""Tests for sciconv.simulate: determinism, shapes, physics, truth catalogs, WCS."""

from __future__ import annotations

import time

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from scipy import ndimage, stats

from sciconv import simulate as sim
from sciconv.errors import ConfigError


@pytest.fixture(scope="module")
def cutouts():
    return sim.galaxy_cutouts(20, size=64, seed=11)


@pytest.fixture(scope="module")
def small_field():
    return sim.sky_field((512, 512), n_stars=40, n_galaxies=15, seed=3)


@pytest.fixture(scope="module")
def cells():
    return sim.nuclei(3, size=(128, 160), seed=4, channels=2)


# ---------------------------------------------------------------------------------- galaxy cutouts


def test_cutouts_shapes_and_balance(cutouts):
    images, labels, names, params = cutouts
    assert images.shape == (60, 64, 64, 1) and images.dtype == np.float32
    assert labels.dtype == np.int64
    assert names == sorted(names) and len(names) >= 3
    assert names == ["elliptical", "point", "spiral"]
    np.testing.assert_array_equal(np.bincount(labels), [20, 20, 20])
    for key in ("sersic_n", "r_eff", "flux", "ellip", "theta", "x", "y", "sky", "ra", "dec"):
        assert params[key].shape == (60,), key
    # digitized raw counts, sky not subtracted
    np.testing.assert_array_equal(images, np.round(images))
    assert np.all(np.median(images, axis=(1, 2, 3)) > 0.8 * params["sky"])


def test_cutouts_deterministic():
    a = sim.galaxy_cutouts(2, size=32, seed=7)
    b = sim.galaxy_cutouts(2, size=32, seed=7)
    c = sim.galaxy_cutouts(2, size=32, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    for k in a[3]:
        np.testing.assert_array_equal(a[3][k], b[3][k])
    assert not np.array_equal(a[0], c[0])


def test_cutout_class_parameters(cutouts):
    _, labels, names, p = cutouts
    ell, pt, sp = (labels == names.index(n) for n in ("elliptical", "point", "spiral"))
    assert np.all((p["sersic_n"][ell] >= 3) & (p["sersic_n"][ell] <= 5.5))
    assert np.all((p["sersic_n"][sp] >= 0.8) & (p["sersic_n"][sp] <= 1.3))
    assert np.all(p["r_eff"][pt] == 0) and np.all(p["sersic_n"][pt] == 0)
    assert np.all(p["r_eff"][~pt] > 2)


def _background_subtracted(images, params):
    return images[..., 0] - params["sky"][:, None, None]


def test_point_source_flux_recovered(cutouts):
    images, labels, names, p = cutouts
    pt = labels == names.index("point")
    measured = _background_subtracted(images, p)[pt].sum(axis=(1, 2))
    rel = measured / p["flux"][pt] - 1
    assert np.median(np.abs(rel)) < 0.05, rel
    assert np.all(np.abs(rel) < 0.3)


def test_noise_matches_poisson_plus_read_noise(cutouts):
    images, _, _, p = cutouts
    corners = np.concatenate([images[:, :8, :8, 0], images[:, -8:, -8:, 0]], axis=1)
    measured_var = corners.reshape(len(images), -1).var(axis=1)
    expected_var = p["sky"] / 2.0 + (4.0 / 2.0) ** 2 + 1 / 12  # gain 2, read noise 4 e-, rounding
    ratio = np.median(measured_var / expected_var)
    assert 0.85 < ratio < 1.2, ratio


def test_r_eff_visibly_changes_the_image(cutouts):
    images, labels, names, p = cutouts
    gal = labels != names.index("point")
    img = np.clip(_background_subtracted(images, p)[gal], 0, None)
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - p["y"][gal, None, None], xx - p["x"][gal, None, None])
    inner = r < 20
    size = (img * r * inner).sum(axis=(1, 2)) / (img * inner).sum(axis=(1, 2))
    rho = stats.spearmanr(size, p["r_eff"][gal]).statistic
    assert rho > 0.7, rho
    # point sources are the most compact
    pts = np.clip(_background_subtracted(images, p)[~gal], 0, None)
    peak_frac_pt = (pts.max(axis=(1, 2)) / pts.sum(axis=(1, 2))).mean()
    peak_frac_gal = (img.max(axis=(1, 2)) / img.sum(axis=(1, 2))).mean()
    assert peak_frac_pt > 2 * peak_frac_gal


def test_cutout_header_has_valid_wcs(cutouts):
    _, labels, names, p = cutouts
    hdr = sim.cutout_header(p, 5, size=64, class_name=names[labels[5]])
    wcs = WCS(hdr)
    assert wcs.has_celestial and wcs.wcs.ctype[0] == "RA---TAN"
    ra, dec = wcs.pixel_to_world_values(31.5, 31.5)
    assert ra == pytest.approx(p["ra"][5] % 360, abs=1e-9)
    assert dec == pytest.approx(p["dec"][5], abs=1e-9)
    scale = wcs.proj_plane_pixel_scales()
    assert scale[0].to_value("arcsec") == pytest.approx(0.2)
    for key in ("OBJECT", "EXPTIME", "GAIN", "BUNIT", "SIMCLASS", "SERSIC_N", "R_EFF"):
        assert key in hdr
    assert hdr["SIMCLASS"] == names[labels[5]]
    assert hdr["R_EFF"] == pytest.approx(p["r_eff"][5], abs=1e-4)


def test_tan_wcs_orientation():
    wcs = sim.tan_wcs((100, 100), ra=10.0, dec=-30.0, pixel_scale=0.5)
    ra0, dec0 = wcs.pixel_to_world_values(49.5, 49.5)
    ra1, dec1 = wcs.pixel_to_world_values(59.5, 59.5)
    assert dec1 > dec0  # north up
    assert ra1 < ra0  # east left
    assert (dec1 - dec0) * 3600 == pytest.approx(5.0, rel=1e-3)


# ---------------------------------------------------------------------------------- sky field


def test_sky_field_shapes_and_truth(small_field):
    image, wcs, truth = small_field
    assert image.shape == (512, 512) and image.dtype == np.float32
    assert wcs.has_celestial
    assert set(truth.colnames) >= {"x", "y", "ra", "dec", "flux", "kind"}
    assert len(truth) == 55
    assert (truth["kind"] == "star").sum() == 40 and (truth["kind"] == "galaxy").sum() == 15
    assert truth["x"].min() >= 0 and truth["x"].max() <= 511
    np.testing.assert_array_equal(image, np.round(image))
    sky = np.median(image)
    assert sky == pytest.approx(100.0, abs=3)


def test_sky_field_radec_from_wcs(small_field):
    _, wcs, truth = small_field
    coords = wcs.pixel_to_world(truth["x"], truth["y"])
    sep = coords.separation(SkyCoord(truth["ra"], truth["dec"], unit="deg", frame="icrs"))
    assert sep.max().to_value("arcsec") < 1e-6
    centre = wcs.pixel_to_world_values(255.5, 255.5)
    assert centre[0] == pytest.approx(150.1) and centre[1] == pytest.approx(2.2)


def test_bright_star_centroid_matches_truth(small_field):
    image, _, truth = small_field
    xy = np.column_stack([truth["x"], truth["y"]])
    checked = 0
    for i in np.argsort(-np.asarray(truth["flux"])):
        if truth["kind"][i] != "star" or truth["flux"][i] < 5000:
            continue
        d = np.hypot(*(xy - xy[i]).T)
        d[i] = np.inf
        if d.min() < 25:
            continue  # want an isolated star
        x0, y0 = truth["x"][i], truth["y"][i]
        iy, ix = round(y0), round(x0)
        box = image[iy - 6 : iy + 7, ix - 6 : ix + 7].astype(np.float64) - np.median(image)
        cy, cx = ndimage.center_of_mass(np.clip(box, 0, None))
        assert abs(cx + ix - 6 - x0) < 0.5 and abs(cy + iy - 6 - y0) < 0.5, (cx, cy, x0, y0)
        # the peak pixel is the nearest to the true position
        py, px = np.unravel_index(np.argmax(box), box.shape)
        assert abs(px + ix - 6 - x0) <= 1 and abs(py + iy - 6 - y0) <= 1
        checked += 1
        if checked == 3:
            break
    assert checked >= 1


def test_sky_field_flux_of_isolated_star(small_field):
    image, _, truth = small_field
    stars = truth[(truth["kind"] == "star") & (truth["flux"] > 3000)]
    assert len(stars) > 0
    s = stars[np.argmax(stars["flux"])]
    iy, ix = round(s["y"]), round(s["x"])
    box = image[iy - 15 : iy + 16, ix - 15 : ix + 16].astype(np.float64) - 100.0
    assert box.sum() == pytest.approx(s["flux"], rel=0.1)


def test_sky_field_full_size_fast_and_deterministic():
    t0 = time.perf_counter()
    image, wcs, _ = sim.sky_field(seed=0)
    elapsed = time.perf_counter() - t0
    assert image.shape == (2048, 2048)
    assert elapsed < 10.0, elapsed
    scale = wcs.proj_plane_pixel_scales()[0].to_value("arcsec")
    assert scale == pytest.approx(0.2)
    again, _, truth2 = sim.sky_field((256, 256), n_stars=5, n_galaxies=3, seed=0)
    again2, _, _ = sim.sky_field((256, 256), n_stars=5, n_galaxies=3, seed=0)
    np.testing.assert_array_equal(again, again2)
    assert len(truth2) == 8


# ---------------------------------------------------------------------------------- nuclei


def test_nuclei_shapes_and_labels(cells):
    images, labels = cells
    assert images.shape == (3, 128, 160, 2) and images.dtype == np.float32
    assert labels.shape == (3, 128, 160) and labels.dtype == np.int32
    for lab in labels:
        ids = np.unique(lab)
        assert ids[0] == 0
        np.testing.assert_array_equal(ids, np.arange(len(ids)))  # sequential 1..K
        assert len(ids) - 1 >= 3
        fg = (lab > 0).mean()
        assert 0.05 < fg < 0.6, fg
        for k in ids[1:]:
            _, n = ndimage.label(lab == k)
            assert n == 1, f"instance {k} is not connected"


def test_nuclei_touch(cells):
    """Some instances share a border: a semantic mask alone cannot separate them."""
    _, labels = cells
    touching = 0
    for lab in labels:
        right = (lab[:, :-1] > 0) & (lab[:, 1:] > 0) & (lab[:, :-1] != lab[:, 1:])
        down = (lab[:-1] > 0) & (lab[1:] > 0) & (lab[:-1] != lab[1:])
        touching += int(right.sum() + down.sum())
    assert touching > 0


def test_nuclei_foreground_is_bright(cells):
    images, labels = cells
    for img, lab in zip(images, labels):
        fg = img[..., 0][lab > 0].mean()
        bg = img[..., 0][ndimage.binary_dilation(lab > 0, iterations=4) == 0].mean()
        assert fg > 4 * bg
        # photon counts: integers, Poisson
        np.testing.assert_array_equal(img, np.round(img))
    # the cytoplasm channel is a different signal, brighter around the nuclei than far away
    cyto = images[..., 1]
    assert not np.allclose(cyto, images[..., 0])
    struct = ndimage.generate_binary_structure(3, 1)
    struct[0] = struct[2] = False  # dilate within each image only
    near = ndimage.binary_dilation(labels > 0, struct, iterations=6) & (labels == 0)
    far = ~ndimage.binary_dilation(labels > 0, struct, iterations=30)
    assert cyto[near].mean() > 1.5 * cyto[far].mean()


def test_nuclei_deterministic_and_single_channel():
    a = sim.nuclei(1, size=64, seed=9)
    b = sim.nuclei(1, size=64, seed=9)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (1, 64, 64, 1)
    assert not np.array_equal(a[0], sim.nuclei(1, size=64, seed=10)[0])


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sim.galaxy_cutouts(0), "n_per_class must be an int >= 1; got 0"),
        (lambda: sim.galaxy_cutouts(2, size=8), "size must be an int >= 16; got 8"),
        (lambda: sim.galaxy_cutouts(2, seed=-1), "seed must be a non-negative int; got -1"),
        (lambda: sim.sky_field((32, 32)), r"shape must be at least \(64, 64\)"),
        (lambda: sim.sky_field((128, 128), psf_fwhm=0), "psf_fwhm must be a positive number"),
        (lambda: sim.nuclei(1, channels=3), "channels must be 1 or 2; got 3"),
        (lambda: sim.nuclei(1, size=(16, 64)), "size must be at least 32 x 32"),
        (lambda: sim.tan_wcs((8, 8), ra=0, dec=95), "-90 <= dec <= 90"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_galaxy_cutouts_classes_draw_disks_without_arms():
    """classes=("disk", "spiral"): the same disks, only the spirals with arms (the task radial
    profiles cannot solve); unknown, repeated or empty classes are refused."""
    from sciconv.simulate import GALAXY_SHAPES, galaxy_cutouts

    images, labels, names, params = galaxy_cutouts(6, size=32, seed=1, classes=("disk", "spiral"))
    assert names == ["disk", "spiral"] and labels.tolist() == [0] * 6 + [1] * 6
    assert images.shape == (12, 32, 32, 1)
    assert params["sersic_n"].max() <= 1.3  # both are exponential-like disks
    # with the same seed, a disk and a spiral draw the same galaxy (the first one; the noise then
    # uses the generator unevenly): they differ by the arms alone, which carry much of the light
    for seed in range(3):
        disk, _, _, p_disk = galaxy_cutouts(1, size=32, seed=seed, classes=("disk",))
        spiral, _, _, p_spiral = galaxy_cutouts(1, size=32, seed=seed, classes=("spiral",))
        for key in ("r_eff", "flux", "ellip", "theta", "sky"):
            assert p_disk[key] == p_spiral[key]
        light = float(spiral.sum() - p_spiral["sky"][0] * 32 * 32)
        assert float(np.abs(spiral - disk).sum()) > 0.05 * light  # measured 7-34 %
    again = galaxy_cutouts(6, size=32, seed=1, classes=("disk", "spiral"))[0]
    np.testing.assert_array_equal(images, again)
    assert "disk" in GALAXY_SHAPES
    for bad in (("bar",), ("disk", "disk"), (), "disk"):
        with pytest.raises(ConfigError, match="classes must"):
            galaxy_cutouts(1, size=32, classes=bad)


def test_galaxy_cutouts_bands_carry_colour():
    """bands="grz": one channel per band, the same galaxy in each (r as the one-band image
    draws it), ellipticals redder than spirals as drawn, spiral centres redder than their disks;
    bands="r" is the one-band default; bad bands are refused."""
    images, labels, _, params = sim.galaxy_cutouts(
        40, size=32, seed=2, bands="grz", classes=("elliptical", "spiral")
    )
    assert images.shape == (80, 32, 32, 3) and images.dtype == np.float32
    assert {"g_r", "r_z", "bulge_g_r", "bulge_r_z"} <= set(params)
    # measured colours (sky from the border, fluxes summed) follow the drawn ones
    border = np.ones((32, 32), bool)
    border[4:-4, 4:-4] = False
    net = images - np.median(images[:, border], axis=1)[:, None, None, :]
    flux = net.sum(axis=(1, 2))
    g_r = -2.5 * np.log10(flux[:, 0] / flux[:, 1])
    ell, spi = labels == 0, labels == 1
    assert np.median(g_r[ell]) - np.median(g_r[spi]) > 0.15  # drawn: 0.75 vs 0.45 (+ red bulges)
    assert np.corrcoef(g_r[ell], params["g_r"][ell])[0, 1] > 0.5
    # spirals: the bulge-dominated centre is redder than the whole galaxy
    centre = net[:, 13:19, 13:19].sum(axis=(1, 2))
    g_r_centre = -2.5 * np.log10(centre[:, 0] / centre[:, 1])
    assert np.median(g_r_centre[spi] - g_r[spi]) > 0.02
    # the z band sees a brighter sky, each band its own noise
    assert np.median(images[:, border, 2]) > 1.5 * np.median(images[:, border, 0])
    assert not np.array_equal(images[..., 0] - images[..., 1], np.zeros_like(images[..., 0]))
    one = sim.galaxy_cutouts(3, size=32, seed=2)[0]
    np.testing.assert_array_equal(one, sim.galaxy_cutouts(3, size=32, seed=2, bands="r")[0])
    assert sim.galaxy_cutouts(2, size=32, seed=2, bands="zg")[0].shape[-1] == 2
    for bad in ("", "gru", "gg", 3):
        with pytest.raises(ConfigError, match="bands must"):
            sim.galaxy_cutouts(1, size=32, bands=bad)
