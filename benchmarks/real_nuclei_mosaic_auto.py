"""``object_size="auto"`` on large images in one piece: the whole image's objects or its crops?

Mosaics of ``--n`` x ``--n`` real DSB2018 fluorescence validation images of 256 x 256 (the
division of ``benchmarks/real_nuclei.py``; tiles drawn by ``--seeds``), through the pretrained
model's input transform, each resampled by a factor of ``--factors`` (bilinear; ground truth by
nearest neighbour), or with ``--mixed`` one tile enlarged by the factor beside factor x factor
tiles as they are (two regions of the same size). Each mosaic is segmented by the pretrained
nuclei model with ``object_size="auto"`` three ways:

* ``median``: in one piece, the size decided on the median of all the first pass's objects
  (before images that hold crops apart let their busiest crops vote),
* ``crops``: in one piece, the busiest 1024 px crops voting
  (:func:`~sciconv.inference._size_probe.check_size_on_crop`),
* ``blocks``: block by block (``block=``), every block resampled by the crops' vote.

Prints per factor: AP@0.5, the factor each settled on and the time of each.

    nice -n 5 python benchmarks/real_nuclei_mosaic_auto.py                  # about 10 min
    nice -n 5 python benchmarks/real_nuclei_mosaic_auto.py --factors 5 --mixed
"""

from __future__ import annotations

import argparse
import os
import re
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def mosaic(tiles, n: int, factor: float, mixed: bool, transform):
    """The image and truth of ``n`` x ``n`` tiles of 256 x 256, each resampled by ``factor``;
    with ``mixed``, the first tile resampled by ``factor`` (an integer) beside ``factor`` x
    ``factor`` tiles as they are: two regions of the same size, nuclei ``factor`` x apart."""
    import real_nuclei as rn  # beside this script

    if mixed:
        k = round(factor)
        big = rn.resampled(*tiles[0], k, transform)
        small = mosaic(tiles[1 : 1 + k * k], k, 1.0, False, transform)
        offset = int(big[1].max())
        truth = np.where(small[1] > 0, small[1] + offset, 0)
        return (
            np.concatenate([big[0], small[0]], axis=1),
            np.concatenate([big[1], truth], axis=1).astype(np.int32),
        )
    parts = [rn.resampled(img, truth, factor, transform) for img, truth in tiles[: n * n]]
    offset, truths = 0, []
    for _, t in parts:
        truths.append(np.where(t > 0, t + offset, 0).astype(np.int32))
        offset = int(truths[-1].max()) if truths[-1].any() else offset
    rows = range(0, n * n, n)
    image = np.concatenate([np.concatenate([x for x, _ in parts[r : r + n]], axis=1) for r in rows])
    truth = np.concatenate([np.concatenate(truths[r : r + n], axis=1) for r in rows])
    return image, truth


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/dsb2018_train")
    parser.add_argument("--factors", default="1,3,5")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--mixed", action="store_true")
    parser.add_argument("--block", type=int, default=1024)
    args = parser.parse_args(argv)

    import real_nuclei as rn  # beside this script (its folder is on sys.path when it runs)

    import sciconv as sc
    from sciconv.inference import _instances
    from sciconv.metrics import average_precision

    val = set((ROOT / "data/real/nuclei_val_ids.txt").read_text().split())
    model = sc.models.pretrained("nuclei")
    transform = sc.models.get_metadata(model).get("input_transform")
    everything = [
        e for e in rn.load_eval_set(args.data, val, ["fluo"]) if e[2].shape[:2] == (256, 256)
    ]
    votes = _instances.holds_crops_apart

    def run(image, how):
        kw = dict(block=args.block) if how == "blocks" else {}
        _instances.holds_crops_apart = (lambda *a, **k: False) if how == "median" else votes
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            labels = sc.inference.predict_instances(
                model, image, precision="float32", progress=False, **kw
            )
        _instances.holds_crops_apart = votes
        notes = " ".join(str(w.message) for w in said if "object_size" in str(w.message))
        found = re.findall(r"(?:resampled by|at the median,|segmented at) ([0-9.]*[0-9])", notes)
        return labels, time.perf_counter() - t, float(found[-1]) if found else 1.0

    mixed = "; mixed: one tile resampled beside tiles as they are" if args.mixed else ""
    print(f"{len(everything)} fluorescence validation images of 256 x 256; {args.n} x {args.n} "
          f"tiles{mixed}")  # fmt: skip
    print(f"{'factor':>6} {'seed':>4} {'size':>11} | {'AP@0.5 median':>13} {'crops':>6} "
          f"{'blocks':>6} | {'factor median':>13} {'crops':>6} {'blocks':>6} | "
          f"{'time median':>11} {'crops':>6} {'blocks':>6}")  # fmt: skip
    for factor in [float(f) for f in args.factors.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            rng = np.random.default_rng(seed)
            count = round(factor) ** 2 + 1 if args.mixed else args.n * args.n
            pick = rng.choice(len(everything), count, replace=count > len(everything))
            tiles = [everything[i][2:] for i in pick]
            image, truth = mosaic(tiles, args.n, factor, args.mixed, transform)
            out = [run(image, how) for how in ("median", "crops", "blocks")]
            aps = [average_precision(truth, lab)["ap"][0] for lab, _, _ in out]
            size = f"{image.shape[0]}x{image.shape[1]}"
            print(f"{factor:6g} {seed:4d} {size:>11} | {aps[0]:13.3f} {aps[1]:6.3f} "
                  f"{aps[2]:6.3f} | {out[0][2]:13.3g} {out[1][2]:6.3g} {out[2][2]:6.3g} | "
                  f"{out[0][1]:10.1f}s {out[1][1]:5.1f}s {out[2][1]:5.1f}s",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
