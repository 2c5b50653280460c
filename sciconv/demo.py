"""The main job behind ``sciconv demo``: the whole pipeline on the bundled data, with a report.

Four parts, each a complete small science workflow:

1. **Galaxies** (``data/galaxies/<class>/*.fits``): a conv–pool–dense morphology classifier, trained
   on a seeded split and evaluated on the held-out part (accuracy, confusion matrix).
2. **Cells** (``data/cells/images|masks``): a small U-Net nuclei segmenter, evaluated on held-out
   images by foreground IoU and instance average precision (AP).
3. **Sky** (``data/sky/field.fits`` + ``truth.ecsv``): a source-detection U-Net trained on a
   separately simulated field, run tile by tile over the bundled field; instances become a
   catalog with RA/Dec that is matched against the truth catalog (completeness, purity, offsets).
4. **Real nuclei** (``data/real/nuclei``, and ``data/real/nuclei_brightfield`` when present): the
   pretrained nuclei model applied to real fluorescence (and brightfield) images it never saw in
   training, scored by AP against their labels.

Everything goes to one folder: ``models/`` (.keras), ``predictions/`` (FITS with the WCS, TIFF
labels, ECSV catalogs), ``plots/`` (PNG), ``runs/`` (training work folders), ``metrics.json`` and
``report.md``. ``fast=True`` (or ``SCICONV_FAST=1``) shrinks every part to about a minute in all.

Examples
--------
>>> from sciconv import demo
>>> demo.find_data().name
'data'
>>> result = demo.run(out="sciconv_demo", fast=True)  # doctest: +SKIP
>>> print("\\n".join(demo.headline(result)))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._atomic import atomic_output
from sciconv.errors import DatasetError, OutputExistsError

__all__ = ["DemoSettings", "find_data", "headline", "run"]

#: Sub-folders of the data folder that the demo reads.
DATA_PARTS = {
    "galaxies": "galaxies",
    "cells_images": "cells/images",
    "cells_masks": "cells/masks",
    "sky": "sky",
    "real_nuclei_images": "real/nuclei/images",
    "real_nuclei_labels": "real/nuclei/labels",
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo's parts (:meth:`full` for the default run, :meth:`fast` for tests).

    Examples
    --------
    >>> DemoSettings.fast().galaxy_epochs < DemoSettings.full().galaxy_epochs
    True
    """

    galaxy_epochs: int
    galaxy_filters: tuple[int, ...]
    galaxy_dense: tuple[int, ...]
    cell_epochs: int
    cell_patches: int
    cell_patch: int
    cell_depth: int
    cell_filters: int
    sky_epochs: int
    sky_steps: int
    sky_train_shape: tuple[int, int]
    sky_depth: int
    sky_filters: int
    sky_crop: int | None
    real_images: int | None
    batch_norm: bool = True
    seed: int = 0

    @classmethod
    def full(cls) -> DemoSettings:
        """A few minutes on two CPU cores."""
        return cls(
            galaxy_epochs=12,
            galaxy_filters=(16, 32, 64),
            galaxy_dense=(64,),
            cell_epochs=10,
            cell_patches=24,
            cell_patch=96,
            cell_depth=3,
            cell_filters=16,
            sky_epochs=5,
            sky_steps=40,
            sky_train_shape=(768, 768),
            sky_depth=2,
            sky_filters=16,
            sky_crop=None,
            real_images=None,
        )

    @classmethod
    def fast(cls) -> DemoSettings:
        """About a minute: tiny models, few steps, a crop of the sky field, a few real images."""
        return cls(
            galaxy_epochs=6,
            galaxy_filters=(8, 16),
            galaxy_dense=(32,),
            cell_epochs=4,
            cell_patches=16,
            cell_patch=64,
            cell_depth=2,
            cell_filters=8,
            sky_epochs=4,
            sky_steps=25,
            sky_train_shape=(384, 384),
            sky_depth=2,
            sky_filters=8,
            sky_crop=512,
            real_images=4,
            batch_norm=False,  # BatchNorm statistics need more than a few dozen steps
        )


