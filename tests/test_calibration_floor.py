"""Temperature scaling of over-confident softmax classifiers (QA52 ref #1): probabilities were
clipped at 1e-7 before their log, which flattened the logits of confident predictions and left
the fitted temperature too small (the calibrated model still over-confident)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from sciconv.calibration import expected_calibration_error, fit_temperature
from sciconv.models.uncertainty_layers import SOFTMAX_FLOOR, TemperatureScaling


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _overconfident(scale, n=4000, k=5, seed=0):
    """Logits of a ~70 % accurate classifier, multiplied by ``scale``; float32 probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0.0, 1.0, (n, k))
    z[np.arange(n), y] += 1.3
    return scale * z, y


def _logit_temperature(z, y):
    """Guo et al. 2017: the T minimizing the NLL of softmax(z / T), on the logits."""

    def nll(log_t):
        s = z / np.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean()

    return float(np.exp(minimize_scalar(nll, bounds=(-4, 4), method="bounded").x))


@pytest.mark.parametrize("scale", [10.0, 20.0])
def test_an_overconfident_classifier_gets_the_temperature_of_its_logits(scale):
    z, y = _overconfident(scale)
    p = _softmax(z).astype(np.float32)
    assert (p < 1e-7).mean() > 0.4  # what the 1e-7 clip flattened
    t = fit_temperature(p, y, mode="softmax")
    assert t == pytest.approx(_logit_temperature(z, y), rel=0.01)  # was 5.08/6.30, not 6.48/12.95
    calibrated = np.asarray(TemperatureScaling(t)(p))
    assert expected_calibration_error(calibrated, y) < 0.025  # was 0.042 / 0.062


def test_a_temperature_layer_saved_before_the_floor_keeps_its_clip():
    """An older calibrated model (config without 'floor') predicts as it did when its temperature
    was fitted: 1e-7."""
    p = np.array([[1.0 - 2e-9, 1e-9, 1e-9]], np.float32)
    old = TemperatureScaling.from_config({"temperature": 3.0, "mode": "softmax", "name": "t"})
    new = TemperatureScaling(3.0)
    assert old.floor == 1e-7 and new.floor == SOFTMAX_FLOOR
    assert new.get_config()["floor"] == SOFTMAX_FLOOR
    assert TemperatureScaling.from_config(new.get_config()).floor == SOFTMAX_FLOOR
    a, b = np.asarray(old(p))[0], np.asarray(new(p))[0]
    np.testing.assert_allclose(a[1], (1e-7 ** (1 / 3)) / (1 + 2 * 1e-7 ** (1 / 3)), rtol=1e-3)
    assert b[1] < a[1]  # 1e-9 itself, not lifted to 1e-7
