"""Issue 20: a classifier trained on small sets of D4-augmented cutouts leaves its start.

Two defaults keep such a run from sitting at chance level: ``fit``'s learning-rate reduction waits
until the loss has left its starting level (:class:`sciconv._fit_schedule.PlateauAwareReduceLR`),
and the classifier's head has no dropout by default. A full training that shows the plateau
takes minutes (``benchmarks/bench_small_galaxies.py``); these tests check the mechanisms.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from sciconv._fit_schedule import PlateauAwareReduceLR, chance_loss, schedule_callbacks
from sciconv.errors import ConfigError
from sciconv.models import classifier, load
from sciconv.models.metadata import get_metadata
from sciconv.training import fit

CHANCE = math.log(2.0)


def _tiny_model(lr: float = 1e-2) -> keras.Model:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def _drive(callback, losses, model) -> list[float]:
    """Feed ``losses`` as epoch ends; return the learning rate after each epoch."""
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"loss": loss})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    return rates


# a run at chance for 8 epochs (small wiggles, no progress), then it learns, then it stalls
PLATEAU = [0.70, 0.694, 0.697, 0.693, 0.699, 0.694, 0.696, 0.693]
LEARN_THEN_STALL = [0.60, 0.45, 0.40, 0.41, 0.42, 0.43]


def test_keras_rule_cuts_the_rate_on_the_starting_plateau():
    # the behaviour the fix avoids: Keras reads the starting plateau as a plateau
    rates = _drive(
        keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_lr=1e-6),
        PLATEAU,
        _tiny_model(),
    )
    assert rates[-1] < 1e-2 / 4


def test_plateau_aware_rule_keeps_the_rate_until_the_loss_drops_then_cuts_it():
    cb = PlateauAwareReduceLR(monitor="loss", factor=0.5, patience=1, min_lr=1e-6)
    rates = _drive(cb, PLATEAU + LEARN_THEN_STALL, _tiny_model())
    assert rates[: len(PLATEAU)] == pytest.approx([1e-2] * len(PLATEAU))
    assert cb.armed_at == len(PLATEAU)  # 0.60 < 0.95 * 0.70
    # armed: 0.60, 0.45, 0.40 improve; 0.41, 0.42, 0.43 do not: halved each epoch (patience 1)
    assert rates[len(PLATEAU) :] == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3, 2.5e-3, 1.25e-3])


def test_a_known_chance_level_is_the_start_when_the_first_epoch_ends_above_it():
    # a fresh classifier's first epoch can end above chance (0.78 > ln 2): measured from it, the
    # wiggles at chance would already count as progress
    losses = [0.78, 0.70, 0.69, 0.70, 0.69, 0.70]
    from_first = PlateauAwareReduceLR(monitor="loss", factor=0.5, patience=1)
    _drive(from_first, losses, _tiny_model())
    assert from_first.armed_at == 1  # 0.70 < 0.95 * 0.78
    from_chance = PlateauAwareReduceLR(monitor="loss", factor=0.5, patience=1, start=CHANCE)
    assert _drive(from_chance, losses, _tiny_model()) == pytest.approx([1e-2] * len(losses))
    assert from_chance.armed_at is None
    # a run that starts below chance is measured from its first epoch
    assert _drive(from_chance, [0.6, 0.5, 0.5], _tiny_model()) == pytest.approx([1e-2, 1e-2, 5e-3])


@pytest.mark.parametrize(
    ("meta", "loss", "expected"),
    [
        ({"task": "classification", "num_classes": 3}, "sparse_categorical_crossentropy", 1.0986),
        ({"task": "classification", "num_classes": 2}, "categorical_crossentropy", CHANCE),
        ({"task": "classification", "num_classes": 2}, "focal", None),
        ({"task": "multilabel", "num_classes": 2}, "binary_crossentropy", None),
        ({"task": "regression"}, "mse", None),
        ({}, "sparse_categorical_crossentropy", None),
    ],
)
def test_chance_loss(meta, loss, expected):
    got = chance_loss(meta, loss)
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-4))


def test_plateau_aware_rule_with_no_start_drop_is_keras_rule():
    keras_rates = _drive(
        keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_lr=1e-6),
        PLATEAU,
        _tiny_model(),
    )
    ours = PlateauAwareReduceLR(monitor="loss", factor=0.5, patience=1, min_lr=1e-6, start_drop=0)
    assert _drive(ours, PLATEAU, _tiny_model()) == pytest.approx(keras_rates)
    assert ours.armed_at == 0


def test_plateau_aware_rule_rearms_for_every_training_call():
    cb = PlateauAwareReduceLR(monitor="loss", factor=0.5, patience=1)
    model = _tiny_model()
    _drive(cb, [1.0, 0.5], model)
    assert cb.armed_at == 1
    _drive(cb, [0.5, 0.5, 0.5], model)  # a new call starting at its own level
    assert cb.armed_at is None


def test_plateau_aware_rule_ignores_a_missing_or_nan_loss():
    cb = PlateauAwareReduceLR(monitor="val_loss", patience=1)
    cb.set_model(_tiny_model())
    cb.on_train_begin()
    cb.on_epoch_end(0, {"loss": 0.5})
    cb.on_epoch_end(1, {"val_loss": float("nan")})
    assert cb.armed_at is None


def test_start_drop_must_be_a_fraction():
    with pytest.raises(ConfigError, match=r"start_drop must be a fraction in \[0, 1\); got 1.5"):
        PlateauAwareReduceLR(start_drop=1.5)
    with pytest.raises(ConfigError, match=r"start must be None or a positive loss value; got -1"):
        PlateauAwareReduceLR(start=-1)


@pytest.mark.parametrize(
    ("reduce_lr", "early_stopping", "kinds", "patience"),
    [
        (True, None, ["PlateauAwareReduceLR"], 3),
        (7, 2, ["PlateauAwareReduceLR", "EarlyStopping"], 7),
        (False, 4, ["EarlyStopping"], None),
        (False, None, [], None),
    ],
)
def test_schedule_callbacks(reduce_lr, early_stopping, kinds, patience):
    cbs = schedule_callbacks(monitor="val_loss", reduce_lr=reduce_lr, early_stopping=early_stopping)
    assert [type(c).__name__ for c in cbs] == kinds
    assert all(c.monitor == "val_loss" for c in cbs)
    if patience is not None:
        assert cbs[0].patience == patience and cbs[0].factor == 0.5 and cbs[0].min_lr == 1e-6


def test_fit_keeps_the_rate_while_a_classifier_is_at_chance():
    # random labels and faint inputs: the loss starts at ln 2 and stays there; Keras' rule
    # (patience 1) would halve the rate after every epoch without a 1e-4 improvement
    rng = np.random.default_rng(0)
    x = 0.01 * rng.normal(size=(64, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 2, size=64)
    keras.utils.set_random_seed(0)
    model = classifier((8, 8, 1), 2, filters=(2,), dense=())
    history = fit(model, (x, y), epochs=4, learning_rate=1e-4, reduce_lr=1, verbose=0, seed=0)
    losses = np.array(history.history["loss"])
    assert np.all(np.abs(losses - CHANCE) < 0.05)  # still at chance: the guard's case
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-4)


def test_classifier_head_has_no_dropout_by_default():
    model = classifier((16, 16, 1), 2, filters=(4,), dense=(8,))
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert get_metadata(model)["architecture"]["dropout"] == 0.0


def test_a_saved_classifier_with_dropout_keeps_it(tmp_path):
    # models saved before the default changed record dropout=0.3: they load (and rebuild from
    # their recorded architecture) with it
    model = classifier((16, 16, 1), 2, filters=(4,), dense=(8,), dropout=0.3)
    model.save(tmp_path / "old.keras")
    loaded = load(tmp_path / "old.keras")
    drops = [layer for layer in loaded.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in drops] == [0.3]
    arch = dict(get_metadata(loaded)["architecture"])
    assert arch.pop("builder") == "classifier"
    arch.pop("multilabel")
    rebuilt = classifier((16, 16, 1), 2, multilabel=False, **arch)
    assert [type(a).__name__ for a in rebuilt.layers] == [type(a).__name__ for a in model.layers]
    x = np.random.default_rng(1).normal(size=(3, 16, 16, 1)).astype("float32")
    rebuilt.set_weights(loaded.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0), 1e-5)


class _Rates(keras.callbacks.Callback):
    """The learning rate each optimizer step ran at, and the loss after it."""

    def __init__(self):
        super().__init__()
        self.rates, self.losses = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        self.losses.append(float(logs["loss"]))


def test_fit_warms_the_learning_rate_up_over_the_first_epoch():
    """A classifier fit compiles starts at rate / N and reaches the rate after the N steps of
    the first epoch; warmup=None starts at the rate; a model the caller compiled, a second call
    (the optimizer has taken its steps) and a segmenter are left alone."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    steps = 6  # 48 images, batch 8
    runs = {}
    for warmup in ("auto", None, 3):
        keras.utils.set_random_seed(0)
        model = classifier((8, 8, 1), 2, filters=(4,), dense=(4,))
        rates = _Rates()
        fit(model, (x, y), epochs=2, batch_size=8, verbose=0, tensorboard=False, warmup=warmup,
            reduce_lr=False, callbacks=[rates])  # fmt: skip
        runs[warmup] = rates.rates
    np.testing.assert_allclose(runs["auto"][:steps], 1e-3 * np.arange(1, steps + 1) / steps)
    np.testing.assert_allclose(runs["auto"][steps:], 1e-3)
    np.testing.assert_allclose(runs[None], 1e-3)
    np.testing.assert_allclose(runs[3], [1e-3 / 3, 2e-3 / 3] + [1e-3] * (2 * steps - 2))
    again = _Rates()  # the same model trained further: no second warm-up
    fit(model, (x, y), epochs=1, batch_size=8, verbose=0, tensorboard=False, warmup=10,
        reduce_lr=False, callbacks=[again])  # fmt: skip
    np.testing.assert_allclose(again.rates, 1e-3)
    own = classifier((8, 8, 1), 2, filters=(4,), dense=(4,))
    own.compile(optimizer=keras.optimizers.Adam(5e-3), loss="sparse_categorical_crossentropy")
    mine = _Rates()
    fit(own, (x, y), epochs=1, batch_size=8, verbose=0, tensorboard=False, callbacks=[mine])
    np.testing.assert_allclose(mine.rates, 5e-3)
    # a segmenter (no dense head; its short runs lost to the warm-up) starts at the rate
    from sciconv.models import segmenter

    seg = segmenter((8, 8, 1), 2, depth=1, filters=4)
    masks = (x[..., 0] > 0).astype("int64")
    flat = _Rates()
    fit(seg, (x, masks), epochs=1, batch_size=8, verbose=0, tensorboard=False, callbacks=[flat])
    np.testing.assert_allclose(flat.rates, 1e-3)


def test_warmup_keeps_a_large_dense_head_from_blowing_up():
    """The reason for the warm-up: 64 px cutouts into the default classifier (8,192 features
    per dense unit), Adam at 1e-3: without it the loss leaps far above chance in the first
    steps; with it, it stays near chance (measured 0.7-4 against 8-23 at 128 px)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 64, 64, 1)).astype("float32")
    x[48:, 24:40, 24:40] += 1.0  # a bright centre: class 1
    y = np.repeat([0, 1], 48).astype("int64")
    peaks = {}
    for warmup in ("auto", None):
        keras.utils.set_random_seed(0)
        model = classifier((64, 64, 1), 2)
        rates = _Rates()
        fit(model, (x, y), epochs=1, batch_size=8, verbose=0, tensorboard=False, warmup=warmup,
            callbacks=[rates])  # fmt: skip
        peaks[warmup] = max(rates.losses)
    assert peaks[None] > 3 * CHANCE, peaks
    assert peaks["auto"] < 0.5 * peaks[None], peaks
