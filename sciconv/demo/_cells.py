"""Part 2 of the demo: a small U-Net nuclei segmenter on simulated cells, scored by IoU and AP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sciconv.demo._common import ap_scores, overlay_pair, stem_pairs
from sciconv.demo._output import Writer
from sciconv.demo._settings import DemoSettings


def _split_pairs(images: Path, masks: Path, *, seed: int, fraction: float = 0.25):
    pairs = stem_pairs(images, masks, unmatched="raise")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    n_test = max(1, round(fraction * len(pairs)))
    test = [pairs[i] for i in sorted(order[:n_test])]
    train = [pairs[i] for i in sorted(order[n_test:])]
    return train, test


def _evaluate_instances(model, pairs, *, post=None) -> tuple[dict, list]:
    from sciconv import inference, io, postprocess

    trues, preds, ious, shown = [], [], [], []
    for img_path, mask_path in pairs:
        img = io.read(img_path)
        truth = np.asarray(io.read(mask_path).data[..., 0]).astype(np.int32)
        prob = inference.predict_tiled(model, img, progress=False)
        labels = postprocess.instances(prob, **(post or {}))
        trues.append(truth)
        preds.append(labels)
        fg_t, fg_p = truth > 0, labels > 0
        union = np.logical_or(fg_t, fg_p).sum()
        ious.append(float(np.logical_and(fg_t, fg_p).sum() / union) if union else 1.0)
        shown.append((img, truth, labels))
    return {"iou": float(np.mean(ious)), **ap_scores(trues, preds), "n_test": len(pairs)}, shown


def run_cells(paths, settings: DemoSettings, w: Writer, log) -> dict[str, Any]:
    from sciconv import datasets, io, models, training, viz

    train_pairs, test_pairs = _split_pairs(
        paths["cells_images"], paths["cells_masks"], seed=settings.seed
    )
    log(f"[cells] {len(train_pairs)} training and {len(test_pairs)} held-out image/mask pairs")
    train = datasets.from_pairs(
        [str(p) for p, _ in train_pairs],
        [str(m) for _, m in train_pairs],
        patch_size=(settings.cell_patch, settings.cell_patch),
        patches_per_image=settings.cell_patches,
        target="semantic",
        batch_size=8,
        augment=True,
        seed=settings.seed,
    )
    model = models.segmenter(
        (None, None, 1),
        num_classes=2,
        depth=settings.cell_depth,
        filters=settings.cell_filters,
        batch_norm=settings.batch_norm,
        name="nuclei_segmenter",
    )
    history = training.fit(
        model,
        train,
        epochs=settings.cell_epochs,
        workdir=w.out / "runs" / "cells",
        tensorboard=False,
        overwrite=w.overwrite,
        seed=settings.seed,
        verbose=2,
    )
    scores, shown = _evaluate_instances(model, test_pairs)
    log(
        f"[cells] held-out foreground IoU {scores['iou']:.3f}, pooled AP@0.5 {scores['ap50']:.3f}, "
        f"mean AP@0.5:0.9 {scores['mean_ap']:.3f}"
    )
    w.model(model, "nuclei_segmenter.keras")
    img, truth, labels = shown[0]
    w.products(
        f"cells_{io.image_stem(test_pairs[0][0])}",
        labels=labels,
        format="tiff",
        model="nuclei_segmenter.keras",
    )
    figs = {
        "curves": w.figure(
            viz.training_curves(history, title="nuclei segmenter"), "cells_curves.png"
        ),
        "overlay": w.figure(
            overlay_pair(
                viz,
                img,
                truth,
                labels,
                f"held-out cells ({len(test_pairs)} images): pooled AP@0.5 {scores['ap50']:.2f}",
            ),
            "cells_overlay.png",
        ),
    }
    return {**scores, "figures": figs}
