"""``brightness="auto"`` of :func:`~sciconv.inference.predict_instances`: faint objects.

A raw microscope image (not an 8-bit one a person already stretched for display) can hold a few
objects many times brighter than the rest: mitotic nuclei, a clump of cells, a bright stain
blob. The percentile stretch sets its top on those, so the other objects reach the model at a
few hundredths of its range, fainter than any object it saw in training, and are missed. A
model that records the brightness of its training objects (metadata ``"object_level"``: the
median over training images of their median object, ``typical``, and the level under which
none of them was, ``faint_below``) lets :func:`predict_instances` check the first pass: when
the median object it found sits below ``faint_below`` of the stretch, the image is segmented
again with the stretch's top set so that the median object lands at the typical level (brighter
objects saturate at 1, as over-exposed nuclei do in the training images).

Measured on the 15 bundled real fluorescence images re-exposed as a 16-bit camera would record
them, with 5 % of the nuclei 8x (20x) brighter: AP@0.5 0.721 -> 0.790 (0.526 -> 0.781); the 99
validation images and the images as they are do not trigger it
(``benchmarks/real_nuclei_brightness.py``).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping

import numpy as np

from sciconv.errors import InferenceError, SciconvWarning
from sciconv.inference._scale import AUTO_SIZE_MIN_OBJECTS
from sciconv.inference._source import (
    Source,
    TransformedArray,
    compute_limits,
    input_transform,
    validate_image,
)
from sciconv.models import get_metadata
from sciconv.preprocess import Limits, apply_limits, resolve_normalization

#: The normalization methods whose stretch is linear: the ones whose top can be moved
LINEAR_METHODS = ("percentile", "minmax", "zscale")


def object_level(labels, normalized) -> float | None:
    """The brightness of a typical object: the median over objects of each object's median.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance labels, 0 = background.
    normalized : ndarray, shape (H, W) or (H, W, C)
        The image as the model gets it (after its input transform and normalization); channels
        are averaged. NaN pixels are left out.

    Returns
    -------
    float or None
        None without labelled finite pixels.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 0, 2, 2, 0, 3]])
    >>> image = np.array([[0.2, 0.4, 0.0, 0.5, 0.7, 0.0, 0.9]])
    >>> round(object_level(labels, image), 3)
    0.6
    """
    labels = np.asarray(labels)
    values = np.asarray(normalized, dtype=np.float64)
    if values.ndim == 3:
        values = values.mean(axis=-1)
    if values.shape != labels.shape:
        raise InferenceError(
            f"labels of shape {labels.shape} do not match an image of shape {values.shape[:2]}"
        )
    from scipy import ndimage

    finite = np.isfinite(values)
    kept = np.where(finite, labels, 0)
    ids = np.unique(kept[kept > 0])
    if ids.size == 0:
        return None
    return float(np.median(ndimage.median(np.where(finite, values, 0.0), kept, ids)))


def _recorded_level(meta: Mapping) -> tuple[float, float] | None:
    """(typical, faint_below) of the model's metadata ``"object_level"``; None when absent.

    Raises
    ------
    InferenceError
        A recorded value that is not ``{"typical": t, "faint_below": f}`` with
        ``0 < f < t <= 1``.
    """
    level = meta.get("object_level")
    if level is None:
        return None
    values = (level.get("typical"), level.get("faint_below")) if isinstance(level, Mapping) else ()
    if not (
        len(values) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        and 0 < values[1] < values[0] <= 1
    ):
        raise InferenceError(
            "the model's metadata 'object_level' must be {'typical': T, 'faint_below': F} with "
            f"0 < F < T <= 1 (levels in the normalized image); got {level!r}; fix it with "
            "sciconv.models.set_metadata(model, object_level=...) or remove it (None)"
        )
    return float(values[0]), float(values[1])


def relevelled_input(model, image, labels, *, normalize, path=None, stacklevel: int = 2):
    """``brightness="auto"``: the image to segment again, or None to keep the first pass.

    The image is given back as the model gets it (input transform applied, normalized with the
    top of the stretch moved, clipped at 1; NaN kept), for :func:`predict_tiled` with
    ``normalize=None``. None when the model records no ``"object_level"``, ``normalize`` is
    not a linear stretch (:data:`LINEAR_METHODS`), fewer than
    :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects were found, or their median
    object is not below the recorded ``faint_below``. When it segments again a
    :class:`~sciconv.errors.SciconvWarning` says so.

    Examples
    --------
    >>> import numpy as np, keras
    >>> model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 1)])
    >>> print(relevelled_input(model, np.zeros((8, 8)), np.zeros((8, 8), int), normalize="model"))
    None
    """
    meta = get_metadata(model)
    recorded = _recorded_level(meta)
    if recorded is None:
        return None
    typical, faint = recorded
    spec = resolve_normalization(
        normalize, recorded=meta.get("normalization"), error=InferenceError
    )
    if spec is None or spec.method not in LINEAR_METHODS:
        return None
    image, given_path = validate_image(image)
    path = path or given_path
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "biu":
        raise InferenceError(
            f"labels must be an (H, W) integer array; got {labels.dtype} of shape {labels.shape}"
        )
    if np.unique(labels[labels > 0]).size < AUTO_SIZE_MIN_OBJECTS:
        return None
    arr = input_transform(model, image, path)
    if isinstance(arr, TransformedArray):  # a memory map or lazy file: read whole (one piece)
        arr = arr[:, :]
    arr = np.asarray(arr, dtype=np.float32)
    source = Source(arr, promote=arr.ndim == 2, path=path)
    limits = compute_limits(source, spec)
    x = apply_limits(arr[..., None] if arr.ndim == 2 else arr, limits)
    if not np.all(limits.vmax > limits.vmin):  # a flat image: nothing to stretch
        return None
    level = object_level(labels, x)
    if level is None or not level < faint:
        return None
    share = max(level, 1e-3) / typical
    top = limits.vmin + (limits.vmax - limits.vmin) * share
    moved = Limits(method=limits.method, vmin=limits.vmin, vmax=top, asinh_a=limits.asinh_a)
    x = apply_limits(arr[..., None] if arr.ndim == 2 else arr, moved)
    np.minimum(x, np.float32(1.0), out=x)  # NaN stays NaN (a bad pixel)
    warnings.warn(
        f"{_name(path)}the objects found are faint against the image's brightest pixels (the "
        f"median object at {level:.3f} of the stretch; the model's training objects: "
        f"{faint:g} or more, typically {typical:g}): segmenting again with the stretch's top "
        f"at {share:.3g} of it, brighter pixels saturated (brightness=None, sciconv predict "
        "--brightness none, keeps the first pass)",
        SciconvWarning,
        stacklevel=stacklevel,
    )
    return x.astype(np.float32, copy=False)


def _name(path) -> str:
    return f"{path}: " if path else ""
