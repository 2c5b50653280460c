"""A regressor learns standardized targets and gives means and error bars in the targets' units.

QA: targets were used in raw units (a flux in ADU: loss 1e9, every prediction about 0, "done";
r_eff: RMSE 3.25 against 3.50 for the training mean, 2.21 z-scored by hand), and the log-variance
was clipped to [-15, 15] in the targets' units, so no 1-sigma error bar could exceed 1808 or fall
below 5.5e-4 and calibrate_variance's factor was swallowed (1-sigma coverage 0.034)."""

from __future__ import annotations

import numpy as np
import pytest

import sciconv as sc
from sciconv.calibration import calibrate_variance, interval_coverage, regression_moments
from sciconv.models.layers import TargetScale


def _blobs(n: int, seed: int):
    """Images of one Gaussian blob whose total flux (1e4 .. 1e6) is the target."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16]
    blob = np.exp(-((yy - 7.5) ** 2 + (xx - 7.5) ** 2) / 8.0)
    flux = 10 ** rng.uniform(4, 6, n)
    x = flux[:, None, None] * blob / blob.sum() + rng.normal(0, 5, (n, 16, 16))
    return x[..., None].astype("float32"), flux.astype("float32")


def test_error_bars_are_not_capped_in_the_targets_units():
    layer = TargetScale(1, uncertainty=True)
    layer.adapt(np.array([[0.0], [2e5]]))  # scale 1e5
    out = np.asarray(layer(np.array([[0.0, 2 * np.log(0.4)]], "float32")))
    mean, std = regression_moments(out)
    assert mean[0, 0] == pytest.approx(1e5) and std[0, 0] == pytest.approx(4e4, rel=1e-5)
    assert std[0, 0] > 1808  # the old cap
    tiny = TargetScale(1, uncertainty=True)
    tiny.adapt(np.array([[0.0], [2e-3]]))  # targets of order 1e-3
    _, std = regression_moments(np.asarray(tiny(np.array([[0.0, 2 * np.log(0.1)]], "float32"))))
    assert std[0, 0] == pytest.approx(1e-4, rel=1e-5)  # below the old floor of 5.5e-4
    # calibration's factor acts on every error bar (it was swallowed by the clip)
    model = sc.models.regressor((8, 8, 1), filters=(2,), dense=(), uncertainty=True)
    model.get_layer("regressor_head_target_scale").adapt(np.array([[0.0], [2e5]]))
    x = np.zeros((1, 8, 8, 1), "float32")
    before = regression_moments(model.predict(x, verbose=0))[1][0, 0]
    after = regression_moments(calibrate_variance(model, scale=1e4).predict(x, verbose=0))[1]
    assert after[0, 0] == pytest.approx(1e4 * before, rel=1e-4)


def test_a_regressor_learns_fluxes_in_adu_with_meaningful_error_bars(tmp_path):
    x, y = _blobs(256, 0)
    xv, yv = _blobs(128, 1)
    model = sc.models.regressor((16, 16, 1), filters=(8, 16), dense=(16,), uncertainty=True)
    sc.models.set_metadata(model, normalization=sc.preprocess.RAW_NORMALIZATION)
    sc.training.fit(
        model, (x / 1e4, y), (xv / 1e4, yv), epochs=30, batch_size=32, seed=0, tensorboard=False
    )
    meta = sc.models.get_metadata(model)
    assert meta["target_scale"]["offset"][0] == pytest.approx(float(y.mean()), rel=1e-4)
    xt, yt = _blobs(128, 2)
    mean, std = regression_moments(model.predict(xt / 1e4, verbose=0))
    rmse = float(np.sqrt(np.mean((mean[:, 0] - yt) ** 2)))
    assert rmse < 0.3 * float(yt.std())  # predicting the training mean scores 1.0 here
    assert np.median(std) > 1808  # error bars in ADU, past the old cap
    # calibrated on the validation set, about 68 % of held-out truths within 1 sigma (0.034
    # when the clip swallowed the factor)
    calibrated = calibrate_variance(model, xv / 1e4, yv, method="coverage")
    coverage = interval_coverage(yt, calibrated.predict(xt / 1e4, verbose=0))
    assert 0.5 < coverage < 0.85
    path = tmp_path / "flux.keras"
    model.save(path)
    again = sc.models.load(path)
    np.testing.assert_allclose(again.predict(xv / 1e4, verbose=0), model.predict(xv / 1e4,
                               verbose=0), rtol=1e-5)  # fmt: skip
    # fine-tuning keeps the recorded scale (the targets of a smaller set do not reset it)
    offset = float(again.get_layer("regressor_head_target_scale").offset.numpy()[0])
    sc.training.fit(again, (x[:32] / 1e4, y[:32]), epochs=1, batch_size=32, tensorboard=False)
    assert float(again.get_layer("regressor_head_target_scale").offset.numpy()[0]) == offset


def test_a_clone_of_a_fitted_regressor_is_set_anew():
    """keras.models.clone_model copies the metadata (target_scale) but not the layer's weights:
    fit took the record for the layer and trained the clone in raw units (review)."""
    import keras

    x, y = _blobs(64, 3)
    model = sc.models.regressor((16, 16, 1), filters=(4,), dense=(), uncertainty=True)
    sc.models.set_metadata(model, normalization=sc.preprocess.RAW_NORMALIZATION)
    sc.training.fit(model, (x / 1e4, y), epochs=1, batch_size=32, tensorboard=False)
    clone = keras.models.clone_model(model)
    layer = clone.get_layer("regressor_head_target_scale")
    assert layer.is_identity()
    sc.training.fit(clone, (x / 1e4, y), epochs=1, batch_size=32, tensorboard=False)
    assert float(layer.offset.numpy()[0]) == pytest.approx(float(y.mean()), rel=1e-4)


def test_a_refused_workdir_leaves_the_model_as_it_was(tmp_path):
    """Seen last session: a regressor's target scale and the dataset metadata were set on the
    model before fit refused the workdir (a previous run there, no overwrite)."""
    x, y = _blobs(8, 0)
    run = tmp_path / "run"
    first = sc.models.regressor((16, 16, 1), filters=(2,), dense=())
    sc.training.fit(first, (x, y), epochs=1, workdir=run, verbose=0, tensorboard=False)
    model = sc.models.regressor((16, 16, 1), filters=(2,), dense=())
    before = sc.models.get_metadata(model)
    with pytest.raises(sc.errors.OutputExistsError, match="holds a previous run"):
        sc.training.fit(model, (x * 3, y * 5), epochs=1, workdir=run, verbose=0)
    assert sc.models.get_metadata(model) == before and "target_scale" not in before
    assert model.get_layer("regressor_head_target_scale").is_identity()
    (tmp_path / "file").write_text("x")
    with pytest.raises(sc.errors.ConfigError, match="not a folder"):
        sc.training.fit(model, (x, y), epochs=1, workdir=tmp_path / "file", verbose=0)
    assert model.get_layer("regressor_head_target_scale").is_identity()
