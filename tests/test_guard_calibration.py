"""Guards of the multi-label (sigmoid) calibration measures (mutation-testing survivor c05).

c05: for sigmoid outputs every entry is a binary prediction whose confidence is
``max(p, 1 - p)`` (the probability of the predicted side), not ``p``: perfectly calibrated
outputs have an ECE near 0 and no reliability bin below 0.5; badly calibrated ones have the
ECE of a hand computation.
"""

from __future__ import annotations

import numpy as np
import pytest

from sciconv.calibration import expected_calibration_error, reliability_curve


def test_perfectly_calibrated_sigmoid_outputs_have_an_ece_near_zero():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, size=(4000, 3))
    y = (rng.random(p.shape) < p).astype(int)  # each label is 1 with probability p
    assert expected_calibration_error(p, y, bins=10) < 0.02
    curve = reliability_curve(p, y, bins=10)
    # confidence in the predicted side is never below 0.5
    assert curve["count"][:5].tolist() == [0] * 5
    assert curve["count"].sum() == p.size
    full = curve["count"] > 0
    np.testing.assert_allclose(curve["accuracy"][full], curve["confidence"][full], atol=0.05)
    lo = curve["confidence"][full]
    assert (lo > 0.5).all() and (lo <= 1.0).all()


def test_sigmoid_ece_and_reliability_curve_by_hand():
    # rows do not sum to 1: sigmoid (multi-label) outputs, one binary prediction per entry
    p = np.array([[0.95, 0.15], [0.65, 0.35]])
    y = np.array([[0, 0], [1, 1]])
    # predicted side and its confidence: 1 @ 0.95 (wrong), 0 @ 0.85 (right),
    # 1 @ 0.65 (right), 0 @ 0.65 (wrong)
    curve = reliability_curve(p, y, bins=10)
    assert curve["count"].tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 1, 1]
    np.testing.assert_allclose(curve["confidence"][[6, 8, 9]], [0.65, 0.85, 0.95])
    np.testing.assert_allclose(curve["accuracy"][[6, 8, 9]], [0.5, 1.0, 0.0])
    # ECE = (2 |0.5 - 0.65| + 1 |1 - 0.85| + 1 |0 - 0.95|) / 4
    want = (2 * 0.15 + 0.15 + 0.95) / 4
    assert expected_calibration_error(p, y, bins=10) == pytest.approx(want)
    # an overconfident multi-label classifier: always 0.99 / 0.01, right 3 times in 4
    p = np.array([[0.99, 0.01]] * 4)
    y = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    assert expected_calibration_error(p, y) == pytest.approx(0.99 - 0.75)
