"""Cost of a nuclei model against another: ``predict_instances`` on a 1024² real image.

Issue 20 allows a new shipped nuclei model at most 1.5× the previous one's CPU time. Both models
run interleaved in one process (round by round, float32 then bfloat16), on a 1024² mosaic of the
bundled real fluorescence images (``bench_inference.nuclei_mosaic``), after one untimed call
each; medians and the ratio of medians are printed, with the median of the per-round ratios.

    python benchmarks/bench_nuclei_cost.py --reference old.keras            # against the shipped
    git show 330a916:sciconv/pretrained/nuclei.keras > /tmp/old.keras        # the previous model
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from bench_inference import nuclei_mosaic

PRECISIONS = ("float32", "bfloat16")


def load(path: str):
    import sciconv as sc

    return sc.models.pretrained("nuclei") if path == "shipped" else sc.models.load(path)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="shipped", help="a .keras file or 'shipped'")
    p.add_argument("--reference", required=True, help="a .keras file or 'shipped'")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--size", type=int, default=1024)
    a = p.parse_args(argv)
    import sciconv as sc

    image = nuclei_mosaic(a.size)
    models = {"reference": load(a.reference), "model": load(a.model)}
    times: dict = {}
    for prec in PRECISIONS:
        for m in models.values():  # warm-up: tracing, the tile plan
            sc.inference.predict_instances(m, image, progress=False, precision=prec)
    for _ in range(a.rounds):
        for prec in PRECISIONS:
            for name, m in models.items():
                t = time.perf_counter()
                sc.inference.predict_instances(m, image, progress=False, precision=prec)
                times.setdefault((name, prec), []).append(time.perf_counter() - t)
    out = {}
    for prec in PRECISIONS:
        ref, new = np.array(times[("reference", prec)]), np.array(times[("model", prec)])
        out[prec] = {
            "reference_s": float(np.median(ref)),
            "model_s": float(np.median(new)),
            "ratio": float(np.median(new) / np.median(ref)),
            "ratio_per_round": float(np.median(new / ref)),
        }
        r = out[prec]
        print(
            f"{prec:9s} reference {r['reference_s']:.3f} s  model {r['model_s']:.3f} s  "
            f"ratio {r['ratio']:.2f} (per round {r['ratio_per_round']:.2f})"
        )
    return out


if __name__ == "__main__":
    main()
