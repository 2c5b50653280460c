"""A real image inside a no-data (NaN) frame gives the bare image's result, whatever the frame's
width (QA: the pretrained nuclei model on a real H&E image in a 64 px NaN frame found 7 objects
more and lost 3 near it; a 1 px frame shifted the image against the U-Net's pooling grid and
changed probabilities by 0.61 even 50 px inside). predict_tiled and predict_instances crop the
frame and paste the result back: labels 0 and probabilities NaN in the frame."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tifffile

from sciconv import inference, io, models
from sciconv.errors import InferenceError
from sciconv.inference._frame import crop_frame, find_frame

DATA = Path(__file__).resolve().parents[1] / "data" / "real"
#: (top, bottom, left, right) NaN frames: every width, not multiples of the divisor (8), uneven,
#: and on one side only
FRAMES = [(1, 1, 1, 1), (5, 5, 5, 5), (64, 64, 64, 64), (3, 17, 9, 0), (0, 0, 13, 0)]


def _real(folder: str, size: int) -> np.ndarray:
    """A ``size`` square crop of the first bundled real image of ``folder`` (float32)."""
    path = sorted((DATA / folder / "images").glob("*.tif"))[0]
    image = tifffile.imread(path).astype(np.float32)
    return image[:size, :size]


def _framed(image: np.ndarray, frame) -> np.ndarray:
    top, bottom, left, right = frame
    pad = ((top, bottom), (left, right)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, pad, constant_values=np.nan)  # every good pixel unchanged


def _inner(result: np.ndarray, frame) -> np.ndarray:
    top, bottom, left, right = frame
    return result[top : result.shape[0] - bottom, left : result.shape[1] - right]


def _outside(result: np.ndarray, frame) -> np.ndarray:
    """The frame's pixels of ``result`` (flattened over the pixels)."""
    inner = np.zeros(result.shape[:2], bool)
    top, bottom, left, right = frame
    inner[top : result.shape[0] - bottom, left : result.shape[1] - right] = True
    return result[~inner]


@pytest.fixture(scope="module")
def nuclei():
    return models.pretrained("nuclei")


@pytest.fixture(scope="module")
def tiny():
    """A small fixed U-Net (divisor 8, random weights seeded) with the default post-processing."""
    keras.utils.set_random_seed(3)
    return models.segmenter((None, None, 1), depth=3, filters=4)


@pytest.fixture(scope="module")
def he():
    """A real DSB2018 H&E image (RGB), 128 x 128."""
    return _real("nuclei_brightfield", 128)


@pytest.fixture(scope="module")
def nuclei_bare(nuclei, he):
    return inference.predict_instances(nuclei, he, return_prob=True, progress=False)


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: "x".join(map(str, f)))
def test_pretrained_nuclei_in_a_nan_frame_give_the_bare_image_result(
    nuclei, he, nuclei_bare, frame
):
    labels0, prob0 = nuclei_bare
    assert labels0.max() >= 5  # real nuclei found
    with inference.decisions() as decided:
        labels, prob = inference.predict_instances(
            nuclei, _framed(he, frame), return_prob=True, progress=False
        )
    assert labels.shape == prob.shape[:2] == _framed(he, frame).shape[:2]
    np.testing.assert_array_equal(_inner(labels, frame), labels0)
    assert not _outside(labels, frame).any()
    np.testing.assert_allclose(_inner(prob, frame), prob0, atol=1e-5, rtol=0)
    assert np.isnan(_outside(prob, frame)).all()
    top, bottom, left, right = frame
    h, w = 128 + top + bottom, 128 + left + right
    assert decided["nodata_frame"] == (
        f"cropped to rows {top}-{top + 127}, cols {left}-{left + 127} of {h}x{w} (auto)"
    )


