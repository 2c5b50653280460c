"""The pretrained nuclei model on real H&E and brightfield images as scanners and cameras give
them: a white-balance colour cast, and a tile half outside the scanned area (transparent RGBA).

The colour (H&E) and grey brightfield images of the validation division of
``benchmarks/real_nuclei.py`` are given:

- ``cast``: a camera's white balance off, per-channel gains (blue 0.78, 0.88, 1; yellow 1, 0.92,
  0.70), clipped to 8 bits;
- ``transparent``: the right half of the tile transparent black (RGBA with alpha 0 and RGB 0, as
  OpenSlide ``read_region`` returns outside the slide), scored on the left half;
- ``opaque black``: the same tile with its alpha dropped (``region.convert("RGB")``: the outside
  black), scored on the left half.

AP@0.5 (mean over images) with ``predict_instances``' defaults, and with the step that handles
it switched off (``white_balance`` returning None; the alpha channel dropped, so the black half
counts as image; no black frame found), side by side.

    python benchmarks/real_nuclei_scanner.py
    python benchmarks/real_nuclei_scanner.py --data ../shared/data/dsb2018_train
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASTS = {"blue cast": (0.78, 0.88, 1.0), "yellow cast": (1.0, 0.92, 0.70)}


def _ap(model, image, truth) -> float:
    import sciconv

    labels = sciconv.inference.predict_instances(model, image, precision="float32", progress=False)
    return float(sciconv.metrics.average_precision(truth, labels)["ap"][0])


def main(argv=None) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "real_nuclei", ROOT / "benchmarks" / "real_nuclei.py"
    )
    real_nuclei = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(real_nuclei)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    real_nuclei.add_division_arguments(p)
    a = p.parse_args(argv)
    import sciconv
    import sciconv.preprocess._transform as transform

    warnings.simplefilter("ignore")
    model = sciconv.models.pretrained("nuclei")
    val_ids = set(a.val_ids.read_text().split())
    images = real_nuclei.load_eval_set(a.data, val_ids, ["color", "gray_bright"])
    balance = transform.white_balance
    rows = {}
    for name, gains in CASTS.items():
        colour = [(img, lab) for m, _, img, lab in images if m == "color"]
        for mode in ("defaults", "no white balance"):
            transform.white_balance = balance if mode == "defaults" else (lambda rgb: None)
            cast = [
                np.clip(np.round(img * np.array(gains)), 0, 255).astype(np.uint8)
                for img, _ in colour
            ]
            rows[(f"colour, {name}", mode)] = np.mean(
                [_ap(model, x, lab) for x, (_, lab) in zip(cast, colour)]
            )
        transform.white_balance = balance
    rows[("colour, as they are", "defaults")] = np.mean(
        [_ap(model, img, lab) for m, _, img, lab in images if m == "color"]
    )
    frame = transform._black_frame
    for modality in ("color", "gray_bright"):
        scores = {k: [] for k in ("half", "transparent", "opaque", "opaque off")}
        for m, _, img, lab in images:
            if m != modality:
                continue
            left = img.shape[1] // 2
            rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
            rgba[:, left:] = 0
            runs = (
                ("half", img[:, :left], frame),
                ("transparent", rgba, frame),
                ("opaque", rgba[..., :3], frame),
                ("opaque off", rgba[..., :3], lambda x: None),
            )
            for key, x, find in runs:
                transform._black_frame = find
                labels = sciconv.inference.predict_instances(
                    model,
                    x,
                    precision="float32",
                    progress=False,
                )[:, :left]
                scores[key].append(
                    float(sciconv.metrics.average_precision(lab[:, :left], labels)["ap"][0])
                )
            transform._black_frame = frame
        rows[(f"{modality}, left half alone", "defaults")] = np.mean(scores["half"])
        rows[(f"{modality}, right half transparent", "defaults")] = np.mean(scores["transparent"])
        rows[(f"{modality}, right half opaque black", "defaults")] = np.mean(scores["opaque"])
        rows[(f"{modality}, right half opaque black", "no black frame")] = np.mean(
            scores["opaque off"]
        )
    counts = {m: sum(e[0] == m for e in images) for m in ("color", "gray_bright")}
    print(f"images: {counts}; AP@0.5, mean over images")
    for (what, mode), value in rows.items():
        print(f"  {what:34s} {mode:18s} {value:.3f}")
    return {f"{w} / {m}": float(v) for (w, m), v in rows.items()}


if __name__ == "__main__":
    main()
