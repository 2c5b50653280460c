"""Training and evaluation: learning curves, the confusion matrix, catalog comparisons.

These functions draw; the numbers they draw are computed elsewhere: a run's log is read by
:func:`sciconv.runs.read_log`, the counts and the catalog match come from
:func:`sciconv.metrics.confusion_counts` and :func:`sciconv.metrics.match_catalogs` (imported when
a drawing needs them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sciconv.errors import ConfigError, SciconvError
from sciconv.runs import read_log

__all__ = ["compare_catalogs", "confusion_matrix", "panel_axes", "training_curves"]


def panel_axes(ax: Any, n: int, *, what: str) -> list:
    """The caller's axes for ``n`` panels: one Axes (``n == 1``) or a sequence of ``n``.

    Examples
    --------
    >>> fig = Figure()
    >>> len(panel_axes(fig.subplots(1, 2), 2, what="panels"))
    2
    """
    axes = [ax] if hasattr(ax, "plot") else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != n or not all(hasattr(a, "plot") for a in axes):
        raise ConfigError(
            f"ax must be {'one Axes' if n == 1 else f'{n} Axes'} for the {n} {what}; got "
            f"{len(axes)} item(s)"
        )
    return axes


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def _history(source: Any) -> dict[str, np.ndarray]:
    """Per-epoch values of a History, a dict of lists, or a run's ``log.csv`` (or its workdir)."""
    if hasattr(source, "history") and isinstance(source.history, Mapping):
        source = source.history
    if isinstance(source, Mapping):
        hist = {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in source.items()}
    elif isinstance(source, (str, os.PathLike)):
        hist = read_log(source)
    else:
        raise ConfigError(
            "training_curves needs a keras History, a dict of lists, or the path of a CSV log; "
            f"got {type(source).__name__}"
        )
    hist.pop("epoch", None)
    if not hist:
        raise SciconvError("training history holds no metrics")
    return hist


