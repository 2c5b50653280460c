"""What the mirrored bad-pixel fill costs: ``predict_tiled`` on an image with a no-data frame
against the same image without one, and against a plain Keras call on the clean image.

A fresh U-Net (depth 3, 16 filters; a fast network, so the fill's share is at its largest) on a
2048² image whose left and top 256 px and a 40 x 600 px band are NaN; medians of ``--repeats``
runs after one warm-up, in one process::

    nice -n 5 python benchmarks/bench_bad_pixel_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    import keras

    import sciconv as sc

    keras.utils.set_random_seed(0)
    model = sc.models.segmenter((None, None, 1), 2, depth=3, filters=16)
    n = args.size
    clean = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    framed = clean.copy()
    framed[: n // 8] = np.nan
    framed[:, : n // 8] = np.nan
    framed[n // 2 : n // 2 + 40, n // 2 - 100 : n // 2 + 500] = np.nan
    kw = dict(progress=False, precision="float32", normalize=None)

    def median(call) -> float:
        call()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    keras_s = median(lambda: model.predict_on_batch(clean[None, ..., None]))
    clean_s = median(lambda: sc.inference.predict_tiled(model, clean, **kw))
    framed_s = median(lambda: sc.inference.predict_tiled(model, framed, **kw))
    print(f"plain Keras call (clean)      {keras_s:.2f} s")
    print(f"predict_tiled, clean          {clean_s:.2f} s  ({clean_s / keras_s:.2f}x Keras)")
    print(f"predict_tiled, NaN frame      {framed_s:.2f} s  ({framed_s / clean_s:.2f}x clean)")
    return {"keras": keras_s, "clean": clean_s, "framed": framed_s}


if __name__ == "__main__":
    main()
