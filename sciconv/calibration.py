"""Calibrated class probabilities: temperature scaling, expected calibration error, reliability.

A classifier's softmax (or sigmoid) outputs are often over-confident. Temperature scaling (Guo et
al. 2017, "On Calibration of Modern Neural Networks") divides the logits by one scalar ``T``
fitted on held-out data by minimizing the negative log-likelihood; the ranking (and so the
accuracy) is unchanged.

- :func:`fit_temperature` fits ``T`` on validation probabilities (or a model and its validation
  data): multi-class softmax and multi-label / binary sigmoid;
- :func:`calibrate` returns the classifier with a :class:`TemperatureScaling` layer appended on its
  probabilities and the temperature in its sciconv metadata (``"temperature"``), so every predict
  path (``model.predict``, :func:`sciconv.inference.predict_files`, the saved ``.keras`` file,
  an ONNX export) applies it;
- :func:`expected_calibration_error` and :func:`reliability_curve` measure calibration
  (:func:`sciconv.viz.plot_reliability` draws the curve).

A regressor built with ``sciconv.models.regressor(..., uncertainty=True)`` predicts a mean and a
log-variance per target (trained with :func:`sciconv.losses.gaussian_nll`). Its error bars are
checked by their coverage, the fraction of held-out truths within ``±k σ`` (0.683 for ``k = 1``
and 0.954 for ``k = 2`` when they are right), and recalibrated the same way as the temperature:

- :func:`interval_coverage` measures the coverage; :func:`regression_moments` splits the
  ``[mean, log_var]`` output into the mean and the standard deviation;
- :func:`fit_variance_scale` fits one factor ``s`` for every standard deviation on validation
  data (the Gaussian maximum-likelihood ``s`` by default, or the one that puts 68.3 % of the
  validation truths within ``±1 σ``);
- :func:`calibrate_variance` returns the regressor with ``log_var + 2 log s`` appended (a fixed
  Keras ``Dense`` layer) and ``"variance_scale"`` in its metadata, so every predict path and the
  saved file apply it.

Examples
--------
>>> import numpy as np
>>> from sciconv.calibration import expected_calibration_error
>>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
>>> round(expected_calibration_error(probs, np.array([0, 0, 1, 1]), bins=5), 3)
0.3
"""

from __future__ import annotations

import math
import numbers
import warnings

import keras
import numpy as np

from sciconv._validation import check_int, is_one_hot, look_up_option, not_a_model, not_whole
from sciconv.errors import ConfigError, ModelError, SciconvWarning
from sciconv.losses import LOG_VAR_SAFE
from sciconv.models import get_metadata
from sciconv.models.layers import SciconvMetadata
from sciconv.models.uncertainty_layers import CALIBRATION_MODES, TemperatureScaling

__all__ = [
    "CALIBRATION_MODES",
    "ONE_SIGMA",
    "VARIANCE_SCALE_METHODS",
    "TemperatureScaling",
    "calibrate",
    "calibrate_variance",
    "expected_calibration_error",
    "fit_temperature",
    "fit_variance_scale",
    "interval_coverage",
    "regression_moments",
    "reliability_curve",
]

#: How :func:`fit_variance_scale` fits the factor: Gaussian likelihood, or the 1-sigma coverage.
VARIANCE_SCALE_METHODS = ("nll", "coverage")
#: The fraction of a Gaussian within one standard deviation of its mean, ``erf(1 / sqrt(2))``.
ONE_SIGMA = 0.6826894921370859

_LOG_T_BOUNDS = (np.log(0.02), np.log(50.0))


# --------------------------------------------------------------------------------------------------
# validation


