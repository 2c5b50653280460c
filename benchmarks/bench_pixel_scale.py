"""Physical pixel scale (issue 17): a galaxy classifier applied at 2.5x finer sampling.

A classifier is trained on simulated galaxy cutouts (``sciconv.simulate``'s renderer: PSF-convolved
Sérsic ellipticals, two-armed spirals, point sources, sky + Poisson + read noise) at a coarse
pixel scale (0.4 arcsec/pixel, 64x64). The model records that scale in its metadata
(``set_metadata(model, pixel_scale=...)``, as ``sciconv.training.fit`` does from a dataset).

The same test galaxies (the same parameter draws) are then rendered twice:

1. ``same scale``: 0.4 arcsec/pixel, 64x64, as in training;
2. ``finer``: 0.16 arcsec/pixel (2.5x finer), 160x160: radii, positions and PSF in pixels x2.5,
   the same total flux, the sky per pixel / 6.25, its own noise.

Each fine image is a ``GridImage`` with a celestial TAN WCS at 0.16 arcsec/pixel, so its
``pixel_scale`` comes from the WCS. Accuracy on the fine images is measured

- ``auto rescale``: ``resolve_scale(image.pixel_scale, get_pixel_scale(model))`` (= 0.4) and
  ``resample`` (bilinear, anti-aliased) to 64x64, then the shared normalization;
- ``no rescale``: what prediction did before: the model's 64x64 input cut from the image centre
  (the crop size policy); the galaxies then look 2.5x larger than in training.

Target: ``auto rescale`` accuracy within 2 points of ``same scale``. Printed: the accuracies,
the difference and the drop without rescaling, median over ``--repeats`` trainings (seeds 0..).

Usage::

    nice -n 10 python benchmarks/bench_pixel_scale.py                 # 300/class, 3 repeats
    nice python benchmarks/bench_pixel_scale.py --train 100 --epochs 4 --repeats 1   # quick look
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from sciconv import models, preprocess, simulate
from sciconv.inference import resample, resolve_scale
from sciconv.io import GridImage, PixelScale
from sciconv.models.metadata import get_pixel_scale
from sciconv.simulate import _render

COARSE, FINE_FACTOR, SIZE = 0.4, 2.5, 64  # arcsec/pixel, finer sampling, cutout side


def render(n_per_class: int, seed: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Cutouts of side ``SIZE * factor`` sampled ``factor`` x more finely (1 = training scale).

    Uses the parameter draws and renderer of ``sciconv.simulate.galaxy_cutouts`` (its private
    helpers: the public function has no pixel-scale argument), so ``factor=1`` gives the images
    ``galaxy_cutouts`` would, and every factor gives the same galaxies for the same ``seed``.
    """
    size = round(SIZE * factor)
    rng = np.random.default_rng(seed)
    noise = np.random.default_rng(seed + 10_000)
    images, labels = [], []
    for label, cls in enumerate(simulate.GALAXY_CLASSES):
        for _ in range(n_per_class):
            p = dict(_render.draw_galaxy_params(cls, SIZE, rng))
            for key in ("x", "y"):  # pixel centres: (c + 0.5) * factor - 0.5
                p[key] = (p[key] + 0.5) * factor - 0.5
            for key in ("r_eff", "bulge_r_eff", "psf_fwhm"):
                if key in p:
                    p[key] *= factor
            sky = p["sky"] / factor**2  # the same surface brightness over smaller pixels
            if cls == "point":
                model = _render.star(
                    (size, size), p["x"], p["y"], p["flux"], p["psf_fwhm"], p["psf_alpha"]
                )
            else:
                kernel = _render.psf_kernel(p["psf_fwhm"], p["psf_alpha"], _render.OVERSAMPLE)
                model = _render.galaxy((size, size), p, kernel)
            images.append(_render.observe(model, sky, _render.GAIN, _render.READ_NOISE, noise))
            labels.append(label)
    return np.stack(images)[..., None], np.asarray(labels)


def prepare(images: np.ndarray) -> np.ndarray:
    return np.nan_to_num(preprocess.normalize(images)).astype(np.float32)


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    pred = model.predict(x, batch_size=128, verbose=0).argmax(-1)
    return float((pred == y).mean())


def one_run(args, seed: int, test) -> dict:
    keras.utils.set_random_seed(seed)
    x_train, y_train = render(args.train, 1000 + seed, 1.0)
    model = models.classifier((SIZE, SIZE, 1), 3, filters=(16, 32, 64), dense=(64,), dropout=0.3)
    models.set_metadata(model, pixel_scale=PixelScale(COARSE, COARSE, "arcsec"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(prepare(x_train), y_train, batch_size=32, epochs=args.epochs, shuffle=True, verbose=0)
    (x_same, y_same), (x_fine, y_fine), wcs = test
    auto, factors = [], set()
    for img in x_fine:
        image = GridImage(img, wcs=wcs)
        factor = resolve_scale(image.pixel_scale, get_pixel_scale(model))
        factors.add(factor)
        auto.append(resample(image, factor))
    crop0 = (x_fine.shape[1] - SIZE) // 2
    cropped = x_fine[:, crop0 : crop0 + SIZE, crop0 : crop0 + SIZE]
    return {
        "same scale": accuracy(model, prepare(x_same), y_same),
        "auto rescale": accuracy(model, prepare(np.stack(auto)), y_fine),
        "no rescale": accuracy(model, prepare(cropped), y_fine),
        "factors": sorted(factors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=300, help="training cutouts per class")
    parser.add_argument("--test", type=int, default=200, help="test cutouts per class")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    same = render(args.test, 7, 1.0)
    fine = render(args.test, 7, FINE_FACTOR)
    size = fine[0].shape[1]
    wcs = simulate.tan_wcs((size, size), ra=150.0, dec=2.0, pixel_scale=COARSE / FINE_FACTOR)
    print(
        f"test: {len(same[1])} galaxies at {COARSE} arcsec/px ({SIZE} px) and at "
        f"{COARSE / FINE_FACTOR:.3g} arcsec/px ({size} px); "
        f"image pixel_scale from WCS: {GridImage(fine[0][0], wcs=wcs).pixel_scale}"
    )
    runs = []
    for seed in range(args.repeats):
        r = one_run(args, seed, (same, fine, wcs))
        runs.append(r)
        print(
            f"seed {seed}: same scale {r['same scale']:.3f}  auto rescale {r['auto rescale']:.3f}"
            f"  no rescale {r['no rescale']:.3f}  (factors {r['factors']})"
        )
    med = {k: statistics.median(r[k] for r in runs) for k in ("same scale", "auto rescale")}
    med["no rescale"] = statistics.median(r["no rescale"] for r in runs)
    diffs = [r["same scale"] - r["auto rescale"] for r in runs]
    drops = [r["same scale"] - r["no rescale"] for r in runs]
    print(
        f"median over {len(runs)}: same scale {med['same scale']:.3f}, auto rescale "
        f"{med['auto rescale']:.3f}, no rescale {med['no rescale']:.3f}"
    )
    print(
        f"same - auto: median {100 * statistics.median(diffs):+.1f} points (max "
        f"{100 * max(diffs):+.1f}); target <= 2. Drop without rescaling: median "
        f"{100 * statistics.median(drops):+.1f} points"
    )
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    assert all(math.isfinite(v) for v in med.values())


if __name__ == "__main__":
    main()