def test_pretrained_nuclei_tiled_in_a_nan_frame(nuclei):
    image = _real("nuclei_brightfield", 160)
    bare = inference.predict_tiled(nuclei, image, tile=112, progress=False)
    for frame in [(1, 1, 1, 1), (3, 17, 9, 0)]:
        prob = inference.predict_tiled(nuclei, _framed(image, frame), tile=112, progress=False)
        np.testing.assert_allclose(_inner(prob, frame), bare, atol=1e-5, rtol=0)
        assert np.isnan(_outside(prob, frame)).all()


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: "x".join(map(str, f)))
def test_tiny_model_whole_and_tiled_in_a_nan_frame(tiny, frame):
    image = _real("nuclei", 200)[:200, :176]
    for tile in ("auto", 112):  # the whole image at once, and tiles smaller than it
        bare = inference.predict_tiled(tiny, image, tile=tile, progress=False)
        prob = inference.predict_tiled(tiny, _framed(image, frame), tile=tile, progress=False)
        np.testing.assert_allclose(_inner(prob, frame), bare, atol=1e-5, rtol=0)
        assert np.isnan(_outside(prob, frame)).all()
    labels0 = inference.predict_instances(tiny, image, tile=112, progress=False)
    labels = inference.predict_instances(tiny, _framed(image, frame), tile=112, progress=False)
    assert labels0.max() > 0
    np.testing.assert_array_equal(_inner(labels, frame), labels0)
    assert not _outside(labels, frame).any()


def test_uncertainty_and_out_in_a_nan_frame(tiny, tmp_path):
    image = _real("nuclei", 64)
    frame = (3, 6, 0, 11)
    framed = _framed(image, frame)
    mean0, std0 = inference.predict_tiled(tiny, image, uncertainty="tta", progress=False)
    mean, std = inference.predict_tiled(tiny, framed, uncertainty="tta", progress=False)
    for got, want in ((mean, mean0), (std, std0)):
        np.testing.assert_allclose(_inner(got, frame), want, atol=1e-5, rtol=0)
        assert np.isnan(_outside(got, frame)).all()
    labels0, _, sd0 = inference.predict_instances(tiny, image, uncertainty="tta", progress=False)
    labels, prob, sd = inference.predict_instances(tiny, framed, uncertainty="tta", progress=False)
    np.testing.assert_array_equal(_inner(labels, frame), labels0)
    np.testing.assert_allclose(_inner(sd, frame), sd0, atol=1e-5, rtol=0)
    assert np.isnan(_outside(sd, frame)).all() and np.isnan(_outside(prob, frame)).all()
    # out=: an array filled in place and a .npy memory map, the frame NaN in both
    bare = inference.predict_tiled(tiny, image, progress=False)
    target = np.full((*framed.shape, 2), 7.0, np.float32)
    assert inference.predict_tiled(tiny, framed, out=target, progress=False) is target
    written = inference.predict_tiled(tiny, framed, out=tmp_path / "p.npy", progress=False)
    for got in (target, np.load(tmp_path / "p.npy"), written):
        assert got.shape == (*framed.shape, 2)
        np.testing.assert_allclose(_inner(got, frame), bare, atol=1e-5, rtol=0)
        assert np.isnan(_outside(got, frame)).all()


def test_gridimage_in_a_nan_frame_keeps_its_metadata_and_full_frame_labels(tiny):
    from astropy.wcs import WCS

    image = _real("nuclei", 96)
    frame = (5, 0, 0, 9)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    wcs.wcs.crpix = [50, 50]
    wcs.wcs.crval = [150.0, 2.0]
    grid = io.GridImage(_framed(image, frame)[..., None], wcs=wcs, path="mosaic.fits")
    cropped, found = crop_frame(grid)
    assert (found.y0, found.y1, found.x0, found.x1) == (5, 101, 0, 96)
    assert cropped.path == "mosaic.fits" and cropped.pixel_scale == grid.pixel_scale
    # the cutout's WCS is shifted: its pixel (0, 0) is the mosaic's (x 0, y 5)
    np.testing.assert_allclose(
        cropped.wcs.pixel_to_world_values(0, 0), wcs.pixel_to_world_values(0, 5)
    )
    labels0 = inference.predict_instances(tiny, image, progress=False)
    labels = inference.predict_instances(tiny, grid, progress=False)
    assert labels.shape == grid.shape[:2]  # the labels (and a catalog's x, y) are the mosaic's
    np.testing.assert_array_equal(_inner(labels, frame), labels0)


