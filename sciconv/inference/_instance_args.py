"""The arguments of :func:`~sciconv.inference.predict_instances` and
:func:`~sciconv.inference.predict_instances_blocks` resolved before anything is predicted: the
post-processing keywords (the model's recorded ones updated by the caller's, every name checked)
and the resampling factor (``scale`` or ``object_size``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping

from sciconv._validation import is_number, look_up_option
from sciconv.errors import InferenceError
from sciconv.inference._scale import image_pixel_scale, object_size_factor, resolve_scale
from sciconv.inference._second_pass import auto_or_none
from sciconv.io import PixelScale
from sciconv.models import check_postprocess, get_metadata, get_pixel_scale


def _instances_keywords() -> tuple[str, ...]:
    """The keyword parameters of :func:`sciconv.postprocess.instances` (all but the data)."""
    from sciconv import postprocess

    params = list(inspect.signature(postprocess.instances).parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params[1:] if p.kind in kinds)


def postprocess_kwargs(model, meta: Mapping, overrides: Mapping) -> dict:
    """The model's recorded post-processing updated by ``overrides``, every name checked."""
    allowed = _instances_keywords()
    recorded = check_postprocess(
        meta.get("postprocess"), path=f"model {model.name!r}", check_names=False
    )
    for key in recorded:
        if key not in allowed:
            raise InferenceError(
                f"model {model.name!r} records postprocess key {key!r}, which "
                f"sciconv.postprocess.instances does not take (it takes "
                f"{', '.join(repr(a) for a in allowed)}); fix the model's metadata with "
                "sciconv.models.set_metadata"
            )
    for key in overrides:
        if key not in allowed and key in _block_options():
            raise InferenceError(
                f"{key}= is an option of sciconv.inference.predict_instances_blocks (block by "
                f"block: {', '.join(_block_options())}); call it directly for it"
            )
        look_up_option(
            key,
            allowed,
            name="a post-processing keyword (sciconv.postprocess.instances)",
            error=InferenceError,
        )
    given = overrides.get("min_size")  # checked as given: it is scaled when resampling
    if given is not None and not (is_number(given) and given >= 0):
        raise InferenceError(
            f"min_size must be a number of pixels >= 0 (the input image's); got {given!r}"
        )
    recorded.update(overrides)
    return recorded


def _block_options() -> tuple[str, ...]:
    """predict_instances_blocks' own options, which predict_instances(block=) does not pass on."""
    from sciconv.inference._blocks import predict_instances_blocks
    from sciconv.inference._instances import predict_instances

    mine = inspect.signature(predict_instances).parameters
    theirs = inspect.signature(predict_instances_blocks).parameters
    return tuple(k for k, p in theirs.items() if k not in mine and p.kind is p.KEYWORD_ONLY)


def _check_scale(scale, *, path) -> float:
    value = float("nan")  # a string or a bool is not a factor ("0.2" let "auto" decide)
    if is_number(scale):
        value = float(scale)
    if not (math.isfinite(value) and value > 0):
        raise InferenceError(
            f"scale must be a positive number, 'auto' or None; got {scale!r}", path=path
        )
    return value


def is_pixel_scale(scale) -> bool:
    """Whether ``scale=`` gives the image's pixel scale (PixelScale, dict or Quantity).

    Examples
    --------
    >>> import astropy.units as u
    >>> is_pixel_scale(0.5 * u.um), is_pixel_scale(0.5), is_pixel_scale("auto")
    (True, False, False)
    """
    return isinstance(scale, (PixelScale, dict)) or hasattr(scale, "unit")


def zoom_factor(model, image, scale, object_size=None) -> float:
    """The resampling factor: explicit ``scale``, the objects' size, or the pixel scales."""
    path = getattr(image, "path", None)
    if isinstance(object_size, str):
        auto_or_none(object_size, "object_size", " or a diameter (pixels or a Quantity)")
        object_size = None  # the first pass runs at the factor the scales give
    if object_size is not None:
        if not (isinstance(scale, str) and scale == "auto") and not is_pixel_scale(scale):
            raise InferenceError(
                f"object_size= and scale={scale!r} both set the resampling; give one (scale= "
                "may still give the image's pixel scale, e.g. 0.5 * u.um)",
                path=path,
            )
        pixel_scale = PixelScale.from_value(scale) if is_pixel_scale(scale) else None
        return object_size_factor(
            object_size,
            get_metadata(model).get("object_size"),
            pixel_scale or image_pixel_scale(image),
            path=path,
        )
    if scale is None:
        return 1.0
    if scale != "auto" and not hasattr(scale, "unit") and not hasattr(scale, "to"):
        return _check_scale(scale, path=path)  # a number (or nonsense: InferenceError)
    return resolve_scale(image_pixel_scale(image), get_pixel_scale(model), scale, path=path)
