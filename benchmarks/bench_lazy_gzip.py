"""Window reads of a gzip-compressed FITS image (``.fits.gz``): sciconv's lazy image vs astropy's
own ``section`` on the compressed stream, side by side in one process.

``sciconv.io.read(path, lazy=True)`` decompresses a ``.fits.gz`` once, when it is opened (the
same pass that checks the stream ends at its last HDU), into a nameless temporary copy (removed
when the image is closed or collected) and reads each window from it; astropy's
``fits.open(path)[0].section[...]`` (the plain way, and what sciconv did before) decompresses
the stream from its start for every window. Reported: the time to open (sciconv: with the
decompression), the first window's, the median milliseconds per window over the windows read,
their ratio, and whether both give the eager read's pixels.

    python benchmarks/bench_lazy_gzip.py                  # 1024^2 float32, 256^2 windows
    python benchmarks/bench_lazy_gzip.py --side 2048 --windows 4
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--windows", type=int, default=6, help="windows read by each (random)")
    args = parser.parse_args(argv)
    from astropy.io import fits

    import sciconv as sc

    rng = np.random.default_rng(0)
    data = rng.normal(100.0, 10.0, (args.side, args.side)).astype(np.float32)
    path = Path(tempfile.mkdtemp()) / "mosaic.fits.gz"
    with gzip.open(path, "wb") as out:
        fits.PrimaryHDU(data).writeto(out)
    corners = rng.integers(0, args.side - args.window, (args.windows, 2))
    w = args.window

    t0 = time.perf_counter()
    img = sc.io.read(path, lazy=True)
    opened = {"sciconv": time.perf_counter() - t0}
    t0 = time.perf_counter()
    hdul = fits.open(path)
    section = hdul[0].section
    opened["astropy"] = time.perf_counter() - t0
    times = {"sciconv": [], "astropy": []}
    same = {"sciconv": True, "astropy": True}
    readers = {
        "sciconv": lambda ys, xs: img.data[ys, xs, 0],
        "astropy": lambda ys, xs: section[ys, xs],
    }
    for y, x in corners:  # alternately, so load on the machine hits both alike
        ys, xs = slice(y, y + w), slice(x, x + w)
        for name, read in readers.items():
            t0 = time.perf_counter()
            got = read(ys, xs)
            times[name].append(time.perf_counter() - t0)
            same[name] &= bool(np.array_equal(got, data[ys, xs]))
    img.data.close()
    hdul.close()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"{args.side}^2 float32 .fits.gz ({path.stat().st_size / 2**20:.1f} MiB), "
          f"{args.windows} windows of {w}^2")  # fmt: skip
    for name in ("sciconv", "astropy"):
        first = times[name][0]
        print(
            f"  {name:8s} open {opened[name]:6.2f} s   first window {first:6.2f} s   "
            f"median {med[name]:10.1f} ms/window   pixels as read eagerly: {same[name]}"
        )
    print(f"  ratio astropy / sciconv per window: {med['astropy'] / med['sciconv']:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