def _probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[0] == 0:
        raise ConfigError(f"probs must have shape (N, K) with N >= 1; got shape {p.shape}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        ids = "" if not_whole(p).size else " (class ids? the probabilities come first)"
        raise ConfigError(f"probs must be probabilities in [0, 1]; got {p.min()}..{p.max()}{ids}")
    return p


def _guess_mode(p: np.ndarray) -> str:
    if p.shape[1] > 1 and np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        return "softmax"
    return "sigmoid"


def _targets(y, p: np.ndarray, mode: str) -> np.ndarray:
    """Class ids (N,) for softmax; 0/1 array (N, K) for sigmoid."""
    y = np.asarray(y)
    n, k = p.shape
    if mode == "softmax":
        if y.ndim == 2 and y.shape == p.shape and k > 1:
            if not is_one_hot(y):
                raise ConfigError(
                    f"y of shape {y.shape} is not one-hot rows (a single 1 per row); pass class "
                    "ids (N,) or one-hot rows (probabilities? they come first, the labels second)"
                )
            y = y.argmax(axis=1)
        y = y.reshape(-1)
        if y.dtype == bool:
            y = y.astype(np.int64)
        if y.shape[0] != n or not np.issubdtype(y.dtype, np.number):
            raise ConfigError(
                f"y must hold {n} class ids (or one-hot rows of width {k}); got shape {y.shape} "
                f"of {y.dtype}"
            )
        odd = not_whole(y)  # NaN, inf, 0.9
        if odd.size:
            raise ConfigError(
                f"y must hold whole class ids; got values that are not integers (e.g. "
                f"{odd[:3].tolist()})"
            )
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() >= k:
            raise ConfigError(f"class ids in y must be in [0, {k}); got {y.min()}..{y.max()}")
        return y
    y = y.reshape(n, -1) if y.size == p.size else y
    if y.shape != p.shape or not np.isin(y, (0, 1)).all():
        swapped = "other values (probabilities? they come first, the 0/1 labels second)"
        what = f"shape {y.shape}" if y.shape != p.shape else swapped
        raise ConfigError(
            f"y must be a 0/1 array of shape {p.shape} for sigmoid outputs; got {what}"
        )
    return y.astype(np.float64)


def _mode_for(model_or_probs, mode) -> str | None:
    if mode is not None:
        return look_up_option(mode, CALIBRATION_MODES, name="mode")
    if isinstance(model_or_probs, keras.Model):
        task = get_metadata(model_or_probs).get("task")
        if task == "multilabel":
            return "sigmoid"
        if task == "classification":
            return "softmax"
        return _output_mode(model_or_probs)
    return None


def _output_mode(model: keras.Model) -> str | None:
    """The sigmoid or softmax of a plain model's last activation (one output column: sigmoid)."""
    if len(model.outputs) == 1 and model.outputs[0].shape[-1] == 1:
        return "sigmoid"
    name = getattr(getattr(model.layers[-1], "activation", None), "__name__", None)
    return name if name in ("sigmoid", "softmax") else None


def _check_images(model: keras.Model, shape: tuple) -> None:
    """Refuse validation images ``model`` cannot take (a TensorFlow error otherwise)."""
    if len(model.inputs) != 1:
        return
    want = tuple(model.inputs[0].shape)
    fits = len(shape) == len(want) and all(
        w is None or s is None or int(s) == int(w) for s, w in zip(shape[1:], want[1:])
    )
    if fits:
        return
    hint = ""
    if len(shape) == len(want) == 4 and shape[1] == want[-1] and shape[-1] != want[-1]:
        hint = "; they look channels first (N, C, H, W): use np.moveaxis(x_val, 1, -1)"
    elif len(shape) == len(want) - 1:
        hint = "; add the channel axis: x_val[..., None]"
    raise ConfigError(
        f"x_val holds images of shape {tuple(shape)} but model {model.name!r} takes {want} "
        f"(N first){hint}"
    )


def _predict(model: keras.Model, x, batch_size: int):
    """Probabilities and, for a tf.data.Dataset of (x, y) batches, the labels collected."""
    if hasattr(x, "element_spec"):
        spec = x.element_spec
        if isinstance(spec, tuple) and hasattr(spec[0], "shape"):
            _check_images(model, tuple(spec[0].shape))
        ys, ps = [], []
        for batch in x:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ConfigError("a dataset for calibration must yield (x, y) batches")
            ps.append(np.asarray(model.predict_on_batch(batch[0])))
            ys.append(np.asarray(batch[1]))
        return np.concatenate(ps), np.concatenate(ys)
    if len(model.inputs) == 1:
        try:
            x = np.asarray(x)
        except ValueError:
            raise ConfigError(
                "x_val must be an array (N, H, W, C) of images of one shape"
            ) from None
        _check_images(model, x.shape)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0)), None


