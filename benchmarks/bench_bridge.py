"""Cost of labelling masked pixels inside objects (``postprocess.instances(bridge=8)``).

A probability map of stars on a sky (``sciconv.simulate.sky_field``'s sources as discs of
probability 1) is given bad columns, flagged saturated cores and a chip gap as NaN, as
``predict_tiled`` leaves masked input pixels; ``instances`` runs on it with ``bridge=0`` (NaN is
background: the reference, what it did before) and the default ``bridge=8``, interleaved, and the
medians and their ratio are printed, with the objects each finds. Without NaN pixels the two are
the same code path (nothing to bridge).

Usage::

    python benchmarks/bench_bridge.py                 # 2048 x 2048, 5 repeats
    python benchmarks/bench_bridge.py --size 4096 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sciconv import postprocess


def probability_map(size: int, seed: int = 0) -> np.ndarray:
    """Discs of probability 1 (radius 2-8 px, 1 per 40 x 40 px) with bad columns every 200 px,
    a flagged 7 x 7 core in every tenth star and a 12 px chip gap across the middle, as NaN."""
    rng = np.random.default_rng(seed)
    prob = np.zeros((size, size), np.float32)
    yy, xx = np.ogrid[:size, :size]
    n = size * size // 1600
    for k, (y, x, r) in enumerate(
        zip(rng.uniform(0, size, n), rng.uniform(0, size, n), rng.uniform(2, 8, n))
    ):
        y0, y1 = int(max(0, y - r - 1)), int(min(size, y + r + 2))
        x0, x1 = int(max(0, x - r - 1)), int(min(size, x + r + 2))
        disc = (yy[y0:y1] - y) ** 2 + (xx[:, x0:x1] - x) ** 2 <= r * r
        prob[y0:y1, x0:x1][disc] = 1.0
        if k % 10 == 0:
            prob[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4] = np.nan
    prob[:, ::200] = np.nan
    prob[size // 2 - 6 : size // 2 + 6] = np.nan
    return prob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    prob = probability_map(args.size)
    times: dict[int, list[float]] = {0: [], 8: []}
    found = {}
    for _ in range(args.repeats):
        for bridge in (0, 8):  # interleaved: a loaded machine weighs on both alike
            start = time.perf_counter()
            labels = postprocess.instances(prob, min_size=3, bridge=bridge)
            times[bridge].append(time.perf_counter() - start)
            found[bridge] = int(labels.max())
    ref, new = statistics.median(times[0]), statistics.median(times[8])
    print(f"{args.size}x{args.size}, {np.isnan(prob).mean():.1%} NaN, median of {args.repeats}")
    print(f"  bridge=0 (NaN = background): {ref:.3f} s, {found[0]} objects")
    print(f"  bridge=8 (default):          {new:.3f} s, {found[8]} objects")
    print(f"  ratio: {new / ref:.2f}x")


if __name__ == "__main__":
    main()
