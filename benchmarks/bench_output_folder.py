"""Per-product write time into an output folder that already holds many files.

Every atomic write sweeps its folder for partial files a killed run left (``sciconv._atomic``);
that sweep listed the whole folder twice per product, so a batch slowed as its ``--out`` filled
(QA, 2026-12-06: 50 -> 85 ms per file over 3000 files). One listing now serves a folder for
``STALE_SECONDS``. Prints the median time of 60 tiny TIFF writes into folders of N files.

    nice python benchmarks/bench_output_folder.py --files 1000 30000
    # the code before: git worktree add /tmp/old 851e18b; PYTHONPATH=/tmp/old python ...
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> dict:
    from sciconv import io

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, nargs="+", default=[1000, 30000])
    p.add_argument("--writes", type=int, default=60)
    args = p.parse_args(argv)
    out = {}
    for n in args.files:
        folder = Path(tempfile.mkdtemp(prefix="sciconv_bench_out_"))
        try:
            for i in range(n):
                (folder / f"f{i:06d}_labels.tif").write_bytes(b"x")
            arr = np.zeros((8, 8), np.uint8)
            times = []
            for i in range(args.writes):
                t0 = time.perf_counter()
                io.write(folder / f"new{i}.tif", arr)
                times.append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        out[n] = statistics.median(times)
        print(f"{n:6d} files in the folder: median {out[n] * 1e3:.2f} ms per write", flush=True)
    return out


if __name__ == "__main__":
    main()
