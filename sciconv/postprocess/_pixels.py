"""Per-pixel arrays given beside instance labels (intensity, background, errors): checked once."""

from __future__ import annotations

import numpy as np

from sciconv._validation import refuse_path
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io import as_array

__all__ = ["numbers", "per_pixel"]

# where each per-pixel argument comes from, for the message refusing a file name in its place
_MAKERS = {
    "background": " (or make it with sciconv.postprocess.estimate_background)",
    "background_rms": " (or make it with sciconv.postprocess.background_and_rms)",
    "error": " (or make it with sciconv.postprocess.estimate_error)",
}


def numbers(value, name: str) -> np.ndarray:
    """``value`` as float64 pixels; a path or other text is refused naming ``name`` (numpy's
    own message, "could not convert string to float", named neither).

    Examples
    --------
    >>> numbers([[1, 2]], "background").dtype
    dtype('float64')
    """
    refuse_path(value, name=name, reader="sciconv.io.read" + _MAKERS.get(name, ""))
    raw = as_array(value)
    if np.dtype(getattr(raw, "dtype", np.float64)).kind == "c":  # numpy dropped the imaginary
        raise ConfigError(  # part with a ComplexWarning only (QA inputs)
            f"{name} must hold real numbers; got complex {np.dtype(raw.dtype)} (take np.abs, "
            ".real or .imag first)"
        )
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must hold numbers; got {type(value).__name__} ({exc})") from exc


def per_pixel(value, name: str, shape: tuple, channels: int = 1) -> np.ndarray:
    """A number or an ``(H, W)`` / ``(H, W, 1)`` / ``(H, W, channels)`` array as float64 of shape
    ``(1, 1, 1)`` (a number, to broadcast) or ``(H, W, 1 or channels)``.

    Parameters
    ----------
    value : float or array_like
        The argument.
    name : str
        Its name, for the error.
    shape : (int, int)
        The labels' (image's) height and width.
    channels : int, optional
        The intensity's channels.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    InvalidImageError
        Another shape.

    Examples
    --------
    >>> per_pixel(2.0, "background", (4, 5)).shape, per_pixel([[1, 2]], "error", (1, 2)).shape
    ((1, 1, 1), (1, 2, 1))
    """
    v = numbers(value, name)
    if v.ndim == 0:
        return v.reshape(1, 1, 1)
    if v.ndim == 2:
        v = v[..., None]
    if v.ndim != 3 or v.shape[:2] != tuple(shape) or v.shape[-1] not in (1, channels):
        more = f" (optionally with the intensity's {channels} channels)" if channels > 1 else ""
        raise InvalidImageError(
            f"{name} must be a number or have the image's shape {tuple(shape)}{more}; got "
            f"shape {v.shape}"
        )
    return v
