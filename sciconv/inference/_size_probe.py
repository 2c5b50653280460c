"""``object_size="auto"`` for objects too large to be seen whole: a probe at half resolution.

A nucleus three to five times the training size is not found at its size: the model cuts it
into pieces of about the training size, so the first pass's sizes lie inside the range it
segments well and :func:`~sciconv.inference.auto_size_factor` keeps them. Two signs give it
away. Large objects carry little boundary probability inside them (the boundary band is a
few pixels wide whatever the object's size), and at half the resolution the same image gives
objects at least half as large again. Measured on real DSB2018 validation images enlarged
3-5 times (``benchmarks/real_nuclei_large.py``): first passes with a boundary share under
:data:`PROBE_BOUNDARY_SHARE`, probe objects 1.5 times larger than the first pass's with a
boundary share under :data:`PROBE_MAX_SHARE`; at their own size, no real image fired.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from sciconv.errors import SciconvWarning
from sciconv.inference._scale import AUTO_SIZE_MIN_OBJECTS, SCALE_TOLERANCE

#: A first pass whose objects hold less boundary probability than this, on average, is probed
#: at half resolution (objects at the training size hold 0.08-0.39 on real images).
PROBE_BOUNDARY_SHARE = 0.10
#: The probe's objects must be this many times larger (median diameter) than the first pass's...
PROBE_GROWTH = 1.5
#: ...and hold less boundary probability than this (objects shrunk too far hold more).
PROBE_MAX_SHARE = 0.25


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


def probe_factor(
    meta: Mapping,
    first,
    probe,
    probe_share: float | None,
    *,
    stacklevel: int = 2,
) -> float | None:
    """The zoom factor to segment at when a half-resolution probe finds the first pass's objects
    to be pieces of larger ones (said in a warning); None to keep the first pass.

    Parameters
    ----------
    meta : mapping
        The model's metadata (``object_size``: the training diameter, pixels).
    first, probe : array_like of int, shape (H, W)
        The first pass's and the probe's labels, both at the input's size.
    probe_share : float or None
        :func:`boundary_share` of the probe (at its own resolution).
    stacklevel : int, optional
        Of the warning.

    Returns
    -------
    float or None
        ``object_size / d`` for the probe's median diameter ``d`` (input pixels).

    Examples
    --------
    >>> import warnings, numpy as np
    >>> first = np.zeros((140, 210), int); probe = np.zeros((140, 210), int)
    >>> for k in range(6):  # six 60 px squares, each found as four 30 px pieces first
    ...     y, x = 70 * (k // 3), 70 * (k % 3)
    ...     probe[y : y + 60, x : x + 60] = k + 1
    ...     quarters = np.kron([[1, 2], [3, 4]], np.ones((30, 30), int))
    ...     first[y : y + 60, x : x + 60] = 4 * k + quarters
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     probe_factor({"object_size": 18.0}, first, probe, 0.05)  # d 33.9 -> 67.7 px
    0.266
    >>> print(probe_factor({"object_size": 18.0}, first, probe, 0.3))  # shrunk too far
    None
    """
    from sciconv.postprocess import equivalent_diameters

    training = meta.get("object_size")
    if training is None or probe_share is None or probe_share >= PROBE_MAX_SHARE:
        return None
    d1, d2 = equivalent_diameters(np.asarray(first)), equivalent_diameters(np.asarray(probe))
    if min(len(d1), len(d2)) < AUTO_SIZE_MIN_OBJECTS:
        return None
    d1, d2 = float(np.median(d1)), float(np.median(d2))
    if d2 < PROBE_GROWTH * d1:
        return None
    again = float(f"{float(training) / d2:.3g}")
    warnings.warn(
        f"object_size='auto': the objects found ({d1:.3g} px across) look like pieces of "
        f"larger ones: at half the resolution they are {d2:.3g} px across; segmented again "
        f"with the image resampled by {again:g} (to the training size, {float(training):g} px). "
        "Pass scale= or object_size= to choose, object_size=None to keep the first pass",
        SciconvWarning,
        stacklevel=stacklevel,
    )
    return again


def same_factor(a: float, b: float) -> bool:
    """Whether two zoom factors are the same resampling (within ``SCALE_TOLERANCE``)."""
    return abs(a / b - 1.0) < SCALE_TOLERANCE
