"""Calibrated uncertainty, measured: per-object (DSB2018 nuclei) and per-class (galaxies).

(a) nuclei: the pretrained ``sciconv.models.pretrained("nuclei")`` model on the DSB2018
    validation division (the same division as ``benchmarks/real_nuclei.py``: fluorescence ids in
    ``data/real/nuclei_val_ids.txt``, the sha256 rule for ``color`` and ``gray_bright``). Each
    image is predicted with ``sciconv.inference.predict_uncertainty(method="tta")`` (the 8 D4
    transforms; mean and std maps), segmented with the model's recorded post-processing on the
    mean, and every predicted object gets ``object_scores`` (score = mean foreground probability,
    uncertainty = mean std over the object). An object is a true positive when it matches a true
    nucleus by ``sciconv.metrics.matching``'s rule (one-to-one, IoU > 0.5), else a false
    positive. Reported, pooled over the images: ROC AUC of the uncertainty for telling false
    positives from true ones (targets: >= 0.85), precision before and after dropping the 10 %
    most uncertain objects (target: +3 points), the same two figures for ``1 - score`` (no
    std), and the time of the uncertainty call against a plain
    ``predict_tiled`` call on the same images, interleaved (medians and ratio; 8 passes expected).
(b) galaxies: a ``sciconv.models.classifier`` trained on ``sciconv.simulate.galaxy_cutouts``
    (train / validation / test drawn with different seeds), temperature fitted on the validation
    part with ``sciconv.calibration.calibrate``; expected calibration error (15 bins) on the test
    part before and after (target after: <= 0.03), and the accuracy (unchanged by design).
(c) regression: a ``sciconv.models.regressor(..., uncertainty=True)`` (mean and log-variance,
    trained with ``sciconv.losses.gaussian_nll``) that measures the size of simulated galaxies:
    the effective radius ``r_eff`` (pixels) of the ellipticals and spirals of
    ``sciconv.simulate.galaxy_cutouts`` (train / validation / test with different seeds; each
    cutout normalized on its own, so only the shape tells the size). Reported on the test part:
    the fraction of truths within ±1 sigma (target 0.68 ± 0.05) and ±2 sigma (0.954 for Gaussian
    errors), before and after ``sciconv.calibration.calibrate_variance`` (one factor on every
    sigma, fitted on the validation part: the Gaussian maximum likelihood, and the 1-sigma
    quantile), with the RMSE, the median sigma and the rank correlation between sigma and the
    absolute error (do larger error bars go with larger errors?).

    nice -n 10 python benchmarks/bench_uncertainty.py                       # all three parts
    nice -n 10 python benchmarks/bench_uncertainty.py --parts nuclei --max-per-modality 10
    nice -n 10 python benchmarks/bench_uncertainty.py --parts regression
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------------------------ helpers
def match_objects(truth: np.ndarray, pred: np.ndarray, *, iou: float = 0.5) -> dict[int, bool]:
    """{predicted label: True when it matches a true object} by the library's rule, as every
    benchmark scores: ``sciconv.metrics.matching`` (one-to-one, IoU strictly above ``iou``; an
    object split in two halves of IoU 0.5 is two false positives, not two true ones)."""
    from sciconv.metrics import matching

    matched = set(matching(truth, pred, thresh=iou, pairs=True)["pred_ids"].tolist())
    ids = np.unique(np.asarray(pred))
    return {int(label): int(label) in matched for label in ids[ids != 0].tolist()}


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (Mann-Whitney, ties averaged)."""
    from scipy.stats import rankdata

    pos = positive.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_after_dropping(uncertainty: np.ndarray, tp: np.ndarray, fraction: float) -> float:
    keep = np.argsort(uncertainty, kind="stable")[: round(len(tp) * (1 - fraction))]
    return float(tp[keep].mean())


