"""Large nuclei and ``object_size="auto"``: does the half-resolution probe find them whole?

Real DSB2018 validation images (the division of ``benchmarks/real_nuclei.py``) enlarged by each
factor of ``--factors`` (bilinear; ground truth by nearest neighbour), segmented by the
pretrained nuclei model with ``predict_instances(..., object_size="auto")``, once as shipped
(with the probe of :mod:`sciconv.inference._size_probe`) and once with the probe turned off
(the rule before it: resample only when the first pass's median size is outside the model's
range). At factor 1 every validation image is used (the probe must not fire on images at their
own size); above it the first ``--max-per-modality`` images of each modality.

Prints, per factor and modality: mean AP@0.5 and AP@0.5:0.9 of both, how many images the probe
changed, and the median time ratio.

    nice -n 5 python benchmarks/real_nuclei_large.py                       # about 30 min
    nice -n 5 python benchmarks/real_nuclei_large.py --factors 1 --max-per-modality 0  # 1x only
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/dsb2018_train")
    parser.add_argument("--factors", default="1,3,5")
    parser.add_argument("--max-per-modality", type=int, default=8)
    parser.add_argument("--modalities", default="fluo,color,gray_bright")
    args = parser.parse_args(argv)

    import sciconv as sc
    from sciconv.inference import _size_probe
    from sciconv.metrics import average_precision

    rn = _benchmark("real_nuclei")
    val = set((ROOT / "data/real/nuclei_val_ids.txt").read_text().split())
    model = sc.models.pretrained("nuclei")
    transform = sc.models.get_metadata(model).get("input_transform")
    shipped = _size_probe.PROBE_BOUNDARY_SHARE
    modalities = args.modalities.split(",")
    everything = rn.load_eval_set(args.data, val, modalities, max_per_modality=None)

    def run(image, probe: bool):
        _size_probe.PROBE_BOUNDARY_SHARE = shipped if probe else -np.inf
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = sc.inference.predict_instances(
                model, image, precision="float32", progress=False
            )
        return labels, time.perf_counter() - t

    print(f"{'factor':>6} {'modality':11} {'n':>3} | {'AP@0.5 before':>13} {'with probe':>10} | "
          f"{'AP@.5:.9 before':>15} {'with probe':>10} | changed | time ratio")  # fmt: skip
    for factor in [float(f) for f in args.factors.split(",")]:
        for modality in modalities:
            images = [e for e in everything if e[0] == modality]
            if factor != 1:
                images = images[: args.max_per_modality]
            rows = []
            for _, _, img, truth in images:
                x, truth = rn.resampled(img, truth, factor, transform)
                before, t0 = run(x, probe=False)
                after, t1 = run(x, probe=True)
                a0, a1 = average_precision(truth, before), average_precision(truth, after)
                rows.append((a0["ap"][0], a1["ap"][0], np.mean(a0["ap"]), np.mean(a1["ap"]),
                             not np.array_equal(before, after), t1 / t0))  # fmt: skip
            if not rows:
                continue
            r = np.array(rows, dtype=float)
            print(f"{factor:6g} {modality:11} {len(r):3d} | {r[:, 0].mean():13.3f} "
                  f"{r[:, 1].mean():10.3f} | {r[:, 2].mean():15.3f} {r[:, 3].mean():10.3f} | "
                  f"{int(r[:, 4].sum()):7d} | {np.median(r[:, 5]):.2f}", flush=True)  # fmt: skip
    _size_probe.PROBE_BOUNDARY_SHARE = shipped


if __name__ == "__main__":
    main()
