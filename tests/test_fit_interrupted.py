"""The stop button in a notebook: ``fit`` interrupted, then the same call run again in the same
process (QA52 state #2, #3)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import sciconv as sc

_KW = dict(epochs=2, batch_size=8, seed=0, verbose=0, tensorboard=False, reduce_lr=False)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    x[y == 1] += 0.5
    return (x[:40], y[:40]), (x[40:], y[40:])


def _model():
    keras.utils.set_random_seed(0)
    return sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())


class _StopAt(keras.callbacks.Callback):
    def __init__(self, batch):
        super().__init__()
        self.batch = batch

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            raise KeyboardInterrupt


class _Rates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        rate = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        self.rates.append(float(rate))


def _fit(model, tmp_path, name, callbacks=()):
    train, val = _data()
    return sc.training.fit(
        model, train, validation_data=val, workdir=tmp_path / name, callbacks=list(callbacks), **_KW
    )


def test_a_call_stopped_in_its_first_epoch_runs_again_as_a_fresh_one(tmp_path):
    """It trained on from the stopped epoch's weights with the learning rate the warm-up had
    reached, while config.json called it a fresh, exact run."""
    ref, ref_rates = _model(), _Rates()
    _fit(ref, tmp_path, "ref", [ref_rates])
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        _fit(model, tmp_path, "run", [_StopAt(2)])
    assert np.isfinite(model.evaluate(*_data()[1], verbose=0)[0])  # still compiled (review)
    rates = _Rates()
    _fit(model, tmp_path, "run", [rates])
    assert rates.rates == pytest.approx(ref_rates.rates)  # the warm-up again, not 2/3 of 1e-3
    for a, b in zip(ref.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    log, ref_log = sc.runs.read_log(tmp_path / "run"), sc.runs.read_log(tmp_path / "ref")
    np.testing.assert_allclose(log["val_loss"], ref_log["val_loss"], rtol=1e-5)


def test_a_call_stopped_while_its_first_step_is_traced_runs_again(tmp_path, monkeypatch):
    """Stopped while Adam made its slot variables: the rerun failed with TensorFlow internals
    ('Creating variables on a non-first call', 'Adam has no attribute _momentums')."""
    from keras.src.optimizers import base_optimizer

    original = base_optimizer.BaseOptimizer.add_variable_from_reference
    calls = []

    def stopped(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    ref = _model()
    _fit(ref, tmp_path, "ref")
    model = _model()
    monkeypatch.setattr(base_optimizer.BaseOptimizer, "add_variable_from_reference", stopped)
    with pytest.raises(KeyboardInterrupt):
        _fit(model, tmp_path, "run")
    monkeypatch.setattr(base_optimizer.BaseOptimizer, "add_variable_from_reference", original)
    _fit(model, tmp_path, "run")
    for a, b in zip(ref.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_without_a_run_folder_the_trained_weights_stay_and_a_callers_optimizer_too():
    """No folder to resume from: what the stopped call trained is kept (Keras' behaviour); a
    model the caller compiled keeps its optimizer."""
    train, val = _data()
    model = _model()
    start = [w.copy() for w in model.get_weights()]
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(model, train, validation_data=val, callbacks=[_StopAt(2)], **_KW)
    assert any(not np.array_equal(a, b) for a, b in zip(start, model.get_weights()))
    assert model.compiled and np.isfinite(model.evaluate(*val, verbose=0)[0])
    rates, fresh = _Rates(), _Rates()  # the next fit compiles afresh: its warm-up again
    sc.training.fit(model, train, validation_data=val, callbacks=[rates], **_KW)
    sc.training.fit(_model(), train, validation_data=val, callbacks=[fresh], **_KW)
    assert rates.rates == pytest.approx(fresh.rates) and rates.rates[0] < 1e-3 / 2
    mine = _model()
    mine.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(mine, train, validation_data=val, callbacks=[_StopAt(1)], **_KW)
    assert mine.compiled and isinstance(mine.optimizer, keras.optimizers.SGD)


def test_a_callers_stepped_optimizer_makes_the_rerun_not_exact(tmp_path):
    """A model the caller compiled: its optimizer stepped in the stopped call stays, so the
    rerun on the folder differed from an uninterrupted one while config.json said exact
    (review)."""
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    with pytest.raises(KeyboardInterrupt):
        _fit(model, tmp_path, "run", [_StopAt(2)])
    _fit(model, tmp_path, "run")
    config = sc.training.read_config(tmp_path / "run")
    assert config["resume_exact"] is False
    assert "optimizer was stepped by an interrupted call" in config["resume_note"]
    again = _model()  # a model compiled and trained without a stop: exact
    again.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    _fit(again, tmp_path, "clean")
    assert sc.training.read_config(tmp_path / "clean")["resume_exact"] is True
