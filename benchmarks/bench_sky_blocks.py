"""Sky catalog of a mosaic, block by block vs the in-memory whole-image run (issue 16, sky target).

The bundled simulated field (``data/sky/field.fits.fz``, 2048 x 2048, 650 truth sources) is
tiled ``--reps`` x ``--reps`` (4 x 4: 8192 x 8192) with its sky level (``SKYLEVEL``) subtracted,
written as a float32 FITS file with one TAN WCS covering the whole mosaic (the field's pixel
scale, centred on the mosaic), and its truth catalog shifted per tile (RA/Dec recomputed from the
mosaic WCS).

The detector is a small U-Net (depth 2, 8 filters) that learns the 3-sigma footprint of the
sources on a field simulated with another seed, for a few epochs; it is cached in ``--cache``,
with its normalization (percentile 1-99.8) and post-processing (watershed, threshold 0.5,
min_size 5, min_distance 3) recorded in its metadata, so both paths apply the same ones.

(a) whole: the mosaic (or its top-left ``--whole`` square) read into memory, the whole-image
    ``predict_instances`` (block path forced off) + ``postprocess.measure(intensity=image,
    wcs=wcs)``.
(b) blocks: ``sciconv.inference.predict_mosaic`` on the FITS file (read lazily, blocks of
    ``--block`` px, labels to zarr, catalog to ECSV) at every side in ``--sides`` (a crop file
    per side).

Each case runs in its own child process (peak RSS from its rusage). Reported: sources found,
completeness vs the truth (one-to-one matching, nearest first, within ``--radius`` px), the
median/max position error vs the truth (pixels and arcsec), and block vs whole where both ran at
one side: sources found by one path only, the max |dRA cos Dec| and |dDec| (arcsec) and the
largest relative flux difference of matched sources, and where the labels differ, by distance to
the nearest block seam (``bench_blocks.seam_report``).

    nice -n 10 python benchmarks/bench_sky_blocks.py                          # 8192^2, both paths
    nice -n 10 python benchmarks/bench_sky_blocks.py --sides 4096,8192 --whole 4096
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "data" / "sky" / "field.fits.fz"
TRUTH = ROOT / "data" / "sky" / "truth.ecsv"
POSTPROCESS = {"threshold": 0.5, "min_size": 5, "min_distance": 3}


def train_detector(path: Path, *, epochs: int = 8, seed: int = 11) -> Path:
    """A depth-2, 8-filter U-Net that learns source footprints on a field of another seed."""
    import keras
    from scipy import ndimage as ndi

    from sciconv import preprocess, simulate
    from sciconv.models import segmenter, set_metadata

    sky, sigma = 100.0, np.sqrt(100.0 * 2 + 16) / 2  # sky_field defaults: ADU, noise per pixel
    train, _, truth = simulate.sky_field((2048, 2048), seed=seed)
    smooth = ndi.gaussian_filter(train - sky, 1.0)
    mask = (smooth > 3 * sigma / (2 * np.sqrt(np.pi))).astype(np.int32)
    x = preprocess.normalize(train).reshape(train.shape)
    rng = np.random.default_rng(0)
    n, p = 600, 64
    ys, xs = rng.integers(0, 2048 - p, (2, n))
    k = rng.integers(0, len(truth), n // 2)  # half of the patches near a source
    jitter = rng.integers(-16, 16, (2, n // 2))
    ys[: n // 2] = np.clip(np.asarray(truth["y"])[k].astype(int) - p // 2 + jitter[0], 0, 2048 - p)
    xs[: n // 2] = np.clip(np.asarray(truth["x"])[k].astype(int) - p // 2 + jitter[1], 0, 2048 - p)
    patches = np.stack([x[a : a + p, b : b + p] for a, b in zip(ys, xs, strict=True)])[..., None]
    targets = np.stack([mask[a : a + p, b : b + p] for a, b in zip(ys, xs, strict=True)])
    keras.utils.set_random_seed(0)
    model = segmenter((None, None, 1), 2, depth=2, filters=8, name="sky_blocks_detector")
    set_metadata(
        model, normalization=dict(preprocess.DEFAULT_NORMALIZATION), postprocess=POSTPROCESS
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(patches, targets, batch_size=16, epochs=epochs, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def mosaic_wcs(field_wcs, shape: tuple[int, int]):
    """A TAN WCS with the field's pixel matrix and reference sky position, at the mosaic centre.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> mosaic_wcs(WCS(naxis=2), (8192, 8192)).wcs.crpix.tolist()
    [4096.5, 4096.5]
    """
    wcs = field_wcs.deepcopy()
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    return wcs


def build_mosaic(folder: Path, reps: int, sides: list[int]) -> dict:
    """Write ``mosaic_SIDE.fits`` (float32, sky subtracted) and ``truth_SIDE.ecsv`` per side."""
    from astropy.io import fits
    from astropy.table import Table, vstack

    from sciconv import io

    field = io.read(FIELD)
    data = np.asarray(field.data[..., 0], dtype=np.float32) - np.float32(field.header["SKYLEVEL"])
    h, w = data.shape
    truth = Table.read(TRUTH)
    big = (h * reps, w * reps)
    wcs = mosaic_wcs(field.wcs, big)
    tiles = []
    for i in range(reps):
        for j in range(reps):
            t = truth.copy()
            t["x"] = t["x"] + j * w
            t["y"] = t["y"] + i * h
            t["tile"] = i * reps + j
            tiles.append(t)
    truth = vstack(tiles)
    sky = wcs.pixel_to_world(np.asarray(truth["x"]), np.asarray(truth["y"]))
    truth["ra"], truth["dec"] = sky.ra.deg, sky.dec.deg
    out = {}
    for side in sides:
        if side > big[0] or side > big[1]:
            raise SystemExit(f"side {side} is larger than the {big} mosaic; raise --reps")
        path = folder / f"mosaic_{side}.fits"
        header = fits.Header()
        header["SIMPLE"], header["BITPIX"], header["NAXIS"] = True, -32, 2
        header["NAXIS1"], header["NAXIS2"] = side, side
        header.update(wcs.to_header())  # a top-left crop keeps the mosaic's pixel -> sky mapping
        header["BUNIT"] = "adu"
        header["HISTORY"] = f"bench_sky_blocks: {FIELD.name} tiled {reps}x{reps}, sky subtracted"
        stream = fits.StreamingHDU(path, header)  # the data strip by strip, never whole
        for r0 in range(0, side, h):
            rows = data[: min(h, side - r0)]
            stream.write(np.ascontiguousarray(np.tile(rows, (1, -(-side // w)))[:, :side]))
        stream.close()
        inside = (truth["x"] < side - 0.5) & (truth["y"] < side - 0.5)
        truth[inside].write(folder / f"truth_{side}.ecsv", overwrite=True)
        out[side] = str(path)
    return out


def case_blocks(image: str, model_path: str, block: int, out_dir: str) -> dict:
    from sciconv.inference import predict_mosaic
    from sciconv.models import load

    model = load(model_path, compile=False)
    t0 = time.perf_counter()
    outs = predict_mosaic(model, image, out_dir, block=block, progress=False)
    return {"seconds": time.perf_counter() - t0, **{k: str(v) for k, v in outs.items()}}


def case_whole(image: str, model_path: str, out_dir: str, source: str = "memory") -> dict:
    """The whole-image path; ``source``: the pixels in memory, or a memory map of the file.

    (Normalization limits come from every pixel of an in-memory array but from a subsample of a
    memory map or lazy image larger than 1e6 pixels, ``sciconv.inference._source``.)
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    from sciconv import inference, postprocess
    from sciconv.models import load

    model = load(model_path, compile=False)
    with fits.open(image) as hdul:
        wcs = WCS(hdul[0].header)
        if source == "memory":
            data = np.asarray(hdul[0].data, dtype=np.float32)  # in memory, native byte order
        else:
            offset, shape = hdul.fileinfo(0)["datLoc"], hdul[0].data.shape
    if source != "memory":
        data = np.memmap(image, dtype=">f4", mode="r", offset=offset, shape=shape)
    inference._instances.AUTO_BLOCK_PIXELS = 2**62  # force the whole-image path
    t0 = time.perf_counter()
    labels = inference.predict_instances(model, data, progress=False)
    table = postprocess.measure(labels, intensity=data, wcs=wcs)
    seconds = time.perf_counter() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "labels.npy", labels)
    table.write(out / "catalog.ecsv", overwrite=True)
    return {
        "seconds": seconds,
        "labels": str(out / "labels.npy"),
        "catalog": str(out / "catalog.ecsv"),
    }


