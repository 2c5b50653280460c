"""Test-time stain / colour normalisation of colour images before the pretrained nuclei model.

The unchanged ``sciconv.models.pretrained("nuclei")`` (``predict_instances``, recorded input
transform and post-processing, float32) on the colour (14) and grey-brightfield (3) validation
images of ``benchmarks/real_nuclei.py``'s division, each colour image first mapped to a reference
built from the 77 colour *training* images (never a validation image); the result is fed to the
model as uint8 RGB, as a user passes raw pixels. Normalisers:

``none``        the raw pixels (must reproduce the recorded colour AP@0.5, 0.726);
``reinhard``    LAB (``skimage.color``) mean / std of each channel matched to the reference's;
``macenko``     ``torchstain``'s numpy Macenko normaliser (``--torchstain``: a folder that holds
                the package; it needs no torch), its stain matrix and 99th-percentile stain
                concentrations set to the reference's;
``percentile``  each of R, G, B mapped linearly from its 1st / 99th percentiles to the reference's;
``greyworld``   each of R, G, B scaled so its mean is the reference's;
``histmatch``   ``skimage.exposure.match_histograms`` (per channel) to pooled training pixels.

Reference: the median over the training images of the per-image statistic (LAB means and stds,
percentiles, channel means; Macenko: the element-wise median stain matrix, columns re-normed to
length 1, and median concentrations); ``histmatch``: 5,000 random pixels of each training image.

Scores (``real_nuclei.score``): AP@0.5 and AP@0.5:0.9 (mean over images) for all 14 colour
images, for the choose / report halves of ``benchmarks/real_nuclei_levers.py`` (7 / 7; the best
normaliser is picked on the choose half), the mean per-image change against ``none`` with its
standard error, and the grey images with the normaliser forced on them and behind the gating rule
(``colour_like``: three unequal channels and a background ``invert="auto"`` flips). The rule is
also counted on every image of the DSB2018 training folder per modality. ``--montage`` writes
4 colour images before / after each normaliser.

    nice -n 5 python benchmarks/real_nuclei_stain.py --torchstain /tmp/qa36/stain/pkgs \\
        --montage /tmp/qa36/stain/montage.png --json /tmp/qa36/stain/stain.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NORMALISERS = ("none", "reinhard", "macenko", "percentile", "greyworld", "histmatch")


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _u8(x) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _lab(img: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(img.astype(np.float64) / 255.0)


def _macenko():
    from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

    return NumpyMacenkoNormalizer()


def fit_references(train: list[np.ndarray], seed: int = 0) -> dict:
    """Each normaliser's reference from the training colour images (median of per-image stats)."""
    labs = [_lab(i).reshape(-1, 3) for i in train]
    pix = [i.reshape(-1, 3).astype(np.float64) for i in train]
    med = lambda stats: np.median(stats, axis=0)  # noqa: E731
    ref = {
        "reinhard": (med([x.mean(0) for x in labs]), med([x.std(0) for x in labs])),
        "percentile": med([np.percentile(x, (1, 99), axis=0) for x in pix]),
        "greyworld": med([x.mean(0) for x in pix]),
    }
    rng = np.random.default_rng(seed)
    ref["histmatch"] = np.concatenate(
        [rng.choice(i.reshape(-1, 3), 5000, replace=False) for i in train]
    )[:, None, :]
    if "torchstain" in sys.modules or importlib.util.find_spec("torchstain"):
        he, maxc, failed = [], [], 0
        for img in train:
            m = _macenko()
            try:
                m.fit(img)
            except (ValueError, np.linalg.LinAlgError):
                failed += 1
                continue
            he.append(m.HERef)
            maxc.append(m.maxCRef)
        he = np.median(he, axis=0)
        ref["macenko"] = (he / np.linalg.norm(he, axis=0), np.median(maxc, axis=0), failed)
    return ref