def test_nan_holes_inside_and_lazy_images_are_not_cropped(tiny, tmp_path):
    image = _real("nuclei", 96)
    holes = image.copy()
    holes[:90, :7] = np.nan  # bands along the edges, but every edge line keeps finite pixels
    holes[0, 10:] = np.nan
    holes[90:, 20:40] = np.nan
    holes[40:50, 40:50] = np.nan
    assert find_frame(holes) is None
    assert crop_frame(holes)[1] is None
    with inference.decisions() as decided:
        prob = inference.predict_tiled(tiny, holes, progress=False)
    assert "nodata_frame" not in decided
    bad = ~np.isfinite(holes)
    assert np.isnan(prob[bad]).all() and np.isfinite(prob[~bad]).all()
    # a memory map is not read whole to look for a frame: predicted with it, as before
    framed = _framed(image, (8, 8, 8, 8))
    np.save(tmp_path / "framed.npy", framed)
    mapped = np.load(tmp_path / "framed.npy", mmap_mode="r")
    assert find_frame(mapped) is None
    assert find_frame(np.nan_to_num(framed).astype(np.int32)) is None  # integers hold no NaN
    with inference.decisions() as decided:
        inference.predict_tiled(tiny, mapped, progress=False)
    assert "nodata_frame" not in decided


def test_all_nan_and_thin_data_behave_as_before(tiny):
    blank = np.full((40, 48), np.nan, np.float32)
    assert find_frame(blank) is None
    with pytest.raises(InferenceError, match="no finite pixel"):
        inference.predict_tiled(tiny, blank, progress=False)
    assert np.isnan(inference.predict_tiled(tiny, blank, normalize=None, progress=False)).all()
    strip = blank.copy()
    strip[10, 5:30] = 1.0  # one row of data: too thin to predict bare, predicted framed
    assert find_frame(strip) is None
    assert inference.predict_tiled(tiny, strip, progress=False).shape == (40, 48, 2)


def test_cli_fits_mosaic_in_a_nan_frame_gives_the_bare_catalog_in_its_own_pixels(
    tiny, tmp_path, capsys
):
    from _helpers import run_cli
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    tiny.save(tmp_path / "m.keras")
    image = _real("nuclei", 96)
    frame = (5, 2, 11, 0)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [40.0, 40.0]
    wcs.wcs.cdelt = [-5e-5, 5e-5]
    fits.PrimaryHDU(image, header=wcs.to_header()).writeto(tmp_path / "bare.fits")
    shifted = wcs.deepcopy()
    shifted.wcs.crpix = [40.0 + frame[2], 40.0 + frame[0]]  # the same sky on the larger grid
    framed = _framed(image, frame)
    fits.PrimaryHDU(framed, header=shifted.to_header()).writeto(tmp_path / "mosaic.fits")
    out = tmp_path / "pred"
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "m.keras", tmp_path / "bare.fits", tmp_path / "mosaic.fits",
        "--out", out, "--background", "none",
    )  # fmt: skip
    assert code == 0, err
    labels0 = io.read(out / "bare_labels.fits").data[..., 0]
    labels = io.read(out / "mosaic_labels.fits").data[..., 0]
    assert labels.shape == framed.shape and labels0.max() > 0
    np.testing.assert_array_equal(_inner(labels, frame), labels0)
    cat0, cat = Table.read(out / "bare_catalog.ecsv"), Table.read(out / "mosaic_catalog.ecsv")
    assert len(cat) == len(cat0)
    np.testing.assert_allclose(cat["x"], cat0["x"] + frame[2], atol=1e-9)  # the mosaic's pixels
    np.testing.assert_allclose(cat["y"], cat0["y"] + frame[0], atol=1e-9)
    np.testing.assert_allclose(cat["ra"], cat0["ra"], atol=1e-9)
    np.testing.assert_allclose(cat["dec"], cat0["dec"], atol=1e-9)
    history = " ".join(str(h) for h in fits.getheader(out / "mosaic_prob.fits")["HISTORY"])
    assert "nodata_frame = 'cropped to rows 5-100, cols 11-106 of 103x107 (auto)'" in history
