"""Temperature scaling, expected calibration error, reliability curve and diagram."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sciconv.calibration import (  # noqa: E402
    ONE_SIGMA,
    TemperatureScaling,
    calibrate,
    calibrate_variance,
    expected_calibration_error,
    fit_temperature,
    fit_variance_scale,
    interval_coverage,
    regression_moments,
    reliability_curve,
)
from sciconv.errors import ConfigError, ModelError  # noqa: E402
from sciconv.models import classifier, get_metadata, regressor  # noqa: E402
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


@pytest.mark.parametrize("width", [1, 2])
def test_calibrate_a_plain_keras_sigmoid_model_stays_sigmoid(width):
    """A plain Keras model records no task: its sigmoid output is read from the model, so the
    temperature fitted as sigmoid is applied as sigmoid (applied as softmax, a one-column output
    was 1.0 everywhere)."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(2000, width)).astype("float32") * 2
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(int)
    inputs = keras.Input((width,))
    dense = keras.layers.Dense(width, activation="sigmoid", use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(2.0 * np.eye(width, dtype="float32"))  # over-confident by 2
    calibrated = calibrate(model, z, y)
    meta = get_metadata(calibrated)
    assert meta["calibration"]["mode"] == "sigmoid" and abs(meta["temperature"] - 2.0) < 0.3
    out = calibrated.predict(z, verbose=0)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-2.0 * z / meta["temperature"])), atol=1e-4)
    before = model.predict(z, verbose=0)
    assert expected_calibration_error(out, y) < expected_calibration_error(before, y)


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


# ------------------------------------------------------------------------- regression error bars
def test_interval_coverage_counts_the_truths_inside_the_error_bars():
    y = np.array([0.0, 0.9, 1.1, -2.5, 3.0])
    mean, std = np.zeros(5), np.ones(5)
    assert interval_coverage(y, mean, std) == pytest.approx(2 / 5)  # |y| <= 1: 0, 0.9
    assert interval_coverage(y, mean, std, sigma=2.0) == pytest.approx(3 / 5)
    assert interval_coverage(y, mean, 3 * std) == pytest.approx(1.0)
    # the regressor's [mean, log_var] output: the same numbers, one (N, 2) array
    pred = np.stack([mean, np.log(std**2)], axis=1)
    assert interval_coverage(y, pred) == pytest.approx(2 / 5)
    got_mean, got_std = regression_moments(np.array([[1.0, -2.0, np.log(4.0), 0.0]]))
    np.testing.assert_allclose(got_mean, [[1.0, -2.0]])
    np.testing.assert_allclose(got_std, [[2.0, 1.0]])
    # two targets: every (sample, target) pair counts
    y2 = np.array([[0.5, 5.0], [0.0, 0.0]])
    pred2 = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert interval_coverage(y2, pred2) == pytest.approx(3 / 4)
    # Gaussian truths around their means: erf(k / sqrt 2) of them within k sigma
    rng = np.random.default_rng(0)
    s = rng.uniform(0.5, 3.0, 20000)
    truth = rng.normal(0.0, s)
    assert abs(interval_coverage(truth, np.zeros_like(s), s) - ONE_SIGMA) < 0.01
    assert abs(interval_coverage(truth, np.zeros_like(s), s, sigma=2) - 0.9545) < 0.01


def test_fit_variance_scale_recovers_the_overconfidence_factor():
    rng = np.random.default_rng(1)
    s = rng.uniform(0.5, 3.0, 20000)
    y = rng.normal(0.0, s)
    over = np.stack([np.zeros_like(s), np.log((s / 2.5) ** 2)], axis=1)  # sigma 2.5x too small
    assert interval_coverage(y, over) < 0.35
    for method in ("nll", "coverage"):
        factor = fit_variance_scale(over, y, method=method)
        assert abs(factor - 2.5) < 0.08, method
        fixed = over.copy()
        fixed[:, 1] += 2 * np.log(factor)
        assert abs(interval_coverage(y, fixed) - ONE_SIGMA) < 0.015, method
    # a factor that puts exactly 68.3 % of the truths within 1 sigma
    factor = fit_variance_scale(over, y, method="coverage")
    assert interval_coverage(y, over[:, :1], np.exp(0.5 * over[:, 1]) * factor) == pytest.approx(
        ONE_SIGMA, abs=1e-3
    )


