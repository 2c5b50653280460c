"""Metrics: Keras IoU / Dice for training; numpy scores of instances, classes and catalogs.

The numpy scores import without Keras or TensorFlow (a pipeline that only scores labels or
catalogs does not wait for them); the Keras metrics load Keras when first named.

Keras metrics (registered with ``package="sciconv"``) take integer labels ``(N, H, W)`` or
``(N, H, W, 1)`` and probabilities: softmax ``(N, H, W, K)`` is arg-maxed, a single sigmoid
channel ``(N, H, W, 1)`` is thresholded. They build on ``keras.metrics.IoU`` (its confusion
matrix, ``ignore_class`` and sample weights).

The numpy functions score instance segmentations by the 2018 Data Science Bowl's rule: a
predicted object matches a true object when their IoU is strictly above a threshold (each object
matched at most once, by an optimal assignment), and at each threshold
``AP = TP / (TP + FP + FN)``; :func:`average_precision` pools images (as StarDist's evaluation
does), :func:`dsb_score` averages them (the Data Science Bowl's score). StarDist counts a match at
IoU >= the threshold, which differs only at exact ties (small objects: up to +0.009 pooled AP
on the shipped nuclei model's grey brightfield validation images at IoU 0.65).

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

from sciconv._lazy import lazy_names
from sciconv.metrics._catalogs import match_catalogs
from sciconv.metrics._classes import confusion_counts
from sciconv.metrics._instances import (
    AP_THRESHOLDS,
    DSB_THRESHOLDS,
    average_precision,
    dsb_score,
    iou_matrix,
    matching,
)

__all__ = [
    "AP_THRESHOLDS",
    "DSB_THRESHOLDS",
    "Dice",
    "IoU",
    "MeanIoU",
    "average_precision",
    "confusion_counts",
    "dsb_score",
    "iou_matrix",
    "match_catalogs",
    "matching",
]

# the Keras metrics, imported (and registered with Keras) when first named
__getattr__, __dir__ = lazy_names(__name__, "sciconv.metrics._keras", ("Dice", "IoU", "MeanIoU"))
