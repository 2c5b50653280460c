"""Over-exposed nuclei: the pretrained model with and without ``restore_saturated``.

The 15 bundled real fluorescence images (``data/real/nuclei``) over-exposed: clipped at a share
of their maximum and stretched back to 8 bits (the flat tops a camera's full well or an 8-bit
display stretch leaves), and as a 12-bit camera records them at three times too long an
exposure (offset 100, the nuclei's peak at 3 x 4095, Poisson noise, clipped at 4095, in
uint16), and that with 5 hot pixels at 65535. AP@0.5 (mean over images) of
``predict_instances`` with the model's input transform as shipped (``restore_saturated`` on)
and with it off, side by side; ``--block N`` runs the same block by block (``block=N``) to show
it gives the whole-image figures.

    python benchmarks/real_nuclei_saturated.py
    python benchmarks/real_nuclei_saturated.py --block 128
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def forms(image: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The image as it is and over-exposed (module doc)."""
    rng = np.random.default_rng(seed)
    f = image.astype(np.float64) / max(float(image.max()), 1.0)

    def clipped(share):
        return (np.minimum(f, share) / share * 255).astype(np.uint8)

    camera = np.minimum(100 + rng.poisson(f * 3 * 4095), 4095).astype(np.uint16)
    hot = camera.copy()  # hot pixels above the ceiling (the level is not the maximum then)
    hot[rng.integers(0, hot.shape[0], 5), rng.integers(0, hot.shape[1], 5)] = 65535
    return {
        "as it is": image,
        "8-bit, clipped at 0.6 of the max": clipped(0.6),
        "8-bit, clipped at 0.3 of the max": clipped(0.3),
        "12-bit camera, 3x over-exposed": camera,
        "the same, 5 hot pixels at 65535": hot,
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--folder", type=Path, default=ROOT / "data" / "real" / "nuclei")
    p.add_argument("--block", type=int, default=None, help="block side (default: whole image)")
    a = p.parse_args(argv)
    import tifffile

    import sciconv as sc

    model = sc.models.pretrained("nuclei")
    shipped = dict(sc.models.get_metadata(model)["input_transform"])
    paths = sorted((a.folder / "images").glob("*.tif"))
    scores: dict[str, dict[str, list[float]]] = {}
    saturated: dict[str, list[float]] = {}
    for path in paths:
        image = tifffile.imread(path)
        truth = tifffile.imread(a.folder / "labels" / path.name)
        for name, x in forms(image).items():
            saturated.setdefault(name, []).append(float(np.mean(x == x.max())))
            for restore in (False, True):
                spec = dict(shipped, restore_saturated=restore)
                sc.models.set_metadata(model, input_transform=spec)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pred = sc.inference.predict_instances(
                        model, x, precision="float32", progress=False, block=a.block
                    )
                ap = float(sc.metrics.average_precision(truth, pred)["ap"][0])
                scores.setdefault(name, {}).setdefault(str(restore), []).append(ap)
        print(f"  {path.name[:12]}: done", flush=True)
    sc.models.set_metadata(model, input_transform=shipped)
    how = "whole image" if a.block is None else f"block={a.block}"
    print(f"\nAP@0.5, mean over {len(paths)} images ({how})")
    print(f"{'form':36s} {'saturated px':>12s} {'restore off':>12s} {'restore on':>11s}")
    for name, by in scores.items():
        print(
            f"{name:36s} {100 * np.mean(saturated[name]):11.1f}% "
            f"{np.mean(by['False']):12.3f} {np.mean(by['True']):11.3f}"
        )
    return {k: {r: float(np.mean(v)) for r, v in by.items()} for k, by in scores.items()}


if __name__ == "__main__":
    main()
