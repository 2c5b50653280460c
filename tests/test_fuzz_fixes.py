"""Wrong arguments a hurried user passes (QA fuzz report 47): each gets a clear sciconv error
or warning, and the right ones that look alike are accepted."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import sciconv.models as M  # noqa: E402
from sciconv import augment, calibration, metrics, postprocess, preprocess, viz  # noqa: E402
from sciconv.errors import ConfigError, ModelError, SciconvWarning  # noqa: E402


def _seg():
    return M.segmenter((None, None, 1), num_classes=3, depth=2, filters=4)


# ---------------------------------------------------------------------------------------------
# 1. set_metadata checks what it records; a file with bad settings can be repaired
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("items", "match"),
    [
        ({"postprocess": {"treshold": 0.5}}, r"'postprocess'.*'treshold'"),
        ({"postprocess": {"threshold": 5}}, r"'postprocess'.*'threshold' must be between"),
        ({"postprocess": ["threshold", 0.5]}, r"'postprocess'.*JSON object"),
        ({"normalization": {"method": "percentil"}}, r"'normalization'.*did you mean"),
        ({"normalization": "percentile"}, r"'normalization'.*spec dict"),
        ({"normalization": {"method": "percentile", "lower": 2}}, r"'normalization'.*'lower'"),
        ({"object_size": -5}, r"'object_size'.*positive number"),
        ({"object_size": "big"}, r"'object_size'.*positive number"),
        ({"object_size": float("nan")}, r"'object_size'"),
        ({"object_size_range": [40.0, 8.0]}, r"'object_size_range'.*low < high"),
        ({"input_transform": {"to_grey": True}}, r"'input_transform'.*did you mean 'to_gray'"),
        ({"input_transform": "gray"}, r"'input_transform'.*must be a dict"),
    ],
)
def test_set_metadata_refuses_what_prediction_or_load_would(items, match):
    model = _seg()
    before = M.get_metadata(model)
    with pytest.raises(ModelError, match=match):
        M.set_metadata(model, **items)
    assert M.get_metadata(model) == before  # nothing half-recorded


def test_attach_metadata_checks_too():
    inputs = keras.Input((None, None, 1))
    plain = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    with pytest.raises(ModelError, match=r"'postprocess'.*'minsize'"):
        M.attach_metadata(plain, postprocess={"minsize": 3})


def test_set_metadata_accepts_and_converts_good_values():
    u = pytest.importorskip("astropy.units")
    from sciconv.preprocess import RAW_NORMALIZATION, NormSpec

    model = _seg()
    M.set_metadata(
        model,
        postprocess={"threshold": 0.4, "min_size": 5, "seed_threshold": None},
        normalization=NormSpec(method="zscale"),
        input_transform={"to_gray": True, "invert": "auto"},
        object_size=np.float32(12.0),
        object_size_range=[4, 40],
    )
    meta = M.get_metadata(model)
    assert meta["normalization"] == {"method": "zscale"}
    assert meta["object_size"] == 12.0 and meta["object_size_range"] == [4.0, 40.0]
    M.set_metadata(model, normalization=RAW_NORMALIZATION)
    with pytest.raises(ModelError, match=r"'object_size'.*no pixel_scale"):
        M.set_metadata(model, object_size=6 * u.um)
    M.set_metadata(model, object_size=6 * u.um, pixel_scale=0.5 * u.um)
    assert M.get_metadata(model)["object_size"] == 12.0
    M.set_metadata(model, object_size=3 * u.um)  # the recorded scale
    assert M.get_metadata(model)["object_size"] == 6.0
    with pytest.raises(ModelError, match=r"'object_size'.*does not convert"):
        M.set_metadata(model, object_size=3 * u.s)


def test_builders_and_the_pretrained_model_record_valid_metadata():
    from sciconv.models._validate_meta import check_metadata

    for model in (
        _seg(),
        M.classifier((16, 16, 1), 3, filters=(4,), dense=()),
        M.regressor((16, 16, 1), filters=(4,), dense=(), uncertainty=True),
    ):
        meta = M.get_metadata(model)
        assert check_metadata(meta) is not None
        M.set_metadata(model, **meta)  # every recorded value passes again
    try:
        nuclei = M.pretrained("nuclei")
    except ModelError as exc:  # weights not installed in this checkout
        pytest.skip(str(exc))
    M.set_metadata(nuclei, **M.get_metadata(nuclei))


def test_load_says_how_to_repair_a_file_with_bad_settings(tmp_path):
    model = _seg()
    # written as an older sciconv did, which recorded anything
    M.metadata_layer(model).metadata["postprocess"] = {"treshold": 0.5}
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(ModelError, match=r"'treshold'.*load\(path, check_metadata=False\)"):
        M.load(path)
    loaded = M.load(path, check_metadata=False)
    assert M.get_metadata(loaded)["postprocess"] == {"treshold": 0.5}
    M.set_metadata(loaded, postprocess={"threshold": 0.5})
    loaded.save(path)
    assert M.get_metadata(M.load(path))["postprocess"] == {"threshold": 0.5}
    with pytest.raises(ConfigError, match="check_metadata must be True or False"):
        M.load(path, check_metadata="no")


# ---------------------------------------------------------------------------------------------
# 5. catalogs from pandas, dicts and structured arrays
# ---------------------------------------------------------------------------------------------
def test_match_catalogs_takes_pandas_dicts_and_structured_arrays():
    pd = pytest.importorskip("pandas")
    ref = pd.DataFrame({"x": [1.0, 10.0], "y": [1.0, 10.0], "f": [5.0, 6.0]})
    found = {"x": [1.2, 30.0], "y": [0.9, 30.0], "flux": [5.5, 1.0]}
    m = metrics.match_catalogs(ref, found, max_separation=1.0)
    assert m["ref_index"].tolist() == [0] and m["completeness"] == 0.5
    rec = np.array([(1.0, 1.0)], dtype=[("x", "f8"), ("y", "f8")])
    assert metrics.match_catalogs(rec, ref, max_separation=1.0)["purity"] == 0.5
    fig = viz.compare_catalogs(ref, found, max_separation=1.0, flux_columns=("f", "flux"))
    assert fig.match["found_index"].tolist() == [0]


def test_catalogs_without_named_columns_or_flux_columns_are_refused_clearly():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1.0, 10.0], "y": [1.0, 10.0]})
    with pytest.raises(ConfigError, match=r"reference catalog must be a table.*from_pandas"):
        metrics.match_catalogs(np.zeros((2, 2)), df, max_separation=1.0)
    with pytest.raises(ConfigError, match=r"found catalog lacks column\(s\) \['y'\]"):
        metrics.match_catalogs(df, {"x": [1.0]}, max_separation=1.0)
    with pytest.raises(ConfigError, match="one length"):
        metrics.match_catalogs(df, {"x": [1.0], "y": [1.0, 2.0]}, max_separation=1.0)
    with pytest.raises(ConfigError, match=r"reference catalog lacks column\(s\) \['f'\]"):
        viz.compare_catalogs(df, df, flux_columns=("f", "f"))
    with pytest.raises(ConfigError, match="flux_columns must be a pair"):
        viz.compare_catalogs(df, df, flux_columns="x")


# ---------------------------------------------------------------------------------------------
# 6. the background of a channels-first image; its options
# ---------------------------------------------------------------------------------------------
def test_background_warns_on_channels_first_and_checks_its_options():
    img = np.random.default_rng(0).normal(100, 5, (64, 64))
    with pytest.warns(SciconvWarning, match=r"channels-first.*np.moveaxis"):
        postprocess.background_and_rms(np.stack([img] * 3))
    with pytest.warns(SciconvWarning, match="channels-first"):
        postprocess.estimate_background(np.stack([img] * 3))
    for kw, match in (
        ({"filter_size": 0}, "filter_size must be an int >= 1"),
        ({"filter_size": 2}, "filter_size must be odd"),
        ({"grow": -1}, "grow must be an int >= 0"),
        ({"box_size": -5}, "box_size must be an int >= 1"),
        ({"box_size": 2.5}, "box_size must be an int"),
    ):
        with pytest.raises(ConfigError, match=match):
            postprocess.background_and_rms(img, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        level, rms = postprocess.background_and_rms(img, box_size=32, filter_size=1, grow=0)
    assert level.shape == rms.shape == (64, 64)


# ---------------------------------------------------------------------------------------------
# 7. augmentation seeds and sizes
# ---------------------------------------------------------------------------------------------
def test_augment_takes_an_int_seed_and_an_int_size():
    x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    a = augment.augment_batch(x, seed=3)
    assert np.array_equal(a, augment.augment_batch(x, seed=(0, 3)))
    assert np.array_equal(a, augment.augment_batch(x, seed=np.int64(3)))
    crop = augment.random_crop(x[0], size=8, seed=0)
    assert tuple(crop.shape) == (8, 8, 1)
    xa, ya = augment.augment_pair(x[0], x[0, ..., 0], 5)
    assert bool(tf.reduce_all(xa[..., 0] == ya))
    ds = tf.data.Dataset.zip(
        (tf.data.Dataset.from_tensor_slices(x), tf.data.Dataset.random(seed=1))
    ).map(lambda img, s: augment.random_crop(img, size=(4, 8), seed=s))
    assert [tuple(c.shape) for c in ds] == [(4, 8, 1)] * 2


@pytest.mark.parametrize("seed", [None, "a", -1, 1.5, True, (1, 2, 3), (0.5, 1.0)])
def test_augment_refuses_bad_seeds_clearly(seed):
    x = np.zeros((1, 8, 8, 1), "float32")
    with pytest.raises(ConfigError, match="seed must be an int >= 0"):
        augment.augment_batch(x, seed=seed)
    with pytest.raises(ConfigError, match="seed must be an int >= 0"):
        augment.random_crop(x[0], size=4, seed=seed)


def test_random_crop_sizes_and_layer_seeds_are_checked():
    x = np.zeros((8, 8, 1), "float32")
    with pytest.raises(ConfigError, match=r"size \(9, 9\) is larger than the image \(8, 8\)"):
        augment.random_crop(x, size=9, seed=0)
    with pytest.raises(ConfigError, match="size must hold positive ints"):
        augment.random_crop(x, size=(0, 4), seed=0)
    with pytest.raises(ConfigError, match="seed must be an int >= 0; got 'a'"):
        augment.RandomD4(seed="a")
    with pytest.raises(ConfigError, match="seed must be an int >= 0"):
        augment.RandomIntensity(seed=1.5)
    assert augment.RandomD4(seed=np.int64(2)).get_config()["seed"] == 2


# ---------------------------------------------------------------------------------------------
# 8. BioImage.IO export of a plain Keras model
# ---------------------------------------------------------------------------------------------
def test_export_bioimageio_refuses_unbuilt_models_and_packages_a_plain_sequential(tmp_path):
    pytest.importorskip("bioimageio.spec")
    for unbuilt in (keras.Sequential([keras.layers.Conv2D(3, 1)]), keras.Sequential()):
        with pytest.raises(ModelError, match=r"needs a built model.*keras.Input"):
            M.export_bioimageio(unbuilt, tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()
    # a plain Sequential (no sciconv metadata) is packaged as predict_tiled runs it; a 1x1
    # convolution (receptive field 1: halo 0, which the spec refuses) too
    for kernel in (3, 1):
        plain = keras.Sequential(
            [
                keras.Input((None, None, 1)),
                keras.layers.Conv2D(3, kernel, padding="same", activation="softmax"),
            ]
        )
        assert M.export_bioimageio(plain, tmp_path / f"p{kernel}.zip").is_file()


# ---------------------------------------------------------------------------------------------
# 9. empty inputs, fractions given as percentiles
# ---------------------------------------------------------------------------------------------
def test_measure_of_an_empty_label_image_is_an_empty_table():
    table = postprocess.measure(np.zeros((0, 0), int))
    assert len(table) == 0 and "area" in table.colnames
    table = postprocess.measure(np.zeros((0, 4), int), intensity=np.zeros((0, 4)))
    assert len(table) == 0 and "flux_sum" in table.colnames


def test_interval_coverage_of_nothing_is_refused_clearly():
    with pytest.raises(ConfigError, match="no samples"):
        calibration.interval_coverage([], [], [])
    with pytest.raises(ConfigError, match="no samples"):
        calibration.interval_coverage([], np.zeros((0, 2)))


def test_normalize_warns_when_percentiles_look_like_fractions():
    x = np.random.default_rng(0).random((32, 32))
    with pytest.warns(SciconvWarning, match=r"percentiles are 0-100.*low=1, high=99.8"):
        preprocess.normalize(x, low=0.01, high=0.998)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess.normalize(x, low=1, high=99.8)
        preprocess.normalize(x, low=0.5, high=99.5)


def test_overwrite_must_be_a_bool_everywhere(tmp_path):
    """QA: io.write(path, data, overwrite="no") replaced the file (any truthy value did)."""
    import sciconv as sc
    from sciconv.errors import ConfigError

    path = tmp_path / "a.fits"
    sc.io.write(path, np.zeros((4, 4), np.float32))
    for value in ("no", "False", 1, None):
        with pytest.raises(ConfigError, match="overwrite must be True or False"):
            sc.io.write(path, np.ones((4, 4), np.float32), overwrite=value)
    assert sc.io.read(path).data.max() == 0  # untouched
    sc.io.write(path, np.ones((4, 4), np.float32), overwrite=np.True_)
    assert sc.io.read(path).data.max() == 1


@pytest.mark.parametrize("rate", [1, np.float32(1e-3), np.float64(1e-3)])
def test_fit_takes_any_real_learning_rate(tmp_path, rate):
    """QA: an int learning_rate failed inside Keras; a numpy float was refused."""
    import sciconv as sc

    model = sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype(np.float32)
    y = np.arange(8) % 2
    sc.training.fit(model, (x, y), epochs=1, learning_rate=rate, workdir=tmp_path / "run",
                    verbose=0)  # fmt: skip
    assert (tmp_path / "run" / "best.keras").exists()


def test_set_metadata_takes_numpy_numbers_in_postprocess():
    """Review: the new checks refused min_size=np.int64(12) and float32 thresholds, which
    set_metadata stored (as plain numbers) before."""
    import sciconv as sc

    model = sc.models.segmenter((None, None, 1), depth=1, filters=2)
    sc.models.set_metadata(
        model, postprocess={"min_size": np.int64(12), "threshold": np.float32(0.5)}
    )
    recorded = sc.models.get_metadata(model)["postprocess"]
    assert recorded["min_size"] == 12 and type(recorded["min_size"]) is int
    assert recorded["threshold"] == 0.5