def normalise(name: str, img: np.ndarray, ref: dict) -> np.ndarray:
    """``img`` (uint8 RGB) mapped to the reference by normaliser ``name`` (uint8 RGB)."""
    x = img.reshape(-1, 3).astype(np.float64)
    if name == "none":
        return img
    if name == "reinhard":
        from skimage.color import lab2rgb

        lab = _lab(img)
        mu, sd = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
        out = (lab - mu) / np.maximum(sd, 1e-6) * ref["reinhard"][1] + ref["reinhard"][0]
        return _u8(255 * lab2rgb(out))
    if name == "macenko":
        m = _macenko()
        m.HERef, m.maxCRef = ref["macenko"][0], ref["macenko"][1]
        return m.normalize(img, stains=False)[0]
    if name == "percentile":
        lo, hi = np.percentile(x, (1, 99), axis=0)
        rlo, rhi = ref["percentile"]
        return _u8((x - lo) / np.maximum(hi - lo, 1) * (rhi - rlo) + rlo).reshape(img.shape)
    if name == "greyworld":
        return _u8(x * ref["greyworld"] / np.maximum(x.mean(0), 1)).reshape(img.shape)
    if name == "histmatch":
        from skimage.exposure import match_histograms

        return _u8(match_histograms(img, ref["histmatch"], channel_axis=-1))
    raise ValueError(f"unknown normaliser {name!r}; choose from {NORMALISERS}")


def colour_like(img: np.ndarray, transform: dict) -> bool:
    """The gating rule: three channels that differ (median max - min over R, G, B above 4 % of
    the image's range) and a bright background (the shipped ``invert="auto"`` flips it)."""
    from sciconv.preprocess._transform import resolve_input_transform

    if img.ndim != 3 or img.shape[-1] < 3:
        return False
    x = img[..., :3].astype(np.float32)
    spread = np.median(x.max(-1) - x.min(-1))
    if spread <= 0.04 * max(float(np.ptp(x)), 1.0):
        return False
    return resolve_input_transform(x, transform).flip_at is not None


