"""The pretrained nuclei model's automatic settings on nuclei larger than it was trained on.

The validation division's large fluorescence images (those of 512 x 640 or 520 x 696 pixels, as
a 20x objective records them; ``benchmarks/real_nuclei.py``'s division) enlarged 2x, bilinear
(what a 40x objective gives; ground truth by nearest neighbour), segmented by
``predict_instances`` with its defaults (``object_size="auto"``, ``brightness="auto"``,
``denoise="auto"``), with ``brightness=None`` and with ``scale=0.5`` (the right resampling, by
hand). AP@0.5 per image and the mean (zero-shot QA, 2026-12-06: one image's first pass cut
nuclei into pieces read as a faint image, and the saturated second pass gave 3454 objects for 13
nuclei; objects outside the model's sizes are now resampled before brightness and noise are
judged).

    nice -n 5 python benchmarks/real_nuclei_enlarged_auto.py     # about 5 min on 2 cores
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parent


def _real_nuclei():
    spec = importlib.util.spec_from_file_location("real_nuclei", ROOT / "real_nuclei.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> dict:
    rn = _real_nuclei()
    p = argparse.ArgumentParser(description=__doc__)
    rn.add_division_arguments(p)
    p.add_argument("--factor", type=float, default=2.0)
    a = p.parse_args(argv)

    import sciconv as sc
    from sciconv.metrics import matching

    val_ids = set(a.val_ids.read_text().split())
    images = [
        (image_id, img, lab)
        for _, image_id, img, lab in rn.load_eval_set(a.data, val_ids, ["fluo"])
        if img.shape[0] in (512, 520)
    ]
    model = sc.models.pretrained("nuclei")
    runs = {"defaults": {}, "brightness=None": {"brightness": None}, "scale=0.5": {"scale": 0.5}}
    ap = {name: [] for name in runs}
    for image_id, img, lab in images:
        x, truth = rn.resampled(img, lab, a.factor)
        row = [image_id[:8]]
        for name, kw in runs.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = sc.inference.predict_instances(model, x, progress=False, **kw)
            m = matching(truth, pred, thresh=0.5)
            value = m["tp"] / max(m["tp"] + m["fp"] + m["fn"], 1)
            ap[name].append(value)
            row.append(f"{name} {value:.3f} ({int(pred.max())} objects)")
        print(" | ".join(row), flush=True)
    means = {name: float(np.mean(v)) for name, v in ap.items()}
    print(f"{len(images)} images enlarged {a.factor:g}x, mean AP@0.5:", means)
    return means


if __name__ == "__main__":
    main()
