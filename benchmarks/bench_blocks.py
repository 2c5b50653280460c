r"""Block-wise instances on mosaics larger than memory: peak RSS, agreement, throughput.

A mosaic of real fluorescence nuclei (``data/real/nuclei``, 256 x 256 crops tiled with seeded
D4 flips) is written to disk as a ``.npy`` memory map and segmented by the pretrained nuclei model
(``sciconv.models.pretrained("nuclei")``). Every case runs in its own subprocess, so its peak
resident memory (````ru_maxrss`` of the child's rusage, ``os.wait4``) is its own.

(a) ``--rss 10240,20480``: block-wise ``predict_instances_blocks`` (labels to a ``.zarr``, the
    catalog in memory) on each side, peak RSS and time; ``--whole`` sides: the whole-image
    ``predict_instances`` path (``block`` forced off) for comparison.
(b) ``--compare 4096``: object F1 (IoU >= 0.5, ``sciconv.metrics.matching``) between the
    block-wise labels (``--block``, default 1024, so there are seams) and the whole-image labels,
    the pixels of matched objects whose labels differ, where the differences lie
    (:func:`seam_report`), and the throughput ratio block-wise / whole-image, interleaved in one
    process (median of ``--rounds``).
(c) ``--gt``: the ``--rss``/``--whole`` cases keep their labels and are scored against the
    mosaic's ground truth (the DSB2018 label crops tiled with the same flips), and against each
    other where both ran at one side, with :func:`seam_report` (blocks of ``--rss-block``): the
    differing pixels and unmatched objects by distance to the nearest block seam, beside the share
    of the image's area at that distance. ``--keep-work`` keeps the mosaic and both label images.
(d) ``--dask 4096``: the block path on a ``dask.distributed`` ``LocalCluster`` of 1 and of 2
    worker processes (one thread each), interleaved, labels checked identical; the time ratio.
(e) ``--model tiny``: a small U-Net (depth 2, 8 filters) trained for a few seconds on the crops
    (cached in the work folder) instead of the pretrained one, for sizes where the pretrained
    model is too slow on 2 cores (its objects are cruder; memory is what it measures).
    ``--model threshold``: a 1 x 1 convolution (normalized pixel > 0.5), which measures the
    memory of the block machinery itself (windows, labelling, stitching, catalog, zarr output).

    nice -n 10 python benchmarks/bench_blocks.py --compare 4096 --rss 10240 --whole 8192
    nice -n 10 python benchmarks/bench_blocks.py --rss 20480 --compare 0     # once: ~10 min
    nice -n 10 python benchmarks/bench_blocks.py --compare 0 --rss 4096 --whole 4096 --gt \
        --rss-block 2048 --workdir /tmp --keep-work
    nice -n 10 python benchmarks/bench_blocks.py --compare 0 --rss 10240,20480 --model tiny
    nice -n 10 python benchmarks/bench_blocks.py --compare 0 --rss "" --dask 4096 --model tiny
"""

from __future__ import annotations

import argparse
import contextlib
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


def _crops(kind: str) -> list[np.ndarray]:
    import tifffile

    crops = []
    for f in sorted((ROOT / "data" / "real" / "nuclei" / kind).glob("*.tif")):
        img = tifffile.imread(f)
        img = np.pad(img, [(0, max(0, CELL - n)) for n in img.shape[:2]], mode="reflect")
        crops.append(img[:CELL, :CELL])
    return crops


