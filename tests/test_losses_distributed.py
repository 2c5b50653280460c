"""Losses under tf.distribute: a loss that reduces per-pixel weights itself must be divided by
the replicas in sync, as Keras' own reduction is (else MirroredStrategy trains at N x the loss)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from _helpers import run_python

from sciconv.losses import BCEDiceLoss, DiceLoss, FocalLoss

ROOT = Path(__file__).resolve().parents[1]


class _TwoReplicas:
    num_replicas_in_sync = 2


@pytest.mark.parametrize("loss_cls", [BCEDiceLoss, DiceLoss, FocalLoss])
def test_pixel_weighted_loss_scaled_like_keras(monkeypatch, loss_cls):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(4, 8, 8))
    p = rng.uniform(0.05, 0.95, size=(4, 8, 8, 1)).astype("float32")
    p = np.concatenate([1 - p, p], axis=-1)
    w = np.ones((4, 8, 8), "float32")
    w[:, :, :3] = 0.0
    loss = loss_cls()
    one = float(loss(y, p, sample_weight=w))
    keras_one = float(keras.losses.MeanSquaredError()(p, 0 * p))
    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: _TwoReplicas())
    keras_two = float(keras.losses.MeanSquaredError()(p, 0 * p))
    assert keras_two == pytest.approx(keras_one / 2)  # what Keras does per replica
    assert float(loss(y, p, sample_weight=w)) == pytest.approx(one / 2)
    # the unweighted and per-sample paths go through Keras' reduction: scaled as well
    assert float(loss(y, p, sample_weight=np.ones(4, "float32"))) == pytest.approx(
        float(loss_cls()(y, p)), rel=1e-6
    )


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np, keras, sciconv as sc
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 16, 16, 1)).astype("float32")
    y = (x[..., 0] > 0.3).astype("int32")
    w = np.ones((16, 16, 16), "float32"); w[:, :, :5] = 0.0; w[::3] = 0.3
    out = {}
    two = sc.devices.strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    for name, strat in (("single", tf.distribute.get_strategy()), ("mirrored", two)):
        ds = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(8)
        keras.utils.set_random_seed(1)
        with strat.scope():
            m = sc.models.segmenter((None, None, 1), 2, depth=1, filters=4, batch_norm=False)
        h = sc.training.fit(m, ds, epochs=2, verbose=0, tensorboard=False, augment=None,
                            reduce_lr=False)
        out[name] = {"loss": h.history["loss"],
                     "eval": m.evaluate(ds, verbose=0, return_dict=True)["loss"],
                     "pred": m.predict(x[:2], verbose=0).tolist()}
    json.dump(out, open(sys.argv[1], "w"))
    """
)


@pytest.mark.slow
def test_mirrored_pixel_weights_match_one_device(tmp_path):
    out = tmp_path / "out.json"
    run_python(_SCRIPT, out, cwd=ROOT, timeout=300)
    res = __import__("json").loads(out.read_text())
    single, mirrored = res["single"], res["mirrored"]
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-4)
    assert mirrored["eval"] == pytest.approx(single["eval"], rel=1e-4)
    np.testing.assert_allclose(mirrored["pred"], single["pred"], atol=1e-4)
