"""A tiled simulated sky: the block-wise catalog equals the whole-image catalog (issue 16)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sciconv import postprocess, simulate
from sciconv.inference import predict_instances, predict_instances_blocks, predict_tiled

TILE, REPS, BLOCK, MARGIN = 128, 2, 48, 32
POST = dict(threshold=0.5, min_size=5, min_distance=3)


def _detector():
    """Two 3 x 3 box blurs, then foreground where the blurred sky-subtracted pixel > 15 ADU.

    Deterministic, with a receptive field wider than one pixel (so margins and blending matter).
    """
    inputs = keras.Input((None, None, 1))
    box = keras.initializers.Constant(1.0 / 9.0)
    x = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=box, use_bias=False)(inputs)
    x = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=box, use_bias=False)(x)
    logits = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[-0.2, 0.2]]]]),
        bias_initializer=keras.initializers.Constant([3.0, -3.0]),
    )(x)
    return keras.Model(inputs, keras.layers.Softmax()(logits), name="sky_box_detector")


@pytest.fixture(scope="module")
def sky():
    """A 128^2 simulated field tiled 2 x 2 (sky subtracted) with one TAN WCS over the mosaic."""
    field, wcs, truth = simulate.sky_field((TILE, TILE), seed=4, n_stars=14, n_galaxies=8)
    image = np.tile(field - np.float32(100.0), (REPS, REPS)).astype(np.float32)
    wcs = wcs.deepcopy()
    wcs.wcs.crpix = [(image.shape[1] + 1) / 2, (image.shape[0] + 1) / 2]
    return image, wcs, truth


@pytest.fixture(scope="module")
def whole(sky):
    image, wcs, _ = sky
    model = _detector()
    labels = predict_instances(model, image, normalize=None, progress=False, **POST)
    return model, labels, postprocess.measure(labels, intensity=image, wcs=wcs)


def _assert_same_catalog(got, expected):
    assert len(got) == len(expected) > 20
    # one object each, in the same order: the block path numbers objects block by block, so
    # match rows by the object's pixels (area and bounding box identify it)
    keys = ("area", "bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax")
    order_got = np.lexsort([np.asarray(got[k]) for k in keys[::-1]])
    order_exp = np.lexsort([np.asarray(expected[k]) for k in keys[::-1]])
    got, expected = got[order_got], expected[order_exp]
    for key in keys:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    cos_dec = np.cos(np.radians(np.asarray(expected["dec"])))
    dra = (np.asarray(got["ra"]) - np.asarray(expected["ra"])) * cos_dec * 3600.0
    ddec = (np.asarray(got["dec"]) - np.asarray(expected["dec"])) * 3600.0
    assert np.abs(dra).max() < 1e-3 and np.abs(ddec).max() < 1e-3  # arcsec
    np.testing.assert_allclose(got["flux_sum"], expected["flux_sum"], rtol=1e-12)
    np.testing.assert_allclose(got["x_weighted"], expected["x_weighted"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["y_weighted"], expected["y_weighted"], rtol=0, atol=1e-9)


def test_blockwise_sky_catalog_equals_the_whole_image_catalog(sky, whole):
    image, wcs, truth = sky
    model, labels, expected = whole
    # seams run through sources: objects whose bounding box straddles a block boundary
    straddle = [  # the box's max is the last column / row (inclusive)
        (lo // BLOCK) != (hi // BLOCK)
        for lo, hi in zip(
            np.r_[expected["bbox_xmin"], expected["bbox_ymin"]],
            np.r_[expected["bbox_xmax"], expected["bbox_ymax"]],
            strict=True,
        )
    ]
    assert sum(straddle) >= 5
    got_labels, got = predict_instances_blocks(
        model, image, block=BLOCK, margin=MARGIN, wcs=wcs, normalize=None, progress=False,
        background=False, **POST,  # as measure() without one
    )  # fmt: skip
    assert got_labels.max() == labels.max() == len(got)
    _assert_same_catalog(got, expected)
    # and the truth is found: most sources of every tile copy within 2 px
    from scipy.spatial import cKDTree

    tree = cKDTree(np.c_[got["x_weighted"], got["y_weighted"]])
    for i in range(REPS):
        for j in range(REPS):
            dist, _ = tree.query(np.c_[truth["x"] + j * TILE, truth["y"] + i * TILE])
            assert (dist < 2.0).mean() > 0.6


def test_lazy_fits_mosaic_catalog_equals_the_in_memory_catalog(sky, whole, tmp_path):
    pytest.importorskip("zarr")
    from astropy.io import fits
    from astropy.table import Table

    from sciconv.inference import predict_mosaic

    image, wcs, _ = sky
    model, _, expected = whole
    path = tmp_path / "mosaic.fits"
    fits.writeto(path, image, wcs.to_header())
    before = path.read_bytes()
    outs = predict_mosaic(
        model, path, tmp_path / "out", block=BLOCK, margin=MARGIN, normalize=None, progress=False,
        background="none", **POST,
    )  # fmt: skip
    got = Table.read(outs["catalog"])
    _assert_same_catalog(got, expected)
    assert path.read_bytes() == before  # the input is never modified
    # by default a sky mosaic's catalog also has background-subtracted fluxes, block by block
    outs = predict_mosaic(
        model, path, tmp_path / "sky", block=BLOCK, margin=MARGIN, normalize=None, progress=False,
        **POST,
    )  # fmt: skip
    sub = Table.read(outs["catalog"])
    np.testing.assert_allclose(sub["flux_sum"], got["flux_sum"], rtol=1e-12)
    np.testing.assert_allclose(
        sub["flux"], sub["flux_sum"] - sub["background"] * sub["area"], rtol=1e-9, atol=1e-6
    )
    assert np.abs(np.median(sub["background"])) < 5  # the field is sky-subtracted (sky 100)


def test_memory_map_and_in_memory_array_normalize_alike(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, 10.0, (1040, 1000)).astype(np.float32)  # > 1e6 pixels
    np.save(tmp_path / "image.npy", image)
    memmap = np.load(tmp_path / "image.npy", mmap_mode="r")
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    kw = dict(normalize={"method": "percentile", "low": 1.0, "high": 99.8}, progress=False)
    np.testing.assert_allclose(
        predict_tiled(model, memmap, **kw), predict_tiled(model, image, **kw)
    )


def test_block_background_skips_windows_without_objects(sky):
    """A window with no object (all sky, or all NaN) has no catalog rows: its background is not
    estimated (an all-NaN window warned 'one sigma-clipped median level ... could not map it')."""
    import warnings

    from sciconv.errors import SciconvWarning
    from sciconv.inference import predict_instances_blocks

    image, wcs, _ = sky
    image = image.copy()
    image[:, : image.shape[1] // 2] = np.nan  # the left half: no data
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        _, table = predict_instances_blocks(
            _detector(), image, block=BLOCK, margin=MARGIN, background=True, normalize=None,
            progress=False, wcs=wcs, **POST,
        )  # fmt: skip
    assert len(table) > 0 and "flux" in table.colnames


def test_predict_mosaic_refuses_an_unknown_background_mode_before_reading(sky, tmp_path):
    from astropy.io import fits

    from sciconv.errors import InferenceError
    from sciconv.inference import predict_mosaic

    image, wcs, _ = sky
    path = tmp_path / "m.fits"
    fits.writeto(path, image, wcs.to_header())
    before = path.read_bytes()
    with pytest.raises(InferenceError, match=r"background must be one of 'auto', 'map', 'none'"):
        predict_mosaic(_detector(), path, tmp_path / "out", background="sky")
    assert path.read_bytes() == before and not (tmp_path / "out").exists()


def test_a_block_catalog_with_no_measurable_sky_says_its_errors_are_unknown(threshold_model):
    """Objects over the whole field leave no background pixel in any block: every flux_err is
    NaN, and FLUXERR said "background rms ..." all the same (review; the whole-image catalog
    says so since the QA of 2026-12-06)."""
    from sciconv.errors import SciconvWarning

    image = np.full((96, 96), 5.0, np.float32)  # foreground for the threshold model
    image[::16], image[:, ::16] = -5.0, -5.0  # 15 px squares parted by 1 px lines of sky
    with pytest.warns(SciconvWarning, match="background pixels are left"):
        _, table = predict_instances_blocks(
            threshold_model, image, block=48, margin=16, normalize=None, progress=False,
            background=True, min_size=1,
        )  # fmt: skip
    assert len(table) > 20 and not np.isfinite(np.asarray(table["flux_err"], float)).any()
    assert table.meta["FLUXERR"] == postprocess.NO_RMS


def test_mosaic_catalogs_take_the_files_error_hdu_block_by_block(threshold_model, tmp_path):
    """A lazily read FITS (every block-wise run, sciconv predict --block) took no error HDU:
    flux_err came from the noise model (review). Its VAR/ERR/IVAR HDU is now read window by
    window: the same flux_err as the whole-image catalog of the eagerly read file."""
    pytest.importorskip("zarr")
    from astropy.io import fits
    from astropy.table import Table

    from sciconv import io
    from sciconv.inference import predict_mosaic

    image = np.full((96, 112), -5.0, np.float32)
    for y in range(6, 90, 24):
        for x in range(6, 100, 24):
            image[y : y + 10, x : x + 10] = 5.0
    var = np.full(image.shape, 0.25, np.float32)
    var[:, 56:] = 1.0  # sigma 0.5 on the left, 1 on the right
    path = tmp_path / "field.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(image, name="SCI"), fits.ImageHDU(var, name="VAR")]
    ).writeto(path)
    lazy = io.read(path, lazy=True)
    assert lazy.meta["uncertainty_from"] == "HDU 2 (VAR)"
    window = lazy.meta["uncertainty_windows"].read((0, 2), (54, 58))
    np.testing.assert_allclose(window, [[0.5, 0.5, 1.0, 1.0]] * 2)
    assert lazy.cutout(0, 4, 50, 60).meta["uncertainty"].array.shape == (4, 10)
    outs = predict_mosaic(
        threshold_model, path, tmp_path / "out", block=48, margin=16, normalize=None,
        progress=False, background="none", min_size=1,
    )  # fmt: skip
    got = Table.read(outs["catalog"])
    whole = postprocess.measure(
        io.read_labels(outs["labels"]), intensity=io.read(path),
        error=postprocess.estimate_error(io.read(path))[0],
    )  # fmt: skip
    assert len(got) == 16 and got.meta["FLUXERR"] == "image uncertainty"
    np.testing.assert_allclose(np.sort(got["flux_err"]), np.sort(whole["flux_err"]))
    assert {5.0, 10.0} <= set(np.round(got["flux_err"], 6))  # 10 x 10 px of 0.5 or 1


def test_block_catalogs_default_to_the_background_sky_images_get_everywhere(sky):
    """QA: ``predict_instances_blocks`` defaulted to raw pixel sums while ``sciconv predict`` and
    ``predict_mosaic`` subtract a background map for sky images ("auto"): RA/Dec of the same
    objects differed by up to 0.7 px. One default now: a celestial WCS, a background."""
    image, wcs, _ = sky
    kw = dict(block=BLOCK, margin=MARGIN, normalize=None, progress=False, **POST)
    model = _detector()
    _, auto = predict_instances_blocks(model, image, wcs=wcs, **kw)
    _, mapped = predict_instances_blocks(model, image, wcs=wcs, background="map", **kw)
    assert "flux" in auto.colnames and "flux_err" in auto.colnames
    for name in ("flux", "ra", "dec", "x_weighted"):
        np.testing.assert_array_equal(np.asarray(auto[name]), np.asarray(mapped[name]))
    _, raw = predict_instances_blocks(model, image, **kw)  # no WCS: not a sky image
    _, none = predict_instances_blocks(model, image, wcs=wcs, background="none", **kw)
    assert "flux" not in raw.colnames and "flux" not in none.colnames
    assert not np.allclose(np.asarray(none["ra"]), np.asarray(auto["ra"]), rtol=0, atol=1e-9)
