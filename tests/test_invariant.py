"""D4 for cutout classifiers: the training default, test-time averaging, invariant pooling."""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from sciconv import augment
from sciconv.augment import d4_train_data, is_sky_data, resolve_train_augment
from sciconv.errors import ConfigError, InferenceError, ModelError
from sciconv.inference import predict_d4
from sciconv.models import get_metadata, load
from sciconv.models.builders import classifier, regressor
from sciconv.models.invariant import D4Pool, D4Stack, d4_elements
from sciconv.training import fit

ALL8 = range(8)


def _rng_images(n=3, h=16, w=16, c=1, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)


# --------------------------------------------------------------------------- the default rule


@pytest.mark.parametrize(
    ("augment_arg", "task", "train", "expected"),
    [
        ("auto", "classification", types.SimpleNamespace(file_paths=["a.fits", "b.FIT"]), "d4"),
        (
            "auto",
            "multilabel",
            types.SimpleNamespace(pixel_scale={"y": 0.2, "x": 0.2, "unit": "arcsec"}),
            "d4",
        ),
        ("auto", "classification", types.SimpleNamespace(file_paths=["a.png", "b.tif"]), "d4"),
        ("auto", "classification", types.SimpleNamespace(file_paths=[]), None),
        (
            "auto",
            "classification",
            types.SimpleNamespace(pixel_scale={"y": 0.65, "x": 0.65, "unit": "um"}),
            None,
        ),
        ("auto", "regression", types.SimpleNamespace(file_paths=["a.fits"]), None),
        ("auto", "segmentation", types.SimpleNamespace(file_paths=["a.fits"]), None),
        ("auto", "classification", (np.zeros((2, 4, 4, 1)), np.zeros(2)), None),
        (True, "regression", (np.zeros((2, 4, 4, 1)), np.zeros(2)), "d4"),
        ("d4", "segmentation", None, "d4"),
        (False, "classification", types.SimpleNamespace(file_paths=["a.fits"]), None),
        (None, "classification", types.SimpleNamespace(file_paths=["a.fits"]), None),
    ],
)
def test_default_augmentation_rule(augment_arg, task, train, expected):
    assert resolve_train_augment(augment_arg, task=task, train=train) == expected


def test_rule_reads_the_models_sky_pixel_scale_and_refuses_unknown_values():
    meta = {"pixel_scale": {"y": 0.2, "x": 0.2, "unit": "arcsec"}}
    assert is_sky_data((None, None), meta)
    assert not is_sky_data(types.SimpleNamespace(file_paths=["a.fits", "b.tif"]))
    assert resolve_train_augment("auto", task="classification", train=(1, 2), metadata=meta) == "d4"
    with pytest.raises(ConfigError, match=r"augment must be 'auto', 'd4'.*got augment='flip'"):
        resolve_train_augment("flip", task="classification", train=None)


def test_d4_train_data_transforms_masks_and_weights_with_the_image():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    mask = x[..., 0].astype(np.int32)
    weights = x[..., 0] * 10
    ds = d4_train_data((x, mask, weights), seed=1, batch_size=2)
    seen = set()
    for _ in range(4):  # a new transform each epoch, masks and weights always aligned
        xb, mb, wb = (np.asarray(t) for t in next(iter(ds)))
        np.testing.assert_array_equal(xb[..., 0].astype(np.int32), mb)
        np.testing.assert_array_equal(xb[..., 0] * 10, wb)
        for img in xb:
            src = x[int(img.min()) // 16]  # each sample is a D4 image of one input
            k = next(k for k in ALL8 if np.array_equal(augment.d4_transform(src, k), img))
            seen.add(k)
    assert len(seen) > 2
    labels = d4_train_data((x, np.array([3, 4])), seed=0, batch_size=2)
    assert sorted(np.asarray(next(iter(labels))[1]).tolist()) == [3, 4]  # labels pass through


def test_fit_turns_d4_on_for_a_cutout_dataset_not_for_arrays(tmp_path, monkeypatch):
    x = _rng_images(8, 8, 8)
    y = np.arange(8) % 2
    calls = []
    real = d4_train_data
    monkeypatch.setattr(
        "sciconv.training.d4_train_data", lambda *a, **k: calls.append(1) or real(*a, **k)
    )

    def sky_ds(paths):
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        ds.file_paths = paths
        return ds

    common = dict(epochs=1, verbose=0, reduce_lr=False, tensorboard=False, seed=0)
    model = classifier((8, 8, 1), 2, filters=(2,), dense=())
    assert resolve_train_augment("auto", task="classification", train=(x, y)) is None  # arrays
    fit(model, sky_ds(["a.fits"] * 8), workdir=tmp_path / "run", **common)
    assert calls == [1]
    config = __import__("json").loads((tmp_path / "run" / "config.json").read_text())
    assert config["augment"] == "d4"
    fit(classifier((8, 8, 1), 2, filters=(2,), dense=()), (x, y), augment="d4", **common)
    assert calls == [1, 1]


# --------------------------------------------------------------------------- invariant pooling


def _invariant(shape=(16, 16, 1), **kwargs):
    keras.utils.set_random_seed(0)
    defaults = dict(filters=(4, 8), dense=(8,), dropout=0.0, invariant="d4")
    return classifier(shape, 3, **{**defaults, **kwargs})


@pytest.mark.parametrize(
    ("shape", "head", "ks"), [((16, 16, 1), "flatten", ALL8), ((16, 24, 2), "gap", (0, 2, 4, 6))]
)
def test_invariant_classifier_output_is_exactly_invariant(shape, head, ks):
    model = _invariant(shape, head=head)
    x = _rng_images(3, *shape)
    ref = model.predict(x, verbose=0)
    assert ref.shape == (3, 3)
    np.testing.assert_allclose(ref.sum(axis=1), 1.0, atol=1e-5)
    for k in ks:
        out = model.predict(augment.d4_transform(x, k), verbose=0)
        np.testing.assert_allclose(out, ref, atol=2e-6, err_msg=f"k={k}")
    plain = classifier(shape, 3, filters=(4, 8), dense=(8,), dropout=0.0, head=head)
    moved = plain.predict(augment.d4_transform(x, 2), verbose=0)
    assert np.abs(moved - plain.predict(x, verbose=0)).max() > 1e-4  # a plain CNN is not


def test_invariant_layers_config_round_trip_and_errors():
    for layer in (D4Stack(4, name="s"), D4Pool(8, name="p")):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(restored) is type(layer) and restored.get_config() == config
    with pytest.raises(ModelError, match=r"elements must be 8 .* or 4"):
        D4Stack(3)
    with pytest.raises(ModelError, match="invariant must be one of"):
        classifier((16, 16, 1), 2, invariant="c4")
    assert d4_elements(10, 12) == 4
    pooled = np.asarray(D4Pool(4)(np.arange(8, dtype=np.float32).reshape(8, 1)))
    np.testing.assert_array_equal(pooled, [[3.0], [4.0]])  # copy-major: rows 0, 2, 4, 6 -> 3


def test_invariant_model_saves_and_loads_without_custom_objects(tmp_path):
    model = _invariant()
    assert get_metadata(model)["architecture"]["invariant"] == "d4"
    path = tmp_path / "inv.keras"
    model.save(path)
    x = _rng_images(2)
    for loaded in (keras.models.load_model(path), load(path)):
        assert loaded.get_layer("classifier_d4_stack").elements == 8
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    reg = regressor((16, 16, 1), 1, filters=(2,), dense=(), invariant="d4")
    assert reg.get_layer("regressor_head_d4_pool").elements == 8


def test_invariant_classifier_learns_with_fit():
    rng = np.random.default_rng(0)
    y = np.arange(64) % 2
    x = rng.normal(0, 0.3, size=(64, 16, 16, 1)).astype(np.float32)
    x[y == 1, 6:10, 6:10] += 1.5  # a central blob or not
    model = classifier((16, 16, 1), 2, filters=(4,), dense=(), dropout=0.0, invariant="d4")
    history = fit(model, (x, y), epochs=3, verbose=0, seed=0, reduce_lr=False, learning_rate=1e-2)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]


