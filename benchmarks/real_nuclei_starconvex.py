"""Pixel-based against star-convex instances at high IoU on the real nuclei validation division.

Issue 20 asks where the pretrained model's pixel-based instances (U-Net 3-class "touching band"
map + watershed, ``predict_instances``) beat or lose to star-convex ones (StarDist). This
benchmark answers it on the 99 validation images of ``real_nuclei.py`` (82 fluorescence, 14
colour, 3 grey brightfield) without training a StarDist model, with the StarDist library's own
geometry (``stardist.geometry.star_dist`` for the distances along ``n`` rays from every pixel to
its object's boundary, ``polygons_to_label`` to rasterize the polygons):

``ceiling``      every ground-truth nucleus replaced by its ``n``-ray star-convex polygon, scored
                 against the original ground truth: what a perfect ``n``-ray StarDist model (right
                 objects, exact distances) scores at best. Rays start at the object's *centre*:
                 ``--anchor edt`` (default) the pixel of maximal distance to the object's outline
                 (the maximum of ``stardist.utils.edt_prob``, StarDist's object-probability
                 target, so about the polygon a trained model keeps after its non-maximum
                 suppression),
                 ``centroid`` the centroid truncated to integers (StarDist's own
                 ``relabel_image_stardist``; empty where the centroid lies outside the object);
``shipped``      the pretrained model as it is (probability maps cached under ``--cache`` by
                 ``real_nuclei_levers.cached_probs``; ``real_nuclei_levers.segment`` is
                 ``predict_instances``' post-processing with the recorded settings);
``shipped star`` each predicted instance replaced by its ``n``-ray polygon the same way: does
                 forcing star-convexity help or hurt the model's outlines at high IoU?

The ceiling is optimistic for StarDist: a real model also misses and splits objects, predicts
distances with errors and (``2D_versatile_fluo``) only from every second pixel (grid 2). Scores
are ``real_nuclei_levers.full_scores``: AP = TP / (TP + FP + FN) at IoU 0.5, 0.55, ..., 0.9
averaged over the images of a modality, F1 and panoptic quality at IoU 0.5 pooled over them; AP
with TP, FP and FN pooled over the images (the rule of the published figures) and the per-object
fit (IoU of each ground-truth nucleus with its own polygon) are reported too, beside the published
DSB2018 figures of StarDist (``PUBLISHED``: another test set, the comparison is indicative only).

StarDist is not a sciconv requirement (it pins its own TensorFlow stack); only its geometry is
used here, which needs ``stardist``, ``csbdeep`` and ``numba`` importable, not TensorFlow:

    python -m pip install --target /tmp/sd stardist==0.9.2 csbdeep numba llvmlite --no-deps
    nice -n 5 python benchmarks/real_nuclei_starconvex.py --stardist-path /tmp/sd --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
MODALITIES = ("fluo", "color", "gray_bright")
SHOWN_IOUS = ("0.50", "0.60", "0.70", "0.80", "0.90")
INSTALL = (
    "install it with `pip install stardist`, outside sciconv's requirements (it pins its own "
    "TensorFlow), e.g. `python -m pip install --target DIR stardist==0.9.2 csbdeep numba "
    "llvmlite --no-deps`, then pass --stardist-path DIR (or put DIR on PYTHONPATH)"
)

# Published AP on DSB2018: Schmidt, Weigert, Broaddus, Myers, "Cell Detection with Star-convex
# Polygons", MICCAI 2018 (arXiv:1806.03535), Table 1, rows "DSB2018", IoU 0.5, 0.55, ..., 0.9.
# Their test set is 10 % of 497 fluorescence images of the stage-1 training set (about 50
# images; not this validation division) and their AP = TP / (TP + FP + FN) is "evaluated across
# all images" (pooled, as ``pooled_ap`` does; ``full_scores`` averages AP per image). StarDist
# with 32 rays.
PUBLISHED = {
    "source": "Schmidt et al., MICCAI 2018, arXiv:1806.03535, Table 1 (DSB2018)",
    "ious": [round(0.5 + 0.05 * i, 2) for i in range(9)],
    "StarDist (32 rays)": [0.8641, 0.8361, 0.8043, 0.7545, 0.6850, 0.5862, 0.4495, 0.2865, 0.1191],
    "U-Net (3 class)": [0.8060, 0.7753, 0.7431, 0.7011, 0.6543, 0.5777, 0.4910, 0.3738, 0.2258],
    "Mask R-CNN": [0.8323, 0.8051, 0.7728, 0.7299, 0.6838, 0.5974, 0.4893, 0.3525, 0.1891],
}


def _benchmark(name: str):
    """A sibling benchmark module (``real_nuclei``, ``real_nuclei_levers``) from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_stardist(path: Path | None = None):
    """(star_dist, polygons_to_label, edt_prob) of the StarDist library.

    ``path``: a folder StarDist was installed into with ``pip install --target`` (put first on
    ``sys.path``). Raises ``sciconv.errors.MissingDependencyError`` naming the install command
    when it cannot be imported.
    """
    from sciconv.errors import MissingDependencyError

    if path is not None:
        if not Path(path).is_dir():
            raise MissingDependencyError(f"--stardist-path {path}: no such folder; {INSTALL}")
        sys.path.insert(0, str(path))
    try:
        from stardist.geometry import polygons_to_label, star_dist
        from stardist.utils import edt_prob
    except ImportError as err:
        raise MissingDependencyError(f"stardist is not importable ({err}); {INSTALL}") from err
    return star_dist, polygons_to_label, edt_prob


