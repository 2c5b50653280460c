"""The catalog's mask columns do not depend on whether a pixel happens to be bad.

``sciconv predict`` writes ``flag_masked`` and ``masked_fraction`` on its whole-image path and on
its block-wise path (``--block``, ``inference.predict_mosaic`` on a lazy read) alike: False / 0.0
when the image's mask holds no bad pixel, the same flags when it does.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tifffile
from _helpers import run_cli
from astropy.io import fits
from astropy.table import Table

from sciconv.models import attach_metadata


def _threshold_model():
    """Softmax over (background, foreground): foreground where the normalized input > 0.5."""
    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[-4.0, 4.0]]]]),
        bias_initializer=keras.initializers.Constant([2.0, -2.0]),
    )(inputs)
    return attach_metadata(
        keras.Model(inputs, keras.layers.Softmax()(logits)),
        task="segmentation",
        postprocess={"method": "connected", "min_size": 3},
    )


def _blobs() -> np.ndarray:
    """48 x 48: three bright squares on a dark, slightly noisy background."""
    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 0.01, (48, 48)).astype(np.float32)
    for y, x in ((6, 6), (20, 30), (36, 10)):
        image[y : y + 6, x : x + 6] = 1.0
    return image


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mask_columns") / "threshold.keras"
    _threshold_model().save(path)
    return path


def _write(path, image, bad=None):
    """FITS with a MASK HDU (``bad``, all good when None), or a TIFF (which carries no mask)."""
    if path.suffix == ".tif":
        tifffile.imwrite(path, image)
        return path
    mask = np.zeros(image.shape, np.uint8) if bad is None else bad.astype(np.uint8)
    fits.HDUList([fits.PrimaryHDU(image), fits.ImageHDU(mask, name="MASK")]).writeto(path)
    return path


def _catalogs(capsys, model_file, image_path, out, *extra):
    """The catalog of the whole-image path and of the block-wise path, for one input."""
    common = ["predict", model_file, image_path, "--overlap", "8", "--quiet", *extra]
    code, _, err = run_cli(capsys, *common, "--out", out / "whole", "--tile", "32")
    assert code == 0, err
    code, _, err = run_cli(capsys, *common, "--out", out / "blocks", "--block", "16")
    assert code == 0, err
    stem = image_path.name.split(".")[0]
    return (
        Table.read(out / "whole" / f"{stem}_catalog.ecsv"),
        Table.read(out / "blocks" / f"{stem}_catalog.ecsv"),
    )


@pytest.mark.parametrize("name", ["clean.fits", "clean.tif"])
def test_both_paths_write_mask_columns_when_no_pixel_is_bad(capsys, tmp_path, model_file, name):
    image_path = _write(tmp_path / name, _blobs())
    whole, blocks = _catalogs(capsys, model_file, image_path, tmp_path)
    assert len(whole) == len(blocks) == 3
    assert whole.colnames == blocks.colnames
    for table in (whole, blocks):
        assert table["flag_masked"].dtype == bool and not table["flag_masked"].any()
        np.testing.assert_array_equal(table["masked_fraction"], 0.0)
    np.testing.assert_array_equal(whole["area"], blocks["area"])
    # each object's ranking score both ways, from its own probabilities (QA 56: whole only)
    order = np.argsort(whole["y"] * 1e3 + whole["x"]), np.argsort(blocks["y"] * 1e3 + blocks["x"])
    assert np.all(np.isfinite(blocks["score"])) and blocks["score"].meta["ucd"] == "meta.code.qual"
    np.testing.assert_allclose(whole["score"][order[0]], blocks["score"][order[1]], atol=0.02)


def test_both_paths_flag_the_same_objects_when_a_pixel_is_bad(capsys, tmp_path, model_file):
    image = _blobs()
    bad = np.zeros(image.shape, bool)
    bad[22, 32] = True  # in the second square (rows 20-25, columns 30-35)
    image_path = _write(tmp_path / "flagged.fits", image, bad)
    whole, blocks = _catalogs(capsys, model_file, image_path, tmp_path)
    assert whole.colnames == blocks.colnames
    order = np.argsort(whole["y"]), np.argsort(blocks["y"])  # the same objects, by position
    np.testing.assert_allclose(whole["y"][order[0]], blocks["y"][order[1]])
    np.testing.assert_array_equal(whole["flag_masked"][order[0]], [False, True, False])
    np.testing.assert_array_equal(blocks["flag_masked"][order[1]], [False, True, False])
    # the bad pixel (NaN, no prediction) lies inside the object: it is labelled with it
    # (postprocess.instances' bridge), counted by masked_fraction, left out of the fluxes
    np.testing.assert_array_equal(whole["area"][order[0]], [36, 36, 36])
    np.testing.assert_array_equal(blocks["area"][order[1]], [36, 36, 36])
    np.testing.assert_allclose(whole["masked_fraction"][order[0]], [0, 1 / 36, 0])
    np.testing.assert_allclose(blocks["masked_fraction"][order[1]], [0, 1 / 36, 0])


def test_both_paths_write_sky_and_physical_columns_alike(capsys, tmp_path, model_file):
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [24.0, 24.0]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    image_path = tmp_path / "sky.fits"
    fits.PrimaryHDU(_blobs(), header=wcs.to_header()).writeto(image_path)
    whole, blocks = _catalogs(capsys, model_file, image_path, tmp_path, "--regions", "ellipse")
    assert whole.colnames == blocks.colnames
    # the README's mosaic command: sky ellipses block by block too (was refused), as whole
    import regions

    got = {k: regions.Regions.read(tmp_path / k / "sky_regions.reg", format="ds9")
           for k in ("whole", "blocks")}  # fmt: skip
    assert len(got["whole"]) == len(got["blocks"]) == 3
    centres = [sorted((r.center.ra.deg, r.center.dec.deg) for r in got[k]) for k in got]
    np.testing.assert_allclose(centres[0], centres[1], atol=1e-9)
    assert {"ra", "dec", "area_phys", "equivalent_diameter_phys"} <= set(blocks.colnames)
    order = np.argsort(whole["y"]), np.argsort(blocks["y"])
    np.testing.assert_allclose(whole["area_phys"][order[0]], blocks["area_phys"][order[1]])
    # 36 pixels of 0.2" x 0.2"
    assert blocks["area_phys"].unit == "arcsec2"
    np.testing.assert_allclose(blocks["area_phys"], 36 * 0.04, rtol=1e-4)


def test_uncertainty_tta_products_say_they_are_the_mean_over_the_views(
    capsys, tmp_path, model_file
):
    """--uncertainty tta writes the spread (UNCERT), score/uncertainty columns, and HISTORY says
    the probabilities are the mean over the views (it said tta = None)."""
    from sciconv import io

    image_path = _write(tmp_path / "blobs.fits", _blobs())
    code, _, err = run_cli(
        capsys, "predict", model_file, image_path, "--out", tmp_path / "u", "--uncertainty", "tta"
    )
    assert code == 0, err
    with fits.open(tmp_path / "u" / "blobs_prob.fits") as hdul:
        assert "UNCERT" in hdul
        history = " ".join(str(h) for h in hdul[0].header["HISTORY"])
    assert "uncertainty = tta" in history.replace("'", "")
    assert "tta = d4 (--uncertainty tta)" in history.replace("'", "")  # QA: read "tta = None"
    table = Table.read(tmp_path / "u" / "blobs_catalog.ecsv")
    assert {"score", "uncertainty"} <= set(table.colnames) and len(table) == 3
    assert np.all((table["score"] > 0.5) & (table["score"] <= 1))
    assert io.read(image_path).shape == (48, 48, 1)  # the input is unchanged


def test_block_margin_on_the_command_line(capsys, tmp_path, model_file):
    """The seam warning asked for margin=, which the command line did not have."""
    import warnings

    from sciconv.errors import SciconvWarning

    image = np.zeros((64, 64), np.float32)
    image[20:50, 10:40] = 1.0  # 30 px across the seams at 32
    path = _write(tmp_path / "big.tif", image)
    common = ["predict", model_file, path, "--block", "32", "--quiet"]
    with pytest.warns(SciconvWarning, match=r"sciconv predict --block-margin 3\d"):
        code, _, err = run_cli(capsys, *common, "--out", tmp_path / "a", "--block-margin", "4")
    assert code == 0, err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = run_cli(capsys, *common, "--out", tmp_path / "b", "--block-margin", "40")
    assert code == 0, err
    table = Table.read(tmp_path / "b" / "big_catalog.ecsv")
    assert len(table) == 1 and table["area"][0] == 30 * 30
