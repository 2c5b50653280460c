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
left out) and segmented again. A first pass that found fewer than
:data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects (a noisy image hides them) is judged on
the whole image's pixel noise (:attr:`SecondPassCheck.noise_limit`), and a posterised image
(:data:`POSTERISED_LEVELS`) is smoothed too. The 15 bundled images at 10 / 30 / 120 photons at
their brightest: AP@0.5 0.437 / 0.614 / 0.813 -> 0.710 / 0.746 / 0.811; 7 grey levels 0.417 ->
0.560.

Neither triggers on the 99 validation images or on the images as they are
(``benchmarks/real_nuclei_brightness.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Callable, Mapping

import numpy as np

from sciconv.errors import InferenceError
from sciconv.inference._decisions import note_second_pass
from sciconv.inference._scale import AUTO_SIZE_MIN_OBJECTS
from sciconv.inference._source import (
    Source,
    TransformedArray,
    check_precision,
    compute_limits,
    input_transform,
    sample_lines,
    validate_image,
)
from sciconv.io._common import warn_caller
from sciconv.io._precision import float32_steps
from sciconv.models import get_metadata
from sciconv.preprocess import Limits, NormSpec, apply_limits, resolve_normalization

#: The normalization methods whose stretch is linear: the ones a second pass can redo
LINEAR_METHODS = ("percentile", "minmax", "zscale")

#: The Gaussian (pixels) ``denoise="auto"`` smooths a noisy image with
DENOISE_SIGMA = 1.0

#: ``denoise="auto"``: an image holding fewer distinct pixel values than this (as given, before
#: its input transform) is posterised (a dim signal in a wide container). Real fluorescence
#: images quantised to 6 grey levels: AP@0.5 0.96 -> 0.10 and 0.88 -> 0.77, smoothed 0.61 and
#: 0.80; 12 and 15 levels: smoothed +0.03; 18 and 22: smoothing lost 0.04 and nothing
#: (``real_nuclei_brightness.py``)
POSTERISED_LEVELS = 16
#: The distinct values :class:`ObjectStats` keeps (enough to tell a posterised image)
LEVELS_KEPT = 64
#: Pixels at most that the whole image's measures (noise, levels) take (evenly spaced)
_LEVEL_SAMPLES = 4_000_000


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
    >>> from sciconv.inference import object_level
    >>> labels = np.array([[1, 1, 0, 2, 2, 0, 3]])
    >>> image = np.array([[0.2, 0.4, 0.0, 0.5, 0.7, 0.0, 0.9]])
    >>> round(object_level(labels, image), 3)
    0.6
    """
    return ObjectStats.of(labels, normalized, diffs=False).level


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
    >>> from sciconv.inference import object_snr
    >>> labels = np.zeros((40, 40), int); labels[5:35, 5:35] = 1
    >>> noise = np.random.default_rng(0).normal(0, 0.05, (40, 40))
    >>> round(object_snr(labels, np.where(labels > 0, 0.5, 0.0) + noise))  # 0.5 / 0.05
    10
    """
    return ObjectStats.of(labels, normalized).snr


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


def _means(labels: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Each object's mean over its finite pixels (float64, one per object that has any)."""
    keep = (labels > 0) & np.isfinite(grey)
    ids = labels[keep]
    if ids.size == 0:
        return np.zeros(0)
    if ids.max() <= 4 * labels.size:  # numbered objects: count by number
        index = ids.astype(np.intp, copy=False)
    else:  # sparse huge numbers
        index = np.unique(ids, return_inverse=True)[1]
    counts = np.bincount(index)
    sums = np.bincount(index, weights=grey[keep])
    return sums[counts > 0] / counts[counts > 0]


def _second_differences(grey: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """``x[i-1] - 2 x[i] + x[i+1]`` along rows and columns over runs of three finite pixels (of
    one object, with ``labels``)."""
    diffs = []
    for axis in (0, 1):
        a, b, c = ([slice(None)] * 2 for _ in range(3))
        a[axis], b[axis], c[axis] = slice(None, -2), slice(1, -1), slice(2, None)
        a, b, c = tuple(a), tuple(b), tuple(c)
        d = grey[a] - 2 * grey[b] + grey[c]
        if labels is not None:
            d = d[(labels[a] == labels[b]) & (labels[b] == labels[c]) & (labels[b] > 0)]
        d = d.ravel()
        diffs.append(d[np.isfinite(d)])
    return np.concatenate(diffs)


def _thinned(values: np.ndarray, most: int | None) -> np.ndarray:
    """At most ``most`` of ``values``, evenly spaced."""
    return values if most is None or values.size <= most else values[:: -(-values.size // most)]


def distinct_values(image) -> np.ndarray:
    """The distinct finite values of an image (channels averaged), at most :data:`LEVELS_KEPT`
    of them (more: it is not posterised, and how many more does not matter).

    Examples
    --------
    >>> import numpy as np
    >>> distinct_values(np.array([[500, 501], [501, 506]], np.uint16)).tolist()
    [500.0, 501.0, 506.0]
    """
    values = np.asarray(image, dtype=np.float32)
    if values.ndim == 3:
        values = values.mean(axis=-1, dtype=np.float32)
    values = values.ravel()
    values = _thinned(values[np.isfinite(values)], _LEVEL_SAMPLES)
    return np.unique(values)[:LEVELS_KEPT]


@dataclasses.dataclass(frozen=True)
class ObjectStats:
    """What the second-pass checks measure of a pass's objects, mergeable over blocks.

    Attributes
    ----------
    means : ndarray of float64
        Each object's mean in the image as the model got it (channels averaged).
    diffs : ndarray of float32
        Second differences inside objects (:func:`object_snr`), at most ``max_diffs`` of them
        per part, evenly spaced.
    pixel_diffs : ndarray of float32
        Second differences over the whole image (objects and background), as many: the pixel
        noise of an image whose objects were not found.
    levels : ndarray or None
        The distinct values of the image as it was given (channels averaged), at most
        :data:`LEVELS_KEPT` (a posterised image holds fewer than :data:`POSTERISED_LEVELS`);
        None when not measured.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 0, 2, 2]])
    >>> left = ObjectStats.of(labels, np.array([[0.2, 0.4, 0.0, 0.6, 0.8]]))
    >>> both = ObjectStats.merged([left, ObjectStats.of(labels, np.ones((1, 5)))])
    >>> both.count, round(both.level, 3)
    (4, 0.85)
    """

    means: np.ndarray
    diffs: np.ndarray
    pixel_diffs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    levels: np.ndarray | None = None

    @classmethod
    def of(
        cls, labels, normalized, *, diffs: bool = True, max_diffs: int | None = None, raw=None
    ) -> ObjectStats:
        """The measures of ``labels`` (H, W) in ``normalized`` (H, W) or (H, W, C); with
        ``diffs``, the whole image's pixel noise too (for fewer than
        :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects, or a part with ``max_diffs``),
        and the distinct values of ``raw`` (the image before its input transform, whose
        saturation restoring fills in values)."""
        labels, grey = _grey(labels, normalized)
        means = _means(labels, grey)
        if not diffs:
            return cls(means, np.zeros(0, np.float32))
        inside = _thinned(_second_differences(grey, labels), max_diffs)
        whole = np.zeros(0, np.float32)
        # the whole image's noise judges a pass with few objects; a block's count is not the
        # image's (max_diffs: a part to merge), so a block always measures it
        if max_diffs is not None or means.size < AUTO_SIZE_MIN_OBJECTS:
            most = max_diffs if max_diffs is not None else _LEVEL_SAMPLES
            whole = _thinned(_second_differences(grey), most)
        levels = None if raw is None else distinct_values(raw)
        return cls(means, inside, whole, levels)

    @classmethod
    def merged(cls, parts) -> ObjectStats:
        """The measures of several parts (blocks) together."""
        parts = list(parts)
        levels = [p.levels for p in parts if p.levels is not None]
        return cls(
            np.concatenate([np.zeros(0)] + [p.means for p in parts]),
            np.concatenate([np.zeros(0, np.float32)] + [p.diffs for p in parts]),
            np.concatenate([np.zeros(0, np.float32)] + [p.pixel_diffs for p in parts]),
            np.unique(np.concatenate(levels))[:LEVELS_KEPT] if levels else None,
        )

    @property
    def count(self) -> int:
        """The number of objects measured."""
        return int(self.means.size)

    @functools.cached_property
    def level(self) -> float | None:
        """:func:`object_level`: the median of the object means (None without objects)."""
        return float(np.median(self.means)) if self.means.size else None

    @functools.cached_property
    def snr(self) -> float | None:
        """:func:`object_snr`: the level over the pixel noise from the second differences."""
        from astropy.stats import mad_std

        level = self.level
        if self.diffs.size == 0 or level is None:
            return None
        sigma = float(mad_std(self.diffs)) / np.sqrt(6)
        return float(level / sigma) if sigma > 0 else float("inf")

    @functools.cached_property
    def pixel_noise(self) -> float | None:
        """The whole image's pixel noise (as :func:`object_snr` measures it inside objects);
        None when not measured."""
        from astropy.stats import mad_std

        if self.pixel_diffs.size == 0:
            return None
        return float(mad_std(self.pixel_diffs)) / float(np.sqrt(6))

    @property
    def posterised(self) -> bool:
        """Whether the image holds fewer than :data:`POSTERISED_LEVELS` distinct values."""
        return self.levels is not None and self.levels.size < POSTERISED_LEVELS


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

    Parameters
    ----------
    arr : ndarray, shape (H, W, C)
        The image; non-finite pixels are bad.
    sigma : float, optional
        Standard deviation of the Gaussian in pixels. Default :data:`DENOISE_SIGMA`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.inference import smoothed
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
    normalize: str | Mapping | NormSpec | None = "model",
    brightness: str | None = "auto",
    denoise: str | None = "auto",
    path=None,
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

    Returns
    -------
    ndarray of float32, shape (H, W, C), or None
        The model's input (transformed, normalized; NaN kept) for :func:`predict_tiled` with
        ``normalize=None``; None when the model records neither level, the stretch is not
        linear, or the objects are neither faint nor noisy (:meth:`SecondPassCheck.judge`).

    Raises
    ------
    InferenceError
        Labels that are not an (H, W) integer array of the image's size; a malformed recorded
        level.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sciconv.inference import second_pass_input
    >>> model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 1)])
    >>> print(second_pass_input(model, np.zeros((8, 8)), np.zeros((8, 8), int)))
    None
    """
    check = SecondPassCheck.of(model, normalize, brightness=brightness, denoise=denoise)
    if check is None:
        return None
    image, given_path = validate_image(image)
    path = path or given_path
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "biu":
        raise InferenceError(
            f"labels must be an (H, W) integer array; got {labels.dtype} of shape {labels.shape}"
        )
    source = Source(image, promote=len(image.shape) == 2, path=path)
    raw = source.limits_sample()
    check_precision(source, raw)  # the image is measured in float32 below
    arr = input_transform(model, image, path)
    if isinstance(arr, TransformedArray):  # a memory map or lazy file: read whole (one piece)
        arr = arr[:, :]
    arr = np.asarray(arr, dtype=np.float32)
    arr = arr[..., None] if arr.ndim == 2 else arr
    limits = compute_limits(Source(arr, promote=False, path=path), check.spec)
    if not np.all(limits.vmax > limits.vmin):  # a flat image: nothing to stretch
        return None
    stats = ObjectStats.of(
        labels, check.stretch(arr, limits), diffs=check.snr_of is not None, raw=raw
    )
    faint, noisy = check.judge(stats)
    if not (faint or noisy):
        return None
    if noisy:
        arr = smoothed(arr)
        limits = compute_limits(Source(arr, promote=False, path=path), check.spec)
    share = None
    if faint:
        level = object_level(labels, check.stretch(arr, limits)) or stats.level
        share = check.top_share(level)
    second = SecondPass.of(check, limits, share=share, noisy=noisy)
    check.warn(stats, second, path=path)
    return second.stretch(arr)


@dataclasses.dataclass(frozen=True)
class SecondPassCheck:
    """What a model records for the second-pass checks, and the normalization they measure in.

    Attributes
    ----------
    spec : NormSpec
        The first pass's normalization (a linear stretch, :data:`LINEAR_METHODS`).
    level_of, snr_of : (typical, threshold) or None
        The model's ``"object_level"`` (``faint_below``) and ``"object_snr"`` (``noisy_below``)
        when ``brightness`` / ``denoise`` ask for their check.
    noise_limit : float or None
        With ``denoise``: the pixel noise (in the stretch's units) over which an image whose
        first pass found fewer than :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects
        is noisy: the typical training object's level over ``noisy_below`` (0.089 for the
        pretrained nuclei model; its validation images 0.004-0.03, real fluorescence at 10
        photons 0.12-0.17). None: such images are left as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import NormSpec
    >>> check = SecondPassCheck(NormSpec("percentile"), (0.5, 0.2), None)
    >>> check.judge(ObjectStats(np.full(40, 0.05), np.zeros(0, np.float32)))  # (faint, noisy)
    (True, False)
    """

    spec: NormSpec
    level_of: tuple[float, float] | None
    snr_of: tuple[float, float] | None
    noise_limit: float | None = None

    @classmethod
    def of(cls, model, normalize, *, brightness="auto", denoise="auto") -> SecondPassCheck | None:
        """The checks ``model`` can run on a pass normalized by ``normalize``; None: none.

        Raises
        ------
        InferenceError
            A malformed recorded level.
        """
        meta = get_metadata(model)
        levels = _recorded(meta, "object_level", "faint_below", 1.0)
        level_of = levels if brightness else None
        snr_of = _recorded(meta, "object_snr", "noisy_below", float("inf")) if denoise else None
        if level_of is None and snr_of is None:
            return None
        spec = resolve_normalization(
            normalize, recorded=meta.get("normalization"), error=InferenceError
        )
        if spec is None or spec.method not in LINEAR_METHODS:
            return None
        limit = levels[0] / snr_of[1] if levels is not None and snr_of is not None else None
        return cls(spec, level_of, snr_of, limit)

    def stretch(self, arr: np.ndarray, limits: Limits) -> np.ndarray:
        """``arr`` stretched as the first pass stretched it (clipped when the spec says so)."""
        return apply_limits(arr, limits, clip=bool(self.spec.clip))

    def top_share(self, level: float) -> float:
        """Where a faint image's stretch puts its top, as a share of the first one: the median
        object at ``level`` of the first stretch lands at the typical level (at most 1)."""
        return min(max(level, 1e-3) / self.level_of[0], 1.0)

    def judge(self, stats: ObjectStats) -> tuple[bool, bool]:
        """(faint, noisy) of a pass's objects.

        Faint needs :data:`~sciconv.inference.AUTO_SIZE_MIN_OBJECTS` objects. Noisy: the
        objects' :func:`object_snr` under ``noisy_below``; with fewer objects (a noisy image
        hides its objects), the whole image's pixel noise over :attr:`noise_limit`; either way,
        a posterised image (:data:`POSTERISED_LEVELS`): smoothing fills in its steps.
        """
        noisy = self.why_noisy(stats) is not None
        if stats.count < AUTO_SIZE_MIN_OBJECTS:
            return False, noisy
        level = stats.level
        faint = self.level_of is not None and level is not None and level < self.level_of[1]
        return faint, noisy

    def why_noisy(self, stats: ObjectStats) -> str | None:
        """Which rule of :meth:`judge` finds a pass noisy: ``"objects"`` (their SNR),
        ``"pixels"`` (few objects, noisy pixels), ``"levels"`` (posterised); None: not noisy."""
        if self.snr_of is None:
            return None
        if stats.count < AUTO_SIZE_MIN_OBJECTS:
            noise = stats.pixel_noise if self.noise_limit is not None else None
            if noise is not None and noise > self.noise_limit:
                return "pixels"
        elif stats.snr is not None and stats.snr < self.snr_of[1]:
            return "objects"
        return "levels" if stats.posterised else None

    def warn(self, stats: ObjectStats, second: SecondPass, *, path) -> None:
        """The :class:`~sciconv.errors.SciconvWarning` that says what ``second`` does,
        attributed to the first caller outside sciconv."""
        said = []
        smoothing = f"smoothed with a Gaussian of {DENOISE_SIGMA:g} px"
        why = self.why_noisy(stats) if second.noisy else None
        if why == "levels":
            cause = float32_steps(stats.levels) or (
                f"{stats.levels.size} distinct pixel values, e.g. a dim signal in a 16-bit "
                "container; far fewer than the model's training images"
            )
            said.append(f"in a posterised image ({cause}): {smoothing}")
        elif why == "pixels":
            said.append(
                f"only {stats.count} in an image noisier than the model's training images (pixel "
                f"noise {stats.pixel_noise:.2g} of the stretch; theirs under "
                f"{self.noise_limit:.2g}): {smoothing}"
            )
        elif why == "objects":
            said.append(
                f"noisy (the median object {stats.snr:.2g} times the pixel noise; the model's "
                f"training objects {self.snr_of[1]:g} or more, typically {self.snr_of[0]:g}): "
                f"{smoothing}"
            )
        if second.share is not None:
            said.append(
                f"faint against the image's brightest pixels (the median object at "
                f"{stats.level:.3f} of the stretch; the model's training objects "
                f"{self.level_of[1]:g} or more, typically {self.level_of[0]:g}): the stretch's "
                f"top at {second.share:.3g} of it, brighter pixels saturated"
            )
        keys = [k for k, on in (("brightness", second.share), ("denoise", second.noisy)) if on]
        warn_caller(
            f"{_name(path)}the objects found are {'; and '.join(said)}; segmenting again "
            f"({', '.join(f'{k}=None' for k in keys)}, sciconv predict "
            f"{' '.join(f'--{k} none' for k in keys)}, keeps the first pass)",
            "sciconv",
        )
        note_second_pass(self, stats, second)  # recorded beside the setting (decisions())


@dataclasses.dataclass(frozen=True)
class SecondPass:
    """How the second pass turns the (input-transformed) image into the model's input.

    Picklable, so block-wise runs hand it to their workers.

    Attributes
    ----------
    limits : Limits
        The stretch (of the smoothed image when ``noisy``), its top moved when ``share`` is set.
    clip : bool
        The first pass's clipping.
    noisy : bool
        Smooth with :func:`smoothed` before the stretch.
    share : float or None
        Faint objects: the stretch's top at this share of the first one; values above 1 are
        saturated.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import Limits, NormSpec
    >>> limits = Limits("percentile", np.array([0.0]), np.array([10.0]))
    >>> check = SecondPassCheck(NormSpec("percentile"), (0.5, 0.2), None)
    >>> second = SecondPass.of(check, limits, share=0.5, noisy=False)  # the top at 5, not 10
    >>> [round(float(v), 3) for v in second(np.array([[[1.0], [2.5], [20.0]]]))[0, :, 0]]
    [0.2, 0.5, 1.0]
    """

    limits: Limits
    clip: bool
    noisy: bool
    share: float | None

    @classmethod
    def of(cls, check: SecondPassCheck, limits: Limits, *, share, noisy) -> SecondPass:
        """The second pass from the (smoothed image's) ``limits`` and the faint objects' share."""
        if share is not None:
            top = limits.vmin + (limits.vmax - limits.vmin) * share
            limits = Limits(
                method=limits.method, vmin=limits.vmin, vmax=top, asinh_a=limits.asinh_a
            )
        return cls(limits, bool(check.spec.clip), bool(noisy), share)

    def stretch(self, arr: np.ndarray) -> np.ndarray:
        """An already smoothed (when ``noisy``) image stretched: float32, NaN kept."""
        x = apply_limits(arr, self.limits, clip=self.clip)
        if self.share is not None:
            np.minimum(x, np.float32(1.0), out=x)  # NaN stays NaN (a bad pixel)
        return x.astype(np.float32, copy=False)

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        """A window (H, W, C) of the input-transformed image -> the model's input."""
        return self.stretch(smoothed(arr) if self.noisy else arr)


def blocks_second_pass(
    check: SecondPassCheck,
    stats: ObjectStats,
    limits: Limits,
    smoothed_sample: Callable[[], np.ndarray],
    *,
    path=None,
) -> SecondPass | None:
    """The second pass of a block-wise run, from its first pass's objects over all blocks.

    As :func:`second_pass_input` decides for a whole image, on the merged measures of every
    block's objects (``stats``, in the image stretched by the whole image's ``limits``). When
    smoothing, the stretch is measured again on ``smoothed_sample()`` (the pixels the limits
    are measured on, of the smoothed image; :func:`smoothed_limits_sample`); a faint image's
    typical object is then placed from its level in the first stretch's units.

    Returns
    -------
    SecondPass or None
        None: keep the first pass.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sciconv.preprocess import Limits, NormSpec
    >>> check = SecondPassCheck(NormSpec("percentile"), (0.5, 0.2), None)
    >>> stats = ObjectStats(np.full(40, 0.05), np.zeros(0, np.float32))  # 40 faint objects
    >>> limits = Limits("percentile", np.array([0.0]), np.array([100.0]))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     second = blocks_second_pass(check, stats, limits, None)
    >>> second.share, float(second.limits.vmax[0])  # the top where the median object is 0.5
    (0.1, 10.0)
    """
    faint, noisy = check.judge(stats)
    if not (faint or noisy):
        return None
    share = None
    if noisy:
        first, limits = (
            limits,
            compute_limits(Source(smoothed_sample(), promote=False, path=path), check.spec),
        )
    if faint:
        share = stats.level
        if noisy:  # the typical object in raw units, then in the smoothed image's stretch
            raw = first.vmin + stats.level * (first.vmax - first.vmin)
            share = float(np.mean((raw - limits.vmin) / (limits.vmax - limits.vmin)))
        share = check.top_share(share)
    second = SecondPass.of(check, limits, share=share, noisy=noisy)
    check.warn(stats, second, path=path)
    return second


def smoothed_limits_sample(read, shape, transform=None, *, window: int = 1024) -> np.ndarray:
    """The limits sample (:meth:`Source.limits_sample`'s pixels) of the smoothed image, read
    window by window: the same values as :func:`smoothed` over the whole image gives there.

    Parameters
    ----------
    read : callable
        ``read((y0, y1), (x0, x1))`` -> the raw window (h, w, C) as float32.
    shape : tuple
        The image's (H, W, ...).
    transform : callable, optional
        The model's input transform, applied to each window before smoothing.
    window : int
        Side of the windows read (plus the Gaussian's reach around them).

    Returns
    -------
    ndarray of float32, shape (rows, columns, C)

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(size=(40, 30, 1)).astype("float32")
    >>> read = lambda ys, xs: image[ys[0]:ys[1], xs[0]:xs[1]]
    >>> sample = smoothed_limits_sample(read, image.shape, window=16)
    >>> bool(np.allclose(sample, smoothed(image), atol=1e-6))
    True
    """
    h, w = int(shape[0]), int(shape[1])
    lines = sample_lines(h, w)
    rows, cols = (np.arange(h), np.arange(w)) if lines is None else lines
    reach = int(4.0 * DENOISE_SIGMA + 0.5)  # scipy's Gaussian: truncate 4 sigma
    out = None
    for y0 in range(0, h, window):
        y1 = min(y0 + window, h)
        rs = rows[(rows >= y0) & (rows < y1)]
        if rs.size == 0:
            continue
        for x0 in range(0, w, window):
            x1 = min(x0 + window, w)
            cs = cols[(cols >= x0) & (cols < x1)]
            if cs.size == 0:
                continue
            ry0, ry1, rx0, rx1 = (
                max(y0 - reach, 0),
                min(y1 + reach, h),
                max(x0 - reach, 0),
                min(x1 + reach, w),
            )
            part = np.asarray(read((ry0, ry1), (rx0, rx1)), dtype=np.float32)
            part = part[..., None] if part.ndim == 2 else part
            if transform is not None:
                part = np.asarray(transform(part), dtype=np.float32)
            part = smoothed(part)[np.ix_(rs - ry0, cs - rx0)]
            if out is None:
                out = np.empty((rows.size, cols.size, part.shape[-1]), np.float32)
            out[np.ix_(np.searchsorted(rows, rs), np.searchsorted(cols, cs))] = part
    return out


def check_switches(brightness, denoise) -> None:
    """Refuse ``brightness`` / ``denoise`` other than "auto" or None (:func:`auto_or_none`).

    Examples
    --------
    >>> check_switches("auto", None)
    """
    for name, value in (("brightness", brightness), ("denoise", denoise)):
        if value is not None:
            auto_or_none(value, name)


def auto_or_none(value, name: str, more: str = "") -> None:
    """Refuse a value other than ``"auto"`` (None, off, is the caller's to let through), saying
    that None, not ``"none"``, turns it off.

    Examples
    --------
    >>> auto_or_none("auto", "denoise")
    >>> auto_or_none("none", "denoise")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.errors.InferenceError: denoise must be 'auto' or None (off; ...); got 'none'
    """
    if not (isinstance(value, str) and value == "auto"):
        raise InferenceError(
            f"{name} must be 'auto'{more} or None (off; the command line's 'none'); got {value!r}"
        )


def _name(path) -> str:
    return f"{path}: " if path else ""
