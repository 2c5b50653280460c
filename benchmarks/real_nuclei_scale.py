"""Does resampling each image to the training nucleus size help the pretrained nuclei model?

Cellpose estimates the object size of every image and resamples it to its training size before
segmenting; ``sciconv.inference.predict_instances`` resamples only when told (``scale=``,
``object_size=``, or the image's and the model's pixel scales). This benchmark measures, on the
validation division of ``benchmarks/real_nuclei.py`` (82 fluorescence, 14 colour, 3 grey
brightfield images), what a size rule would gain:

- every image segmented at each zoom factor of ``--factors`` (``predict_instances(...,
  scale=f)``: the model and the post-processing run on the resampled image, labels mapped back),
  AP@0.5 and AP@0.5:0.9 per modality (mean over images);
- the same per group of images by the median diameter of the instances found at factor 1 (the
  size a rule would measure), so a gain confined to small or large nuclei shows;
- the per-image best factor (an oracle: an upper bound of any rule);
- size rules ``rescale to T px when the measured median diameter is outside [lo, hi]`` (factor
  ``T / d`` snapped to the nearest of ``--factors``), chosen on one half of the division and
  reported on the other (the halves of ``real_nuclei_levers.py``).

With ``--enlarge 0.5,2,3`` it also measures images *outside* the training sizes: every
validation image resized by each factor and by 1 (bilinear, anti-aliased when shrinking; ground
truth by nearest neighbour), segmented as it is, then again resampled to the training size
measured from that first result (``T / d``, T = the model's ``object_size``, 18.1 px), and size
rules that take the second result only when d is outside [lo, hi], chosen on one half (all sizes,
1 included: a rule must not cost the images as they are) and reported on the other.

Labels are cached per image and factor under ``--cache`` (an interrupted run resumes).

    nice -n 5 python benchmarks/real_nuclei_scale.py        # about 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZE_GROUPS = ((0, 11), (11, 14), (14, 20), (20, 30), (30, 40), (40, 1e9))


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter (pixels) of the objects of a label image; 0 when empty."""
    from sciconv.postprocess import equivalent_diameters

    sizes = equivalent_diameters(labels)
    return float(np.median(sizes)) if len(sizes) else 0.0


def scores_at_factors(eval_set, factors, cache: Path) -> dict:
    """{(id, factor): {"m", "ap" (per IoU), "d"}} of the pretrained model, labels cached."""
    import sciconv as sc
    from sciconv.metrics import average_precision
    from sciconv.preprocess import apply_input_transform

    model = sc.models.pretrained("nuclei")
    transform = sc.models.get_metadata(model)["input_transform"]
    cache.mkdir(parents=True, exist_ok=True)
    out, t0 = {}, time.time()
    for k, (modality, image_id, img, truth) in enumerate(eval_set):
        x = apply_input_transform(img, transform)
        for f in factors:
            pred = _labels(model, x, f, cache / f"{image_id}_{f:g}.npy")
            ap = average_precision(truth, pred)["ap"]
            out[image_id, f] = {"m": modality, "ap": [float(v) for v in ap]}
            out[image_id, f]["d"] = median_diameter(pred)
        if k % 10 == 0:
            print(f"  {k + 1}/{len(eval_set)} images ({time.time() - t0:.0f} s)", flush=True)
    return out


def _labels(model, x, factor, path: Path) -> np.ndarray:
    """predict_instances at ``factor`` (1: as it is), cached in ``path``."""
    import sciconv as sc

    if path.is_file():
        return np.load(path)
    pred = sc.inference.predict_instances(
        model, x, scale=None if factor == 1 else factor, precision="float32", progress=False
    )
    np.save(path.with_suffix(".tmp.npy"), pred)
    os.replace(path.with_suffix(".tmp.npy"), path)
    return pred


