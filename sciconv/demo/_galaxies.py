"""Part 1 of the demo: a conv–pool–dense galaxy morphology classifier on FITS cutouts."""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv.demo._output import Writer
from sciconv.demo._settings import DemoSettings


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


def run_galaxies(paths, settings: DemoSettings, w: Writer, log) -> dict[str, Any]:
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
    # a misclassified image first; one whose Grad-CAM map is not all zero (a map of zeros
    # says nothing: the class score does not rise with the last conv layer's features there)
    order = [*np.flatnonzero(y_pred != y_true), *np.flatnonzero(y_pred == y_true)]
    shown = (i for i in order if viz.grad_cam_heatmap(model, x[i], normalize=None).max() > 0)
    pick = int(next(shown, order[0] if order else 0))
    fig = viz.grad_cam(model, x[pick], class_names=names, normalize=None)  # x: normalized batches
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
