"""Physical pixel scale at prediction time: how much to resample an image before a model sees it.

A model learns objects at the pixel scale it was trained at (``get_metadata(model)["pixel_scale"]``,
recorded by :func:`sciconv.training.fit` from the dataset). An image sampled more finely shows
the same objects larger, in more pixels, and the model misreads them. :func:`resolve_scale` is
the one decision: the zoom factor to apply to the image (``image pixel size / model pixel
size``), from the two scales and the caller's ``scale=``; :func:`resample` applies it;
:func:`physical_object_size` turns a size given in micrometres or arcseconds into pixels.

Everything here is numpy/astropy/scikit-image; nothing imports TensorFlow.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from sciconv.errors import ConfigError, InferenceError, SciconvWarning
from sciconv.io import PixelScale, as_array, image_pixel_scale
from sciconv.io._common import warn_caller

__all__ = [
    "AUTO_SIZE_MIN_OBJECTS",
    "auto_size_factor",
    "image_pixel_scale",
    "object_size_factor",
    "physical_object_size",
    "resample",
    "resolve_scale",
    "same_factor",
]

#: Factors closer to 1 than this are treated as 1: resampling by 0.5 % only blurs the image.
SCALE_TOLERANCE = 0.01
#: ``object_size="auto"`` measures an image's object size only from at least this many objects.
AUTO_SIZE_MIN_OBJECTS = 5


def _explicit_factor(scale: Any, path, name: str = "scale") -> float:
    ok = not isinstance(scale, bool) and isinstance(scale, (int, float, np.number))
    if not ok or not math.isfinite(float(scale)) or float(scale) <= 0:
        allowed = (
            "'auto', None, a positive number (the zoom factor), or the image's pixel scale as "
            "a Quantity/PixelScale"
            if name == "scale"
            else "'auto', None, a positive number of pixels, or a Quantity (e.g. 12 * u.um)"
        )
        raise ConfigError(f"{name} must be {allowed}; got {scale!r}", path=path)
    return float(scale)


def resolve_scale(
    image_scale: PixelScale | Any | None,
    model_scale: PixelScale | Any | None,
    scale: str | float | Any | None = "auto",
    *,
    path: str | None = None,
) -> float:
    """The zoom factor to apply to an image before prediction (1.0 = as it is).

    The factor is ``image pixel size / model pixel size``: an image sampled 2.5x more finely
    than the training images (0.1 µm/pixel against 0.25) gets 0.4, i.e. it is shrunk so that
    its objects cover as many pixels as the training objects did.

    Parameters
    ----------
    image_scale, model_scale : PixelScale, dict, Quantity or None
        The image's pixel scale (:attr:`sciconv.io.GridImage.pixel_scale`) and the one the model
        was trained at (``get_metadata(model)["pixel_scale"]``); None when unknown.
    scale : {"auto"} or float or PixelScale or Quantity or None
        ``"auto"`` (default): the ratio of the two scales when both are known (with a
        :class:`~sciconv.errors.SciconvWarning` naming it when it is not 1); 1.0 (with a
        warning) when only the model's is known; 1.0 when the model's is unknown. A number:
        that factor, whatever the metadata says (explicit wins).
        A PixelScale or Quantity: the image's pixel scale, replacing ``image_scale``. None: 1.0,
        no resampling. A ratio within :data:`SCALE_TOLERANCE` of 1 gives exactly 1.0.
    path : str, optional
        The image's file, named in warnings and errors.

    Returns
    -------
    float
        The factor, > 0.

    Raises
    ------
    ConfigError
        ``scale`` is not one of the above, or the two scales are in units that do not convert
        (micrometres against arcseconds: the model was trained on another kind of image).

    Examples
    --------
    >>> from sciconv.io import PixelScale
    >>> from sciconv.inference import resolve_scale
    >>> um = PixelScale(0.25, 0.25, "um")  # the model's
    >>> resolve_scale(None, um, PixelScale(0.1, 0.1, "um"))  # the image's, given
    0.4
    >>> resolve_scale(PixelScale(100, 100, "nm"), PixelScale(0.25, 0.25, "um"), 0.5)
    0.5
    >>> resolve_scale(None, None)
    1.0
    """
    if scale is None:
        return 1.0
    if isinstance(scale, str):
        if scale != "auto":
            raise ConfigError(
                f"scale must be 'auto', None, a positive number or a pixel scale; got {scale!r}",
                path=path,
            )
    elif isinstance(scale, (PixelScale, dict)) or hasattr(scale, "unit"):
        image_scale = PixelScale.from_value(scale)
    else:
        return _explicit_factor(scale, path)
    image_scale = PixelScale.from_value(image_scale)
    model_scale = PixelScale.from_value(model_scale)
    where = f"{path}: " if path else ""
    if model_scale is None:
        if not isinstance(scale, str):  # the caller gave the image's scale: say it did nothing
            warn_caller(
                f"{where}scale= gives the image's pixel scale ({image_scale.mean:.4g} "
                f"{image_scale.unit}) but the model records none it was trained at: not "
                "resampled; pass scale= as a factor, or object_size= with the objects' size",
                "sciconv",
            )
        return 1.0
    if image_scale is None:
        warnings.warn(
            f"{where}the image's pixel scale is unknown but the model was trained at "
            f"{model_scale.mean:.4g} {model_scale.unit}/pixel; predicting without resampling. "
            "Pass scale= (the zoom factor, or the image's pixel scale such as 0.5 * u.um) to "
            "say it, or scale=None to silence this",
            SciconvWarning,
            stacklevel=2,
        )
        return 1.0
    try:
        image_scale = image_scale.to(model_scale.unit)
    except ConfigError as exc:
        raise ConfigError(
            f"the image's pixel scale is in {image_scale.unit} but the model was trained at "
            f"{model_scale.mean:.4g} {model_scale.unit}/pixel: the units do not convert (a "
            "model for another kind of image?); pass scale= as a number to force a factor",
            path=path,
        ) from exc
    factor = image_scale.mean / model_scale.mean
    if same_factor(factor, 1.0):
        return 1.0
    factor = float(f"{factor:.12g}")
    if isinstance(scale, str):  # "auto": a resampling nobody asked for explicitly is said
        warnings.warn(
            f"{where}resampling the image by {factor:.4g} before prediction: its pixels are "
            f"{image_scale.mean:.4g} {model_scale.unit}, the model was trained at "
            f"{model_scale.mean:.4g} {model_scale.unit}/pixel. Pass scale=None (--scale 1) to "
            "predict on the image's own pixels (e.g. for point sources, whose size follows the "
            "PSF, not the pixel scale)",
            SciconvWarning,
            stacklevel=2,
        )
    return factor


def physical_object_size(
    object_size: Any, pixel_scale: PixelScale | Any | None, *, path: str | None = None
) -> float:
    """An object size in pixels, from a size in physical units and the image's pixel scale.

    Parameters
    ----------
    object_size : float or astropy.units.Quantity
        A plain number is already in pixels and is returned as it is; a Quantity of length
        (``12 * u.um``) or angle (``1.5 * u.arcsec``) is divided by the pixel scale.
    pixel_scale : PixelScale, dict, Quantity or None
        The image's pixel scale (the geometric mean of ``y`` and ``x`` is used).
    path : str, optional
        The image's file, named in errors.

    Returns
    -------
    float
        The size in pixels, > 0.

    Raises
    ------
    ConfigError
        A physical size without a known pixel scale, units that do not convert, or a size
        that is not positive.

    Examples
    --------
    >>> import astropy.units as u
    >>> from sciconv.io import PixelScale
    >>> from sciconv.inference import physical_object_size
    >>> physical_object_size(12 * u.um, PixelScale(0.5, 0.5, "um"))
    24.0
    >>> physical_object_size(18, None)
    18.0
    """
    if not hasattr(object_size, "unit"):
        value = (
            _explicit_factor(object_size, path, "object_size") if object_size is not None else None
        )
        if value is None:
            raise ConfigError("object_size must be a positive number or a Quantity", path=path)
        return value
    from astropy import units as u

    size = u.Quantity(object_size)
    if size.isscalar is False or not np.isfinite(size.value) or size.value <= 0:
        raise ConfigError(f"object_size must be one positive size; got {object_size!r}", path=path)
    scale = PixelScale.from_value(pixel_scale)
    if scale is None:
        raise ConfigError(
            f"object_size={object_size} is in physical units but the image's pixel scale is "
            "unknown; give it in pixels, or set the image's scale (e.g. a GridImage with "
            'meta["pixel_scale"] = 0.5 * u.um)',
            path=path,
        )
    try:
        value = size.to_value(scale.quantity.unit)  # astropy's unit: "inch" needs imperial
    except u.UnitConversionError as exc:
        raise ConfigError(
            f"object_size={object_size} does not convert to the image's pixel scale unit "
            f"({scale.unit})",
            path=path,
        ) from exc
    return float(f"{value / scale.mean:.12g}")


def object_size_factor(
    object_size: Any,
    training_size: float | None,
    pixel_scale: PixelScale | Any | None,
    *,
    path: str | None = None,
) -> float:
    """The zoom factor that makes objects of ``object_size`` as large as the training objects.

    ``training_size / size in pixels``, where the size in pixels is ``object_size`` itself (a
    number) or ``object_size`` divided by the image's pixel scale (a Quantity; see
    :func:`physical_object_size`). Used by ``predict_instances(..., object_size=...)``.

    Parameters
    ----------
    object_size : float or astropy.units.Quantity
        The typical diameter of the objects in the image: pixels, or a length or an angle
        (``8 * u.um``, ``1.2 * u.arcsec``).
    training_size : float or None
        The typical object diameter (pixels) of the images the model was trained on (model
        metadata ``"object_size"``); None when the model does not record it.
    pixel_scale : PixelScale, dict, Quantity or None
        The image's pixel scale; needed only for a physical ``object_size``.
    path : str, optional
        The image's file, named in errors.

    Returns
    -------
    float
        The factor, > 0; exactly 1.0 within :data:`SCALE_TOLERANCE`.

    Raises
    ------
    ConfigError
        ``training_size`` unknown; a physical size with an unknown pixel scale or units that do
        not convert; a size that is not positive.

    Examples
    --------
    >>> import astropy.units as u
    >>> from sciconv.io import PixelScale
    >>> from sciconv.inference import object_size_factor
    >>> object_size_factor(36, 18.0, None)            # objects twice the training size: shrink
    0.5
    >>> object_size_factor(6 * u.um, 18.0, PixelScale(0.5, 0.5, "um"))  # 12 px: enlarge
    1.5
    """
    if training_size is None:
        raise ConfigError(
            "object_size= needs the object size the model was trained at, and this model does "
            "not record one (metadata 'object_size', in pixels); pass scale= (the zoom factor) "
            "instead, or record it with sciconv.models.set_metadata(model, object_size=...)",
            path=path,
        )
    training = _explicit_factor(training_size, path)
    size_px = physical_object_size(object_size, pixel_scale, path=path)
    factor = training / size_px
    return 1.0 if same_factor(factor, 1.0) else float(f"{factor:.12g}")


def auto_size_factor(
    labels: Any,
    factor: float,
    training_size: float | None,
    size_range: Any,
) -> float | None:
    """The zoom factor to segment an image again at, when the objects found in a first pass are
    outside the sizes the model was trained on; None when they are not (or it cannot tell).

    The rule of ``predict_instances(..., object_size="auto")``: the median equivalent diameter
    ``d`` of the first pass's objects (:func:`sciconv.postprocess.equivalent_diameters`, in the
    input's pixels), times the first pass's ``factor``, is the size the model saw. Inside
    ``size_range`` nothing changes; outside it the image is resampled by ``training_size / d``
    so that its objects come out at the training size.

    Parameters
    ----------
    labels : array_like of int, shape (H, W) or (N, H, W)
        The first pass's instance labels, at the input's size; ``(N, H, W)``: the planes of a
        movie or Z-stack, their objects pooled (one decision for the whole stack).
    factor : float
        The zoom factor the first pass ran at (1.0: the image as it is).
    training_size : float or None
        The typical object diameter (pixels) of the training images (model metadata
        ``"object_size"``).
    size_range : (float, float) or None
        The object diameters (pixels) the model segments well as they are (model metadata
        ``"object_size_range"``).

    Returns
    -------
    float or None
        The new factor; None when either metadata is missing, fewer than
        :data:`AUTO_SIZE_MIN_OBJECTS` objects were found, the size seen is inside the range,
        or the new factor is within :data:`SCALE_TOLERANCE` of ``factor``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.inference import auto_size_factor
    >>> labels = np.zeros((400, 400), int)
    >>> for k in range(6):
    ...     labels[k * 60 : k * 60 + 54, :54] = k + 1     # six 54 px squares: d = 60.9
    >>> auto_size_factor(labels, 1.0, 18.0, (8.0, 50.0))   # outside: shrink to 18 px
    0.295
    >>> auto_size_factor(labels, 1.0, 18.0, (8.0, 66.0)) is None
    True
    >>> auto_size_factor(np.stack([labels, labels]), 1.0, 18.0, (8.0, 50.0))  # two planes
    0.295
    """
    from sciconv.postprocess import equivalent_diameters

    if training_size is None or size_range is None:
        return None
    low, high = (float(v) for v in size_range)
    planes = labels if np.ndim(labels) == 3 else [labels]
    sizes = np.concatenate([equivalent_diameters(np.asarray(plane)) for plane in planes])
    if len(sizes) < AUTO_SIZE_MIN_OBJECTS:
        return None
    d = float(np.median(sizes))
    if low <= d * factor <= high:
        return None
    again = float(f"{float(training_size) / d:.3g}")
    return None if same_factor(again, factor) else again


def same_factor(a: float, b: float) -> bool:
    """Whether zoom factors ``a`` and ``b`` are the same resampling (their ratio within
    :data:`SCALE_TOLERANCE` of 1).

    Examples
    --------
    >>> same_factor(0.5, 0.502), same_factor(0.5, 0.52)
    (True, False)
    """
    return abs(a / b - 1.0) < SCALE_TOLERANCE


def resample(image: Any, factor: float, *, order: int = 1) -> np.ndarray:
    """Resample an ``(H, W)`` or ``(H, W, C)`` image by ``factor`` (0.4 = shrink to 40 %).

    Bilinear (``order=1``) and anti-aliased when shrinking, as StarDist's and Cellpose's
    rescaling; ``order=0`` (nearest neighbour) keeps label ids. Output height and width are
    ``round(H * factor)`` and ``round(W * factor)``.

    Parameters
    ----------
    image : array_like, GridImage or NDData
        The pixels (read whole).
    factor : float
        From :func:`resolve_scale`; 1.0 returns a float32 copy.
    order : {0, 1, 3}
        Interpolation order.

    Returns
    -------
    numpy.ndarray
        float32 (or the input's integer dtype with ``order=0``).

    Raises
    ------
    InferenceError
        The factor leaves fewer than 2 pixels along an axis.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.inference import resample
    >>> resample(np.ones((10, 20, 1)), 0.4).shape
    (4, 8, 1)
    """
    from skimage.transform import resize

    factor = _explicit_factor(factor, None)
    if order not in (0, 1, 3):
        raise ConfigError(f"order must be 0, 1 or 3; got {order!r}")
    data = np.asarray(as_array(image, load=True))
    out_hw = (round(data.shape[0] * factor), round(data.shape[1] * factor))
    if min(out_hw) < 2:
        raise InferenceError(
            f"scale factor {factor} turns an image of {data.shape[:2]} pixels into {out_hw}"
        )
    keep_int = order == 0 and data.dtype.kind in "iub"
    if factor == 1.0:
        return data.copy() if keep_int else data.astype(np.float32)
    shape = (*out_hw, *data.shape[2:])
    bad = None if keep_int else ~np.isfinite(data)
    if bad is not None and bad.any():  # NaN would spread over the filter's reach: fill, then
        # put NaN back where the nearest source pixel was bad (the bad region maps, not grows)
        good = data[~bad]
        data = np.where(bad, np.median(good) if good.size else 0.0, data)
        bad_out = resize(bad, shape, order=0, mode="reflect", anti_aliasing=False)
    else:
        bad_out = None
    out = resize(
        data if keep_int else data.astype(np.float32),
        shape,
        order=order,
        mode="reflect",
        preserve_range=True,
        anti_aliasing=factor < 1 and order > 0,
    )
    if keep_int:
        return out.astype(data.dtype)
    out = out.astype(np.float32)
    if bad_out is not None:
        out[bad_out] = np.nan
    return out
