"""Block-wise segmentation of resampled images: does every block resampled match the whole image?

Real DSB2018 validation images (the division of ``benchmarks/real_nuclei.py``) resampled by each
factor of ``--factors`` (bilinear; ground truth by nearest neighbour) are segmented by the
pretrained nuclei model three ways, all ``object_size="auto"``: whole
(``predict_instances``), block by block at the image's own pixels (``block=``, what block-wise
runs did before they resampled: ``object_size=None``), and block by block with every block
resampled by the factor the busiest crops decide
(:func:`~sciconv.inference.predict_instances_blocks`, ``--crop`` its side). Blocks of
``--block`` pixels, so most images span several.

Prints, per factor and modality: mean AP@0.5 and AP@0.5:0.9 of the three, how many images'
block-wise factor differs from the whole image's, and the median time ratio blocks / whole.

    nice -n 5 python benchmarks/real_nuclei_blocks_zoom.py                     # about 15 min
    nice -n 5 python benchmarks/real_nuclei_blocks_zoom.py --factors 3 --crop 2048
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/dsb2018_train")
    parser.add_argument("--factors", default="0.5,3")
    parser.add_argument("--max-per-modality", type=int, default=6)
    parser.add_argument("--modalities", default="fluo,color,gray_bright")
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--crop", type=int, default=None, help="the size check's crop side")
    args = parser.parse_args(argv)

    import sciconv as sc
    from sciconv.inference import _size_probe
    from sciconv.metrics import average_precision

    if args.crop is not None:
        _size_probe.SIZE_CHECK_CROP = args.crop
    import real_nuclei as rn  # beside this script (its folder is on sys.path when it runs)

    val = set((ROOT / "data/real/nuclei_val_ids.txt").read_text().split())
    model = sc.models.pretrained("nuclei")
    transform = sc.models.get_metadata(model).get("input_transform")
    modalities = args.modalities.split(",")
    everything = rn.load_eval_set(args.data, val, modalities, max_per_modality=None)

    def run(image, **kw):
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            labels = sc.inference.predict_instances(
                model, image, precision="float32", progress=False, **kw
            )
        notes = " ".join(str(w.message) for w in said if "object_size" in str(w.message))
        return labels, time.perf_counter() - t, notes

    print(f"{'factor':>6} {'modality':11} {'n':>3} | {'AP@0.5 whole':>12} {'blocks as is':>12} "
          f"{'resampled':>9} | {'AP@.5:.9 whole':>14} {'as is':>6} {'resampled':>9} | "
          "differ | time ratio")  # fmt: skip
    for factor in [float(f) for f in args.factors.split(",")]:
        for modality in modalities:
            images = [e for e in everything if e[0] == modality][: args.max_per_modality]
            rows = []
            for _, _, img, truth in images:
                x, truth = rn.resampled(img, truth, factor, transform)
                whole, t0, said = run(x)
                as_is, _, _ = run(x, block=args.block, object_size=None)
                blocks, t1, told = run(x, block=args.block)
                aps = [average_precision(truth, lab)["ap"] for lab in (whole, as_is, blocks)]
                resampled = "resampled by" in said
                median = re.search(r"at the median, ([0-9.]+)", told)  # the crops disagreed
                blocks_resampled = "every block is segmented resampled" in told or (
                    median is not None and float(median.group(1).rstrip(".")) != 1.0
                )
                differ = resampled != blocks_resampled
                rows.append([a[0] for a in aps] + [np.mean(a) for a in aps] + [differ, t1 / t0])
            if not rows:
                continue
            r = np.array(rows, dtype=float)
            m = r.mean(axis=0)
            print(f"{factor:6g} {modality:11} {len(r):3d} | {m[0]:12.3f} {m[1]:12.3f} "
                  f"{m[2]:9.3f} | {m[3]:14.3f} {m[4]:6.3f} {m[5]:9.3f} | {int(r[:, 6].sum()):6d} "
                  f"| {np.median(r[:, 7]):.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
