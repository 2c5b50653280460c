"""``object_size="auto"`` for objects too large to be seen whole: a probe at half resolution.

A nucleus three to five times the training size is not found at its size: the model cuts it
into pieces of about the training size, so the first pass's sizes lie inside the range it
segments well and :func:`~sciconv.inference.auto_size_factor` keeps them. Two signs give it
away. Large objects carry little boundary probability inside them (the boundary band is a
few pixels wide whatever the object's size), and at half the resolution the same image gives
objects at least half as large again. So a first pass whose objects hold under
:data:`PROBE_BOUNDARY_SHARE` is probed at half the resolution, and again at half of that
(:data:`PROBE_LEVELS` at most) while the objects keep growing (:func:`grew`) and still hold
little boundary probability; the largest objects found set the resampling
(:func:`probe_factor`). Measured on real DSB2018 validation images enlarged 3 and 5 times
(``benchmarks/real_nuclei_large.py``); at their own size, no validation image changed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from sciconv._warnings import caught
from sciconv.errors import SciconvWarning
from sciconv.inference._scale import AUTO_SIZE_MIN_OBJECTS, same_factor
from sciconv.io._common import warn_caller

#: A first pass whose objects hold less boundary probability than this, on average, is probed
#: at half resolution (objects at the training size hold 0.08-0.39 on real images).
PROBE_BOUNDARY_SHARE = 0.10
#: The probe's objects must be this many times larger (median diameter) than the first pass's...
PROBE_GROWTH = 1.5
#: ...and hold less boundary probability than this (objects shrunk too far hold more).
PROBE_MAX_SHARE = 0.25
#: At most this many probes, each at half the resolution of the last (1/2, 1/4, 1/8), while the
#: objects keep growing and still hold little boundary probability.
PROBE_LEVELS = 3


def boundary_share(labels: np.ndarray, prob: np.ndarray) -> float | None:
    """The mean boundary probability over the objects' pixels, for a three-class
    (background / interior / boundary) probability map; None for other maps or no objects.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance labels found from ``prob``.
    prob : ndarray, shape (H, W, K)
        The class probabilities, at the labels' size.

    Returns
    -------
    float or None

    Examples
    --------
    >>> import numpy as np
    >>> prob = np.zeros((4, 4, 3), np.float32); prob[..., 1] = 0.8; prob[..., 2] = 0.2
    >>> labels = np.zeros((4, 4), int); labels[1:3, 1:3] = 1
    >>> round(boundary_share(labels, prob), 3)
    0.2
    >>> print(boundary_share(labels, prob[..., :2]))
    None
    """
    prob = np.asarray(prob)
    objects = np.asarray(labels) > 0
    if prob.ndim != 3 or prob.shape[-1] != 3 or not objects.any():
        return None
    return float(prob[..., 2][objects].mean())


def wants_probe(share: float | None) -> bool:
    """Whether a first pass whose objects hold ``share`` boundary probability is probed.

    Examples
    --------
    >>> wants_probe(0.03), wants_probe(0.2), wants_probe(None)
    (True, False, False)
    """
    return share is not None and share < PROBE_BOUNDARY_SHARE


def grew(first, probe, probe_share: float | None) -> bool:
    """Whether a probe at half the resolution of ``first`` found its objects to be pieces of
    larger ones: at least :data:`AUTO_SIZE_MIN_OBJECTS` objects in both, the probe's median
    diameter :data:`PROBE_GROWTH` times the first's or more, and its objects holding less
    boundary probability than :data:`PROBE_MAX_SHARE`.

    Parameters
    ----------
    first, probe : array_like of int, shape (H, W)
        The two passes' labels, both at the input's size.
    probe_share : float or None
        :func:`boundary_share` of the probe (at its own resolution).

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> first = np.zeros((140, 210), int); probe = np.zeros((140, 210), int)
    >>> for k in range(6):  # six 60 px squares, each found as four 30 px pieces first
    ...     y, x = 70 * (k // 3), 70 * (k % 3)
    ...     probe[y : y + 60, x : x + 60] = k + 1
    ...     quarters = np.kron([[1, 2], [3, 4]], np.ones((30, 30), int))
    ...     first[y : y + 60, x : x + 60] = 4 * k + quarters
    >>> grew(first, probe, 0.05), grew(first, probe, 0.3), grew(probe, first, 0.05)
    (True, False, False)
    """
    from sciconv.postprocess import equivalent_diameters

    if probe_share is None or probe_share >= PROBE_MAX_SHARE:
        return False
    d1, d2 = equivalent_diameters(np.asarray(first)), equivalent_diameters(np.asarray(probe))
    if min(len(d1), len(d2)) < AUTO_SIZE_MIN_OBJECTS:
        return False
    return float(np.median(d2)) >= PROBE_GROWTH * float(np.median(d1))


def probe_factor(meta: Mapping, first, probe, level: float = 0.5, *, stacklevel: int = 2) -> float:
    """The zoom factor that brings the probe's objects (which :func:`grew` out of the first
    pass's) to the model's training size, said in a warning.

    Parameters
    ----------
    meta : mapping
        The model's metadata (``object_size``: the training diameter, pixels).
    first, probe : array_like of int, shape (H, W)
        The first pass's and the probe's labels, both at the input's size.
    level : float, optional
        The probe's resolution relative to the first pass's (1/2, 1/4, 1/8), for the warning.
    stacklevel : int, optional
        Of the warning.

    Returns
    -------
    float
        ``object_size / d`` for the probe's median diameter ``d`` (input pixels).

    Examples
    --------
    >>> import warnings, numpy as np
    >>> first = np.zeros((140, 210), int); probe = np.zeros((140, 210), int)
    >>> for k in range(6):
    ...     y, x = 70 * (k // 3), 70 * (k % 3)
    ...     probe[y : y + 60, x : x + 60] = k + 1
    ...     first[y : y + 60, x : x + 60] = 4 * k + np.kron([[1, 2], [3, 4]], np.ones((30, 30)))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     probe_factor({"object_size": 18.0}, first, probe)  # d 33.9 -> 67.7 px
    0.266
    """
    from sciconv.postprocess import equivalent_diameters

    training = float(meta["object_size"])
    d1 = float(np.median(equivalent_diameters(np.asarray(first))))
    d2 = float(np.median(equivalent_diameters(np.asarray(probe))))
    again = float(f"{training / d2:.3g}")
    warnings.warn(
        f"object_size='auto': the objects found ({d1:.3g} px across) look like pieces of "
        f"larger ones: at 1/{round(1 / level):d} of the resolution they are {d2:.3g} px "
        f"across; the result is the image segmented resampled by {again:g} (to the training "
        f"size, {training:g} px). Pass scale= or object_size= to choose, object_size=None "
        "to keep the first pass",
        SciconvWarning,
        stacklevel=stacklevel,
    )
    return again


#: Side of the crop on which block-wise runs check the objects' size (``object_size="auto"``)
SIZE_CHECK_CROP = 1024
#: Crops checked on an image that holds several apart (the median factor is used)
SIZE_CHECK_CROPS = 3
#: Candidate crops per axis at most (spread evenly over a slide), ranked by how busy they are
_CANDIDATES_PER_AXIS = 5


def busy_crops(read, shape, side: int | None = None, n: int = SIZE_CHECK_CROPS):
    """The (y, x) corners of up to ``n`` ``side`` x ``side`` windows whose pixels stray most
    from the image's typical value (objects, not empty slide or sky), busiest first.

    An image that holds several windows apart along an axis is tiled by up to 5 per axis,
    spread evenly, and the ``n`` busiest are returned, so one odd region (a fold, a patch of
    giant cells, a bright star field) is one vote of ``n``; a smaller image gives one window,
    the busiest of a 3 x 3 grid of overlapping ones.

    Parameters
    ----------
    read : callable
        ``read((y0, y1), (x0, x1))`` -> the window (h, w[, C]).
    shape : tuple
        The image's (H, W, ...).
    side : int, optional
        The window's side (default :data:`SIZE_CHECK_CROP`).
    n : int
        The most windows returned.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((300, 300)); image[220:260, 30:80] = 5.0; image[20:40, 120:160] = 3
    >>> read = lambda ys, xs: image[ys[0]:ys[1], xs[0]:xs[1]]
    >>> busy_crops(read, image.shape, side=100, n=2)  # 3 x 3 windows apart: the two busiest
    [(200, 0), (0, 100)]
    >>> busy_crops(read, image.shape, side=200)  # overlapping windows: the busiest one
    [(100, 0)]
    """
    h, w = int(shape[0]), int(shape[1])
    side = SIZE_CHECK_CROP if side is None else int(side)

    def starts(length: int) -> list[int]:
        k = min(_CANDIDATES_PER_AXIS, length // side)
        if k < 2:  # overlapping windows: before, middle and end
            return sorted({0, max(length - side, 0) // 2, max(length - side, 0)})
        return sorted({round(i * (length - side) / (k - 1)) for i in range(k)})

    apart = min(h // side, _CANDIDATES_PER_AXIS) >= 2 or min(w // side, _CANDIDATES_PER_AXIS) >= 2
    corners = [(y, x) for y in starts(h) for x in starts(w)]
    step = max(1, side // 128)  # about 128 x 128 pixels of each window
    windows = []
    for y, x in corners:
        part = np.asarray(read((y, min(y + side, h)), (x, min(x + side, w))), np.float32)
        windows.append(part[::step, ::step].reshape(-1))
    level = np.nanmedian(np.concatenate(windows))
    spread = [np.nanmean(np.abs(v - level)) if np.isfinite(v).any() else -1.0 for v in windows]
    order = sorted(range(len(corners)), key=lambda i: -spread[i])  # stable: ties in grid order
    return [corners[i] for i in order[: (n if apart else 1)]]


def holds_crops_apart(shape, side: int | None = None) -> bool:
    """Whether an image of ``shape`` holds two ``side`` x ``side`` crops apart along an axis, so
    that :func:`check_size_on_crop` votes on several of them.

    Examples
    --------
    >>> holds_crops_apart((2048, 1000)), holds_crops_apart((1040, 1388))
    (True, False)
    """
    side = SIZE_CHECK_CROP if side is None else int(side)
    return max(int(shape[0]), int(shape[1])) >= 2 * side


def check_size_on_crop(
    read,
    shape,
    decide,
    factor: float = 1.0,
    *,
    side: int | None = None,
    whole: bool = False,
    meta: Mapping | None = None,
) -> float:
    """``object_size="auto"`` decided on the busiest crops of a large image (:func:`busy_crops`)
    by ``decide(ys, xs)`` (``predict_instances`` with ``object_size="auto"`` on that crop, its
    first pass at ``factor``), its warnings dropped. Block-wise runs resample every block by
    it; an image segmented in one piece that holds several crops apart is resampled by it.

    When the crops agree, their factor. When they disagree (regions of objects of different
    sizes) and each crop's objects' size is known, the factor that brings the smallest and the
    largest equally far from the training size (``meta["object_size"]``), if it brings every
    crop's objects within :data:`SHARED_FACTOR_SPREAD` of it (and inside
    ``meta["object_size_range"]``): a mosaic of real nuclei enlarged 5x, crops of 46, 61 and
    95 px nuclei asking for 1, 1 and 0.19, is segmented at 0.27 (AP@0.5 0.38 -> 0.83). When no
    factor does, the median of the crops' factors (of two, the one nearer ``factor``): one
    region of odd objects is one vote. When the factor differs from ``factor``, or the
    crops disagree, a :class:`~sciconv.errors.SciconvWarning` (attributed to the caller of
    sciconv) says so.

    Parameters
    ----------
    read : callable
        ``read((y0, y1), (x0, x1))`` -> the raw window.
    shape : tuple
        The image's (H, W, ...).
    decide : callable
        ``decide((y0, y1), (x0, x1))``: the factor that crop is segmented at, as an image of
        its own would be, ``object_size="auto"``, or ``(factor, diameter)`` with the median
        diameter of its objects (the image's pixels; None: unknown). A crop that keeps
        ``factor`` with no diameter (too few objects to tell, or pieces not enlarged) abstains:
        a slide of sparse large objects is not kept at its pixels by crops holding few each.
    factor : float
        The factor before the check (the pixel scales'; 1.0: none).
    side : int, optional
        The crops' side (default :data:`SIZE_CHECK_CROP`).
    whole : bool
        The image is segmented in one piece (the warnings say so), not block by block.
    meta : mapping, optional
        The model's metadata: ``object_size`` and ``object_size_range`` (pixels), for crops
        that disagree.

    Returns
    -------
    float
        The factor the image (every block) is resampled by.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((64, 64))
    >>> check_size_on_crop(lambda ys, xs: image[ys[0]:ys[1], xs[0]:xs[1]], image.shape,
    ...                    lambda ys, xs: 1.0)
    1.0
    """
    h, w = int(shape[0]), int(shape[1])
    side = SIZE_CHECK_CROP if side is None else int(side)
    found, sizes = [], []  # (factor, where), the crops' objects' diameters
    for y, x in busy_crops(read, shape, side):
        ys, xs = (y, min(y + side, h)), (x, min(x + side, w))
        with caught("ignore"):  # the crops' own notes: the caller says what it does
            decided = decide(ys, xs)
        f, d = decided if isinstance(decided, tuple) else (decided, None)
        if isinstance(decided, tuple) and d is None and same_factor(f, factor):
            continue  # too few objects to tell (or pieces): a crop that keeps abstains
        found.append((float(f), f"rows {ys[0]}:{ys[1]}, columns {xs[0]}:{xs[1]}"))
        sizes.append(d)
    if not found:
        return factor
    values = sorted(f for f, _ in found)
    mid = len(values) // 2
    again = values[mid] if len(values) % 2 else min(values[mid - 1 : mid + 1],
                                                      key=lambda v: abs(v - factor))  # fmt: skip
    crop = f"{min(side, h)} x {min(side, w)}"
    how, segmented = (
        ("in one piece", "the image is") if whole else ("block by block", "every block is")
    )
    if not all(same_factor(f, found[0][0]) for f, _ in found):
        said = "; ".join(f"{where}: {f:.3g}" for f, where in found)
        between = _keeping_all(sizes, meta)
        rule = f"at the median, {again:.3g}"
        if between is not None:
            again = between
            across = ", ".join(f"{d:.3g}" for d in sizes)
            rule = (f"at {again:.3g}, which brings every crop's objects ({across} px across) "
                    f"within {SHARED_FACTOR_SPREAD:g}x of the training size, "
                    f"{meta['object_size']:g} px")  # fmt: skip
        warn_caller(
            f"object_size='auto' ({how}): the busiest {crop} crops of the image need "
            f"different resampling ({said}), so their objects differ in size by region; "
            f"{segmented} segmented {rule}. Segment such regions separately with scale= (or "
            "object_size=) to choose",
            "sciconv",
        )
        return again
    if same_factor(again, factor):
        return factor
    which = (
        f"the busiest {crop} crop of the image ({found[0][1]}) needs"
        if len(found) == 1
        else f"the {len(found)} busiest {crop} crops of the image ({found[0][1]}, ...) need"
    )
    warn_caller(
        f"object_size='auto' ({how}): segmented as images of their own, {which} resampling by "
        f"{again:.3g} to the model's training size, so "
        f"{segmented} segmented resampled by {again:.3g} (labels back at the image's "
        "pixels). Pass scale= or object_size= to choose, object_size=None to keep the image's "
        "pixels",
        "sciconv",
    )
    return again


#: Crops that disagree share a factor only when it brings all their objects within this ratio
#: of the training size (and inside the model's range): on the validation images, nuclei at
#: half or twice the training size lose 0.03-0.07 AP@0.5 against it, farther ones much more
#: (a mosaic of rows at 1x and 5x, at the one factor between: 0.74 -> 0.21).
SHARED_FACTOR_SPREAD = 2.0


def _keeping_all(sizes, meta: Mapping | None) -> float | None:
    """The factor that brings the smallest and largest of ``sizes`` (diameters, pixels) equally
    far (in ratio) from the training size, moved into the factors that keep all of them within
    :data:`SHARED_FACTOR_SPREAD` of it and inside the range the model segments well; None when
    a size is unknown or no factor keeps them."""
    if meta is None or not sizes or any(d is None or not d > 0 for d in sizes):
        return None
    training, limits = meta.get("object_size"), meta.get("object_size_range")
    if training is None or limits is None:
        return None
    low = max(float(limits[0]), float(training) / SHARED_FACTOR_SPREAD)
    high = min(float(limits[1]), float(training) * SHARED_FACTOR_SPREAD)
    lo, hi = max(low / d for d in sizes), min(high / d for d in sizes)
    if lo > hi:
        return None
    best = float(training) / float(np.sqrt(min(sizes) * max(sizes)))
    return float(f"{min(max(best, lo), hi):.3g}")
