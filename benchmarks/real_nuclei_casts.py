"""The pretrained nuclei model on real grey images saved in colour with a colour cast.

An RGB camera whose white balance is off saves a grey brightfield image as three affine copies
of one signal (``R = a_r s + b_r``, ...). Each real grey image is saved so, with channel gains,
offsets and noise (:data:`CASTS`), as 8-bit RGB (16-bit for 16-bit images), and segmented with
``predict_instances`` as shipped: AP@0.5, mean over images, per cast. Sets: the 12 grey
brightfield images of DSB2018 (``--dsb``, the whole modality: 3 of them are validation images,
9 training images), the channel mean of the 5 bundled brightfield images (``data/real/
nuclei_brightfield``: 4 are H&E, so their mean is a grey image, not a real grey one), and with
``--fluo`` the 15 bundled fluorescence images.

    python benchmarks/real_nuclei_casts.py --dsb ../shared/data/dsb2018_train --fluo
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from real_nuclei_inputs import mean_table  # noqa: E402  (one table printer for both)

#: name -> (channel gains, channel offsets in 8-bit levels, or "noise": 3 levels of noise)
CASTS = {
    "grey": ((1, 1, 1), (0, 0, 0)),
    "gains (1, .8, .95)": ((1, 0.8, 0.95), (0, 0, 0)),
    "gains (.9, 1, .7)": ((0.9, 1, 0.7), (0, 0, 0)),
    "gains (1, 1, .85)": ((1, 1, 0.85), (0, 0, 0)),
    "gains (1, .8, .95) + offsets (0, 15, 30)": ((1, 0.8, 0.95), (0, 15, 30)),
    "gains (1, .9, .8) + noise 3": ((1, 0.9, 0.8), "noise"),
}


def cast(grey: np.ndarray, gains, offsets, top: int) -> np.ndarray:
    """``grey`` saved as RGB with a cast; ``top`` = 255 (uint8) or 65535 (uint16)."""
    x = np.stack([grey * k for k in gains], -1).astype(np.float64)
    if isinstance(offsets, str):
        x = x + np.random.default_rng(0).normal(0, 3 * top / 255, x.shape)
    else:
        x = x + np.asarray(offsets) * top / 255
    return np.clip(np.round(x), 0, top).astype(np.uint8 if top == 255 else np.uint16)


def image_sets(dsb: Path | None, fluo: bool):
    """(set name, grey image as float, labels, top) of every image measured."""
    import tifffile
    from PIL import Image

    if dsb is not None:
        for row in csv.DictReader(open(dsb / "index.csv")):
            if row["modality"] == "gray_bright":
                grey = np.asarray(Image.open(dsb / "images" / f"{row['id']}.png"))[..., 0]
                labels = tifffile.imread(dsb / "labels" / f"{row['id']}.tif")
                yield "DSB grey brightfield", grey.astype(float), labels, 255
    folder = ROOT / "data" / "real" / "nuclei_brightfield"
    for path in sorted((folder / "images").glob("*.tif")):
        x = tifffile.imread(path).astype(float)
        grey = x[..., :3].mean(-1) if x.ndim == 3 else x
        yield (
            "bundled brightfield (mean)",
            grey,
            tifffile.imread(folder / "labels" / path.name),
            255,
        )
    if fluo:
        folder = ROOT / "data" / "real" / "nuclei"
        for path in sorted((folder / "images").glob("*.tif")):
            x = tifffile.imread(path)
            top = 255 if x.max() <= 255 else 65535
            labels = tifffile.imread(folder / "labels" / path.name)
            yield "bundled fluorescence", x.astype(float), labels, top


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dsb", type=Path, default=None, help="DSB2018 folder (its grey brightfield)")
    p.add_argument("--fluo", action="store_true", help="also the 15 fluorescence images")
    a = p.parse_args(argv)
    import sciconv as sc

    model = sc.models.pretrained("nuclei")
    scores: dict = {}
    for name, grey, labels, top in image_sets(a.dsb, a.fluo):
        for cname, (gains, offsets) in CASTS.items():
            image = cast(grey, gains, offsets, top)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = sc.inference.predict_instances(
                    model, image, precision="float32", progress=False
                )
            ap = float(sc.metrics.average_precision(labels, pred)["ap"][0])
            scores.setdefault(name, {}).setdefault(cname, []).append(ap)
    return mean_table(scores, "== {name}: AP@0.5, mean over {n} images", width=42)


if __name__ == "__main__":
    main()
