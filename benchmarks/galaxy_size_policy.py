"""``from_folder(image_size=...)`` on cutouts larger than the model's input: ``size_policy``
"crop" against "auto" (the default since 2026-12-05) and "resize", the README's first example.

Galaxy10-like files (``bench_small_galaxies.py``'s simulated galaxies in g, r, z drawn at 64 px,
resampled to fill a 256 px frame, spirals mirrored at random, colour composites saved as 8-bit
PNG): smooth (ellipticals and armless disks) against spirals, ``--n`` per class to train and
``--n // 2`` per class held out. Each policy: ``from_folder(image_size=64, augment=True)``,
the default ``classifier``, ``fit`` for ``--epochs`` epochs, ``predict_files`` on the held-out
files; ROC AUC and seconds.

    nice -n 5 python benchmarks/galaxy_size_policy.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_small_galaxies import (
    arms_vs_smooth,
    colour_composites,
    ell_vs_spiral,
    mirror_half,
    roc_auc,
    upsampled,
    write_png_folder,
)


def galaxy_files(root: Path, n: int, *, size: int, seed: int) -> None:
    """``n`` smooth (half ellipticals, half armless disks) and ``n`` spiral cutouts as PNG."""
    e, ey, _ = ell_vs_spiral(n, size=64, seed=seed, bands="grz")
    d, dy, _ = arms_vs_smooth(n, size=64, seed=seed + 1, bands="grz")
    smooth = np.concatenate([e[ey == 0][: n // 2], d[dy == 0][: n - n // 2]])
    spiral = mirror_half(d[dy == 1][:n], seed=seed)
    images = upsampled(np.concatenate([smooth, spiral]), size)
    labels = np.repeat([0, 1], [len(smooth), len(spiral)])
    write_png_folder(root, colour_composites(images), labels)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=250, help="training cutouts per class")
    p.add_argument("--size", type=int, default=256, help="the files' side")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--policies", nargs="+", default=["crop", "auto", "resize"])
    a = p.parse_args(argv)
    import keras

    import sciconv as sc

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        galaxy_files(Path(tmp) / "train", a.n, size=a.size, seed=100)
        galaxy_files(Path(tmp) / "test", a.n // 2, size=a.size, seed=900)
        files = [f for c in ("class0", "class1") for f in sc.io.list_images(Path(tmp) / "test" / c)]
        truth = np.array([int(f.parent.name[-1]) for f in files])
        for policy in a.policies:
            keras.utils.set_random_seed(0)
            train, val = sc.datasets.from_folder(
                Path(tmp) / "train", image_size=a.image_size, validation_split=0.2, augment=True,
                seed=0, size_policy=policy,
            )  # fmt: skip
            model = sc.models.classifier((a.image_size, a.image_size, 3), 2)
            t0 = time.perf_counter()
            sc.training.fit(
                model, train, validation_data=val, epochs=a.epochs, verbose=0, tensorboard=False,
                workdir=Path(tmp) / f"run_{policy}", seed=0,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            table = sc.inference.predict_files(model, files, progress=False)
            auc = roc_auc(truth, np.asarray(table["probabilities"])[:, 1])
            results[policy] = {"auc": auc, "seconds": seconds}
            print(f"size_policy={policy!r}: held-out ROC AUC {auc:.3f}, training {seconds:.0f} s")
    return results


if __name__ == "__main__":
    main()