def montage(path: Path, images, names, ref) -> None:
    from PIL import Image

    rows = [np.concatenate([normalise(n, img, ref) for n in names], axis=1) for img in images]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    print(f"montage ({' | '.join(names)}; one row per image) -> {path}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    rn, lv = _benchmark("real_nuclei"), _benchmark("real_nuclei_levers")
    rn.add_division_arguments(p)
    p.add_argument("--normalisers", default=",".join(NORMALISERS))
    p.add_argument("--torchstain", type=Path, default=None, help="folder holding torchstain")
    p.add_argument("--no-grey", action="store_true", help="skip the forced grey-image runs")
    p.add_argument("--no-rule-count", action="store_true", help="skip counting the gating rule")
    p.add_argument("--montage", type=Path, default=None, help="write a before/after PNG here")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args(argv)
    if a.torchstain:
        sys.path.insert(0, str(a.torchstain))
    names = ["none"] + [n for n in a.normalisers.split(",") if n and n != "none"]  # none first
    for n in names:
        if n not in NORMALISERS:
            p.error(f"unknown normaliser {n!r}; choose from {NORMALISERS}")

    from PIL import Image

    import sciconv as sc
    from sciconv.metrics import average_precision

    ts = rn._train_script()
    train_ids, _ = ts.load_split(a.data, a.val_ids, ("color",))
    load = lambda i: np.asarray(Image.open(a.data / "images" / f"{i}.png"))[..., :3]  # noqa: E731
    t0 = time.time()
    ref = fit_references([load(i) for i in train_ids])
    print(f"references from {len(train_ids)} colour training images ({time.time() - t0:.1f} s)")
    if "macenko" in ref:
        he, maxc, failed = ref["macenko"]
        print(f"  macenko stain matrix (cols H, E) {he.round(3).tolist()}, maxC {maxc.round(3)}, "
              f"fit failed on {failed}")  # fmt: skip
    elif "macenko" in names:
        print("  torchstain not importable: macenko skipped")
        names.remove("macenko")
    print("  reinhard LAB mean/std", [v.round(2).tolist() for v in ref["reinhard"]])
    print("  percentile 1/99", ref["percentile"].round(1).tolist())

    val = set(a.val_ids.read_text().split())
    eval_set = rn.load_eval_set(a.data, val, ("color", "gray_bright"))
    choose, report = lv.halves(eval_set)
    if a.montage:
        colour = sorted((e for e in eval_set if e[0] == "color"), key=lambda e: e[2].mean())
        montage(a.montage, [colour[k][2] for k in (0, 4, 9, 13)], names, ref)

    model = sc.models.pretrained("nuclei")
    transform = sc.models.get_metadata(model)["input_transform"]
    gate = {e[1]: colour_like(e[2], transform) for e in eval_set}
    fires = {m: sum(gate[e[1]] for e in eval_set if e[0] == m) for m in ("color", "gray_bright")}
    print("gating rule fires on validation images:", fires)

    def run(img):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = sc.inference.predict_instances(model, img, precision="float32", progress=False)
        return pred, time.perf_counter() - t

    out: dict = {"references": {"macenko_failed": ref.get("macenko", (0, 0, 0))[2]}}
    per_image: dict = {}
    for n in names:
        rows, t_norm, t_pred = [], [], []
        for modality, image_id, img, truth in eval_set:
            if modality == "gray_bright" and a.no_grey and n != "none":
                continue
            t = time.perf_counter()
            try:
                x = normalise(n, img, ref)
            except (ValueError, np.linalg.LinAlgError) as err:
                print(f"  {n} failed on {modality} {image_id}: {err}")
                x = img
            dn = time.perf_counter() - t
            pred, dt = run(x)
            if modality == "color":  # timings of the 256 x 320 colour images
                t_norm.append(dn)
                t_pred.append(dt)
            ap = average_precision(truth, pred)["ap"]
            per_image[(n, image_id)] = (float(ap[0]), float(np.mean(ap)))
            rows.append((modality, image_id, truth, pred))
        res = {}
        for label, keep in (("all", None), ("choose", choose), ("report", report)):
            sub = [(m, t, pr) for m, i, t, pr in rows if keep is None or i in keep]
            res[label] = {m: {k: d[k] for k in ("n", "AP@0.5", "AP@0.5:0.9")}
                          for m, d in rn.score(sub).items()}  # fmt: skip
        col = [e[1] for e in eval_set if e[0] == "color"]
        delta = np.array([np.subtract(per_image[(n, i)], per_image[("none", i)]) for i in col])
        res["delta"] = {"mean": delta.mean(0).tolist(),
                        "se": (delta.std(0, ddof=1) / np.sqrt(len(col))).tolist()}  # fmt: skip
        res["norm_ms"] = 1e3 * float(np.median(t_norm))
        res["predict_s"] = float(np.median(t_pred))
        out[n] = res
        print(f"  {n} done ({sum(t_pred) + sum(t_norm):.0f} s)", flush=True)

    grey_none = out["none"]["all"]["gray_bright"]
    f = lambda d, m: f"{d[m]['AP@0.5']:.3f} {d[m]['AP@0.5:0.9']:.3f}" if m in d else "    -     -"  # noqa: E731
    print("\nAP@0.5 AP@.5:.9 (mean over images); delta = mean per-image change vs none (+- SE)")
    print("timings: median over the colour images (256 x 320), 2 shared CPU cores")
    print(f"{'normaliser':11s} {'colour 14':>11s} {'choose 7':>11s} {'report 7':>11s} "
          f"{'delta AP50':>13s} {'delta .5:.9':>13s} {'grey forced':>11s} {'grey gated':>11s} "
          f"{'norm ms':>7s} {'pred s':>6s}")  # fmt: skip
    gated = f"{grey_none['AP@0.5']:.3f} {grey_none['AP@0.5:0.9']:.3f}"
    for n in names:
        r = out[n]
        d, se = r["delta"]["mean"], r["delta"]["se"]
        forced = f(r["all"], "gray_bright")
        print(f"{n:11s} {f(r['all'], 'color'):>11s} {f(r['choose'], 'color'):>11s} "
              f"{f(r['report'], 'color'):>11s} {d[0]:+.3f}+-{se[0]:.3f} {d[1]:+.3f}+-{se[1]:.3f} "
              f"{forced:>11s} {gated:>11s} {r['norm_ms']:7.1f} {r['predict_s']:6.2f}")  # fmt: skip
    best = max(names, key=lambda n: out[n]["choose"]["color"]["AP@0.5"])
    print(f"picked on the choose half: {best}; report half AP@0.5 "
          f"{out[best]['report']['color']['AP@0.5']:.3f} vs none "
          f"{out['none']['report']['color']['AP@0.5']:.3f}")  # fmt: skip
    out.update(picked=best, grey_none=grey_none, gate=gate)
    out["per_image"] = {f"{n} {i}": v for (n, i), v in per_image.items()}

    if not a.no_rule_count:
        import csv

        counts: dict = {}
        for r in csv.DictReader(open(a.data / "index.csv")):
            c = counts.setdefault(r["modality"], [0, 0, []])
            fired = colour_like(load(r["id"]), transform)
            c[0], c[1] = c[0] + fired, c[1] + 1
            if fired != (r["modality"] == "color"):
                c[2].append(r["id"])
        print("gating rule over all training-folder images (fires, images, wrong ids):", counts)
        out["rule_counts"] = counts
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=float) + "\n")
    return out


if __name__ == "__main__":
    main()
