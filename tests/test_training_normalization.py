"""fit and the normalization a model records: a trained model keeps the one its weights were
fitted to (a dataset normalized otherwise is refused); a builder's model takes the dataset's."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import sciconv as sc
from sciconv._fit_metadata import infer_normalization
from sciconv.errors import ConfigError

GLOBAL = {"method": "percentile", "low": 1.0, "high": 99.8, "per_channel": False}


def _seg():
    return sc.models.segmenter((None, None, 1), 2, depth=1, filters=2)


def _pairs(normalization="absent"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 8, 1)).astype("float32")
    y = (x[..., 0] > 0).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    if normalization != "absent":
        ds.normalization = normalization
        ds.task = "segmentation"
    return ds


def _fit(model, data):
    return sc.training.fit(model, data, epochs=1, verbose=0, tensorboard=False, augment=None)


def test_builder_model_takes_the_datasets_normalization():
    model = _seg()
    _fit(model, _pairs({"method": "zscale"}))
    assert sc.models.get_metadata(model)["normalization"] == {"method": "zscale"}


@pytest.mark.parametrize(
    "dataset, says",
    [
        ({"method": "percentile", "low": 1.0, "high": 99.8}, "'per_channel': False"),
        (None, r"raw pixels \(normalize=None\)"),
    ],
)
def test_trained_model_refuses_data_normalized_otherwise(dataset, says):
    model = _seg()
    sc.models.set_metadata(model, normalization=GLOBAL)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ConfigError, match=rf"normalize=\{{.*'per_channel': False.*{says}|{says}"):
        _fit(model, _pairs(dataset))
    assert sc.models.get_metadata(model)["normalization"] == GLOBAL  # untouched
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_trained_model_accepts_the_same_normalization_written_otherwise():
    model = _seg()
    sc.models.set_metadata(model, normalization={"method": "percentile", "per_channel": False})
    _fit(model, _pairs(dict(GLOBAL)))  # the defaults spelled out: the same normalization
    # arrays / a plain dataset: nothing known, the model's is kept; z-scores, which its
    # percentiles would not give, are said (QA: fine-tuning on unprepared arrays was silent)
    with pytest.warns(sc.errors.SciconvWarning, match="trained on as given and look raw"):
        _fit(model, _pairs())
    assert sc.models.get_metadata(model)["normalization"] == {
        "method": "percentile",
        "per_channel": False,
    }


def test_finetuning_pretrained_nuclei_needs_its_normalization_transform_and_target(tmp_path):
    """Fine-tuning the nuclei model on data prepared otherwise is refused, one setting at a
    time, each named; ``trained_settings`` gives them all. Without the input transform the
    colour images reached the weights unflipped (QA: colour AP@0.5 0.73 -> 0.06, fluorescence
    0.90 -> 0.23, training metrics fine)."""
    import tifffile

    rng = np.random.default_rng(0)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(2):  # H&E-like: dark purple nuclei on a light background
        lab = np.zeros((48, 48), "uint16")
        lab[8:20, 8:20], lab[28:40, 24:38] = 1, 2
        rgb = 230 - rng.uniform(0, 30, (48, 48, 3)) - [120, 150, 60] * (lab > 0)[..., None]
        tifffile.imwrite(images / f"c{i}.tif", rgb.astype("uint8"))
        tifffile.imwrite(masks / f"c{i}.tif", lab)
    model = sc.models.pretrained("nuclei")
    meta = sc.models.get_metadata(model)
    kwargs = dict(patch_size=32, seed=0, batch_size=2, patches_per_image=1)
    default = sc.datasets.from_pairs(images, masks, target="touching", **kwargs)
    with pytest.raises(ConfigError, match=r"trained_settings\(model\).*dataset\.normalize"):
        _fit(model, default)  # each refusal names the one call that gives all three
    recorded = meta["normalization"]
    assert recorded["per_channel"] is False
    unflipped = sc.datasets.from_pairs(
        images, masks, normalize=recorded, target="touching", **kwargs
    )
    with pytest.raises(ConfigError, match=r"input_transform=\{'to_rgb': True, 'invert': 'auto'"):
        _fit(model, unflipped)
    settings = sc.datasets.trained_settings(model)
    assert settings == {
        "normalize": recorded,
        "input_transform": meta["input_transform"],
        "target": "touching",
    }
    thin = sc.datasets.from_pairs(images, masks, **{**settings, "target": "boundary"}, **kwargs)
    with pytest.raises(ConfigError, match=r"target 'touching'.*='touching'.*trained_settings"):
        _fit(model, thin)
    same = sc.datasets.from_pairs(images, masks, validation_split=0.5, **settings, **kwargs)
    train, val = same
    assert train.input_transform == meta["input_transform"] and train.target == "touching"
    # the images reach the network as prediction gives them: flipped, nuclei bright
    x, y = next(iter(val))[:2]
    x, y = x.numpy()[0], y.numpy()[0]
    assert x[y > 0].mean() > x[y == 0].mean() + 0.3
    assert sc.training.fit(model, train, epochs=1, steps_per_epoch=1, verbose=0, tensorboard=False)
    after = sc.models.get_metadata(model)
    for key in ("normalization", "input_transform", "target"):
        assert after[key] == meta.get(key, "touching"), key


def test_a_model_fitted_on_raw_counts_is_predicted_on_them():
    """Arrays in their own units recorded nothing, so every predict path stretched the image
    with the default percentiles first: the model now records RAW_NORMALIZATION and
    predict_tiled feeds the pixels as model.predict does."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1000, (6, 16, 16, 1)).astype("float32")
    y = (x[..., 0] > 500).astype("int32")
    model = _seg()
    _fit(model, (x, y))
    assert sc.models.get_metadata(model)["normalization"] == sc.preprocess.RAW_NORMALIZATION
    want = np.asarray(model.predict(x[:1], verbose=0))[0]
    got = sc.inference.predict_tiled(model, x[0], progress=False, precision="float32")
    np.testing.assert_allclose(got, want, atol=1e-5)
    # a sciconv dataset built with normalize=None says the same, and trains again on it
    model = _seg()
    _fit(model, _pairs(None))
    assert sc.models.get_metadata(model)["normalization"] == sc.preprocess.RAW_NORMALIZATION
    _fit(model, _pairs(None))  # was refused: RAW recorded against raw pixels
    with pytest.raises(ConfigError, match="normalized with"):
        _fit(model, _pairs({"method": "zscale"}))


