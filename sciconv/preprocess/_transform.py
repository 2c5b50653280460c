"""Input transforms: bring an image to the form a model was trained on (grey, bright objects)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.preprocess._limits import finite_values, validate_image

_TRANSFORM_KEYS = ("to_gray", "invert")
_INVERT_CHOICES = (True, False, "auto")
#: Percentiles whose midpoint the median is compared with by ``invert="auto"``.
_AUTO_INVERT_PERCENTILES = (0.1, 99.9)


def _validate_transform(spec) -> dict:
    if not isinstance(spec, Mapping):
        raise ConfigError(
            'input transform spec must be a dict like {"to_gray": true, "invert": "auto"} or '
            f"None; got {type(spec).__name__}"
        )
    for key in spec:
        look_up_option(key, _TRANSFORM_KEYS, name="input transform spec key")
    to_gray = spec.get("to_gray", False)
    if not isinstance(to_gray, (bool, np.bool_)):
        raise ConfigError(
            f"input transform spec key 'to_gray' must be true or false; got {to_gray!r}"
        )
    invert = spec.get("invert", False)
    if isinstance(invert, np.bool_):
        invert = bool(invert)
    if not any(invert is c or (isinstance(invert, str) and invert == c) for c in _INVERT_CHOICES):
        look_up_option(invert, _INVERT_CHOICES, name="input transform spec key 'invert'")
    return {"to_gray": bool(to_gray), "invert": invert}


def _bright_background(x: np.ndarray) -> bool:
    """True when the median sits above the midpoint of the 0.1st and 99.9th percentiles."""
    finite = finite_values(x)
    if finite.size == 0:
        return False
    lo, mid, hi = np.percentile(
        finite, (_AUTO_INVERT_PERCENTILES[0], 50.0, _AUTO_INVERT_PERCENTILES[1])
    )
    return bool(mid > 0.5 * (lo + hi))


def apply_input_transform(image, spec: Mapping | None) -> np.ndarray:
    """Bring an image to the form a model was trained on: grey, objects brighter than background.

    Applied before the normalization (:func:`normalize_spec`); models record the spec in their
    metadata (``"input_transform"``), so e.g. a fluorescence-trained nuclei model also takes
    colour (H&E) and brightfield images, whose nuclei are darker than the background.

    Parameters
    ----------
    image : array-like or sciconv.io.GridImage
        ``(H, W)``, ``(H, W, 1)``, or ``(H, W, 3|4)`` (RGB / RGBA) pixels. NaN = bad pixel.
    spec : dict or None
        ``None`` returns ``image`` unchanged. Keys (both optional):

        ``"to_gray"`` : bool
            ``True``: an RGB(A) image becomes the mean of its R, G, B channels (alpha is
            ignored); ``(H, W)`` and ``(H, W, 1)`` images pass through.
        ``"invert"`` : True, False or "auto"
            ``True``: flip the brightness (``max - x``, NaN-safe; NaN stays NaN), so dark objects
            on a bright background become bright objects on a dark one. ``"auto"``: flip only when
            the background is the bright side, i.e. the image median lies above the midpoint of
            its 0.1st and 99.9th percentiles (right for 530 of the 531 DSB2018 training images:
            all fluorescence images kept, all grey-brightfield and 90 of 91 H&E / brightfield
            colour images flipped). Decided on the grey image, over all channels together.
            Default ``False``.

    Returns
    -------
    ndarray, float32
        ``(H, W, 1)`` (``(H, W, C)`` for a multi-channel image without ``to_gray``).

    Raises
    ------
    ConfigError
        ``spec`` is not a dict or None, has an unknown key (the message names it), or a bad value.
    InvalidImageError
        ``image`` is not an image, or ``to_gray`` is asked of an image with 2 or more than 4
        channels.

    Examples
    --------
    >>> import numpy as np
    >>> rgba = np.zeros((2, 2, 4), np.uint8)
    >>> rgba[..., 0], rgba[..., 1], rgba[..., 3] = 30, 60, 255
    >>> apply_input_transform(rgba, {"to_gray": True})[..., 0].tolist()
    [[30.0, 30.0], [30.0, 30.0]]
    >>> bright = np.full((4, 4), 200.0)
    >>> bright[1, 1] = 20.0                     # a dark object on a bright background
    >>> out = apply_input_transform(bright, {"invert": "auto"})
    >>> out.shape, float(out[1, 1, 0]), float(out[0, 0, 0])
    ((4, 4, 1), 180.0, 0.0)
    >>> apply_input_transform(bright, None) is bright
    True
    """
    if spec is None:
        return image
    spec = _validate_transform(spec)
    arr = validate_image(image, name="image")
    if arr.ndim == 4:
        raise InvalidImageError(
            f"image must be one image (H, W) or (H, W, C), not a batch; got shape {arr.shape}"
        )
    if arr.ndim == 2:
        arr = arr[..., None]
    x = arr.astype(np.float32)
    if spec["to_gray"] and x.shape[-1] != 1:
        if x.shape[-1] not in (3, 4):
            raise InvalidImageError(
                "image must have 1, 3 (RGB) or 4 (RGBA) channels for the input transform "
                f"'to_gray'; got shape {arr.shape} (last axis = channels): pass the nuclear "
                "channel alone (image[..., k]), or one plane of a stack (stack[i])"
            )
        x = x[..., :3].mean(axis=-1, keepdims=True, dtype=np.float32)
    invert = spec["invert"]
    if invert == "auto":
        invert = _bright_background(x)
    if invert is True:
        finite = finite_values(x)
        top = float(finite.max()) if finite.size else 0.0
        x = np.float32(top) - x
    return np.ascontiguousarray(x, dtype=np.float32)
