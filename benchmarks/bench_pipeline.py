"""Input-pipeline throughput: sciconv.datasets.from_folder against plain ``model.fit(x, y)``.

Trains the reference model (Conv32-Pool-Conv64-Pool-Conv128-Pool-Flatten-Dense128-Dense3, 64x64x1,
batch 64, Adam), built with plain Keras, for several epochs in one process:

1. ``in-memory``: the same pixels (normalized per image with the same spec) as numpy arrays,
   ``model.fit(x, y, batch_size=64, shuffle=True)`` (run first and again last, to show drift);
2. ``cached``: ``from_folder(folder, cache="auto")`` (decoded once up front, held in memory);
3. ``uncached``: ``from_folder(folder, cache=False)`` (files decoded every epoch by tf.data).

Throughput is images/s, the median over the epochs after the first; ratios are against the mean
of the two in-memory runs. Targets (issue 3): cached >= 0.95, uncached >= 0.80.

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
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def run(name: str, n: int, epochs: int, fit) -> float:
    timer = EpochTimer()
    model = reference_model()
    history = fit(model, timer)
    later = timer.times[1:] or timer.times
    ips = n / statistics.median(later)
    acc = history.history["accuracy"][-1]
    epochs_txt = " ".join(f"{t:.2f}" for t in timer.times)
    print(f"{name:>12}: {ips:8.0f} images/s  (epoch s: {epochs_txt}; final acc {acc:.3f})")
    return ips


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

        def fit_memory(model, timer):
            return model.fit(
                x, y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer]
            )

        def fit_folder(cache):
            def fit(model, timer):
                t = time.perf_counter()
                ds = datasets.from_folder(tmp, batch_size=BATCH, seed=0, cache=cache)
                print(
                    f"{'':>12}  from_folder(cache={cache!r}) built in "
                    f"{time.perf_counter() - t:.1f} s -> cache_mode={ds.cache_mode!r}"
                )
                # shuffling is the dataset's own (seeded); shuffle=False silences a Keras notice
                return model.fit(ds, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer])

            return fit

        mem1 = run("in-memory", n, epochs, fit_memory)
        cached = run("cached", n, epochs, fit_folder("auto"))
        uncached = run("uncached", n, epochs, fit_folder(False))
        mem2 = run("in-memory", n, epochs, fit_memory)
        ref = (mem1 + mem2) / 2
        print(f"ratio cached/in-memory   = {cached / ref:.2f}  (target >= 0.95)")
        print(f"ratio uncached/in-memory = {uncached / ref:.2f}  (target >= 0.80)")
        print(f"in-memory drift between first and last run: {mem2 / mem1:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