# --------------------------------------------------------------------------------------------
# locating the data, preparing the output folder
# --------------------------------------------------------------------------------------------
def find_data(data: str | os.PathLike | None = None) -> Path:
    """Return the bundled data folder: ``data`` if given, else ``<repository>/data``.

    The package is installed from the repository (editable), so the data sits next to the
    ``sciconv`` package folder.

    Parameters
    ----------
    data : str or os.PathLike, optional
        An explicit data folder (``sciconv demo --data DIR``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DatasetError
        The folder does not exist.

    Examples
    --------
    >>> find_data().is_dir()
    True
    """
    if data is not None:
        path = Path(data)
    else:
        path = Path(__file__).resolve().parent.parent / "data"
    if not path.is_dir():
        raise DatasetError(
            "bundled data folder not found; run the demo from a clone of the sciconv repository "
            "(pip install -e .) or pass --data DIR",
            path=path,
        )
    return path


def _require(data: Path, *parts: str) -> dict[str, Path]:
    found = {}
    for key in parts:
        p = data / DATA_PARTS[key]
        if not p.exists():
            raise DatasetError(
                f"the demo needs {DATA_PARTS[key]}/ inside the data folder; it is missing "
                "(is the data folder complete? see data/README.md)",
                path=p,
            )
        found[key] = p
    return found


_OUTPUTS = ("report.md", "metrics.json", "models", "predictions", "plots")