def build_mosaic(path: Path, size: int, seed: int = 0, truth: Path | None = None) -> Path:
    """A ``size``-square float32 ``.npy`` of 256-px real nuclei crops, written strip by strip.

    With ``truth``: also the int32 ground-truth labels there (the label crops, same flips, each
    crop's labels offset so every object has its own number).
    """
    crops = [c.astype(np.float32) for c in _crops("images")]
    gt_crops = _crops("labels") if truth is not None else None
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, size))
    gt = None
    if truth is not None:
        gt = np.lib.format.open_memmap(truth, mode="w+", dtype=np.int32, shape=(size, size))
    offset = 0
    for y in range(0, size, CELL):
        strip = np.empty((CELL, size + CELL), np.float32)
        gt_strip = np.zeros((CELL, size + CELL), np.int32)
        for x in range(0, size, CELL):
            k = rng.integers(len(crops))
            turn, flip = rng.integers(4), rng.integers(2)
            crop = np.rot90(crops[k], turn)
            strip[:, x : x + CELL] = crop[:, ::-1] if flip else crop
            if gt is not None:
                lab = np.rot90(gt_crops[k], turn).astype(np.int32)
                lab = lab[:, ::-1] if flip else lab
                if y + CELL > size or x + CELL > size:  # keep only what is inside the mosaic
                    lab = lab.copy()
                    lab[min(CELL, size - y) :, :] = 0
                    lab[:, min(CELL, size - x) :] = 0
                gt_strip[:, x : x + CELL] = np.where(lab > 0, lab + offset, 0)
                offset += int(lab.max())
        out[y : y + CELL] = strip[: min(CELL, size - y), :size]
        if gt is not None:
            gt[y : y + CELL] = gt_strip[: min(CELL, size - y), :size]
    out.flush()
    del out
    if gt is not None:
        gt.flush()
    return path


MODEL = {"name": "nuclei"}  # set from --model in each child


def _threshold_model():
    """A 1 x 1 convolution: foreground where the normalized pixel > 0.5 (no learned context)."""
    import keras

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]]),
        bias_initializer=keras.initializers.Constant([0.5, -0.5]),
    )(inputs)
    return keras.Model(inputs, keras.layers.Softmax()(logits), name="threshold")


def _model():
    if MODEL["name"] == "threshold":
        return _threshold_model()
    if MODEL["name"] == "tiny":
        from sciconv.models import load

        return load(MODEL["path"], compile=False)
    from sciconv.models import pretrained

    return pretrained("nuclei")


def train_tiny(path: Path, seed: int = 0) -> Path:
    """A depth-2, 8-filter U-Net fitted for a few seconds on 128-px patches of the crops."""
    import keras

    from sciconv import preprocess
    from sciconv.models import segmenter

    keras.utils.set_random_seed(seed)
    images = [preprocess.normalize(c.astype(np.float32)) for c in _crops("images")]
    masks = [(c > 0).astype(np.int32) for c in _crops("labels")]
    x = np.stack(
        [im[y : y + 128, x : x + 128] for im in images for y in (0, 128) for x in (0, 128)]
    )
    y = np.stack([m[r : r + 128, c : c + 128] for m in masks for r in (0, 128) for c in (0, 128)])
    model = segmenter((None, None, 1), num_classes=2, depth=2, filters=8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x[..., None], y, epochs=8, batch_size=8, verbose=0)
    model.save(path)
    return path


def case_blocks(image_path: str, block: int, keep: str | None = None) -> dict:
    """Block-wise labels (to zarr) + catalog; with ``keep``: the zarr store is left there."""
    from sciconv.inference import predict_instances_blocks

    model = _model()
    image = np.load(image_path, mmap_mode="r")
    with tempfile.TemporaryDirectory(dir=Path(image_path).parent) as tmp:
        t0 = time.perf_counter()
        _, table = predict_instances_blocks(
            model, image, block=block, out=keep or Path(tmp) / "labels.zarr", progress=False
        )
        seconds = time.perf_counter() - t0
    return {"objects": len(table), "seconds": seconds, "catalog_columns": len(table.colnames)}


def case_whole(image_path: str, keep: str | None = None) -> dict:
    """Whole-image labels; with ``keep``: saved there as ``.npy``."""
    from sciconv import inference

    model = _model()
    image = np.load(image_path, mmap_mode="r")
    inference._instances.AUTO_BLOCK_PIXELS = 2**62  # force the whole-image path
    t0 = time.perf_counter()
    labels = inference.predict_instances(model, image, progress=False)
    seconds = time.perf_counter() - t0
    if keep:
        np.save(keep, labels)
    return {"objects": int(labels.max()), "seconds": seconds}