def enlarged_scores(eval_set, enlargements, cache: Path) -> dict:
    """{(id, e): {"m", "d", "n", "ap1", "ap2", "f2"}}: image resized by ``e``, segmented as it
    is (ap1; n objects of median diameter d) and resampled by ``T / d`` to the training size
    (ap2, factor f2)."""
    from skimage.transform import rescale, resize

    import sciconv as sc
    from sciconv.metrics import average_precision
    from sciconv.postprocess import equivalent_diameters
    from sciconv.preprocess import apply_input_transform

    model = sc.models.pretrained("nuclei")
    meta = sc.models.get_metadata(model)
    target = float(meta["object_size"])
    cache.mkdir(parents=True, exist_ok=True)
    out, t0 = {}, time.time()
    for k, (modality, image_id, img, truth) in enumerate(eval_set):
        x0 = apply_input_transform(img, meta["input_transform"]).astype(np.float32)
        for e in enlargements:
            x = rescale(x0, e, order=1, channel_axis=-1, anti_aliasing=e < 1)
            t = resize(truth, x.shape[:2], order=0, preserve_range=True, anti_aliasing=False)
            t = t.astype(np.int32)
            first = _labels(model, x, 1.0, cache / f"{image_id}_x{e:g}_1.npy")
            sizes = equivalent_diameters(first)
            d = float(np.median(sizes)) if len(sizes) else 0.0
            f2 = float(f"{target / d:.3g}") if d > 0 else 1.0  # auto_size_factor's rounding
            second = _labels(model, x, f2, cache / f"{image_id}_x{e:g}_{f2:g}.npy")
            out[image_id, e] = {
                "m": modality,
                "d": d,
                "n": len(sizes),
                "f2": f2,
                "ap1": [float(v) for v in average_precision(t, first)["ap"]],
                "ap2": [float(v) for v in average_precision(t, second)["ap"]],
            }
        if k % 10 == 0:
            print(f"  {k + 1}/{len(eval_set)} images ({time.time() - t0:.0f} s)", flush=True)
    return out


def enlarged_report(scores, enlargements, ids, halves, training_range=None) -> dict:
    """AP@0.5 / AP@0.5:0.9 as they are, always resampled, with the band rule chosen on the
    choosing half (the best on the resized images among those that cost the images as they are
    nothing), and with ``training_range`` (the model's ``object_size_range``)."""
    rows = {}

    def mean(pick, e, subset):
        per = {}
        for i in subset:
            r = scores[i, e]
            ap = r["ap2"] if pick(r) else r["ap1"]
            per.setdefault(r["m"], []).append(ap)
        return {
            m: (float(np.mean([a[0] for a in v])), float(np.mean(v)), len(v))
            for m, v in per.items()
        }

    choose, held = halves
    bands = list(itertools.product((0, 6, 7, 8, 9, 10, 11), (40, 45, 50, 55, 60, 66, 75, 1e9)))

    from sciconv.inference import AUTO_SIZE_MIN_OBJECTS

    def band(lo, hi):  # the rule of auto_size_factor (first pass at factor 1)
        return lambda r: r["n"] >= AUTO_SIZE_MIN_OBJECTS and not lo <= r["d"] <= hi

    def half_mean(rule, e, subset):  # mean AP@0.5 over the images of a half
        return np.mean([scores[i, e]["ap2" if rule(scores[i, e]) else "ap1"][0] for i in subset])

    def objective(lo, hi):
        """Mean AP@0.5 of the choosing half over the resized images; -1 when the rule costs
        the images as they are (x1) more than 0.002 there."""
        rule = band(lo, hi)
        if half_mean(rule, 1.0, choose) < half_mean(lambda r: False, 1.0, choose) - 0.002:
            return -1.0
        return np.mean([half_mean(rule, e, choose) for e in enlargements if e != 1.0])

    lo, hi = max(bands, key=lambda b: objective(*b))
    rows["band"] = (lo, hi)
    rules = {
        "as it is": lambda r: False,
        "always resampled": lambda r: True,
        f"resampled outside [{lo}, {hi:g}]": band(lo, hi),
    }
    if training_range is not None:
        rules[f"outside [{training_range[0]:.3g}, {training_range[1]:.3g}]"] = band(*training_range)
    for e in enlargements:
        rows[e] = {name: mean(rule, e, ids) for name, rule in rules.items()}
        for name, rule in list(rules.items())[2:]:
            rows[e][f"{name[:12]}.., reporting half"] = mean(rule, e, held)
        rows[e]["as it is, reporting half"] = mean(rules["as it is"], e, held)
    return rows


def table(scores, pick, ids, modalities) -> dict:
    """{modality: (AP@0.5, AP@0.5:0.9, n)} with image ``i`` segmented at factor ``pick(i)``."""
    out = {}
    for m in modalities:
        aps = [scores[i, pick(i)]["ap"] for i in ids if scores[i, 1.0]["m"] == m]
        if aps:
            out[m] = (float(np.mean([a[0] for a in aps])), float(np.mean(aps)), len(aps))
    return out


