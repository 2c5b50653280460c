"""Nuclei along the edge of the good data: how the network should see bad (NaN) pixels.

Survey mosaics, stitched slides and cut-outs near a detector edge put good pixels next to a
frame of no data. The validation images of ``benchmarks/real_nuclei.py`` are set in a NaN
frame ``--frame`` pixels wide and segmented whole with the pretrained model
(``predict_instances``); the nuclei are scored on the image region (AP@0.5 and AP@0.5:0.9,
DSB rule, averaged over images as ``real_nuclei.py`` does) against the same images without
a frame. Each ``--fills`` entry is how bad pixels reach the network
(:data:`sciconv.preprocess.BAD_PIXEL_FILL`): ``zero`` (the low normalization limit, sciconv
before 2026-12-05), ``nearest``, and ``reflect`` (the good data mirrored across their edge,
the default since). The frame is NaN, so the normalization limits are those of the image
alone in every row: only the fill differs.

    python benchmarks/bad_pixel_fill.py --modalities fluo --max-per-modality 12
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    import real_nuclei as rn  # its sibling (benchmarks/ is on sys.path when run as a script)

    rn.add_division_arguments(p)
    p.add_argument("--modalities", default="fluo,color,gray_bright")
    p.add_argument("--max-per-modality", type=int, default=None)
    p.add_argument("--frame", type=int, default=96)
    p.add_argument("--fills", default="zero,nearest,reflect")
    args = p.parse_args(argv)

    import sciconv as sc
    from sciconv import preprocess
    from sciconv.preprocess import apply_input_transform

    val_ids = set(args.val_ids.read_text().split())
    eval_set = rn.load_eval_set(
        args.data, val_ids, args.modalities.split(","), args.max_per_modality
    )
    model = sc.models.pretrained("nuclei")
    transform = sc.models.get_metadata(model).get("input_transform")
    f = args.frame
    results = {}
    for row in ["no frame"] + [f"frame, {m}" for m in args.fills.split(",")]:
        fill = row.split(", ")[-1]
        default = preprocess.BAD_PIXEL_FILL
        preprocess.BAD_PIXEL_FILL = default if row == "no frame" else fill
        t0 = time.perf_counter()
        scored = []
        try:
            for modality, _, img, lab in eval_set:
                x = np.asarray(apply_input_transform(img, transform), np.float32)
                h, w = x.shape[:2]
                if row != "no frame":
                    framed = np.full((h + 2 * f, w + 2 * f, x.shape[2]), np.nan, np.float32)
                    framed[f : f + h, f : f + w] = x
                    x = framed
                pred = sc.inference.predict_instances(model, x, precision="float32", progress=False)
                if row != "no frame":
                    pred = pred[f : f + h, f : f + w]
                scored.append((modality, lab, pred))
        finally:
            preprocess.BAD_PIXEL_FILL = default
        figures = rn.score(scored)
        results[row] = figures
        cells = "  ".join(
            f"{m} {d['AP@0.5']:.3f} / {d['AP@0.5:0.9']:.3f} (n={d['n']})"
            for m, d in figures.items()
        )
        print(
            f"{row:18s} AP@0.5 / AP@0.5:0.9  {cells}  [{time.perf_counter() - t0:.0f} s]",
            flush=True,
        )
    return results


if __name__ == "__main__":
    main()
