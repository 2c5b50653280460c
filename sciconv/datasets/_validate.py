"""Validation of the builders' arguments (once, at the boundary; the code after trusts them)."""

from __future__ import annotations

import os
import reprlib
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sciconv._validation import look_up_option
from sciconv.augment import validate_amounts
from sciconv.errors import ConfigError, DatasetError, WriteError
from sciconv.io._common import warn_caller

TASKS = ("classification", "multilabel", "regression")
TARGETS = ("semantic", "boundary", "touching")
#: The targets that make 0 background / 1 interior / 2 boundary.
BOUNDARY_TARGETS = ("boundary", "touching")
#: ``target="touching"``: the boundary class also takes every object pixel this many pixels
#: (chessboard) from another object (the pretrained nuclei model's training target).
TOUCH_BAND = 2
AUGMENT_KEYS = ("d4", "crop", "brightness", "contrast", "gaussian_noise", "poisson_noise")


def validate_split(validation_split) -> float | None:
    if validation_split is None:
        return None
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or not 0 < validation_split < 1
    ):
        raise ConfigError(
            f"validation_split must be None or a fraction in (0, 1); got {validation_split!r}"
        )
    return float(validation_split)


def validate_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive int; got {value!r}")
    return int(value)


def validate_seed(seed) -> int:
    if seed is None:
        return int(np.random.default_rng().integers(0, 2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be None or an int >= 0; got {seed!r}")
    return int(seed)


def validate_augment(augment) -> dict | None:
    """``False`` -> None; ``True`` -> D4 + random crops; a dict -> :func:`augment_batch` options."""
    if augment is False or augment is None:
        return None
    if augment is True:
        return {"d4": True, "crop": True}
    if isinstance(augment, Mapping):
        for key in augment:
            look_up_option(key, AUGMENT_KEYS, name="augment key")
        options = {"d4": True, "crop": True, **augment}
        batch_opts = {k: v for k, v in options.items() if k != "crop"}
        validate_amounts(
            batch_opts.get("brightness", 0.0),
            batch_opts.get("contrast", 0.0),
            batch_opts.get("gaussian_noise", 0.0),
            batch_opts.get("poisson_noise"),
        )
        return options
    shown = reprlib.Repr()  # bounded: a YAML alias tree can be large (keywords: Python 3.12+)
    shown.maxlevel, shown.maxdict, shown.maxlist, shown.maxstring = 2, 4, 4, 30
    raise ConfigError(
        f"augment must be True, False or a dict of {AUGMENT_KEYS}; got {shown.repr(augment)}"
    )


def validate_cache(cache) -> str | Path | bool:
    if cache in ("auto", True, False, None):
        return False if cache is None else cache
    if isinstance(cache, (str, os.PathLike)):
        path = Path(cache)
        if not path.parent.is_dir():
            raise ConfigError(
                f"cache file folder does not exist: {path.parent} (cache={os.fspath(cache)!r})"
            )
        return path
    raise ConfigError(f"cache must be 'auto', True, False or a file path; got {cache!r}")


def check_cache_room(cache_file: str | os.PathLike, need_bytes: int) -> None:
    """Refuse a cache file whose folder has less than ``need_bytes`` free (a full disk was a
    raw TensorFlow ResourceExhaustedError at the first batch: QA).

    Raises
    ------
    WriteError
        Not enough free space in the cache file's folder.

    Examples
    --------
    >>> import tempfile, os
    >>> check_cache_room(os.path.join(tempfile.mkdtemp(), "c"), 1024)
    """
    folder = Path(cache_file).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # cannot be told: TensorFlow says it if it fills
        return
    if free < need_bytes:
        raise WriteError(
            f"the cache needs at least {_size(need_bytes)} (the images as float32) and its "
            f"folder {folder} has {_size(free)} free; free some space, pass cache= a path on "
            "another disk, or cache=False",
            path=cache_file,
        )


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def validate_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name} must be in [0, 1]; got {value!r}")
    return float(value)


def finite_images(images, *, name: str, error: type[Exception] = DatasetError) -> np.ndarray:
    """Indices of the images that hold a finite pixel; one warning names the others (an
    all-NaN cutout, off a survey's edge, trains as the fill value with its label: nothing to
    learn, and only such images train at chance without a word).

    Parameters
    ----------
    images : ndarray (N, ...) or sequence of ndarray
        The images (any dtype; integer images are all finite).
    name : str
        What they are, in the messages (``"images"``, ``"train"``).
    error : type, optional
        The exception raised when no image holds a finite pixel (``fit``: ConfigError, as
        for its other array checks). Default DatasetError.

    Returns
    -------
    ndarray of int
        The indices to keep, in order.

    Raises
    ------
    DatasetError
        No image holds a finite pixel (or ``error``).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.datasets._validate import finite_images
    >>> finite_images(np.ones((3, 4, 4)), name="images").tolist()
    [0, 1, 2]
    """
    if isinstance(images, np.ndarray):  # (N, ...) at once
        finite = np.ones(len(images), bool)
        if images.dtype.kind in "fc" and images.size:
            finite = np.isfinite(images.reshape(len(images), -1)).any(axis=1)
    else:
        finite = np.array(
            [a.dtype.kind not in "fc" or not a.size or np.isfinite(a).any() for a in images], bool
        )
    empty = np.flatnonzero(~finite)
    if not len(empty):
        return np.arange(len(finite))
    if len(empty) == len(finite):
        raise error(f"{name}: no image has a finite pixel (all NaN or inf): nothing to learn")
    warn_caller(
        f"{name}: {len(empty)} of {len(finite)} images have no finite pixel (all NaN or inf: "
        f"{', '.join(f'{name}[{i}]' for i in empty[:5])}{' ...' if len(empty) > 5 else ''}): "
        "left out",
        package="sciconv",
    )
    return np.flatnonzero(finite)
