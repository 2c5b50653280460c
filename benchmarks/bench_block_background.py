"""Block-wise sky-subtracted catalogs vs the whole-image catalog: time and flux agreement.

A block-wise run (``predict_instances_blocks(background=True)``, what ``predict_mosaic`` and
``sciconv predict --block`` do) must measure each object's ``flux`` against the same background
as the whole-image call, whatever the block size (QA round 54: one ``Background2D`` per window
moved ``flux`` by up to 3.5 ``flux_err``). This script builds a 2048² image of one kind (``float``:
a float sky with a gradient; ``adu``: the same as uint16 ADU with an offset of 1000; ``counts``:
Poisson counts at 0.05-1 count/px), detects its sources with a fixed threshold model (a 1x1 or 5x5
convolution, no training, so both paths get the same labels), and reports for each block size
the block-wise call's time (median of ``--repeat``), the whole-image call's time (predict +
``background_and_rms`` + ``estimate_error`` + ``measure``, the same work) and their ratio, and the
median and largest ``|flux_block - flux_whole| / flux_err`` over the matched objects.

    nice python benchmarks/bench_block_background.py --kind adu --blocks 256,512
    nice python benchmarks/bench_block_background.py --kind counts --blocks 256
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("SCICONV_PRECISION", "float32")

import keras
import numpy as np

from sciconv import inference, postprocess


def detector(threshold: float, size: int = 1, slope: float = 0.01) -> keras.Model:
    """A fixed two-class softmax: foreground where the (box-averaged) pixel exceeds threshold."""
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(2, size, padding="same", activation="softmax")
    model = keras.Model(inputs, conv(inputs))
    k = np.zeros((size, size, 1, 2), np.float32)
    k[..., 0, 0], k[..., 0, 1] = -slope / size**2, slope / size**2
    conv.set_weights([k, np.array([slope * threshold, -slope * threshold], np.float32)])
    return model


def image_of(kind: str, n: int = 2048, seed: int = 0):
    """The test image and its detector."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)

    def sources(base, count, lo, hi):
        for cy, cx, f in zip(
            rng.uniform(10, n - 10, count),
            rng.uniform(10, n - 10, count),
            rng.uniform(lo, hi, count),
        ):
            y0, x0 = int(cy) - 12, int(cx) - 12
            yy, xx = y[y0 : y0 + 25, x0 : x0 + 25], x[y0 : y0 + 25, x0 : x0 + 25]
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
            base[y0 : y0 + 25, x0 : x0 + 25] += f / (8 * np.pi) * blob
        return base

    if kind == "counts":
        lam = 0.05 + 0.95 * x / n
        return rng.poisson(sources(lam, 800, 300, 3000)).astype(np.int32), detector(3.0, 5, 20.0)
    sky = 1000 + 0.05 * x - 0.03 * y
    sky = sources(sky, 800, 2e4, 1e5) + rng.normal(0, 8, (n, n))
    if kind == "adu":
        return np.clip(np.round(sky), 0, 65535).astype(np.uint16), detector(1400.0)
    return sky.astype(np.float32), detector(1400.0)


def whole_catalog(model, image):
    labels = inference.predict_instances(model, image, normalize=None, progress=False)
    level, rms = postprocess.background_and_rms(image, labels)
    err, _ = postprocess.estimate_error(image, labels, background=level, background_rms=rms)
    return postprocess.measure(labels, intensity=image, background=level, error=err)


def timed(func, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("float", "adu", "counts"), default="adu")
    parser.add_argument("--blocks", default="256,512", help="block sides, comma list")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    image, model = image_of(args.kind)
    t_whole, whole = timed(lambda: whole_catalog(model, image), args.repeat)
    print(f"{args.kind} 2048^2: whole image {len(whole)} objects, median {t_whole:.2f} s")
    wx, wy = np.asarray(whole["x"]), np.asarray(whole["y"])
    for block in (int(b) for b in args.blocks.split(",")):
        t_block, (_, table) = timed(
            lambda block=block: inference.predict_instances_blocks(
                model, image, block=block, background=True, normalize=None, progress=False
            ),
            args.repeat,
        )
        d = np.hypot(
            wx[:, None] - np.asarray(table["x"])[None], wy[:, None] - np.asarray(table["y"])[None]
        )
        j = d.argmin(1)
        pull = np.abs(np.asarray(table["flux"])[j] - np.asarray(whole["flux"]))
        pull = pull / np.asarray(whole["flux_err"])
        print(
            f"  block {block}: {len(table)} objects, median {t_block:.2f} s "
            f"({t_block / t_whole:.2f}x the whole image), |dflux|/flux_err median "
            f"{np.median(pull):.2g}, max {pull.max():.2g}"
        )


if __name__ == "__main__":
    main()
