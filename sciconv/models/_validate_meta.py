"""Private: check the settings a model records in its metadata.

A model's metadata may carry ``"postprocess"``: keyword arguments of
:func:`sciconv.postprocess.instances` that :func:`sciconv.inference.predict_instances` applies.
The file they come from is data, not code: a wrong type (``{"min_size": "abc"}``, a list instead
of a mapping) or an unknown key is refused when the model is loaded, with a
:class:`~sciconv.errors.ModelError` naming the file and the key, instead of a ``TypeError`` deep
inside post-processing. :func:`check_metadata` applies the same checks, and those of prediction
(``normalization``, ``input_transform``, ``object_size``), when
:func:`sciconv.models.set_metadata` records a value, so a typo never reaches a saved file.

Examples
--------
>>> check_postprocess({"threshold": 0.4, "min_size": 12})
{'threshold': 0.4, 'min_size': 12}
>>> check_postprocess({"min_size": "abc"}, path="nuclei.keras")
Traceback (most recent call last):
...
sciconv.errors.ModelError: nuclei.keras: recorded post-processing setting 'min_size' ...
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from sciconv.errors import ConfigError, ModelError

__all__ = ["POSTPROCESS_SETTINGS", "check_metadata", "check_postprocess"]

# kind, low, high (None: unbounded)
_Rule = tuple[str, float | None, float | None]

#: The keyword arguments of :func:`sciconv.postprocess.instances` a model may record, with the
#: kind of value each takes and its range (a test checks they match the function's signature).
POSTPROCESS_SETTINGS: dict[str, _Rule] = {
    "threshold": ("number", 0.0, 1.0),
    "min_size": ("integer", 0, None),
    "method": ("choice", None, None),
    "min_distance": ("integer", 1, None),
    "smooth": ("number", 0.0, None),
    "seed_threshold": ("number or null", 0.0, 1.0),
    "bridge": ("integer", 0, None),
}

_METHODS = ("watershed", "connected")


def _clip(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problem(key: str, value: Any) -> str | None:
    """Why ``value`` is not valid for the setting ``key``; None when it is."""
    kind, low, high = POSTPROCESS_SETTINGS[key]
    if kind == "choice":
        if isinstance(value, str) and value in _METHODS:
            return None
        return f"must be one of {list(_METHODS)}"
    if value is None and kind == "number or null":
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers too
        return f"must be a{'n integer' if kind == 'integer' else ' number'}"
    if not math.isfinite(value):
        return "must be a finite number"
    if kind == "integer" and value != int(value):
        return "must be a whole number"
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        return f"must be {bounds}"
    return None


#: What the errors of :func:`check_postprocess` say to do by default.
FIX_POSTPROCESS = (
    "; fix the model's metadata with sciconv.models.set_metadata(model, postprocess={...})"
)


def check_postprocess(
    settings: Any,
    *,
    path: str | os.PathLike | None = None,
    check_names: bool = True,
    fix: str = FIX_POSTPROCESS,
) -> dict[str, Any]:
    """Return a model's recorded post-processing settings once their names and types are checked.

    Parameters
    ----------
    settings : mapping or None
        The ``"postprocess"`` entry of a model's metadata (None or absent: no settings).
    path : str or os.PathLike, optional
        The model file (or a label such as ``"model 'nuclei'"``), named in the error.
    check_names : bool, optional
        Refuse keys :func:`sciconv.postprocess.instances` does not take (default). False: skip
        them (for a caller that reports unknown names itself) and check the known ones.
    fix : str, optional
        What the error adds on how to fix it (default: use ``sciconv.models.set_metadata``).

    Returns
    -------
    dict
        The settings, as given (integers stay integers).

    Raises
    ------
    ModelError
        ``settings`` is not a mapping, names a key :func:`sciconv.postprocess.instances` does not
        take, or holds a value of the wrong type or out of range; the message names the key,
        what is allowed and what was found.

    Examples
    --------
    >>> from sciconv.models import check_postprocess
    >>> check_postprocess(None)
    {}
    >>> check_postprocess({"minsize": 3}, check_names=False)
    {'minsize': 3}
    >>> check_postprocess(["min_size", 3])
    Traceback (most recent call last):
    ...
    sciconv.errors.ModelError: recorded post-processing settings must be a JSON object ...
    """
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ModelError(
            "recorded post-processing settings must be a JSON object of keyword arguments of "
            f"sciconv.postprocess.instances; got {type(settings).__name__} {_clip(settings)}" + fix,
            path=path,
        )
    for key, value in settings.items():
        if key not in POSTPROCESS_SETTINGS:
            if not check_names:
                continue
            raise ModelError(
                f"recorded post-processing setting {_clip(key)} is not a keyword of "
                f"sciconv.postprocess.instances (it takes {', '.join(POSTPROCESS_SETTINGS)})" + fix,
                path=path,
            )
        problem = _problem(key, value)
        if problem:
            raise ModelError(
                f"recorded post-processing setting {key!r} {problem}; got "
                f"{type(value).__name__} {_clip(value)}" + fix,
                path=path,
            )
    return dict(settings)


def _positive(value: Any) -> bool:
    return (
        not isinstance(value, (bool, np.bool_))
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and value > 0
    )


def _check_item(key: str, value: Any) -> Any:
    """``value`` checked as what prediction reads for the metadata ``key``; raises ConfigError."""
    from sciconv.preprocess import NormSpec, resolve_normalization, validate_input_transform

    if key == "postprocess":
        return check_postprocess(value, fix="")
    if key == "normalization":
        if isinstance(value, NormSpec):
            return value.to_dict()
        if not isinstance(value, Mapping):
            raise ConfigError(
                "must be a normalization spec dict such as {'method': 'percentile'} (or a "
                f"sciconv.preprocess.NormSpec); got {type(value).__name__} {_clip(value)}"
            )
        resolve_normalization(value, name="normalization")
        return dict(value)
    if key == "input_transform":
        validate_input_transform(value)
        return dict(value)
    if key == "object_size":
        if not _positive(value):
            raise ConfigError(
                "must be the typical object diameter of the training images in pixels, a "
                "positive number (or a Quantity, with the model's pixel_scale); got "
                f"{_clip(value)}"
            )
        return float(value)
    if key == "object_size_range":
        pair = list(value) if isinstance(value, (list, tuple)) else []
        if not (len(pair) == 2 and all(map(_positive, pair)) and pair[0] < pair[1]):
            raise ConfigError(
                "must be [low, high]: the object diameters (pixels, 0 < low < high) the "
                f"model segments well; got {_clip(value)}"
            )
        return [float(v) for v in pair]
    return value


def check_metadata(items: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata entries checked as :func:`sciconv.models.load` and prediction will read them.

    ``postprocess`` as :func:`check_postprocess` (names too); ``normalization`` by
    :func:`sciconv.preprocess.resolve_normalization` (a spec dict or a NormSpec, recorded as a
    dict); ``input_transform`` by :func:`sciconv.preprocess.validate_input_transform`;
    ``object_size`` a positive number of pixels; ``object_size_range`` ``[low, high]`` with
    ``0 < low < high``. Other keys, and None (which removes a key), pass as they are.

    Parameters
    ----------
    items : Mapping
        The entries :func:`sciconv.models.set_metadata` is about to record.

    Returns
    -------
    dict
        The entries to record (a NormSpec as its dict, sizes as floats).

    Raises
    ------
    ModelError
        A value prediction or loading would refuse; the message names the key.

    Examples
    --------
    >>> from sciconv.models._validate_meta import check_metadata
    >>> check_metadata({"object_size": 18, "task": "segmentation"})
    {'object_size': 18.0, 'task': 'segmentation'}
    >>> check_metadata({"normalization": {"method": "percentil"}})
    Traceback (most recent call last):
    ...
    sciconv.errors.ModelError: metadata 'normalization': normalization method must be one of ...
    """
    out = {}
    for key, value in items.items():
        try:
            out[key] = None if value is None else _check_item(key, value)
        except (ConfigError, ModelError) as exc:
            raise ModelError(f"metadata {key!r}: {exc.message}") from None
    return out
