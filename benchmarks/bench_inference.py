"""Benchmark sciconv.inference.predict_tiled against one whole-image Keras call (issue 5).

A small U-Net (``sciconv.models.segmenter``, depth 3, 16 filters) runs on a single-channel
``SIZE x SIZE`` image:

- ``whole``: one ``model.predict_on_batch`` call on the whole (pre-normalized) image: the plain
  Keras reference;
- ``loop``: a plain Keras tile loop (tile 256, overlap 64, centres kept, batches of 16), the kind
  of loop people write by hand;
- (a) ``tiled``: ``predict_tiled(tile=256, overlap=32, batch_size=16)`` (normalization and
  Gaussian blending included); target: throughput >= 0.9 * (224 / 256)**2 = 0.69 of ``whole``;
- (b) ``auto``: ``predict_tiled`` with its defaults (``tile="auto"``); target >= 0.85 of ``whole``;
- (c) ``auto`` on a ``2 * SIZE`` image: time <= 4.4 x that of ``SIZE``, peak RSS beyond the output
  array flat.

Every case runs in its own subprocess so its peak RSS (``resource.getrusage``) is its own. Times
are medians over ``--repeats`` runs after one warm-up run. Run it niced on a shared machine::

    nice -n 10 python benchmarks/bench_inference.py                 # 4096 and 8192 (the issue)
    nice -n 10 python benchmarks/bench_inference.py --size 1024 --repeats 2   # a quick look
    nice -n 10 python benchmarks/bench_inference.py --size 2048 --interleaved   # steady ratios
    python benchmarks/bench_inference.py --size 4096 --interleaved --model nuclei --repeats 3
    python benchmarks/bench_inference.py --size 2048 --interleaved --precisions  # + bfloat16 cases

End to end against StarDist (its package in its own environment, with ``tf_keras``)::

    python benchmarks/bench_inference.py --size 1024 --make-nuclei /tmp/nuclei.npy
    python benchmarks/bench_inference.py --instances /tmp/nuclei.npy --repeats 3  # sciconv only
    python -m venv /tmp/sdvenv   # its own venv: stardist pins its own TensorFlow stack
    /tmp/sdvenv/bin/pip install stardist tf_keras astropy "dask[array]" pyyaml matplotlib \
        h5py pooch regions
    TF_USE_LEGACY_KERAS=1 PYTHONPATH=. /tmp/sdvenv/bin/python benchmarks/bench_inference.py \
        --stardist /tmp/nuclei.npy --n-tiles 2 --repeats 3

(StarDist on ``tf_keras`` and sciconv on Keras 3 run alternately in that one process.)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# overlap=32 is below the U-Net's receptive field (the setting): the warning is expected
warnings.filterwarnings("ignore", message="overlap=", category=UserWarning)


def _rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_rss_mib() -> float:
    """Resident memory now (MiB; falls back to the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return _rss_mib()


def _model():
    import keras

    keras.utils.set_random_seed(0)
    try:
        from sciconv.models import segmenter

        return segmenter((None, None, 1), 2, depth=3, filters=16)
    except ImportError:  # plain Keras U-Net of the same shape
        inputs = keras.Input((None, None, 1))
        x, skips = inputs, []
        for f in (16, 32, 64):
            x = keras.layers.Conv2D(f, 3, padding="same", activation="relu")(x)
            x = keras.layers.Conv2D(f, 3, padding="same", activation="relu")(x)
            skips.append(x)
            x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
        for f, skip in zip((64, 32, 16), reversed(skips)):
            x = keras.layers.Conv2DTranspose(f, 2, strides=2)(x)
            x = keras.layers.Concatenate()([x, skip])
            x = keras.layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        return keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(x))


