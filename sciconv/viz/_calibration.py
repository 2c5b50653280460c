"""Reliability diagram: how often a classifier is right against how sure it says it is.

The numbers come from :func:`sciconv.calibration.reliability_curve` and
:func:`sciconv.calibration.expected_calibration_error` (imported when a drawing needs them:
:mod:`sciconv.calibration` loads Keras).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sciconv._validation import check_int
from sciconv.errors import ConfigError

__all__ = ["plot_reliability"]


def plot_reliability(
    probs, y, *, bins: int = 15, title: str | None = None, ax: Any = None
) -> Figure:
    """Draw a reliability diagram (accuracy against confidence) with the ECE of each curve.

    Parameters
    ----------
    probs : ndarray of shape (N, K), or dict of name -> ndarray
        Class probabilities (softmax rows, or sigmoid outputs; see
        :func:`sciconv.calibration.reliability_curve`). A dict draws several curves on one
        diagram, e.g. ``{"before": p, "after temperature scaling": q}``.
    y : ndarray
        The true labels: class ids (N,) or one-hot rows; 0/1 (N, K) for sigmoid outputs.
    bins : int, optional
        Equal-width confidence bins. Default 15.
    title : str, optional
    ax : matplotlib Axes or pair of Axes, optional
        Draw into these instead of a new figure: one Axes gets the diagram alone, a pair
        ``(top, bottom)`` the diagram and the counts.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into. Top: accuracy per bin against the mean confidence of the
        bin, the diagonal being perfect calibration, each curve labelled with its expected
        calibration error. Bottom: how many predictions fall in each bin.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.viz import plot_reliability
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> fig = plot_reliability(probs, np.array([0, 0, 1, 1]), bins=5)
    >>> fig.axes[0].get_legend().get_texts()[1].get_text()
    'model (ECE 0.300)'
    """
    from sciconv.calibration import expected_calibration_error, reliability_curve

    bins = check_int(bins, name="bins", minimum=1)
    curves = dict(probs) if isinstance(probs, Mapping) else {"model": probs}
    if not curves:
        raise ConfigError("plot_reliability needs at least one set of probabilities")
    if ax is None:
        fig = Figure(figsize=(4.8, 5.6), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    else:
        axes = [ax] if hasattr(ax, "plot") else list(ax)
        if len(axes) not in (1, 2) or not all(hasattr(a, "plot") for a in axes):
            raise ConfigError(
                "ax must be one Axes (the diagram) or a pair (diagram, counts); got "
                f"{len(axes)} item(s)"
            )
        top, bottom = axes[0], (axes[1] if len(axes) == 2 else None)
        fig = top.figure
    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfect calibration")
    width = 1.0 / bins
    for i, (name, p) in enumerate(curves.items()):
        curve = reliability_curve(p, y, bins=bins)
        ece = expected_calibration_error(p, y, bins=bins)
        keep = curve["count"] > 0
        top.plot(
            curve["confidence"][keep],
            curve["accuracy"][keep],
            marker="o",
            label=f"{name} (ECE {ece:.3f})",
        )
        centres = curve["edges"][:-1] + width / 2
        offset = (i - (len(curves) - 1) / 2) * width / max(len(curves), 1)
        if bottom is not None:
            bottom.bar(
                centres + offset,
                curve["count"],
                width=width / max(len(curves), 1),
                label=str(name),
            )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize="small")
    top.set_title(title or "reliability")
    if bottom is None:
        top.set_xlabel("confidence")
        return fig
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    bottom.set_yscale("log" if np.max([1, *bottom.get_ylim()]) > 100 else "linear")
    return fig
