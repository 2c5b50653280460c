"""Tests of sciconv.augment: D4 group, aligned image/mask transforms, seeding, Keras layers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from sciconv import augment  # noqa: E402
from sciconv.errors import ConfigError  # noqa: E402


def _coded(n=4, h=6, w=6, c=2):
    """Images whose every pixel value is unique, and a mask derived from the pixel values."""
    x = np.arange(n * h * w * c, dtype=np.float32).reshape(n, h, w, c)
    return x, x[..., 0].astype(np.int32) // 2 * 2 + 1


def _which_k(original, transformed, axes=(-3, -2)):
    ks = [
        k
        for k in range(8)
        if augment.d4_transform(original, k, axes=axes).shape == transformed.shape
        and np.array_equal(augment.d4_transform(original, k, axes=axes), transformed)
    ]
    assert len(ks) == 1, ks
    return ks[0]


# ---------------------------------------------------------------------------------------------
# numpy helpers
# ---------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 3)),
    k=st.integers(0, 7),
    batched=st.booleans(),
)
def test_d4_is_invertible(shape, k, batched):
    x = np.random.default_rng(sum(shape) + k).random(shape if batched else shape[1:])
    t = augment.d4_transform(x, k)
    assert t.shape[-3:-1] == (x.shape[-3:-1] if k % 2 == 0 else x.shape[-3:-1][::-1])
    np.testing.assert_array_equal(augment.d4_inverse(t, k), x)


def test_d4_has_eight_distinct_elements_and_is_a_group():
    x = np.arange(9.0).reshape(3, 3, 1)
    views = [augment.d4_transform(x, k) for k in range(8)]
    assert len({v.tobytes() for v in views}) == 8
    for a in range(8):  # closure: composing two elements gives an element
        for b in range(8):
            _which_k(x, augment.d4_transform(views[a], b))
    # a 2-D mask with explicit axes follows its image
    m = np.arange(12).reshape(3, 4)
    img = np.stack([m, m], axis=-1)
    for k in range(8):
        np.testing.assert_array_equal(
            augment.d4_transform(m, k, axes=(0, 1)), augment.d4_transform(img, k)[..., 0]
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 8}, r"k must be an int in 0\.\.7"),
        ({"k": 1.0}, "k must be an int"),
        ({"k": 1, "axes": (0, 5)}, "out of range"),
        ({"k": 1, "axes": (1, 1)}, "2 different axes"),
    ],
)
def test_d4_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        augment.d4_transform(np.zeros((2, 2, 1)), **kwargs)


# ---------------------------------------------------------------------------------------------
# tf.data functions
# ---------------------------------------------------------------------------------------------
def test_augment_batch_keeps_mask_aligned_pixel_by_pixel():
    x, m = _coded()
    seen = set()
    for s in range(12):
        xa, ma = augment.augment_batch(x, m, seed=(s, 0))
        xa, ma = xa.numpy(), ma.numpy()
        np.testing.assert_array_equal(ma, xa[..., 0].astype(np.int32) // 2 * 2 + 1)
        for i in range(len(x)):
            k = _which_k(x[i], xa[i])
            np.testing.assert_array_equal(ma[i], augment.d4_transform(m[i], k, axes=(0, 1)))
            seen.add(k)
    assert seen == set(range(8))  # every element of D4 is used


def test_intensity_transforms_touch_the_image_only():
    x, m = _coded()
    opts = {"brightness": 0.5, "contrast": 0.5, "gaussian_noise": 0.1, "poisson_noise": 5.0}
    xa, ma = augment.augment_batch(x, m, seed=(4, 2), **opts)
    xg, mg = augment.augment_batch(x, m, seed=(4, 2))
    np.testing.assert_array_equal(ma.numpy(), mg.numpy())  # mask: geometric transform only
    assert np.abs(xa.numpy() - xg.numpy()).mean() > 0.05
    labels = np.arange(4)
    _, yl = augment.augment_batch(x, labels, seed=(4, 2))
    np.testing.assert_array_equal(yl.numpy(), labels)  # labels pass through


def test_augment_batch_is_seeded():
    x, m = _coded()
    opts = {"gaussian_noise": 0.1, "brightness": 0.1}
    a = augment.augment_batch(x, m, seed=(1, 2), **opts)
    b = augment.augment_batch(x, m, seed=(1, 2), **opts)
    c = augment.augment_batch(x, m, seed=(1, 3), **opts)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())


def test_noise_statistics():
    x = np.full((2, 64, 64, 1), 4.0, np.float32)
    g = augment.augment_batch(x, seed=(0, 0), d4=False, gaussian_noise=0.5).numpy()
    assert abs(g.mean() - 4.0) < 0.02 and abs(g.std() - 0.5) < 0.02
    p = augment.augment_batch(x, seed=(0, 1), d4=False, poisson_noise=10.0).numpy()
    # Poisson(40)/10: mean 4, variance 40/100
    assert abs(p.mean() - 4.0) < 0.03 and abs(p.var() - 0.4) < 0.04


def test_non_square_keeps_shape_and_uses_four_elements():
    x = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6, 1)
    seen = set()
    for s in range(10):
        xa = augment.augment_batch(x, seed=(s, 5)).numpy()
        assert xa.shape == x.shape
        seen.update(_which_k(x[i], xa[i]) for i in range(2))
    assert seen == {0, 2, 4, 6}


def test_augment_pair_and_random_crop_inside_tf_data():
    x, m = _coded(n=6, h=10, w=10, c=1)
    ds = tf.data.Dataset.from_tensor_slices((x, m)).enumerate()

    def fn(i, xy):
        seed = tf.stack([i, tf.constant(9, tf.int64)])
        cx, cm = augment.random_crop(xy[0], xy[1], size=(6, 6), seed=seed)
        return augment.augment_pair(cx, cm, seed, gaussian_noise=0.0)

    for xa, ma in ds.map(fn):
        assert xa.shape == (6, 6, 1) and ma.shape == (6, 6)
        np.testing.assert_array_equal(ma.numpy(), xa.numpy()[..., 0].astype(np.int32) // 2 * 2 + 1)


def test_bad_amounts():
    x, _ = _coded()
    with pytest.raises(ConfigError, match=r"contrast must be in \[0, 1\)"):
        augment.augment_batch(x, seed=(0, 0), contrast=1.5)
    with pytest.raises(ConfigError, match="poisson_noise must be None or"):
        augment.augment_batch(x, seed=(0, 0), poisson_noise=-1)
    with pytest.raises(ConfigError, match=r"x must be a batch \(N, H, W, C\)"):
        augment.augment_batch(x[0], seed=(0, 0))


# ---------------------------------------------------------------------------------------------
# Keras layers
# ---------------------------------------------------------------------------------------------
def test_random_d4_layer_training_only_and_aligned():
    layer = augment.RandomD4(seed=3)
    x, m = _coded()
    np.testing.assert_array_equal(layer(x, training=False), x)
    xa, ma = layer((x, m), training=True)
    xa, ma = np.asarray(xa), np.asarray(ma)
    np.testing.assert_array_equal(ma, xa[..., 0].astype(np.int32) // 2 * 2 + 1)
    for i in range(len(x)):
        _which_k(x[i], xa[i])


def test_layers_serialize_and_are_inactive_in_predict(tmp_path):
    for layer in (augment.RandomD4(seed=1), augment.RandomIntensity(0.2, 0.1, 0.05, seed=2)):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(restored) is type(layer) and restored.get_config() == config
    inputs = keras.Input((8, 8, 1))
    h = augment.RandomIntensity(seed=0)(augment.RandomD4(seed=0)(inputs))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(h))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), model.layers[-1](x).numpy(), atol=1e-6
    )  # predict skips both augmentation layers
