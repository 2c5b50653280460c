"""Wrong inputs on the public API (QA report 35): no silent wrong results, no bare tracebacks."""

from __future__ import annotations

import numpy as np
import pytest

from sciconv import io as sc_io
from sciconv import postprocess

# ------------------------------------------------------------- write_products keeps wide ids


@pytest.mark.parametrize("fmt", ["fits", "tiff"])
def test_write_products_keeps_int64_ids(tmp_path, fmt):
    labels = np.zeros((12, 10), np.int64)
    labels[1:4, 1:4] = 1
    labels[6:9, 2:5] = 2**33 + 7
    paths = postprocess.write_products(tmp_path, labels=labels, format=fmt)
    back = sc_io.read_labels(paths["labels"])
    back = np.asarray(back)
    np.testing.assert_array_equal(back, labels)


def test_write_products_small_ids_stay_int32(tmp_path):
    labels = np.zeros((12, 10), np.int64)
    labels[1:4, 1:4] = 3
    paths = postprocess.write_products(tmp_path, labels=labels)
    assert sc_io.read(paths["labels"]).meta["dtype"] == "int32"


def test_write_products_ome_zarr_keeps_int64_ids(tmp_path):
    pytest.importorskip("ome_zarr")
    labels = np.zeros((16, 16), np.int64)
    labels[1:4, 1:4] = 1
    labels[6:9, 2:5] = 2**33 + 7
    prob = np.zeros((16, 16, 1), np.float32)
    paths = postprocess.write_products(tmp_path, prob=prob, labels=labels, format="ome-zarr")
    back = sc_io.read_labels(paths["labels"] / "s0")
    back = np.asarray(back)
    np.testing.assert_array_equal(back, labels)


# ------------------------------------------------------------- predict_files / predict_mosaic


@pytest.fixture(scope="module")
def tiny_segmenter():
    from sciconv.models import segmenter

    return segmenter((None, None, 1), 3, depth=1, filters=2)


@pytest.fixture(scope="module")
def tiny_classifier():
    from sciconv.models import classifier

    return classifier((16, 16, 1), 2, filters=(2,), dense=())


@pytest.fixture
def cutout(tmp_path):
    path = tmp_path / "a.fits"
    sc_io.write(path, np.random.default_rng(0).random((16, 16)).astype(np.float32))
    return path


@pytest.mark.parametrize("image_size", [None, 16])
def test_predict_files_refuses_a_segmenter(tiny_segmenter, cutout, image_size):
    from sciconv.errors import InferenceError
    from sciconv.inference import predict_files

    with pytest.raises(InferenceError, match=r"per-pixel.*predict_instances.*predict_tiled") as e:
        predict_files(tiny_segmenter, [cutout], image_size=image_size, progress=False)
    assert "pass image_size" not in str(e.value)


@pytest.mark.parametrize("as_path", [str, lambda p: p])
def test_predict_files_takes_a_single_path(tiny_classifier, cutout, as_path):
    from sciconv.inference import predict_files

    table = predict_files(tiny_classifier, as_path(cutout), progress=False)
    assert len(table) == 1 and table["path"][0] == str(cutout)


def test_predict_files_folder_names_list_images(tiny_classifier, tmp_path):
    from sciconv.errors import SciconvError
    from sciconv.inference import predict_files

    with pytest.raises(SciconvError, match="list_images"):
        predict_files(tiny_classifier, str(tmp_path), progress=False)


@pytest.mark.parametrize(
    "paths",
    [np.zeros((16, 16), np.float32), [np.zeros((16, 16), np.float32)], [None], 3],
    ids=["array", "list-of-array", "none", "int"],
)
def test_predict_files_refuses_arrays(tiny_classifier, paths):
    from sciconv.errors import ConfigError
    from sciconv.inference import predict_files

    with pytest.raises(ConfigError, match="paths"):
        predict_files(tiny_classifier, paths, progress=False)


def test_predict_mosaic_refuses_an_array(tiny_segmenter, tmp_path):
    from sciconv.errors import ConfigError
    from sciconv.inference import predict_mosaic

    with pytest.raises(ConfigError, match=r"path.*predict_instances"):
        predict_mosaic(tiny_segmenter, np.zeros((16, 16), np.float32), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="out_dir"):
        predict_mosaic(tiny_segmenter, tmp_path / "x.fits", np.zeros(3), progress=False)


# ------------------------------------------------------------- numpy masked arrays = bad pixels


def _masked():
    x = np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32)
    x[:4] = 1e6
    mask = np.zeros(x.shape, bool)
    mask[:4] = True
    return np.ma.array(x, mask=mask)


def test_as_array_masked_pixels_are_nan():
    m = _masked()
    arr = sc_io.as_array(m)
    assert type(arr) is np.ndarray and arr.dtype == np.float32
    assert np.isnan(arr[:4]).all() and np.isfinite(arr[4:]).all()
    ints = np.ma.array(np.arange(6, dtype=np.uint16).reshape(2, 3), mask=[[1, 0, 0], [0, 0, 0]])
    got = sc_io.as_array(ints)
    assert got.dtype == np.float32 and np.isnan(got[0, 0]) and got[1, 2] == 5
    unmasked = np.ma.array(np.arange(4, dtype=np.int64).reshape(2, 2))
    assert sc_io.as_array(unmasked).dtype == np.int64  # nothing masked: dtype kept
    assert not np.isnan(m.data).any()  # the caller's array is not changed


