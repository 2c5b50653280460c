"""Post-processing levers of the pretrained nuclei model, measured on cached probability maps.

The network runs once per validation image (``benchmarks/real_nuclei.py``'s division: 82 fluo,
14 colour, 3 grey brightfield images); its probability maps ``(H, W, 3)`` (background, interior,
touching band) are cached under ``--cache`` (one float32 ``.npy`` per image), plain and with D4
test-time augmentation, so each post-processing setting is then measured without the network.

Every lever is chosen on one half of the validation division and reported on the other (each
modality's ids sorted by ``sha256(id + ":levers")``, alternate ones to each half: fluo 41/41,
colour 7/7, grey 2/1), because tuning on the images that are reported overfits. The figures:

- AP = TP / (TP + FP + FN) at each IoU 0.5, 0.55, ..., 0.9 (``sciconv.metrics``, the DSB2018 /
  StarDist rule), averaged over the images of a modality (as ``real_nuclei.py`` reports it);
- F1 and panoptic quality (PQ = sum of matched IoUs / (TP + FP/2 + FN/2)) at IoU 0.5, pooled over
  the images of a modality.

Levers (all on the same cached maps):

``threshold`` / ``seed_threshold`` / ``min_size``  the recorded settings, swept;
``seeds``       markers of the watershed: ``"threshold"`` (the recorded rule: connected regions of
                ``interior > seed_threshold``), ``"peaks"`` (local maxima of the smoothed interior
                probability, at least ``min_distance`` apart), ``"distance"`` (peaks of the
                distance transform of the ``interior > seed_threshold`` mask, which also splits
                seeds that merged);
``sigma``       Gaussian smoothing of the interior probability before seeding and flooding;
``seed_min``    seeds smaller than this many pixels are dropped (their pixels flood from the
                neighbours);
``fill_holes``  holes inside an object are given to it;
``tta``         D4 test-time augmentation of the probability map (8 network passes);
``ensemble``    the shipped model's map averaged with another model's (``--ensemble M.keras``,
                weight ``w`` of the other model per ``--ensemble-weights``), thresholds re-chosen
                for each weight (the ``thresholds`` grid).

    nice -n 10 python benchmarks/real_nuclei_levers.py               # cache (once), then all levers
    nice -n 10 python benchmarks/real_nuclei_levers.py --levers baseline --tta --tta-fluo 24
    nice -n 10 python benchmarks/real_nuclei_levers.py --levers baseline --ensemble OTHER.keras
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from scipy import ndimage as ndi

from sciconv.postprocess import with_unmarked  # the rule instances() uses

ROOT = Path(__file__).resolve().parents[1]
IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))
MODALITIES = ("fluo", "color", "gray_bright")


def _real_nuclei():
    spec = importlib.util.spec_from_file_location(
        "real_nuclei", ROOT / "benchmarks" / "real_nuclei.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------ cache
SHIPPED = ROOT / "sciconv" / "pretrained" / "nuclei.keras"


def cached_probs(
    eval_set,
    cache: Path,
    *,
    tta: str | None,
    limit: dict | None = None,
    weights: Path = SHIPPED,
) -> dict:
    """{id: (H, W, 3) float32} of the pretrained model, read from ``cache`` or computed once.

    One ``.npy`` per image under ``cache/<model digest>/<plain|d4>/`` (kept as soon as it is
    made, so an interrupted run resumes; the digest of the shipped weights file keeps the maps of
    a replaced model out); colour and grey images first. ``limit``: {modality: at most this many
    images} (the D4 maps cost 8 network passes each). ``weights``: another ``.keras`` nuclei
    model (its own input transform and normalization).
    """
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    folder = cache / digest / f"{tta or 'plain'}-float32"
    folder.mkdir(parents=True, exist_ok=True)
    order = sorted(eval_set, key=lambda e: e[0] == "fluo")
    if limit:
        order = [e for e in order if e[1] in _first(order, limit)]
    todo = [e for e in order if not (folder / f"{e[1]}.npy").is_file()]
    if todo:
        import sciconv as sc
        from sciconv.preprocess import apply_input_transform

        model = sc.models.pretrained("nuclei") if weights == SHIPPED else sc.models.load(weights)
        transform = sc.models.get_metadata(model)["input_transform"]
        t0 = time.time()
        for k, (_, image_id, img, _) in enumerate(todo):
            x = apply_input_transform(img, transform)
            # predict_tiled with the model's defaults (the map predict_instances post-processes)
            # in float32, as real_nuclei.py --precision float32 (not the machine's "auto")
            prob = sc.inference.predict_tiled(
                model, x, tta=tta, progress=False, precision="float32"
            )
            prob = np.asarray(prob)
            tmp = folder / f"{image_id}.tmp.npy"
            np.save(tmp, prob.astype(np.float32))
            os.replace(tmp, folder / f"{image_id}.npy")
            if k % 10 == 0:
                print(
                    f"  {k + 1}/{len(todo)} maps tta={tta} ({time.time() - t0:.0f} s)", flush=True
                )
        print(f"cached {len(todo)} maps (tta={tta}) in {time.time() - t0:.0f} s -> {folder}")
    return {e[1]: np.load(folder / f"{e[1]}.npy") for e in order}


def _first(order, limit: dict) -> set[str]:
    keep, seen = set(), {}
    for modality, image_id, *_ in order:
        seen[modality] = seen.get(modality, 0) + 1
        if seen[modality] <= limit.get(modality, 10**9):
            keep.add(image_id)
    return keep


def halves(eval_set) -> tuple[set[str], set[str]]:
    """(choose ids, report ids): per modality, ids sorted by a hash, alternately to each half."""
    choose, report = set(), set()
    for modality in MODALITIES:
        ids = sorted(
            (e[1] for e in eval_set if e[0] == modality),
            key=lambda i: hashlib.sha256(f"{i}:levers".encode()).hexdigest(),
        )
        choose |= set(ids[0::2])
        report |= set(ids[1::2])
    return choose, report


# ------------------------------------------------------------------------------------ labels
def _fill_holes(labels: np.ndarray) -> np.ndarray:
    out = labels.copy()
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        obj = labels[sl] == k
        filled = ndi.binary_fill_holes(obj) & (labels[sl] == 0)
        out[sl][filled] = k
    return out


#: the shipped model's recorded post-processing (``sciconv.postprocess.instances`` keywords)
RECORDED = json.loads((ROOT / "sciconv" / "pretrained" / "nuclei.json").read_text())["postprocess"]


def segment(
    prob: np.ndarray,
    *,
    threshold: float = RECORDED["threshold"],
    seed_threshold: float = RECORDED["seed_threshold"],
    min_size: int = RECORDED["min_size"],
    seeds: str = "threshold",
    sigma: float = 0.0,
    min_distance: int = 3,
    seed_min: int = 0,
    fill_holes: bool = False,
) -> np.ndarray:
    """Instance labels from a (background, interior, band) map with the levers of the module doc;
    the defaults are ``sciconv.postprocess.instances`` with the recorded settings."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import relabel_sequential, watershed

    foreground = (prob[..., 1] + prob[..., 2]) > threshold
    interior = prob[..., 1] if sigma == 0 else ndi.gaussian_filter(prob[..., 1], sigma)
    if not foreground.any():
        return np.zeros(foreground.shape, np.int32)
    if seeds == "threshold":
        markers, _ = ndi.label((interior > seed_threshold) & foreground)
        if seed_min > 1 and markers.max() > 0:
            small = np.bincount(markers.ravel()) < seed_min
            small[0] = False
            markers, _ = ndi.label(~small[markers] & (markers > 0))
    else:
        if seeds == "peaks":
            surface, where = interior, foreground
        else:  # "distance"
            where = (interior > seed_threshold) & foreground
            surface = ndi.gaussian_filter(ndi.distance_transform_edt(where), 1.0)
        comp, _ = ndi.label(where)
        peaks = peak_local_max(
            surface,
            min_distance=min_distance,
            threshold_abs=seed_threshold if seeds == "peaks" else None,
            labels=comp,
            exclude_border=False,
        )
        marked = np.zeros(foreground.shape, bool)
        marked[tuple(peaks.T)] = True
        markers, _ = ndi.label(ndi.binary_dilation(marked) & where)
    markers = with_unmarked(markers, foreground)
    labels = watershed(-interior, markers, mask=foreground)
    if fill_holes:
        labels = _fill_holes(labels)
    if min_size > 1 and labels.max() > 0:
        small = np.bincount(labels.ravel()) < min_size
        small[0] = False
        labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0].astype(np.int32)


