"""Instance segmentations scored by the 2018 Data Science Bowl's rule.

A predicted object matches a true object when their IoU is strictly above a threshold (each
object matched at most once, by an optimal assignment), and at each threshold
``AP = TP / (TP + FP + FN)``. StarDist counts a match at IoU >= the threshold: the two differ
only where an IoU equals a threshold exactly (small objects; on the shipped nuclei model's
validation images StarDist's rule gives up to +0.009 pooled AP, at 47 of 1,089 image x threshold
scores). :func:`average_precision` pools the counts of several images (as StarDist's evaluation
does, over :data:`AP_THRESHOLDS`); :func:`dsb_score` averages each image's mean AP over
:data:`DSB_THRESHOLDS`, then the images (the Data Science Bowl's score, lower: 0.95 is strict
and a sparse image weighs as much as a crowded one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

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

#: IoU thresholds 0.5, 0.55, ..., 0.9: the range StarDist's papers report
#: (:func:`average_precision`'s default)
AP_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))
#: IoU thresholds 0.5, 0.55, ..., 0.95 of the 2018 Data Science Bowl's score (:func:`dsb_score`)
DSB_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


class _Overlaps(NamedTuple):
    """The object pairs that overlap, the sparse form of :func:`iou_matrix` (a whole slide's
    10,000 objects: 10^8 dense entries, GBs): ``rows``/``cols`` index ``true_ids``/``pred_ids``
    (the labels, background left out)."""

    true_ids: np.ndarray
    pred_ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    ious: np.ndarray


def _pixels(labels, *, name: str):
    """A GridImage's or NDData's pixels (postprocess's rule for labels); others as they are."""
    if isinstance(labels, (np.ndarray, list, tuple)):
        return labels
    from sciconv.postprocess._labels import label_pixels

    return label_pixels(labels, name=name)


def _label_image(labels, *, name: str) -> np.ndarray:
    """One label image as a 2-D array; a trailing axis of 1 (``sciconv.io.read`` gives label
    images as ``(H, W, 1)``) is dropped; a GridImage or NDData gives its pixels."""
    if isinstance(labels, (list, tuple)) and len(labels) and np.ndim(labels[0]) >= 2:
        raise InvalidImageError(  # was numpy's "inhomogeneous shape" for images of two sizes
            f"{name} is a list of {len(labels)} label images; this scores one image (its "
            "pair's): average_precision and dsb_score take lists"
        )
    arr = np.asarray(_pixels(labels, name=name))
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 3 and arr.shape[-1] <= 4:
            hint = f" ({arr.shape[-1]} channels? a label image has one)"
        raise InvalidImageError(
            f"{name} must be a 2-D (H, W) or (H, W, 1) label image; got shape {arr.shape}{hint}"
        )
    return arr


def _validate_labels(true_labels, pred_labels) -> tuple[np.ndarray, np.ndarray]:
    """The two label images as arrays of their own dtype: ids are never cast (uint64 ids of
    2**63 and above wrapped to negative int64 ones); the scores relabel them in order."""
    refuse_path(true_labels, name="true_labels", reader="sciconv.io.read_labels")
    refuse_path(pred_labels, name="pred_labels", reader="sciconv.io.read_labels")
    t = _label_image(true_labels, name="true_labels")
    p = _label_image(pred_labels, name="pred_labels")
    for arr, name in ((t, "true_labels"), (p, "pred_labels")):
        if arr.dtype.kind not in "biuf":
            raise InvalidImageError(f"{name} must hold integer labels; got dtype {arr.dtype}")
        if arr.dtype.kind == "f":
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
    return t, p


def iou_matrix(true_labels, pred_labels) -> np.ndarray:
    """IoU between every true object (rows) and every predicted object (columns).

    Computed in one pass through a contingency matrix of the two label images; background (0)
    is left out and labels need not be consecutive (row ``i`` is the ``i``-th smallest label).

    Parameters
    ----------
    true_labels : array_like of int, shape (H, W) or (H, W, 1)
        Reference instance labels (0 = background, objects labelled >= 1).
    pred_labels : array_like of int, shape (H, W) or (H, W, 1)
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
    t_inv, p_inv = t_inv.ravel().astype(np.int64), p_inv.ravel().astype(np.int64)
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


def _overlaps(true_labels, pred_labels) -> _Overlaps:
    t, p = _validate_labels(true_labels, pred_labels)
    t_ids, t_inv = np.unique(t, return_inverse=True)  # sorted: background 0 first when present
    p_ids, p_inv = np.unique(p, return_inverse=True)
    t_bg, p_bg = bool(t_ids.size and t_ids[0] == 0), bool(p_ids.size and p_ids[0] == 0)
    t_inv = t_inv.ravel().astype(np.int64) - t_bg
    p_inv = p_inv.ravel().astype(np.int64) - p_bg
    t_ids, p_ids = t_ids[int(t_bg) :], p_ids[int(p_bg) :]
    n_t, n_p = len(t_ids), len(p_ids)
    area_t = np.bincount(t_inv[t_inv >= 0], minlength=n_t)
    area_p = np.bincount(p_inv[p_inv >= 0], minlength=n_p)
    both = (t_inv >= 0) & (p_inv >= 0)
    keys, overlap = np.unique(t_inv[both] * max(n_p, 1) + p_inv[both], return_counts=True)
    rows, cols = keys // max(n_p, 1), keys % max(n_p, 1)
    ious = overlap / (area_t[rows] + area_p[cols] - overlap)
    return _Overlaps(t_ids, p_ids, rows, cols, ious)


def _match_sparse(o: _Overlaps, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, ious)`` of the matched pairs (:func:`_match_indices`' rule) from the
    overlapping ones: above IoU 0.5 each object has at most one partner (the matching is those
    pairs); below, the optimal matching of the objects that have a candidate, on their dense
    sub-matrix."""
    ok = o.ious > thresh
    if thresh >= 0.5 or not ok.any():
        return o.rows[ok], o.cols[ok], o.ious[ok]
    (r_ids, r_inv), (c_ids, c_inv) = (
        np.unique(o.rows[ok], return_inverse=True),
        np.unique(o.cols[ok], return_inverse=True),
    )
    sub = np.zeros((len(r_ids), len(c_ids)))
    sub[r_inv, c_inv] = o.ious[ok]
    i, j = _match_indices(sub, thresh)
    return r_ids[i], c_ids[j], sub[i, j]


def _match_indices(iou: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the optimal one-to-one matching of a dense IoU matrix with IoU > thresh."""
    n_t, n_p = iou.shape
    if n_t == 0 or n_p == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ok = iou > thresh
    # maximise the number of matches first, then the total IoU of the matches
    cost = -(ok.astype(float)) - iou / (2 * min(n_t, n_p))
    rows, cols = linear_sum_assignment(cost)
    good = ok[rows, cols]
    return rows[good], cols[good]


def _match_counts(iou: np.ndarray, thresh: float) -> tuple[int, np.ndarray]:
    """Return (tp, matched IoUs) of the optimal one-to-one matching with IoU > thresh."""
    rows, cols = _match_indices(iou, thresh)
    return len(rows), iou[rows, cols]


def _scores(tp: int, n_true: int, n_pred: int, matched_iou_sum: float, thresh: float) -> dict:
    fp, fn = n_pred - tp, n_true - tp
    div = lambda a, b: float(a) / b if b else 0.0  # noqa: E731
    if tp + fp + fn == 0:  # nothing to find and nothing found: the perfect answer, every score 1
        precision = recall = f1 = ap = mean_iou = pq = 1.0
    else:
        precision, recall = div(tp, tp + fp), div(tp, tp + fn)
        f1, ap = div(2 * tp, 2 * tp + fp + fn), div(tp, tp + fp + fn)
        mean_iou = div(matched_iou_sum, tp)
        pq = div(matched_iou_sum, tp + 0.5 * fp + 0.5 * fn)
    return {
        "thresh": float(thresh),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "n_true": int(n_true),
        "n_pred": int(n_pred),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ap": ap,
        "mean_matched_iou": mean_iou,
        "panoptic_quality": pq,
    }


def matching(true_labels, pred_labels, *, thresh: float = 0.5, pairs: bool = False) -> dict:
    """Match predicted to true objects at IoU > ``thresh`` and count TP, FP, FN.

    Each object is matched at most once; among one-to-one matchings the one with the most
    matches (then the highest total IoU) is chosen (for ``thresh >= 0.5`` the matching is unique).
    The rule is the 2018 Data Science Bowl's: a strict ``IoU > thresh``. StarDist's
    ``matching`` counts ``IoU >= thresh``; the two differ only where an IoU equals the threshold
    exactly (an object split in two halves: IoU 0.5 each, no match here, one in StarDist).

    Parameters
    ----------
    true_labels, pred_labels : array_like
        Integer instance label images ``(H, W)`` (or ``(H, W, 1)``, as ``sciconv.io.read``
        gives them), 0 = background. Label values need not be consecutive, and may be any
        unsigned 64-bit ids.
    thresh : float
        IoU threshold in [0, 1).
    pairs : bool
        Also return which objects matched: ``true_ids``, ``pred_ids`` (the labels of the matched
        pairs, ordered by true label) and ``matched_ious`` (numpy arrays).

    Returns
    -------
    dict
        ``thresh``, ``tp``, ``fp``, ``fn``, ``n_true``, ``n_pred``, ``precision``, ``recall``,
        ``f1``, ``ap`` (``TP / (TP + FP + FN)``), ``mean_matched_iou``, ``panoptic_quality``.
        When both images are empty (no object to find, none found) every score is 1.0, the
        perfect answer (StarDist gives 0): an empty image averaged with others counts as solved.
        A precision without predictions or a recall without true objects is 0.0.

    Raises
    ------
    InvalidImageError
        For shapes that differ or are not 2-D, negative or non-integer labels.
    ConfigError
        For a threshold outside [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.metrics import matching
    >>> t = np.array([[1, 1, 0, 2, 2]])
    >>> p = np.array([[3, 3, 0, 2, 0]])
    >>> m = matching(t, p, pairs=True)
    >>> m["tp"], m["fp"], m["fn"], m["ap"]
    (1, 1, 1, 0.3333333333333333)
    >>> m["true_ids"].tolist(), m["pred_ids"].tolist()
    ([1], [3])
    """
    (thresh,) = _validate_thresholds([thresh], name="thresh")
    o = _overlaps(true_labels, pred_labels)
    rows, cols, ious = _match_sparse(o, thresh)
    out = _scores(len(rows), len(o.true_ids), len(o.pred_ids), float(ious.sum()), thresh)
    if pairs:
        order = np.argsort(rows, kind="stable")
        out["true_ids"] = o.true_ids[rows[order]]
        out["pred_ids"] = o.pred_ids[cols[order]]
        out["matched_ious"] = ious[order]
    return out


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
    """Instance average precision ``TP / (TP + FP + FN)`` at each IoU threshold.

    The Data Science Bowl 2018 rule, as :func:`matching`: a match needs ``IoU > t``, strictly
    (StarDist counts ``IoU >= t``: it differs only at exact ties). Over several images the
    counts are pooled, as StarDist's ``matching_dataset`` pools them.

    Parameters
    ----------
    true_labels, pred_labels : array_like or sequence of array_like
        One pair of ``(H, W)`` instance label images, or sequences (or ``(N, H, W)`` arrays) of
        pairs; for several images TP, FP and FN are summed over the images before the ratios.
        A trailing axis of 1 is dropped (``(H, W, 1)`` is one image, as ``sciconv.io.read``
        gives it; ``(N, H, W, 1)`` a stack); a 3-D array whose last axis is 2 to 4 is refused
        (an ``(H, W, C)`` image: a label image has one channel; pass a stack of images that
        narrow as a list).
    thresholds : sequence of float
        IoU thresholds (default 0.5, 0.55, ..., 0.9).

    Returns
    -------
    dict
        ``thresholds`` and, per threshold, numpy arrays ``ap``, ``tp``, ``fp``, ``fn``,
        ``precision``, ``recall``, ``f1``; plus ``mean_ap`` (the mean of ``ap`` over the
        thresholds; over several images, of the pooled counts: not the Data Science Bowl's
        per-image score, :func:`dsb_score`). Images without true or predicted objects score 1.0
        throughout (:func:`matching`).

    Raises
    ------
    InvalidImageError
        For label images that are not 2-D (or ``(H, W, 1)``), different numbers of images, or
        labels :func:`matching` refuses.

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
        o = _overlaps(t, p)
        for i, th in enumerate(ths):
            _, _, matched = _match_sparse(o, th)
            totals["tp"][i] += len(matched)
            totals["n_true"][i] += len(o.true_ids)
            totals["n_pred"][i] += len(o.pred_ids)
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

    Usually lower than :func:`average_precision`'s pooled ``mean_ap``: the 0.95 threshold is
    strict, and an image with a few objects weighs as much as a crowded one. The shipped
    ``pretrained("nuclei")`` model (``benchmarks/real_nuclei.py``'s validation division, loader
    and ``run_pretrained``, float32, measured 2026-12-06): on the first 24 fluorescence validation
    images pooled AP@0.5:0.9 0.705, this score 0.663; on all 82 fluorescence ones 0.688 and
    0.648; on all 99 (fluorescence, colour, grey brightfield) 0.647 and 0.616.

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


def _label_images(labels, *, name: str) -> list[np.ndarray]:
    """The label images of one argument: one image, a sequence of them or a stack."""
    refuse_path(labels, name=name, reader="sciconv.io.read_labels")
    labels = _pixels(labels, name=name)
    if (
        isinstance(labels, (list, tuple))
        and len(labels)
        and np.ndim(_pixels(labels[0], name=name)) >= 2
    ):
        return [_label_image(x, name=f"{name}[{i}]") for i, x in enumerate(labels)]
    arr = np.asarray(labels)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 1):
        return [_label_image(arr, name=name)]  # one image; (H, W, 1) as sciconv.io.read gives
    if arr.ndim == 3 and arr.shape[-1] <= 4:
        raise InvalidImageError(
            f"{name} has shape {arr.shape}: an (H, W, C) image with {arr.shape[-1]} channels? A "
            "label image has one; pass (H, W) or (H, W, 1) label images, or an (N, H, W) stack "
            "(images 2 to 4 pixels wide as a list)"
        )
    if (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 1)) and len(arr):
        return list(arr.reshape(arr.shape[:3]))
    raise InvalidImageError(
        f"{name} must be a 2-D label image, a sequence of them or an (N, H, W) array; got shape "
        f"{arr.shape}"
    )


def _as_pairs(true_labels, pred_labels) -> list[tuple[np.ndarray, np.ndarray]]:
    true_list = _label_images(true_labels, name="true_labels")
    pred_list = _label_images(pred_labels, name="pred_labels")
    if len(true_list) != len(pred_list):
        raise InvalidImageError(
            f"true_labels and pred_labels must hold as many images; got {len(true_list)} and "
            f"{len(pred_list)}"
        )
    return list(zip(true_list, pred_list))