def _image(size: int):
    import numpy as np

    rng = np.random.default_rng(0)
    image = rng.standard_normal((size, size), dtype=np.float32)  # no float64 temporary
    image *= 5.0
    image += 100.0
    ys, xs = rng.integers(0, size, (2, size * size // 4000))
    image[ys, xs] += 500.0  # point-like sources
    return image


def _timed(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: traces the model
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _plain_loop(model, x, tile: int = 256, overlap: int = 64, batch: int = 16):
    """A hand-written Keras tile loop: reflect-pad, cut, predict in batches, keep the centres."""
    import numpy as np

    h, w = x.shape
    half = overlap // 2
    step = tile - overlap
    ny, nx = -(-h // step), -(-w // step)
    padded = np.pad(x, ((half, ny * step - h + half), (half, nx * step - w + half)), "reflect")
    out = np.zeros((ny * step, nx * step, 2), np.float32)
    coords = [(i, j) for i in range(ny) for j in range(nx)]
    for b in range(0, len(coords), batch):
        chunk = coords[b : b + batch]
        tiles = np.stack(
            [padded[i * step : i * step + tile, j * step : j * step + tile] for i, j in chunk]
        )
        pred = model.predict_on_batch(tiles[..., None])
        for (i, j), p in zip(chunk, pred):
            out[i * step : (i + 1) * step, j * step : (j + 1) * step] = p[half:-half, half:-half]
    return out[:h, :w]


def run_case(case: str, size: int, repeats: int) -> dict:
    """One measurement, in this process."""
    from sciconv import inference, preprocess

    model = _model()
    image = _image(size)
    base = _current_rss_mib()
    info: dict = {"case": case, "size": size}
    if case == "whole":
        x = preprocess.normalize(image)[None, ..., None]
        median, times = _timed(lambda: model.predict_on_batch(x), repeats)
    elif case == "loop":
        x = preprocess.normalize(image)
        median, times = _timed(lambda: _plain_loop(model, x), repeats)
    elif case == "tiled":
        kw = {"tile": 256, "overlap": 32, "batch_size": 16, "progress": False}
        median, times = _timed(lambda: inference.predict_tiled(model, image, **kw), repeats)
    elif case == "auto":
        s = inference.resolve_settings(model, (size, size))  # what tile="auto" picks
        info.update(tile=s.tile, batch_size=s.batch_size)
        median, times = _timed(
            lambda: inference.predict_tiled(model, image, progress=False), repeats
        )
    else:
        raise SystemExit(f"unknown case {case!r}")
    info.update(
        seconds=median,
        runs=times,
        mpx_per_s=size * size / median / 1e6,
        base_rss_mib=base,
        peak_rss_mib=_rss_mib(),
        output_mib=size * size * 2 * 4 / 2**20,
        input_mib=image.nbytes / 2**20,
    )
    return info


def run_interleaved(
    size: int, rounds: int, model_name: str = "unet", precisions: bool = False
) -> dict:
    """Time whole / tiled / auto alternately in one process: on a shared machine the load changes
    from minute to minute, so ratios taken within one round are far steadier than separate runs.

    ``model_name``: ``"unet"`` (a fresh segmenter, depth 3, 16 filters) or ``"nuclei"`` (the
    pretrained model, fed the same synthetic image). ``precisions=True`` adds the whole-image
    call of the model rebuilt in bfloat16 (``whole-bf16``) and the defaults forced to each
    precision (``auto-f32``, ``auto-bf16``; ``auto`` is the defaults, ``precision="auto"``).
    """
    from sciconv import inference, preprocess

    if model_name == "nuclei":
        from sciconv.models import pretrained

        model = pretrained("nuclei")
    else:
        model = _model()
    image = _image(size)
    channels = int(model.input_shape[-1])
    if channels > 1:  # the RGB-input nuclei model: the grey image in every channel
        import numpy as np

        image = np.repeat(image[..., None], channels, axis=-1)
    x = preprocess.normalize(image).reshape(1, size, size, channels)
    kw = {"tile": 256, "overlap": 32, "batch_size": 16, "progress": False}
    s = inference.resolve_settings(model, image.shape)
    cases = {
        "whole": lambda: model.predict_on_batch(x),
        "tiled": lambda: inference.predict_tiled(model, image, **kw),
        "auto": lambda: inference.predict_tiled(model, image, progress=False),
    }
    if precisions:
        fast = inference.bfloat16_model(model)
        cases["whole-bf16"] = lambda: fast.predict_on_batch(x)
        for short, precision in (("f32", "float32"), ("bf16", "bfloat16")):
            cases[f"auto-{short}"] = functools.partial(
                inference.predict_tiled, model, image, progress=False, precision=precision
            )
    for fn in cases.values():
        fn()  # warm-up / tracing
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ratios = {
        name: statistics.median(w / t for w, t in zip(times["whole"], times[name]))
        for name in cases
        if name != "whole"
    }
    best = {name: min(times["whole"]) / min(times[name]) for name in ratios}
    return {
        "size": size,
        "model": model_name,
        "times": times,
        "ratios": ratios,
        "best_ratios": best,
        "auto": {
            "tile": s.tile,
            "overlap": s.overlap,
            "batch_size": s.batch_size,
            "precision": s.precision,
        },
    }


def validate_sky(epochs: int = 8, seed: int = 11) -> list[dict]:
    """Issue 5 "done when": segmenter, predict_tiled, instances and measure on a sky field.

    A small U-Net (depth 2, 8 filters) learns the 3-sigma footprint of sources on one simulated
    2048^2 field (patches, half of them near sources); it then runs tiled on another field, and the
    catalog from ``instances`` + ``measure`` (flux-weighted centroids, RA/Dec from the WCS) is
    matched one-to-one to the truth within 3 px.
    """
    import keras
    import numpy as np
    from scipy import ndimage as ndi
    from scipy.spatial import cKDTree

    from sciconv import inference, postprocess, preprocess, simulate
    from sciconv.models import segmenter, set_metadata

    sky, sigma = 100.0, np.sqrt(100.0 * 2 + 16) / 2  # sky_field defaults: ADU, noise per pixel

    def footprint(image):
        smooth = ndi.gaussian_filter(image - sky, 1.0)
        return (smooth > 3 * sigma / (2 * np.sqrt(np.pi))).astype(np.int32)

    train, _, train_truth = simulate.sky_field((2048, 2048), seed=seed)
    x, mask = preprocess.normalize(train), footprint(train)
    x = x.reshape(train.shape)
    rng = np.random.default_rng(0)
    n, p = 600, 64
    ys, xs = rng.integers(0, 2048 - p, (2, n))
    k = rng.integers(0, len(train_truth), n // 2)
    jitter = rng.integers(-16, 16, (2, n // 2))
    ys[: n // 2] = np.clip(
        np.asarray(train_truth["y"])[k].astype(int) - p // 2 + jitter[0], 0, 2048 - p
    )
    xs[: n // 2] = np.clip(
        np.asarray(train_truth["x"])[k].astype(int) - p // 2 + jitter[1], 0, 2048 - p
    )
    patches = np.stack([x[a : a + p, b : b + p] for a, b in zip(ys, xs)])[..., None]
    targets = np.stack([mask[a : a + p, b : b + p] for a, b in zip(ys, xs)])
    keras.utils.set_random_seed(0)
    model = segmenter((None, None, 1), 2, depth=2, filters=8)
    set_metadata(model, normalization=dict(preprocess.DEFAULT_NORMALIZATION))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(patches, targets, batch_size=16, epochs=epochs, verbose=0)

    image, wcs, truth = simulate.sky_field((2048, 2048), seed=seed + 1)
    prob = inference.predict_tiled(model, image, overlap="auto", progress=False)
    labels = postprocess.instances(prob, threshold=0.5, min_size=5, min_distance=3)
    catalog = postprocess.measure(labels, intensity=image - sky, wcs=wcs)
    tree = cKDTree(np.c_[catalog["x_weighted"], catalog["y_weighted"]])
    rows = []
    for fmin in (300, 1000, 3000):
        sel = truth[truth["flux"] >= fmin]
        dist, idx = tree.query(np.c_[sel["x"], sel["y"]], distance_upper_bound=3.0)
        used: dict = {}
        for j in np.argsort(dist):  # one-to-one, nearest first
            if np.isfinite(dist[j]) and idx[j] not in used:
                used[idx[j]] = j
        hit = np.array(sorted(used.values()), dtype=int)
        cat_rows = idx[hit]
        cos = np.cos(np.radians(np.asarray(sel["dec"])[hit]))
        dra = (np.asarray(catalog["ra"])[cat_rows] - np.asarray(sel["ra"])[hit]) * cos * 3600
        ddec = (np.asarray(catalog["dec"])[cat_rows] - np.asarray(sel["dec"])[hit]) * 3600
        stars = np.nonzero(np.asarray(sel["kind"]) == "star")[0]
        rows.append(
            {
                "flux_min": fmin,
                "truth": len(sel),
                "recovered": len(hit) / len(sel),
                "stars_recovered": float(np.isin(stars, hit).mean()),
                "median_px_error": float(np.median(dist[hit])),
                "median_sky_error_arcsec": float(np.median(np.hypot(dra, ddec))),
                "catalog_rows": len(catalog),
            }
        )
    return rows


def nuclei_mosaic(size: int):
    """A ``size x size`` grey mosaic of the bundled real nuclei images (fluorescence first)."""
    from pathlib import Path

    import numpy as np
    import tifffile

    folder = Path(__file__).resolve().parents[1] / "data" / "real" / "nuclei" / "images"
    tiles = []
    for path in sorted(folder.glob("*.tif")):
        img = tifffile.imread(path).astype(np.float32)
        img = img.mean(axis=-1) if img.ndim == 3 else img
        if np.median(img) < img.mean():  # dark background (fluorescence)
            tiles.append(img / max(float(np.percentile(img, 99.8)), 1e-6))
    out = np.zeros((size, size), np.float32)
    y = x = row_h = 0
    k = 0
    while y < size:
        t = tiles[k % len(tiles)]
        k += 1
        h, w = min(t.shape[0], size - y), min(t.shape[1], size - x)
        out[y : y + h, x : x + w] = t[:h, :w]
        row_h = max(row_h, h)
        x += w
        if x >= size:
            x, y, row_h = 0, y + row_h, 0
    return out


def _stardist_model(image, nuclei: int, foreground_px: int, n_tiles: int):
    """A StarDist2D of the shape of ``2D_versatile_fluo`` whose NMS sees a realistic candidate
    count; returns ``(model, normalized image, predict_instances kwargs, facts)``.

    Trained weights are a download this machine cannot make, and with random weights the
    probability is ~0.5 everywhere, so every pixel is an NMS candidate and NMS never finishes.
    So: the ``dist`` head predicts a constant radius ``sqrt(foreground_px / nuclei / pi)`` (zero
    kernel, that bias: circles of the real nuclei's mean area), and ``prob_thresh`` is the
    quantile of the model's own probability map that leaves ``foreground_px / 4`` candidates
    (every grid-2 point inside a nucleus, as a trained model scores them); ``nms_thresh=0.3``.
    The candidates are scattered at random rather than clustered in nuclei.
    """
    import numpy as np
    from csbdeep.utils import normalize
    from stardist.models import Config2D, StarDist2D

    model = StarDist2D(Config2D(n_rays=32, grid=(2, 2), n_channel_in=1), None, None)
    dist = model.keras_model.get_layer("dist")
    kernel, bias = dist.get_weights()
    radius = float(np.sqrt(foreground_px / max(nuclei, 1) / np.pi))
    dist.set_weights([np.zeros_like(kernel), np.full_like(bias, radius)])
    x = normalize(image, 1, 99.8)
    tiles = (n_tiles, n_tiles)
    prob, _ = model.predict(x, n_tiles=tiles, show_tile_progress=False)
    inner = np.sort(prob[2:-2, 2:-2].ravel())[::-1]  # StarDist skips a 2-px border
    thresh = float(inner[min(foreground_px // 4, inner.size - 1)])
    kw = {"n_tiles": tiles, "prob_thresh": thresh, "nms_thresh": 0.3, "show_tile_progress": False}
    _, details = model.predict_instances(x, **kw)
    facts = {
        "radius": radius,
        "prob_thresh": thresh,
        "candidates": int((prob[2:-2, 2:-2] > thresh).sum()),
        "objects": len(details["points"]),
    }
    return model, x, kw, facts


def time_instances(image_path: str, repeats: int, *, stardist: bool, n_tiles: int = 2) -> dict:
    """End-to-end instance segmentation throughput (MP/s) on one saved image.

    sciconv: ``sciconv.inference.predict_instances`` with the pretrained nuclei model and its
    defaults (and ``predict_tiled`` alone). ``stardist=True`` (a Python with ``stardist`` and
    ``tf_keras`` besides sciconv's dependencies, ``TF_USE_LEGACY_KERAS=1``; StarDist then runs on
    ``tf_keras`` and sciconv on Keras 3 in the same process) adds
    ``StarDist2D.predict_instances(n_tiles=(n, n))`` (the network on tiles, thresholding, NMS,
    polygons to labels; see :func:`_stardist_model` for the weights and thresholds), and
    ``predict`` alone. All cases run alternately, ``repeats`` rounds after a warm-up; each
    gets its median time, and ``ratio`` is the median over rounds of StarDist's time / sciconv's.
    """
    import numpy as np

    from sciconv import inference
    from sciconv.models import pretrained

    image = np.load(image_path)
    nuclei_model = pretrained("nuclei")
    labels = inference.predict_instances(nuclei_model, image, progress=False)
    result = {
        "size": list(image.shape),
        "nuclei": int(labels.max()),
        "foreground_px": int((labels > 0).sum()),
    }
    cases = {
        "sciconv predict_tiled": lambda: inference.predict_tiled(
            nuclei_model, image, progress=False
        ),
        "sciconv predict_instances": lambda: inference.predict_instances(
            nuclei_model, image, progress=False
        ),
    }
    if stardist:
        model, x, kw, facts = _stardist_model(
            image, result["nuclei"], result["foreground_px"], n_tiles
        )
        result.update(n_tiles=[n_tiles, n_tiles], **facts)
        tiles = kw["n_tiles"]
        cases["stardist predict"] = lambda: model.predict(
            x, n_tiles=tiles, show_tile_progress=False
        )
        cases["stardist predict_instances"] = lambda: model.predict_instances(x, **kw)
    for fn in cases.values():
        fn()  # warm-up: traces the models
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        median = statistics.median(ts)
        result[name] = {"seconds": median, "runs": ts, "mpx_per_s": image.size / median / 1e6}
    if stardist:
        for what in ("predict_instances", "predict"):
            ours = times[
                "sciconv predict_instances"
                if what == "predict_instances"
                else "sciconv predict_tiled"
            ]
            theirs = times[f"stardist {what}"]
            result[f"ratio {what}"] = statistics.median(t / o for t, o in zip(theirs, ours))
    return result


def _spawn(case: str, size: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--size", str(size), "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"case {case} at {size} failed:\n{done.stderr[-3000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="image side (default 4096)")
    parser.add_argument("--big", type=int, default=None, help="side for (c); default 2 * size")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument("--skip-big", action="store_true", help="skip (c)")
    parser.add_argument("--skip-loop", action="store_true", help="skip the plain Keras loop")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--interleaved",
        action="store_true",
        help="only time whole/tiled/auto alternately in one process (steadier ratios under load)",
    )
    parser.add_argument(
        "--validate-sky",
        action="store_true",
        help="only run the sky-field recovery check (train a small U-Net, tile, measure, match)",
    )
    parser.add_argument(
        "--model",
        choices=("unet", "nuclei"),
        default="unet",
        help="--interleaved: a fresh U-Net (default) or the pretrained nuclei model",
    )
    parser.add_argument(
        "--precisions",
        action="store_true",
        help="--interleaved: add the bfloat16 whole-image call and the defaults forced to "
        "float32 and to bfloat16",
    )
    parser.add_argument("--make-nuclei", help="write a --size mosaic of real nuclei to this .npy")
    parser.add_argument(
        "--instances", help="time sciconv predict_instances (pretrained nuclei) on this .npy"
    )
    parser.add_argument(
        "--stardist",
        help="time sciconv and StarDist predict_instances alternately on this .npy (a Python "
        "with stardist and tf_keras, TF_USE_LEGACY_KERAS=1)",
    )
    parser.add_argument(
        "--n-tiles", type=int, default=2, help="--stardist: StarDist n_tiles per axis (default 2)"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.validate_sky:
        for row in validate_sky():
            print(
                f"flux >= {row['flux_min']:>5} ADU: {row['truth']} truth sources, recovered "
                f"{row['recovered']:.3f} (stars {row['stars_recovered']:.3f}), median position "
                f"error {row['median_px_error']:.2f} px, median RA/Dec error "
                f"{row['median_sky_error_arcsec']:.3f} arcsec; {row['catalog_rows']} catalog rows"
            )
        return 0
    if args.make_nuclei:
        import numpy as np

        np.save(args.make_nuclei, nuclei_mosaic(args.size))
        return 0
    if args.instances or args.stardist:
        r = time_instances(
            args.instances or args.stardist,
            args.repeats,
            stardist=bool(args.stardist),
            n_tiles=args.n_tiles,
        )
        print(json.dumps(r), f"load average {os.getloadavg()}")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(r, fh, indent=2)
        return 0
    if args.case:
        print("RESULT " + json.dumps(run_case(args.case, args.size, args.repeats)), flush=True)
        return 0
    if args.interleaved:
        r = run_interleaved(args.size, args.repeats, args.model, args.precisions)
        print(f"model {r['model']}; defaults pick {r['auto']}")
        for name, ts in r["times"].items():
            print(f"{name:>6} {args.size}^2: " + ", ".join(f"{t:.2f}" for t in ts) + " s")
        for name, ratio in r["ratios"].items():
            print(
                f"  {name}: throughput / whole-image call: median per round {ratio:.2f}, "
                f"best time vs best time {r['best_ratios'][name]:.2f}"
            )
        print(f"load average during the run: {os.getloadavg()}")
        return 0

    big = args.big or 2 * args.size
    plan = [("whole", args.size), ("tiled", args.size), ("auto", args.size)]
    if not args.skip_loop:
        plan.insert(1, ("loop", args.size))
    if not args.skip_big:
        plan.append(("auto", big))
    results = []
    for case, size in plan:
        r = _spawn(case, size, args.repeats)
        results.append(r)
        extra = f" tile={r['tile']} batch={r['batch_size']}" if "tile" in r else ""
        print(
            f"{case:>6} {size:>5}^2: {r['seconds']:8.2f} s  {r['mpx_per_s']:6.3f} Mpx/s  "
            f"peak RSS {r['peak_rss_mib']:7.0f} MiB (+{r['peak_rss_mib'] - r['base_rss_mib']:.0f} "
            f"over start; output {r['output_mib']:.0f} MiB){extra}",
            flush=True,
        )
    whole = results[0]
    by = {(r["case"], r["size"]): r for r in results}
    print(f"\nratios (throughput / whole-image call at {args.size}^2):")
    for case, target in (("loop", None), ("tiled", 0.9 * (224 / 256) ** 2), ("auto", 0.85)):
        r = by.get((case, args.size))
        if r is None:
            continue
        ratio = whole["seconds"] / r["seconds"]
        verdict = (
            ""
            if target is None
            else f"  target >= {target:.2f}: {'ok' if ratio >= target else 'MISSED'}"
        )
        print(f"  {case:>6}: {ratio:.2f}{verdict}")
    if (("auto", big)) in by:
        small, large = by[("auto", args.size)], by[("auto", big)]
        scale = (big / args.size) ** 2
        t_ratio = large["seconds"] / small["seconds"]
        grow_small = small["peak_rss_mib"] - small["base_rss_mib"] - small["output_mib"]
        grow_large = large["peak_rss_mib"] - large["base_rss_mib"] - large["output_mib"]
        print(
            f"  (c) {big}^2 / {args.size}^2 time: {t_ratio:.2f} (pixels x{scale:.0f}; target <= "
            f"{1.1 * scale:.1f}: {'ok' if t_ratio <= 1.1 * scale else 'MISSED'}); peak RSS growth "
            f"beyond the output: {grow_small:.0f} MiB -> {grow_large:.0f} MiB"
        )
    print(f"load average during the run: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