# ------------------------------------------------------------------------------------ scores
def full_scores(results) -> dict:
    """results [(modality, truth, pred)] -> {modality: AP per IoU (mean over images), F1, PQ}."""
    from sciconv.metrics import average_precision, matching

    per: dict = {}
    for modality, truth, pred in results:
        a = average_precision(truth, pred, thresholds=IOUS)
        m = matching(truth, pred, thresh=0.5)
        d = per.setdefault(modality, {"ap": [], "tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
        d["ap"].append(a["ap"])
        d["tp"] += m["tp"]
        d["fp"] += m["fp"]
        d["fn"] += m["fn"]
        d["iou"] += m["mean_matched_iou"] * m["tp"]
    table = {}
    for modality, d in per.items():
        ap = np.mean(d["ap"], axis=0)
        tp, fp, fn = d["tp"], d["fp"], d["fn"]
        table[modality] = {
            "n": len(d["ap"]),
            "ap": {f"{t:.2f}": round(float(v), 4) for t, v in zip(IOUS, ap)},
            "AP@0.5:0.9": round(float(ap.mean()), 4),
            "F1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
            "PQ": round(d["iou"] / max(tp + 0.5 * fp + 0.5 * fn, 1e-9), 4),
        }
    return table


def ap50_by_modality(items, probs, kw) -> dict[str, float]:
    """{modality: mean AP@0.5 over images} of ``segment(prob, **kw)``."""
    from sciconv.metrics import average_precision

    per: dict = {}
    for modality, image_id, truth in items:
        pred = segment(probs[image_id], **kw)
        per.setdefault(modality, []).append(
            float(average_precision(truth, pred, thresholds=(0.5,))["ap"][0])
        )
    return {m: float(np.mean(v)) for m, v in per.items()}


def print_full(title: str, table: dict) -> None:
    print(f"\n== {title}")
    head = " ".join(f"{t:>5.2f}" for t in IOUS)
    print(f"{'modality':12s} {'n':>3s} {head} {'mean':>6s} {'F1':>6s} {'PQ':>6s}")
    for modality, row in table.items():
        aps = " ".join(f"{v:5.3f}" for v in row["ap"].values())
        print(
            f"{modality:12s} {row['n']:3d} {aps} {row['AP@0.5:0.9']:6.3f} {row['F1']:6.3f} "
            f"{row['PQ']:6.3f}",
            flush=True,
        )


# ------------------------------------------------------------------------------------ levers

GRIDS = {
    "baseline": [{}],
    "thresholds": [
        {"threshold": t, "seed_threshold": s, "min_size": m}
        for t, s, m in itertools.product(
            (0.3, 0.4, 0.5, 0.6), (0.4, 0.5, 0.6, 0.7, 0.8), (15, 30, 50)
        )
    ],
    "seeds": [
        {"seeds": "peaks", "sigma": sg, "min_distance": md, "seed_threshold": s}
        for sg, md, s in itertools.product((1.0, 2.0), (3, 5, 7), (0.3, 0.5))
    ]
    + [
        {"seeds": "distance", "min_distance": md, "seed_threshold": s}
        for md, s in itertools.product((3, 5, 7), (0.4, 0.5, 0.6))
    ]
    + [{"sigma": sg, "seed_threshold": s} for sg in (1.0, 2.0) for s in (0.4, 0.5, 0.6, 0.7)],
    "seed_min": [{"seed_min": n} for n in (3, 5, 10, 20, 40)],
    "fill_holes": [{"fill_holes": True}],
}


def sweep(name, grid, items, probs, choose, report) -> dict:
    """Each setting's AP@0.5 per modality on the choose half; the best (by the mean over the
    modalities) and the recorded settings then on the report half."""
    t0 = time.time()
    pick = [e for e in items if e[1] in choose]
    rows = []
    for kw in grid:
        settings = {**RECORDED, **kw}
        per = ap50_by_modality(pick, probs, settings)
        rows.append((float(np.mean(list(per.values()))), settings, per))
    rows.sort(key=lambda r: -r[0])
    base = ap50_by_modality(pick, probs, RECORDED)
    best = rows[0][1]
    held = [e for e in items if e[1] in report]
    out = {
        "choose_recorded": base,
        "choose_best": rows[0][2],
        "best": best,
        "report_recorded": ap50_by_modality(held, probs, RECORDED),
        "report_best": ap50_by_modality(held, probs, best),
        "top5": [
            {"mean": round(r[0], 4), **r[1], **{m: round(v, 4) for m, v in r[2].items()}}
            for r in rows[:5]
        ],
        "seconds": round(time.time() - t0, 1),
    }
    fmt = lambda d: " ".join(f"{m} {v:.3f}" for m, v in d.items())  # noqa: E731
    print(f"\n-- lever {name}: {len(grid)} settings in {out['seconds']:.0f} s; best {best}")
    print(f"   choose half  recorded {fmt(base)}  | best {fmt(rows[0][2])}")
    print(
        f"   report half  recorded {fmt(out['report_recorded'])}  | best {fmt(out['report_best'])}"
    )
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _real_nuclei().add_division_arguments(p)
    p.add_argument("--cache", type=Path, default=Path("/tmp/sciconv_nuclei_cache"))
    p.add_argument("--levers", default=",".join(GRIDS))
    p.add_argument("--tta", action="store_true", help="also cache and score the D4 maps")
    p.add_argument(
        "--tta-fluo", type=int, default=None, help="D4 maps of at most this many fluo images"
    )
    p.add_argument(
        "--ensemble", type=Path, default=None, help="average with this model's maps (.keras)"
    )
    p.add_argument("--ensemble-weights", default="0.3,0.5", help="weights of the other model")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args(argv)
    rn = _real_nuclei()
    eval_set = rn.load_eval_set(a.data, set(a.val_ids.read_text().split()), MODALITIES)
    items = [(m, i, lab) for m, i, _, lab in eval_set]
    choose, report = halves(eval_set)
    print(
        f"{len(eval_set)} validation images; choose half {len(choose)}, report half {len(report)}"
    )
    probs = cached_probs(eval_set, a.cache, tta=None)
    out: dict = {"recorded": RECORDED}
    # the recorded post-processing must be exactly what predict_instances does
    from sciconv.postprocess import instances

    first = eval_set[0][1]
    assert np.array_equal(segment(probs[first]), instances(probs[first], **RECORDED))
    variants = [("plain", probs)]
    if a.tta:
        limit = {"fluo": a.tta_fluo} if a.tta_fluo is not None else None
        variants.append(("d4", cached_probs(eval_set, a.cache, tta="d4", limit=limit)))
    for variant, maps in variants:
        t0 = time.time()
        sub_items = [e for e in items if e[1] in maps]
        # the same images with and without D4 (when the D4 maps are limited)
        for other, other_maps in variants:
            if other != variant and len(other_maps) < len(maps):
                sub_items = [e for e in sub_items if e[1] in other_maps]
        table = full_scores([(m, lab, segment(maps[i])) for m, i, lab in sub_items])
        out[f"full_{variant}"] = table
        print_full(
            f"pretrained, recorded post-processing, maps {variant}, {len(sub_items)} "
            f"images ({time.time() - t0:.0f} s)",
            table,
        )
        for half, ids in (("choose", choose), ("report", report)):
            sub = [(m, lab, segment(maps[i])) for m, i, lab in sub_items if i in ids]
            out[f"{half}_{variant}"] = full_scores(sub)
    for name in a.levers.split(","):
        if name in GRIDS and name != "baseline":
            out[name] = sweep(name, GRIDS[name], items, probs, choose, report)
    if a.ensemble is not None:
        other = cached_probs(eval_set, a.cache, tta=None, weights=a.ensemble)
        for w in (float(v) for v in a.ensemble_weights.split(",")):
            mixed = {i: (1 - w) * probs[i] + w * other[i] for i in probs}
            name = f"ensemble w={w:g}"
            out[name] = sweep(name, GRIDS["thresholds"], items, mixed, choose, report)
            out[name]["all_recorded"] = ap50_by_modality(items, mixed, RECORDED)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
