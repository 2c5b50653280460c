"""Private: check the post-processing settings a model records in its metadata.

A model's metadata may carry ``"postprocess"``: keyword arguments of
:func:`sciconv.postprocess.instances` that :func:`sciconv.inference.predict_instances` applies.
The file they come from is data, not code: a wrong type (``{"min_size": "abc"}``, a list instead
of a mapping) or an unknown key is refused when the model is loaded, with a
:class:`~sciconv.errors.ModelError` naming the file and the key, instead of a ``TypeError`` deep
inside post-processing.

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
import os
from collections.abc import Mapping
from typing import Any

from sciconv.errors import ModelError

__all__ = ["POSTPROCESS_SETTINGS", "check_postprocess"]

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
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a{'n integer' if kind == 'integer' else ' number'}"
    if not math.isfinite(value):
        return "must be a finite number"
    if kind == "integer" and value != int(value):
        return "must be a whole number"
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        return f"must be {bounds}"
    return None


def check_postprocess(
    settings: Any, *, path: str | os.PathLike | None = None, check_names: bool = True
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
    fix = "; fix the model's metadata with sciconv.models.set_metadata(model, postprocess={...})"
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