def _prepare_out(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError("--out must be a folder; a file of that name exists", path=out)
    existing = [name for name in _OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"folder already holds demo outputs ({', '.join(existing)}); pass overwrite=True "
            "to replace them, or choose another output folder",
            path=out,
        )
    runs = out / "runs"
    if runs.exists() and overwrite:  # start training from scratch, never resume an old demo
        for name in ("galaxies", "cells", "sky"):
            shutil.rmtree(runs / name, ignore_errors=True)
    for sub in ("models", "predictions", "plots", "runs"):
        (out / sub).mkdir(parents=True, exist_ok=True)


class _Writer:
    """Writes the demo's files atomically, remembering what it wrote."""

    def __init__(self, out: Path, overwrite: bool):
        self.out = out
        self.overwrite = overwrite
        self.files: list[Path] = []

    def figure(self, fig, name: str) -> str:
        path = self.out / "plots" / name
        with atomic_output(path, overwrite=self.overwrite) as tmp:
            fig.savefig(tmp, dpi=90)
        self.files.append(path)
        return f"plots/{name}"

    def model(self, model, name: str) -> Path:
        path = self.out / "models" / name
        with atomic_output(path, overwrite=self.overwrite) as tmp:
            model.save(tmp)
        self.files.append(path)
        return path

    def image(self, name: str, array, *, like=None, history=None) -> Path:
        from sciconv import io

        path = io.write(
            self.out / "predictions" / name,
            array,
            like=like,
            overwrite=self.overwrite,
            history=history,
        )
        self.files.append(Path(path))
        return Path(path)

    def catalog(self, table, name: str) -> Path:
        from sciconv import postprocess

        path = self.out / "predictions" / name
        postprocess.write_catalog(table, path, overwrite=self.overwrite)
        self.files.append(path)
        return path

    def text(self, name: str, text: str) -> Path:
        path = self.out / name
        with atomic_output(path, overwrite=self.overwrite) as tmp:
            tmp.write_text(text)
        self.files.append(path)
        return path


# --------------------------------------------------------------------------------------------
# part 1: galaxies
# --------------------------------------------------------------------------------------------
def _collect(model, dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model`` over a batched (x, y) dataset; return images, true ids and scores."""
    xs, ys, ps = [], [], []
    for x, y in dataset:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        ps.append(np.asarray(model(x, training=False)))
    y = np.concatenate(ys)
    if y.ndim == 2:  # one-hot labels
        y = y.argmax(axis=1)
    return np.concatenate(xs), y.astype(np.int64), np.concatenate(ps)


def _galaxies(paths, settings: DemoSettings, w: _Writer, log) -> dict[str, Any]:
    from sciconv import datasets, models, training, viz

    train, val = datasets.from_folder(
        paths["galaxies"],
        validation_split=0.25,
        batch_size=32,
        augment=True,
        seed=settings.seed,
    )
    names = list(train.class_names)
    shape = tuple(int(s) for s in train.element_spec[0].shape[1:])
    log(f"[galaxies] {len(names)} classes {names}, images {shape}")
    model = models.classifier(
        shape,
        len(names),
        filters=settings.galaxy_filters,
        dense=settings.galaxy_dense,
        dropout=0.3,
        name="galaxy_classifier",
    )
    history = training.fit(
        model,
        train,
        validation_data=val,
        epochs=settings.galaxy_epochs,
        workdir=w.out / "runs" / "galaxies",
        tensorboard=False,
        overwrite=w.overwrite,
        seed=settings.seed,
        verbose=2,
    )
    x, y_true, scores = _collect(model, val)
    y_pred = scores.argmax(axis=1)
    acc = float(np.mean(y_pred == y_true))
    log(
        f"[galaxies] held-out accuracy {acc:.3f} on {y_true.size} images "
        f"(chance {1 / len(names):.2f})"
    )
    w.model(model, "galaxy_classifier.keras")
    figs = {
        "curves": w.figure(
            viz.training_curves(history, title="galaxy classifier"), "galaxy_curves.png"
        ),
        "confusion": w.figure(
            viz.confusion_matrix(y_true, y_pred, names, title=f"held-out accuracy {acc:.3f}"),
            "galaxy_confusion.png",
        ),
    }
    wrong = np.flatnonzero(y_pred != y_true)
    pick = int(wrong[0]) if wrong.size else 0
    fig = viz.grad_cam(model, x[pick], class_names=names)
    fig.suptitle(f"true: {names[y_true[pick]]}, predicted: {names[y_pred[pick]]}")
    figs["gradcam"] = w.figure(fig, "galaxy_gradcam.png")
    return {
        "accuracy": acc,
        "n_test": int(y_true.size),
        "n_classes": len(names),
        "class_names": names,
        "confusion": viz.confusion_counts(y_true, y_pred, num_classes=len(names)).tolist(),
        "figures": figs,
    }


# --------------------------------------------------------------------------------------------
# part 2: cells
# --------------------------------------------------------------------------------------------
def _stem_pairs(
    images: Path, masks: Path, *, required: bool, limit: int | None = None
) -> list[tuple[Path, Path]]:
    """(image, mask) pairs by the rule datasets.from_pairs pairs by: "a.fits.gz" and "a.tif"
    share the stem "a". An image without a mask is an error (``required``) or left out; at most
    ``limit`` pairs (None: all)."""
    from sciconv import io

    by_stem: dict[str, Path] = {}
    for q in io.list_images(masks):
        by_stem.setdefault(io._image_stem(q), Path(q))
    pairs = []
    for p in map(Path, io.list_images(images)):
        stem = io._image_stem(p)
        if stem in by_stem:
            pairs.append((p, by_stem[stem]))
        elif required:
            raise DatasetError(f"no mask with the stem {stem!r} in {masks}", path=p)
    return pairs[:limit] if limit else pairs


def _ap_scores(trues, preds) -> dict[str, float]:
    """Pooled AP@0.5 and mean AP@0.5:0.9 of instance label images against their truth."""
    from sciconv import metrics

    ap = metrics.average_precision(trues, preds)
    thresholds = list(np.round(ap["thresholds"], 2))
    return {"ap50": float(ap["ap"][thresholds.index(0.5)]), "mean_ap": float(ap["mean_ap"])}


def _split_pairs(images: Path, masks: Path, *, seed: int, fraction: float = 0.25):
    pairs = _stem_pairs(images, masks, required=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    n_test = max(1, round(fraction * len(pairs)))
    test = [pairs[i] for i in sorted(order[:n_test])]
    train = [pairs[i] for i in sorted(order[n_test:])]
    return train, test


def _evaluate_instances(model, pairs, *, post=None) -> tuple[dict, list]:
    from sciconv import inference, io, postprocess

    trues, preds, ious, shown = [], [], [], []
    for img_path, mask_path in pairs:
        img = io.read(img_path)
        truth = np.asarray(io.read(mask_path).data[..., 0]).astype(np.int32)
        prob = inference.predict_tiled(model, img, progress=False)
        labels = postprocess.instances(prob, **(post or {}))
        trues.append(truth)
        preds.append(labels)
        fg_t, fg_p = truth > 0, labels > 0
        union = np.logical_or(fg_t, fg_p).sum()
        ious.append(float(np.logical_and(fg_t, fg_p).sum() / union) if union else 1.0)
        shown.append((img, truth, labels))
    return {"iou": float(np.mean(ious)), **_ap_scores(trues, preds), "n_test": len(pairs)}, shown


def _overlay_pair(viz, img, truth, labels, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), layout="constrained")
    ax0, ax1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    viz.outlines(
        img, truth, ax=ax0, title=f"truth ({int(truth.max())} objects)", stretch="percentile"
    )
    viz.outlines(
        img,
        labels,
        ax=ax1,
        color="cyan",
        title=f"predicted ({int(labels.max())})",
        stretch="percentile",
    )
    fig.suptitle(title)
    return fig


def _cells(paths, settings: DemoSettings, w: _Writer, log) -> dict[str, Any]:
    from sciconv import datasets, models, training, viz

    train_pairs, test_pairs = _split_pairs(
        paths["cells_images"], paths["cells_masks"], seed=settings.seed
    )
    log(f"[cells] {len(train_pairs)} training and {len(test_pairs)} held-out image/mask pairs")
    train = datasets.from_pairs(
        [str(p) for p, _ in train_pairs],
        [str(m) for _, m in train_pairs],
        patch_size=(settings.cell_patch, settings.cell_patch),
        patches_per_image=settings.cell_patches,
        target="semantic",
        batch_size=8,
        augment=True,
        seed=settings.seed,
    )
    model = models.segmenter(
        (None, None, 1),
        num_classes=2,
        depth=settings.cell_depth,
        filters=settings.cell_filters,
        batch_norm=settings.batch_norm,
        name="nuclei_segmenter",
    )
    history = training.fit(
        model,
        train,
        epochs=settings.cell_epochs,
        workdir=w.out / "runs" / "cells",
        tensorboard=False,
        overwrite=w.overwrite,
        seed=settings.seed,
        verbose=2,
    )
    scores, shown = _evaluate_instances(model, test_pairs)
    log(
        f"[cells] held-out foreground IoU {scores['iou']:.3f}, AP@0.5 {scores['ap50']:.3f}, "
        f"mean AP@0.5:0.9 {scores['mean_ap']:.3f}"
    )
    w.model(model, "nuclei_segmenter.keras")
    img, truth, labels = shown[0]
    w.image(f"cells_{Path(test_pairs[0][0]).stem}_labels.tif", labels.astype(np.int32))
    figs = {
        "curves": w.figure(
            viz.training_curves(history, title="nuclei segmenter"), "cells_curves.png"
        ),
        "overlay": w.figure(
            _overlay_pair(
                viz,
                img,
                truth,
                labels,
                f"held-out cells ({len(test_pairs)} images): AP@0.5 {scores['ap50']:.2f}",
            ),
            "cells_overlay.png",
        ),
    }
    return {**scores, "figures": figs}


# --------------------------------------------------------------------------------------------
# part 3: sky
# --------------------------------------------------------------------------------------------
def _source_mask(shape, truth, *, psf_fwhm: float = 3.0) -> np.ndarray:
    """Discs at the truth positions: PSF-sized for stars, r_eff-sized for galaxies."""
    mask = np.zeros(shape, dtype=np.int32)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    for row in truth:
        r = psf_fwhm
        if "r_eff" in truth.colnames and str(row["kind"]) == "galaxy":
            r = max(psf_fwhm, float(row["r_eff"]))
        x, y = float(row["x"]), float(row["y"])
        y0, y1 = max(0, int(y - r - 1)), min(shape[0], int(y + r + 2))
        x0, x1 = max(0, int(x - r - 1)), min(shape[1], int(x + r + 2))
        sub = (yy[y0:y1] - y) ** 2 + (xx[:, x0:x1] - x) ** 2 <= r * r
        mask[y0:y1, x0:x1][sub] = 1
    return mask


def _sky_training_set(settings: DemoSettings, patch: int = 64, batch: int = 16):
    """A tf.data set of (image patch, source mask) from a field simulated with another seed."""
    import tensorflow as tf

    from sciconv import preprocess, simulate
    from sciconv.augment import d4_transform

    h, w = settings.sky_train_shape
    scale = (h * w) / (2048 * 2048)  # twice the bundled field's source density
    image, _, truth = simulate.sky_field(
        (h, w),
        seed=settings.seed + 101,
        n_stars=max(20, int(400 * scale * 2)),
        n_galaxies=max(10, int(250 * scale * 2)),
    )
    mask = _source_mask((h, w), truth)
    # zscale limits follow the sky and its noise, not the brightest sources, so a field with
    # more or fewer bright sources than the training field is normalized the same way (the
    # default percentile spec is not: the detector then sees noise as sources)
    spec = {"method": "zscale"}
    x = preprocess.normalize_spec(image[..., None], spec)
    rng = np.random.default_rng(settings.seed)
    n = settings.sky_steps * batch
    ys = rng.integers(0, h - patch, n)
    xs = rng.integers(0, w - patch, n)
    # half of the patches are centred on a source: sources cover a small part of the sky
    on = rng.random(n) < 0.5
    pick = rng.integers(0, len(truth), n)
    cy = np.asarray(truth["y"])[pick] + rng.uniform(-patch / 4, patch / 4, n)
    cx = np.asarray(truth["x"])[pick] + rng.uniform(-patch / 4, patch / 4, n)
    ys = np.where(on, np.clip(cy - patch // 2, 0, h - patch).astype(int), ys)
    xs = np.where(on, np.clip(cx - patch // 2, 0, w - patch).astype(int), xs)
    k = rng.integers(0, 4, n)  # the four rotations of D4 (augment.d4_transform's k < 4)
    xp = np.stack([d4_transform(x[a : a + patch, b : b + patch], r) for a, b, r in zip(ys, xs, k)])
    yp = np.stack(
        [
            d4_transform(mask[a : a + patch, b : b + patch], r, axes=(0, 1))
            for a, b, r in zip(ys, xs, k)
        ]
    )
    ds = tf.data.Dataset.from_tensor_slices((xp.astype(np.float32), yp.astype(np.int32)))
    ds = ds.shuffle(n, seed=settings.seed).batch(batch).repeat()
    ds.normalization = spec
    ds.task = "segmentation"
    ds.class_names = ["sky", "source"]
    return ds


def _sky(paths, settings: DemoSettings, w: _Writer, log) -> dict[str, Any]:
    import keras
    from astropy.table import Table

    from sciconv import inference, io, models, postprocess, training, viz

    sky_dir = paths["sky"]
    field = next(
        (
            sky_dir / n
            for n in ("field.fits", "field.fits.fz", "field.fits.gz")
            if (sky_dir / n).exists()
        ),
        None,
    )
    if field is None or not (sky_dir / "truth.ecsv").exists():
        raise DatasetError(
            "the sky part needs field.fits (or .fits.fz) and truth.ecsv", path=sky_dir
        )
    img = io.read(field)
    truth = Table.read(sky_dir / "truth.ecsv")
    if settings.sky_crop and min(img.shape[:2]) > settings.sky_crop:
        c = settings.sky_crop
        img = img.cutout(0, c, 0, c)
        keep = (truth["x"] < c - 0.5) & (truth["y"] < c - 0.5)
        truth = truth[keep]
    log(
        f"[sky] field {field.name} {img.shape[:2]}, {len(truth)} truth sources, "
        f"WCS {img.wcs is not None}"
    )

    train = _sky_training_set(settings)
    model = models.segmenter(
        (None, None, 1),
        num_classes=2,
        depth=settings.sky_depth,
        filters=settings.sky_filters,
        batch_norm=False,  # measured: with BatchNorm the detector floods the sky with false sources
        name="sky_detector",
    )
    # Sources cover about 1 % of the sky: plain cross-entropy learns "mostly sky" quickly, while
    # the Dice term of the default segmentation loss over-predicts sources early in training.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    training.fit(
        model,
        train,
        epochs=settings.sky_epochs,
        steps_per_epoch=settings.sky_steps,
        workdir=w.out / "runs" / "sky",
        tensorboard=False,
        overwrite=w.overwrite,
        seed=settings.seed,
        verbose=2,
    )
    w.model(model, "sky_detector.keras")
    t0 = time.perf_counter()
    prob = inference.predict_tiled(model, img, tile=256, overlap="auto", progress=True)
    labels = postprocess.instances(prob, threshold=0.5, min_size=4)
    table = postprocess.measure(labels, intensity=img, wcs=img.wcs)
    dt = time.perf_counter() - t0
    scale = 0.2
    if img.wcs is not None:
        from astropy.wcs.utils import proj_plane_pixel_scales

        scale = float(np.mean(proj_plane_pixel_scales(img.wcs)) * 3600.0)
    sky = "ra" in table.colnames and "ra" in truth.colnames
    match = viz.match_catalogs(truth, table, max_separation=3.0 * scale if sky else 3.0, sky=sky)
    flux = np.asarray(truth["flux"], dtype=float)
    bright = flux >= np.median(flux)
    found = np.zeros(len(truth), dtype=bool)
    found[match["ref_index"]] = True
    offset = float(np.median(match["separation"])) if match["separation"].size else float("nan")
    log(
        f"[sky] {len(table)} detections in {dt:.1f} s; completeness {match['completeness']:.3f} "
        f"(bright half {found[bright].mean():.3f}), purity {match['purity']:.3f}, "
        f"median offset {offset:.3f} {'arcsec' if sky else 'px'}"
    )
    w.image("sky_field_prob.fits", (1.0 - prob[..., 0]).astype(np.float32), like=img,
            history="sciconv demo: source probability")  # fmt: skip
    w.image("sky_field_labels.fits", labels.astype(np.int32), like=img,
            history="sciconv demo: source instance labels")  # fmt: skip
    w.catalog(table, "sky_catalog.ecsv")
    fig = viz.outlines(img, labels, color="cyan", stretch="asinh", title="detected sources (cyan)")
    ax = fig.axes[0]
    ax.scatter(truth["x"], truth["y"], s=40, facecolors="none", edgecolors="red", lw=0.6,
               transform=ax.transData, label="truth")  # fmt: skip
    ax.legend(loc="upper right", fontsize=8)
    figs = {"field": w.figure(fig, "sky_field.png")}
    fig = viz.compare_catalogs(truth, table, max_separation=3.0 * scale if sky else 3.0, sky=sky,
                               names=("truth", "sciconv"))  # fmt: skip
    figs["catalog"] = w.figure(fig, "sky_catalog.png")
    return {
        "n_truth": len(truth),
        "n_detected": len(table),
        "completeness": float(match["completeness"]),
        "completeness_bright": float(found[bright].mean()) if bright.any() else float("nan"),
        "purity": float(match["purity"]),
        "median_offset": offset,
        "offset_unit": "arcsec" if sky else "pixel",
        "has_radec": sky,
        "seconds": dt,
        "figures": figs,
    }


# --------------------------------------------------------------------------------------------
# part 4: real nuclei, pretrained model
# --------------------------------------------------------------------------------------------
def _score_pretrained(model, pairs) -> tuple[dict[str, Any], list, list]:
    """Pooled AP of the pretrained model over image/label pairs (images passed as read)."""
    from sciconv import inference, io

    trues, preds = [], []
    for p, q in pairs:
        trues.append(np.asarray(io.read(q).data[..., 0]).astype(np.int32))
        preds.append(inference.predict_instances(model, io.read(p), progress=False))
    return {**_ap_scores(trues, preds), "n_images": len(pairs)}, trues, preds


def _real_nuclei(paths, settings: DemoSettings, w: _Writer, log) -> dict[str, Any]:
    from sciconv import io, models, viz

    model = models.pretrained("nuclei")
    pairs = _stem_pairs(
        paths["real_nuclei_images"],
        paths["real_nuclei_labels"],
        required=False,
        limit=settings.real_images,
    )
    if not pairs:
        raise DatasetError("no image/label pairs found", path=paths["real_nuclei_images"])
    result, trues, preds = _score_pretrained(model, pairs)
    log(
        f"[real nuclei] pretrained model on {len(pairs)} real fluorescence images: AP@0.5 "
        f"{result['ap50']:.3f}, mean AP {result['mean_ap']:.3f}"
    )
    w.image(f"real_nuclei_{pairs[0][0].stem[:12]}_labels.tif", preds[0].astype(np.int32))
    fig = _overlay_pair(
        viz,
        io.read(pairs[0][0]),
        trues[0],
        preds[0],
        f"pretrained model on real nuclei ({len(pairs)} images): AP@0.5 {result['ap50']:.2f}",
    )
    result["figures"] = {"overlay": w.figure(fig, "real_nuclei_overlay.png")}
    # brightfield (H&E colour, grey brightfield) images, when the data folder has them
    bright = paths["real_nuclei_images"].parent.parent / "nuclei_brightfield"
    bright_pairs = []
    if bright.is_dir():  # an own --data folder need not have them
        bright_pairs = _stem_pairs(
            bright / "images", bright / "labels", required=False, limit=settings.real_images
        )
    if bright_pairs:
        scores, _, _ = _score_pretrained(model, bright_pairs)
        result["brightfield"] = scores
        log(
            f"[real nuclei] pretrained model on {len(bright_pairs)} real brightfield images: "
            f"AP@0.5 {scores['ap50']:.3f}, mean AP {scores['mean_ap']:.3f}"
        )
    return result


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
def headline(result: dict[str, Any]) -> list[str]:
    """One line per headline metric of a :func:`run` result.

    Examples
    --------
    >>> headline({"galaxies": {"accuracy": 0.9, "n_test": 30, "n_classes": 3}})
    ['galaxy classifier: held-out accuracy 0.900 on 30 images (chance 0.33)']
    """
    lines = []
    g = result.get("galaxies")
    if g:
        lines.append(
            f"galaxy classifier: held-out accuracy {g['accuracy']:.3f} on {g['n_test']} images "
            f"(chance {1 / g['n_classes']:.2f})"
        )
    c = result.get("cells")
    if c:
        lines.append(
            f"nuclei segmenter (simulated cells): held-out foreground IoU {c['iou']:.3f}, "
            f"AP@0.5 {c['ap50']:.3f}, mean AP@0.5:0.9 {c['mean_ap']:.3f} ({c['n_test']} images)"
        )
    s = result.get("sky")
    if s:
        lines.append(
            f"sky field: {s['n_detected']} detections for {s['n_truth']} true sources; "
            f"completeness {s['completeness']:.3f} (bright half {s['completeness_bright']:.3f}), "
            f"purity {s['purity']:.3f}, median offset {s['median_offset']:.3f} {s['offset_unit']}"
        )
    r = result.get("real_nuclei")
    if r:
        lines.append(
            f"pretrained nuclei model on real images: AP@0.5 {r['ap50']:.3f}, mean AP@0.5:0.9 "
            f"{r['mean_ap']:.3f} ({r['n_images']} images never seen in training)"
        )
        b = r.get("brightfield")
        if b:
            lines.append(
                f"pretrained nuclei model on real brightfield images: AP@0.5 {b['ap50']:.3f}, "
                f"mean AP@0.5:0.9 {b['mean_ap']:.3f} ({b['n_images']} images never seen in "
                "training)"
            )
    return lines


def _report(result: dict[str, Any], settings: DemoSettings, fast: bool) -> str:
    lines = [
        "# sciconv demo report",
        "",
        f"Mode: {'fast (tiny models, for tests)' if fast else 'default'}; seed {settings.seed}; "
        f"total time {result['seconds']:.0f} s.",
        "",
        "## Headline metrics",
        "",
        *[f"- {line}" for line in headline(result)],
        "",
    ]
    g = result["galaxies"]
    lines += [
        "## 1. Galaxy morphology classifier",
        "",
        f"Conv–pool–dense classifier on the bundled FITS cutouts ({', '.join(g['class_names'])}), "
        f"evaluated on a held-out quarter: accuracy **{g['accuracy']:.3f}** on {g['n_test']} "
        "images. Model: `models/galaxy_classifier.keras`.",
        "",
        f"![training curves]({g['figures']['curves']})",
        f"![confusion matrix]({g['figures']['confusion']})",
        f"![Grad-CAM]({g['figures']['gradcam']})",
        "",
    ]
    c = result["cells"]
    lines += [
        "## 2. Nuclei segmentation (simulated cells)",
        "",
        "U-Net (background / foreground) and a distance-transform watershed into instances, "
        f"evaluated on {c['n_test']} held-out images: foreground IoU **{c['iou']:.3f}**, "
        f"AP@0.5 **{c['ap50']:.3f}**, mean AP@0.5:0.9 **{c['mean_ap']:.3f}**. "
        "Model: `models/nuclei_segmenter.keras`; labels in `predictions/`.",
        "",
        f"![training curves]({c['figures']['curves']})",
        f"![held-out overlay]({c['figures']['overlay']})",
        "",
    ]
    s = result["sky"]
    lines += [
        "## 3. Source detection on the sky field",
        "",
        "A small U-Net trained on a separately simulated field, run tile by tile over the bundled "
        f"field ({s['seconds']:.1f} s). {s['n_detected']} detections for {s['n_truth']} true "
        f"sources: completeness **{s['completeness']:.3f}** (bright half "
        f"{s['completeness_bright']:.3f}), purity **{s['purity']:.3f}**, median offset "
        f"{s['median_offset']:.3f} {s['offset_unit']}. Written with the field's WCS: "
        "`predictions/sky_field_prob.fits`, `predictions/sky_field_labels.fits`, catalog "
        "`predictions/sky_catalog.ecsv`" + (" (with RA/Dec)." if s["has_radec"] else "."),
        "",
        f"![sky field]({s['figures']['field']})",
        f"![catalog comparison]({s['figures']['catalog']})",
        "",
    ]
    r = result["real_nuclei"]
    lines += [
        "## 4. Pretrained nuclei model on real images",
        "",
        f"`sciconv.models.pretrained('nuclei')` on {r['n_images']} real fluorescence images "
        "(Data Science Bowl 2018, held out from its training), no training: "
        f"AP@0.5 **{r['ap50']:.3f}**, mean AP@0.5:0.9 **{r['mean_ap']:.3f}**."
        + (
            f" On {r['brightfield']['n_images']} real brightfield images (H&E colour and grey "
            "brightfield, passed as read; the model's stored input transform makes them grey "
            f"with bright nuclei): AP@0.5 **{r['brightfield']['ap50']:.3f}**, mean AP@0.5:0.9 "
            f"**{r['brightfield']['mean_ap']:.3f}**."
            if r.get("brightfield")
            else ""
        ),
        "",
        f"![real nuclei]({r['figures']['overlay']})",
        "",
    ]
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def run(
    *,
    out: str | os.PathLike = "sciconv_demo",
    data: str | os.PathLike | None = None,
    fast: bool | None = None,
    overwrite: bool = False,
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Run the whole demo and write its outputs to ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder (created). Refused if it already holds demo outputs, unless ``overwrite``.
    data : str or os.PathLike, optional
        The bundled data folder (default: :func:`find_data`).
    fast : bool, optional
        Tiny settings (about a minute). Default: ``SCICONV_FAST=1`` in the environment.
    overwrite : bool
        Replace the outputs of an earlier demo in ``out``.
    log : callable, optional
        Called with one line of progress text per step (the command line prints them).

    Returns
    -------
    dict
        Metrics of each part (``galaxies``, ``cells``, ``sky``, ``real_nuclei``), ``files``
        (every file written) and ``seconds``; also saved as ``metrics.json``.

    Examples
    --------
    >>> result = run(out="demo_out", fast=True)  # doctest: +SKIP
    >>> sorted(result)  # doctest: +SKIP
    ['cells', 'files', 'galaxies', 'real_nuclei', 'seconds', 'sky']
    """
    t0 = time.perf_counter()
    if fast is None:
        fast = os.environ.get("SCICONV_FAST") == "1"
    log = log or (lambda _msg: None)
    settings = DemoSettings.fast() if fast else DemoSettings.full()
    data_dir = find_data(data)
    paths = _require(data_dir, *DATA_PARTS)
    out = Path(out)
    _prepare_out(out, overwrite=overwrite)
    w = _Writer(out, overwrite)
    log(f"sciconv demo ({'fast' if fast else 'default'} settings): data {data_dir}, output {out}")

    import keras

    keras.utils.set_random_seed(settings.seed)
    result: dict[str, Any] = {}
    result["galaxies"] = _galaxies(paths, settings, w, log)
    result["cells"] = _cells(paths, settings, w, log)
    result["sky"] = _sky(paths, settings, w, log)
    result["real_nuclei"] = _real_nuclei(paths, settings, w, log)
    result["seconds"] = time.perf_counter() - t0
    w.text("report.md", _report(result, settings, fast))
    result["files"] = [str(p) for p in w.files]
    w.text("metrics.json", json.dumps(_jsonable(result), indent=2) + "\n")
    return result
