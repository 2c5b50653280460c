"""Probabilities -> instance labels: a watershed on the distance transform, or interior seeds."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from sciconv._validation import is_number, look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io._common import warn_caller

#: Ways :func:`instances` splits foreground into objects.
METHODS = ("watershed", "connected")


def _validate_prob(prob) -> np.ndarray:
    if hasattr(prob, "compute") and not isinstance(prob, np.ndarray):  # dask
        prob = prob.compute()
    try:
        if isinstance(prob, np.ma.MaskedArray):  # masked = no data (QA: np.asarray dropped it)
            prob = np.ma.filled(prob.astype(np.float32), np.nan)
        prob = np.asarray(prob, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidImageError(f"prob must be a numeric array; got {type(prob).__name__}") from err
    if prob.ndim == 2:
        prob = prob[..., None]
    if prob.ndim != 3 or prob.shape[-1] not in (1, 2, 3) or 0 in prob.shape:
        raise InvalidImageError(
            f"prob must have shape (H, W) or (H, W, K) with K = 1 (foreground), 2 (background, "
            f"foreground) or 3 (background, interior, boundary); got shape {prob.shape}"
        )
    low, high = float(np.nanmin(prob, initial=0.0)), float(np.nanmax(prob, initial=0.0))
    if low < -0.01 or high > 1.01:  # a threshold of 0.5 on logits finds nothing, or everything
        warn_caller(
            f"prob holds values from {low:.3g} to {high:.3g}, not probabilities in [0, 1]: "
            "logits? apply a softmax (or sigmoid) first, as sciconv's models and predict_tiled do"
        )
    return prob


def _closing(mask: np.ndarray, size: int) -> np.ndarray:
    """The closing of ``mask`` by a ``size`` square; outside the array counts as empty (no bad
    column is drawn from an object to the image's edge)."""
    grown = ndi.maximum_filter(mask.astype(np.uint8), size=size, mode="constant", cval=0)
    return ndi.minimum_filter(grown, size=size, mode="constant", cval=0).astype(bool)


#: No-data strips at most this wide (pixels) join the objects on their two sides: a bad column
#: or row through one object. Wider ones (a chip gap between two stars) join nothing.
BRIDGE_ACROSS = 4


def _bridge_no_data(mask: np.ndarray, no_data: np.ndarray, gap: int) -> np.ndarray:
    """``mask`` with the no-data pixels that lie in a gap of one of its objects filled.

    Two rules, for no-data pixels only (a masked or missing input pixel, NaN in a probability
    map): a pixel in the closing, by a ``(2 gap + 1)`` square, of one connected object of
    ``mask`` (8-connected), reached through it and in no other object's closing (a saturated
    star's flagged core, a notch); and a pixel in a no-data strip at most
    :data:`BRIDGE_ACROSS` pixels wide between set pixels (a bad column through a star, which
    cuts it in two objects). A wider masked strip between two stars joins neither (QA: closing
    all objects at once by the large square merged two stars across a 12-pixel chip gap and
    made catalog rows of masked pixels alone), and a large no-data area next to an object is
    not claimed (a closing does not grow a convex outline). Pixels with data keep their value,
    so nothing changes on an image without no-data pixels, and the rules are local (a
    block-wise run gives the whole image's). No-data pixels within ``gap`` of the image's edge
    stay False.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        The pixels with data that are set (e.g. the foreground).
    no_data : ndarray of bool, shape (H, W)
        The pixels without data.
    gap : int
        Half the side of the square (pixels); 0 fills nothing.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Examples
    --------
    >>> import numpy as np
    >>> star = np.zeros((9, 12), bool); star[2:7, 2:7] = True
    >>> column = np.zeros((9, 12), bool); column[:, 4] = True  # a bad column through it
    >>> bridged = _bridge_no_data(star & ~column, column, 2)
    >>> bool(bridged[2:7, 4].all()), bool(bridged[0, 4] or bridged[8, 4])
    (True, False)
    >>> pair = np.zeros((12, 20), bool); pair[4:8, 1:5] = pair[4:8, 11:15] = True
    >>> strip = np.zeros((12, 20), bool); strip[:, 5:11] = True  # masked between two stars
    >>> bool(_bridge_no_data(pair, strip, 4)[:, 5:11].any())  # neither claims it
    False
    """
    if gap <= 0 or not no_data.any() or not mask.any():
        return mask
    size = 2 * int(gap) + 1
    eight = np.ones((3, 3), bool)
    across = min(size, BRIDGE_ACROSS + 1)  # a closing by k pixels fills gaps up to k - 1
    strips = no_data & _closing(mask, across) & ~mask  # thin strips through objects
    if strips.any():  # only pieces that touch an object (not a column between two: review)
        pieces, _ = ndi.label(strips, structure=eight)
        touching = np.unique(pieces[ndi.binary_dilation(mask, structure=eight) & strips])
        strips = np.isin(pieces, touching[touching > 0])
    out = mask | strips
    candidates = no_data & _closing(out, size) & ~out  # a superset of every object's
    if not candidates.any():
        return out
    objects, _ = ndi.label(out, structure=eight)
    near = ndi.maximum_filter(candidates.astype(np.uint8), size=2 * size + 1).astype(bool)
    claims = np.zeros(mask.shape, np.uint8)
    filled = np.zeros(mask.shape, bool)
    h, w = mask.shape
    slices = ndi.find_objects(objects)
    for i in np.unique(objects[near & out]):
        ys, xs = slices[i - 1]
        window = (
            slice(max(0, ys.start - size), min(h, ys.stop + size)),
            slice(max(0, xs.start - size), min(w, xs.stop + size)),
        )
        own = objects[window] == i
        fill = _closing(own, size) & candidates[window]
        if not fill.any():
            continue
        joined, _ = ndi.label(own | fill, structure=eight)
        fill &= joined == joined[own][0]  # only through the object: no detached piece
        claims[window] += fill
        filled[window] |= fill
    return out | (filled & (claims == 1))


def _validate_number(value, *, name: str, low: float, high: float | None = None) -> float:
    if not is_number(value) or not math.isfinite(value):  # NaN passed every bound: 0 objects
        raise ConfigError(f"{name} must be a finite number; got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bound}; got {value!r}")
    return float(value)


def with_unmarked(markers: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Give every foreground component that holds no marker a marker of its own (its whole area).

    The rule :func:`instances` applies before its watershed, so that no object is lost because
    no seed fell inside it (a faint nucleus whose interior probability never passed
    ``seed_threshold``); a custom seeding rule that should lose no object applies it too.

    Parameters
    ----------
    markers : ndarray of int, shape (H, W)
        Watershed markers (0 = no marker; 1..M).
    foreground : ndarray of bool, shape (H, W)
        The pixels to be labelled.

    Returns
    -------
    ndarray of int, shape (H, W)
        ``markers`` plus, in every connected foreground component without one, that whole
        component as a new marker (numbered after ``markers.max()``).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import with_unmarked
    >>> fg = np.zeros((3, 7), bool); fg[:, :2] = True; fg[:, 4:] = True
    >>> markers = np.zeros((3, 7), int); markers[1, 0] = 1
    >>> with_unmarked(markers, fg)[1].tolist()
    [1, 0, 0, 0, 2, 2, 2]
    """
    comp, n = ndi.label(foreground)
    if n == 0:
        return markers
    has = np.zeros(n + 1, dtype=bool)
    has[comp[markers > 0]] = True
    has[0] = True
    missing = ~has[comp]
    if missing.any():
        extra, _ = ndi.label(missing)
        markers = np.where(missing, extra + markers.max(), markers)
    return markers


def _finish(labels: np.ndarray, min_size: int, no_data: np.ndarray | None = None) -> np.ndarray:
    from skimage.segmentation import relabel_sequential

    if no_data is not None and no_data.any() and labels.max() > 0:  # no object of NaN alone
        seen = np.zeros(int(labels.max()) + 1, bool)
        seen[labels[~no_data]] = True
        seen[0] = True
        labels = np.where(seen[labels], labels, 0)
    if min_size > 1 and labels.max() > 0:  # pixels with data: bridged ones do not count
        counted = labels if no_data is None or not no_data.any() else labels[~no_data]
        sizes = np.bincount(counted.ravel(), minlength=int(labels.max()) + 1)
        small = sizes < min_size
        small[0] = False
        labels = np.where(small[labels], 0, labels)
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)


#: :func:`instances`' foreground threshold when none is given or recorded.
DEFAULT_THRESHOLD = 0.5


def instance_threshold(settings) -> float:
    """The foreground threshold instance labels are made with under ``settings``.

    Parameters
    ----------
    settings : Mapping
        Post-processing keywords of :func:`instances` (a model's recorded ones updated by a
        run's overrides, or those overrides alone).

    Returns
    -------
    float
        ``settings["threshold"]``, else :data:`DEFAULT_THRESHOLD`: the floor of every object's
        ``score`` (:func:`object_scores`).

    Examples
    --------
    >>> from sciconv.postprocess import instance_threshold
    >>> instance_threshold({"threshold": 0.6, "min_size": 20}), instance_threshold({})
    (0.6, 0.5)
    """
    value = settings.get("threshold") if settings else None
    return float(DEFAULT_THRESHOLD if value is None else value)


def instances(
    prob,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_size: int = 20,
    method: str = "watershed",
    min_distance: int = 3,
    smooth: float = 1.5,
    seed_threshold: float | None = None,
    bridge: int = 8,
) -> np.ndarray:
    """Instance labels from a probability map.

    Parameters
    ----------
    prob : ndarray of shape (H, W) or (H, W, K)
        Per-pixel scores (e.g. :func:`sciconv.inference.predict_tiled`). K = 1: foreground
        probability; K = 2: (background, foreground); K = 3: (background, interior, boundary).
        NaN marks pixels without data (masked or missing input pixels, as
        :func:`~sciconv.inference.predict_tiled` leaves them): see ``bridge``. The masked
        pixels of a :class:`numpy.ma.MaskedArray` are NaN pixels.
    threshold : float, optional
        Foreground is ``foreground probability > threshold`` (K = 3: ``interior + boundary``).
        Default 0.5.
    min_size : int, optional
        Objects with fewer pixels with data (NaN pixels joined by ``bridge`` do not count) are
        removed: specks of noise and the slivers a watershed cuts
        off an object's rim. Default 20 (none of the 4,039 fluorescence nuclei of the DSB2018
        validation images is smaller; their median is 378). Lower it for point-like objects such
        as stars (e.g. 3).
    method : {"watershed", "connected"}, optional
        ``"watershed"`` (default) splits touching objects: for K <= 2, markers are the peaks
        (at least ``min_distance`` apart, adjacent peaks merged) of the Gaussian-smoothed
        distance transform of the foreground, flooded over ``-distance``; for K = 3, markers are
        the connected regions of ``interior > seed_threshold``, flooded over ``-interior``
        within the foreground. A foreground component without a marker keeps one label.
        ``"connected"``: connected components of the foreground (4-connectivity), nothing split.
    min_distance : int, optional
        Minimum distance (pixels) between distance-transform peaks (K <= 2). Default 3.
    smooth : float, optional
        Sigma (pixels) of the Gaussian smoothing of the distance transform (0 = none): more
        smoothing, fewer spurious peaks on ragged outlines (fewer objects cut in two), but
        touching objects are split less readily. Default 1.5.
    seed_threshold : float, optional
        Interior threshold for the K = 3 markers. Default: ``threshold``.
    bridge : int, optional
        NaN pixels join an object when they lie in a gap of that one object (its closing by a
        ``2 bridge + 1`` square) or in a strip at most :data:`BRIDGE_ACROSS` pixels wide
        through it: a flagged saturated core or a bad column no longer cuts a star into several
        objects (QA: 23 of 41 saturated HST stars became 2-5 catalog rows; 4 now), while a
        masked strip between two objects joins neither. They are labelled, so
        :func:`~sciconv.postprocess.measure` counts them in ``masked_fraction`` and leaves them
        out of the fluxes; ``min_size`` counts pixels with data only. Other NaN pixels are
        background. Default 8 (cores up to about 15 pixels across); 0: every NaN pixel is
        background.

    Returns
    -------
    ndarray of int32, shape (H, W)
        0 = background, objects numbered 1..N consecutively.

    Raises
    ------
    InvalidImageError
        ``prob`` has the wrong shape.
    ConfigError
        An option out of range or an unknown method.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import instances
    >>> yy, xx = np.mgrid[:40, :60]
    >>> discs = ((yy - 20) ** 2 + (xx - 20) ** 2 < 100) | ((yy - 20) ** 2 + (xx - 37) ** 2 < 100)
    >>> int(instances(discs.astype("float32")).max())  # two touching discs -> two objects
    2
    >>> int(instances(discs.astype("float32"), method="connected").max())
    1
    """
    p = _validate_prob(prob)
    threshold = _validate_number(threshold, name="threshold", low=0.0, high=1.0)
    min_size = int(_validate_number(min_size, name="min_size", low=0))
    method = look_up_option(method, METHODS, name="method")
    min_distance = int(_validate_number(min_distance, name="min_distance", low=1))
    smooth = _validate_number(smooth, name="smooth", low=0.0)
    seed_threshold = threshold if seed_threshold is None else seed_threshold
    seed_threshold = _validate_number(seed_threshold, name="seed_threshold", low=0.0, high=1.0)
    gap = int(_validate_number(bridge, name="bridge", low=0))

    no_data = ~np.isfinite(p).all(axis=-1)
    p = np.where(np.isfinite(p), p, np.float32(0))
    k = p.shape[-1]
    if k == 3:
        foreground = (p[..., 1] + p[..., 2]) > threshold
    else:
        foreground = p[..., -1] > threshold
    foreground = _bridge_no_data(foreground, no_data, gap)
    if method == "connected" or not foreground.any():
        labels, _ = ndi.label(foreground)
        return _finish(labels, min_size, no_data)

    from skimage.segmentation import watershed

    if k == 3:
        interior = p[..., 1]
        seeds = _bridge_no_data((interior > seed_threshold) & foreground, no_data, gap)
        interior = np.where(seeds & no_data, np.float32(1), interior)  # a bridged seed floods
        markers, _ = ndi.label(seeds)
        markers = with_unmarked(markers, foreground)
        labels = watershed(-interior, markers, mask=foreground)
        return _finish(labels, min_size, no_data)

    from skimage.feature import peak_local_max

    distance = ndi.distance_transform_edt(foreground)
    if smooth > 0:
        distance = ndi.gaussian_filter(distance, smooth)
    components, _ = ndi.label(foreground)
    peaks = peak_local_max(
        distance, min_distance=min_distance, labels=components, exclude_border=False
    )
    marked = np.zeros(foreground.shape, dtype=bool)
    marked[tuple(peaks.T)] = True
    markers, _ = ndi.label(marked)
    markers = with_unmarked(markers, foreground)
    labels = watershed(-distance, markers, mask=foreground)
    return _finish(labels, min_size, no_data)