def case_dask(image_path: str, block: int, rounds: int) -> dict:
    """1 vs 2 worker processes of a LocalCluster, interleaved; labels must be identical."""
    import warnings

    from dask import distributed

    from sciconv.inference import predict_instances_blocks

    model = _model()
    image = np.load(image_path, mmap_mode="r")
    times: dict[str, list[float]] = {"1": [], "2": []}
    results = {}
    for _ in range(rounds):
        for workers in ("1", "2"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cluster = distributed.LocalCluster(
                    n_workers=int(workers),
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            with cluster, distributed.Client(cluster) as client:
                client.run(lambda: None)  # workers up before the clock starts
                t0 = time.perf_counter()
                labels = predict_instances_blocks(
                    model, image, block=block, catalog=False, scheduler=client, progress=False
                )
                times[workers].append(time.perf_counter() - t0)
            results[workers] = labels
    t1, t2 = statistics.median(times["1"]), statistics.median(times["2"])
    return {
        "identical": bool(np.array_equal(results["1"], results["2"])),
        "objects": int(results["1"].max()),
        "seconds_1_worker": t1,
        "seconds_2_workers": t2,
        "speedup_2_over_1": t1 / t2,
        "times": times,
    }


SEAM_BINS = (8, 32, 96, 256)  # distance bands (px) to the nearest block seam


def _seam_distance(yy: np.ndarray, xx: np.ndarray, shape, block: int) -> np.ndarray:
    """Distance (px) of pixels to the nearest block seam (``k * block`` inside the image)."""

    def axis(v, n):
        if n <= block:
            return np.full(v.shape, np.inf)
        k = np.clip(np.rint(v / block), 1, -(-n // block) - 1)
        return np.abs(v - k * block)

    return np.minimum(axis(np.asarray(yy, float), shape[0]), axis(np.asarray(xx, float), shape[1]))


def _bands(dist: np.ndarray) -> dict:
    edges = [-0.5, *SEAM_BINS, np.inf]
    counts = np.histogram(dist, bins=edges)[0].tolist()
    names = [f"<={b}" for b in SEAM_BINS] + [f">{SEAM_BINS[-1]}"]
    return dict(zip(names, counts, strict=True))


def seam_report(a: np.ndarray, b: np.ndarray, block: int) -> dict:
    """Where two label images of one image disagree, by distance to the nearest block seam.

    ``a`` (reference, e.g. the whole-image call) and ``b`` (block-wise) are matched one to one
    (IoU > 0.5). Reported per distance band (:data:`SEAM_BINS`, pixels from the nearest seam):
    the share of the image's area in the band (what a cause unrelated to seams would give), the
    differing pixels (foreground in one only, or in two matched objects that disagree, i.e. the
    boundary between touching objects drawn differently), and the centroids of the objects left
    unmatched in ``a`` and in ``b``.
    """
    from scipy import ndimage as ndi

    a, b = np.asarray(a), np.asarray(b)
    fa, fb = a.ravel(), b.ravel()
    fg = (fa > 0) & (fb > 0)
    pairs, counts = np.unique(np.stack([fa[fg], fb[fg]]), axis=1, return_counts=True)
    area_a = np.bincount(fa, minlength=int(a.max()) + 1)
    area_b = np.bincount(fb, minlength=int(b.max()) + 1)
    iou = counts / (area_a[pairs[0]] + area_b[pairs[1]] - counts)
    ok = iou > 0.5
    lut = np.full(area_a.size, -1, np.int64)
    lut[0] = 0
    lut[pairs[0][ok]] = pairs[1][ok]
    flip = (a > 0) != (b > 0)
    swap = (a > 0) & (b > 0) & (lut[a] != b)
    out = {"block": block}
    yy, xx = np.mgrid[0 : a.shape[0] : 8, 0 : a.shape[1] : 8]  # the area, sampled
    everywhere = _bands(_seam_distance(yy, xx, a.shape, block))
    total = sum(everywhere.values())
    out["area_share"] = {k: round(v / total, 4) for k, v in everywhere.items()}
    for name, where in (("fg_bg_flips", flip), ("matched_label_swaps", swap)):
        ys, xs = np.nonzero(where)
        out[name] = {"total": int(ys.size), **_bands(_seam_distance(ys, xs, a.shape, block))}
    for name, labels, matched in (
        ("unmatched_in_reference", a, pairs[0][ok]),
        ("unmatched_in_blocks", b, pairs[1][ok]),
    ):
        ids = np.setdiff1d(np.arange(1, int(labels.max()) + 1), matched)
        ids = ids[np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)[ids] > 0]
        if ids.size:
            cy, cx = np.array(ndi.center_of_mass(labels > 0, labels, ids)).reshape(-1, 2).T
        else:
            cy = cx = np.zeros(0)
        out[name] = {"total": int(ids.size), **_bands(_seam_distance(cy, cx, a.shape, block))}
    return out


def _tie_pixels(a: np.ndarray, b: np.ndarray, thresh: float = 0.5) -> dict:
    """Pixels where two label images disagree inside objects matched one to one (IoU > 0.5)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    fg = (a > 0) & (b > 0)
    pairs, counts = np.unique(np.stack([a[fg], b[fg]]), axis=1, return_counts=True)
    area_a, area_b = np.bincount(a), np.bincount(b)
    iou = counts / (area_a[pairs[0]] + area_b[pairs[1]] - counts)
    matched = iou > thresh
    ma, mb = pairs[0][matched], pairs[1][matched]
    differing = int((area_a[ma] + area_b[mb] - 2 * counts[matched]).sum())
    return {"matched": int(matched.sum()), "matched_pixels_differing": differing}


def case_compare(image_path: str, block: int, rounds: int) -> dict:
    from sciconv import inference, metrics
    from sciconv.inference import predict_instances_blocks

    model = _model()
    image = np.load(image_path, mmap_mode="r")

    def whole():
        return inference.predict_instances(model, image, progress=False)

    def blocks():
        return predict_instances_blocks(model, image, block=block, catalog=False, progress=False)

    if rounds > 0:
        whole(), blocks()  # warm-up: traces, receptive field
    rounds = max(rounds, 1)
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
        **_tie_pixels(a, b),
        "seams": seam_report(a, b, block),
        "seconds_whole": tw,
        "seconds_blocks": tb,
        "throughput_ratio": tw / tb,
        "times": times,
    }


def _anon_peak_sampler() -> list[int]:
    """The peak ``RssAnon`` (KiB) of this process, sampled every 0.1 s by a daemon thread.

    ``ru_maxrss`` also counts the pages of a memory-mapped input file the process has read: clean
    file pages the kernel drops under memory pressure, so they grow with the input without being
    memory the run needs. ``RssAnon`` is the process's own memory (arrays, the model, buffers).
    """
    import threading

    peak = [0]

    def sample():
        while True:
            try:
                with open("/proc/self/status") as status:
                    for line in status:
                        if line.startswith("RssAnon:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
                            break
            except OSError:
                return
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    return peak


def spawn_case(*args: str, script: str = __file__) -> dict:
    """Run one case of ``script`` in a child; its own peak RSS from ``os.wait4`` (its rusage).

    The child prints one ``RESULT {json}`` line; ``peak_rss_mib`` is added to it. A child that
    fails (or prints no result) raises with the end of its stderr.
    """
    cmd = [sys.executable, script, *args]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode == 0:
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
    parser.add_argument("--rounds", type=int, default=2, help="0: one round, no warm-up")
    parser.add_argument("--gt", action="store_true", help="score labels against ground truth")
    parser.add_argument("--dask", type=int, default=0, help="side for the 1 vs 2 worker ratio")
    parser.add_argument("--model", choices=("nuclei", "tiny", "threshold"), default="nuclei")
    parser.add_argument(
        "--workdir", default=None, help="where the mosaics go (default: a temp dir)"
    )
    parser.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the work folder (mosaics, kept labels) in --workdir and print its path",
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--keep", help=argparse.SUPPRESS)
    parser.add_argument("--model-path", help=argparse.SUPPRESS)
    parser.add_argument("--other", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:
        MODEL.update(name=args.model, path=args.model_path)
        anon = _anon_peak_sampler()
        if args.case == "build":
            truth = Path(args.keep) if args.keep else None
            result = {"path": str(build_mosaic(Path(args.image), args.compare, truth=truth))}
        elif args.case == "train":
            result = {"path": str(train_tiny(Path(args.image)))}
        elif args.case == "score":
            result = _scores(args.image, args.keep, args.other, args.rss_block)
        elif args.case == "blocks":
            result = case_blocks(args.image, args.rss_block, args.keep)
        elif args.case == "whole":
            result = case_whole(args.image, args.keep)
        elif args.case == "dask":
            result = case_dask(args.image, args.block, max(args.rounds, 1))
        else:
            result = case_compare(args.image, args.block, args.rounds)
        result["peak_anon_mib"] = anon[0] / 1024  # RssAnon, sampled every 0.1 s
        print("RESULT " + json.dumps(result))
        return 0

    # the parent stays small: Linux carries a parent's peak RSS into a child it forks (ru_maxrss
    # survives exec), so training and scoring run in children too
    sides = lambda text: [int(s) for s in text.split(",") if s]  # noqa: E731
    if args.keep_work:
        folder = contextlib.nullcontext(tempfile.mkdtemp(prefix="bench_blocks.", dir=args.workdir))
    else:
        folder = tempfile.TemporaryDirectory(dir=args.workdir)
    with folder as work:
        work = Path(work)
        if args.keep_work:
            print(json.dumps({"work": str(work)}), flush=True)
        common = ["--model", args.model]
        if args.model == "tiny":
            trained = spawn_case("--case", "train", "--image", str(work / "tiny.keras"))
            common += ["--model-path", trained["path"]]
        jobs = [("compare", args.compare)] if args.compare else []
        jobs += [("dask", args.dask)] if args.dask else []
        jobs += [("whole", s) for s in sides(args.whole)] + [("blocks", s) for s in sides(args.rss)]
        jobs.sort(key=lambda job: job[1])
        kept: dict[tuple[str, int], Path] = {}
        for kind, side in jobs:
            image = work / f"mosaic_{side}.npy"
            truth = work / f"truth_{side}.npy"
            if not image.exists():
                for old in [*work.glob("mosaic_*.npy"), *work.glob("truth_*.npy")]:
                    old.unlink()
                build = ["--case", "build", "--image", str(image), "--compare", str(side)]
                spawn_case(*build, *(["--keep", str(truth)] if args.gt else []))
            extra = ["--block", str(args.block), "--rounds", str(args.rounds)]
            extra += ["--rss-block", str(args.rss_block), *common]
            if args.gt and kind in ("blocks", "whole"):
                kept[kind, side] = work / f"{kind}_{side}.{'zarr' if kind == 'blocks' else 'npy'}"
                extra += ["--keep", str(kept[kind, side])]
            result = spawn_case("--case", kind, "--image", str(image), *extra)
            if (kind, side) in kept:
                other = kept.get(("whole" if kind == "blocks" else "blocks", side))
                scored = ["--case", "score", "--image", str(truth), "--keep", str(kept[kind, side])]
                scored += ["--other", str(other)] if other is not None else []
                scored += ["--rss-block", str(args.rss_block)]
                scores = spawn_case(*scored)
                result.update({k: v for k, v in scores.items() if not k.startswith("peak_")})
            print(
                json.dumps({"case": kind, "side": side, "model": args.model, **result}), flush=True
            )
    return 0


def _load_labels(path: Path) -> np.ndarray:
    if path.suffix == ".zarr":
        import zarr

        return zarr.open_array(str(path), mode="r")[:]
    return np.load(path)


def _scores(truth: str, labels_path: str, other: str | None, block: int) -> dict:
    """F1 against the ground truth; against the other path's labels when it ran at this side.

    Block-wise labels scored against the whole-image ones also get :func:`seam_report`.
    """
    from sciconv import metrics

    labels = _load_labels(Path(labels_path))
    gt = np.load(truth)
    score = metrics.matching(gt, labels, thresh=0.5)
    out = {"f1_vs_truth": score["f1"], "objects_truth": score["n_true"]}
    if other is not None and Path(other).exists():
        ref = _load_labels(Path(other))
        pair = metrics.matching(ref, labels, thresh=0.5)
        out.update(f1_vs_other_path=pair["f1"], **_tie_pixels(ref, labels))
        out["pixels_differing"] = int(((ref > 0) != (labels > 0)).sum())
        if Path(labels_path).suffix == ".zarr":  # blocks vs the whole-image reference
            out["seams"] = seam_report(ref, labels, block)
    return out


if __name__ == "__main__":
    sys.exit(main())
