"""Worker processes for tests/test_distributed.py (run as scripts, never imported by pytest).

``python tests/_mwms_worker.py mirrored OUT_JSON``
    Two logical CPU devices; trains the sciconv classifier once on the default strategy and once
    under ``MirroredStrategy`` over both devices (same seed, same global batch) and writes the
    losses and final weights' largest difference to OUT_JSON.

``python tests/_mwms_worker.py multiworker OUT_DIR WORKDIR`` (with ``TF_CONFIG`` set)
    One worker of a ``MultiWorkerMirroredStrategy`` cluster: trains the classifier with
    ``sciconv.training.fit`` into WORKDIR, then saves its final weights to
    ``OUT_DIR/weights_<index>.weights.h5`` and a summary to ``OUT_DIR/worker_<index>.json``.
    Without ``TF_CONFIG`` the same run on one device, saved as ``*_single.*`` (the reference).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

SEED = 0
N, SIZE, CLASSES = 64, 16, 3


def _data(seed=SEED):
    """Learnable toy task: the class is which third of the image holds a bright blob."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=N)
    x = rng.normal(0, 0.5, size=(N, SIZE, SIZE, 1)).astype("float32")
    for i, c in enumerate(y):
        x0 = 1 + c * SIZE // CLASSES
        x[i, 4:12, x0 : x0 + 4, 0] += 0.5
    return x, y.astype("int64")


def _model():
    try:
        from sciconv import models

        builder = models.classifier
    except (ImportError, AttributeError):  # temporary, until sciconv.models imports
        return _plain_model()
    return builder((SIZE, SIZE, 1), CLASSES, filters=(8, 16), dense=(16,), dropout=0.0)


def _plain_model():
    import keras

    inputs = keras.Input((SIZE, SIZE, 1))
    x = inputs
    for filters in (8, 16):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="plain_classifier")


def mirrored(out_json):
    import tensorflow as tf

    from sciconv import devices

    # info() and describe() must not initialize the devices: configuring logical CPUs after them
    # raises RuntimeError if they did.
    devices.info()
    devices.describe()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    import keras

    x, y = _data()
    global_batch = 16

    def run(strat):
        with strat.scope():
            keras.utils.set_random_seed(SEED)
            model = _model()
            jit = devices.jit_compile_default()
            model.compile(
                optimizer=keras.optimizers.Adam(3e-3),
                loss="sparse_categorical_crossentropy",
                jit_compile=jit,
            )
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch)
        hist = model.fit(ds, epochs=4, verbose=0, shuffle=False)
        return model, hist.history["loss"], jit

    single, loss1, _ = run(devices.strategy("default"))
    strat = devices.strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    double, loss2, jit2 = run(strat)
    diff = max(
        float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), double.get_weights())
    )
    result = {
        "num_replicas": devices.num_replicas(strat),
        "scaled_batch": devices.scale_batch_size(8, strategy=strat),
        "jit_default_mirrored": jit2,
        "strategy_class": type(strat).__name__,
        "loss_single": loss1,
        "loss_mirrored": loss2,
        "max_weight_diff": diff,
        "accuracy_mirrored": float(np.mean(np.argmax(double.predict(x, verbose=0), 1) == y)),
    }
    # a segmenter built in the strategy's scope predicts tile by tile as outside it (QA:
    # predict_on_batch gave 2 rows for 1 tile, 'not a same-size per-pixel model')
    import sciconv as sc

    with strat.scope():
        keras.utils.set_random_seed(SEED)
        seg = sc.models.segmenter((None, None, 1), 2, depth=1, filters=2)
    image = np.random.default_rng(SEED).random((40, 48)).astype(np.float32)
    tiled = sc.inference.predict_tiled(seg, image, progress=False, precision="float32")
    direct = np.asarray(seg(sc.preprocess.normalize(image)[None, ..., None], training=False))[0]
    # validation batches smaller than the replicas are refused by name, not by TensorFlow's
    # 'Inputs to operation AddN' (QA: from_pairs' whole validation images, one per batch)
    from sciconv.errors import ConfigError

    xs = np.random.default_rng(SEED).random((4, 16, 16, 1)).astype(np.float32)
    ys = (xs[..., 0] > 0.5).astype(np.int32)
    val = tf.data.Dataset.from_tensor_slices((xs[:2], ys[:2])).batch(1)
    try:
        sc.training.fit(seg, (xs, ys), validation_data=val, epochs=1, verbose=0, augment=None)
        result["small_val_batches"] = "accepted"
    except ConfigError as exc:
        result["small_val_batches"] = str(exc)
    try:  # training batches that split unevenly over the replicas (review: AddN again)
        sc.training.fit(seg, (xs, ys), batch_size=3, epochs=1, verbose=0, augment=None)
        result["uneven_batches"] = "accepted"
    except ConfigError as exc:
        result["uneven_batches"] = str(exc)
    result["tiled_shape"] = list(tiled.shape)
    result["tiled_vs_direct"] = float(np.max(np.abs(tiled - direct)))
    with open(out_json, "w") as fh:
        json.dump(result, fh)


def multiworker(out_dir, workdir):
    import tensorflow as tf

    from sciconv import devices

    strat = devices.strategy()  # auto: MultiWorkerMirroredStrategy when TF_CONFIG has 2 workers
    tf_config = os.environ.get("TF_CONFIG")
    index = json.loads(tf_config)["task"]["index"] if tf_config else "single"
    import keras

    x, y = _data()
    global_batch = 16  # the single-device reference uses the same global batch
    scaled = devices.scale_batch_size(8, strategy=strat)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch).with_options(options)
    val = ds.take(2)  # evaluate() under the strategy too
    with strat.scope():
        keras.utils.set_random_seed(SEED)
        model = _model()
    try:
        from sciconv import training
    except ImportError:
        training = None
    if training is not None and hasattr(training, "fit"):
        history = training.fit(
            model,
            ds,
            validation_data=val,
            epochs=2,
            workdir=workdir,
            learning_rate=1e-2,
            tensorboard=False,
            reduce_lr=False,
            verbose=0,
            seed=SEED,
        )
        used = "sciconv.training.fit"
    else:  # fallback while sciconv.training is not written: same contract by hand
        with strat.scope():
            model.compile(
                optimizer=keras.optimizers.Adam(1e-2),
                loss="sparse_categorical_crossentropy",
                jit_compile=devices.jit_compile_default(),
            )
        history = model.fit(ds, validation_data=val, epochs=2, verbose=0)
        with devices.chief_workdir(workdir) as where:
            where.mkdir(parents=True, exist_ok=True)
            model.save(where / "last.keras")
        used = "keras fit (sciconv.training.fit missing)"
    model.save_weights(os.path.join(out_dir, f"weights_{index}.weights.h5"))
    summary = {
        "index": index,
        "is_chief": devices.is_chief(),
        "strategy_class": type(strat).__name__,
        "num_replicas": devices.num_replicas(strat),
        "scaled_batch": scaled,
        "loss": [float(v) for v in history.history["loss"]],
        "val_loss": [float(v) for v in history.history["val_loss"]],
        "fit": used,
    }
    with open(os.path.join(out_dir, f"worker_{index}.json"), "w") as fh:
        json.dump(summary, fh)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"mirrored": mirrored, "multiworker": multiworker}[mode](*args)
