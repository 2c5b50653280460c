"""Instance segmentation of real nuclei (DSB2018): sciconv against classic and plain-Keras anchors.

Fixed division of ``../shared/data/dsb2018_train``: the fluorescence ids in
``data/real/nuclei_val_ids.txt`` (sha256 rule, 82 images) are the validation part, and the same
sha256 rule picks the validation part of the ``color`` (14 of 91) and ``gray_bright`` (3 of 12)
images. Only validation images are scored. The pretrained model was fine-tuned on the other images
of all three modalities (``tools/train_pretrained_nuclei.py --modalities fluo,color,gray_bright``);
the methods trained here use only the other fluorescence images (346), so for them ``color`` and
``gray_bright`` are out-of-domain figures.

Methods (all in this one run, same images, same metric):

``pretrained``  ``sciconv.models.pretrained("nuclei")`` + ``sciconv.inference.predict_instances``
                on the raw RGB pixels after the model's stored input transform
                (``sciconv.preprocess.apply_input_transform``: grey = mean of R, G, B; brightfield
                flipped so nuclei are bright), then the stored normalization and post-processing;
                no training here.
``otsu``        classic: percentile normalization, Gaussian (sigma 1), Otsu threshold (inverted
                when the background is the bright side), connected components, objects < 15 px
                removed.
``plain``       plain Keras U-Net of the same size (depth 3, 16 filters, no batch norm), sigmoid +
                binary cross-entropy, Adam 1e-3, ``--steps`` steps of batch 8 on 128x128 patches
                (D4 flips only), threshold 0.5 + connected components.
``generic``     the path a user takes by hand with sciconv defaults:
                ``segmenter(num_classes=2, depth=3, filters=16)`` -> ``datasets.from_pairs`` ->
                ``training.fit`` for ``--steps`` steps of batch 8 -> ``predict_tiled`` ->
                ``postprocess.instances`` (default settings).

Metric: instance AP = TP / (TP + FP + FN) at IoU thresholds 0.5 ... 0.9
(``sciconv.metrics.average_precision``: the DSB2018 rule, a match needs IoU > t strictly;
StarDist counts IoU >= t, which differs only at exact ties: up to +0.009 pooled AP, grey
brightfield at IoU 0.65), each threshold's AP and their mean averaged over images; precision /
recall / F1 and panoptic quality (PQ) at IoU 0.5 pooled over the images of a modality.
``benchmarks/real_nuclei_levers.py`` measures the pretrained model's post-processing levers (and
D4 test-time augmentation) on cached probability maps.

    nice -n 10 python benchmarks/real_nuclei.py                     # everything, 2,000 steps
    nice -n 10 python benchmarks/real_nuclei.py --steps 300 --methods otsu,plain   # quick look
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("pretrained", "otsu", "plain", "generic")


def _train_script():
    spec = importlib.util.spec_from_file_location(
        "train_pretrained_nuclei", ROOT / "tools" / "train_pretrained_nuclei.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_eval_set(data: Path, val_ids: set[str], modalities, max_per_modality=None):
    """[(modality, id, RGB uint8 (H, W, 3), labels)] of the validation division (module doc)."""
    import tifffile
    from PIL import Image

    in_val_division = _train_script().in_val_division
    rows = list(csv.DictReader(open(data / "index.csv")))
    out = []
    for modality in modalities:
        ids = sorted(
            r["id"]
            for r in rows
            if r["modality"] == modality
            and (r["id"] in val_ids if modality == "fluo" else in_val_division(r["id"]))
        )
        for image_id in ids[:max_per_modality]:
            img = np.asarray(Image.open(data / "images" / f"{image_id}.png"))[..., :3]
            lab = tifffile.imread(data / "labels" / f"{image_id}.tif").astype(np.int32)
            out.append((modality, image_id, img, lab))
    return out


def resampled(img: np.ndarray, truth: np.ndarray, factor: float, transform=None):
    """``img`` through the model's input ``transform`` and ``truth`` resampled by ``factor``
    (bilinear, anti-aliased when shrinking; the labels by nearest neighbour): nuclei at other
    sizes than the data set's, for the size benchmarks."""
    from skimage.transform import rescale

    from sciconv.preprocess import apply_input_transform

    x = np.asarray(apply_input_transform(img, transform), np.float32)
    if factor == 1:
        return x, truth
    x = rescale(x, factor, channel_axis=-1, order=1).astype(np.float32)
    truth = rescale(truth, factor, order=0, preserve_range=True, anti_aliasing=False)
    return x, truth.astype(np.int32)


def gray(img: np.ndarray) -> np.ndarray:
    """Mean of R, G, B (for fluorescence, R = G = B: the grey image itself)."""
    return img if img.ndim == 2 else img.astype(np.float32).mean(axis=-1)