def match(ax, ay, bx, by, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches (nearest first) of points a to points b within ``radius``."""
    from scipy.spatial import cKDTree

    if len(ax) == 0 or len(bx) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    pairs = cKDTree(np.c_[bx, by]).sparse_distance_matrix(
        cKDTree(np.c_[ax, ay]), radius, output_type="ndarray"
    )
    order = np.argsort(pairs["v"], kind="stable")
    used_a, used_b, ia, ib = set(), set(), [], []
    for k in order:
        b, a = int(pairs["i"][k]), int(pairs["j"][k])
        if a not in used_a and b not in used_b:
            used_a.add(a), used_b.add(b)
            ia.append(a), ib.append(b)
    return np.array(ia, int), np.array(ib, int)


def _sky_offsets(ra1, dec1, ra2, dec2) -> tuple[np.ndarray, np.ndarray]:
    """(dRA cos Dec, dDec) in arcsec."""
    dra = (np.asarray(ra1) - np.asarray(ra2) + 180.0) % 360.0 - 180.0
    return dra * np.cos(np.radians(np.asarray(dec2))) * 3600.0, (
        np.asarray(dec1) - np.asarray(dec2)
    ) * 3600.0


def score_truth(catalog, truth, radius: float) -> dict:
    """Completeness, purity and position errors of a catalog against the truth."""
    ia, ib = match(truth["x"], truth["y"], catalog["x_weighted"], catalog["y_weighted"], radius)
    dx = np.asarray(catalog["x_weighted"])[ib] - np.asarray(truth["x"])[ia]
    dy = np.asarray(catalog["y_weighted"])[ib] - np.asarray(truth["y"])[ia]
    dpx = np.hypot(dx, dy)
    dra, ddec = _sky_offsets(
        np.asarray(catalog["ra"])[ib],
        np.asarray(catalog["dec"])[ib],
        np.asarray(truth["ra"])[ia],
        np.asarray(truth["dec"])[ia],
    )
    dsky = np.hypot(dra, ddec)
    bright = np.asarray(truth["flux"]) >= 1000
    found = np.zeros(len(truth), bool)
    found[ia] = True
    return {
        "sources": len(catalog),
        "truth": len(truth),
        "matched": int(ia.size),
        "completeness": float(found.mean()),
        "completeness_flux_ge_1000": float(found[bright].mean()),
        "purity": float(ia.size / max(len(catalog), 1)),
        "median_error_px": float(np.median(dpx)),
        "max_error_px": float(dpx.max()),
        "median_error_arcsec": float(np.median(dsky)),
        "max_error_arcsec": float(dsky.max()),
        "found": found,
    }


def compare_paths(whole, blocks, labels_whole: str, labels_blocks: str, block: int) -> dict:
    """Block-wise vs whole-image: sources found by one only, position and flux differences."""
    import zarr
    from bench_blocks import seam_report

    ia, ib = match(
        whole["x_weighted"], whole["y_weighted"], blocks["x_weighted"], blocks["y_weighted"], 0.5
    )
    w, b = whole[ia], blocks[ib]
    dra, ddec = _sky_offsets(b["ra"], b["dec"], w["ra"], w["dec"])
    flux = np.abs(np.asarray(b["flux_sum"]) - np.asarray(w["flux_sum"]))
    rel = flux / np.maximum(np.abs(np.asarray(w["flux_sum"])), 1e-30)
    a = np.load(labels_whole, mmap_mode="r")
    z = zarr.open_array(labels_blocks, mode="r")[:]
    return {
        "only_whole": int(len(whole) - ia.size),
        "only_blocks": int(len(blocks) - ib.size),
        "max_abs_dra_cosdec_arcsec": float(np.abs(dra).max()) if ia.size else 0.0,
        "max_abs_ddec_arcsec": float(np.abs(ddec).max()) if ia.size else 0.0,
        "max_abs_dx_px": float(np.abs(np.asarray(b["x_weighted"]) - w["x_weighted"]).max()),
        "max_rel_flux_diff": float(rel.max()) if ia.size else 0.0,
        "area_differs": int((np.asarray(b["area"]) != np.asarray(w["area"])).sum()),
        "labels_identical_up_to_numbering": bool(
            ((np.asarray(a) > 0) == (z > 0)).all()
            and np.unique(np.stack([np.asarray(a)[z > 0], z[z > 0]]), axis=1).shape[1]
            == int(z.max())
            == int(np.asarray(a).max())
        ),
        "seams": seam_report(np.asarray(a), z, block),
    }


def _spawn(*args: str) -> dict:
    from bench_blocks import spawn_case

    return spawn_case(*args, script=__file__)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4, help="tiles per side (4: 8192^2)")
    parser.add_argument("--sides", default="8192", help="block-wise sides, comma list")
    parser.add_argument("--whole", default="8192", help="whole-image sides, comma list")
    parser.add_argument("--block", type=int, default=1536, help="block core side (seams!)")
    parser.add_argument(
        "--whole-input",
        default="memory",
        help="the whole-image path's pixels, comma list: memory (limits from every pixel) and/or "
        "memmap, a memory map of the FITS file (limits from the subsample the lazy block path "
        "takes)",
    )
    parser.add_argument("--radius", type=float, default=2.0, help="truth match radius (px)")
    parser.add_argument("--epochs", type=int, default=8, help="detector training epochs")
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "sciconv_bench_sky" / "detector.keras"),
        help="the trained detector (trained once, then reused)",
    )
    parser.add_argument("--workdir", default=None, help="where the mosaics go (default: temp)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case == "train":
        print(
            "RESULT "
            + json.dumps({"path": str(train_detector(Path(args.out), epochs=args.epochs))})
        )
        return 0
    if args.case == "blocks":
        print("RESULT " + json.dumps(case_blocks(args.image, args.cache, args.block, args.out)))
        return 0
    if args.case == "whole":
        result = case_whole(args.image, args.cache, args.out, args.whole_input)
        print("RESULT " + json.dumps(result))
        return 0

    from astropy.table import Table

    sides = lambda text: [int(s) for s in text.split(",") if s]  # noqa: E731
    block_sides, whole_sides = sides(args.sides), sides(args.whole)
    inputs = [s for s in args.whole_input.split(",") if s]
    if not set(inputs) <= {"memory", "memmap"}:
        parser.error(f"--whole-input takes memory and/or memmap; got {args.whole_input!r}")
    if not Path(args.cache).exists():
        t0 = time.perf_counter()
        _spawn("--case", "train", "--out", args.cache, "--epochs", str(args.epochs))
        print(json.dumps({"trained": args.cache, "seconds": time.perf_counter() - t0}), flush=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        work = Path(work)
        images = build_mosaic(work, args.reps, sorted(set(block_sides + whole_sides)))
        results: dict[tuple, dict] = {}
        for side in sorted(set(block_sides + whole_sides)):
            truth = Table.read(work / f"truth_{side}.ecsv")
            cases = [("blocks", None)] if side in block_sides else []
            cases += [("whole", source) for source in inputs] if side in whole_sides else []
            for kind, source in cases:
                extra = ["--block", str(args.block)] if kind == "blocks" else []
                extra += ["--whole-input", source] if kind == "whole" else []
                r = _spawn(
                    "--case", kind, "--image", images[side], "--cache", args.cache,
                    "--out", str(work / f"{kind}_{source}_{side}"), *extra,
                )  # fmt: skip
                catalog = Table.read(r["catalog"])
                scores = score_truth(catalog, truth, args.radius)
                r["found"] = scores.pop("found")
                results[kind, source, side] = {**r, "table": catalog}
                line = {"case": kind, "side": side, "seconds": round(r["seconds"], 1)}
                if kind == "whole":
                    line["input"] = source
                line["peak_rss_mib"] = round(r["peak_rss_mib"])
                line.update(
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
                )
                print(json.dumps(line), flush=True)
            for source in inputs:
                if ("blocks", None, side) not in results or ("whole", source, side) not in results:
                    continue
                w, b = results["whole", source, side], results["blocks", None, side]
                diff = compare_paths(w["table"], b["table"], w["labels"], b["labels"], args.block)
                diff["truth_found_by_one_path_only"] = int((w["found"] != b["found"]).sum())
                head = {"case": "blocks_vs_whole", "side": side, "whole_input": source}
                print(json.dumps({**head, **diff}), flush=True)
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
