"""Block-wise instances on mosaics larger than memory: peak RSS, agreement, throughput.

A mosaic of real fluorescence nuclei (``data/real/nuclei``, 256 x 256 crops tiled with seeded
D4 flips) is written to disk as a ``.npy`` memory map and segmented by the pretrained nuclei model
(``sciconv.models.pretrained("nuclei")``). Every case runs in its own subprocess, so its peak
resident memory (````ru_maxrss`` of the child's rusage, ``os.wait4``) is its own.

(a) ``--rss 10240,20480``: block-wise ``predict_instances_blocks`` (labels to a ``.zarr``, the
    catalog in memory) on each side, peak RSS and time; ``--whole`` sides: the whole-image
    ``predict_instances`` path (``block`` forced off) for comparison.
(b) ``--compare 4096``: object F1 (IoU >= 0.5, ``sciconv.metrics.matching``) between the
    block-wise labels (``--block``, default 1024, so there are seams) and the whole-image labels,
    and the throughput ratio block-wise / whole-image, interleaved in one process (median of
    ``--rounds``).

    nice -n 10 python benchmarks/bench_blocks.py --compare 4096 --rss 10240 --whole 8192
    nice -n 10 python benchmarks/bench_blocks.py --rss 20480 --compare 0     # once: ~10 min
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CELL = 256


def build_mosaic(path: Path, size: int, seed: int = 0) -> Path:
    """A ``size``-square float32 ``.npy`` of 256-px real nuclei crops, written strip by strip."""
    import tifffile

    crops = []
    for f in sorted((ROOT / "data" / "real" / "nuclei" / "images").glob("*.tif")):
        img = tifffile.imread(f).astype(np.float32)
        img = np.pad(img, [(0, max(0, CELL - n)) for n in img.shape[:2]], mode="reflect")
        crops.append(img[:CELL, :CELL])
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, size))
    for y in range(0, size, CELL):
        strip = np.empty((CELL, size + CELL), np.float32)
        for x in range(0, size, CELL):
            crop = crops[rng.integers(len(crops))]
            crop = np.rot90(crop, rng.integers(4))
            strip[:, x : x + CELL] = crop[:, ::-1] if rng.integers(2) else crop
        out[y : y + CELL] = strip[: min(CELL, size - y), :size]
    out.flush()
    del out
    return path


def _model():
    from sciconv.models import pretrained

    return pretrained("nuclei")


def case_blocks(image_path: str, block: int) -> dict:
    from sciconv.inference._blocks import predict_instances_blocks

    model = _model()
    image = np.load(image_path, mmap_mode="r")
    with tempfile.TemporaryDirectory(dir=Path(image_path).parent) as tmp:
        t0 = time.perf_counter()
        _, table = predict_instances_blocks(
            model, image, block=block, out=Path(tmp) / "labels.zarr", progress=False
        )
        seconds = time.perf_counter() - t0
    return {"objects": len(table), "seconds": seconds, "catalog_columns": len(table.colnames)}


def case_whole(image_path: str) -> dict:
    from sciconv import inference

    model = _model()
    image = np.load(image_path, mmap_mode="r")
    inference._instances.AUTO_BLOCK_PIXELS = 2**62  # force the whole-image path
    t0 = time.perf_counter()
    labels = inference.predict_instances(model, image, progress=False)
    return {"objects": int(labels.max()), "seconds": time.perf_counter() - t0}


def case_compare(image_path: str, block: int, rounds: int) -> dict:
    from sciconv import inference, metrics
    from sciconv.inference._blocks import predict_instances_blocks

    model = _model()
    image = np.load(image_path, mmap_mode="r")

    def whole():
        return inference.predict_instances(model, image, progress=False)

    def blocks():
        return predict_instances_blocks(model, image, block=block, catalog=False, progress=False)

    whole(), blocks()  # warm-up: traces, receptive field
    times = {"whole": [], "blocks": []}
    for _ in range(rounds):
        for name, fn in (("whole", whole), ("blocks", blocks)):
            t0 = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - t0)
            if name == "whole":
                a = result
            else:
                b = result
    score = metrics.matching(a, b, thresh=0.5)
    tw, tb = statistics.median(times["whole"]), statistics.median(times["blocks"])
    return {
        "f1": score["f1"],
        "objects_whole": score["n_true"],
        "objects_blocks": score["n_pred"],
        "pixels_differing": int(((a > 0) != (b > 0)).sum()),
        "seconds_whole": tw,
        "seconds_blocks": tb,
        "throughput_ratio": tw / tb,
        "times": times,
    }


def _spawn(*args: str) -> dict:
    """Run one case in a child; its own peak RSS from ``os.wait4`` (the child's rusage)."""
    cmd = [sys.executable, __file__, *args]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
            return result
    raise RuntimeError(f"{args} failed:\n{stderr[-3000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss", default="10240", help="sides for block-wise peak RSS, comma list")
    parser.add_argument("--whole", default="", help="sides for whole-image peak RSS, comma list")
    parser.add_argument("--compare", type=int, default=4096, help="side for F1/throughput (0: off)")
    parser.add_argument("--block", type=int, default=1024, help="block for --compare")
    parser.add_argument("--rss-block", type=int, default=4096, help="block for --rss")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--workdir", default=None, help="where the mosaics go (default: a temp dir)"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:
        if args.case == "blocks":
            result = case_blocks(args.image, args.rss_block)
        elif args.case == "whole":
            result = case_whole(args.image)
        else:
            result = case_compare(args.image, args.block, args.rounds)
        print("RESULT " + json.dumps(result))
        return 0

    sides = lambda text: [int(s) for s in text.split(",") if s]  # noqa: E731
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        work = Path(work)
        jobs = [("compare", args.compare)] if args.compare else []
        jobs += [("whole", s) for s in sides(args.whole)] + [("blocks", s) for s in sides(args.rss)]
        jobs.sort(key=lambda job: job[1])
        for kind, side in jobs:
            image = work / f"mosaic_{side}.npy"
            if not image.exists():
                for old in work.glob("mosaic_*.npy"):
                    old.unlink()
                build_mosaic(image, side)
            extra = ["--block", str(args.block), "--rounds", str(args.rounds)]
            extra += ["--rss-block", str(args.rss_block)]
            result = _spawn("--case", kind, "--image", str(image), *extra)
            print(json.dumps({"case": kind, "side": side, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
