"""Labels and images on two pixel grids (QA 56, finding 1): ``measure`` summed another band's
pixels through the detection band's labels (fluxes ~0, ra/dec arcseconds off, no warning).

One sky field in three grids, as in the QA's repro: r (0.25"/px), z (the same scale, the
pointing shifted by 7.3/-4.6 px) and i (0.30"/px, rotated 30 degrees, pointing 5" off); the
same stars, at known positions and fluxes, rendered noiselessly on each.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from scipy.special import erf

from sciconv import io
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.postprocess import (
    GRID_TOLERANCE,
    check_measure_grid,
    grid_offset,
    measure,
    reproject_labels,
    same_grid,
)

RA0, DEC0 = 150.1, 2.2
SHAPE = (120, 120)
SKY = 100.0
FWHM = 1.0  # arcsec
# stars: offsets from the centre (arcsec, east and north) and total fluxes
OFFSETS = [(-8, -8), (-8, 8), (8, -8), (8, 8), (0, 0), (0, 8)]
FLUXES = np.array([5000.0, 12000.0, 8000.0, 20000.0, 15000.0, 3000.0])
DISC = 2.5  # arcsec: the detection labels' radius (6 sigma of the PSF)
Z_SHIFT = (7.3, -4.6)


def tan_wcs(scale, rot_deg=0.0, center_offset=(0.0, 0.0), crpix_shift=(0.0, 0.0)) -> WCS:
    h, w = SHAPE
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    cos_dec = np.cos(np.radians(DEC0))
    wcs.wcs.crval = [RA0 + center_offset[0] / 3600 / cos_dec, DEC0 + center_offset[1] / 3600]
    wcs.wcs.crpix = [(w + 1) / 2 + crpix_shift[0], (h + 1) / 2 + crpix_shift[1]]
    s, th = scale / 3600, np.radians(rot_deg)
    wcs.wcs.cd = [[-s * np.cos(th), s * np.sin(th)], [s * np.sin(th), s * np.cos(th)]]
    wcs.wcs.set()
    return wcs


GRIDS = {
    "r": dict(scale=0.25),
    "z": dict(scale=0.25, crpix_shift=Z_SHIFT),
    "i": dict(scale=0.30, rot_deg=30.0, center_offset=(4.0, -3.0)),
}


def true_stars() -> SkyCoord:
    cos_dec = np.cos(np.radians(DEC0))
    east, north = np.array(OFFSETS, float).T
    return SkyCoord(RA0 + east / 3600 / cos_dec, DEC0 + north / 3600, unit="deg")


def render(wcs: WCS, scale: float) -> np.ndarray:
    """The stars (pixel-integrated Gaussians) on ``SKY``, noiseless."""
    h, w = SHAPE
    x, y = wcs.world_to_pixel(true_stars())
    sig = FWHM / scale / 2.3548
    img = np.full(SHAPE, SKY)
    edges_x, edges_y = np.arange(w + 1) - 0.5, np.arange(h + 1) - 0.5
    for xi, yi, f in zip(x, y, FLUXES):
        gx = np.diff(erf((edges_x - xi) / (np.sqrt(2) * sig))) / 2
        gy = np.diff(erf((edges_y - yi) / (np.sqrt(2) * sig))) / 2
        img += f * np.outer(gy, gx)
    return img.astype(np.float32)


def band(name: str) -> io.GridImage:
    wcs = tan_wcs(**GRIDS[name])
    header = wcs.to_header()
    header["FILTER"] = name
    data = render(wcs, GRIDS[name]["scale"])[..., None]
    return io.GridImage(data, header=header, wcs=wcs, path=f"field_{name}.fits")


@pytest.fixture(scope="module")
def bands() -> dict[str, io.GridImage]:
    return {name: band(name) for name in GRIDS}


@pytest.fixture(scope="module")
def r_labels(bands) -> np.ndarray:
    """Detection labels on r: a disc of DISC arcsec around each star, ids 10, 20, ..."""
    r = bands["r"]
    x, y = r.wcs.world_to_pixel(true_stars())
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    labels = np.zeros(SHAPE, np.int32)
    for k, (xi, yi) in enumerate(zip(x, y)):
        labels[np.hypot(xx - xi, yy - yi) <= DISC / 0.25] = 10 * (k + 1)
    return labels


def labels_grid(labels, wcs, path="r_labels.fits") -> io.GridImage:
    return io.GridImage(labels[..., None], wcs=wcs, path=path)


# --- grid_offset / same_grid ---------------------------------------------------------------------


def test_grid_offset_of_one_grid_a_shift_and_a_rotation(bands):
    r, z, i = bands["r"].wcs, bands["z"].wcs, bands["i"].wcs
    assert grid_offset(r, r.deepcopy(), SHAPE) < 1e-6
    assert grid_offset(r, z, SHAPE) == pytest.approx(np.hypot(*Z_SHIFT), abs=1e-3)
    # rotated by 30 degrees about a point 5" off and rescaled: tens of pixels at the corners
    assert grid_offset(r, i, SHAPE) > 20
    assert not same_grid(r, z, SHAPE) and same_grid(r, r.deepcopy(), SHAPE)


def test_same_grid_tolerance_is_a_tenth_of_a_pixel(bands):
    r = bands["r"].wcs
    near, far = r.deepcopy(), r.deepcopy()
    near.wcs.crpix = np.add(r.wcs.crpix, [0.05, 0.0])
    far.wcs.crpix = np.add(r.wcs.crpix, [0.2, 0.0])
    assert GRID_TOLERANCE == 0.1
    assert same_grid(r, near, SHAPE) and not same_grid(r, far, SHAPE)
    assert grid_offset(r, far, SHAPE) == pytest.approx(0.2, abs=1e-6)


def test_grid_offset_of_unrelated_wcss_is_a_config_error(bands):
    linear = WCS(naxis=2)
    linear.wcs.ctype = ["LINEAR", "LINEAR"]
    with pytest.raises(ConfigError, match="cannot map one grid's pixels onto the other's"):
        grid_offset(bands["r"].wcs, linear, SHAPE)


# --- the check measure makes ---------------------------------------------------------------------


@pytest.mark.parametrize("other", ["z", "i"])
def test_labels_on_another_grid_are_refused(bands, r_labels, other):
    labels = labels_grid(r_labels, bands["r"].wcs)
    offset = grid_offset(bands["r"].wcs, bands[other].wcs, SHAPE)
    with pytest.raises(InvalidImageError) as caught:
        check_measure_grid(labels, bands[other], bands[other].wcs)
    text = str(caught.value)
    assert f"up to {offset:.3g} px apart" in text
    assert "labels (r_labels.fits) and intensity (field_" in text
    assert "reproject_labels" in text and 'history="reproject' in text


@pytest.mark.parametrize("other", ["z", "i"])
def test_measure_refuses_labels_on_another_grid(bands, r_labels, other):
    """The repro's calls with labels that carry their grid: refused, not a catalog of sky."""
    labels = labels_grid(r_labels, bands["r"].wcs)
    offset = grid_offset(bands["r"].wcs, bands[other].wcs, SHAPE)
    with pytest.raises(InvalidImageError, match=f"up to {offset:.3g} px apart"):
        measure(labels, intensity=bands[other], wcs=bands[other].wcs, background=SKY)


