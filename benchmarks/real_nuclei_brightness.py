"""The pretrained nuclei model on real fluorescence images re-exposed as a raw camera records them:
``brightness="auto"`` and ``denoise="auto"`` of ``predict_instances`` against neither.

The 15 bundled real fluorescence images (``data/real/nuclei``, 8-bit, stretched for display by
their authors) are re-exposed as a 16-bit camera would record them: a dark offset of 100 counts,
the image's brightness scaled to 2000 counts at its maximum, Poisson noise. Forms:

- ``16-bit raw``: that alone;
- ``5% nuclei 8x`` / ``5% nuclei 20x``: 5 % of the nuclei (at least one, drawn at random) 8 or 20
  times brighter (mitotic or clumped nuclei, a bright stain blob);
- ``lognormal 0.7``: every nucleus's brightness times a log-normal factor (sigma 0.7);
- ``vignette 3x``: illumination falling to a third in the corners;
- ``background gradient``: a background rising by 600 counts from left to right;
- ``N photons``: low light, Poisson counts with N photons at the image's maximum, no offset
  (N = 10, 30, 120); and 10 photons over 2 of background, with an offset of 100 counts;
- ``N grey levels``: a dim signal in a 16-bit container, no noise: 500 + the image rounded to
  N levels (N = 7, 24);
- hot pixels: 12-bit data (x16 in uint16) with 5 pixels, or 0.1 % of them, at 65535; the image
  as float in [0, 1] with 5 pixels at 1000.

AP@0.5 (mean over images) with the defaults (``brightness="auto"``, ``denoise="auto"``) and with
both None (the first pass as it is), side by side; how many images were segmented again because
their nuclei came out faint, and because they came out noisy. ``--validation`` also runs the 99
validation images of ``benchmarks/real_nuclei.py`` as they are, to show where the rules trigger
there (they should not). ``--mosaic SIDE`` instead tiles the images' top-left 256 x 256 into one
SIDE x SIDE mosaic (its labels likewise), re-exposes the mosaic as a whole and compares the
whole-image call with the block-wise one (``block=--block``, the checks decided once from every
block's objects), with the checks on and off. ``--normalize JSON`` replaces the model's
normalization (e.g. the training one without the clip: ``'{"method": "percentile", "low":
1.0, "high": 99.8, "per_channel": false}'``).

    python benchmarks/real_nuclei_brightness.py
    python benchmarks/real_nuclei_brightness.py --validation ../shared/data/dsb2018_train
    python benchmarks/real_nuclei_brightness.py --mosaic 1536 --block 512
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def forms(image: np.ndarray, truth: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The image as it is and re-exposed (module doc); uint16 except the first."""
    rng = np.random.default_rng(seed)
    f = image.astype(np.float64) / max(float(image.max()), 1.0)
    ids = np.unique(truth)[1:]

    def camera(signal):
        return (100 + rng.poisson(np.clip(signal, 0, None) * 2000)).astype(np.uint16)

    def brighter(times):
        out = f.copy()
        pick = rng.choice(ids, max(1, len(ids) // 20), replace=False)
        out[np.isin(truth, pick)] *= times
        return out

    def hot(x, n, value):
        x = x.copy()
        x[rng.integers(0, x.shape[0], n), rng.integers(0, x.shape[1], n)] = value
        return x

    factor = np.ones(int(truth.max()) + 1)
    factor[ids] = np.exp(rng.normal(0, 0.7, ids.size))
    h, w = f.shape
    yy, xx = np.mgrid[:h, :w]
    r2 = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / ((h / 2) ** 2 + (w / 2) ** 2)
    return {
        "as it is": image,
        "16-bit raw": camera(f),
        "5% nuclei 8x": camera(brighter(8)),
        "5% nuclei 20x": camera(brighter(20)),
        "lognormal 0.7": camera(np.where(truth > 0, f * factor[truth], f)),
        "vignette 3x": camera((f + 0.1) * (1 - 0.67 * r2)),
        "background gradient": camera(f + 0.3 * xx / w),
        **{f"{n} photons": rng.poisson(f * n).astype(np.uint16) for n in (10, 30, 120)},
        "10 photons, 2 of sky, offset 100": (100 + rng.poisson(f * 10 + 2)).astype(np.uint16),
        **{f"{n} grey levels": (500 + np.round(f * (n - 1))).astype(np.uint16) for n in (7, 24)},
        "12-bit, 5 hot pixels": hot(image.astype(np.uint16) * 16, 5, 65535),
        "12-bit, 0.1% hot pixels": hot(image.astype(np.uint16) * 16, image.size // 1000, 65535),
        "float, 5 pixels at 1000": hot(f.astype(np.float32), 5, 1000.0),
    }


def segment(sc, model, x, mode, normalize="model", **blocks):
    """(labels, (segmented again as faint, as noisy)) with both rules "auto" or None."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = sc.inference.predict_instances(
            model,
            x,
            precision="float32",
            progress=False,
            brightness=mode,
            denoise=mode,
            normalize=normalize,
            **blocks,
        )
    said = " ".join(str(w.message) for w in caught if "segmenting again" in str(w.message))
    return pred, ("faint against" in said, "smoothed with a Gaussian" in said)


def validation_images(dsb: Path):
    """(id, modality, image, labels) of the validation division (``benchmarks/real_nuclei.py``)."""
    import sys

    import tifffile
    from PIL import Image

    sys.path.insert(0, str(ROOT / "tools"))
    from nuclei_data import in_val_division

    for row in csv.DictReader(open(dsb / "index.csv")):
        if in_val_division(row["id"]):
            img = np.asarray(Image.open(dsb / "images" / f"{row['id']}.png"))[..., :3]
            lab = tifffile.imread(dsb / "labels" / f"{row['id']}.tif")
            yield row["id"], row["modality"], img, lab


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--folder", type=Path, default=ROOT / "data" / "real" / "nuclei")
    p.add_argument("--validation", type=Path, default=None, help="DSB2018 folder (optional)")
    p.add_argument("--normalize", default="model", help="a normalization spec (JSON)")
    p.add_argument("--mosaic", type=int, default=None, metavar="SIDE", help="module doc")
    p.add_argument("--block", type=int, default=512, help="block side with --mosaic")
    a = p.parse_args(argv)
    if a.mosaic is not None:
        return mosaic_table(a)
    import tifffile

    import sciconv as sc

    model = sc.models.pretrained("nuclei")
    norm = a.normalize if a.normalize == "model" else json.loads(a.normalize)
    scores: dict = {}
    for path in sorted((a.folder / "images").glob("*.tif")):
        image = tifffile.imread(path)
        truth = tifffile.imread(a.folder / "labels" / path.name)
        for form, x in forms(image, truth).items():
            for mode in ("auto", None):
                pred, again = segment(sc, model, x, mode, norm)
                ap = float(sc.metrics.average_precision(truth, pred)["ap"][0])
                scores.setdefault(form, {}).setdefault(mode, []).append((ap, again))
    n = len(scores["as it is"]["auto"])
    print(f"AP@0.5 over {n} images; both None | auto (again as faint, as noisy)")
    table = {}
    for form, by in scores.items():
        off, auto = (np.mean([s for s, _ in by[m]]) for m in (None, "auto"))
        faint, noisy = (sum(again[k] for _, again in by["auto"]) for k in (0, 1))
        table[form] = {"none": float(off), "auto": float(auto), "faint": faint, "noisy": noisy}
        print(f"  {form:22s} {off:.3f} | {auto:.3f} ({faint}, {noisy})")
    if a.validation is not None:
        per = {}
        for image_id, modality, img, lab in validation_images(a.validation):
            pred, again = segment(sc, model, img, "auto", norm)
            ap = float(sc.metrics.average_precision(lab, pred)["ap"][0])
            per.setdefault(modality, []).append((ap, again, image_id))
        for modality, rows in per.items():
            hits = [i[:8] for _, again, i in rows if any(again)]
            mean = np.mean([s for s, _, _ in rows])
            print(f"validation {modality}: AP@0.5 {mean:.3f}, segmented again: {hits or 'none'}")
            table[f"validation {modality}"] = {"auto": float(mean), "again": len(hits)}
    return table


def mosaic(folder: Path, side: int, cell: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(image, labels): the images' top-left ``cell`` squares tiled row by row, labels unique."""
    import tifffile

    paths = sorted((folder / "images").glob("*.tif"))
    image, labels = np.zeros((side, side), np.uint8), np.zeros((side, side), np.int32)
    for k in range((side // cell) ** 2):
        path = paths[k % len(paths)]
        y, x = divmod(k, side // cell)
        window = np.s_[y * cell : (y + 1) * cell, x * cell : (x + 1) * cell]
        img = tifffile.imread(path)[:cell, :cell]
        lab = tifffile.imread(folder / "labels" / path.name)[:cell, :cell].astype(np.int32)
        image[window] = img.mean(axis=-1) if img.ndim == 3 else img
        labels[window] = np.where(lab > 0, lab + labels.max(), 0)
    return image, labels


def mosaic_table(a) -> dict:
    """Whole-image against block-wise calls on a mosaic's forms (``--mosaic``)."""
    import time

    import sciconv as sc

    model = sc.models.pretrained("nuclei")
    image, truth = mosaic(a.folder, a.mosaic)
    picked = ("16-bit raw", "5% nuclei 8x", "5% nuclei 20x", "10 photons", "30 photons")
    runs = {
        "whole, auto": ("auto", {}),
        "blocks, None": (None, {"block": a.block}),
        "blocks, auto": ("auto", {"block": a.block}),
    }
    print(f"{a.mosaic}^2 mosaic, {int(truth.max())} nuclei, block {a.block}: AP@0.5 (s)")
    table = {}
    for form in picked:
        x = forms(image, truth)[form]
        row = {}
        for name, (mode, blocks) in runs.items():
            t0 = time.perf_counter()
            pred, again = segment(sc, model, x, mode, **blocks)
            ap = float(sc.metrics.average_precision(truth, np.asarray(pred))["ap"][0])
            row[name] = {"ap": ap, "seconds": time.perf_counter() - t0, "again": again}
        table[form] = row
        cells = " | ".join(f"{n} {v['ap']:.3f} ({v['seconds']:.0f})" for n, v in row.items())
        print(f"  {form:16s} {cells}")
    return table


if __name__ == "__main__":
    main()
