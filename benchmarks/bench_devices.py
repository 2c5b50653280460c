"""Training throughput of the reference conv–pool–dense model under XLA and mixed precision.

Measures images/s of one training step loop (``model.fit`` on an in-memory ``tf.data`` pipeline) of
the plain-Keras reference model (Conv32-Pool-Conv64-Pool-Conv128-Pool-Flatten-Dense128-Dense3 on
64x64x1 images, batch 64) for every combination asked for, all in one process so the figures are
comparable. The first epoch of each configuration (tracing, XLA compilation) is discarded; the
median over the remaining epochs is reported. Also runs the same model built by
``sciconv.models.classifier`` (when it exists) in float32 without XLA, as a cross-check.

Run (the machine may be shared: be nice)::

    nice -n 10 python benchmarks/bench_devices.py
    python benchmarks/bench_devices.py --configs fp32,fp32+xla,bf16,fp16,fp16+xla --steps 50

Configurations are ``<precision>[+xla]`` with precision ``fp32`` (float32), ``bf16``
(``mixed_bfloat16``) or ``fp16`` (``mixed_float16``). The result table is printed and, with
``--json PATH``, written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
DEFAULT_CONFIGS = "fp32,fp32+xla,bf16,bf16+xla,fp16"


def reference_model(input_shape=(64, 64, 1), num_classes=3):
    """The plain-Keras reference: Conv32-Pool-Conv64-Pool-Conv128-Pool-Flatten-Dense128-Dense3."""
    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    # float32 output layer so mixed precision keeps a float32 softmax and loss
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="reference")


def sciconv_model(input_shape=(64, 64, 1), num_classes=3):
    from sciconv import models

    return models.classifier(input_shape, num_classes, dropout=0.0)


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # logs are numpy values by now, so the epoch's device work has finished
        self.times.append(time.perf_counter() - self._t0)


def measure(builder, precision, xla, *, steps, epochs, batch_size, seed=0):
    """Return (images/s median, list of per-epoch images/s, final loss)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(POLICIES[precision])
    try:
        keras.utils.set_random_seed(seed)
        model = builder()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            jit_compile=xla,
        )
        rng = np.random.default_rng(seed)
        n = batch_size * steps
        x = rng.normal(size=(n, 64, 64, 1)).astype("float32")
        y = rng.integers(0, 3, size=n).astype("int64")
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat()
        timer = _EpochTimer()
        hist = model.fit(
            ds,
            epochs=epochs + 1,
            steps_per_epoch=steps,
            callbacks=[timer],
            shuffle=False,
            verbose=0,
        )
        rates = [steps * batch_size / t for t in timer.times[1:]]
        return statistics.median(rates), rates, float(hist.history["loss"][-1])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"default {DEFAULT_CONFIGS}")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (median reported)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-sciconv", action="store_true", help="skip the sciconv.models run")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    gpus = tf.config.list_physical_devices("GPU")
    device = (
        ", ".join(
            tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
        )
        or f"CPU: {_cpu_model()} ({os.cpu_count()} cores visible)"
    )
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, python {sys.version.split()[0]}"
    )
    print(f"device: {device}")
    print(
        f"model: reference conv-pool-dense, 64x64x1, batch {args.batch_size}, "
        f"{args.steps} steps x {args.epochs} timed epochs (median)"
    )
    runs = []
    for config in args.configs.split(","):
        precision, _, flag = config.strip().partition("+")
        if precision not in POLICIES or flag not in ("", "xla"):
            parser.error(f"unknown configuration {config!r}; use fp32|bf16|fp16 with optional +xla")
        runs.append(("reference", reference_model, precision, flag == "xla"))
    if not args.no_sciconv:
        try:
            from sciconv import models

            if hasattr(models, "classifier"):
                runs.append(("sciconv.classifier", sciconv_model, "fp32", False))
        except ImportError:
            pass

    results = []
    print(f"{'model':<20} {'precision':<15} {'xla':<5} {'images/s':>10}   per-epoch      loss")
    for name, builder, precision, xla in runs:
        try:
            rate, rates, loss = measure(
                builder,
                precision,
                xla,
                steps=args.steps,
                epochs=args.epochs,
                batch_size=args.batch_size,
            )
        except Exception as exc:  # report and go on: fp16 or XLA may be unsupported here
            print(f"{name:<20} {POLICIES[precision]:<15} {xla!s:<5} failed: {exc!r:.200}")
            results.append(
                {"model": name, "policy": POLICIES[precision], "xla": xla, "error": repr(exc)}
            )
            continue
        per = " ".join(f"{r:.0f}" for r in rates)
        print(
            f"{name:<20} {POLICIES[precision]:<15} {xla!s:<5} {rate:>10.0f}   [{per}]  {loss:.3f}"
        )
        sys.stdout.flush()
        results.append(
            {
                "model": name,
                "policy": POLICIES[precision],
                "xla": xla,
                "images_per_s": rate,
                "per_epoch": rates,
                "loss": loss,
            }
        )
    base = next(
        (
            r
            for r in results
            if r["model"] == "reference"
            and r["policy"] == "float32"
            and not r["xla"]
            and "images_per_s" in r
        ),
        None,
    )
    if base:
        print("speed-up vs reference float32 without XLA:")
        for r in results:
            if "images_per_s" in r:
                print(
                    f"  {r['model']:<20} {r['policy']:<15} xla={r['xla']!s:<5} "
                    f"x{r['images_per_s'] / base['images_per_s']:.2f}"
                )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"device": device, "tensorflow": tf.__version__, "results": results}, fh, indent=2
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
