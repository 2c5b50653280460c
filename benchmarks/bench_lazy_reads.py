"""Window reads of a large image file: time per tile and resident memory, sciconv vs plain maps.

A survey mosaic or a whole slide is read window by window (``sciconv.io.read(path, lazy=True)``
or a numpy memory map handed to ``predict_tiled`` / ``predict_instances_blocks``). sciconv reads
each window through a mapping of its own (``sciconv.io.read_mapped``), so the file's pages do not
stay in the process's resident set; the reference is the plain way, one map held open:
``np.load(mmap_mode="r")``, ``astropy.io.fits.open(memmap=True)[0].section`` and
``tifffile.memmap``. Both read the same 512 x 512 windows of the same file, alternately, in one
process, after the normalization sample (every ``step``-th row and column, as
``sciconv.inference`` takes it).

Reported per format: median milliseconds per window over ``--repeats`` passes (the file is in the
page cache after the first), the ratio sciconv / reference, and how much the process's
file-backed resident memory (``RssFile``) grew over the reads (the reference's map is closed
only at the end).

    python benchmarks/bench_lazy_reads.py                 # 8192^2 float32: 256 MiB per file
    python benchmarks/bench_lazy_reads.py --side 4096 --repeats 5

``--formats tiled`` adds the tiled, deflate-compressed TIFF of whole slides and OME-TIFF
exports (256² tiles): sciconv reads it through tifffile's zarr store (only the tiles a window
touches are decoded), the reference is that store opened by hand (``tifffile.imread(aszarr=True)``
and ``zarr.open``); the line also gives the time and the growth of the process's own memory
(``RssAnon``) when sciconv opens the file: an image decoded whole would stay there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def rss_file_mib(field: str = "RssFile") -> float:
    """The process's file-backed resident memory (Linux ``/proc/self/status``), MiB; ``field``
    another line of it (``RssAnon``: the process's own memory)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_files(folder: Path, side: int) -> dict[str, Path]:
    """The same float32 image as .npy, plain FITS and uncompressed TIFF."""
    import tifffile
    from astropy.io import fits

    data = np.random.default_rng(0).normal(100.0, 10.0, size=(side, side)).astype(np.float32)
    paths = {
        "npy": folder / "image.npy",
        "fits": folder / "image.fits",
        "tiff": folder / "image.tif",
        "tiled": folder / "tiled.tif",
    }
    np.save(paths["npy"], data)
    fits.PrimaryHDU(data).writeto(paths["fits"])
    tifffile.imwrite(paths["tiff"], data)
    tifffile.imwrite(paths["tiled"], data, tile=(256, 256), compression="zlib")
    return paths


OPENED: dict[str, dict] = {}  # what sciconv's io.read(lazy=True) cost, per format


def sciconv_reader(kind: str, path: Path):
    """(read(ys, xs), sample(), close()) through sciconv: a lazy image or a numpy map."""
    from sciconv import io
    from sciconv.inference._source import Source

    if kind == "npy":
        array, close = np.load(path, mmap_mode="r"), lambda: None
    else:
        anon, t0 = rss_file_mib("RssAnon"), time.perf_counter()
        image = io.read(path, lazy=True)
        OPENED[kind] = {
            "open_ms": (time.perf_counter() - t0) * 1e3,
            "open_anon_growth_mib": round(rss_file_mib("RssAnon") - anon, 1),
            "lazy": type(image.data).__name__,
        }
        array, close = io.as_array(image), image.data.close
    source = Source(array, promote=len(array.shape) == 2, path=str(path))
    return source.read, source.limits_sample, close


def plain_reader(kind: str, path: Path, step: int):
    """The same reads through one map held open (the library's own way)."""
    if kind == "npy":
        array = np.load(path, mmap_mode="r")
        read = lambda ys, xs: np.array(array[ys, xs], dtype=np.float32)  # noqa: E731
        return read, lambda: np.array(array[::step, ::step]), lambda: None
    if kind == "fits":
        from astropy.io import fits

        hdul = fits.open(path, memmap=True)
        section = hdul[0].section
        read = lambda ys, xs: np.asarray(section[ys, xs], dtype=np.float32)  # noqa: E731
        sample = lambda: np.asarray(hdul[0].data[::step, ::step], dtype=np.float32)  # noqa: E731
        return read, sample, hdul.close
    import tifffile

    if kind == "tiled":
        import zarr

        array = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    else:
        array = tifffile.memmap(path, mode="r")
    read = lambda ys, xs: np.array(array[ys, xs], dtype=np.float32)  # noqa: E731
    return read, lambda: np.array(array[::step, ::step]), lambda: None


def run(kind: str, path: Path, side: int, tile: int, repeats: int) -> dict:
    step = max(1, math.floor(math.sqrt(side * side / 1e6)))  # the rule of sciconv.inference
    windows = [
        (slice(y, y + tile), slice(x, x + tile))
        for y in range(0, side, tile)
        for x in range(0, side, tile)
    ]
    out = {}
    readers = {"sciconv": sciconv_reader(kind, path), "plain": plain_reader(kind, path, step)}
    grown = {name: 0.0 for name in readers}
    times: dict[str, list[float]] = {name: [] for name in readers}
    for name, (_, sample, _) in readers.items():
        before = rss_file_mib()
        float(np.sum(sample()))
        grown[name] += rss_file_mib() - before
    for _ in range(repeats):
        for name, (read, _, _) in readers.items():  # alternately, same windows
            before = rss_file_mib()
            t0 = time.perf_counter()
            total = 0.0
            for ys, xs in windows:
                total += float(read(ys, xs).flat[0])
            times[name].append((time.perf_counter() - t0) / len(windows) * 1e3)
            grown[name] += max(rss_file_mib() - before, 0.0)
    for name, (_, _, close) in readers.items():
        close()
        out[name] = {
            "ms_per_tile": statistics.median(times[name]),
            "rss_file_growth_mib": round(grown[name], 1),
        }
    out["ratio"] = out["sciconv"]["ms_per_tile"] / out["plain"]["ms_per_tile"]
    out["sciconv"].update(OPENED.get(kind, {}))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8192)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="npy,fits,tiff")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.side)
        size = paths["npy"].stat().st_size / 2**20
        print(f"{args.side}^2 float32 ({size:.0f} MiB per file), {args.tile}^2 windows")
        for kind in [k for k in args.formats.split(",") if k]:
            r = run(kind, paths[kind], args.side, args.tile, args.repeats)
            results[kind] = r
            print(
                f"  {kind:5s} sciconv {r['sciconv']['ms_per_tile']:6.2f} ms/tile "
                f"(RssFile +{r['sciconv']['rss_file_growth_mib']:.0f} MiB)   plain map "
                f"{r['plain']['ms_per_tile']:6.2f} ms/tile (RssFile "
                f"+{r['plain']['rss_file_growth_mib']:.0f} MiB)   ratio {r['ratio']:.2f}",
                flush=True,
            )
            if kind in OPENED:
                o = OPENED[kind]
                print(
                    f"        sciconv open: {o['lazy']}, {o['open_ms']:.0f} ms, process memory "
                    f"(RssAnon) +{o['open_anon_growth_mib']:.0f} MiB",
                    flush=True,
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"settings": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
