"""Nuclei models on out-of-focus images: the validation division of ``benchmarks/real_nuclei.py``
blurred by a Gaussian of ``--sigmas`` pixels (over the image plane, each channel apart, then
rounded to 8 bits as a camera saves it), AP@0.5 (mean over images) per modality and model.

Made to compare a model fine-tuned with the out-of-focus augmentation
(``tools/train_pretrained_nuclei.py --blur P``) with one fine-tuned at the same budget without
it, and with the shipped model (issue 20: grey brightfield blurred by sigma 2 lost AP@0.5
0.83 -> 0.23):

    python benchmarks/real_nuclei_blur.py --models shipped A/nuclei.keras B/nuclei.keras
    python benchmarks/real_nuclei_blur.py --fluo-step 1   # every fluorescence image (slower)
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_nuclei  # noqa: E402  (the validation division and its reader)

MODALITIES = ("fluo", "color", "gray_bright")


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) out of focus by ``sigma`` px, back to 8 bits."""
    from scipy import ndimage as ndi

    x = image.astype(np.float32)
    if sigma:
        x = ndi.gaussian_filter(x, (sigma, sigma, 0)[: x.ndim])
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    real_nuclei.add_division_arguments(p)
    p.add_argument("--models", nargs="+", default=["shipped"], help="'shipped' or .keras files")
    p.add_argument("--sigmas", nargs="+", type=float, default=[0.0, 1.0, 2.0])
    p.add_argument(
        "--fluo-step", type=int, default=3, help="score every N-th fluorescence image (time)"
    )
    a = p.parse_args(argv)
    import sciconv

    warnings.simplefilter("ignore")
    val_ids = set(a.val_ids.read_text().split())
    images = real_nuclei.load_eval_set(a.data, val_ids, list(MODALITIES))
    images = [e for k, e in enumerate(images) if e[0] != "fluo" or k % a.fluo_step == 0]
    counts = {m: sum(e[0] == m for e in images) for m in MODALITIES}
    print(f"images: {counts}; AP@0.5, mean over images")
    out = {}
    for name in a.models:
        model = (
            sciconv.models.pretrained("nuclei") if name == "shipped" else sciconv.models.load(name)
        )
        for sigma in a.sigmas:
            row = []
            for modality in MODALITIES:
                aps = [
                    float(
                        sciconv.metrics.average_precision(
                            truth,
                            sciconv.inference.predict_instances(
                                model, blurred(img, sigma), precision="float32", progress=False
                            ),
                        )["ap"][0]
                    )
                    for m, _, img, truth in images
                    if m == modality
                ]
                out[f"{name} | sigma {sigma:g} | {modality}"] = float(np.mean(aps))
                row.append(f"{modality} {np.mean(aps):.3f}")
            print(f"  {name:40s} sigma {sigma:g}: " + "  ".join(row), flush=True)
    return out


if __name__ == "__main__":
    main()
