"""Wrong inputs to datasets, training, models and calibration: clear sciconv errors, no silent
wrong results (QA report qa35/api)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import sciconv as sc  # noqa: E402
from sciconv.errors import ConfigError, DatasetError, SciconvWarning  # noqa: E402

SIZE = 16


def _x(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, SIZE, SIZE, 1)).astype(np.float32)


def _clf(k: int = 2):
    return sc.models.classifier((SIZE, SIZE, 1), k, filters=(2,), dense=())


def _fit(model, train, **kw):
    return sc.training.fit(model, train, epochs=1, verbose=0, tensorboard=False, **kw)


# --------------------------------------------------------------------------- from_arrays


def test_from_arrays_refuses_int64_ids_beyond_int32():
    y = np.array([0, 2**33, 0, 2**32 + 1, 0, 1], np.int64)
    with pytest.raises(DatasetError, match=r"0\.\.2147483647; got 0\.\.8589934592"):
        sc.datasets.from_arrays(_x(), y, shuffle=False)


def _labels_of(ds):
    return np.concatenate([b[1].numpy() for b in ds]).tolist()


@pytest.mark.parametrize(
    "y",
    [
        np.array([0.0, 1] * 3),  # float 0./1. (a pandas column)
        np.array([[0], [1]] * 3),  # (N, 1) ids
        np.eye(2, dtype=int)[[0, 1] * 3],  # one-hot
        np.eye(2, dtype=np.float32)[[0, 1] * 3],
    ],
)
def test_from_arrays_class_names_make_classification(y):
    ds = sc.datasets.from_arrays(_x(), y, class_names=["a", "b"], shuffle=False)
    assert ds.task == "classification" and ds.class_names == ["a", "b"]
    assert _labels_of(ds) == [0, 1] * 3


def test_from_arrays_bool_labels_are_classes():
    ds = sc.datasets.from_arrays(_x(), np.array([False, True] * 3), shuffle=False)
    assert ds.task == "classification" and ds.class_names == ["0", "1"]
    assert _labels_of(ds) == [0, 1] * 3


def test_from_arrays_warns_when_class_names_are_ignored():
    with pytest.warns(SciconvWarning, match="class_names.*ignored"):
        ds = sc.datasets.from_arrays(_x(), np.linspace(0, 1, 6), class_names=["a", "b"])
    assert ds.task == "regression" and ds.class_names == []


def test_from_arrays_keeps_float_regression_without_class_names():
    ds = sc.datasets.from_arrays(_x(), np.array([0.0, 1] * 3), shuffle=False)
    assert ds.task == "regression"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_from_arrays_refuses_non_finite_targets(bad):
    with pytest.raises(DatasetError, match="not finite"):
        sc.datasets.from_arrays(_x(), [0.0, bad, 0, 1, 0, 1])


def test_from_arrays_refuses_class_ids_beyond_class_names():
    with pytest.raises(DatasetError, match=r"0\.\.1 .*got 0\.\.2"):
        sc.datasets.from_arrays(_x(), np.array([0.0, 2] * 3), class_names=["a", "b"])


def test_from_arrays_string_labels_and_none():
    ds = sc.datasets.from_arrays(_x(), ["b", "a"] * 3, shuffle=False)
    assert ds.class_names == ["a", "b"] and _labels_of(ds) == [1, 0] * 3
    with pytest.raises(DatasetError, match="not in class_names"):
        sc.datasets.from_arrays(_x(), ["b", "c"] * 3, class_names=["a", "b"])
    with pytest.raises(DatasetError, match="labels"):
        sc.datasets.from_arrays(_x(), None)


# --------------------------------------------------------------------------- models.load trust


@pytest.fixture(scope="module")
def lambda_model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    i = keras.Input((4, 4, 1))
    keras.Model(i, keras.layers.Lambda(lambda t: t * 2)(i)).save(path)
    return path


@pytest.mark.parametrize("trust", ["no", "False", 0, 1, None, np.True_])
def test_load_refuses_trust_that_is_not_a_bool(lambda_model_path, trust):
    with pytest.raises(ConfigError, match="trust must be True or False"):
        sc.models.load(lambda_model_path, trust=trust)


@pytest.mark.parametrize("compile_", ["no", 1])
def test_load_refuses_compile_that_is_not_a_bool(lambda_model_path, compile_):
    with pytest.raises(ConfigError, match="compile must be True or False"):
        sc.models.load(lambda_model_path, compile=compile_)


@pytest.mark.parametrize("path", [None, 3])
def test_load_refuses_what_is_not_a_path(path):
    with pytest.raises(ConfigError, match=r"path of a \.keras file"):
        sc.models.load(path)


def test_load_given_a_model_says_it_is_loaded():
    with pytest.raises(ConfigError, match="already loaded"):
        sc.models.load(_clf())


# --------------------------------------------------------------------------- training.fit labels

X8 = _x(8)


def test_fit_refuses_fractional_class_labels():
    with pytest.raises(ConfigError, match="whole class ids"):
        _fit(_clf(), (X8, np.array([0, 0.5] * 4)))


@pytest.mark.parametrize(
    ("y", "got"),
    [
        (np.array([0, 5] * 4), "0..5"),
        (np.array([0, -1] * 4), "-1..0"),
        (np.array([0, 2**33] * 4, np.int64), "0..8589934592"),
    ],
)
def test_fit_refuses_class_ids_outside_the_model(y, got):
    with pytest.raises(ConfigError, match=rf"class ids 0\.\.1 .*got {got}"):
        _fit(_clf(), (X8, y))


def test_fit_checks_validation_labels_too():
    with pytest.raises(ConfigError, match="validation_data"):
        _fit(_clf(), (X8, [0, 1] * 4), validation_data=(X8, np.array([0, 3] * 4)))


def test_fit_accepts_lists():
    assert "loss" in _fit(_clf(), (X8, [0, 1] * 4)).history
    assert "loss" in _fit(_clf(), (list(X8), np.array([0, 1] * 4))).history


def test_fit_refuses_ragged_image_lists():
    with pytest.raises(ConfigError, match="same shape"):
        _fit(_clf(), ([X8[0], X8[1, :8]] * 4, [0, 1] * 4))


def test_fit_takes_one_hot_labels_as_class_ids():
    assert "loss" in _fit(_clf(), (X8, np.eye(2)[[0, 1] * 4])).history


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.array([[0.3, 0.7]] * 8), "not one-hot"),
        (np.eye(3)[[0, 1] * 4], "3 columns"),
    ],
)
def test_fit_refuses_ambiguous_label_rows(y, match):
    with pytest.raises(ConfigError, match=match):
        _fit(_clf(), (X8, y))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_refuses_non_finite_regression_targets(bad):
    model = sc.models.regressor((SIZE, SIZE, 1), filters=(2,), dense=())
    y = np.zeros(8)
    y[3] = bad
    with pytest.raises(ConfigError, match="finite"):
        _fit(model, (X8, y))


def test_fit_refuses_masks_given_to_a_classifier():
    # fuzzing QA: a bare Keras "Cannot take the length of shape with unknown rank"
    with pytest.raises(
        sc.errors.ModelError,
        match=r"labels of shape \(8, 16, 16\) hold a "
        r"label per pixel.*is a classifier.*sciconv\.models\.unet",
    ):
        _fit(_clf(), (X8, np.zeros((8, SIZE, SIZE), np.int32)))


def test_fit_leaves_out_images_without_a_finite_pixel():
    # fuzzing QA: all-NaN images trained at chance (loss ln 3) without a word
    with pytest.raises(ConfigError, match="train: no image has a finite pixel"):
        _fit(_clf(), (np.full_like(X8, np.nan), np.arange(8) % 2))
    x = X8.copy()
    x[[1, 4]] = np.nan
    x[2, :3] = np.inf  # a few bad pixels: kept
    y = np.arange(8) % 2
    with pytest.warns(
        SciconvWarning,
        match=r"train: 2 of 8 images have no finite pixel .*"
        r"train\[1\], train\[4\]\): left out",
    ):
        data = sc._fit_data.as_fit_arrays(_clf(), (x, y, np.ones(8)), name="train")
    assert [len(a) for a in data] == [6, 6, 6]
    np.testing.assert_array_equal(data[1], y[[0, 2, 3, 5, 6, 7]])
    assert np.isfinite(data[0][0]).all() and np.isinf(data[0][1]).any()


def test_fit_refuses_masks_outside_the_segmenter_classes():
    model = sc.models.segmenter((SIZE, SIZE, 1), 2, depth=1, filters=2)
    masks = np.zeros((8, SIZE, SIZE), np.int64)
    masks[0, 0, 0] = 2
    with pytest.raises(ConfigError, match=r"class ids 0\.\.1"):
        _fit(model, (X8, masks))
    with pytest.raises(ConfigError, match="whole class ids"):
        _fit(model, (X8, masks * 0.25))


# --------------------------------------------------------------------------- from_catalog


@pytest.fixture
def catalog_dir(tmp_path):
    from astropy.io import fits

    for i in range(6):
        fits.PrimaryHDU(np.full((8, 8), i, np.float32)).writeto(tmp_path / f"g{i}.fits")
    return tmp_path


def test_from_catalog_warns_about_a_typo_in_a_numeric_column(catalog_dir):
    rows = "".join(f"g{i}.fits,{'x' if i == 3 else i % 2}\n" for i in range(6))
    (catalog_dir / "c.csv").write_text("path,z\n" + rows)
    with pytest.warns(SciconvWarning, match=r"'z'.*\['x'\].*line 5"):
        ds = sc.datasets.from_catalog(catalog_dir / "c.csv", label_column="z", cache=False)
    assert ds.class_names == ["0", "1", "x"]


def test_from_catalog_warns_about_extra_fields(catalog_dir):
    rows = "".join(f"g{i}.fits,{i % 2}{',3' if i == 2 else ''}\n" for i in range(6))
    (catalog_dir / "c.csv").write_text("path,z\n" + rows)
    with pytest.warns(SciconvWarning, match=r"line 4.*more fields"):
        sc.datasets.from_catalog(catalog_dir / "c.csv", label_column="z", cache=False)


def test_from_catalog_text_classes_do_not_warn(catalog_dir):
    rows = "".join(f"g{i}.fits,{'ab'[i % 2]}\n" for i in range(6))
    (catalog_dir / "c.csv").write_text("path,z\n" + rows)
    assert sc.datasets.from_catalog(catalog_dir / "c.csv", label_column="z").class_names == [
        "a",
        "b",
    ]


def test_from_catalog_refuses_a_dataframe_with_the_fix():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ConfigError, match="to_csv"):
        sc.datasets.from_catalog(pd.DataFrame({"path": ["a.fits"], "z": [1]}), label_column="z")


# --------------------------------------------------------------------------- model size


@pytest.mark.parametrize(("depth", "filters"), [(20, 32), (1, 200_000), (10**9, 1)])
def test_segmenter_refuses_a_model_too_large_before_building(depth, filters):
    from sciconv.errors import ModelError

    with pytest.raises(ModelError, match=r"about [\d.,]+ million parameters"):
        sc.models.segmenter((None, None, 1), depth=depth, filters=filters)


# --------------------------------------------------------------------------- calibrate


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((8, 1, SIZE, SIZE), np.float32), "channels first"),
        (np.zeros((8, 32, 32, 1), np.float32), r"\(8, 32, 32, 1\)"),
        (np.zeros((8, SIZE, SIZE), np.float32), r"\(8, 16, 16\)"),
    ],
)
def test_calibrate_refuses_images_of_the_wrong_shape(x, match):
    with pytest.raises(ConfigError, match=match):
        sc.calibration.calibrate(_clf(), x, np.array([0, 1] * 4))