def size_rule(scores, factors, target: float, lo: float, hi: float):
    """Image -> factor: ``target / d`` (snapped to ``factors``) when d is outside [lo, hi]."""

    def pick(image_id):
        d = scores[image_id, 1.0]["d"]
        if d <= 0 or lo <= d <= hi:
            return 1.0
        return min(factors, key=lambda f: abs(np.log(f * d / target)))

    return pick


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _benchmark("real_nuclei").add_division_arguments(p)
    p.add_argument("--factors", default="0.5,0.625,0.75,0.875,1,1.25,1.5,1.75,2")
    p.add_argument("--cache", type=Path, default=Path("/tmp/sciconv_nuclei_scale"))
    p.add_argument(
        "--enlarge", default="", help="also resize the images by these factors (e.g. 0.5,2,3)"
    )
    p.add_argument(
        "--range", default="", help="also the rule with this size band, e.g. 7.4,65.9 (px)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args(argv)
    factors = sorted({float(f) for f in a.factors.split(",")} | {1.0})
    levers = _benchmark("real_nuclei_levers")
    modalities = levers.MODALITIES
    eval_set = _benchmark("real_nuclei").load_eval_set(
        a.data, set(a.val_ids.read_text().split()), modalities
    )
    scores = scores_at_factors(eval_set, factors, a.cache)
    ids = [e[1] for e in eval_set]
    fmt = lambda t: "  ".join(  # noqa: E731
        f"{m} {v[0]:.3f} / {v[1]:.3f} ({v[2]})" for m, v in t.items()
    )
    report: dict = {"factors": factors, "fixed": {}, "groups": {}}
    print("\n== every image at one factor: AP@0.5 / AP@0.5:0.9 (images)")
    for f in factors:
        report["fixed"][f] = table(scores, lambda i, f=f: f, ids, modalities)
        print(f"factor {f:5g}  {fmt(report['fixed'][f])}")
    print("\n== AP@0.5 (all modalities) by the median diameter found at factor 1")
    for lo, hi in SIZE_GROUPS:
        sel = [i for i in ids if lo <= scores[i, 1.0]["d"] < hi]
        row = {f: float(np.mean([scores[i, f]["ap"][0] for i in sel])) for f in factors}
        report["groups"][f"{lo}-{hi:g}"] = {"n": len(sel), **row}
        print(
            f"d in [{lo:2d}, {hi:g}) n={len(sel):2d}  "
            + "  ".join(f"{f:g}: {v:.3f}" for f, v in row.items())
        )

    def best_factor(i):
        return max(factors, key=lambda f: scores[i, f]["ap"][0])

    report["oracle"] = table(scores, best_factor, ids, modalities)
    print(f"\nper-image best factor (oracle)  {fmt(report['oracle'])}")
    choose, held = levers.halves(eval_set)
    rules = []
    for target, lo, hi in itertools.product(
        (14, 16, 18, 20, 22), (0, 9, 10, 11, 12, 13, 14), (28, 32, 36, 40, 45, 50, 1e9)
    ):
        pick = size_rule(scores, factors, target, lo, hi)
        chosen = table(scores, pick, choose, modalities)
        mean = sum(v[0] * v[2] for v in chosen.values()) / sum(v[2] for v in chosen.values())
        rules.append((mean, (target, lo, hi), pick))
    rules.sort(key=lambda r: -r[0])
    _, best, pick = rules[0]
    report["rule"] = {
        "best": best,
        "choose_factor1": table(scores, lambda i: 1.0, choose, modalities),
        "choose_best": table(scores, pick, choose, modalities),
        "report_factor1": table(scores, lambda i: 1.0, held, modalities),
        "report_best": table(scores, pick, held, modalities),
    }
    print(f"\nbest size rule on the choosing half: target {best[0]} px outside {best[1:]}")
    for key, row in report["rule"].items():
        if key != "best":
            print(f"  {key:15s} {fmt(row)}")
    if a.enlarge:
        # the images as they are too: a size rule must not cost them anything
        enlargements = sorted({float(e) for e in a.enlarge.split(",")} | {1.0})
        big = enlarged_scores(eval_set, enlargements, a.cache / "enlarged")
        meta_range = None
        if a.range:
            meta_range = tuple(float(v) for v in a.range.split(","))
        rows = enlarged_report(big, enlargements, ids, (choose, held), meta_range)
        report["enlarged_images"] = [{"id": i, "e": e, **r} for (i, e), r in big.items()]
        report["enlarged"] = {str(k): v for k, v in rows.items()}
        print(f"\n== images resized; size band chosen on the choosing half: {rows['band']}")
        for e in enlargements:
            for name, row in rows[e].items():
                print(f"x{e:<4g} {name:34s} {fmt(row)}")
    if a.json:
        a.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


if __name__ == "__main__":
    main()
