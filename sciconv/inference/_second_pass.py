"""A second pass of :func:`~sciconv.inference.predict_instances` for faint or noisy objects.

Both compare the objects of the first pass, in the image as the model gets it (input transform
and normalization applied), with the training objects a model records:

``brightness="auto"``: a raw microscope image (not an 8-bit one a person already stretched for
display) can hold a few objects many times brighter than the rest (mitotic nuclei, a clump of
cells, a stain blob). The percentile stretch sets its top on those, so the other objects reach
the model at a few hundredths of its range, fainter than any training object, and are missed.
With metadata ``"object_level"`` (the median over training images of their median object,
``typical``, and ``faint_below``, under which none of them was), an image whose median object
sits below ``faint_below`` is segmented again with the stretch's top set so the median object
lands at the typical level (brighter objects saturate at 1, as over-exposed nuclei do in the
training images). Real fluorescence images re-exposed as a 16-bit camera records them with 5 %
of the nuclei 8x (20x) brighter: AP@0.5 0.767 -> 0.830 (0.599 -> 0.836).

``denoise="auto"``: a low-light image (tens of photons in a nucleus) reaches the model noisier
than any training image. With metadata ``"object_snr"`` (the median object's level over the
pixel noise inside objects, :func:`object_snr`; ``typical`` and ``noisy_below``), an image
below ``noisy_below`` is smoothed with a Gaussian of :data:`DENOISE_SIGMA` pixels (bad pixels
left out) and segmented again. The 15 bundled images at 10 / 30 / 120 photons at their
brightest: AP@0.5 0.437 / 0.614 / 0.813 -> 0.647 / 0.746 / 0.811.

Neither triggers on the 99 validation images or on the images as they are
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

#: The normalization methods whose stretch is linear: the ones a second pass can redo
LINEAR_METHODS = ("percentile", "minmax", "zscale")

#: The Gaussian (pixels) ``denoise="auto"`` smooths a noisy image with
DENOISE_SIGMA = 1.0


def object_level(labels, normalized) -> float | None:
    """The brightness of a typical object: the median over objects of each object's mean.

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
    return _level(*_grey(labels, normalized))


def object_snr(labels, normalized) -> float | None:
    """How far the typical object stands above the pixel noise inside objects.

    :func:`object_level` over the noise: the standard deviation (from the median absolute
    deviation, :func:`astropy.stats.mad_std`) of the second differences ``x[i-1] - 2 x[i] +
    x[i+1]`` along rows and columns, three pixels of one object, over sqrt(6) (its value for
    independent pixel noise). A linear ramp gives 0, so the rim of a small object and texture
    that spans several pixels (chromatin) hardly count; independent pixel noise does (first
    differences counted the rims of nuclei shrunk to half their size as noise).

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance labels, 0 = background.
    normalized : ndarray, shape (H, W) or (H, W, C)
        The image as the model gets it; channels are averaged, NaN pixels left out.

    Returns
    -------
    float or None
        None without three neighbouring finite pixels in one object; ``inf`` for noiseless
        objects (most second differences 0).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((40, 40), int); labels[5:35, 5:35] = 1
    >>> noise = np.random.default_rng(0).normal(0, 0.05, (40, 40))
    >>> round(object_snr(labels, np.where(labels > 0, 0.5, 0.0) + noise))  # 0.5 / 0.05
    10
    """
    labels, grey = _grey(labels, normalized)
    return _snr(labels, grey, _level(labels, grey))


def _grey(labels, normalized) -> tuple[np.ndarray, np.ndarray]:
    """(labels, the channel mean of ``normalized`` as float32), shapes checked."""
    labels = np.asarray(labels)
    values = np.asarray(normalized)
    if values.ndim == 3:
        values = values.mean(axis=-1, dtype=np.float32)
    values = values.astype(np.float32, copy=False)
    if values.shape != labels.shape:
        raise InferenceError(
            f"labels of shape {labels.shape} do not match an image of shape {values.shape[:2]}"
        )
    return labels, values


