"""Part 4 of the demo: the pretrained nuclei model on real images it never saw in training."""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv.demo._common import ap_scores, overlay_pair, stem_pairs
from sciconv.demo._output import Writer
from sciconv.demo._settings import DemoSettings
from sciconv.errors import DatasetError


def _score_pretrained(model, pairs) -> tuple[dict[str, Any], list, list]:
    """Pooled AP of the pretrained model over image/label pairs (images passed as read)."""
    from sciconv import inference, io

    trues, preds = [], []
    for p, q in pairs:
        trues.append(np.asarray(io.read(q).data[..., 0]).astype(np.int32))
        preds.append(inference.predict_instances(model, io.read(p), progress=False))
    return {**ap_scores(trues, preds), "n_images": len(pairs)}, trues, preds


def run_real_nuclei(paths, settings: DemoSettings, w: Writer, log) -> dict[str, Any]:
    from sciconv import io, models, viz

    model = models.pretrained("nuclei")
    pairs = stem_pairs(
        paths["real_nuclei_images"],
        paths["real_nuclei_labels"],
        unmatched="skip",
        limit=settings.real_images,
    )
    if not pairs:
        raise DatasetError("no image/label pairs found", path=paths["real_nuclei_images"])
    result, trues, preds = _score_pretrained(model, pairs)
    log(
        f"[real nuclei] pretrained model on {len(pairs)} real fluorescence images: pooled AP@0.5 "
        f"{result['ap50']:.3f}, mean AP {result['mean_ap']:.3f}"
    )
    w.products(
        f"real_nuclei_{io.image_stem(pairs[0][0])[:12]}",
        labels=preds[0],
        format="tiff",
        model="pretrained:nuclei",
    )
    fig = overlay_pair(
        viz,
        io.read(pairs[0][0]),
        trues[0],
        preds[0],
        f"pretrained model, {len(pairs)} real nuclei images: pooled AP@0.5 {result['ap50']:.2f}",
    )
    result["figures"] = {"overlay": w.figure(fig, "real_nuclei_overlay.png")}
    # brightfield (H&E colour, grey brightfield) images, when the data folder has them
    bright = paths["real_nuclei_images"].parent.parent / "nuclei_brightfield"
    bright_pairs = []
    if bright.is_dir():  # an own --data folder need not have them
        bright_pairs = stem_pairs(
            bright / "images", bright / "labels", unmatched="skip", limit=settings.real_images
        )
    if bright_pairs:
        scores, _, _ = _score_pretrained(model, bright_pairs)
        result["brightfield"] = scores
        log(
            f"[real nuclei] pretrained model on {len(bright_pairs)} real brightfield images: "
            f"pooled AP@0.5 {scores['ap50']:.3f}, mean AP {scores['mean_ap']:.3f}"
        )
    return result
