"""The task and class ids of in-memory labels (:func:`sciconv.datasets.from_arrays`)."""

from __future__ import annotations

import warnings

import numpy as np

from sciconv._validation import is_one_hot, not_whole
from sciconv.datasets._classes import class_order
from sciconv.errors import DatasetError, SciconvWarning

__all__ = ["array_labels"]

MAX_CLASS_ID = int(np.iinfo(np.int32).max)


def _names_ids(y: np.ndarray, class_names) -> tuple[np.ndarray, list[str]]:
    names = class_order(map(str, set(y.tolist()))) if class_names is None else list(class_names)
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({str(v) for v in y.tolist()} - set(index))
    if unknown:
        raise DatasetError(
            f"labels {unknown[:5]} are not in class_names {names}; give every label's name"
        )
    return np.array([index[str(v)] for v in y.tolist()], np.int32), names


def _class_ids(y: np.ndarray, class_names) -> tuple[np.ndarray, list[str]]:
    """Whole-number ids ``(N,)`` checked against the classes before any cast to int32."""
    low, high = y.min(), y.max()
    if class_names is None:
        if low < 0 or high > MAX_CLASS_ID:
            raise DatasetError(
                f"labels must be class ids 0..{MAX_CLASS_ID}; got {int(low)}..{int(high)} "
                "(relabel them 0..K-1, e.g. np.unique(labels, return_inverse=True)[1])"
            )
        class_names = [str(c) for c in range(int(high) + 1)]
    names = list(class_names)
    if low < 0 or high >= len(names):
        raise DatasetError(
            f"labels must be class ids 0..{len(names) - 1} (one per class name); got "
            f"{int(low)}..{int(high)}"
        )
    return y.astype(np.int32), names


def array_labels(labels, class_names, n: int) -> tuple[str, np.ndarray, list[str]]:
    """``(task, y, class_names)`` of ``n`` in-memory labels.

    Classification for integer ids ``(N,)``, bools (0/1), strings (their names), and, when
    ``class_names`` is given, for whole numbers ``(N,)`` / ``(N, 1)`` and one-hot rows
    ``(N, len(class_names))``; regression otherwise (a warning when ``class_names`` is then
    ignored). Ids are range-checked on their own values (an int64 id never wraps to int32);
    regression targets must be finite.

    Parameters
    ----------
    labels : array_like
    class_names : list of str or None
    n : int
        The number of images.

    Returns
    -------
    (str, numpy.ndarray, list of str)

    Raises
    ------
    DatasetError
        Not ``n`` labels, ids outside the classes, or targets that are not finite.

    Examples
    --------
    >>> task, y, names = array_labels([0.0, 1.0, 1.0], ["a", "b"], 3)
    >>> task, y.tolist(), names
    ('classification', [0, 1, 1], ['a', 'b'])
    """
    y = np.asarray(labels)
    if y.ndim == 0 or len(y) != n or n == 0:
        got = f"shape {y.shape}" if y.ndim else repr(labels)
        raise DatasetError(
            f"from_arrays needs N > 0 images and N labels; got {n} image(s) and labels {got}"
        )
    if y.dtype.kind in "USO" and y.ndim == 1:
        return ("classification", *_names_ids(y, class_names))
    if y.dtype.kind not in "biuf":
        raise DatasetError(f"labels must be numbers, bools or class names; got dtype {y.dtype}")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    flat = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if flat.ndim == 1 and y.dtype.kind in "iu" and (y.ndim == 1 or class_names is not None):
        return ("classification", *_class_ids(flat, class_names))
    if class_names is not None:
        if flat.ndim == 1 and not_whole(flat).size == 0:
            return ("classification", *_class_ids(flat, class_names))
        k = len(class_names)
        if y.ndim == 2 and y.shape[1] == k > 1 and is_one_hot(y):
            return "classification", np.argmax(y, axis=1).astype(np.int32), list(class_names)
        warnings.warn(
            f"class_names {list(class_names)[:5]} ignored: labels of dtype {y.dtype} and shape "
            f"{y.shape} are not class ids (whole numbers 0..{k - 1}) nor one-hot rows of width "
            f"{k}; making a regression dataset",
            SciconvWarning,
            stacklevel=3,
        )
    if not np.all(np.isfinite(y)):
        bad = np.flatnonzero(~np.isfinite(y).reshape(len(y), -1).all(axis=1))
        raise DatasetError(
            f"regression targets must be finite; labels {bad[:5].tolist()} are not finite "
            "(NaN or inf); drop those images"
        )
    return "regression", y.astype(np.float32), []