def test_arrays_on_a_0_1_scale_not_normalized_the_default_way_are_said():
    """Patches cut from normalized images and a fixed x / 1000 look alike: nothing is guessed,
    a warning says prediction applies the default and how to record another."""
    rng = np.random.default_rng(2)
    whole = sc.preprocess.normalize(rng.gamma(2, 50, (64, 64, 1)))
    patches = np.stack([whole[:16, :16], whole[16:32, 40:56], whole[40:56, 8:24]])
    model = _seg()
    with pytest.warns(sc.errors.SciconvWarning, match="RAW_NORMALIZATION"):
        _fit(model, (patches.astype("float32"), (patches[..., 0] > 0.5).astype("int32")))
    assert "normalization" not in sc.models.get_metadata(model)
    # a star field normalized whole: patches with a bright star go far past 1 (by design of
    # the 99.8th percentile), which must not pass for raw pixels
    field = np.random.default_rng(3).normal(0, 1, (256, 256, 1))
    field[100:103, 40:43] += 400.0
    field = sc.preprocess.normalize(field)
    starry = np.stack([field[80:144, 20:84], field[0:64, 0:64], field[128:192, 128:192]])
    assert starry.max() > 50
    with pytest.warns(sc.errors.SciconvWarning, match="RAW_NORMALIZATION"):
        spec = infer_normalization(_seg(), (starry.astype("float32"), None))
    assert spec is None