# --------------------------------------------------------------------------------------------------
# temperature


def _nll(log_t: float, p: np.ndarray, y: np.ndarray, mode: str) -> float:
    t = np.exp(log_t)
    floor = TemperatureScaling.default_floor(mode)  # the clip the layer applies
    q = np.clip(p, floor, 1.0 if mode == "softmax" else 1 - floor)
    if mode == "softmax":
        z = np.log(q) / t
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())
    z = (np.log(q) - np.log1p(-q)) / t
    # -[y log s(z) + (1 - y) log(1 - s(z))] = softplus(z) - y z, written stably
    return float((np.logaddexp(0.0, z) - y * z).mean())


def fit_temperature(
    probs_or_model,
    x_val=None,
    y_val=None,
    *,
    mode: str | None = None,
    batch_size: int = 64,
) -> float:
    """Fit the temperature that minimizes the negative log-likelihood on validation data.

    Parameters
    ----------
    probs_or_model : ndarray of shape (N, K) or keras.Model
        Validation probabilities, or a classifier (then ``x_val`` is predicted).
    x_val : array or tf.data.Dataset, optional
        With a model: the validation inputs, as the model takes them (already normalized), or a
        dataset of ``(x, y)`` batches (then ``y_val`` is taken from it). With probabilities: the
        labels may be passed here instead of ``y_val``.
    y_val : array, optional
        Class ids (N,) or one-hot rows (N, K) for softmax; a 0/1 array (N, K) for sigmoid.
    mode : {"softmax", "sigmoid"}, optional
        Default: from the model's metadata (``task`` ``"classification"`` -> softmax,
        ``"multilabel"`` -> sigmoid), else softmax when every row sums to 1 and sigmoid otherwise.
    batch_size : int, optional
        Prediction batch size. Default 64.

    Returns
    -------
    float
        ``T`` in [0.02, 50], found by bounded Brent minimization over ``log T``
        (``scipy.optimize.minimize_scalar``). A ``T`` at a bound warns
        (:class:`~sciconv.errors.SciconvWarning`).

    Raises
    ------
    ConfigError
        Probabilities outside [0, 1] or of the wrong shape; labels that do not match them.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.calibration import fit_temperature
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> right = rng.random(400) < 0.7                  # 70 % correct, but always 95 % sure
    >>> pred = np.where(right, y, 1 - y)
    >>> probs = np.where(pred[:, None] == [0, 1], 0.95, 0.05)
    >>> t = fit_temperature(probs, y)
    >>> t > 2.0
    True
    """
    from scipy.optimize import minimize_scalar

    batch_size = check_int(batch_size, name="batch_size", minimum=1)
    mode = _mode_for(probs_or_model, mode)
    if isinstance(probs_or_model, keras.Model):
        if x_val is None:
            raise ConfigError("fit_temperature(model, x_val, y_val) needs validation inputs x_val")
        p, y_from_ds = _predict(probs_or_model, x_val, batch_size)
        y_val = y_from_ds if y_val is None else y_val
    else:
        p = probs_or_model
        if y_val is None:
            x_val, y_val = None, x_val
        elif x_val is not None:
            raise ConfigError("with probabilities pass fit_temperature(probs, y_val), no x_val")
    if y_val is None:
        raise ConfigError("fit_temperature needs the validation labels y_val")
    p = _probs(p)
    mode = mode or _guess_mode(p)
    y = _targets(y_val, p, mode)
    res = minimize_scalar(
        _nll,
        bounds=_LOG_T_BOUNDS,
        args=(p, y, mode),
        method="bounded",
        options={"xatol": 1e-5},
    )
    log_t = float(res.x)
    if min(abs(log_t - b) for b in _LOG_T_BOUNDS) < 1e-3:
        warnings.warn(
            f"the fitted temperature {np.exp(log_t):.3g} sits at the search bound: the "
            "validation set may be tiny, separable or mislabeled",
            SciconvWarning,
            stacklevel=2,
        )
    return float(np.exp(log_t))


