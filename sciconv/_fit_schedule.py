"""The learning-rate schedule and stopping rule of :func:`sciconv.training.fit`.

``fit(reduce_lr=...)`` halves the learning rate when the monitored loss stops improving, but
only once training has left its starting plateau: :class:`PlateauAwareReduceLR` does nothing
while the loss is still within ``start_drop`` (5 %) of its starting level: its first-epoch value,
or for a classifier compiled by ``fit`` the chance level ``ln K`` when that is lower (the first
epoch of a fresh model can end above chance). A classifier whose
classes differ only in a weak, second-order cue (spiral arms against smooth disks, trained with
D4 flips and rotations, which remove every orientation cue) sits near chance (cross-entropy
``ln K``) for tens of epochs before it starts to learn; Keras' ``ReduceLROnPlateau`` reads that
as a plateau and halves the rate every few epochs, which stretches the wait further or ends it
for good (measured in ``benchmarks/bench_small_galaxies.py``). Once the loss has dropped, the
usual rule applies.

Examples
--------
>>> from sciconv._fit_schedule import schedule_callbacks
>>> [type(c).__name__ for c in schedule_callbacks(monitor="loss", reduce_lr=True,
...                                               early_stopping=2)]
['PlateauAwareReduceLR', 'EarlyStopping']
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras

from sciconv.errors import ConfigError

__all__ = ["LinearWarmup", "PlateauAwareReduceLR", "chance_loss", "schedule_callbacks"]

#: ``fit(warmup="auto")`` warms up over the first epoch, but never more steps than this.
WARMUP_MAX_STEPS = 1000


class LinearWarmup(keras.callbacks.Callback):
    """Raise the learning rate linearly to its set value over the first optimizer steps.

    Adam's first updates move every weight by about the full learning rate, whatever its
    gradient: in a classifier whose flattened features feed a large dense layer (a 128 px
    cutout: 32,768 inputs per unit) those coherent steps throw the logits far off and the loss
    jumps to 10-20 within a few batches, killing ReLU units (measured in
    ``benchmarks/bench_small_galaxies.py``). Starting at ``rate / steps`` and reaching the rate
    after ``steps`` steps avoids that; a resumed run (optimizer steps already taken) is left
    alone.

    Parameters
    ----------
    steps : int or "auto"
        Warm-up length in optimizer steps; ``"auto"``: one epoch (Keras' ``params["steps"]``),
        at most :data:`WARMUP_MAX_STEPS` (100 when the epoch length is unknown).

    Examples
    --------
    >>> LinearWarmup(50).steps
    50
    """

    def __init__(self, steps: int | str = "auto"):
        super().__init__()
        if steps != "auto" and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ConfigError(
                f"warmup must be 'auto', None or a number of steps >= 1; got {steps!r}"
            )
        self.steps = steps
        self._done = self._total = 0  # optimizer steps taken, steps of the warm-up
        self._rate = 0.0
        self._set_rate: float | None = None

    def set_model(self, model):
        super().set_model(model)
        # the set rate, read before a resumed run's BackupAndRestore puts back the optimizer of
        # the interrupted one (mid warm-up: a fraction of the rate, which it then kept)
        opt = getattr(model, "optimizer", None)
        rate = None if opt is None else getattr(opt, "learning_rate", None)
        try:
            self._set_rate = None if rate is None else float(keras.ops.convert_to_numpy(rate))
        except (TypeError, ValueError):  # a schedule: refused when the warm-up starts
            self._set_rate = None

    def on_train_begin(self, logs=None):
        opt = self.model.optimizer
        steps = self.steps
        if steps == "auto":
            steps = min(int(self.params.get("steps") or 100), WARMUP_MAX_STEPS)
        self._done = int(keras.ops.convert_to_numpy(opt.iterations))  # resumed: steps taken
        self._total = int(steps)
        current = float(keras.ops.convert_to_numpy(opt.learning_rate))
        self._rate = current if self._set_rate is None else self._set_rate

    def on_train_batch_begin(self, batch, logs=None):
        if self._done >= self._total:
            return
        self._done += 1
        try:
            self.model.optimizer.learning_rate = self._rate * self._done / self._total
        except (TypeError, ValueError, AttributeError) as err:  # a schedule, not a rate
            raise ConfigError(
                f"warmup needs an optimizer with a constant learning rate ({err}); compile with "
                "a number or pass warmup=None"
            ) from None


class LearningRateLog(keras.callbacks.Callback):
    """Put the rate each epoch trained at into its logs, first, so ``log.csv`` (whose columns
    Keras fixes at the first epoch) and the history have it for every epoch; the rate rules
    only wrote it on epochs they acted on.

    Examples
    --------
    >>> LearningRateLog().__class__.__name__
    'LearningRateLog'
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            logs["learning_rate"] = float(rate)


class PlateauAwareReduceLR(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` that waits until the monitored value has left its starting level.

    Parameters
    ----------
    start_drop : float
        The rule is armed once the monitored value is at least this fraction below its
        starting level (0.05: 5 % lower). Until then the learning rate is left alone. 0 arms it
        at once (Keras' own behaviour).
    start : float, optional
        A known starting level, e.g. the chance-level loss ``ln K`` of a K-class classifier
        trained with cross-entropy. The starting level is the lower of it and the value after
        the first epoch of the call; None: the first-epoch value.
    **kwargs
        Passed to :class:`keras.callbacks.ReduceLROnPlateau` (``monitor``, ``factor``,
        ``patience``, ``min_lr``, ...).

    Attributes
    ----------
    armed_at : int or None
        The epoch (0-based) from which the rule acts; None while the loss is still at its
        starting level.

    Examples
    --------
    >>> cb = PlateauAwareReduceLR(monitor="loss", start_drop=0.05, start=0.693, patience=1)
    >>> cb.armed_at is None
    True
    """

    def __init__(self, *, start_drop: float = 0.05, start: float | None = None, **kwargs):
        if not 0 <= start_drop < 1:
            raise ConfigError(f"start_drop must be a fraction in [0, 1); got {start_drop!r}")
        if start is not None and not (math.isfinite(start) and start > 0):
            raise ConfigError(f"start must be None or a positive loss value; got {start!r}")
        super().__init__(**kwargs)
        self.start_drop = float(start_drop)
        self.start = None if start is None else float(start)
        self.armed_at: int | None = None
        self._start: float | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.armed_at = None
        self._start = None

    def on_epoch_end(self, epoch, logs=None):
        if self.armed_at is None:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(value):
                return
            if self._start is None:
                self._start = float(value) if self.start is None else min(self.start, value)
            if self.start_drop and value > (1.0 - self.start_drop) * self._start:
                return  # still on the starting plateau: keep the rate
            self.armed_at = epoch
        super().on_epoch_end(epoch, logs)


def chance_loss(metadata: Mapping, loss) -> float | None:
    """The loss of a classifier that has learnt nothing: ``ln K`` for a K-class cross-entropy.

    Parameters
    ----------
    metadata : mapping
        The model's sciconv metadata (``task``, ``num_classes``).
    loss : str or object
        The compiled loss.

    Returns
    -------
    float or None
        ``ln K``; None for any other task or loss (the starting level is then the first
        epoch's loss).

    Examples
    --------
    >>> meta = {"task": "classification", "num_classes": 2}
    >>> round(chance_loss(meta, "sparse_categorical_crossentropy"), 4)
    0.6931
    >>> print(chance_loss({"task": "regression"}, "mse"))
    None
    """
    cross_entropy = ("sparse_categorical_crossentropy", "categorical_crossentropy")
    k = metadata.get("num_classes")
    if metadata.get("task") != "classification" or not isinstance(loss, str) or not k:
        return None
    return math.log(int(k)) if loss in cross_entropy and int(k) >= 2 else None


def schedule_callbacks(
    *,
    monitor: str,
    reduce_lr: bool | int,
    early_stopping: int | None,
    start_loss: float | None = None,
    warmup: int | str | None = None,
) -> list[keras.callbacks.Callback]:
    """The learning-rate and early-stopping callbacks of :func:`sciconv.training.fit`.

    Parameters
    ----------
    monitor : str
        ``"val_loss"`` or ``"loss"``.
    reduce_lr : bool or int
        False: constant rate. True (patience 3) or a patience in epochs: halve the rate (down to
        1e-6) when ``monitor`` has not improved for that many epochs, once it has dropped 5 %
        below its starting level (:class:`PlateauAwareReduceLR`).
    early_stopping : int or None
        Patience of ``keras.callbacks.EarlyStopping`` (best weights restored); None: off.
    start_loss : float, optional
        The loss of a model that has learnt nothing (``ln K`` for a K-class cross-entropy), if
        known: see ``start`` of :class:`PlateauAwareReduceLR`.
    warmup : int, "auto" or None
        Steps of :class:`LinearWarmup` (first in the list); None: none.

    Returns
    -------
    list of keras.callbacks.Callback

    Examples
    --------
    >>> schedule_callbacks(monitor="val_loss", reduce_lr=5, early_stopping=None)[0].patience
    5
    """
    cbs: list[keras.callbacks.Callback] = [] if warmup is None else [LinearWarmup(warmup)]
    if reduce_lr:
        patience = 3 if reduce_lr is True else int(reduce_lr)
        cbs.append(
            PlateauAwareReduceLR(
                monitor=monitor,
                factor=0.5,
                patience=patience,
                min_lr=1e-6,
                verbose=0,
                start=start_loss,
            )
        )
    if early_stopping is not None:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=early_stopping, restore_best_weights=True
            )
        )
    return cbs
