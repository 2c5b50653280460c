"""Subprocess used by tests/test_training.py: run sciconv.training.fit, optionally hang mid-epoch.

Usage: python _train_worker.py WORKDIR EPOCHS SEED HANG_EPOCH LOGFILE

Trains a tiny classifier on deterministic synthetic data. Every epoch start is appended to
LOGFILE ("epoch N"). When HANG_EPOCH >= 0, the worker writes "hanging N" to LOGFILE in the middle
of that epoch (after 3 batches) and sleeps, so the test can SIGKILL it during the epoch. At the
end it prints ``RESULT {json}`` with the final training loss and accuracy.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import sciconv as sc


def data(n=128, size=16, seed=0):
    """Images with a bright square (class 1) or a dimmer, larger square (class 0), plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, size=(n, size, size, 1)).astype("float32")
    y = np.arange(n) % 2
    for i in range(n):
        cy, cx = rng.integers(4, size - 4, 2)
        if y[i]:
            x[i, cy - 2 : cy + 2, cx - 2 : cx + 2, 0] += 2.0
        else:
            x[i, cy - 3 : cy + 3, cx - 3 : cx + 3, 0] += 0.5
    return x, y.astype("int64")


class _Log(keras.callbacks.Callback):
    def __init__(self, path, hang_epoch):
        super().__init__()
        self.path, self.hang_epoch, self.epoch = path, hang_epoch, None

    def _write(self, line):
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._write(f"epoch {epoch}")

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.hang_epoch and batch == 2:
            self._write(f"hanging {self.epoch}")
            time.sleep(600)  # the test kills us here, in the middle of the epoch


def main(argv):
    workdir, epochs, seed, hang_epoch, logfile = argv
    x, y = data()
    keras.utils.set_random_seed(int(seed))  # repeatable initial weights
    model = sc.models.classifier((16, 16, 1), 2, filters=(4, 8), dense=(8,), dropout=0.0)
    history = sc.training.fit(
        model,
        (x, y),
        validation_data=data(32, seed=1),
        epochs=int(epochs),
        workdir=workdir,
        batch_size=16,
        learning_rate=1e-2,
        seed=int(seed),
        tensorboard=False,
        reduce_lr=False,
        verbose=0,
        callbacks=[_Log(logfile, int(hang_epoch))],
    )
    final = {key: float(values[-1]) for key, values in history.history.items()}
    print("RESULT " + json.dumps(final), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