def score(results):
    """results: list of (modality, truth, pred) -> {modality: figures}.

    AP at each IoU 0.5, 0.55, ..., 0.9 and their mean are averaged over the images of a modality;
    precision, recall, F1 and panoptic quality (PQ = sum of matched IoUs / (TP + FP/2 + FN/2)) at
    IoU 0.5 are pooled over them.
    """
    from sciconv.metrics import average_precision, matching

    per = {}
    for modality, truth, pred in results:
        s = average_precision(truth, pred)
        m = matching(truth, pred, thresh=0.5)
        d = per.setdefault(modality, {"ap_iou": [], "tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
        d["ap_iou"].append(s["ap"])
        d["thresholds"] = s["thresholds"]
        d["tp"] += m["tp"]
        d["fp"] += m["fp"]
        d["fn"] += m["fn"]
        d["iou"] += m["mean_matched_iou"] * m["tp"]
    table = {}
    for modality, d in per.items():
        tp, fp, fn = d["tp"], d["fp"], d["fn"]
        p = tp / max(tp + fp, 1)
        r = tp / max(tp + fn, 1)
        ap = np.mean(d["ap_iou"], axis=0)
        table[modality] = {
            "n": len(d["ap_iou"]),
            "AP@0.5": float(ap[0]),
            "AP@0.5:0.9": float(ap.mean()),
            "AP_per_IoU": {f"{t:.2f}": float(v) for t, v in zip(d["thresholds"], ap)},
            "precision": p,
            "recall": r,
            "F1": 2 * p * r / max(p + r, 1e-9),
            "PQ": d["iou"] / max(tp + 0.5 * fp + 0.5 * fn, 1e-9),
        }
    return table


# ------------------------------------------------------------------------------------- methods
def run_pretrained(eval_set, *, model_path=None, precision="float32", **_):
    import sciconv as sc
    from sciconv.preprocess import apply_input_transform

    model = sc.models.pretrained("nuclei") if model_path is None else sc.models.load(model_path)
    # predict_instances applies the model's stored input transform itself; it is applied here
    # too (idempotent: a second application changes nothing) so the figures do not depend on it.
    transform = sc.models.get_metadata(model).get("input_transform")
    if transform is None:
        print("pretrained model records no input_transform: grey = mean of R, G, B")
    return [
        (
            m,
            lab,
            sc.inference.predict_instances(
                model,
                apply_input_transform(img, transform) if transform else gray(img),
                precision=precision,
                progress=False,
            ),
        )
        for m, _, img, lab in eval_set
    ]


def otsu_labels(img: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage.filters import gaussian, threshold_otsu
    from skimage.morphology import remove_small_objects

    from sciconv.preprocess import normalize

    x = normalize(gray(img).astype(np.float32)[..., None])[..., 0]
    x = gaussian(x, sigma=1.0)
    fg = x > threshold_otsu(x)
    if fg.mean() > 0.5:  # bright background (brightfield): nuclei are the dark side
        fg = ~fg
    lab, _ = ndi.label(fg)
    return remove_small_objects(lab, max_size=14).astype(np.int32)


def run_otsu(eval_set, **_):
    return [(m, lab, otsu_labels(img)) for m, _, img, lab in eval_set]


def _training_images(train_script, data: Path, val_ids_file: Path):
    train_ids, _ = train_script.load_split(data, val_ids_file)
    pairs = [train_script.read_pair(data, i) for i in train_ids]
    return train_ids, pairs


def run_plain(eval_set, *, steps, batch, seed, data, val_ids_file, **_):
    import keras

    ts = _train_script()
    keras.utils.set_random_seed(seed)
    _, pairs = _training_images(ts, data, val_ids_file)
    sampler = ts.PatchSampler(
        [ts.normalize(i) for i, _ in pairs],
        [lab for _, lab in pairs],
        patch=128,
        target="semantic",
        seed=seed,
        zoom=(1.0, 1.0),
        intensity=False,
    )
    inputs = keras.Input((None, None, 1))
    x, skips = inputs, []
    for level in range(3):
        for _ in range(2):
            x = keras.layers.Conv2D(16 * 2**level, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    for _ in range(2):
        x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    for level in reversed(range(3)):
        x = keras.layers.Conv2DTranspose(16 * 2**level, 2, strides=2)(x)
        x = keras.layers.Concatenate()([x, skips[level]])
        for _ in range(2):
            x = keras.layers.Conv2D(16 * 2**level, 3, padding="same", activation="relu")(x)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")

    def batches():  # the training script's seeded patch stream, labels as (N, H, W, 1) floats
        for xb, yb in ts.patch_batches(sampler, batch=batch, steps=steps, seed=seed):
            yield xb, yb[..., None].astype(np.float32)

    t0 = time.time()
    model.fit(batches(), steps_per_epoch=steps, epochs=1, verbose=2)
    train_s = time.time() - t0
    from scipy import ndimage as ndi
    from skimage.morphology import remove_small_objects

    results = []
    for m, _, img, lab in eval_set:
        prob = ts.predict_prob(model, gray(img), 8)[..., 0]
        pred, _ = ndi.label(prob > 0.5)
        results.append((m, lab, remove_small_objects(pred, max_size=14).astype(np.int32)))
    return results, train_s


def run_generic(eval_set, *, steps, batch, seed, data, val_ids_file, **_):
    import keras
    import tifffile

    import sciconv as sc

    ts = _train_script()
    train_ids, pairs = _training_images(ts, data, val_ids_file)
    folder = Path(tempfile.mkdtemp(prefix="sciconv_real_nuclei_"))
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    for image_id, (img, lab) in zip(train_ids, pairs):
        tifffile.imwrite(folder / "images" / f"{image_id}.tif", img)
        tifffile.imwrite(folder / "masks" / f"{image_id}.tif", lab.astype(np.uint16))
    ds = sc.datasets.from_pairs(
        folder / "images",
        folder / "masks",
        patch_size=(128, 128),
        batch_size=batch,
        augment=True,
        seed=seed,
    )
    keras.utils.set_random_seed(seed)  # initial weights too (fit seeds only the training)
    model = sc.models.segmenter((None, None, 1), num_classes=2, depth=3, filters=16)
    epochs = 10
    t0 = time.time()
    sc.training.fit(
        model,
        ds,
        epochs=epochs,
        steps_per_epoch=max(steps // epochs, 1),
        workdir=folder / "run",
        tensorboard=False,
        verbose=2,
        seed=seed,
    )
    train_s = time.time() - t0
    results = []
    for m, _, img, lab in eval_set:
        prob = sc.inference.predict_tiled(model, gray(img), progress=False)
        results.append((m, lab, sc.postprocess.instances(prob)))
    shutil.rmtree(folder, ignore_errors=True)  # the training copies (~160 MB) and the run folder
    return results, train_s


def add_division_arguments(p: argparse.ArgumentParser) -> None:
    """``--data`` (the DSB2018 folder) and ``--val-ids`` (the fluorescence validation ids)."""
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "dsb2018_train")
    p.add_argument("--val-ids", type=Path, default=ROOT / "data" / "real" / "nuclei_val_ids.txt")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_division_arguments(p)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--modalities", default="fluo,color,gray_bright")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-per-modality", type=int, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument(
        "--model", type=Path, default=None, help="pretrained: score this .keras file instead"
    )
    p.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="float32",
        help="pretrained: compute precision of predict_instances (bfloat16 is emulated, and "
        "slow, on CPUs without native bfloat16, but its figures are the same)",
    )
    a = p.parse_args(argv)
    methods = [m for m in a.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            p.error(f"unknown method {m!r}; choose from {METHODS}")
    val_ids = set(a.val_ids.read_text().split())
    eval_set = load_eval_set(a.data, val_ids, a.modalities.split(","), a.max_per_modality)
    counts = ", ".join(f"{m}: {sum(e[0] == m for e in eval_set)}" for m in a.modalities.split(","))
    print(f"evaluation set: {len(eval_set)} images ({counts})")
    runners = {
        "pretrained": run_pretrained,
        "otsu": run_otsu,
        "plain": run_plain,
        "generic": run_generic,
    }
    report = {}
    for m in methods:
        t0 = time.time()
        out = runners[m](
            eval_set,
            steps=a.steps,
            batch=a.batch,
            seed=a.seed,
            data=a.data,
            val_ids_file=a.val_ids,
            model_path=a.model,
            precision=a.precision,
        )
        results, train_s = out if isinstance(out, tuple) else (out, 0.0)
        report[m] = {
            "table": score(results),
            "train_s": round(train_s, 1),
            "total_s": round(time.time() - t0, 1),
        }
        print(f"\n== {m} (train {train_s:.0f} s, total {time.time() - t0:.0f} s)")
        print(
            f"{'modality':12s} {'n':>4s} {'AP@0.5':>7s} {'AP.5:.9':>7s} {'prec':>6s} "
            f"{'recall':>6s} {'F1':>6s} {'PQ':>6s}"
        )
        for modality, row in report[m]["table"].items():
            print(
                f"{modality:12s} {row['n']:4d} {row['AP@0.5']:7.3f} {row['AP@0.5:0.9']:7.3f} "
                f"{row['precision']:6.3f} {row['recall']:6.3f} {row['F1']:6.3f} "
                f"{row['PQ']:6.3f}",
                flush=True,
            )
        print("AP at IoU " + " ".join(next(iter(report[m]["table"].values()))["AP_per_IoU"]))
        for modality, row in report[m]["table"].items():
            aps = " ".join(f"{v:4.3f}" for v in row["AP_per_IoU"].values())
            print(f"  {modality:12s} {aps}", flush=True)
    report["settings"] = {
        "steps": a.steps,
        "batch": a.batch,
        "seed": a.seed,
        "modalities": a.modalities,
        "model": None if a.model is None else str(a.model),
        "precision": a.precision,
        "python": sys.version.split()[0],
    }
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