# ------------------------------------------------------------------------------------- nuclei
def run_nuclei(args) -> dict:
    from real_nuclei import load_eval_set

    import sciconv as sc
    from sciconv.inference import predict_uncertainty
    from sciconv.postprocess import object_scores

    val_ids = set(args.val_ids.read_text().split())
    eval_set = load_eval_set(args.data, val_ids, args.modalities.split(","), args.max_per_modality)
    print(f"[nuclei] {len(eval_set)} validation images", flush=True)
    model = sc.models.pretrained("nuclei")
    post = dict(sc.models.get_metadata(model).get("postprocess") or {})
    rows, t_plain, t_unc = [], [], []
    for i, (modality, image_id, img, truth) in enumerate(eval_set):
        t0 = time.perf_counter()
        if i < args.timing_images:  # the reference, interleaved: one plain pass
            sc.inference.predict_tiled(model, img, progress=False)
        t1 = time.perf_counter()
        mean, std = predict_uncertainty(model, img, method="tta", progress=False)
        t2 = time.perf_counter()
        if i < args.timing_images:
            t_plain.append(t1 - t0)
            t_unc.append(t2 - t1)
        labels = sc.postprocess.instances(mean, **post)
        table = object_scores(labels, mean, std)
        matched = match_objects(truth, labels)
        for label, score, unc in zip(table["label"], table["score"], table["uncertainty"]):
            rows.append((modality, float(score), float(unc), matched[int(label)]))
        print(
            f"  {i + 1}/{len(eval_set)} {modality} {image_id[:10]} {img.shape[:2]} "
            f"objects {len(table)}",
            flush=True,
        )
    modality = np.array([r[0] for r in rows])
    score = np.array([r[1] for r in rows])
    unc = np.array([r[2] for r in rows])
    tp = np.array([r[3] for r in rows], dtype=float)
    out = {"images": len(eval_set), "objects": len(rows), "false_positives": int((tp == 0).sum())}
    groups = {"all": np.ones(len(rows), bool)}
    groups.update({m: modality == m for m in sorted(set(modality))})
    for name, sel in groups.items():
        g = {
            "objects": int(sel.sum()),
            "precision": float(tp[sel].mean()),
            "auc_std": roc_auc(unc[sel], tp[sel] == 0),
            "precision_drop10_std": precision_after_dropping(unc[sel], tp[sel], 0.10),
            "auc_1-score": roc_auc(1 - score[sel], tp[sel] == 0),
            "precision_drop10_1-score": precision_after_dropping(1 - score[sel], tp[sel], 0.10),
        }
        out[name] = g
        print(
            f"[nuclei] {name:12s} objects {g['objects']:5d}  precision {g['precision']:.3f}  "
            f"| std: AUC {g['auc_std']:.3f}, precision after dropping 10 % "
            f"{g['precision_drop10_std']:.3f} "
            f"({100 * (g['precision_drop10_std'] - g['precision']):+.1f} points)  "
            f"| 1-score: AUC {g['auc_1-score']:.3f}, "
            f"{g['precision_drop10_1-score']:.3f}",
            flush=True,
        )
    ratio = float(np.median(np.array(t_unc) / np.array(t_plain)))
    out["time_plain_median_s"] = float(np.median(t_plain))
    out["time_tta_median_s"] = float(np.median(t_unc))
    out["time_ratio_median"] = ratio
    print(
        f"[nuclei] time per image, median: plain {out['time_plain_median_s']:.2f} s, "
        f"tta uncertainty {out['time_tta_median_s']:.2f} s, ratio {ratio:.2f} (8 passes; "
        f"first {len(t_plain)} images)",
        flush=True,
    )
    return out


# ----------------------------------------------------------------------------------- galaxies
def _galaxy_split(n_per_class: int, size: int, seed: int):
    from sciconv.preprocess import normalize
    from sciconv.simulate import galaxy_cutouts

    images, labels, names, _ = galaxy_cutouts(n_per_class, size=size, seed=seed)
    x = np.stack([normalize(im, method="percentile") for im in images]).astype("float32")
    return x, labels, names


