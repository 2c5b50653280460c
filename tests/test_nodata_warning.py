"""A mosaic whose uncovered area is exact 0 is said, naming the file and ``--nodata 0`` (QA: a
SWarp-like frame silently cost the demo's sky detector two thirds of its detections)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sciconv import io
from sciconv.errors import SciconvWarning
from sciconv.preprocess import check_nodata_fill


def _sky(shape=(300, 300), seed=0) -> np.ndarray:
    """Sky 110 +- 7 ADU (quantized, as the bundled field) with a few sources."""
    rng = np.random.default_rng(seed)
    image = rng.normal(110.0, 7.0, shape)
    ys, xs = rng.integers(0, shape[0], 30), rng.integers(0, shape[1], 30)
    image[ys, xs] += rng.uniform(100, 3000, 30)
    return np.round(image).astype(np.float32)


def _quiet(image, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return check_nodata_fill(image, **kwargs)


def test_zero_filled_frame_of_a_fits_mosaic_is_said_naming_the_file(tmp_path):
    mosaic = _sky()
    mosaic[:, :120] = 0.0  # SWarp: 40 % not covered
    path = io.write(tmp_path / "mosaic.fits", mosaic)
    image = io.read(path, lazy=True)
    with pytest.warns(SciconvWarning) as said:
        share = check_nodata_fill(image)
    assert share == pytest.approx(0.4, abs=0.02)
    message = str(said[0].message)
    assert "mosaic.fits" in message and "40%" in message
    assert "nodata=0" in message and "--nodata 0" in message
    # read with nodata=0, as the warning says: nothing left to say
    assert _quiet(io.read(path, lazy=True, nodata=0)) == 0.0


def test_in_memory_arrays_and_a_corner_region_are_said():
    mosaic = _sky((400, 500), seed=1)
    mosaic[250:, 300:] = 0.0  # a corner: 150 x 200 = 15 %
    with pytest.warns(SciconvWarning, match=r"array\.fits: 15% .*nodata=0"):
        assert check_nodata_fill(mosaic, path="array.fits") == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize(
    "case",
    ["full coverage", "small frame", "scattered zeros", "integer image", "sparse counts", "sky 0"],
)
def test_images_that_are_not_zero_filled_mosaics_are_left_alone(case):
    rng = np.random.default_rng(2)
    image = _sky()
    if case == "small frame":
        image[:, :20] = 0.0  # 7 %: below the 10 % asked
    elif case == "scattered zeros":
        image[rng.random(image.shape) < 0.3] = 0.0  # many zeros, no large region
    elif case == "integer image":
        image = image.astype(np.int16)
        image[:, :120] = 0  # an 8/16-bit scan's dark border is data
    elif case == "sparse counts":
        image = rng.poisson(0.3, (300, 300)).astype(np.float32)  # X-ray counts stored as float
    else:  # a sky-subtracted image: 0 is the sky level, inside the noise
        image = image - 110.0
        image[:, :120] = 0.0
    assert _quiet(image) == 0.0


def test_predict_mosaic_says_a_zero_filled_sky_mosaic_and_not_a_microscopy_image(tmp_path):
    # the call sites: a file with a celestial WCS (SWarp's frame), not a float microscopy
    # image whose background was clipped at 0 (real data there: --nodata 0 would be wrong)
    from _helpers import tan_wcs, threshold_model

    from sciconv.inference import predict_mosaic

    model = threshold_model()
    mosaic = _sky((96, 96), seed=3)
    mosaic[:, :40] = 0.0
    sky = io.write(tmp_path / "sky.fits", mosaic, header=tan_wcs((96, 96)).to_header())
    with pytest.warns(SciconvWarning, match=r"sky\.fits: .*--nodata 0"):
        predict_mosaic(model, sky, tmp_path / "a", block=64, progress=False)
    plain = io.write(tmp_path / "cells.fits", mosaic)  # no WCS
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        predict_mosaic(model, plain, tmp_path / "b", block=64, progress=False)
    assert not [w for w in seen if "nodata" in str(w.message)]


def test_sciconv_predict_says_a_zero_filled_sky_mosaic(capsys, tmp_path):
    from _helpers import run_cli, tan_wcs, threshold_model

    threshold_model().save(tmp_path / "sky.keras")
    mosaic = _sky((96, 96), seed=4)
    mosaic[:, :40] = 0.0
    path = io.write(tmp_path / "field.fits", mosaic, header=tan_wcs((96, 96)).to_header())
    with pytest.warns(SciconvWarning, match=r"field\.fits: .*--nodata 0"):
        code, _, err = run_cli(capsys, "predict", tmp_path / "sky.keras", path, "--out",
                               tmp_path / "o", "--quiet")  # fmt: skip
    assert code == 0, err
    with warnings.catch_warnings(record=True) as seen:  # as the warning says: nothing to say
        warnings.simplefilter("always")
        code, _, err = run_cli(capsys, "predict", tmp_path / "sky.keras", path, "--out",
                               tmp_path / "p", "--quiet", "--nodata", "0")  # fmt: skip
    assert code == 0, err
    assert not [w for w in seen if "nodata" in str(w.message)]