def training_curves(history: Any, *, title: str | None = None, ax: Any = None) -> Figure:
    """Plot loss and metrics per epoch, training and validation together, one panel per metric.

    Parameters
    ----------
    history : keras.callbacks.History, dict or path
        A History from :func:`sciconv.training.fit`, a dict of per-epoch lists, or the run's
        ``log.csv`` (or its workdir).
    title : str, optional
    ax : matplotlib Axes or sequence of Axes, optional
        Draw into these, one per metric (in the order of the log), instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric, titled with the metric's name; epochs are whole numbers.

    Examples
    --------
    >>> from sciconv.viz import training_curves
    >>> fig = training_curves({"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss']
    """
    hist = _history(history)
    bases = []
    for key in hist:
        base = key[4:] if key.startswith("val_") else key
        if base not in bases:
            bases.append(base)
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        ncols = min(3, len(bases))
        nrows = int(np.ceil(len(bases) / ncols))
        fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
        axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(len(bases))]
    else:
        axes = panel_axes(ax, len(bases), what=f"metrics {bases}")
        fig = axes[0].figure
    for ax, base in zip(axes, bases):
        for key, label in ((base, "train"), (f"val_{base}", "validation")):
            if key in hist:
                values = hist[key]
                ax.plot(np.arange(1, values.size + 1), values, marker="o", ms=3, label=label)
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if base in ("learning_rate", "lr"):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    if title is not None:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------
def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    class_names: Sequence[str],
    *,
    normalize: bool = False,
    title: str | None = None,
    cmap: str = "Blues",
    ax: Any = None,
) -> Figure:
    """Plot the confusion matrix with counts (or row fractions) written in each cell.

    Parameters
    ----------
    y_true : array_like of int, (N,)
    y_pred : array_like, (N,) class ids or (N, K) scores
    class_names : sequence of str
        One name per class, in id order.
    normalize : bool
        Colour and annotate by fraction of each true class (rows sum to 1).
    title : str, optional
        Default: the overall accuracy.
    cmap : str
    ax : matplotlib Axes, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into. ``fig.matrix`` holds the ``(K, K)`` integer counts (row =
        true, column = predicted).

    Examples
    --------
    >>> from sciconv.viz import confusion_matrix
    >>> fig = confusion_matrix([0, 1, 1], [0, 1, 0], ["disk", "spiral"])
    >>> fig.matrix.tolist()
    [[1, 0], [1, 1]]
    """
    from sciconv.metrics import confusion_counts

    names = [str(c) for c in class_names]
    counts = confusion_counts(y_true, y_pred, num_classes=len(names))
    if counts.shape[0] != len(names):
        raise ConfigError(f"got {len(names)} class_names for {counts.shape[0]} classes")
    shown = counts.astype(np.float64)
    if normalize:
        shown = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1)
    k = len(names)
    size = max(4.0, 0.7 * k + 2.5)
    if ax is None:
        fig = Figure(figsize=(size + 1, size), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = panel_axes(ax, 1, what="confusion matrix")[0].figure
    im = ax.imshow(shown, cmap=cmap, vmin=0, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    top = shown.max() if shown.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else str(counts[i, j])
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                color="white" if shown[i, j] > 0.5 * top else "black",
                fontsize=9,
            )
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = counts.sum()
    acc = np.trace(counts) / total if total else float("nan")
    ax.set_title(title if title is not None else f"accuracy {acc:.3f} (N={total})")
    fig.matrix = counts
    return fig


# --------------------------------------------------------------------------------------------
# catalogs
# --------------------------------------------------------------------------------------------
def compare_catalogs(
    reference: Any,
    found: Any,
    *,
    max_separation: float = 3.0,
    columns: tuple[str, str] = ("x", "y"),
    sky: bool = False,
    flux_columns: tuple[str, str] | None = None,
    names: tuple[str, str] = ("reference", "found"),
    ax: Any = None,
) -> Figure:
    """Compare a found catalog with a reference: positions, offsets, and fluxes when given.

    Parameters
    ----------
    reference, found, max_separation, columns, sky
        As for :func:`sciconv.metrics.match_catalogs`.
    flux_columns : (str, str), optional
        Flux column of the reference and of the found catalog for a flux–flux panel.
    names : (str, str)
        Labels of the two catalogs.
    ax : sequence of matplotlib Axes, optional
        Draw the panels (positions, offsets, and fluxes when ``flux_columns`` is given) into
        these 2 (or 3) axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into. On the sky, positions are in degrees (RA growing to the left,
        the aspect true at the catalog's mean Dec). ``fig.match`` is the dict of
        :func:`sciconv.metrics.match_catalogs`.

    Raises
    ------
    ConfigError
        As for :func:`sciconv.metrics.match_catalogs`; a flux column missing from its catalog
        or not numeric, or ``flux_columns`` not a pair.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from sciconv.viz import compare_catalogs
    >>> ref = Table({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    >>> fig = compare_catalogs(ref, ref, max_separation=1.0)
    >>> fig.match["completeness"]
    1.0
    """
    from sciconv.metrics import match_catalogs
    from sciconv.metrics._catalogs import catalog_columns

    match = match_catalogs(
        reference, found, max_separation=max_separation, columns=columns, sky=sky
    )
    cols = ("ra", "dec") if sky else tuple(columns)  # checked by match_catalogs
    a, b = (
        np.column_stack(catalog_columns(t, cols, which=w))
        for t, w in ((reference, "reference"), (found, "found"))
    )
    if flux_columns is not None:
        if isinstance(flux_columns, str) or len(flux_columns) != 2:
            raise ConfigError(
                "flux_columns must be a pair (the reference's flux column, the found "
                f"catalog's), e.g. ('flux', 'flux_sum'); got {flux_columns!r}"
            )
        fa, fb = (
            catalog_columns(t, [c], which=w)[0]
            for t, c, w in (
                (reference, flux_columns[0], "reference"),
                (found, flux_columns[1], "found"),
            )
        )
    npanel = 3 if flux_columns else 2
    if ax is None:
        fig = Figure(figsize=(4.3 * npanel, 4.0), layout="constrained")
        axes = [fig.add_subplot(1, npanel, i + 1) for i in range(npanel)]
    else:
        axes = panel_axes(ax, npanel, what="panels (positions, offsets[, fluxes])")
        fig = axes[0].figure
    ax = axes[0]
    ax.scatter(a[:, 0], a[:, 1], s=30, facecolors="none", edgecolors="C0", label=names[0])
    ax.scatter(b[:, 0], b[:, 1], s=6, color="C1", label=names[1])
    if sky:
        ax.set_xlabel("RA [deg]")
        ax.set_ylabel("Dec [deg]")
        ax.ticklabel_format(useOffset=False, style="plain")
        dec0 = float(np.nanmean(a[:, 1])) if a.size else 0.0
        ax.set_aspect(1.0 / max(np.cos(np.radians(dec0)), 1e-3), adjustable="datalim")
        ax.invert_xaxis()
    else:
        ax.set_xlabel(cols[0])
        ax.set_ylabel(cols[1])
    ax.set_title(
        f"matched {len(match['ref_index'])}: completeness {match['completeness']:.2f}, "
        f"purity {match['purity']:.2f}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    unit = "arcsec" if sky else "pixel"
    ax = axes[1]
    ax.scatter(match["dx"], match["dy"], s=6)
    ax.axhline(0, color="gray", lw=0.5)
    ax.axvline(0, color="gray", lw=0.5)
    ax.set_xlabel(f"Δ{'RA cos Dec' if sky else 'x'} [{unit}]")
    ax.set_ylabel(f"Δ{'Dec' if sky else 'y'} [{unit}]")
    rms = float(np.sqrt(np.mean(match["separation"] ** 2))) if match["separation"].size else np.nan
    ax.set_title(f"offsets (rms {rms:.3g} {unit})", fontsize=9)
    if flux_columns:
        fa, fb = fa[match["ref_index"]], fb[match["found_index"]]
        ax = axes[2]
        ax.scatter(fa, fb, s=6)
        good = (fa > 0) & (fb > 0)
        if good.any():
            ax.set_xscale("log")
            ax.set_yscale("log")
            lo, hi = min(fa[good].min(), fb[good].min()), max(fa[good].max(), fb[good].max())
            ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8)
        ax.set_xlabel(f"{names[0]} {flux_columns[0]}")
        ax.set_ylabel(f"{names[1]} {flux_columns[1]}")
        ax.set_title("flux", fontsize=9)
    fig.match = match
    return fig
