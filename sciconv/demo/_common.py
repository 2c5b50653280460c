"""What the segmentation parts of the demo share: image/label pairs, AP scores, overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def stem_pairs(images: Path, labels: Path, *, unmatched: str, limit: int | None = None):
    """(image, label image) pairs by the one stem rule (:func:`sciconv.io.pair_by_stem`):
    "a.fits.gz" goes with "a.tif"; at most ``limit`` pairs (None: all)."""
    from sciconv import io

    pairs = io.pair_by_stem(images, labels, unmatched=unmatched)
    return pairs[:limit] if limit else pairs


def ap_scores(trues, preds) -> dict[str, float]:
    """Pooled AP@0.5 and mean AP@0.5:0.9 of instance label images against their truth."""
    from sciconv import metrics

    ap = metrics.average_precision(trues, preds)
    thresholds = list(np.round(ap["thresholds"], 2))
    return {"ap50": float(ap["ap"][thresholds.index(0.5)]), "mean_ap": float(ap["mean_ap"])}


def overlay_pair(viz, img, truth, labels, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), layout="constrained")
    ax0, ax1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    viz.outlines(
        img, truth, ax=ax0, title=f"truth ({int(truth.max())} objects)", stretch="percentile"
    )
    viz.outlines(
        img,
        labels,
        ax=ax1,
        color="cyan",
        title=f"predicted ({int(labels.max())})",
        stretch="percentile",
    )
    fig.suptitle(title)
    return fig
