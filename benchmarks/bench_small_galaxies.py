"""Small-data galaxy classification: the CNN against a radial-profile baseline (ROC AUC).

Few hundred labelled cutouts is the common case in astronomy. This benchmark states what a CNN
trained through sciconv is worth there, against the classic answer: a logistic regression on the
radial profile. Methods, on the same training and test images of each repetition:

(a) ``profile``: logistic regression (L2, the strength chosen by 3-fold cross-validation on the
    training set; plain numpy/scipy, no scikit-learn) on the azimuthally averaged profile:
    the sky-subtracted flux in log-spaced circular annuli around the light-weighted centre,
    divided by the total flux (the surface-brightness shape, flux-free), plus its curve of growth;
(b) ``keras``: the same CNN (``sciconv.models.classifier`` with its defaults: filters
    (32, 64, 128), dense (128,), no dropout) compiled (Adam 1e-3) and trained with plain
    ``keras.Model.fit`` on the same per-image normalized arrays, the same epochs and batch
    size: no augmentation; ``keras+dropout``: the same with head dropout 0.3 (the classifier's
    default before issue 20's fix);
(c) ``sciconv``: the sciconv defaults: the cutouts written as FITS files with a TAN WCS
    (``sciconv.simulate.cutout_header``), read by ``sciconv.datasets.from_folder`` and trained
    by ``sciconv.training.fit`` with its defaults (Adam 1e-3, ``reduce_lr`` once the loss has
    left its starting level; see ``sciconv._fit_schedule``), which turns D4
    augmentation on by itself for a classifier of cutout files (``augment="auto"``);
(d) ``sciconv+tta``: (c) predicted with ``sciconv.inference.predict_d4`` (the mean over the 8
    flips/rotations);
(e) ``invariant``: (c) with ``classifier(..., invariant="d4")`` (features pooled over the 8
    transforms; exactly invariant);
(f) with several bands: ``profile+colour``, (a) with the band colours beside the profile (log
    flux ratios within a quarter of the side: the classic colour-morphology baseline), and
    ``sciconv-joint`` / ``sciconv-joint+tta``, (c)/(d) with one percentile stretch over all
    bands of an image (``normalize={..., "per_channel": False}``: colours kept) instead of the
    default per-band stretch.

Bands: ``--bands grz`` draws every simulated cutout in g, r and z with colours
(``galaxy_cutouts(bands=)``: red ellipticals and bulges, blue disks); ``--rgb`` turns them into
8-bit colour composites as survey viewers and Galaxy10 serve them (one asinh stretch for all
images), which the sciconv path reads as PNG files; ``--extra-noise`` makes a shallower survey.

Tasks (both binary, balanced, seeded, different images every repetition):

- ``ell_vs_spiral``: ellipticals against spirals of ``sciconv.simulate.galaxy_cutouts`` (Sérsic
  n 3-5.5 against n ~1 disks with arms and a bulge): the radial profile is strong here;
- ``arms_vs_smooth``: spirals against smooth disks with the same distribution of every parameter
  (flux, size, Sérsic index, bulge, ellipticity, PSF, sky) but no arms (drawn with the private
  helpers of ``sciconv.simulate``: the arm pattern ``1 + A cos(2 phi - ...)`` averages to 1 on
  every circle in the disk plane, so the radial profiles match): hard for radial profiles, not
  for a CNN. Arm amplitudes as in ``galaxy_cutouts`` (0.6-0.95).

The simulated arms all wind the same way (the pitch angle is always positive). A CNN trained
without flips can learn that handedness, a first-order cue that D4 flips remove; real spirals wind
both ways about equally often. ``--mixed-handedness`` mirrors a random half of every set's
cutouts (train and test), as on the sky.
No real labelled galaxy images are available offline under a suitable licence in this
environment (the packages that ship Galaxy Zoo / Galaxy10 data download it at run time), so
both tasks are simulated; see ``benchmarks/README.md`` for what that means for real data.

**A real set** (``--data ROOT --classes A B``): any folder with one sub-folder per class of
images ``sciconv.io.read`` reads (FITS, TIFF, PNG, JPEG; one or several channels), e.g. Galaxy10
DECaLS written out by ``sciconv.fetch.load("galaxy10", out=ROOT, format="fits")`` (2.7 GB
download; classes ``02_round_smooth``, ``06_unbarred_tight_spiral``, ...). Every image is resized
(anti-aliased) to ``--size``; each seed draws a new stratified, disjoint training and test set of
``--n-train`` / ``--n-test`` images from the two classes (the rest is unused), so the same
pixels reach every method; the sciconv path reads them back as FITS files (no WCS: D4 augmentation
is on because they are cutout files). The radial profile is measured per channel.

Reported: the ROC AUC of each method on the test images, per repetition (seed), their mean ±
standard deviation (ddof 1) and minimum, and the per-seed differences against (a) and (b) (mean,
and in how many seeds the method is better).

    nice -n 10 python benchmarks/bench_small_galaxies.py --methods profile keras keras+dropout \
        sciconv sciconv+tta           # 5 seeds, both tasks, 32 px, 300/200 cutouts per class
    nice -n 10 python benchmarks/bench_small_galaxies.py --seeds 1 --epochs 5 --n-train 100
    nice -n 10 python benchmarks/bench_small_galaxies.py --data galaxy10/ --size 64 \
        --classes 02_round_smooth 06_unbarred_tight_spiral   # a real set, 300/200 per class
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from scipy import optimize, stats

METHODS = (
    "profile",
    "profile+colour",
    "keras",
    "keras+dropout",
    "sciconv",
    "sciconv+tta",
    "sciconv-joint",
    "sciconv-joint+tta",
    "sciconv-nowarmup",
    "invariant",
)
#: The normalization of the ``sciconv-joint`` methods: one percentile stretch over all bands of
#: an image (colours kept) instead of one per band.
JOINT = {"method": "percentile", "low": 1.0, "high": 99.8, "per_channel": False}


# ------------------------------------------------------------------------------------ data
def ell_vs_spiral(n_per_class: int, *, size: int, seed: int, bands: str = "r"):
    """Ellipticals (label 0) and spirals (label 1) of ``galaxy_cutouts``; raw ADU and params."""
    from sciconv.simulate import galaxy_cutouts

    images, labels, names, params = galaxy_cutouts(n_per_class, size=size, seed=seed, bands=bands)
    keep = labels != names.index("point")
    y = (labels[keep] == names.index("spiral")).astype(np.int64)
    return images[keep], y, {k: v[keep] for k, v in params.items()}


def arms_vs_smooth(n_per_class: int, *, size: int, seed: int, bands: str = "r"):
    """Disks without arms (label 0) and the same kind of disks with arms (label 1); raw ADU and
    params. Both draw the same radial profiles: only the arms tell them apart."""
    from sciconv.simulate import galaxy_cutouts

    images, labels, _, params = galaxy_cutouts(
        n_per_class, size=size, seed=seed, classes=("disk", "spiral"), bands=bands
    )
    return images, labels, params


TASKS = {"ell_vs_spiral": ell_vs_spiral, "arms_vs_smooth": arms_vs_smooth}


def load_classes(root: Path, classes: list[str], *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every image of two class folders, as float32 ``(N, size, size, C)``, and labels 0 / 1.

    The image files (``sciconv.io.list_images``) are read with ``sciconv.io.read_pixels`` (any
    format sciconv reads; NaNs become 0) and resized with anti-aliasing when their side is not
    ``size``; all must have the same channel count.
    """
    from skimage.transform import resize

    from sciconv import io

    images, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise SystemExit(f"--data: no class folder {folder}")
        files = io.list_images(folder)
        if not files:
            raise SystemExit(f"--data: {folder} holds no image")
        for file in files:
            img = np.nan_to_num(io.read_pixels(file))
            if img.shape[:2] != (size, size):
                img = resize(img, (size, size), anti_aliasing=True, preserve_range=True)
            images.append(img.astype(np.float32))
            labels.append(label)
    channels = {im.shape[-1] for im in images}
    if len(channels) > 1:
        raise SystemExit(f"--data: the images have different channel counts {sorted(channels)}")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def draw_split(labels: np.ndarray, n_train: int, n_test: int, *, seed: int):
    """Indices of a stratified, disjoint training and test draw (half of each per class)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in (0, 1):
        pool = rng.permutation(np.flatnonzero(labels == label))
        need = n_train // 2 + n_test // 2
        if len(pool) < need:
            raise SystemExit(
                f"--data: class {label} has {len(pool)} images; --n-train {n_train} and "
                f"--n-test {n_test} need {need}"
            )
        train.append(pool[: n_train // 2])
        test.append(pool[n_train // 2 : need])
    return rng.permutation(np.concatenate(train)), np.concatenate(test)


def write_fits_folder(root: Path, images, labels, params, *, size: int) -> None:
    """One sub-folder per class of FITS cutouts: with the simulated TAN WCS when ``params`` are
    given (the sky path), else the pixels alone (a real set)."""
    from sciconv import io
    from sciconv.simulate import cutout_header

    for i, (img, lab) in enumerate(zip(images, labels)):
        folder = root / f"class{lab}"
        folder.mkdir(parents=True, exist_ok=True)
        if params is None:
            io.write(folder / f"g{i:05d}.fits", img)
            continue
        hdr = cutout_header(params, i, size=size, class_name=f"class{lab}")
        io.write(folder / f"g{i:05d}.fits", img if img.shape[-1] > 1 else img[..., 0], header=hdr)


def write_png_folder(root: Path, images, labels) -> None:
    """One sub-folder per class of 8-bit RGB PNG files (colour composites, as Galaxy10's)."""
    from sciconv import io

    for i, (img, lab) in enumerate(zip(images, labels)):
        folder = root / f"class{lab}"
        folder.mkdir(parents=True, exist_ok=True)
        io.write(folder / f"g{i:05d}.png", img.astype(np.uint8))


def colour_composites(images: np.ndarray, *, stretch: float = 50.0, q: float = 8.0) -> np.ndarray:
    """8-bit RGB composites of g, r, z cutouts (z red, r green, g blue) as survey viewers make
    them: each band's sky (its median) subtracted, one asinh stretch (Lupton et al. 2004,
    ``astropy.visualization.make_lupton_rgb``) with the same ``stretch`` and ``q`` for every
    image, so a galaxy's colour shows as hue. Returned as float32 0-255 ``(N, H, W, 3)``."""
    from astropy.visualization import make_lupton_rgb

    if images.shape[-1] != 3:
        raise SystemExit("--rgb needs three bands (--bands grz)")
    out = np.empty(images.shape, dtype=np.float32)
    for i, img in enumerate(images):
        net = img - np.median(img, axis=(0, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = make_lupton_rgb(net[..., 2], net[..., 1], net[..., 0], minimum=0.0,
                                     stretch=stretch, Q=q)  # fmt: skip
    return out


# ------------------------------------------------------------------------------------ (a)
def radial_features(images: np.ndarray, *, n_bins: int = 10) -> np.ndarray:
    """Azimuthally averaged, flux-normalized profile and curve of growth in log-spaced annuli.

    Per channel (a colour image gives each band's profile: colour gradients count too), around
    the light-weighted centre of all channels together.
    """
    n, h, w = images.shape[:3]
    channels = images.shape[3] if images.ndim == 4 else 1
    images = images.reshape(n, h, w, channels).astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    edges = np.concatenate([[0.0], np.geomspace(1.0, min(h, w) / 2.0, n_bins)])
    feats = np.empty((n, channels, 2 * n_bins), dtype=np.float64)
    border = np.ones((h, w), bool)
    border[3:-3, 3:-3] = False
    win = (np.abs(yy - h / 2) < h / 4) & (np.abs(xx - w / 2) < w / 4)
    for i, img in enumerate(images):
        img = img - np.median(img[border], axis=0)
        wgt = np.clip(img, 0, None).sum(axis=-1) * win  # light-weighted centre
        cy, cx = h / 2, w / 2
        if wgt.sum() > 0:
            cy, cx = (wgt * yy).sum() / wgt.sum(), (wgt * xx).sum() / wgt.sum()
        idx = np.digitize(np.hypot(yy - cy, xx - cx), edges) - 1  # n_bins: outside the last
        inside = idx < n_bins
        areas = np.bincount(idx[inside], minlength=n_bins)
        for c in range(channels):
            band = img[..., c]
            sums = np.bincount(idx[inside], weights=band[inside], minlength=n_bins)
            total = max(sums.sum(), 1e-6)
            feats[i, c, :n_bins] = sums / np.maximum(areas, 1) / total  # surface-brightness shape
            feats[i, c, n_bins:] = np.cumsum(sums) / total  # curve of growth
    return feats.reshape(n, -1)


def colour_features(images: np.ndarray) -> np.ndarray:
    """Colours: log10 of each band's sky-subtracted flux within a quarter of the side from the
    centre, relative to the first band's (the classic second feature beside the profile)."""
    _, h, w, channels = images.shape
    if channels < 2:
        raise SystemExit("profile+colour needs several bands (--bands grz, --rgb or a colour set)")
    yy, xx = np.mgrid[0:h, 0:w]
    inside = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) < min(h, w) / 4
    border = np.ones((h, w), bool)
    border[3:-3, 3:-3] = False
    imgs = images.astype(np.float64)
    flux = (imgs - np.median(imgs[:, border], axis=1)[:, None, None, :])[:, inside].sum(axis=1)
    flux = np.clip(flux, 1e-3 * np.abs(flux).max(axis=1, keepdims=True) + 1e-9, None)
    return np.log10(flux[:, 1:] / flux[:, :1])


def _fit_logistic(x, y, lam):
    d = x.shape[1]

    def loss(wb):
        w, b = wb[:d], wb[d]
        z = x @ w + b
        nll = np.mean(np.logaddexp(0.0, z) - y * z)
        p = 1.0 / (1.0 + np.exp(-z))
        grad_w = x.T @ (p - y) / len(y) + lam * w
        return nll + 0.5 * lam * w @ w, np.concatenate([grad_w, [np.mean(p - y)]])

    res = optimize.minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B")
    return res.x


def profile_baseline(x_train, y_train, x_test, *, seed: int, colour: bool = False) -> np.ndarray:
    """Scores of an L2 logistic regression on standardized radial features (CV over lambda);
    ``colour``: with the band colours (:func:`colour_features`) beside them."""
    ftr, fte = radial_features(x_train), radial_features(x_test)
    if colour:
        ftr = np.concatenate([ftr, colour_features(x_train)], axis=1)
        fte = np.concatenate([fte, colour_features(x_test)], axis=1)
    mu, sd = ftr.mean(axis=0), ftr.std(axis=0) + 1e-12
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    folds = np.random.default_rng(seed).permutation(len(y_train)) % 3
    best, best_auc = None, -1.0
    for lam in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        aucs = []
        for f in range(3):
            tr, va = folds != f, folds == f
            wb = _fit_logistic(ftr[tr], y_train[tr], lam)
            aucs.append(roc_auc(y_train[va], ftr[va] @ wb[:-1] + wb[-1]))
        if np.mean(aucs) > best_auc:
            best, best_auc = lam, float(np.mean(aucs))
    wb = _fit_logistic(ftr, y_train, best)
    return fte @ wb[:-1] + wb[-1]


def roc_auc(y_true, score) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    y_true = np.asarray(y_true).astype(bool)
    ranks = stats.rankdata(score)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ------------------------------------------------------------------------------------ CNNs
def _build(size, channels=1, *, invariant=None, dropout=None, filters=None):
    """``sciconv.models.classifier`` with its defaults (``dropout``, ``filters`` override them)."""
    from sciconv import models

    extra = {} if dropout is None else {"dropout": dropout}
    if filters:
        extra["filters"] = tuple(filters)
    return models.classifier((size, size, channels), 2, invariant=invariant, **extra)


def upsampled(images: np.ndarray, size: int) -> np.ndarray:
    """Cutouts resized (bilinear) to ``size``: the same galaxies, their light and noise spread
    over more pixels, as Galaxy10 resamples every galaxy to fill its 256-pixel frame."""
    from skimage.transform import resize

    shape = (size, size, images.shape[-1])
    return np.stack([resize(im, shape, order=1, preserve_range=True) for im in images]).astype(
        np.float32
    )


def mirror_half(images: np.ndarray, *, seed: int) -> np.ndarray:
    """Mirror a seeded random half of the cutouts left-right (both windings of spiral arms)."""
    flip = np.random.default_rng(seed).random(len(images)) < 0.5
    out = images.copy()
    out[flip] = out[flip][:, :, ::-1]
    return out


def run_repetition(task: str, seed: int, args, real=None) -> dict:
    import keras

    from sciconv import datasets, training
    from sciconv.datasets.prepare import FilePrep
    from sciconv.inference import predict_d4

    if real is not None:  # a real set: a new stratified draw per seed
        images, labels = real
        train, test = draw_split(labels, args.n_train, args.n_test, seed=1000 + seed)
        x_tr, y_tr, p_tr = images[train], labels[train], None
        x_te, y_te = images[test], labels[test]
    else:
        n_tr, n_te = args.n_train // 2, args.n_test // 2
        drawn = args.size // args.upsample
        x_tr, y_tr, p_tr = TASKS[task](n_tr, size=drawn, seed=1000 + seed, bands=args.bands)
        x_te, y_te, _ = TASKS[task](n_te, size=drawn, seed=5000 + seed, bands=args.bands)
        if args.upsample > 1:  # Galaxy10-like framing: the galaxy fills the frame at any size
            x_tr, x_te, p_tr = upsampled(x_tr, args.size), upsampled(x_te, args.size), None
        if args.extra_noise:  # a shallower survey: more sky noise in every band
            x_tr = x_tr + np.random.default_rng(3000 + seed).normal(0, args.extra_noise, x_tr.shape)
            x_te = x_te + np.random.default_rng(7000 + seed).normal(0, args.extra_noise, x_te.shape)
            x_tr, x_te = x_tr.astype(np.float32), x_te.astype(np.float32)
        if args.rgb:  # what a survey viewer serves (Galaxy10): 8-bit colour composites
            x_tr, x_te, p_tr = colour_composites(x_tr), colour_composites(x_te), None
    channels = x_tr.shape[-1]
    if args.mixed_handedness:
        x_tr, x_te = mirror_half(x_tr, seed=2000 + seed), mirror_half(x_te, seed=6000 + seed)
    prep = FilePrep.create(normalize="default")  # the per-image normalization from_folder uses
    xn_tr = np.stack([prep.normalize(im) for im in x_tr])
    xn_te = np.stack([prep.normalize(im) for im in x_te])
    out, times = {}, {}

    for name, colour in (("profile", False), ("profile+colour", True)):
        if name in args.methods or name == "profile":
            t0 = time.perf_counter()
            scores = profile_baseline(x_tr, y_tr, x_te, seed=seed, colour=colour)
            out[name] = roc_auc(y_te, scores)
            times[name] = time.perf_counter() - t0

    # (b) the same CNN in plain Keras: compile + fit on the arrays, no augmentation; also with
    # the head dropout 0.3 that sciconv's classifier had by default before
    for name, dropout in (("keras", None), ("keras+dropout", 0.3)):
        if name not in args.methods:
            continue
        keras.utils.set_random_seed(seed)
        plain = _build(args.size, channels, dropout=dropout, filters=args.filters)
        plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        t0 = time.perf_counter()
        plain.fit(xn_tr, y_tr, batch_size=32, epochs=args.epochs, shuffle=True, verbose=0)
        times[name] = time.perf_counter() - t0
        out[name] = roc_auc(y_te, plain.predict(xn_te, verbose=0)[:, 1])

    variants = (  # name, invariant pooling, normalization, other fit keywords
        ("sciconv", None, "default", {}),
        ("sciconv-joint", None, JOINT, {}),
        ("sciconv-nowarmup", None, "default", {"warmup": None}),
        ("invariant", "d4", "default", {}),
    )
    with tempfile.TemporaryDirectory() as tmp:
        if real is None and args.rgb:
            write_png_folder(Path(tmp), x_tr, y_tr)
        else:
            write_fits_folder(Path(tmp), x_tr, y_tr, p_tr, size=args.size)
        for name, invariant, normalize, fit_kwargs in variants:
            if name not in args.methods and f"{name}+tta" not in args.methods:
                continue
            # augment=False: fit decides (D4 for a classifier of cutout files)
            train = datasets.from_folder(tmp, batch_size=32, seed=seed, normalize=normalize)
            keras.utils.set_random_seed(seed)
            model = _build(args.size, channels, invariant=invariant, filters=args.filters)
            t0 = time.perf_counter()
            training.fit(
                model,
                train,
                epochs=args.epochs,
                seed=seed,
                tensorboard=False,
                verbose=0,
                **({"reduce_lr": False} if args.no_reduce_lr else {}),
                **fit_kwargs,
            )
            times[name] = time.perf_counter() - t0
            own = FilePrep.create(normalize=normalize)
            xo_te = (
                xn_te if normalize == "default" else np.stack([own.normalize(im) for im in x_te])
            )
            out[name] = roc_auc(y_te, model.predict(xo_te, verbose=0)[:, 1])
            if f"{name}+tta" in args.methods:
                t0 = time.perf_counter()
                prob = predict_d4(model, x_te)  # raw cutouts: the model's own spec
                times[f"{name}+tta"] = time.perf_counter() - t0
                out[f"{name}+tta"] = roc_auc(y_te, prob[:, 1])
    return {"auc": out, "seconds": times}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, ...")
    parser.add_argument(
        "--n-train",
        type=int,
        default=None,
        help="default 600; with --data 60 %% of the smaller class, x2",
    )
    parser.add_argument(
        "--n-test", type=int, default=None, help="default 400; with --data the rest of it, x2"
    )
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--mixed-handedness",
        action="store_true",
        help="mirror a random half of the cutouts (the simulated arms all wind one way; real "
        "spirals wind both ways, which plain training without flips cannot exploit)",
    )
    parser.add_argument(
        "--bands",
        default="r",
        help="simulated bands, letters of 'grz' (galaxy_cutouts(bands=)); 'grz': with colours",
    )
    parser.add_argument(
        "--rgb",
        action="store_true",
        help="simulated g, r, z turned into 8-bit RGB composites (one asinh stretch for all "
        "images, as survey viewers and Galaxy10 serve them); sciconv reads them as PNG files",
    )
    parser.add_argument(
        "--upsample",
        type=int,
        default=1,
        help="draw the galaxies at size / K and resize them to --size: large cutouts framed as "
        "Galaxy10 frames them (the galaxy fills the frame, its noise spread over K x K pixels); "
        "without it, a large --size keeps a galaxy's light and spreads it thin",
    )
    parser.add_argument(
        "--extra-noise",
        type=float,
        default=0.0,
        help="Gaussian noise (ADU) added to every simulated band: a shallower survey, where "
        "faint structure drowns and integrated colours remain (the cutouts' own sky noise is "
        "about 7-20 ADU)",
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--filters",
        type=int,
        nargs="+",
        help="conv-pool stages of every CNN (classifier(filters=)); default: the classifier's",
    )
    parser.add_argument(
        "--no-reduce-lr",
        action="store_true",
        help="diagnostic: train (c)/(e) with reduce_lr=False (a constant rate, as (b))",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--data",
        type=Path,
        help="a real set instead of the simulated tasks: a folder of one sub-folder per class",
    )
    parser.add_argument(
        "--classes", nargs=2, metavar=("NEGATIVE", "POSITIVE"), help="the two --data sub-folders"
    )
    args = parser.parse_args(argv)

    real = None
    if args.data is not None:
        if not args.classes:
            parser.error("--data needs --classes NEGATIVE POSITIVE (two sub-folder names)")
        real = load_classes(args.data, args.classes, size=args.size)
        args.tasks = [f"{args.data.name}:{args.classes[0]}-vs-{args.classes[1]}"]
        counts = np.bincount(real[1], minlength=2)
        print(f"[{args.tasks[0]}] {counts[0]} + {counts[1]} images, {real[0].shape[1:]}")
        per_class = int(counts.min())  # a few hundred per class: 60 % to train, the rest to test
        if args.n_train is None:
            args.n_train = 2 * int(0.6 * per_class)
        if args.n_test is None:
            args.n_test = 2 * (per_class - args.n_train // 2)
    args.n_train = 600 if args.n_train is None else args.n_train
    args.n_test = 400 if args.n_test is None else args.n_test
    results = {}
    for task in args.tasks:
        reps = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rep = run_repetition(task, seed, args, real)
            reps.append(rep)
            line = "  ".join(f"{m} {rep['auc'][m]:.3f}" for m in METHODS if m in rep["auc"])
            print(f"[{task}] seed {seed}: {line}", flush=True)
        methods = [m for m in METHODS if m in reps[0]["auc"]]
        aucs = {m: np.array([r["auc"][m] for r in reps]) for m in methods}
        summary = {
            m: {
                "mean": float(v.mean()),
                "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "median": float(np.median(v)),
                "min": float(v.min()),
                "per_seed": [round(float(a), 4) for a in v],
            }
            for m, v in aucs.items()
        }
        secs = {
            m: float(np.median([r["seconds"][m] for r in reps]))
            for m in methods
            if m in reps[0]["seconds"]
        }
        diffs = {
            f"{m} - {ref}": aucs[m] - aucs[ref]
            for ref in ("profile", "keras", "keras+dropout")
            for m in METHODS[METHODS.index("sciconv") :]
            if m in aucs and ref in aucs
        }
        results[task] = {
            "auc": summary,
            "median_seconds": secs,
            "diff": {
                k: {"mean": float(d.mean()), "wins": int((d > 0).sum()), "of": len(d)}
                for k, d in diffs.items()
            },
        }
        print(f"[{task}] ROC AUC over {args.seeds} seeds: mean ± sd (min; median seconds)")
        for m, v in summary.items():
            sd = f"{v['sd']:.3f}"
            print(
                f"    {m:12s} {v['mean']:.3f} ± {sd}  (min {v['min']:.3f}; "
                f"{secs.get(m, float('nan')):.1f} s)"
            )
        for k, d in diffs.items():
            print(f"    {k:24s} mean {d.mean():+.3f}, better in {(d > 0).sum()}/{len(d)} seeds")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if args.json:
        args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
