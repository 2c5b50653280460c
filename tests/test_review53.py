"""Review 53: the nodata check reads a lazy mosaic in bands (not ~500 single rows), offset
microscopy frames keep the sigma-clipped median background, a locally quantized rms of 0 is
not NaN, and a photon-counting mission's rate map without BUNIT has no gain of 1."""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage

from sciconv import io, postprocess
from sciconv.io import GridImage
from sciconv.preprocess import check_nodata_fill

NUCLEI = pathlib.Path(__file__).resolve().parents[1] / "data" / "real" / "nuclei"
DSB = pathlib.Path("/work/shared/data/dsb2018_train")


def test_nodata_check_reads_a_lazy_mosaic_in_a_few_bands(tmp_path):
    """QA: one read per sampled row decompressed a .fits.fz's tile strips ~40 times (30 s)."""
    mosaic = np.random.default_rng(0).normal(100.0, 5.0, (2000, 1500)).astype(np.float32)
    mosaic[:, :600] = 0.0
    path = io.write(tmp_path / "mosaic.fits", mosaic)
    image = io.read(path, lazy=True)
    reads = []
    reader = image.data._reader
    image.data._reader = lambda ys, xs: reads.append(ys) or reader(ys, xs)
    with pytest.warns(UserWarning, match="mosaic.fits: 40%"):
        share = check_nodata_fill(image)
    assert len(reads) <= 2  # was 500: every 4th row alone
    with pytest.warns(UserWarning, match="image: 40%"):
        assert check_nodata_fill(mosaic) == share  # the same grid as in memory


def _photutils_median(img, labels):
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MedianBackground

    mask = ndimage.binary_dilation(labels > 0, iterations=3)
    ref = Background2D(
        np.asarray(img, dtype=np.float64),  # as background_and_rms takes it
        (64, 64),
        filter_size=(3, 3),
        mask=mask,
        sigma_clip=SigmaClip(sigma=3.0),
        bkg_estimator=MedianBackground(),
        exclude_percentile=50.0,
    )
    return ref.background, ref.background_rms


def test_offset_microscopy_frame_keeps_the_sigma_clipped_median():
    """QA: the bundled 8-bit frame took the photon-counts path (level 17.36, rms 4.17)."""
    tifffile = pytest.importorskip("tifffile")
    key = "150b0ffa318c87b31d78af0e87d60390dbcd84b5f228a8c1fb3225cbe5df3e3f.tif"
    img = tifffile.imread(NUCLEI / "images" / key)
    img = (img if img.ndim == 2 else img[..., 0]).astype(np.float32)
    labels = tifffile.imread(NUCLEI / "labels" / key).astype(np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level, rms = postprocess.background_and_rms(img, labels)
    ref_level, ref_rms = _photutils_median(img, labels)
    assert np.array_equal(level, ref_level) and np.array_equal(rms, ref_rms)
    assert round(float(np.median(level)), 2) == 15.79
    assert round(float(np.median(rms)), 2) == 2.68


def test_counts_need_a_poisson_histogram_or_a_header_that_says_so():
    rng = np.random.default_rng(1)
    counts = rng.poisson(2.0, (256, 256)).astype(np.float32)
    # variance = mean = 12 as Poisson's, but a histogram of even values from 6 (a camera's)
    offset = (6 + 2 * rng.poisson(3.0, counts.shape)).astype(np.float32)
    level, rms = postprocess.background_and_rms(offset)
    ref_level, ref_rms = _photutils_median(offset, np.zeros(offset.shape, int))
    assert np.array_equal(level, ref_level) and np.array_equal(rms, ref_rms)
    level, rms = postprocess.background_and_rms(counts)  # Poisson: the counts path
    assert abs(float(np.median(level)) - 2.0) < 0.1
    assert np.allclose(rms, np.sqrt(level))
    # a header that says counts takes the counts path without the histogram's say
    said = GridImage(
        offset[..., None],
        header=fits.Header({"TELESCOP": "XMM", "BUNIT": "count"}),
        meta={"bunit": "count"},
    )
    level, rms = postprocess.background_and_rms(said)
    assert abs(float(np.median(level)) - 12.0) < 0.2
    assert np.allclose(rms, np.sqrt(level))


def test_locally_zero_rms_of_integer_data_is_the_quantization_noise():
    img = np.round(np.random.default_rng(2).normal(50.0, 3.0, (256, 256)))
    img[:128, :128] = 20.0  # one quantized value: box rms 0 there
    level, rms = postprocess.background_and_rms(img, box_size=32, filter_size=1)
    assert (rms == 0).any() and (rms > 0).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        err, _ = postprocess.estimate_error(img, background=level, background_rms=rms, gain=None)
    assert np.isfinite(err).all()
    assert np.allclose(err[rms == 0], 1 / np.sqrt(12))
    assert np.array_equal(err[rms > 0], rms[rms > 0])


@pytest.mark.skipif(not DSB.is_dir(), reason="the DSB2018 training set is not here")
def test_quantized_dsb2018_frame_keeps_every_flux_error():
    """QA: 1 of 11 nuclei of f41e2f891368 got flux_err NaN (box rms 0 on 14,007 pixels)."""
    tifffile = pytest.importorskip("tifffile")
    from PIL import Image

    (png,) = (DSB / "images").glob("*f41e2f891368.png")
    img = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    labels = tifffile.imread(DSB / "labels" / png.name.replace(".png", ".tif")).astype(np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level, rms = postprocess.background_and_rms(img, labels)
    err, _ = postprocess.estimate_error(img, labels, background=level, background_rms=rms)
    table = postprocess.measure(labels, intensity=img, background=level, error=err)
    assert len(table) == 11 and np.isfinite(np.asarray(table["flux_err"])).all()
    assert np.array_equal(err[rms > 0], rms[rms > 0])  # as at e9cedd6
    assert np.allclose(err[rms == 0], 1 / np.sqrt(12))


@pytest.mark.parametrize(("pixels", "want"), [(np.full((4, 4, 1), 0.37), None), (None, 1.0)])
def test_photon_counting_mission_without_bunit_needs_integer_pixels(pixels, want):
    """A GALEX -int map (counts per second, no BUNIT) has no gain of 1; integers (dmcopy) do."""
    if pixels is None:
        pixels = np.random.default_rng(3).poisson(1.0, (4, 4, 1))
    image = GridImage(pixels.astype(np.float32), header=fits.Header({"TELESCOP": "GALEX"}))
    assert postprocess.effective_gain(image) == want