def anchors(labels: np.ndarray, how: str, edt_prob) -> tuple[np.ndarray, np.ndarray]:
    """(ids, points (N, 2) int): each object's ray origin (``"edt"`` or ``"centroid"``)."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return ids, np.zeros((0, 2), int)
    if how == "edt":
        points = ndi.maximum_position(edt_prob(labels), labels, ids)
    else:  # relabel_image_stardist's rule: the centroid, truncated
        points = ndi.center_of_mass(np.ones(labels.shape), labels, ids)
    return ids, np.array(points, dtype=float).astype(int).reshape(-1, 2)


def star_convex(labels: np.ndarray, n_rays: int, how: str, sd) -> np.ndarray:
    """Each object of ``labels`` replaced by its ``n_rays`` star-convex polygon (StarDist's
    ``star_dist`` read at the object's anchor, ``polygons_to_label``); object k of the sorted
    ids becomes label k + 1 (later objects are drawn over earlier ones, StarDist's order)."""
    star_dist, polygons_to_label, edt_prob = sd
    ids, points = anchors(labels, how, edt_prob)
    if len(ids) == 0:
        return np.zeros(labels.shape, np.int32)
    dist = star_dist(labels, n_rays)
    return polygons_to_label(dist[tuple(points.T)], points, shape=labels.shape).astype(np.int32)


def object_fit(labels: np.ndarray, star: np.ndarray) -> np.ndarray:
    """IoU of each object of ``labels`` with its own polygon in ``star`` (``star_convex``'s
    numbering: the k-th sorted id is k + 1)."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    remap = np.zeros(int(labels.max()) + 1, np.int64)
    remap[ids] = np.arange(1, len(ids) + 1)
    a = remap[labels].ravel()
    b = star.ravel().astype(np.int64)
    n = len(ids) + 1
    inter = np.bincount(a[a == b], minlength=n)[1:]
    area_a = np.bincount(a, minlength=n)[1:]
    area_b = np.bincount(b, minlength=n)[1:n]
    return inter / np.maximum(area_a + area_b - inter, 1)


def variants(rays: list[int], anchor: str) -> list[tuple[str, str, int, str]]:
    """[(row name, source "truth"/"pred", n_rays or 0 for as-is, anchor)] of the table."""
    out = [(f"ceiling {n} rays ({anchor})", "truth", n, anchor) for n in rays]
    if anchor == "edt":
        out.insert(1, (f"ceiling {rays[0]} rays (centroid)", "truth", rays[0], "centroid"))
    out.append(("shipped model", "pred", 0, ""))
    out += [(f"shipped model, {n} rays ({anchor})", "pred", n, anchor) for n in rays]
    return out


def evaluate(items, probs, rows, sd, segment) -> tuple[dict, dict]:
    """{row: [(modality, truth, labels)]} and {row: {modality: [object IoUs]}} (ceiling rows)."""
    results: dict = {name: [] for name, *_ in rows}
    fits: dict = {}
    for k, (modality, image_id, truth) in enumerate(items):
        pred = segment(probs[image_id])
        for name, source, n_rays, how in rows:
            base = truth if source == "truth" else pred
            lab = base if n_rays == 0 else star_convex(base, n_rays, how, sd)
            results[name].append((modality, truth, lab))
            if source == "truth":
                fits.setdefault(name, {}).setdefault(modality, []).extend(object_fit(truth, lab))
        if k % 20 == 0:
            print(f"  {k + 1}/{len(items)} images", flush=True)
    return results, fits


def pooled_ap(results, ious) -> dict:
    """{modality: {IoU: AP}} with TP, FP and FN summed over the images first (the published
    figures' rule; ``full_scores`` averages AP over the images)."""
    from sciconv.metrics import average_precision

    per: dict = {}
    for modality, truth, pred in results:
        per.setdefault(modality, ([], []))
        per[modality][0].append(truth)
        per[modality][1].append(pred)
    out = {}
    for modality, (truths, preds) in per.items():
        ap = average_precision(truths, preds, thresholds=ious)["ap"]
        out[modality] = {f"{t:.2f}": round(float(v), 4) for t, v in zip(ious, ap)}
        out[modality]["mean"] = round(float(np.mean(ap)), 4)
    return out


def fit_summary(fits: dict) -> dict:
    """{row: {modality: median object IoU, share of objects under IoU 0.8 / 0.9}}."""
    out = {}
    for name, per in fits.items():
        out[name] = {
            m: {
                "objects": len(v),
                "median_iou": round(float(np.median(v)), 4),
                "share_iou_le_0.8": round(float(np.mean(np.asarray(v) <= 0.8)), 4),
                "share_iou_le_0.9": round(float(np.mean(np.asarray(v) <= 0.9)), 4),
            }
            for m, v in per.items()
        }
    return out


def print_table(tables: dict) -> None:
    """One row per variant and modality: AP at IoU 0.5 ... 0.9, their mean (9 thresholds), F1,
    PQ."""
    head = " ".join(f"{t:>5s}" for t in SHOWN_IOUS)
    print(f"\n{'row':34s} {'modality':11s} {'n':>3s} {head} {'mean':>5s} {'F1':>5s} {'PQ':>5s}")
    for name, table in tables.items():
        for modality in MODALITIES:
            if modality not in table:
                continue
            r = table[modality]
            aps = " ".join(f"{r['ap'][t]:5.3f}" for t in SHOWN_IOUS)
            print(
                f"{name:34s} {modality:11s} {r['n']:3d} {aps} {r['AP@0.5:0.9']:5.3f} "
                f"{r['F1']:5.3f} {r['PQ']:5.3f}"
            )


def print_published() -> None:
    """The published DSB2018 rows (``PUBLISHED``) in the table's columns (no F1 / PQ there)."""
    print(f"\npublished, {PUBLISHED['source']}; own test set, AP pooled over its images:")
    for name, ap in PUBLISHED.items():
        if name in ("source", "ious"):
            continue
        shown = " ".join(f"{ap[PUBLISHED['ious'].index(float(t))]:5.3f}" for t in SHOWN_IOUS)
        print(f"  {name:32s} {'fluo':11s} {'~50':>3s} {shown} {np.mean(ap):5.3f}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "dsb2018_train")
    p.add_argument("--val-ids", type=Path, default=ROOT / "data" / "real" / "nuclei_val_ids.txt")
    p.add_argument("--cache", type=Path, default=Path("/tmp/sciconv_nuclei_cache"))
    p.add_argument("--stardist-path", type=Path, default=None, help="folder stardist is in")
    p.add_argument("--rays", default="32,64", help="ray counts (StarDist's default: 32)")
    p.add_argument("--anchor", choices=("edt", "centroid"), default="edt")
    p.add_argument("--max-per-modality", type=int, default=None, help="a quick look")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args(argv)
    sd = import_stardist(a.stardist_path)
    import stardist

    rays = [int(n) for n in a.rays.split(",") if n]
    lv = _benchmark("real_nuclei_levers")
    rn = _benchmark("real_nuclei")
    eval_set = rn.load_eval_set(
        a.data, set(a.val_ids.read_text().split()), MODALITIES, a.max_per_modality
    )
    items = [(m, i, lab) for m, i, _, lab in eval_set]
    print(f"{len(items)} validation images; stardist {stardist.__version__}, rays {rays}")
    probs = lv.cached_probs(eval_set, a.cache, tta=None)
    rows = variants(rays, a.anchor)
    t0 = time.time()
    results, fits = evaluate(items, probs, rows, sd, lv.segment)
    tables = {name: lv.full_scores(res) for name, res in results.items()}
    print_table(tables)
    pooled = {name: pooled_ap(res, lv.IOUS) for name, res in results.items()}
    print("\nAP pooled over the images (TP, FP, FN summed first, as published):")
    for name, per in pooled.items():
        for m, ap in per.items():
            shown = " ".join(f"{ap[t]:5.3f}" for t in SHOWN_IOUS)
            print(f"  {name:32s} {m:11s} {shown} {ap['mean']:5.3f}")
    print_published()
    summary = fit_summary(fits)
    print("\nper-object fit of the ground truth (IoU of each nucleus with its own polygon):")
    for name, per in summary.items():
        for m, s in per.items():
            print(
                f"  {name:34s} {m:11s} {s['objects']:5d} objects, median {s['median_iou']:.3f}, "
                f"<= 0.8: {s['share_iou_le_0.8']:.3f}, <= 0.9: {s['share_iou_le_0.9']:.3f}"
            )
    seconds = round(time.time() - t0, 1)
    print(f"({seconds:.0f} s for the polygons and scores)")
    out = {
        "settings": {
            "rays": rays,
            "anchor": a.anchor,
            "stardist": stardist.__version__,
            "images": len(items),
            "seconds": seconds,
        },
        "tables": tables,
        "pooled_ap": pooled,
        "object_fit": summary,
        "published": PUBLISHED,
    }
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