def _check_temperature(value) -> float:
    """``value`` as a float if it is a finite real number > 0 (numpy numbers too, not bool or
    str); otherwise a ConfigError naming ``temperature``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"temperature must be a finite number > 0; got {value!r} ({type(value).__name__})"
        )
    t = float(value)
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be a finite number > 0; got {t!r}")
    return t


def calibrate(
    model: keras.Model,
    x_val=None,
    y_val=None,
    *,
    temperature: float | None = None,
    mode: str | None = None,
    batch_size: int = 64,
) -> keras.Model:
    """Return ``model`` with temperature scaling appended on its probabilities.

    Parameters
    ----------
    model : keras.Model
        A classifier with one probability output (N, K) (softmax or sigmoid), e.g.
        :func:`sciconv.models.classifier`.
    x_val, y_val
        Validation data for :func:`fit_temperature` (not needed when ``temperature`` is given).
    temperature : float, optional
        Use this temperature ``T`` (a finite real number > 0; ``T > 1`` softens the
        probabilities) instead of fitting one.
    mode : {"softmax", "sigmoid"}, optional
        See :func:`fit_temperature`.
    batch_size : int, optional
        Prediction batch size. Default 64.

    Returns
    -------
    keras.Model
        ``Input -> SciconvMetadata -> model -> TemperatureScaling``, sharing ``model``'s weights
        (``model`` itself is not changed). Its metadata is ``model``'s plus ``"temperature"``
        and ``"calibration"`` (``{"method": "temperature", "mode": ...}``), so it is saved,
        loaded and exported with the model and every predict path applies it.

    Raises
    ------
    ModelError
        ``model`` is not a one-input, one-output Keras model with a 2-D output, or is already
        calibrated.
    ConfigError
        ``temperature`` is not a finite real number > 0; see :func:`fit_temperature`.

    Examples
    --------
    >>> from sciconv.models import classifier, get_metadata
    >>> from sciconv.calibration import calibrate
    >>> model = classifier((8, 8, 1), 3, filters=(2,), dense=())
    >>> calibrated = calibrate(model, temperature=1.5)
    >>> get_metadata(calibrated)["temperature"], calibrated.output.shape
    (1.5, (None, 3))
    """
    if not isinstance(model, keras.Model):
        raise ModelError(not_a_model(model))
    if temperature is not None:
        temperature = _check_temperature(temperature)
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ModelError(
            f"calibrate needs a classifier with one input and one (N, K) probability output; "
            f"{model.name!r} has outputs {[tuple(o.shape) for o in model.outputs]}"
        )
    meta = dict(get_metadata(model).items())
    if meta.get("task") == "regression":
        raise ModelError(
            f"model {model.name!r} is a regressor: temperature scaling is for class "
            "probabilities; recalibrate its error bars with calibrate_variance"
        )
    if "temperature" in meta:
        raise ModelError(
            f"model {model.name!r} is already calibrated (temperature {meta['temperature']}); "
            "calibrate the uncalibrated model"
        )
    if temperature is None:
        if x_val is None:
            raise ConfigError("calibrate needs validation data (x_val, y_val) or temperature=")
        temperature = fit_temperature(model, x_val, y_val, mode=mode, batch_size=batch_size)
    mode = _mode_for(model, mode) or "softmax"
    meta.update(temperature=float(temperature), calibration={"method": "temperature", "mode": mode})
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name=f"{model.name}_input")
    x = SciconvMetadata(meta, name=f"{model.name}_calibrated_metadata")(inputs)
    out = TemperatureScaling(temperature, mode=mode, name=f"{model.name}_temperature")(model(x))
    return keras.Model(inputs, out, name=f"{model.name}_calibrated")


# --------------------------------------------------------------------------------------------------
# measures


def _confidence_and_correct(probs, y):
    p = _probs(probs)
    mode = _guess_mode(p)
    t = _targets(y, p, mode)
    if mode == "softmax":
        return p.max(axis=1), (p.argmax(axis=1) == t).astype(np.float64)
    # sigmoid: every entry is a binary prediction; confidence in the predicted side
    p, t = p.ravel(), t.ravel()
    return np.maximum(p, 1 - p), ((p > 0.5) == (t > 0.5)).astype(np.float64)


def reliability_curve(probs, y, *, bins: int = 15) -> dict:
    """Accuracy against confidence in equal-width confidence bins.

    Parameters
    ----------
    probs : ndarray of shape (N, K)
        Softmax rows (summing to 1; confidence = the largest, correct = argmax is the label) or
        sigmoid outputs (each entry a binary prediction; confidence = ``max(p, 1 - p)``).
    y : ndarray
        Class ids (N,) or one-hot rows for softmax; 0/1 (N, K) for sigmoid.
    bins : int, optional
        Equal-width bins over [0, 1]. Default 15.

    Returns
    -------
    dict
        ``"edges"`` (bins + 1,), and per bin ``"confidence"`` (mean confidence), ``"accuracy"``
        (fraction correct) and ``"count"``; empty bins hold NaN and count 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.calibration import reliability_curve
    >>> curve = reliability_curve(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), bins=2)
    >>> curve["count"].tolist(), curve["accuracy"].tolist()
    ([0, 2], [nan, 0.5])
    """
    bins = check_int(bins, name="bins", minimum=1)
    conf, correct = _confidence_and_correct(probs, y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(idx, weights=conf, minlength=bins) / count
        accuracy = np.bincount(idx, weights=correct, minlength=bins) / count
    return {"edges": edges, "confidence": confidence, "accuracy": accuracy, "count": count}


def expected_calibration_error(probs, y, *, bins: int = 15) -> float:
    r"""Expected calibration error: the count-weighted mean gap between accuracy and confidence.

    .. math::

        \mathrm{ECE} = \sum_b \frac{n_b}{N} \left| \mathrm{acc}_b - \mathrm{conf}_b \right|

    over the equal-width confidence bins of :func:`reliability_curve` (Naeini et al. 2015; Guo
    et al. 2017). 0 is perfect calibration.

    Parameters
    ----------
    probs, y : ndarray
        Softmax or sigmoid probabilities and their labels, as for :func:`reliability_curve`.
    bins : int, optional
        Equal-width confidence bins over [0, 1]. Default 15.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.calibration import expected_calibration_error
    >>> expected_calibration_error(np.array([[0.75, 0.25]] * 4), np.array([0, 0, 0, 1]))
    0.0
    """
    curve = reliability_curve(probs, y, bins=bins)
    n = curve["count"]
    keep = n > 0
    gap = np.abs(curve["accuracy"][keep] - curve["confidence"][keep])
    return float(np.sum(n[keep] * gap) / n.sum())


# --------------------------------------------------------------------------------------------------
# regression: error bars


def regression_moments(y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Split a ``[mean, log_var]`` regression output into the mean and the standard deviation.

    Parameters
    ----------
    y_pred : array of shape (N, 2 D)
        The output of :func:`sciconv.models.regressor` with ``uncertainty=True``: D means, then
        D log-variances.

    Returns
    -------
    mean, std : ndarray of shape (N, D), float64
        ``std = exp(0.5 * log_var)`` (``log_var`` clipped to [-80, 80] as in
        :func:`sciconv.losses.gaussian_nll`; the regressor bounds it in standardized units).

    Raises
    ------
    ConfigError
        Not a 2-D array with an even, non-zero number of finite columns.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.calibration import regression_moments
    >>> mean, std = regression_moments(np.array([[1.0, np.log(4.0)], [2.0, 0.0]]))
    >>> mean[:, 0].tolist(), std[:, 0].tolist()
    ([1.0, 2.0], [2.0, 1.0])
    """
    p = np.asarray(y_pred, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0 or p.shape[1] % 2:
        raise ConfigError(
            "y_pred must be a regressor's [mean, log_var] output of shape (N, 2 D); got shape "
            f"{p.shape}"
        )
    if not np.isfinite(p).all():
        raise ConfigError("y_pred must be finite (NaN or inf in the [mean, log_var] output)")
    d = p.shape[1] // 2
    return p[:, :d], np.exp(0.5 * np.clip(p[:, d:], -LOG_VAR_SAFE, LOG_VAR_SAFE))


def _mean_std_truth(y_true, y_pred, std) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if std is None:
        mean, std = regression_moments(y_pred)
    else:
        mean = np.asarray(y_pred, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        mean = mean[:, None] if mean.ndim == 1 else mean
        std = std[:, None] if std.ndim == 1 else std
        if mean.shape != std.shape or mean.ndim != 2:
            raise ConfigError(
                f"mean and std must have the same shape (N,) or (N, D); got {mean.shape} and "
                f"{std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
            raise ConfigError("mean must be finite and std finite and > 0")
    if not mean.size:
        raise ConfigError(f"no samples to score: the predictions are empty (shape {mean.shape})")
    y = np.asarray(y_true, dtype=np.float64)
    y = y.reshape(mean.shape) if y.size == mean.size else y
    if y.shape != mean.shape:
        raise ConfigError(f"y_true must hold {mean.shape} targets; got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ConfigError("y_true must be finite")
    return y, mean, std


def interval_coverage(y_true, y_pred, std=None, *, sigma: float = 1.0) -> float:
    """The fraction of truths within ``±sigma`` predicted standard deviations of the mean.

    For correct Gaussian error bars the coverage is ``erf(sigma / sqrt(2))``: 0.683 at
    ``sigma=1`` (:data:`ONE_SIGMA`), 0.954 at 2. Less means over-confident error bars, more
    means too cautious ones.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, D)
        The true values.
    y_pred : array
        A regressor's ``[mean, log_var]`` output (N, 2 D) (:func:`regression_moments`), or the
        means (N,) or (N, D) when ``std`` is given.
    std : array, optional
        The standard deviations, same shape as the means.
    sigma : float, optional
        Half-width of the interval in standard deviations. Default 1.

    Returns
    -------
    float
        Coverage in [0, 1], over every sample and target.

    Raises
    ------
    ConfigError
        Shapes that do not match, non-finite values, a standard deviation <= 0 or a
        ``sigma`` <= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.calibration import interval_coverage
    >>> interval_coverage([0.0, 1.0, 3.0, -0.5], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0])
    0.75
    >>> interval_coverage([0.0, 3.0], np.array([[0.0, 0.0], [0.0, np.log(4.0)]]), sigma=2)
    1.0
    """
    if isinstance(sigma, bool) or not np.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"sigma must be a finite number > 0; got {sigma!r}")
    y, mean, std = _mean_std_truth(y_true, y_pred, std)
    return float(np.mean(np.abs(y - mean) <= sigma * std))


def fit_variance_scale(
    pred_or_model,
    x_val=None,
    y_val=None,
    *,
    method: str = "nll",
    batch_size: int = 64,
) -> float:
    r"""Fit the factor ``s`` that multiplies a regressor's predicted standard deviations.

    With the validation residuals in units of their predicted error, :math:`z = (y - \mu) /
    \sigma`:

    - ``method="nll"`` (default): the ``s`` that minimizes the Gaussian negative log-likelihood
      of the validation truths, :math:`s = \sqrt{\overline{z^2}}` (closed form);
    - ``method="coverage"``: the ``s`` that puts 68.27 % of the validation truths within
      ``±1 σ``, the :data:`ONE_SIGMA` quantile of :math:`|z|` (robust to outliers, but fixes
      one interval only).

    Parameters
    ----------
    pred_or_model : ndarray of shape (N, 2 D) or keras.Model
        Validation ``[mean, log_var]`` predictions, or the regressor (then ``x_val`` is
        predicted).
    x_val : array or tf.data.Dataset, optional
        With a model: the validation inputs (already normalized) or a dataset of ``(x, y)``
        batches. With predictions: the truths may be passed here instead of ``y_val``.
    y_val : array, optional
        The validation truths (N,) or (N, D).
    method : {"nll", "coverage"}, optional
        See above.
    batch_size : int, optional
        Prediction batch size. Default 64.

    Returns
    -------
    float
        ``s > 0``: > 1 when the error bars were too small (over-confident).

    Raises
    ------
    ConfigError
        Unknown ``method``; predictions or truths of the wrong shape or not finite; no truths.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.calibration import fit_variance_scale
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(0.0, 2.0, 5000)                            # errors of 2 ...
    >>> pred = np.stack([np.zeros(5000), np.zeros(5000)], axis=1)  # ... predicted as 1
    >>> round(fit_variance_scale(pred, y), 1)
    2.0
    >>> round(fit_variance_scale(pred, y, method="coverage"), 1)
    2.0
    """
    method = look_up_option(method, VARIANCE_SCALE_METHODS, name="method")
    batch_size = check_int(batch_size, name="batch_size", minimum=1)
    if isinstance(pred_or_model, keras.Model):
        if x_val is None:
            raise ConfigError(
                "fit_variance_scale(model, x_val, y_val) needs validation inputs x_val"
            )
        p, y_from_ds = _predict(pred_or_model, x_val, batch_size)
        y_val = y_from_ds if y_val is None else y_val
    else:
        p = pred_or_model
        if y_val is None:
            x_val, y_val = None, x_val
        elif x_val is not None:
            raise ConfigError("with predictions pass fit_variance_scale(y_pred, y_val), no x_val")
    if y_val is None:
        raise ConfigError("fit_variance_scale needs the validation truths y_val")
    y, mean, std = _mean_std_truth(y_val, p, None)
    z = np.abs(y - mean) / std
    if method == "nll":
        s = float(np.sqrt(np.mean(z**2)))
    else:
        s = float(np.quantile(z, ONE_SIGMA))
    if not (np.isfinite(s) and s > 0):
        raise ConfigError(
            f"the fitted variance scale is {s}: every validation truth equals its prediction"
        )
    return s


def _check_regressor(model) -> int:
    """The number of targets D of a ``[mean, log_var]`` regressor; ModelError otherwise."""
    if not isinstance(model, keras.Model):
        raise ModelError(not_a_model(model))
    shapes = [tuple(o.shape) for o in model.outputs]
    width = shapes[0][-1] if len(shapes) == 1 and len(shapes[0]) == 2 else None
    meta = get_metadata(model)
    if (
        len(model.inputs) != 1
        or width is None
        or width % 2
        or (meta.get("task") not in (None, "regression"))
        or meta.get("uncertainty") is False
    ):
        raise ModelError(
            f"calibrate_variance needs a regressor with one [mean, log_var] output (N, 2 D), "
            f"built with sciconv.models.regressor(..., uncertainty=True); {model.name!r} has "
            f"task {meta.get('task')!r}, uncertainty {meta.get('uncertainty')!r} and outputs "
            f"{shapes}"
        )
    return width // 2


def calibrate_variance(
    model: keras.Model,
    x_val=None,
    y_val=None,
    *,
    scale: float | None = None,
    method: str = "nll",
    batch_size: int = 64,
) -> keras.Model:
    """Return a ``[mean, log_var]`` regressor whose standard deviations are multiplied by ``s``.

    Parameters
    ----------
    model : keras.Model
        A regressor built with ``sciconv.models.regressor(..., uncertainty=True)`` (any Keras
        model with one (N, 2 D) ``[mean, log_var]`` output works).
    x_val, y_val
        Validation data for :func:`fit_variance_scale` (not needed when ``scale`` is given).
    scale : float, optional
        Use this factor instead of fitting one.
    method : {"nll", "coverage"}, optional
        See :func:`fit_variance_scale`.
    batch_size : int, optional
        Prediction batch size. Default 64.

    Returns
    -------
    keras.Model
        ``Input -> SciconvMetadata -> model -> Dense``, the last a fixed (non-trainable) plain
        Keras ``Dense`` layer that keeps the means and adds ``2 log s`` to the log-variances,
        sharing ``model``'s weights (``model`` itself is not changed). Its metadata is
        ``model``'s plus ``"variance_scale"`` (``s``) and ``"calibration"``
        (``{"method": "variance_scale", "fit": method}``), so it is saved, loaded and exported
        with the model and every predict path applies it.

    Raises
    ------
    ModelError
        ``model`` is not a one-input ``[mean, log_var]`` regressor, or is already calibrated.
    ConfigError
        ``scale`` not a finite number > 0; see :func:`fit_variance_scale`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models import regressor, get_metadata
    >>> from sciconv.calibration import calibrate_variance
    >>> model = regressor((8, 8, 1), 1, filters=(2,), dense=(), uncertainty=True)
    >>> calibrated = calibrate_variance(model, scale=2.0)
    >>> x = np.zeros((1, 8, 8, 1), "float32")
    >>> before, after = np.asarray(model(x)), np.asarray(calibrated(x))
    >>> get_metadata(calibrated)["variance_scale"], round(float(after[0, 1] - before[0, 1]), 4)
    (2.0, 1.3863)
    """
    d = _check_regressor(model)
    meta = dict(get_metadata(model).items())
    if "variance_scale" in meta:
        raise ModelError(
            f"model {model.name!r} is already calibrated (variance scale "
            f"{meta['variance_scale']}); calibrate the uncalibrated model"
        )
    method = look_up_option(method, VARIANCE_SCALE_METHODS, name="method")
    if scale is None:
        if x_val is None:
            raise ConfigError("calibrate_variance needs validation data (x_val, y_val) or scale=")
        scale = fit_variance_scale(model, x_val, y_val, method=method, batch_size=batch_size)
    elif isinstance(scale, bool) or not np.isfinite(scale) or scale <= 0:
        raise ConfigError(f"scale must be a finite number > 0; got {scale!r}")
    scale = float(scale)
    meta.update(variance_scale=scale, calibration={"method": "variance_scale", "fit": method})
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name=f"{model.name}_input")
    x = SciconvMetadata(meta, name=f"{model.name}_calibrated_metadata")(inputs)
    bias = np.concatenate([np.zeros(d), np.full(d, 2.0 * np.log(scale))]).astype("float32")
    shift = keras.layers.Dense(
        2 * d,
        kernel_initializer=keras.initializers.Identity(),
        bias_initializer=keras.initializers.Constant(bias),
        trainable=False,
        dtype="float32",
        name=f"{model.name}_variance_scale",
    )
    return keras.Model(inputs, shift(model(x)), name=f"{model.name}_calibrated")
