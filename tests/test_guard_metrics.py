"""Guards of the instance metrics' secondary scores (mutation-testing survivors m05, m02, m04).

- m05: precision and recall in a scene with FP != FN (an over-detecting segmenter), from
  ``matching`` and from ``average_precision``.
- m02: panoptic quality = sum of matched IoUs / (TP + FP/2 + FN/2), by hand.
- m04: loose matching (``thresh < 0.5``) picks, among matchings with the most matches, the
  one with the highest total IoU: the matched pairs and mean matched IoU of a crossing scene.
"""

from __future__ import annotations

import numpy as np
import pytest

from sciconv.metrics import average_precision, matching


@pytest.fixture
def over_detected():
    """3 true 10 x 10 nuclei; the prediction finds 2 (one shifted by a column, one exact) and
    adds 3 false positives: TP 2, FP 3, FN 1, matched IoUs 90/110 and 1."""
    t = np.zeros((40, 60), np.int32)
    t[2:12, 2:12] = 1
    t[2:12, 30:40] = 2
    t[25:35, 10:20] = 3
    p = np.zeros_like(t)
    p[2:12, 3:13] = 7  # true 1 shifted one column: IoU 90 / 110
    p[25:35, 10:20] = 4  # true 3 exactly: IoU 1
    p[20:24, 45:49] = 1  # three false positives
    p[30:34, 50:54] = 2
    p[36:39, 30:34] = 9
    return t, p


def test_precision_and_recall_of_an_over_detecting_segmenter(over_detected):
    m = matching(*over_detected, thresh=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 3, 1)
    assert m["precision"] == pytest.approx(2 / 5)  # TP / (TP + FP)
    assert m["recall"] == pytest.approx(2 / 3)  # TP / (TP + FN)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 1))


def test_average_precision_reports_precision_and_recall_per_threshold(over_detected):
    r = average_precision(*over_detected, thresholds=(0.5, 0.85))
    # IoU 1 survives 0.85, IoU 0.818 does not
    np.testing.assert_array_equal(r["tp"], [2, 1])
    np.testing.assert_allclose(r["precision"], [2 / 5, 1 / 5])
    np.testing.assert_allclose(r["recall"], [2 / 3, 1 / 3])
    # pooled over two images: TP 4, FP 6, FN 2
    pooled = average_precision([over_detected[0]] * 2, [over_detected[1]] * 2, thresholds=(0.5,))
    np.testing.assert_allclose(pooled["precision"], [4 / 10])
    np.testing.assert_allclose(pooled["recall"], [4 / 6])


def test_panoptic_quality_by_hand(over_detected):
    m = matching(*over_detected, thresh=0.5, pairs=True)
    ious = sorted(m["matched_ious"].tolist())
    assert ious == pytest.approx([90 / 110, 1.0])
    # PQ = sum of matched IoUs / (TP + FP / 2 + FN / 2) = (9/11 + 1) / (2 + 1.5 + 0.5) = 5/11
    assert m["panoptic_quality"] == pytest.approx((90 / 110 + 1.0) / (2 + 0.5 * 3 + 0.5 * 1))
    assert m["panoptic_quality"] == pytest.approx(5 / 11)
    # = segmentation quality (mean matched IoU) x recognition quality (F1)
    assert m["panoptic_quality"] == pytest.approx(m["mean_matched_iou"] * m["f1"])


def test_loose_matching_picks_the_highest_total_iou_among_the_largest_matchings():
    """Two true objects side by side; each prediction covers the *other* object well (IoU 2/3)
    and its own-numbered neighbour a little (IoU 1/9). At thresh 0.1 both one-to-one matchings
    have 2 matches: the documented tie-break takes the one with the higher total IoU."""
    t = np.zeros((10, 20), np.int32)
    t[:, :10] = 1
    t[:, 10:] = 2
    p = np.zeros_like(t)
    p[:, 8:18] = 1  # 80 px of true 2 (IoU 80/120), 20 px of true 1 (IoU 20/180)
    p[:, :8] = 2  # 80 px of true 1 ...
    p[:, 18:] = 2  # ... and 20 px of true 2
    m = matching(t, p, thresh=0.1, pairs=True)
    assert m["tp"] == 2
    assert m["true_ids"].tolist() == [1, 2]
    assert m["pred_ids"].tolist() == [2, 1]
    np.testing.assert_allclose(m["matched_ious"], [2 / 3, 2 / 3])
    assert m["mean_matched_iou"] == pytest.approx(2 / 3)
    assert m["panoptic_quality"] == pytest.approx(2 / 3)
    # the same rule among more objects: a third, unambiguous pair does not change the choice
    t3 = np.concatenate([t, np.zeros((10, 20), np.int32)], axis=1)
    t3[:, 25:35] = 3
    p3 = np.concatenate([p, np.zeros((10, 20), np.int32)], axis=1)
    p3[:, 26:35] = 3
    m3 = matching(t3, p3, thresh=0.1, pairs=True)
    assert m3["pred_ids"].tolist() == [2, 1, 3]
    assert m3["mean_matched_iou"] == pytest.approx((2 / 3 + 2 / 3 + 0.9) / 3)
