"""MC dropout is reproducible whatever the batch size (QA invariance finding 3).

Before 2026-12-07 :class:`AlwaysDropout` drew one mask for the whole ``(batch * S, h, w, c)``
tensor, so a tile's samples depended on its slot in the batch and on the batch's size:
``batch_size`` 8 -> 1 moved the mean by 0.08 and the std by 0.075, as much as another seed.
Now sample ``s`` of every tile gets mask ``s`` (seed, layer, ``s``, tile shape); layers saved
before keep their draw.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sciconv.inference import predict_tiled, predict_uncertainty, uncertainty_model  # noqa: E402
from sciconv.models import load, segmenter  # noqa: E402
from sciconv.models.uncertainty_layers import AlwaysDropout  # noqa: E402

IMAGE = np.random.default_rng(0).random((128, 96)).astype("float32")
TILED = dict(tile=64, normalize=None, progress=False)  # overlap "auto": 44


@pytest.fixture(scope="module")
def unet():
    keras.utils.set_random_seed(0)
    return segmenter((None, None, 1), num_classes=2, depth=2, filters=4, dropout=0.5)


def _mc(model, **kwargs):
    return predict_uncertainty(model, IMAGE, method="mc_dropout", samples=4, **TILED, **kwargs)


def test_mc_dropout_maps_do_not_depend_on_batch_size_and_differ_by_seed(unet):
    mean8, std8 = _mc(unet, batch_size=8)  # 15 tiles: a batch of 8 and one of 7
    assert float(np.median(std8)) > 1e-3  # dropout is on: a real spread to compare
    for batch_size in (1, 3):  # 3: five full batches; 1: every tile alone
        mean, std = _mc(unet, batch_size=batch_size)
        np.testing.assert_allclose(mean, mean8, rtol=0, atol=1e-5, err_msg=f"bs {batch_size}")
        np.testing.assert_allclose(std, std8, rtol=0, atol=1e-5, err_msg=f"bs {batch_size}")
    mean1, std1 = _mc(unet, batch_size=8, seed=1)  # another seed: other masks
    assert np.abs(mean1 - mean8).max() > 1e-2
    assert np.abs(std1 - std8).max() > 1e-2


def test_a_tile_gets_the_same_samples_alone_as_in_a_batch(unet):
    wrapper = uncertainty_model(unet, "mc_dropout", samples=4, seed=3)
    x = np.random.default_rng(1).normal(size=(5, 16, 16, 1)).astype("float32")
    batch = np.asarray(wrapper(x))
    for n in (0, 4):
        np.testing.assert_allclose(np.asarray(wrapper(x[n : n + 1]))[0], batch[n], atol=1e-5)
    assert float(batch[..., 2:].mean()) > 1e-3


@pytest.mark.parametrize("spatial", [False, True])
def test_sample_s_of_every_example_gets_mask_s(spatial):
    layer = AlwaysDropout(0.5, spatial=spatial, seed=2, samples=3)
    kept = np.asarray(layer(np.ones((3 * 4, 8, 8, 16), "float32"))).reshape(3, 4, 8, 8, 16) > 0
    assert all(np.array_equal(kept[s, n], kept[s, 0]) for s in range(3) for n in range(4))
    assert not np.array_equal(kept[0, 0], kept[1, 0])  # samples differ
    alone = np.asarray(layer(np.ones((3, 8, 8, 16), "float32"))) > 0  # N = 1: the same masks
    np.testing.assert_array_equal(alone, kept[:, 0])
    if spatial:  # one value per sample and channel
        assert all(np.unique(kept[s, 0, ..., c]).size == 1 for s in range(3) for c in range(16))
    assert 0.3 < kept.mean() < 0.7


def test_spatial_dropout_maps_do_not_depend_on_the_tile_size():
    """A SpatialDropout mask has no spatial extent, so with ``overlap >= 2 r`` (``"auto"``)
    every tile size gives the whole image's maps, as for the mean alone."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.SpatialDropout2D(0.5)(x)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(x), name="sd")
    run = dict(method="mc_dropout", samples=4, normalize=None, progress=False)
    whole = predict_uncertainty(model, IMAGE, tile=128, **run)
    assert float(np.median(whole[1])) > 1e-3
    for tile in (16, 32):
        mean, std = predict_uncertainty(model, IMAGE, tile=tile, batch_size=3, **run)
        np.testing.assert_allclose(mean, whole[0], atol=1e-5, err_msg=f"tile {tile}")
        np.testing.assert_allclose(std, whole[1], atol=1e-5, err_msg=f"tile {tile}")


def test_a_layer_config_without_samples_keeps_the_whole_batch_draw():
    config = AlwaysDropout(0.5, seed=7).get_config()
    config.pop("samples")  # as saved before 2026-12-07
    layer = AlwaysDropout.from_config(config)
    assert layer.samples is None
    x = np.ones((6, 8, 8, 2), "float32")
    expected = keras.random.dropout(x, 0.5, seed=7)  # the draw those layers made
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(expected))
    clone = AlwaysDropout.from_config(AlwaysDropout(0.5, samples=3).get_config())
    assert clone.samples == 3


def _tiny():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1, name="c2")(x), name="tiny")


def _drop_samples(config) -> int:
    """Remove ``samples`` from every AlwaysDropout of ``config`` (as written before); how many."""
    if isinstance(config, dict):
        found = 0
        if config.get("class_name") == "AlwaysDropout":
            assert config["config"].pop("samples") == 3
            found = 1
        return found + sum(_drop_samples(value) for value in config.values())
    if isinstance(config, list):
        return sum(_drop_samples(value) for value in config)
    return 0


def test_an_mc_dropout_wrapper_saved_before_loads_and_predicts_as_it_did(tmp_path):
    base = _tiny()
    wrapper = uncertainty_model(base, "mc_dropout", samples=3, seed=4)
    wrapper.save(tmp_path / "new.keras")
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(tmp_path / "new.keras") as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                assert _drop_samples(config) == 1
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    loaded = load(old)
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 1)).astype("float32")
    # the old draw: one mask for the whole (3 * 2, 8, 8, 4) tensor of the first dropout layer
    hidden = base.get_layer("c1")(np.concatenate([x] * 3))
    y = np.asarray(base.get_layer("c2")(keras.random.dropout(hidden, 0.5, seed=4)))
    y = y.reshape(3, 2, 8, 8, 1)
    got = np.asarray(loaded(x))
    np.testing.assert_allclose(got, np.concatenate([y.mean(0), y.std(0)], -1), atol=1e-5)
    assert np.abs(got - np.asarray(wrapper(x))).max() > 1e-3  # the new draw differs
    tiled = predict_tiled(loaded, IMAGE, tile=32, overlap=8, normalize=None, progress=False)
    assert tiled.shape == (128, 96, 2) and np.isfinite(tiled).all() and tiled[..., 1].max() > 0