def run_galaxies(args) -> dict:
    import keras

    from sciconv.calibration import calibrate, expected_calibration_error
    from sciconv.models import classifier, get_metadata

    keras.utils.set_random_seed(args.seed)
    x_tr, y_tr, names = _galaxy_split(args.galaxies_train, args.galaxy_size, args.seed)
    x_va, y_va, _ = _galaxy_split(args.galaxies_val, args.galaxy_size, args.seed + 1)
    x_te, y_te, _ = _galaxy_split(args.galaxies_test, args.galaxy_size, args.seed + 2)
    print(
        f"[galaxies] train {len(y_tr)}, validation {len(y_va)}, test {len(y_te)} "
        f"cutouts of {args.galaxy_size} px, classes {names}",
        flush=True,
    )
    model = classifier(x_tr.shape[1:], len(names), filters=(16, 32), dense=(64,), dropout=0.3)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    model.fit(
        x_tr,
        y_tr,
        epochs=args.galaxy_epochs,
        batch_size=32,
        verbose=2,
        validation_data=(x_va, y_va),
    )
    train_s = time.perf_counter() - t0
    p_before = np.asarray(model.predict(x_te, batch_size=128, verbose=0))
    calibrated = calibrate(model, x_va, y_va)
    p_after = np.asarray(calibrated.predict(x_te, batch_size=128, verbose=0))
    out = {
        "temperature": get_metadata(calibrated)["temperature"],
        "ece_before": expected_calibration_error(p_before, y_te),
        "ece_after": expected_calibration_error(p_after, y_te),
        "accuracy_before": float((p_before.argmax(1) == y_te).mean()),
        "accuracy_after": float((p_after.argmax(1) == y_te).mean()),
        "train_s": round(train_s, 1),
    }
    print(
        f"[galaxies] temperature {out['temperature']:.3f}; test ECE before {out['ece_before']:.4f}"
        f", after {out['ece_after']:.4f}; accuracy {out['accuracy_before']:.3f} -> "
        f"{out['accuracy_after']:.3f}",
        flush=True,
    )
    if args.figure:
        from sciconv.viz import plot_reliability

        fig = plot_reliability(
            {"before": p_before, "after temperature scaling": p_after},
            y_te,
            title="galaxy classifier, test cutouts",
        )
        fig.savefig(args.figure, dpi=100)
    return out


# --------------------------------------------------------------------------------- regression
def _size_split(n_per_class: int, size: int, seed: int):
    """Normalized cutouts of the extended galaxies and their r_eff (pixels)."""
    from sciconv.preprocess import normalize
    from sciconv.simulate import galaxy_cutouts

    images, labels, names, params = galaxy_cutouts(n_per_class, size=size, seed=seed)
    keep = labels != names.index("point")  # stars have no size
    x = np.stack([normalize(im, method="percentile") for im in images[keep]]).astype("float32")
    return x, params["r_eff"][keep].astype("float32")


def _coverage_row(y, pred, *, name: str) -> dict:
    from scipy.stats import spearmanr

    from sciconv.calibration import interval_coverage, regression_moments

    mean, std = regression_moments(pred)
    err = np.abs(y.reshape(mean.shape) - mean)
    row = {
        "coverage_1sigma": interval_coverage(y, pred, sigma=1.0),
        "coverage_2sigma": interval_coverage(y, pred, sigma=2.0),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "median_sigma": float(np.median(std)),
        "spearman_sigma_abs_error": float(spearmanr(std.ravel(), err.ravel())[0]),
    }
    print(
        f"[regression] {name:28s} within 1 sigma {row['coverage_1sigma']:.3f} (target 0.68 "
        f"± 0.05), within 2 sigma {row['coverage_2sigma']:.3f} (0.954); RMSE {row['rmse']:.3f} "
        f"px, median sigma {row['median_sigma']:.3f} px, rank corr(sigma, |error|) "
        f"{row['spearman_sigma_abs_error']:.3f}",
        flush=True,
    )
    return row


