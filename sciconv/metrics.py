"""Metrics: Keras IoU / Dice for training; numpy scores of instances, classes and catalogs.

Keras metrics (registered with ``package="sciconv"``) take integer labels ``(N, H, W)`` or
``(N, H, W, 1)`` and probabilities: softmax ``(N, H, W, K)`` is arg-maxed, a single sigmoid
channel ``(N, H, W, 1)`` is thresholded. They build on ``keras.metrics.IoU`` (its confusion
matrix, ``ignore_class`` and sample weights).

The numpy functions score instance segmentations the way the 2018 Data Science Bowl and
StarDist do: a predicted object matches a true object when their IoU exceeds a threshold (each
object matched at most once, by an optimal assignment), and at each threshold
``AP = TP / (TP + FP + FN)``.

Classifications are counted by :func:`confusion_counts`; source catalogs are scored against a
reference (completeness, purity, offsets) by :func:`match_catalogs`. The drawings of these numbers
(:func:`sciconv.viz.confusion_matrix`, :func:`sciconv.viz.compare_catalogs`) call these functions.

Examples
--------
>>> import numpy as np
>>> from sciconv.metrics import matching
>>> true = np.zeros((6, 6), int); true[:3, :3] = 1; true[4:, 4:] = 2
>>> pred = np.zeros((6, 6), int); pred[:3, :2] = 7
>>> m = matching(true, pred, thresh=0.5)
>>> m["tp"], m["fp"], m["fn"]
(1, 0, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops
from scipy.optimize import linear_sum_assignment

from sciconv._validation import refuse_path
from sciconv.errors import ConfigError, InvalidImageError

__all__ = [
    "DSB_THRESHOLDS",
    "Dice",
    "IoU",
    "MeanIoU",
    "average_precision",
    "confusion_counts",
    "iou_matrix",
    "match_catalogs",
    "matching",
]

#: IoU thresholds 0.5, 0.55, ..., 0.9 of the DSB2018 / StarDist average precision.
DSB_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))

_register = keras.saving.register_keras_serializable(package="sciconv")


def _per_label_weights(sample_weight, labels):
    """Weights shaped like the label map: per pixel ``(N, H, W)`` (a trailing 1 dropped) or
    per sample ``(N,)`` spread over each sample's pixels (Keras' IoU flattens the labels and
    could not broadcast them)."""
    w = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    rank = len(labels.shape)
    if len(w.shape) == rank + 1 and w.shape[-1] == 1:
        w = ops.squeeze(w, axis=-1)
    if 0 < len(w.shape) < rank:
        w = ops.reshape(w, tuple(ops.shape(w)) + (1,) * (rank - len(w.shape)))
        w = ops.broadcast_to(w, ops.shape(labels))
    return w


class _LabelIoUBase(keras.metrics.IoU):
    """keras.metrics.IoU fed with label maps made from probabilities (argmax or threshold).

    The confusion matrix is float32 by default (Keras' is int): fractional per-pixel weights
    count as given instead of being truncated, and no int32 count overflows on large sets.
    """

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        *,
        threshold: float = 0.5,
        ignore_class: int | None = None,
        name: str | None = None,
        dtype=None,
    ):
        super().__init__(
            num_classes=num_classes,
            target_class_ids=list(target_class_ids),
            name=name,
            dtype=dtype or "float32",
            ignore_class=ignore_class,
            sparse_y_true=True,
            sparse_y_pred=True,
        )
        self.threshold = float(threshold)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        if y_pred.shape[-1] == 1:
            labels = ops.cast(y_pred[..., 0] > self.threshold, "int32")
        else:
            labels = ops.argmax(y_pred, axis=-1)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if sample_weight is not None:
            sample_weight = _per_label_weights(sample_weight, labels)
        return super().update_state(ops.cast(y_true, "int32"), labels, sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "num_classes": self.num_classes,
            "threshold": self.threshold,
            "ignore_class": self.ignore_class,
        }


@_register
class IoU(_LabelIoUBase):
    """Intersection over union of one class, from integer labels and probabilities.

    Parameters
    ----------
    num_classes : int
        Number of classes K (2 for a binary sigmoid output).
    class_id : int
        The class scored (default 1: the foreground).
    threshold : float
        Threshold applied to a single sigmoid channel.
    ignore_class : int, optional
        Label value left out (e.g. 255 for "unknown" pixels).
    name : str, optional
        Metric name (default ``"iou_<class_id>"``).

    Examples
    --------
    >>> import numpy as np
    >>> m = IoU(2, class_id=1)
    >>> _ = m.update_state(np.array([[0, 1, 1, 0]]), np.eye(2)[[[0, 1, 0, 1]]])
    >>> round(float(m.result()), 3)
    0.333
    """

    def __init__(self, num_classes: int = 2, class_id: int = 1, **kwargs):
        kwargs.setdefault("name", f"iou_{class_id}")
        super().__init__(num_classes, [class_id], **kwargs)
        self.class_id = class_id

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@_register
class MeanIoU(_LabelIoUBase):
    """Mean IoU over classes (all K by default, or ``class_ids``), from labels and probabilities.

    Classes absent from both truth and prediction are left out of the mean.

    Examples
    --------
    >>> import numpy as np
    >>> m = MeanIoU(2)
    >>> _ = m.update_state(np.array([[0, 1, 1, 0]]), np.eye(2)[[[0, 1, 0, 1]]])
    >>> round(float(m.result()), 3)
    0.333
    """

    def __init__(self, num_classes: int = 2, class_ids: Sequence[int] | None = None, **kwargs):
        kwargs.setdefault("name", "mean_iou")
        ids = list(range(num_classes)) if class_ids is None else [int(c) for c in class_ids]
        super().__init__(num_classes, ids, **kwargs)
        self.class_ids = None if class_ids is None else ids

    def get_config(self):
        return {**super().get_config(), "class_ids": self.class_ids}


@_register
class Dice(_LabelIoUBase):
    """Dice coefficient ``2 TP / (2 TP + FP + FN)`` of one class or the mean over classes.

    Parameters
    ----------
    num_classes : int
        Number of classes K.
    class_id : int, optional
        Score this class only; None averages over the foreground classes ``1..K-1``.

    Examples
    --------
    >>> import numpy as np
    >>> m = Dice(2, class_id=1)
    >>> _ = m.update_state(np.array([[0, 1, 1, 0]]), np.eye(2)[[[0, 1, 0, 1]]])
    >>> round(float(m.result()), 3)
    0.5
    """

    def __init__(self, num_classes: int = 2, class_id: int | None = None, **kwargs):
        kwargs.setdefault("name", "dice" if class_id is None else f"dice_{class_id}")
        ids = list(range(1, num_classes)) if class_id is None else [class_id]
        super().__init__(num_classes, ids, **kwargs)
        self.class_id = class_id

    def result(self):
        cm = ops.cast(self.total_cm, "float32")
        tp = ops.diag(cm)
        denom = ops.sum(cm, axis=0) + ops.sum(cm, axis=1)  # 2 TP + FP + FN
        ids = ops.convert_to_tensor(self.target_class_ids, dtype="int32")
        tp, denom = ops.take(tp, ids), ops.take(denom, ids)
        valid = ops.cast(denom > 0, "float32")
        dice = ops.where(denom > 0, 2.0 * tp / ops.maximum(denom, 1e-12), 0.0)
        return ops.sum(dice) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


# --------------------------------------------------------------------------- instance metrics


def _validate_labels(true_labels, pred_labels) -> tuple[np.ndarray, np.ndarray]:
    refuse_path(true_labels, name="true_labels", reader="sciconv.io.read_labels")
    refuse_path(pred_labels, name="pred_labels", reader="sciconv.io.read_labels")
    t, p = np.asarray(true_labels), np.asarray(pred_labels)
    for arr, name in ((t, "true_labels"), (p, "pred_labels")):
        if arr.ndim != 2:
            raise InvalidImageError(
                f"{name} must be a 2-D (H, W) label image; got shape {arr.shape}"
            )
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise InvalidImageError(f"{name} must hold integer labels; got dtype {arr.dtype}")
        if arr.size and arr.min() < 0:
            raise InvalidImageError(
                f"{name} must hold labels >= 0 (0 = background); got {arr.min()}"
            )
    if t.shape != p.shape:
        raise InvalidImageError(
            f"true_labels and pred_labels must have the same shape; got {t.shape} and {p.shape}"
        )
    return t.astype(np.int64), p.astype(np.int64)


def iou_matrix(true_labels, pred_labels) -> np.ndarray:
    """IoU between every true object (rows) and every predicted object (columns).

    Computed in one pass through a contingency matrix of the two label images; background (0)
    is left out and labels need not be consecutive (row ``i`` is the ``i``-th smallest label).

    Returns
    -------
    numpy.ndarray
        ``(n_true, n_pred)`` float64.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[1, 1, 0, 0]]); p = np.array([[0, 5, 5, 0]])
    >>> iou_matrix(t, p).round(3).tolist()
    [[0.333]]
    """
    t, p = _validate_labels(true_labels, pred_labels)
    _, t_inv = np.unique(t, return_inverse=True)
    _, p_inv = np.unique(p, return_inverse=True)
    t_inv, p_inv = t_inv.ravel(), p_inv.ravel()
    # index 0 of the inverse is the background when the image holds any 0
    t_off = 1 if (t == 0).any() else 0
    p_off = 1 if (p == 0).any() else 0
    n_t, n_p = t_inv.max(initial=-1) + 1, p_inv.max(initial=-1) + 1
    overlap = np.bincount(t_inv * n_p + p_inv, minlength=n_t * n_p).reshape(n_t, n_p)
    area_t = overlap.sum(axis=1, keepdims=True)
    area_p = overlap.sum(axis=0, keepdims=True)
    union = area_t + area_p - overlap
    iou = np.where(union > 0, overlap / np.maximum(union, 1), 0.0)
    return iou[t_off:, p_off:]


def _overlaps(true_labels, pred_labels):
    """``(n_true, n_pred, rows, cols, ious)`` of the object pairs that overlap, the sparse form
    of :func:`iou_matrix` (a whole slide's 10,000 objects: 10^8 dense entries, GBs)."""
    t, p = _validate_labels(true_labels, pred_labels)
    t_ids, t_inv = np.unique(t, return_inverse=True)
    p_ids, p_inv = np.unique(p, return_inverse=True)
    t_inv, p_inv = t_inv.ravel() - (t_ids[0] == 0), p_inv.ravel() - (p_ids[0] == 0)
    n_t, n_p = int(np.count_nonzero(t_ids)), int(np.count_nonzero(p_ids))
    area_t = np.bincount(t_inv[t_inv >= 0], minlength=n_t)
    area_p = np.bincount(p_inv[p_inv >= 0], minlength=n_p)
    both = (t_inv >= 0) & (p_inv >= 0)
    keys, overlap = np.unique(t_inv[both].astype(np.int64) * max(n_p, 1) + p_inv[both],
                              return_counts=True)  # fmt: skip
    rows, cols = keys // max(n_p, 1), keys % max(n_p, 1)
    ious = overlap / (area_t[rows] + area_p[cols] - overlap)
    return n_t, n_p, rows, cols, ious


def _match_sparse(n_t: int, n_p: int, rows, cols, ious, thresh: float):
    """:func:`_match_counts` on the overlapping pairs: above IoU 0.5 each object has at most
    one partner (the matching is those pairs); below, the optimal matching of the objects that
    have a candidate, on their dense sub-matrix."""
    ok = ious > thresh
    if thresh >= 0.5 or not ok.any():
        return int(ok.sum()), ious[ok]
    r, c = np.unique(rows[ok], return_inverse=True), np.unique(cols[ok], return_inverse=True)
    sub = np.zeros((len(r[0]), len(c[0])))
    sub[r[1], c[1]] = ious[ok]
    return _match_counts(sub, thresh)


def _match_counts(iou: np.ndarray, thresh: float) -> tuple[int, np.ndarray]:
    """Return (tp, matched IoUs) of the optimal one-to-one matching with IoU > thresh."""
    n_t, n_p = iou.shape
    if n_t == 0 or n_p == 0:
        return 0, np.zeros(0)
    ok = iou > thresh
    # maximise the number of matches first, then the total IoU of the matches
    cost = -(ok.astype(float)) - iou / (2 * min(n_t, n_p))
    rows, cols = linear_sum_assignment(cost)
    good = ok[rows, cols]
    return int(good.sum()), iou[rows[good], cols[good]]


def _scores(tp: int, n_true: int, n_pred: int, matched_iou_sum: float, thresh: float) -> dict:
    fp, fn = n_pred - tp, n_true - tp
    div = lambda a, b: float(a) / b if b else 0.0  # noqa: E731
    precision, recall = div(tp, tp + fp), div(tp, tp + fn)
    return {
        "thresh": float(thresh),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "n_true": int(n_true),
        "n_pred": int(n_pred),
        "precision": precision,
        "recall": recall,
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "ap": div(tp, tp + fp + fn) if (tp + fp + fn) else 1.0,
        "mean_matched_iou": div(matched_iou_sum, tp),
        "panoptic_quality": div(matched_iou_sum, tp + 0.5 * fp + 0.5 * fn),
    }


def matching(true_labels, pred_labels, *, thresh: float = 0.5) -> dict:
    """Match predicted to true objects at IoU > ``thresh`` and count TP, FP, FN.

    Each object is matched at most once; among one-to-one matchings the one with the most
    matches (then the highest total IoU) is chosen (for ``thresh >= 0.5`` the matching is unique).
    The rule is the Data Science Bowl 2018 / StarDist one, with a strict ``>``.

    Parameters
    ----------
    true_labels, pred_labels : array_like
        Integer instance label images ``(H, W)``, 0 = background. Label values need not be
        consecutive.
    thresh : float
        IoU threshold in [0, 1).

    Returns
    -------
    dict
        ``thresh``, ``tp``, ``fp``, ``fn``, ``n_true``, ``n_pred``, ``precision``, ``recall``,
        ``f1``, ``ap`` (``TP / (TP + FP + FN)``; 1.0 when both images are empty),
        ``mean_matched_iou``, ``panoptic_quality``.

    Raises
    ------
    InvalidImageError
        For shapes that differ or are not 2-D, negative or non-integer labels, a bad threshold.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[1, 1, 0, 2, 2]])
    >>> p = np.array([[3, 3, 0, 2, 0]])
    >>> m = matching(t, p)
    >>> m["tp"], m["fp"], m["fn"], m["ap"]
    (1, 1, 1, 0.3333333333333333)
    """
    (thresh,) = _validate_thresholds([thresh], name="thresh")
    n_t, n_p, *pairs = _overlaps(true_labels, pred_labels)
    tp, matched = _match_sparse(n_t, n_p, *pairs, thresh)
    return _scores(tp, n_t, n_p, float(matched.sum()), thresh)


def _validate_thresholds(thresholds, *, name: str) -> list[float]:
    if isinstance(thresholds, (int, float, np.number)) and not isinstance(thresholds, bool):
        thresholds = [thresholds]  # one threshold: 0.5 as (0.5,)
    try:
        if isinstance(thresholds, (str, bytes)) or any(
            isinstance(t, (str, bytes, bool, np.bool_)) for t in thresholds
        ):
            raise TypeError  # "0.5" is text, not a number: float() would take it
        values = [float(t) for t in thresholds]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numbers in [0, 1); got {thresholds!r}") from None
    if not values or any(not 0 <= t < 1 for t in values):
        raise ConfigError(f"{name} must be numbers in [0, 1); got {thresholds!r}")
    return values


def average_precision(
    true_labels, pred_labels, *, thresholds: Sequence[float] = DSB_THRESHOLDS
) -> dict:
    """Instance average precision ``TP / (TP + FP + FN)`` at each IoU threshold (DSB / StarDist).

    Parameters
    ----------
    true_labels, pred_labels : array_like or sequence of array_like
        One pair of ``(H, W)`` instance label images, or sequences (or ``(N, H, W)`` arrays) of
        pairs; for several images TP, FP and FN are summed over the images before the ratios.
    thresholds : sequence of float
        IoU thresholds (default 0.5, 0.55, ..., 0.9).

    Returns
    -------
    dict
        ``thresholds`` and, per threshold, numpy arrays ``ap``, ``tp``, ``fp``, ``fn``,
        ``precision``, ``recall``, ``f1``; plus ``mean_ap`` (the mean of ``ap`` over the
        thresholds, the DSB score).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((4, 4), int); t[:2, :2] = 1
    >>> p = np.zeros((4, 4), int); p[:2, :1] = 1          # IoU 0.5: not > 0.5
    >>> r = average_precision(t, p, thresholds=(0.3, 0.5))
    >>> r["ap"].tolist(), r["mean_ap"]
    ([1.0, 0.0], 0.5)
    """
    ths = _validate_thresholds(thresholds, name="thresholds")
    pairs = _as_pairs(true_labels, pred_labels)
    totals = {key: np.zeros(len(ths), dtype=np.int64) for key in ("tp", "n_true", "n_pred")}
    iou_sum = np.zeros(len(ths))
    for t, p in pairs:
        n_t, n_p, *overlaps = _overlaps(t, p)
        for i, th in enumerate(ths):
            tp, matched = _match_sparse(n_t, n_p, *overlaps, th)
            totals["tp"][i] += tp
            totals["n_true"][i] += n_t
            totals["n_pred"][i] += n_p
            iou_sum[i] += matched.sum()
    per = [
        _scores(totals["tp"][i], totals["n_true"][i], totals["n_pred"][i], iou_sum[i], th)
        for i, th in enumerate(ths)
    ]
    out = {"thresholds": np.array(ths)}
    for key in ("ap", "tp", "fp", "fn", "precision", "recall", "f1"):
        out[key] = np.array([s[key] for s in per])
    out["mean_ap"] = float(np.mean(out["ap"]))
    return out


def _as_pairs(true_labels, pred_labels) -> list[tuple]:
    refuse_path(true_labels, name="true_labels", reader="sciconv.io.read_labels")
    refuse_path(pred_labels, name="pred_labels", reader="sciconv.io.read_labels")
    if isinstance(true_labels, np.ndarray) and true_labels.ndim == 2:
        return [(true_labels, pred_labels)]
    if isinstance(true_labels, (list, tuple)) or (
        isinstance(true_labels, np.ndarray) and true_labels.ndim == 3
    ):
        true_list, pred_list = list(true_labels), list(pred_labels)
        if len(true_list) != len(pred_list):
            raise InvalidImageError(
                f"true_labels and pred_labels must hold as many images; got {len(true_list)} and "
                f"{len(pred_list)}"
            )
        if true_list and np.asarray(true_list[0]).ndim == 2:
            return list(zip(true_list, pred_list))
    arr = np.asarray(true_labels)
    if arr.ndim == 2:
        return [(arr, pred_labels)]
    raise InvalidImageError(
        f"true_labels must be a 2-D label image, a sequence of them or an (N, H, W) array; got "
        f"shape {arr.shape}"
    )


# --------------------------------------------------------------------------- classification


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


# --------------------------------------------------------------------------- catalogs


def _catalog_positions(table: Any, names: Sequence[str], *, which: str) -> np.ndarray:
    missing = [c for c in names if c not in table.colnames]
    if missing:
        raise ConfigError(
            f"{which} catalog lacks column(s) {missing}; it has {list(table.colnames)}"
        )
    return np.column_stack([np.asarray(table[c], dtype=np.float64) for c in names])


def match_catalogs(
    reference: Any,
    found: Any,
    *,
    max_separation: float,
    columns: tuple[str, str] = ("x", "y"),
    sky: bool = False,
) -> dict[str, Any]:
    """Match each reference source to its nearest found source within ``max_separation``.

    Each found source is used at most once (nearest pairs first).

    Parameters
    ----------
    reference, found : astropy.table.Table
        Catalogs with the position columns.
    max_separation : float
        Largest separation of a match: pixels, or arcseconds when ``sky=True``.
    columns : (str, str)
        Position columns (pixels); ignored when ``sky=True`` (which uses ``ra``/``dec`` in deg).
    sky : bool
        Match on the sky with great-circle separations.

    Returns
    -------
    dict
        ``ref_index``, ``found_index`` (matched pairs), ``separation`` (pixels or arcsec),
        ``dx``, ``dy`` (found − reference, in pixels or arcsec on the sky), ``completeness``
        (matched / reference), ``purity`` (matched / found).

    Raises
    ------
    ConfigError
        For a catalog without the position columns, or a separation that is not positive.

    Examples
    --------
    >>> from astropy.table import Table
    >>> ref = Table({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    >>> got = Table({"x": [10.5, 90.0], "y": [9.8, 90.0]})
    >>> m = match_catalogs(ref, got, max_separation=2.0)
    >>> m["ref_index"].tolist(), m["found_index"].tolist(), m["completeness"]
    ([0], [0], 0.5)
    """
    if not (isinstance(max_separation, (int, float)) and max_separation > 0):
        raise ConfigError(f"max_separation must be a positive number; got {max_separation!r}")
    cols = ("ra", "dec") if sky else tuple(columns)
    a = _catalog_positions(reference, cols, which="reference")
    b = _catalog_positions(found, cols, which="found")
    if sky:
        dec0 = np.deg2rad(a[:, 1])[:, None]
        dra = (b[None, :, 0] - a[:, None, 0] + 180.0) % 360.0 - 180.0
        dx = dra * np.cos(dec0) * 3600.0
        dy = (b[None, :, 1] - a[:, None, 1]) * 3600.0
    else:
        dx = b[None, :, 0] - a[:, None, 0]
        dy = b[None, :, 1] - a[:, None, 1]
    d = np.hypot(dx, dy) if a.size and b.size else np.zeros((len(a), len(b)))
    ri, fi = np.nonzero(d <= max_separation)
    order = np.argsort(d[ri, fi], kind="stable")
    used_r, used_f, pairs = set(), set(), []
    for k in order:
        r, f = int(ri[k]), int(fi[k])
        if r not in used_r and f not in used_f:
            used_r.add(r)
            used_f.add(f)
            pairs.append((r, f))
    pairs.sort()
    r_idx = np.array([p[0] for p in pairs], dtype=np.int64)
    f_idx = np.array([p[1] for p in pairs], dtype=np.int64)
    return {
        "ref_index": r_idx,
        "found_index": f_idx,
        "separation": d[r_idx, f_idx] if pairs else np.zeros(0),
        "dx": dx[r_idx, f_idx] if pairs else np.zeros(0),
        "dy": dy[r_idx, f_idx] if pairs else np.zeros(0),
        "completeness": len(pairs) / len(a) if len(a) else float("nan"),
        "purity": len(pairs) / len(b) if len(b) else float("nan"),
    }
