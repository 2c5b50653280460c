"""Instance segmentations scored as StarDist and the 2018 Data Science Bowl score them.

A predicted object matches a true object when their IoU exceeds a threshold (each object matched
at most once, by an optimal assignment), and at each threshold ``AP = TP / (TP + FP + FN)``.
:func:`average_precision` pools the counts of several images (StarDist's evaluation, over
:data:`AP_THRESHOLDS`); :func:`dsb_score` averages each image's mean AP over
:data:`DSB_THRESHOLDS`, then the images (the Data Science Bowl's score, lower: 0.95 is strict
and a sparse image weighs as much as a crowded one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from sciconv._validation import refuse_path
from sciconv.errors import ConfigError, InvalidImageError

__all__ = [
    "AP_THRESHOLDS",
    "DSB_THRESHOLDS",
    "average_precision",
    "dsb_score",
    "iou_matrix",
    "matching",
]

#: IoU thresholds 0.5, 0.55, ..., 0.9: StarDist's average precision (:func:`average_precision`'s
#: default)
AP_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))
#: IoU thresholds 0.5, 0.55, ..., 0.95 of the 2018 Data Science Bowl's score (:func:`dsb_score`)
DSB_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


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

    Parameters
    ----------
    true_labels : array_like of int, shape (H, W)
        Reference instance labels (0 = background, objects labelled >= 1).
    pred_labels : array_like of int, shape (H, W)
        Predicted instance labels, the same shape.

    Returns
    -------
    numpy.ndarray
        ``(n_true, n_pred)`` float64.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.metrics import iou_matrix
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
    >>> from sciconv.metrics import matching
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
    true_labels, pred_labels, *, thresholds: Sequence[float] = AP_THRESHOLDS
) -> dict:
    """Instance average precision ``TP / (TP + FP + FN)`` at each IoU threshold (StarDist's).

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
        thresholds; over several images, of the pooled counts: not the Data Science Bowl's
        per-image score, :func:`dsb_score`).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.metrics import average_precision
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


def dsb_score(true_labels, pred_labels) -> float:
    """The 2018 Data Science Bowl's score: each image's mean AP over IoU 0.5, 0.55, ..., 0.95
    (:data:`DSB_THRESHOLDS`), averaged over the images.

    Lower than :func:`average_precision`'s pooled ``mean_ap``: the 0.95 threshold is strict,
    and an image with a few objects weighs as much as a crowded one (the pretrained nuclei
    model on 24 validation images: pooled AP@0.5:0.9 0.721, this score 0.568).

    Parameters
    ----------
    true_labels, pred_labels : array_like or sequence of array_like
        As :func:`average_precision`: one pair of ``(H, W)`` label images or sequences of them.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.metrics import dsb_score
    >>> t = np.zeros((4, 4), int); t[:2, :2] = 1
    >>> p = np.zeros((4, 4), int); p[:2, :2] = 1; p[0, 0] = 0          # IoU 0.75
    >>> round(dsb_score([t, t], [t, p]), 3)  # (10/10 + 5/10) / 2
    0.75
    """
    pairs = _as_pairs(true_labels, pred_labels)
    return float(
        np.mean([average_precision(t, p, thresholds=DSB_THRESHOLDS)["mean_ap"] for t, p in pairs])
    )


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