def test_calibrate_variance_appends_the_shift_and_records_the_scale(tmp_path):
    keras.utils.set_random_seed(0)
    model = regressor((8, 8, 1), 2, filters=(2,), dense=(), uncertainty=True)
    x = np.random.default_rng(3).normal(size=(6, 8, 8, 1)).astype("float32")
    before = np.asarray(model(x))
    calibrated = calibrate_variance(model, scale=3.0)
    after = np.asarray(calibrated(x))
    np.testing.assert_allclose(after[:, :2], before[:, :2], atol=1e-6)  # means kept
    np.testing.assert_allclose(after[:, 2:], before[:, 2:] + 2 * np.log(3.0), atol=1e-5)
    meta = get_metadata(calibrated)
    assert meta["variance_scale"] == 3.0 and meta["task"] == "regression"
    assert meta["calibration"] == {"method": "variance_scale", "fit": "nll"}
    assert "variance_scale" not in get_metadata(model)
    assert not calibrated.trainable_weights[len(model.trainable_weights) :]  # the shift is fixed
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), after, atol=1e-5)
    # fitted from validation data: truths twice as far from the mean as the model says
    mean, std = regression_moments(before)
    y = mean + 2.0 * std * np.array([[1.0, -1.0]] * 3 + [[-1.0, 1.0]] * 3)
    fitted = calibrate_variance(model, x, y)
    assert get_metadata(fitted)["variance_scale"] == pytest.approx(2.0, rel=1e-4)
    with pytest.raises(ModelError, match="already calibrated"):
        calibrate_variance(calibrated, scale=2.0)
    with pytest.raises(ModelError, match="calibrate_variance"):
        calibrate(model, temperature=2.0)  # temperature scaling is not for a regressor


def test_variance_errors_name_the_problem():
    with pytest.raises(ConfigError, match=r"shape \(N, 2 D\); got shape \(3, 3\)"):
        interval_coverage(np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="y_true must hold"):
        interval_coverage(np.zeros(4), np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="std finite and > 0"):
        interval_coverage(np.zeros(2), np.zeros(2), np.array([1.0, 0.0]))
    with pytest.raises(ConfigError, match="sigma must be"):
        interval_coverage(np.zeros(2), np.zeros((2, 2)), sigma=0)
    with pytest.raises(ConfigError, match="did you mean 'coverage'"):
        fit_variance_scale(np.zeros((2, 2)), np.ones(2), method="coverag")
    with pytest.raises(ConfigError, match="every validation truth equals"):
        fit_variance_scale(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ModelError, match=r"uncertainty=True"):
        calibrate_variance(regressor((8, 8, 1), 1, filters=(2,), dense=()), scale=2.0)
    with pytest.raises(ModelError, match=r"uncertainty=True"):
        calibrate_variance(classifier((8, 8, 1), 2, filters=(2,), dense=()), scale=2.0)
    model = regressor((8, 8, 1), 1, filters=(2,), dense=(), uncertainty=True)
    with pytest.raises(ConfigError, match="scale must be a finite number > 0"):
        calibrate_variance(model, scale=-1.0)
    with pytest.raises(ConfigError, match="needs validation data"):
        calibrate_variance(model)


def test_class_ids_must_be_whole_numbers_and_booleans_are_0_and_1():
    """Labels 0.9 / 1.9 were truncated to 0 / 1 and scored as if right; booleans were refused
    with a message that blamed their (right) shape."""
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ConfigError, match=r"whole class ids; .*0\.9, 1\.9"):
        expected_calibration_error(p, y + 0.9)
    assert expected_calibration_error(p, y.astype(bool)) == pytest.approx(
        expected_calibration_error(p, y)
    )


def test_soft_label_rows_are_refused_and_one_hot_rows_are_class_ids():
    """Rows of shape (N, K) were taken by their argmax whatever they held, so soft labels
    (0.6 / 0.4) were scored as if they were the class of their largest share."""
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(p, np.eye(2)[y]) == pytest.approx(
        expected_calibration_error(p, y)
    )
    soft = np.array([[0.6, 0.4], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    with pytest.raises(ConfigError, match=r"not one-hot rows"):
        expected_calibration_error(p, soft)
