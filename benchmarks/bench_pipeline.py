"""Input-pipeline throughput: sciconv.datasets.from_folder against plain ``model.fit(x, y)``.

Trains the reference model (Conv32-Pool-Conv64-Pool-Conv128-Pool-Flatten-Dense128-Dense3, 64x64x1,
batch 64, Adam), built with plain Keras, for several epochs in one process:

1. ``in-memory``: the same pixels (normalized per image with the same spec) as numpy arrays,
   ``model.fit(x, y, batch_size=64, shuffle=True)``;
2. ``cached``: ``from_folder(folder, cache="auto")`` (decoded once up front, held in memory);
3. ``uncached``: ``from_folder(folder, cache=False)`` (files decoded every epoch by tf.data).

The three runs train side by side, one epoch of each in turn (a shared machine's load drifts
over minutes; interleaving makes it weigh on all three alike). Throughput is images/s, the median
over the epochs after the first; ratios are against in-memory. The process CPU time per epoch is
printed too: its ratio measures the pipeline's overhead even when other jobs share the cores.
Targets (issue 3): cached >= 0.95, uncached >= 0.80.

Usage::

    nice -n 10 python benchmarks/bench_pipeline.py                # 4096 files, 4 epochs
    python benchmarks/bench_pipeline.py --files 512 --epochs 3    # quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from astropy.io import fits

from sciconv import datasets, preprocess

CLASSES = ("disk", "point", "ring")
SIZE = 64
BATCH = 64


def write_files(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` 64x64 float32 FITS files in 3 class sub-folders (simple shapes + noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] - SIZE / 2
    r = np.hypot(yy, xx)
    for name in CLASSES:
        (folder / name).mkdir(parents=True)
    for i in range(n):
        c = i % 3
        width = rng.uniform(3, 8)
        if c == 0:
            img = np.exp(-r / width)
        elif c == 1:
            img = np.exp(-(r**2) / 2.0)
        else:
            img = np.exp(-((r - 2 * width) ** 2) / 4.0)
        img = 1000 * img + rng.normal(100, 5, (SIZE, SIZE))
        fits.writeto(folder / CLASSES[c] / f"img{i:05d}.fits", img.astype(np.float32))


def reference_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, from its first batch to its end (fit's own set-up excluded)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.cpu: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()
        self._c = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)
        self.cpu.append(time.process_time() - self._c)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4096, help="number of FITS files (4096)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (4)")
    parser.add_argument("--tmp", default=None, help="folder for the files (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is not timed)")

    tmp = Path(tempfile.mkdtemp(prefix="sciconv-bench-", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        write_files(tmp, args.files)
        print(f"wrote {args.files} FITS files ({SIZE}x{SIZE}) in {time.perf_counter() - t0:.1f} s")
        print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()}")

        # the in-memory reference holds the same normalized pixels, read outside the timing
        spec = preprocess.DEFAULT_NORMALIZATION
        files = sorted(tmp.glob("*/*.fits"))
        x = np.stack([preprocess.normalize_spec(fits.getdata(f)[..., None], spec) for f in files])
        y = np.array([CLASSES.index(f.parent.name) for f in files], np.int32)
        n, epochs = len(files), args.epochs

        t = time.perf_counter()
        cached = datasets.from_folder(tmp, batch_size=BATCH, seed=0, cache="auto")
        print(
            f"from_folder(cache='auto') built in {time.perf_counter() - t:.1f} s "
            f"(cache_mode={cached.cache_mode!r})"
        )
        t = time.perf_counter()
        uncached = datasets.from_folder(tmp, batch_size=BATCH, seed=0, cache=False)
        print(
            f"from_folder(cache=False) built in {time.perf_counter() - t:.1f} s "
            f"(cache_mode={uncached.cache_mode!r})"
        )

        runs = {"in-memory": (x, y), "cached": cached, "uncached": uncached}
        models = {name: reference_model() for name in runs}
        timers = {name: EpochTimer() for name in runs}
        # epochs are interleaved (one epoch of each run in turn) so that the load of a shared
        # machine, which drifts over minutes, weighs on all runs alike
        for epoch in range(epochs):
            for name, data in runs.items():
                # datasets shuffle themselves (seeded); shuffle=False silences a Keras notice
                kw = {"batch_size": BATCH, "shuffle": name == "in-memory"}
                models[name].fit(
                    *(data if name == "in-memory" else (data,)),
                    epochs=epoch + 1,
                    initial_epoch=epoch,
                    verbose=0,
                    callbacks=[timers[name]],
                    **kw,
                )
        times = {name: timer.times for name, timer in timers.items()}
        cpu = {name: timer.cpu for name, timer in timers.items()}
        ips = {name: n / statistics.median(ts[1:]) for name, ts in times.items()}
        for name, ts in times.items():
            acc = models[name].evaluate(x, y, batch_size=256, verbose=0)[1]
            epochs_txt = " ".join(f"{t:.2f}" for t in ts)
            cpu_txt = " ".join(f"{t:.2f}" for t in cpu[name])
            print(
                f"{name:>10}: {ips[name]:7.0f} images/s  (epoch wall s: {epochs_txt}; "
                f"process CPU s: {cpu_txt}; acc {acc:.3f})"
            )
        for name, target in (("cached", 0.95), ("uncached", 0.80)):
            per_epoch = [m / c for m, c in zip(times["in-memory"][1:], times[name][1:])]
            cpu_ratio = statistics.median(cpu["in-memory"][1:]) / statistics.median(cpu[name][1:])
            print(
                f"ratio {name}/in-memory = {ips[name] / ips['in-memory']:.2f} "
                f"(median of per-epoch ratios {statistics.median(per_epoch):.2f}; "
                f"CPU-time ratio {cpu_ratio:.2f}; target >= {target})"
            )
        print(f"load average after: {os.getloadavg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
