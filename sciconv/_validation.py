"""Private helpers that validate arguments once, at the public boundary.

Examples
--------
>>> look_up_option("max", ("max", "avg"), name="pooling")
'max'
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence

import numpy as np

from sciconv.errors import ConfigError


def look_up_option(value, allowed: Iterable, *, name: str, error=ConfigError, path=None):
    """Return ``value`` if it is one of ``allowed``; otherwise raise ``error`` naming the choices.

    The message names the argument, the allowed values, what was received and, for strings, the
    closest allowed value ("did you mean ...").

    Examples
    --------
    >>> look_up_option("avg", ("max", "avg"), name="pooling")
    'avg'
    >>> look_up_option("mx", ("max", "avg"), name="pooling")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: pooling must be one of 'max', 'avg'; got 'mx' (did you mean 'max'?)
    >>> look_up_option("D4", ("d4",), name="tta")  # case alone differs: still a suggestion
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: tta must be one of 'd4'; got 'D4' (did you mean 'd4'?)
    """
    allowed = tuple(allowed)
    if value in allowed:
        return value
    listed = ", ".join(repr(a) for a in allowed)
    hint = ""
    if isinstance(value, str):
        same_letters = [a for a in allowed if isinstance(a, str) and a.lower() == value.lower()]
        close = same_letters or difflib.get_close_matches(value, [str(a) for a in allowed], n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    raise error(f"{name} must be one of {listed}; got {value!r}{hint}", path=path)


def is_number(value) -> bool:
    """Whether ``value`` is a real number (Python or numpy; a bool is not one).

    Examples
    --------
    >>> import numpy as np
    >>> is_number(0.5), is_number(np.int64(3)), is_number(True), is_number("0.5")
    (True, True, False, False)
    """
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_int(value, *, name: str, minimum: int, error=ConfigError) -> int:
    """Return ``value`` as a python int if it is an int (numpy ints too, not bool) ``>= minimum``.

    Otherwise raise ``error`` naming the argument, the bound and what was received.

    Examples
    --------
    >>> check_int(3, name="depth", minimum=1)
    3
    >>> check_int(0, name="depth", minimum=1)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: depth must be an int >= 1; got 0
    >>> check_int(True, name="depth", minimum=1)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: depth must be an int >= 1; got True
    """
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < minimum:
        raise error(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def check_bool(value, *, name: str, error=ConfigError) -> bool:
    """Return ``value`` if it is True or False (numpy's too); otherwise raise ``error`` naming
    the argument (a truthy ``"no"`` must not mean yes).

    Examples
    --------
    >>> check_bool(False, name="overwrite")
    False
    >>> check_bool("no", name="overwrite")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: overwrite must be True or False; got 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be True or False; got {value!r}")
    return value


def standardize_tuple(value, n: int, *, name: str) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ``n`` positive ints (an int is repeated ``n`` times).

    Examples
    --------
    >>> standardize_tuple(64, 2, name="image_size")
    (64, 64)
    >>> standardize_tuple((32, 48), 2, name="image_size")
    (32, 48)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    if not isinstance(value, Sequence) or len(value) != n:
        raise ConfigError(f"{name} must be an int or a sequence of {n} ints; got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not hasattr(v, "__index__"):  # ints and numpy ints
            raise ConfigError(f"{name} must hold ints; got {value!r}")
        v = int(v)
        if v <= 0:
            raise ConfigError(f"{name} must hold positive ints; got {value!r}")
        out.append(v)
    return tuple(out)


def refuse_path(value, *, name: str, reader: str = "sciconv.io.read", error=ConfigError) -> None:
    """Raise ``error`` when ``value`` is a file name (str, bytes or path) where pixels are
    expected, saying which reader turns it into them (numpy's own message, "got shape ()" or
    "could not convert string to float", named neither).

    Examples
    --------
    >>> refuse_path([[1, 2]], name="labels")  # pixels: nothing to say
    >>> refuse_path("labels.tif", name="labels", reader="sciconv.io.read_labels")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: labels must be pixels (an array), not the file name ...
    """
    if isinstance(value, (str, bytes, os.PathLike)):
        raise error(
            f"{name} must be pixels (an array), not the file name {str(value)!r}; read it "
            f"first with {reader}"
        )


def refuse_swapped(path, data, *, call: str) -> None:
    """Raise :class:`~sciconv.errors.ConfigError` when a writer got its file name as the data
    and the data as the file name (``io.write`` takes ``(path, data)``, the postprocess writers
    ``(data, path)``: the natural swap gave a bare ``TypeError`` from ``os.fspath``).

    Examples
    --------
    >>> refuse_swapped("a.tif", [[1]], call="sciconv.io.write(path, data)")  # right order
    >>> refuse_swapped([[1]], "a.tif", call="sciconv.io.write(path, data)")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: sciconv.io.write(path, data): the arguments look swapped: ...
    """
    names = (str, bytes, os.PathLike)
    if isinstance(data, names) and not isinstance(path, names):
        raise ConfigError(
            f"{call}: the arguments look swapped: the file name {os.fsdecode(data)!r} was given "
            f"as the data and a {type(path).__name__} as the file name"
        )


def not_whole(values) -> np.ndarray:
    """The distinct values of a numeric array that are not whole numbers (NaN, inf, 0.5).

    One rule for every place that takes class ids from numbers (datasets, fit, calibration).

    Examples
    --------
    >>> not_whole([0.0, 1.0, 0.5, np.nan]).tolist()
    [0.5, nan]
    >>> not_whole(np.array([3, 4])).size
    0
    """
    y = np.asarray(values)
    if y.dtype.kind in "biu":
        return y[:0].reshape(-1)
    finite = np.isfinite(y)
    return np.unique(y[~finite | (np.mod(np.where(finite, y, 0), 1) != 0)])


def is_one_hot(rows) -> bool:
    """True when ``rows`` is a numeric ``(N, K)`` array with a single 1 and zeros in each row.

    Examples
    --------
    >>> is_one_hot([[0, 1], [1, 0]]), is_one_hot([[0.5, 0.5], [1, 0]])
    (True, False)
    """
    y = np.asarray(rows)
    return bool(
        y.ndim == 2
        and y.dtype.kind in "biuf"
        and np.all((y == 0) | (y == 1))
        and np.all(y.sum(axis=1) == 1)
    )


def not_a_model(model, name: str = "model") -> str:
    """The message for a ``model`` argument that is not a Keras model; a path names the loader.

    Examples
    --------
    >>> not_a_model("runs/best.keras")
    'model must be a keras.Model; got str (a file? load it: sciconv.models.load(path))'
    """
    hint = ""
    if isinstance(model, (str, os.PathLike)):
        hint = " (a file? load it: sciconv.models.load(path))"
    return f"{name} must be a keras.Model; got {type(model).__name__}{hint}"