def test_normalize_ignores_masked_pixels():
    from sciconv import preprocess

    m = _masked()
    out = preprocess.normalize(m, method="minmax")
    want = preprocess.normalize(m.filled(np.nan), method="minmax")
    np.testing.assert_array_equal(out, want)
    assert np.nanmax(out[4:]) == pytest.approx(1.0)


def test_fill_nan_fills_masked_pixels():
    from sciconv import preprocess

    out = preprocess.fill_nan(_masked())
    assert (out[:4] == 0).all()


def test_predict_tiled_masked_pixels_are_nan(tiny_segmenter):
    from sciconv.inference import predict_tiled

    m = _masked()
    out = predict_tiled(tiny_segmenter, m, progress=False, precision="float32")
    want = predict_tiled(tiny_segmenter, m.filled(np.nan), progress=False, precision="float32")
    np.testing.assert_array_equal(out, want)
    assert np.isnan(out[:4]).all()


@pytest.mark.parametrize("suffix", [".fits", ".tif"])
def test_write_masked_pixels_as_nan(tmp_path, suffix):
    back = sc_io.read(sc_io.write(tmp_path / f"m{suffix}", _masked())).data
    assert np.isnan(back[:4]).all() and np.isfinite(back[4:]).all()


# ------------------------------------------------------------- third-party exceptions


def test_normalize_and_predict_tiled_take_a_dataframe(tiny_segmenter):
    pd = pytest.importorskip("pandas")
    from sciconv import preprocess
    from sciconv.inference import predict_tiled

    img = np.random.default_rng(1).random((24, 20)).astype(np.float32)
    np.testing.assert_array_equal(
        preprocess.normalize(pd.DataFrame(img)), preprocess.normalize(img)
    )
    got = predict_tiled(tiny_segmenter, pd.DataFrame(img), progress=False)
    np.testing.assert_allclose(got, predict_tiled(tiny_segmenter, img, progress=False))


def test_predict_tiled_small_dask_image(tiny_segmenter):
    da = pytest.importorskip("dask.array")
    from sciconv.inference import predict_tiled

    img = np.random.default_rng(2).random((48, 40)).astype(np.float32)
    out = predict_tiled(tiny_segmenter, da.from_array(img, chunks=24), overlap=44, progress=False)
    want = predict_tiled(tiny_segmenter, img, overlap=44, progress=False)
    assert hasattr(out, "compute")
    np.testing.assert_allclose(np.asarray(out.compute()), want, atol=1e-5)


@pytest.mark.parametrize("suffix", [".fits", ".tif"])
def test_write_non_ascii_history(tmp_path, suffix):
    path = sc_io.write(tmp_path / f"a{suffix}", np.zeros((4, 4), np.float32), history="µm ß é\t1")
    if suffix == ".fits":
        text = str(sc_io.read(path).header["HISTORY"])
        assert "m" in text and "e" in text and "1" in text


def test_write_history_must_be_text(tmp_path):
    from sciconv.errors import ConfigError

    with pytest.raises(ConfigError, match="history"):
        sc_io.write(tmp_path / "a.fits", np.zeros((4, 4), np.float32), history=123)
    with pytest.raises(ConfigError, match="history"):
        postprocess.write_products(tmp_path / "p", labels=np.zeros((4, 4), int), history=123)


def test_write_products_non_ascii_history(tmp_path):
    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    paths = postprocess.write_products(tmp_path, labels=labels, history=["µm"])
    assert "HISTORY" in sc_io.read(paths["labels"]).header


def test_fits_catalog_object_and_non_ascii_columns(tmp_path):
    from astropy.table import Table

    from sciconv.errors import ConfigError

    strings = Table({"o": np.array(["ab", "c"], dtype=object), "x": [1.0, 2.0]})
    path = postprocess.write_catalog(strings, tmp_path / "s.fits")
    assert Table.read(path)["o"].tolist() == ["ab", "c"]
    with pytest.raises(ConfigError, match="'o'"):
        postprocess.write_catalog(
            Table({"o": np.array([{}, None], dtype=object)}), tmp_path / "o.fits"
        )
    with pytest.raises(ConfigError, match="'é'"):
        postprocess.write_catalog(Table({"é": [1.0]}), tmp_path / "e.fits")
    with pytest.raises(ConfigError, match="'s'"):
        postprocess.write_catalog(Table({"s": ["µm"]}), tmp_path / "u.fits")
    assert not list(tmp_path.glob("[oeu].fits*"))


@pytest.mark.parametrize("thresh", ["0.5", True, None, [0.5]])
def test_matching_thresh_must_be_a_number(thresh):
    from sciconv import metrics
    from sciconv.errors import ConfigError

    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    with pytest.raises(ConfigError, match="thresh"):
        metrics.matching(labels, labels, thresh=thresh)


@pytest.mark.parametrize("seed", [1.5, "1", -1])
def test_normalize_seed_must_be_an_int(seed):
    from sciconv import preprocess
    from sciconv.errors import ConfigError

    with pytest.raises(ConfigError, match="seed"):
        preprocess.normalize(np.ones((4, 4), np.float32), seed=seed)