def run_regression(args) -> dict:
    import keras

    from sciconv.calibration import calibrate_variance, fit_variance_scale
    from sciconv.losses import gaussian_nll
    from sciconv.models import regressor

    keras.utils.set_random_seed(args.seed)
    t0 = time.perf_counter()
    x_tr, y_tr = _size_split(args.sizes_train, args.size_cutout, args.seed + 10)
    x_va, y_va = _size_split(args.sizes_val, args.size_cutout, args.seed + 11)
    x_te, y_te = _size_split(args.sizes_test, args.size_cutout, args.seed + 12)
    print(
        f"[regression] r_eff of simulated galaxies: train {len(y_tr)}, validation {len(y_va)}, "
        f"test {len(y_te)} cutouts of {args.size_cutout} px (r_eff {y_tr.min():.2f}-"
        f"{y_tr.max():.2f} px, std {y_tr.std():.2f}); simulated in "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    model = regressor(x_tr.shape[1:], 1, filters=(16, 32, 64), dense=(64,), uncertainty=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=gaussian_nll)
    t0 = time.perf_counter()
    model.fit(
        x_tr,
        y_tr,
        epochs=args.size_epochs,
        batch_size=32,
        verbose=2,
        validation_data=(x_va, y_va),
    )
    train_s = time.perf_counter() - t0
    pred_va = np.asarray(model.predict(x_va, batch_size=256, verbose=0))
    pred_te = np.asarray(model.predict(x_te, batch_size=256, verbose=0))
    out = {"train_s": round(train_s, 1), "n_train": len(y_tr), "n_test": len(y_te)}
    out["before"] = _coverage_row(y_te, pred_te, name="test, as trained")
    out["validation_before"] = _coverage_row(y_va, pred_va, name="validation, as trained")
    for method in ("nll", "coverage"):
        s = fit_variance_scale(pred_va, y_va, method=method)
        calibrated = calibrate_variance(model, scale=s, method=method)
        pred = np.asarray(calibrated.predict(x_te, batch_size=256, verbose=0))
        out[f"scale_{method}"] = s
        out[f"after_{method}"] = _coverage_row(y_te, pred, name=f"test, sigma x {s:.3f} ({method})")
    return out


def main(argv=None) -> dict:
    here = ROOT.parent
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--parts", default="nuclei,galaxies,regression")
    p.add_argument("--data", type=Path, default=here.parent / "shared" / "data" / "dsb2018_train")
    p.add_argument("--val-ids", type=Path, default=here / "data" / "real" / "nuclei_val_ids.txt")
    p.add_argument("--modalities", default="fluo,color,gray_bright")
    p.add_argument("--max-per-modality", type=int, default=None)
    p.add_argument("--timing-images", type=int, default=5, help="images timed against a plain call")
    p.add_argument("--galaxies-train", type=int, default=400, help="cutouts per class")
    p.add_argument("--galaxies-val", type=int, default=300)
    p.add_argument("--galaxies-test", type=int, default=600)
    p.add_argument("--galaxy-size", type=int, default=32)
    p.add_argument("--galaxy-epochs", type=int, default=20)
    p.add_argument("--sizes-train", type=int, default=1000, help="cutouts per class (regression)")
    p.add_argument("--sizes-val", type=int, default=400)
    p.add_argument("--sizes-test", type=int, default=600)
    p.add_argument("--size-cutout", type=int, default=32)
    p.add_argument("--size-epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", type=Path, default=None, help="save the reliability diagram here")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    report = {}
    parts = [s for s in a.parts.split(",") if s]
    for part in parts:
        if part not in ("nuclei", "galaxies", "regression"):
            p.error(f"unknown part {part!r}; choose from nuclei, galaxies, regression")
    if "galaxies" in parts:
        report["galaxies"] = run_galaxies(a)
    if "regression" in parts:
        report["regression"] = run_regression(a)
    if "nuclei" in parts:
        report["nuclei"] = run_nuclei(a)
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