def _level(labels: np.ndarray, grey: np.ndarray) -> float | None:
    keep = (labels > 0) & np.isfinite(grey)
    ids = labels[keep]
    if ids.size == 0:
        return None
    if ids.max() <= 4 * labels.size:  # numbered objects: count by number
        index = ids.astype(np.intp, copy=False)
    else:  # sparse huge numbers
        index = np.unique(ids, return_inverse=True)[1]
    counts = np.bincount(index)
    sums = np.bincount(index, weights=grey[keep])
    return float(np.median(sums[counts > 0] / counts[counts > 0]))


def _snr(labels: np.ndarray, grey: np.ndarray, level: float | None) -> float | None:
    from astropy.stats import mad_std

    diffs = []
    for axis in (0, 1):
        a, b, c = ([slice(None)] * 2 for _ in range(3))
        a[axis], b[axis], c[axis] = slice(None, -2), slice(1, -1), slice(2, None)
        a, b, c = tuple(a), tuple(b), tuple(c)
        same = (labels[a] == labels[b]) & (labels[b] == labels[c]) & (labels[b] > 0)
        d = (grey[a] - 2 * grey[b] + grey[c])[same]
        diffs.append(d[np.isfinite(d)])
    d = np.concatenate(diffs)
    if d.size == 0 or level is None:
        return None
    sigma = float(mad_std(d)) / np.sqrt(6)
    return float(level / sigma) if sigma > 0 else float("inf")


def _recorded(meta: Mapping, key: str, low: str, top: float) -> tuple[float, float] | None:
    """(typical, low) of the model's metadata ``key``; None when absent.

    Raises
    ------
    InferenceError
        A recorded value that is not ``{"typical": T, low: F}`` with ``0 < F < T <= top``.
    """
    entry = meta.get(key)
    if entry is None:
        return None
    values = (entry.get("typical"), entry.get(low)) if isinstance(entry, Mapping) else ()
    if not (
        len(values) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        and 0 < values[1] < values[0] <= top
    ):
        bound = "" if top == float("inf") else f" <= {top:g}"
        raise InferenceError(
            f"the model's metadata {key!r} must be {{'typical': T, {low!r}: F}} with "
            f"0 < F < T{bound}; got {entry!r}; fix it with sciconv.models.set_metadata(model, "
            f"{key}=...) or remove it (None)"
        )
    return float(values[0]), float(values[1])