def test_labels_on_the_same_grid_measure_as_an_array(bands, r_labels):
    r = bands["r"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_measure_grid(labels_grid(r_labels, r.wcs.deepcopy()), r, r.wcs) is None
        grid = measure(labels_grid(r_labels, r.wcs.deepcopy()), intensity=r, wcs=r.wcs)
    plain = measure(r_labels, intensity=r, wcs=r.wcs)
    assert grid.colnames == plain.colnames
    for name in plain.colnames:
        assert np.array_equal(np.asarray(grid[name]), np.asarray(plain[name])), name
    assert sorted(grid["label"]) == [10, 20, 30, 40, 50, 60]


def test_wcs_of_another_grid_warns(bands, r_labels):
    """wcs= another band's grid beside an intensity that knows its own: a warning that says
    where ra/dec and fluxes come from (a corrected solution is legitimate)."""
    with pytest.warns(SciconvWarning, match="ra/dec come from wcs=, the fluxes from the") as w:
        check_measure_grid(r_labels, bands["z"], bands["r"].wcs)
    assert f"{grid_offset(bands['r'].wcs, bands['z'].wcs, SHAPE):.3g} px" in str(w[0].message)
    with pytest.warns(SciconvWarning, match="labels must be on the intensity's grid"):
        table = measure(r_labels, intensity=bands["z"], wcs=bands["r"].wcs)
    assert len(table) == 6  # measured as asked: a warning, not a refusal


def test_wcs_within_a_tenth_of_a_pixel_is_silent(bands, r_labels):
    corrected = bands["r"].wcs.deepcopy()
    corrected.wcs.crpix = np.add(corrected.wcs.crpix, [0.04, -0.03])  # a refined astrometric fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_measure_grid(labels_grid(r_labels, bands["r"].wcs), bands["r"], corrected)
        measure(labels_grid(r_labels, bands["r"].wcs), intensity=bands["r"], wcs=corrected)


def test_no_wcs_on_a_side_and_other_shapes_are_not_checked(bands, r_labels):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # plain arrays carry no grid: nothing to compare
        check_measure_grid(r_labels, bands["z"].data, bands["r"].wcs)
        check_measure_grid(labels_grid(r_labels, bands["r"].wcs), bands["z"].data, None)
    # another shape: measure's own refusal, as before
    small = io.GridImage(bands["z"].data[:60], wcs=bands["z"].wcs)
    check_measure_grid(labels_grid(r_labels, bands["r"].wcs), small, None)
    with pytest.raises(InvalidImageError, match="intensity must have the labels' shape"):
        measure(labels_grid(r_labels, bands["r"].wcs), intensity=small)


# --- reproject_labels ----------------------------------------------------------------------------


def test_labels_carried_to_the_i_grid_measure_the_true_fluxes(bands, r_labels):
    """The QA's recipe (b): labels carried to i's rotated, rescaled grid, native i pixels."""
    i = bands["i"]
    carried = reproject_labels(labels_grid(r_labels, bands["r"].wcs), None, i.wcs, i.shape)
    assert isinstance(carried, io.GridImage)
    assert carried.shape == (*SHAPE, 1) and carried.data.dtype == np.int32
    assert same_grid(carried.wcs, i.wcs, SHAPE, tolerance=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = measure(carried, intensity=i, wcs=i.wcs, background=SKY)
    assert sorted(table["label"]) == [10, 20, 30, 40, 50, 60]
    truth = FLUXES[np.asarray(table["label"]) // 10 - 1]
    ratio = np.asarray(table["flux"]) / truth
    assert np.all(np.abs(ratio - 1) < 0.03), ratio
    found = SkyCoord(table["ra"], table["dec"], unit="deg")
    stars = true_stars()[np.asarray(table["label"]) // 10 - 1]
    assert found.separation(stars).arcsec.max() < 0.05


def test_reproject_labels_array_shift_keeps_ids_and_clears_outside(bands):
    r = bands["r"].wcs
    moved = r.deepcopy()
    moved.wcs.crpix = np.add(r.wcs.crpix, [3, -2])  # the same sky 3 columns right, 2 rows down
    labels = np.zeros(SHAPE, np.uint16)
    labels[10:20, 30:40] = 7
    labels[50:60, 100:105] = 65535  # the dtype's largest id: kept as it is
    labels[:, -2:] = 9  # the last two columns: off the target grid
    labels[:2, :5] = 3  # the first two rows: off it upwards
    out = reproject_labels(labels, r, moved, SHAPE)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16 and out.shape == SHAPE
    expected = np.zeros(SHAPE, np.uint16)
    expected[: SHAPE[0] - 2, 3:] = labels[2:, : SHAPE[1] - 3]
    assert np.array_equal(out, expected)
    assert set(np.unique(out)) == {0, 7, 65535}  # objects 3 and 9 are off the target grid


def test_reproject_labels_onto_its_own_grid_is_the_identity(bands, r_labels):
    out = reproject_labels(r_labels, bands["r"].wcs, bands["r"].wcs.deepcopy(), SHAPE)
    assert np.array_equal(out, r_labels)


def test_reproject_labels_needs_the_labels_wcs(bands, r_labels):
    with pytest.raises(ConfigError, match="needs the labels' WCS: give from_wcs"):
        reproject_labels(r_labels, None, bands["i"].wcs, SHAPE)
    with pytest.raises(ConfigError, match="shape must be the grid's"):
        reproject_labels(r_labels, bands["r"].wcs, bands["i"].wcs, (120,))


def _tan(scale: float, n: int) -> WCS:
    """A north-up TAN grid of ``n`` x ``n`` pixels of ``scale`` arcsec, centred on the field."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [RA0, DEC0]
    wcs.wcs.crpix = [(n + 1) / 2] * 2
    wcs.wcs.cdelt = [-scale / 3600, scale / 3600]
    wcs.wcs.set()
    return wcs


def test_reproject_labels_to_a_coarser_grid_keeps_every_object():
    """QA 56 review, finding 5: 361 compact objects (3-7 px at 0.05") carried to a 0.25" band
    kept 249 ids (nearest neighbour misses objects smaller than a target pixel) without a
    word, so forced photometry had 31 % fewer rows. Every object keeps a pixel now: the one
    most of its own pixels fall in, which holds its centroid."""
    fine, coarse = _tan(0.05, 400), _tan(0.25, 80)
    labels = np.zeros((400, 400), np.int32)
    rng = np.random.default_rng(1)
    k = 0
    for cy in range(10, 390, 20):
        for cx in range(10, 390, 20):
            k += 1
            r = rng.integers(1, 4)
            labels[cy - r : cy + r + 1, cx - r : cx + r + 1] = k
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing lost, nothing to warn about
        moved = reproject_labels(labels, fine, coarse, (80, 80))
        table = measure(moved, intensity=np.ones((80, 80)))
    assert sorted(table["label"]) == list(range(1, k + 1))
    # each object holds the target pixel its centroid falls in (the 5 x 5 block it is in)
    for label in range(1, k + 1):
        ys, xs = np.nonzero(labels == label)
        assert moved[int(ys.mean() // 5), int(xs.mean() // 5)] == label, label
    # an object found by sampling keeps its pixels; a missed one gets exactly one
    sizes = np.bincount(moved.ravel(), minlength=k + 1)[1:]
    assert sizes.min() == 1 and sizes.max() == 4


def test_reproject_labels_warns_for_objects_that_share_one_target_pixel():
    """Two sub-pixel objects in one target pixel: one keeps it, the other is counted in a
    warning; an object next to a larger one takes a pixel the larger one can spare."""
    fine, coarse = _tan(0.05, 40), _tan(0.25, 8)
    labels = np.zeros((40, 40), np.int32)
    labels[11, 11] = 1  # both in target pixel (2, 2)
    labels[13, 13] = 2
    labels[20:30, 20:30] = 3  # 2 x 2 target pixels
    labels[26, 31] = 4  # sub-pixel, alone in target pixel (5, 6)
    labels[24, 24] = 5  # a star on 3: target pixel (4, 4), which 3 can spare
    with pytest.warns(SciconvWarning, match=r"1 of 5 labels are smaller than a target pixel"):
        moved = reproject_labels(labels, fine, coarse, (8, 8))
    assert set(np.unique(moved)) == {0, 1, 3, 4, 5}
    assert moved[2, 2] == 1 and moved[5, 6] == 4 and moved[4, 4] == 5
    assert np.count_nonzero(moved == 3) == 3 and moved[5, 5] == 3


def test_grid_refusal_names_the_chip_of_a_multi_extension_file(tmp_path, bands):
    """QA 56 review, finding 8: labels of chip SCI,2 measured on SCI,1 of one file were refused
    as 'intensity (x_flc.fits)', the same name for both chips: the HDU is named too."""
    hdus = [fits.PrimaryHDU()]
    for ver, band in ((1, "r"), (2, "z")):
        header = bands[band].wcs.to_header()
        hdus.append(fits.ImageHDU(bands[band].data[..., 0], header=header, name="SCI", ver=ver))
        hdus.append(fits.ImageHDU(np.ones(SHAPE, np.float32), name="ERR", ver=ver))
    path = tmp_path / "j8fake_flc.fits"
    fits.HDUList(hdus).writeto(path)
    sci1, sci2 = io.read(path, hdu=("SCI", 1)), io.read(path, hdu=("SCI", 2))
    labels = io.GridImage(np.zeros((*SHAPE, 1), np.int32), wcs=sci2.wcs, path=sci2.path,
                          meta=sci2.meta)  # fmt: skip
    with pytest.raises(InvalidImageError) as info:
        measure(labels, intensity=sci1)
    message = str(info.value)
    assert f"labels ({path}[SCI,2]) and intensity ({path}[SCI,1]) are not on one" in message
    # a single-HDU file and an in-memory image keep their plain names
    single = io.GridImage(sci1.data, wcs=sci1.wcs, path=str(tmp_path / "r.fits"), meta={"hdu": 0})
    with pytest.raises(InvalidImageError, match=re.escape(f"labels and intensity ({single.path})")):
        measure(io.GridImage(np.zeros((*SHAPE, 1), np.int32), wcs=sci2.wcs), intensity=single)


# --- read_labels(grid=True) ----------------------------------------------------------------------


def test_read_labels_grid_round_trip_keeps_ids_and_wcs(tmp_path, bands, r_labels):
    r = bands["r"]
    path = tmp_path / "r_labels.fits"
    io.write(path, r_labels, like=r)
    plain = io.read_labels(path)
    assert isinstance(plain, np.ndarray) and plain.shape == SHAPE  # the default is unchanged
    labels = io.read_labels(path, grid=True)
    assert isinstance(labels, io.GridImage)
    assert labels.shape == (*SHAPE, 1) and labels.data.dtype == np.int32
    assert np.array_equal(labels.data[..., 0], r_labels)
    assert grid_offset(labels.wcs, r.wcs, SHAPE) < 1e-6
    assert labels.header["FILTER"] == "r" and labels.path == str(path)
    # measure takes it, and the grid it carries refuses the z band
    assert len(measure(labels, intensity=r, wcs=r.wcs)) == 6
    with pytest.raises(InvalidImageError, match=re.escape(f"labels ({path}) and intensity")):
        check_measure_grid(labels, bands["z"], None)
    # carried to i: the labels' header (FILTER) with i's WCS cards
    carried = reproject_labels(labels, None, bands["i"].wcs, SHAPE)
    assert carried.header["FILTER"] == "r"
    assert WCS(carried.header).wcs.compare(bands["i"].wcs.wcs, tolerance=1e-9)


def test_read_labels_grid_of_a_tiff_keeps_big_ids_and_pixel_size(tmp_path):
    import tifffile

    path = tmp_path / "cells.tif"
    ids = np.array([[0, 16_777_216], [16_777_217, 2]], np.uint32)
    tifffile.imwrite(path, ids, resolution=(2e4, 2e4), resolutionunit="CENTIMETER")
    labels = io.read_labels(path, grid=True)
    assert labels.data.dtype == np.uint32 and labels.shape == (2, 2, 1)
    assert labels.data[..., 0].tolist() == ids.tolist()
    assert labels.wcs is None and labels.pixel_scale == io.PixelScale(y=0.5, x=0.5, unit="um")


def test_read_labels_grid_of_an_ome_zarr_label_image_keeps_its_pixel_size(tmp_path):
    pytest.importorskip("ome_zarr")
    store = tmp_path / "cells.ome.zarr"
    like = io.GridImage(
        np.zeros((32, 32, 1), np.float32), meta={"pixel_size": (0.5, 0.5), "pixel_unit": "um"}
    )
    io.write_ome_zarr(store, np.zeros((32, 32), "uint16"), levels=2, like=like)
    ids = np.zeros((32, 32), np.int32)
    ids[4:9, 5:12] = 70_000
    io.write_ome_zarr_labels(store, ids, name="nuclei")
    for path in (store, store / "labels" / "nuclei"):
        labels = io.read_labels(path, grid=True)
        assert labels.shape == (32, 32, 1) and labels.data.dtype == np.int32
        assert np.array_equal(labels.data[..., 0], ids)
        assert labels.pixel_scale == io.PixelScale(y=0.5, x=0.5, unit="um")
