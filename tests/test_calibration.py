"""Temperature scaling, expected calibration error, reliability curve and diagram."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sciconv.calibration import (  # noqa: E402
    TemperatureScaling,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from sciconv.errors import ConfigError, ModelError  # noqa: E402
from sciconv.models import classifier, get_metadata  # noqa: E402
from sciconv.viz import plot_reliability  # noqa: E402


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sample_classes(p, rng):
    """Labels drawn from the rows of p: p is then exactly calibrated for them."""
    return (rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1)


@pytest.fixture(scope="module")
def softmax_data():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 3))
    y = _sample_classes(_softmax(z), rng)
    return z, y


def test_fit_temperature_recovers_the_overconfidence_factor(softmax_data):
    z, y = softmax_data
    over = _softmax(3.0 * z)  # three times too confident
    t = fit_temperature(over, y)
    assert abs(t - 3.0) < 0.35
    assert abs(fit_temperature(_softmax(z), y) - 1.0) < 0.12  # calibrated stays ~1
    after = np.asarray(TemperatureScaling(t)(over.astype("float32")))
    assert expected_calibration_error(after, y) < 0.03 < expected_calibration_error(over, y)
    np.testing.assert_array_equal(after.argmax(axis=1), over.argmax(axis=1))  # ranking kept


def test_fit_temperature_multilabel_sigmoid():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3000, 2)) * 2
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(int)
    over = 1 / (1 + np.exp(-2.0 * z))
    t = fit_temperature(over, y, mode="sigmoid")
    assert abs(t - 2.0) < 0.3
    after = np.asarray(TemperatureScaling(t, mode="sigmoid")(over.astype("float32")))
    assert expected_calibration_error(after, y) < expected_calibration_error(over, y)


def _dense_softmax(scale: float):
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(3, activation="softmax", use_bias=False)
    model = keras.Model(inputs, dense(inputs), name="dense_softmax")
    dense.kernel.assign(scale * np.eye(3, dtype="float32"))
    return model


def test_calibrate_appends_the_layer_and_records_the_temperature(softmax_data, tmp_path):
    z, y = softmax_data
    model = _dense_softmax(2.5)  # logits = 2.5 z: over-confident by 2.5
    calibrated = calibrate(model, z.astype("float32"), y)
    t = get_metadata(calibrated)["temperature"]
    assert abs(t - 2.5) < 0.3
    assert get_metadata(calibrated)["calibration"] == {"method": "temperature", "mode": "softmax"}
    assert "temperature" not in get_metadata(model)  # the model itself is unchanged
    x = z[:16].astype("float32")
    expected = _softmax(np.log(np.asarray(model(x))) / t)
    np.testing.assert_allclose(np.asarray(calibrated(x)), expected, atol=1e-5)
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)
    assert get_metadata(loaded)["temperature"] == t
    with pytest.raises(ModelError, match="already calibrated"):
        calibrate(calibrated, temperature=2.0)


def test_calibrate_a_sciconv_classifier_with_a_given_temperature():
    model = classifier((8, 8, 1), 3, filters=(2,), dense=())
    calibrated = calibrate(model, temperature=0.5)
    meta = get_metadata(calibrated)
    assert meta["task"] == "classification" and meta["temperature"] == 0.5
    x = np.random.default_rng(2).normal(size=(4, 8, 8, 1)).astype("float32")
    p = np.asarray(model(x))
    np.testing.assert_allclose(np.asarray(calibrated(x)), _softmax(2 * np.log(p)), atol=1e-5)


def test_temperature_layer_config_round_trip_and_identity():
    layer = TemperatureScaling(1.7, mode="sigmoid", name="t")
    clone = TemperatureScaling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    p = np.array([[0.2, 0.5, 0.3]], "float32")
    np.testing.assert_allclose(np.asarray(TemperatureScaling(1.0)(p)), p, atol=1e-6)
    with pytest.raises(ConfigError, match="temperature must be a finite number > 0"):
        TemperatureScaling(0.0)


def test_ece_and_reliability_curve_values():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 0, 1, 1])
    curve = reliability_curve(probs, y, bins=5)
    assert curve["count"].tolist() == [0, 0, 1, 2, 1]
    np.testing.assert_allclose(curve["confidence"][2:], [0.6, 0.75, 0.9])
    np.testing.assert_allclose(curve["accuracy"][2:], [0.0, 1.0, 1.0])
    assert expected_calibration_error(probs, y, bins=5) == pytest.approx(0.3)
    assert expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match=r"probabilities in \[0, 1\]"):
        fit_temperature(np.array([[2.0, -1.0]]), [0])
    with pytest.raises(ConfigError, match="class ids in y must be in"):
        fit_temperature(np.array([[0.5, 0.5]]), [3])
    with pytest.raises(ConfigError, match="needs validation data"):
        calibrate(_dense_softmax(1.0))
    with pytest.raises(ConfigError, match="did you mean 'softmax'"):
        fit_temperature(np.array([[0.5, 0.5]]), [0], mode="softmx")


def test_plot_reliability_draws_each_curve_with_its_ece(softmax_data):
    z, y = softmax_data
    fig = plot_reliability({"before": _softmax(3 * z), "after": _softmax(z)}, y, bins=10)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0] == "perfect calibration"
    assert texts[1].startswith("before (ECE ") and texts[2].startswith("after (ECE ")
    assert float(texts[2][-6:-1]) < 0.03 < float(texts[1][-6:-1])
    assert len(fig.axes) == 2
