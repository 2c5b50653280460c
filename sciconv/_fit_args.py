"""The argument checks of :func:`sciconv.training.fit`: every refusal before anything runs."""

from __future__ import annotations

import math
import numbers
import os

import keras
import tensorflow as tf

from sciconv._fork import refuse_forked_tensorflow
from sciconv._validation import not_a_model
from sciconv.errors import ConfigError, ModelError

__all__ = ["validate_fit_args", "validate_fit_values"]


def validate_fit_args(
    model,
    train,
    validation_data,
    epochs,
    learning_rate,
    early_stopping,
    reduce_lr,
    steps_per_epoch,
    seed,
    warmup="auto",
    batch_size=32,
    verbose="auto",
):
    """Refuse arguments of :func:`sciconv.training.fit` that cannot work, before anything runs.

    Raises
    ------
    ModelError
        ``model`` is not a Keras model.
    ConfigError
        Any other argument of the wrong type or out of range (the message names it).

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> validate_fit_args(model, (None, None), None, 0, 1e-3, None, True, None, None)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: epochs must be an int >= 1; got 0
    """
    if not isinstance(model, keras.Model):
        raise ModelError(not_a_model(model))
    refuse_forked_tensorflow("train (sciconv.training.fit)")
    if isinstance(train, (str, os.PathLike)):
        raise ConfigError(
            f"train must be a tf.data.Dataset or an (x, y) tuple of arrays; got the path {train!r}"
            " (build a dataset with sciconv.datasets.from_folder / from_pairs first)"
        )
    for value, name in ((train, "train"), (validation_data, "validation_data")):
        if value is None and name == "validation_data":
            continue
        if isinstance(value, tf.data.Dataset):
            continue
        if isinstance(value, tuple) and len(value) in (2, 3):
            continue
        raise ConfigError(
            f"{name} must be a tf.data.Dataset or an (x, y) tuple of arrays; got "
            f"{type(value).__name__}"
        )
    validate_fit_values(
        epochs,
        learning_rate,
        early_stopping,
        reduce_lr,
        steps_per_epoch,
        seed,
        warmup,
        batch_size=batch_size,
        verbose=verbose,
    )


def validate_fit_values(
    epochs=1,
    learning_rate=1e-3,
    early_stopping=None,
    reduce_lr=True,
    steps_per_epoch=None,
    seed=None,
    warmup="auto",
    batch_size=32,
    verbose="auto",
) -> None:
    """The checks of :func:`validate_fit_args` that need no model or data (``sciconv train``
    runs them before it reads the data).

    Examples
    --------
    >>> validate_fit_values(epochs="three")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: epochs must be an int >= 1; got 'three'
    >>> validate_fit_values(batch_size=0)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: batch_size must be an int >= 1; got 0
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be an int >= 1; got {epochs!r}")
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, numbers.Real)  # numpy floats too (QA)
        or not (learning_rate > 0 and math.isfinite(learning_rate))
    ):
        raise ConfigError(f"learning_rate must be a positive number; got {learning_rate!r}")
    if early_stopping is not None and (
        isinstance(early_stopping, bool)
        or not isinstance(early_stopping, int)
        or early_stopping < 1
    ):
        raise ConfigError(
            f"early_stopping must be None (off) or a patience in epochs (int >= 1); got "
            f"{early_stopping!r}"
        )
    if not isinstance(reduce_lr, bool) and (not isinstance(reduce_lr, int) or reduce_lr < 1):
        raise ConfigError(
            f"reduce_lr must be True, False or a patience in epochs (int >= 1); got {reduce_lr!r}"
        )
    if steps_per_epoch is not None and (
        isinstance(steps_per_epoch, bool)
        or not isinstance(steps_per_epoch, int)
        or steps_per_epoch < 1
    ):
        raise ConfigError(f"steps_per_epoch must be None or an int >= 1; got {steps_per_epoch!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"seed must be None or an int >= 0; got {seed!r}")
    if warmup not in ("auto", None) and (
        isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0
    ):
        raise ConfigError(f"warmup must be 'auto', None or a number of steps >= 0; got {warmup!r}")
    if isinstance(batch_size, bool) or not hasattr(batch_size, "__index__") or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1; got {batch_size!r}")
    if not (isinstance(verbose, str) and verbose == "auto") and (
        isinstance(verbose, bool)
        or not hasattr(verbose, "__index__")
        or int(verbose) not in (0, 1, 2)
    ):
        raise ConfigError(
            f"verbose must be 'auto', 0, 1 or 2 (as in keras.Model.fit); got {verbose!r}"
        )