def smoothed(arr: np.ndarray, sigma: float = DENOISE_SIGMA) -> np.ndarray:
    """A Gaussian blur of an (H, W, C) image over H and W, bad (non-finite) pixels left out of
    every average and kept bad.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((5, 5, 1), np.float32); x[2, 2, 0] = np.nan
    >>> y = smoothed(x)
    >>> bool(np.isnan(y[2, 2, 0])), float(y[0, 0, 0])
    (True, 1.0)
    """
    from scipy import ndimage

    good = np.isfinite(arr)
    weights = ndimage.gaussian_filter(good.astype(np.float32), (sigma, sigma, 0))
    total = ndimage.gaussian_filter(np.where(good, arr, 0).astype(np.float32), (sigma, sigma, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weights
    out[~good] = np.nan
    return out


def second_pass_input(
    model,
    image,
    labels,
    *,
    normalize="model",
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    path=None,
    stacklevel: int = 2,
):
    """The image to segment once more (faint or noisy objects), or None to keep the first pass.

    Measures the first pass's objects (``labels``) in the image as the model got it:
    :func:`object_level` against the model's recorded ``"object_level"`` (``brightness``) and
    :func:`object_snr` against its ``"object_snr"`` (``denoise``; module notes). A noisy image
    is smoothed (:func:`smoothed`) before it is stretched again; a faint one gets the top of
    its stretch moved so that its median object lands at the typical level, clipped at 1. A
    :class:`~sciconv.errors.SciconvWarning` says what was done.

    Parameters
    ----------
    model : keras.Model
    image : array-like or GridImage
        The image of the first pass, as :func:`predict_instances` took it.
    labels : ndarray of int, shape (H, W)
        The first pass's instances.
    normalize
        As the first pass's ``normalize`` (a linear stretch, :data:`LINEAR_METHODS`; others:
        None).
    brightness, denoise : "auto" or None
        Which checks run.
    path : str, optional
        The file's name for the warning (a GridImage names its own).
    stacklevel : int
        Of the warning: 2 points at the caller.

    Returns
    -------
    ndarray of float32, shape (H, W, C), or None
        The model's input (transformed, normalized; NaN kept) for :func:`predict_tiled` with
        ``normalize=None``; None when the model records neither level, the stretch is not
        linear, fewer than :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects were
        found, or they are neither faint nor noisy.

    Raises
    ------
    InferenceError
        Labels that are not an (H, W) integer array of the image's size; a malformed recorded
        level.

    Examples
    --------
    >>> import numpy as np, keras
    >>> model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 1)])
    >>> print(second_pass_input(model, np.zeros((8, 8)), np.zeros((8, 8), int)))
    None
    """
    meta = get_metadata(model)
    level_of = _recorded(meta, "object_level", "faint_below", 1.0) if brightness else None
    snr_of = _recorded(meta, "object_snr", "noisy_below", float("inf")) if denoise else None
    if level_of is None and snr_of is None:
        return None
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
    arr = arr[..., None] if arr.ndim == 2 else arr

    def stretch(a):  # as the first pass stretched it (clipped at 1 when the spec says so)
        limits = compute_limits(Source(a, promote=False, path=path), spec)
        return limits, apply_limits(a, limits, clip=bool(spec.clip))

    limits, x = stretch(arr)
    if not np.all(limits.vmax > limits.vmin):  # a flat image: nothing to stretch
        return None
    labels, grey = _grey(labels, x)
    level = _level(labels, grey)
    snr = _snr(labels, grey, level) if snr_of is not None else None
    faint = level_of is not None and level is not None and level < level_of[1]
    noisy = snr_of is not None and snr is not None and snr < snr_of[1]
    if not (faint or noisy):
        return None
    said = []
    if noisy:
        arr = smoothed(arr)
        limits, x = stretch(arr)
        said.append(
            f"noisy (the median object {snr:.2g} times the pixel noise; the model's training "
            f"objects {snr_of[1]:g} or more, typically {snr_of[0]:g}): smoothed with a "
            f"Gaussian of {DENOISE_SIGMA:g} px"
        )
    if faint:
        share = min(max(object_level(labels, x) or level, 1e-3) / level_of[0], 1.0)
        top = limits.vmin + (limits.vmax - limits.vmin) * share
        moved = Limits(method=limits.method, vmin=limits.vmin, vmax=top, asinh_a=limits.asinh_a)
        x = apply_limits(arr, moved, clip=bool(spec.clip))
        np.minimum(x, np.float32(1.0), out=x)  # NaN stays NaN (a bad pixel)
        said.append(
            f"faint against the image's brightest pixels (the median object at {level:.3f} of "
            f"the stretch; the model's training objects {level_of[1]:g} or more, typically "
            f"{level_of[0]:g}): the stretch's top at {share:.3g} of it, brighter pixels "
            "saturated"
        )
    keys = [k for k, on in (("brightness", faint), ("denoise", noisy)) if on]
    warnings.warn(
        f"{_name(path)}the objects found are {'; and '.join(said)}; segmenting again "
        f"({', '.join(f'{k}=None' for k in keys)}, sciconv predict "
        f"{' '.join(f'--{k} none' for k in keys)}, keeps the first pass)",
        SciconvWarning,
        stacklevel=stacklevel,
    )
    return x.astype(np.float32, copy=False)


def _name(path) -> str:
    return f"{path}: " if path else ""
