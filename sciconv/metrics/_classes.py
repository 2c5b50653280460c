"""Classifications counted: the confusion counts of class ids."""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv.errors import ConfigError

__all__ = ["confusion_counts"]


def confusion_counts(y_true: Any, y_pred: Any, *, num_classes: int | None = None) -> np.ndarray:
    """Confusion counts ``(K, K)``: row = true class, column = predicted class.

    Parameters
    ----------
    y_true : array_like of int, (N,)
        True class ids.
    y_pred : array_like, (N,) class ids or (N, K) scores
        Predicted class ids, or per-class scores (arg-maxed).
    num_classes : int, optional
        K. Default: one more than the largest id seen (or K of the scores).

    Returns
    -------
    numpy.ndarray of int64, (K, K)

    Raises
    ------
    ConfigError
        For inputs of different lengths, ids that are negative, not integers or not below K.

    Examples
    --------
    >>> from sciconv.metrics import confusion_counts
    >>> confusion_counts([0, 0, 1, 2], [0, 1, 1, 2])
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 1]])
    """
    yt = np.asarray(y_true).reshape(-1)
    yp = np.asarray(y_pred)
    if yp.ndim == 2:
        num_classes = num_classes or yp.shape[1]
        yp = yp.argmax(axis=1)
    yp = yp.reshape(-1)
    if yt.shape != yp.shape:
        raise ConfigError(f"y_true and y_pred must hold as many items; got {yt.size} and {yp.size}")
    for name, y in (("y_true", yt), ("y_pred", yp)):
        if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
            raise ConfigError(f"{name} must hold non-negative integer class ids")
    k = int(num_classes or (max(yt.max(initial=-1), yp.max(initial=-1)) + 1))
    if yt.size and max(yt.max(), yp.max()) >= k:
        raise ConfigError(f"class ids must be below num_classes={k}; got {max(yt.max(), yp.max())}")
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (yt.astype(np.int64), yp.astype(np.int64)), 1)  # int64 also when empty
    return counts
