"""Classifications counted: the confusion counts of class ids."""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv._validation import not_whole
from sciconv.errors import ConfigError

__all__ = ["confusion_counts"]


def _class_ids(y: np.ndarray, *, name: str) -> np.ndarray:
    """Class ids as int64: integers, bools (False = 0, True = 1) and whole-valued floats, as
    scikit-learn's ``confusion_matrix`` takes them."""
    if y.dtype.kind not in "biuf":
        raise ConfigError(f"{name} must hold non-negative integer class ids; got dtype {y.dtype}")
    bad = not_whole(y)
    if bad.size:
        raise ConfigError(
            f"{name} must hold non-negative integer class ids; got {bad[:5].tolist()}"
        )
    if y.size and y.min() < 0:
        raise ConfigError(f"{name} must hold non-negative integer class ids; got {y.min()}")
    return y.astype(np.int64)


def confusion_counts(y_true: Any, y_pred: Any, *, num_classes: int | None = None) -> np.ndarray:
    """Confusion counts ``(K, K)``: row = true class, column = predicted class.

    Parameters
    ----------
    y_true : array_like of int, (N,)
        True class ids: integers, bools (False = 0, True = 1) or whole-valued floats.
    y_pred : array_like, (N,) class ids or (N, K) scores
        Predicted class ids (as ``y_true``), or per-class scores (arg-maxed).
    num_classes : int, optional
        K. Default: one more than the largest id seen (or K of the scores).

    Returns
    -------
    numpy.ndarray of int64, (K, K)

    Raises
    ------
    ConfigError
        For inputs of different lengths, ids that are negative, not whole numbers (0.5, NaN) or
        not below K.

    Examples
    --------
    >>> from sciconv.metrics import confusion_counts
    >>> confusion_counts([0, 0, 1, 2], [0, 1, 1, 2])
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 1]])
    >>> confusion_counts([True, False, True], [1.0, 1.0, 0.0])
    array([[0, 1],
           [1, 1]])
    """
    yt = np.asarray(y_true).reshape(-1)
    yp = np.asarray(y_pred)
    if yp.ndim == 2:
        num_classes = num_classes or yp.shape[1]
        yp = yp.argmax(axis=1)
    yp = yp.reshape(-1)
    if yt.shape != yp.shape:
        raise ConfigError(f"y_true and y_pred must hold as many items; got {yt.size} and {yp.size}")
    yt, yp = _class_ids(yt, name="y_true"), _class_ids(yp, name="y_pred")
    k = int(num_classes or (max(yt.max(initial=-1), yp.max(initial=-1)) + 1))
    if yt.size and max(yt.max(), yp.max()) >= k:
        raise ConfigError(f"class ids must be below num_classes={k}; got {max(yt.max(), yp.max())}")
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (yt.astype(np.int64), yp.astype(np.int64)), 1)  # int64 also when empty
    return counts
