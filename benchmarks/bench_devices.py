"""Training throughput of the reference conv–pool–dense model under XLA and mixed precision.

Measures images/s of one training step loop (``model.fit`` on an in-memory ``tf.data`` pipeline) of
the plain-Keras reference model (Conv32-Pool-Conv64-Pool-Conv128-Pool-Flatten-Dense128-Dense3 on
64x64x1 images, batch 64) for every combination asked for, all in one process so the figures are
comparable: every configuration's model is built first, then the script runs rounds of one epoch
of each configuration in turn, so load changes on a shared machine hit all of them alike. The
first round (tracing, XLA compilation) is discarded; the median over the other rounds is
reported. Also runs the same model built by
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


class _Run:
    """One configuration: its model (built under its policy), data and timings."""

    def __init__(self, name, builder, precision, xla, *, steps, batch_size, seed=0):
        self.name, self.precision, self.xla, self.steps = name, precision, xla, steps
        self.batch_size = batch_size
        self.rates, self.loss, self.error = [], None, None
        keras.mixed_precision.set_global_policy(POLICIES[precision])
        try:  # the policy matters when layers are built; the compiled model keeps it
            keras.utils.set_random_seed(seed)
            self.model = builder()
            self.model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss="sparse_categorical_crossentropy",
                jit_compile=xla,
            )
        finally:
            keras.mixed_precision.set_global_policy("float32")
        rng = np.random.default_rng(seed)
        n = batch_size * steps
        x = rng.normal(size=(n, 64, 64, 1)).astype("float32")
        y = rng.integers(0, 3, size=n).astype("int64")
        self.ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat()

    def epoch(self, *, timed):
        t0 = time.perf_counter()
        hist = self.model.fit(
            self.ds, epochs=1, steps_per_epoch=self.steps, shuffle=False, verbose=0
        )
        # the logs are numpy values when fit returns: the device work has finished
        elapsed = time.perf_counter() - t0
        self.loss = float(hist.history["loss"][-1])
        if timed:
            self.rates.append(self.steps * self.batch_size / elapsed)

    @property
    def median(self):
        return statistics.median(self.rates)


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
    parser.add_argument("--epochs", type=int, default=3, help="timed rounds (median reported)")
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
        f"{args.steps} steps x {args.epochs} timed rounds (median)"
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

    built = []
    for name, builder, precision, xla in runs:
        try:
            built.append(
                _Run(name, builder, precision, xla, steps=args.steps, batch_size=args.batch_size)
            )
        except Exception as exc:  # report and go on: fp16 or XLA may be unsupported here
            print(f"{name} {POLICIES[precision]} xla={xla}: build failed: {exc!r:.200}")
    # round-robin: one epoch of every configuration per round, so a change in the machine's load
    # (shared machines) hits all of them alike; round 0 (tracing, XLA compiling) is not timed
    for round_ in range(args.epochs + 1):
        for run in built:
            if run.error is not None:
                continue
            try:
                run.epoch(timed=round_ > 0)
            except Exception as exc:
                run.error = repr(exc)

    results = []
    print(f"{'model':<20} {'precision':<15} {'xla':<5} {'images/s':>10}   per-round      loss")
    for run in built:
        policy = POLICIES[run.precision]
        if run.error is not None:
            print(f"{run.name:<20} {policy:<15} {run.xla!s:<5} failed: {run.error:.200}")
            results.append(
                {"model": run.name, "policy": policy, "xla": run.xla, "error": run.error}
            )
            continue
        per = " ".join(f"{r:.0f}" for r in run.rates)
        print(
            f"{run.name:<20} {policy:<15} {run.xla!s:<5} {run.median:>10.0f}   [{per}]  "
            f"{run.loss:.3f}"
        )
        results.append(
            {
                "model": run.name,
                "policy": policy,
                "xla": run.xla,
                "images_per_s": run.median,
                "per_round": run.rates,
                "loss": run.loss,
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
