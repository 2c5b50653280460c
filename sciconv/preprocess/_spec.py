"""The normalization spec: one frozen type and one resolver for every ``normalize=`` keyword.

A spec is what a model or a dataset records about its normalization (a plain JSON-able dict in
the model metadata, :meth:`NormSpec.to_dict`); :func:`resolve_normalization` turns any value a
user passes as ``normalize=`` (datasets, inference, viz, the CLI) into a :class:`NormSpec` or
``None``, validated once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, SciconvError
from sciconv.preprocess._limits import (
    FILL_METHODS,
    METHODS,
    Limits,
    apply_limits,
    compute_limits,
    fill_nan,
    validate_image,
    validate_percentiles,
)

#: The normalization every stage shares unless told otherwise (datasets, inference, CLI).
DEFAULT_NORMALIZATION: dict[str, Any] = {"method": "percentile", "low": 1.0, "high": 99.8}

#: The ``normalize=`` value meaning "the spec the model (or dataset) recorded, else the default".
RECORDED = "model"

#: What a model records when it was trained on pixels used as given (``fit`` on arrays a user
#: prepared, a dataset built with ``normalize=None``): prediction then feeds pixels as given too.
RAW_NORMALIZATION: dict[str, Any] = {"method": "none"}


def is_raw_normalization(spec) -> bool:
    """Whether ``spec`` is :data:`RAW_NORMALIZATION` (a model trained on pixels as given).

    Parameters
    ----------
    spec : dict, NormSpec or None
        A recorded normalization spec; only a mapping equal to ``{"method": "none"}`` is raw.

    Returns
    -------
    bool

    Examples
    --------
    >>> from sciconv.preprocess import is_raw_normalization
    >>> is_raw_normalization({"method": "none"}), is_raw_normalization(None)
    (True, False)
    """
    return isinstance(spec, Mapping) and dict(spec) == RAW_NORMALIZATION


_SPEC_KEYS = (
    "method",
    "low",
    "high",
    "per_channel",
    "clip",
    "nan",
    "asinh_a",
    "max_samples",
    "seed",
)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"normalization spec key {name!r} must be true or false; got {value!r}")
    return bool(value)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(
            f"normalization spec key {name!r} must be an int >= {minimum}; got {value!r}"
        )
    return int(value)


@dataclass(frozen=True)
class NormSpec:
    """A validated normalization spec: which method, and the options that differ from its defaults.

    Fields left ``None`` take the defaults of :func:`sciconv.preprocess.normalize`, and are left
    out of :meth:`to_dict`, so a recorded spec stays as short as the user wrote it.

    Parameters
    ----------
    method : {"percentile", "minmax", "zscale", "asinh", "zscore"}
        See :func:`sciconv.preprocess.compute_limits`. Default ``"percentile"``.
    low, high : float, optional
        Percentiles (``"percentile"`` and ``"asinh"``).
    per_channel, clip : bool, optional
        Limits per channel; clip the result to [0, 1] (see :func:`~sciconv.preprocess.normalize`).
    nan : {"zero", "median", "nearest", "reflect"}, optional
        Fill bad pixels after normalizing; ``None`` keeps them NaN.
    asinh_a : float, optional
        Softening of the asinh stretch.
    max_samples, seed : int, optional
        Pixel subsample size for the statistics, and its seed.

    Raises
    ------
    ConfigError
        A field has a value :func:`sciconv.preprocess.normalize` would refuse (the message names
        the key and what is allowed).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import NormSpec
    >>> spec = NormSpec.from_dict({"method": "minmax"})
    >>> spec.to_dict()
    {'method': 'minmax'}
    >>> spec.apply(np.array([[2.0, 4.0]])).tolist()
    [[0.0, 1.0]]
    """

    method: str = "percentile"
    low: float | None = None
    high: float | None = None
    per_channel: bool | None = None
    clip: bool | None = None
    nan: str | None = None
    asinh_a: float | None = None
    max_samples: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "method", look_up_option(self.method, METHODS, name="normalization method"))
        if self.low is not None or self.high is not None:
            low, high = validate_percentiles(
                1.0 if self.low is None else self.low, 99.8 if self.high is None else self.high
            )
            set_(self, "low", None if self.low is None else low)
            set_(self, "high", None if self.high is None else high)
        for key in ("per_channel", "clip"):
            if getattr(self, key) is not None:
                set_(self, key, _check_bool(getattr(self, key), key))
        if self.nan is not None:
            look_up_option(self.nan, FILL_METHODS, name="normalization spec key 'nan'")
        if self.asinh_a is not None:
            a = self.asinh_a
            if isinstance(a, bool) or not isinstance(a, numbers.Real) or not 0 < a < math.inf:
                raise ConfigError(
                    f"normalization spec key 'asinh_a' must be a positive number; got {a!r}"
                )
            set_(self, "asinh_a", float(a))
        if self.max_samples is not None:
            set_(self, "max_samples", _check_int(self.max_samples, "max_samples", 1))
        if self.seed is not None:
            set_(self, "seed", _check_int(self.seed, "seed", 0))

    @classmethod
    def from_dict(cls, spec: Mapping) -> NormSpec:
        """Build a spec from the dict a model records (unknown keys are refused by name).

        Parameters
        ----------
        spec : Mapping
            A spec dict (:meth:`to_dict`), with ``method`` and any of the other fields.

        Returns
        -------
        NormSpec

        Raises
        ------
        ConfigError
            Not a mapping, an unknown key, or a value the fields refuse.

        Examples
        --------
        >>> from sciconv.preprocess import NormSpec
        >>> NormSpec.from_dict({"method": "asinh", "low": 0.5}).low
        0.5
        """
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"normalization spec must be a dict like {DEFAULT_NORMALIZATION} or None; "
                f"got {type(spec).__name__}"
            )
        for key in spec:
            look_up_option(key, _SPEC_KEYS, name="normalization spec key")
        return cls(**dict(spec))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict recorded in model metadata: the method and the fields that are set.

        Examples
        --------
        >>> from sciconv.preprocess import NormSpec
        >>> NormSpec(low=2.0).to_dict()
        {'method': 'percentile', 'low': 2.0}
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "method" or value is not None:
                out[f.name] = value
        return out

    def limits(self, x) -> Limits:
        """Measure the limits this spec asks for on ``x`` (:func:`compute_limits`).

        Parameters
        ----------
        x : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
            Raw pixels.

        Returns
        -------
        Limits

        Examples
        --------
        >>> import numpy as np
        >>> from sciconv.preprocess import NormSpec
        >>> NormSpec(method="minmax").limits(np.array([[2.0, 4.0]])).vmax.tolist()
        [4.0]
        """
        keys = ("low", "high", "per_channel", "max_samples", "seed", "asinh_a")
        kwargs = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        return compute_limits(x, method=self.method, **kwargs)

    def apply(self, x) -> np.ndarray:
        """Normalize ``x`` with this spec: limits, stretch, then the optional NaN fill.

        Parameters
        ----------
        x : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
            Raw pixels.

        Returns
        -------
        ndarray of float32, same shape as ``x``

        Examples
        --------
        >>> import numpy as np
        >>> from sciconv.preprocess import NormSpec
        >>> NormSpec(method="minmax", nan="zero").apply(np.array([[1.0, np.nan, 3.0]])).tolist()
        [[0.0, 0.0, 1.0]]
        """
        out = apply_limits(x, self.limits(x), clip=bool(self.clip))
        if self.nan is not None:
            out = fill_nan(out, method=self.nan)
        return out


def resolve_normalization(
    normalize: Any,
    *,
    recorded: Mapping | NormSpec | None = None,
    name: str = "normalize",
    error: type[SciconvError] = ConfigError,
) -> NormSpec | None:
    """Resolve a ``normalize=`` keyword: the one grammar of datasets, inference, viz and the CLI.

    Parameters
    ----------
    normalize : str, dict, NormSpec or None
        ``"model"`` (:data:`RECORDED`): the spec the model or dataset recorded (``recorded``;
        :data:`RAW_NORMALIZATION` gives None), else :data:`DEFAULT_NORMALIZATION`;
        ``"default"``: :data:`DEFAULT_NORMALIZATION`; a method name (``"zscale"``, ...): that
        method with its defaults; a spec dict or a :class:`NormSpec`; ``None`` (or
        :data:`RAW_NORMALIZATION`): raw pixels (no normalization).
    recorded : dict or NormSpec, optional
        What the model's metadata (or the dataset) recorded; an empty value means "nothing".
    name : str, optional
        The argument's name in error messages. Default ``"normalize"``.
    error : type, optional
        The :class:`~sciconv.errors.SciconvError` subclass raised. Default ``ConfigError``.

    Returns
    -------
    NormSpec or None

    Raises
    ------
    SciconvError
        (of type ``error``) naming the argument, what is allowed and what was received.

    Examples
    --------
    >>> from sciconv.preprocess import RAW_NORMALIZATION, resolve_normalization
    >>> resolve_normalization("model", recorded={"method": "zscale"}).to_dict()
    {'method': 'zscale'}
    >>> resolve_normalization("model").to_dict()
    {'method': 'percentile', 'low': 1.0, 'high': 99.8}
    >>> resolve_normalization("asinh").method
    'asinh'
    >>> resolve_normalization(None) is None
    True
    >>> resolve_normalization("model", recorded=RAW_NORMALIZATION) is None  # trained on raw pixels
    True
    """
    try:
        if normalize is None or isinstance(normalize, NormSpec):
            return normalize
        if isinstance(normalize, str):
            choices = (RECORDED, "default", *METHODS)
            look_up_option(normalize, choices, name=name, error=error)
            if normalize == RECORDED:
                if isinstance(recorded, NormSpec):
                    return recorded
                if is_raw_normalization(recorded):  # trained on pixels as given
                    return None
                return NormSpec.from_dict(recorded or DEFAULT_NORMALIZATION)
            if normalize == "default":
                return NormSpec.from_dict(DEFAULT_NORMALIZATION)
            return NormSpec(method=normalize)
        if isinstance(normalize, Mapping):
            return None if is_raw_normalization(normalize) else NormSpec.from_dict(normalize)
    except ConfigError as exc:
        if error is ConfigError:
            raise
        raise error(exc.message) from exc
    raise error(
        f"{name} must be {RECORDED!r} (the spec the model or dataset recorded), 'default', a "
        f"method name {METHODS}, None (raw pixels) or a spec dict like "
        f"{DEFAULT_NORMALIZATION}; got {normalize!r}"
    )


def limits_from_spec(x, spec: Mapping | NormSpec) -> Limits:
    """Compute the limits a normalization spec asks for.

    Parameters
    ----------
    x : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
        Raw pixels.
    spec : dict or NormSpec
        The normalization spec (a dict as :meth:`NormSpec.to_dict` writes it).

    Returns
    -------
    Limits

    Raises
    ------
    ConfigError
        ``spec`` is :data:`RAW_NORMALIZATION` (no limits) or not a valid spec.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import limits_from_spec
    >>> limits_from_spec(np.array([[2.0, 4.0]]), {"method": "minmax"}).vmax.tolist()
    [4.0]
    """
    if is_raw_normalization(spec):
        raise ConfigError(
            "a model trained on pixels as given (normalization {'method': 'none'}) has no "
            "normalization limits: feed its pixels unchanged (normalize=None)"
        )
    if not isinstance(spec, NormSpec):
        spec = NormSpec.from_dict(spec)
    return spec.limits(x)


def normalize_spec(x, spec: Mapping | NormSpec | None) -> np.ndarray:
    """Apply a normalization spec (the dict a model records); None (or
    :data:`RAW_NORMALIZATION`) only casts to float32.

    Parameters
    ----------
    x : array-like of shape (H, W), (H, W, C) or (N, H, W, C)
        Raw pixels.
    spec : dict, NormSpec or None
        The normalization spec (a dict as :meth:`NormSpec.to_dict` writes it); None or
        :data:`RAW_NORMALIZATION`: pixels as given.

    Returns
    -------
    ndarray of float32, same shape as ``x``

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import RAW_NORMALIZATION, normalize_spec
    >>> normalize_spec(np.array([[1, 3]]), None).dtype
    dtype('float32')
    >>> normalize_spec(np.array([[1, 3]]), RAW_NORMALIZATION).tolist()
    [[1.0, 3.0]]
    >>> normalize_spec(np.array([[1.0, 3.0]]), {"method": "minmax"}).tolist()
    [[0.0, 1.0]]
    """
    if spec is None or is_raw_normalization(spec):
        return validate_image(x).astype(np.float32)
    if not isinstance(spec, NormSpec):
        spec = NormSpec.from_dict(spec)
    return spec.apply(x)