def test_arrays_already_normalized_the_default_way_record_the_default():
    rng = np.random.default_rng(1)
    x = np.stack([sc.preprocess.normalize(im) for im in rng.gamma(2, 50, (4, 16, 16, 1))])
    model = _seg()
    _fit(model, (x.astype("float32"), (x[..., 0] > 0.5).astype("int32")))
    assert sc.models.get_metadata(model)["normalization"] == sc.preprocess.DEFAULT_NORMALIZATION


def test_a_raw_model_has_no_normalization_limits():
    with pytest.raises(ConfigError, match=r"trained on pixels as given.*normalize=None"):
        sc.preprocess.limits_from_spec(np.ones((4, 4)), sc.preprocess.RAW_NORMALIZATION)


def test_validation_data_endless_or_prepared_otherwise_is_refused(tmp_path):
    """QA: fit hung forever on an endless validation set (from_pairs' training split of a
    separate folder), and validation data were never checked against the model's inputs, so
    best.keras could be chosen on unflipped images. A model that records no normalization got
    normalize=None (raw pixels) from trained_settings, and stopped normalizing at prediction."""
    import tifffile

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        lab = np.zeros((32, 32), "uint16")
        lab[4:14, 4:14] = 1
        tifffile.imwrite(images / f"c{i}.tif", (rng.uniform(0, 40, (32, 32)) + 150 * lab))
        tifffile.imwrite(masks / f"c{i}.tif", lab)
    kwargs = dict(patch_size=16, seed=0, batch_size=2, patches_per_image=1)
    model = _seg()
    train = sc.datasets.from_pairs(images, masks, **kwargs)
    endless = sc.datasets.from_pairs(images, masks, **kwargs)
    with pytest.raises(ConfigError, match="validation_data is an endless dataset"):
        sc.training.fit(model, train, validation_data=endless, epochs=1, verbose=0)
    assert "normalization" not in sc.models.get_metadata(model)  # refused before recording
    flipped = sc.datasets.from_pairs(
        images, masks, input_transform={"invert": True}, validation_split=0.5, **kwargs
    )[1]
    with pytest.raises(ConfigError, match="input transform"):
        sc.training.fit(model, train, validation_data=flipped, epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="'invert' must be true, false or 'auto'; got 1"):
        sc.datasets.from_pairs(images, masks, input_transform={"invert": 1}, **kwargs)
    settings = sc.datasets.trained_settings(_seg())  # records nothing: the default stays
    assert "normalize" not in settings and settings["input_transform"] is None


def test_finetuning_a_trained_model_on_arrays_it_cannot_have_been_prepared_like_is_said():
    """QA: fit(pretrained nuclei, (x, y)) trained on raw, unflipped pixels and a 2-class mask
    silently (the README's 'fit refuses' held for sciconv datasets only): arrays cannot carry
    an input transform or a target, and raw-looking pixels for a normalized model are said;
    arrays that look as the model records (a second fit on them) are not."""
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    y = (raw[..., 0] > 128).astype("int32")
    model = _seg()
    sc.models.set_metadata(model, normalization=GLOBAL)
    with pytest.warns(
        sc.errors.SciconvWarning, match=r"records normalization 'percentile'.*look raw"
    ):
        _fit(model, (raw, y))
    sc.models.set_metadata(model, normalization=GLOBAL, target="touching")
    scaled = np.stack([sc.preprocess.normalize(image, **GLOBAL) for image in raw])
    with pytest.warns(sc.errors.SciconvWarning, match=r"target 'touching'.*trained_settings"):
        _fit(model, (scaled, y))
    plain = _seg()
    _fit(plain, (raw, y))  # records raw pixels, then trains on them again: nothing to say
    _fit(plain, (raw, y))
