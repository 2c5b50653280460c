"""Bad-pixel masks in training: garbage pixels that are masked do no harm (issue 17 target).

A U-Net segmenter (``sciconv.models.segmenter``) is trained on simulated nuclei
(``sciconv.simulate.nuclei``) three ways, with the same seed, patches and steps:

1. ``clean``: the training images as simulated;
2. ``garbage+mask``: 20 % of each training image's pixels, in random square blocks, replaced by
   garbage (uniform noise up to 5x the image's maximum: dead columns, saturation, cosmic-ray
   trails, a readout glitch), and flagged in a FITS ``DQ`` extension of the image file, which
   ``sciconv.io`` reads as the bad-pixel mask: ``datasets.from_pairs`` gives those pixels weight 0
   (and leaves them out of the normalization statistics), ``training.fit`` passes the weights to
   the loss;
3. ``garbage, no mask``: the same garbage files without the ``DQ`` extension.

The labels are the simulated truth everywhere (the garbage hides the cells, it does not remove
them). Each model is scored on clean held-out images: the foreground IoU (pixels of all test
images together, ``argmax == 1`` vs ``labels > 0``) of ``sciconv.inference.predict_tiled``. The
three conditions are trained side by side for each seed (one after the other within a seed, the
seeds in turn), so a shared machine's load weighs on all alike. Target: ``garbage+mask`` within
0.02 of ``clean``, and measurably above ``garbage, no mask``.

Usage::

    nice -n 10 python benchmarks/bench_masks.py              # 3 seeds, about 10 min on 2 cores
    python benchmarks/bench_masks.py --seeds 1 --epochs 4    # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tifffile
from astropy.io import fits

import sciconv as sc
from sciconv.datasets import from_pairs

CONDITIONS = ("clean", "garbage+mask", "garbage, no mask")


def garbage_blocks(shape, fraction: float, block: int, rng) -> np.ndarray:
    """Bool mask covering ``fraction`` of ``shape`` with random ``block``-sized squares."""
    h, w = shape
    bad = np.zeros(shape, bool)
    while bad.mean() < fraction:
        size = int(rng.integers(block // 2, block * 2))
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        bad[y : y + size, x : x + size] = True
    return bad


def write_training_sets(root: Path, images, labels, *, fraction: float, block: int, seed: int):
    """Write the three training folders; return their image folders and the label folder."""
    rng = np.random.default_rng(seed)
    folders = {c: root / c.replace(", ", "_").replace("+", "_") for c in CONDITIONS}
    for folder in folders.values():
        folder.mkdir(parents=True)
    lab_dir = root / "labels"
    lab_dir.mkdir()
    covered = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        x = img[..., 0].astype(np.float32)
        bad = garbage_blocks(x.shape, fraction, block, rng)
        covered.append(bad.mean())
        junk = x.copy()
        junk[bad] = rng.uniform(0, 5 * float(x.max()), int(bad.sum())).astype(np.float32)
        dq = np.where(bad, 1024, 0).astype(np.int16)  # an ACS-like "bad pixel" bit
        name = f"cell_{i:03d}.fits"
        fits.PrimaryHDU(x).writeto(folders["clean"] / name)
        fits.HDUList([fits.PrimaryHDU(junk), fits.ImageHDU(dq, name="DQ")]).writeto(
            folders["garbage+mask"] / name
        )
        fits.PrimaryHDU(junk).writeto(folders["garbage, no mask"] / name)
        tifffile.imwrite(lab_dir / f"cell_{i:03d}.tif", lab.astype(np.uint16))
    return folders, lab_dir, float(np.mean(covered))


def foreground_iou(model, images, labels) -> float:
    inter = union = 0
    for img, lab in zip(images, labels):
        prob = sc.inference.predict_tiled(model, img, progress=False)
        pred = prob.argmax(axis=-1) == 1
        true = lab > 0
        inter += int(np.sum(pred & true))
        union += int(np.sum(pred | true))
    return inter / union


def train_one(folder: Path, lab_dir: Path, *, seed: int, epochs: int, patch: int, depth: int):
    ds = from_pairs(
        folder,
        lab_dir,
        patch_size=patch,
        patches_per_image=8,
        batch_size=16,
        seed=seed,
        augment=True,
    )
    keras.utils.set_random_seed(seed)
    model = sc.models.segmenter(input_shape=(None, None, 1), depth=depth, filters=16)
    sc.training.fit(
        model, ds, epochs=epochs, verbose=0, tensorboard=False, reduce_lr=False, seed=seed
    )
    return model, bool(getattr(ds, "weighted", False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=24, help="training images")
    parser.add_argument("--test", type=int, default=8, help="clean test images")
    parser.add_argument("--size", type=int, default=128, help="image side (pixels)")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--fraction", type=float, default=0.20, help="garbage fraction")
    parser.add_argument("--block", type=int, default=16, help="typical garbage block side")
    args = parser.parse_args()

    test_x, test_y = sc.simulate.nuclei(args.test, size=args.size, seed=10_000)
    scores: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    times: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    print(
        f"{args.train} training / {args.test} test images of {args.size}^2 px, patches "
        f"{args.patch}^2, U-Net depth {args.depth} x 16 filters, {args.epochs} epochs x "
        f"{args.train * 8 // 16} steps of 16; garbage {args.fraction:.0%} in blocks of "
        f"~{args.block} px"
    )
    for seed in range(args.seeds):
        images, labels = sc.simulate.nuclei(args.train, size=args.size, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            folders, lab_dir, covered = write_training_sets(
                Path(tmp), images, labels, fraction=args.fraction, block=args.block, seed=seed
            )
            for cond in CONDITIONS:
                t0 = time.perf_counter()
                model, weighted = train_one(
                    folders[cond],
                    lab_dir,
                    seed=seed,
                    epochs=args.epochs,
                    patch=args.patch,
                    depth=args.depth,
                )
                times[cond].append(time.perf_counter() - t0)
                iou = foreground_iou(model, test_x, test_y)
                scores[cond].append(iou)
                print(
                    f"seed {seed}  {cond:17s} weighted={weighted!s:5s} garbage "
                    f"{covered:.1%}  foreground IoU {iou:.4f}  ({times[cond][-1]:.0f} s)",
                    flush=True,
                )
    print()
    print(f"{'condition':17s} {'median IoU':>10s} {'mean':>7s}  per seed")
    for cond in CONDITIONS:
        vals = scores[cond]
        print(
            f"{cond:17s} {statistics.median(vals):10.4f} {statistics.mean(vals):7.4f}  "
            + " ".join(f"{v:.4f}" for v in vals)
        )
    clean = np.array(scores["clean"])
    masked = np.array(scores["garbage+mask"])
    unmasked = np.array(scores["garbage, no mask"])
    print()
    print(
        f"garbage+mask - clean:            median {np.median(masked - clean):+.4f} "
        f"(per seed {' '.join(f'{v:+.4f}' for v in masked - clean)}); target >= -0.02"
    )
    print(
        f"garbage+mask - garbage, no mask: median {np.median(masked - unmasked):+.4f} "
        f"(per seed {' '.join(f'{v:+.4f}' for v in masked - unmasked)}); target > 0"
    )


if __name__ == "__main__":
    main()
