"""QuPath GeoJSON of a whole slide's labels: sciconv window by window against the whole array.

A slide segmented block by block leaves its labels in a zarr array too large to load. This writes
a synthetic label mosaic (``--side`` pixels square, nucleus-sized objects on a jittered grid,
numbered 1..N as block-wise labels are) to zarr chunk by chunk, then, each in a child process of
its own so that peak memory is its own:

- ``sciconv``: ``sciconv.postprocess.write_geojson(zarr_array, path)``, window by window;
- ``whole``: the array loaded whole and ``labels_to_geojson(array, path=...)`` (the in-memory
  way; the same features), skipped above ``--whole-max`` pixels.

Printed: seconds, peak resident memory of the child (``ru_maxrss``) and the file size; the two
files are compared feature by feature when both ran.

    python benchmarks/bench_geojson.py --side 8192
    python benchmarks/bench_geojson.py --side 32768 --whole-max 0      # window by window only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_labels(path: Path, side: int, chunk: int = 1024, pitch: int = 24) -> int:
    """Objects of 10-16 px on a jittered ``pitch`` grid, written to zarr chunk by chunk."""
    import zarr
    from skimage.draw import ellipse

    store = zarr.open_array(path, mode="w", shape=(side, side), chunks=(chunk, chunk), dtype="i4")
    rng = np.random.default_rng(0)
    per_row = side // pitch
    for y0 in range(0, side, chunk):
        for x0 in range(0, side, chunk):
            block = np.zeros((chunk, chunk), np.int32)
            for gy in range(y0 // pitch, (y0 + chunk) // pitch):
                for gx in range(x0 // pitch, (x0 + chunk) // pitch):
                    cy = gy * pitch + pitch // 2 + rng.integers(-3, 4) - y0
                    cx = gx * pitch + pitch // 2 + rng.integers(-3, 4) - x0
                    rr, cc = ellipse(cy, cx, rng.integers(5, 9), rng.integers(5, 9), (chunk, chunk))
                    block[rr, cc] = gy * per_row + gx + 1
            store[y0 : y0 + chunk, x0 : x0 + chunk] = block
    return per_row * per_row


def child(kind: str, labels: str, out: str) -> None:
    import zarr

    from sciconv import postprocess

    t = time.perf_counter()
    array = zarr.open_array(labels, mode="r")
    if kind == "sciconv":
        postprocess.write_geojson(array, out)
    else:
        postprocess.labels_to_geojson(array[:], path=out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": time.perf_counter() - t, "peak_mib": peak}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side", type=int, default=8192)
    p.add_argument("--whole-max", type=int, default=16384**2, help="pixels; 0: never")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(*a.child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        labels = Path(tmp) / "labels.zarr"
        t = time.perf_counter()
        n = make_labels(labels, a.side)
        print(f"{a.side}^2 labels, {n} objects, written in {time.perf_counter() - t:.0f} s")
        runs = {}
        kinds = ["sciconv"] + (["whole"] if a.side * a.side <= a.whole_max else [])
        for kind in kinds:
            out = Path(tmp) / f"{kind}.geojson"
            res = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(labels), str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[kind] = json.loads(res.stdout.strip().splitlines()[-1])
            runs[kind]["mib"] = out.stat().st_size / 2**20
            r = runs[kind]
            print(
                f"  {kind:8s} {r['seconds']:7.1f} s   peak RSS {r['peak_mib']:7.0f} MiB   "
                f"file {r['mib']:.0f} MiB",
                flush=True,
            )
        if len(runs) == 2:
            a_ = json.loads((Path(tmp) / "sciconv.geojson").read_text())["features"]
            b_ = json.loads((Path(tmp) / "whole.geojson").read_text())["features"]
            key = lambda f: f["properties"]["label"]  # noqa: E731
            same = sorted(a_, key=key) == sorted(b_, key=key)
            print(f"  same features: {same} ({len(a_)} and {len(b_)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