# --------------------------------------------------------------------------- predict_d4


def _plain_model(shape=(16, 16, 1), outputs=3):
    keras.utils.set_random_seed(1)
    return classifier(shape, outputs, filters=(4,), dense=(), dropout=0.0)


def test_predict_d4_is_the_mean_of_the_manual_transforms():
    model = _plain_model()
    x = _rng_images(5)
    manual = np.stack([model.predict(augment.d4_transform(x, k), verbose=0) for k in ALL8])
    mean, std = predict_d4(model, x, normalize=None, batch_size=2, return_std=True)
    np.testing.assert_allclose(mean, manual.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(std, manual.std(axis=0), atol=1e-6)
    assert std.max() > 1e-4  # a plain CNN depends on orientation
    one = predict_d4(model, x[0, ..., 0], normalize=None)  # one 2-D image -> (K,)
    np.testing.assert_allclose(one, mean[0], atol=1e-6)
    _, inv_std = predict_d4(_invariant(), x, normalize=None, return_std=True)
    assert inv_std.max() < 1e-5


def test_predict_d4_normalizes_and_handles_non_square_and_dense_outputs():
    model = _plain_model()
    raw = 1000.0 + 50.0 * _rng_images(2)
    from sciconv.preprocess import normalize

    expected = predict_d4(model, np.stack([normalize(img) for img in raw]), normalize=None)
    np.testing.assert_allclose(predict_d4(model, raw), expected, atol=1e-5)
    rect = _plain_model((16, 24, 1))
    x = _rng_images(2, 16, 24)
    manual = [rect.predict(augment.d4_transform(x, k), verbose=0) for k in (0, 2, 4, 6)]
    np.testing.assert_allclose(
        predict_d4(rect, x, normalize=None), np.mean(manual, axis=0), atol=1e-6
    )
    inputs = keras.Input((None, None, 1))
    dense = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    manual = [
        augment.d4_inverse(dense.predict(augment.d4_transform(x, k), verbose=0), k)
        for k in (0, 2, 4, 6)
    ]
    np.testing.assert_allclose(
        predict_d4(dense, x, normalize=None), np.mean(manual, axis=0), atol=1e-5
    )


def test_predict_d4_errors():
    model = _plain_model()
    with pytest.raises(
        InferenceError, match=r"images must be one image .* got shape \(2, 2, 2, 2, 1\)"
    ):
        predict_d4(model, np.zeros((2, 2, 2, 2, 1)))
    with pytest.raises(InferenceError, match=r"must be a keras\.Model; got str"):
        predict_d4("model.keras", np.zeros((16, 16)))
    with pytest.raises(InferenceError, match="batch_size"):
        predict_d4(model, np.zeros((16, 16)), batch_size=0)
    # QA: a size the model does not take raised Keras' ValueError, or a TF graph error
    with pytest.raises(InferenceError, match=r"takes images of \(16, 16, 1\).*got \(8, 8, 1\)"):
        predict_d4(model, np.zeros((3, 8, 8, 1)))
    with pytest.raises(InferenceError, match=r"got \(2, 16, 16\) \(a batch of grey images"):
        predict_d4(model, np.zeros((2, 16, 16)))
