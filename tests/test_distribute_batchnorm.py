"""BatchNorm under MirroredStrategy: models built inside a multi-replica scope synchronize their
batch statistics, so training matches one device with the same global batch.

Each replica normalized with the statistics of its own half of the batch: a classifier with
``batch_norm=True`` and the default segmenter (BatchNorm on) ended 1e-2 away from the one-device
weights. Logical CPU devices must be set before TensorFlow initializes, hence a fresh process.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from _helpers import run_python

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    import sciconv as sc

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 16, 16, 1)).astype("float32")
    labels = {
        "classifier": (x[:, :8].mean((1, 2, 3)) > x[:, 8:].mean((1, 2, 3))).astype("int32"),
        "segmenter": (x[..., 0] > 0.5).astype("int32"),
    }
    builders = {
        "classifier": lambda: sc.models.classifier(
            (16, 16, 1), 2, filters=(4, 8), dense=(8,), batch_norm=True
        ),
        "segmenter": lambda: sc.models.segmenter((None, None, 1), 2, depth=2, filters=4),
    }

    def run(kind, strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = builders[kind]()
            # plain SGD: Adam's step normalization magnifies float round-off in near-zero
            # gradients, which would hide what is compared here
            model.compile(keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
        data = tf.data.Dataset.from_tensor_slices((x, labels[kind])).batch(16)
        history = model.fit(data, epochs=3, verbose=0, shuffle=False)
        return model, history.history["loss"]

    mirrored = sc.devices.strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    out = {"replicas": mirrored.num_replicas_in_sync}
    for kind in builders:
        one, loss_one = run(kind, tf.distribute.get_strategy())
        two, loss_two = run(kind, mirrored)
        bn = lambda m: [
            layer.synchronized
            for layer in m.layers
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        path = sys.argv[1] + f"/{kind}.keras"
        two.save(path)
        loaded = sc.models.load(path)  # a model trained under the strategy loads on one device
        out[kind] = {
            "sync_one": bn(one),
            "sync_two": bn(two),
            "sync_loaded": bn(loaded),
            "loss_one": loss_one,
            "loss_two": loss_two,
            "max_weight_diff": max(
                float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights())
            ),
            "max_pred_diff": float(
                np.abs(one.predict(x, verbose=0) - two.predict(x, verbose=0)).max()
            ),
            "loaded_pred_diff": float(
                np.abs(loaded.predict(x, verbose=0) - two.predict(x, verbose=0)).max()
            ),
        }
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mirrored_bn")
    proc = run_python(SCRIPT, tmp, cwd=tmp, timeout=400)
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    return json.loads(line[len("RESULT ") :])


@pytest.mark.timeout(450)
@pytest.mark.parametrize("kind", ["classifier", "segmenter"])
def test_mirrored_batchnorm_trains_like_one_device(result, kind):
    assert result["replicas"] == 2
    r = result[kind]
    assert r["max_weight_diff"] < 1e-5, r  # moving statistics included (they are weights)
    assert r["max_pred_diff"] < 1e-5
    np.testing.assert_allclose(r["loss_two"], r["loss_one"], rtol=1e-5)
    # one device builds the BatchNorm it always built; under the strategy it is synchronized
    assert r["sync_one"] and not any(r["sync_one"])
    assert r["sync_two"] and all(r["sync_two"])
    assert r["sync_loaded"] == r["sync_two"]
    assert r["loaded_pred_diff"] == 0.0
