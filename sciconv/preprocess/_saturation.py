"""Saturated objects: flat plateaus at the detector's ceiling given back a profile."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from sciconv.preprocess._limits import finite_values, validate_image

#: The smallest plateau restored: its most inner pixel at least this many pixels from its edge
#: (a 5 x 5 core). Smaller ones are the clipped tops of bright peaks, which a network reads as
#: they are (restoring them changed nothing on the DSB2018 validation images that have them).
MIN_PLATEAU_RADIUS = 3.0

#: The ring outside a plateau whose brightness gradient gives its flanks' slope (pixels).
_RING = 2


def restore_saturated(
    image, level: float | None = None, *, min_radius: float = MIN_PLATEAU_RADIUS
) -> np.ndarray:
    """Give the flat plateaus of saturated objects back a rounded profile.

    An over-exposed nucleus or star is a flat disc at the detector's ceiling: a network trained
    on unsaturated objects sees no rise to its centre and, where two touch, no dip between them,
    and loses them (the pretrained nuclei model found 4 of 24 large nuclei once a quarter of the
    image was saturated). Each plateau of pixels at ``level`` whose core is at least
    ``min_radius`` pixels from its edge is raised by a paraboloid that continues its flanks: its
    slope at the edge is the median brightness gradient of the 2 px ring around the plateau,
    flattening to zero at the plateau's most inner pixel (``slope * (d - d**2 / (2 d_max))``, d
    the distance to the plateau's edge). Two saturated nuclei that touch get a saddle where they
    meet. Everything else is left as it is; on an image with no such plateau the result equals
    the input.

    Parameters
    ----------
    image : array-like
        ``(H, W)`` or ``(H, W, C)`` pixels, objects bright (the form a model gets after its input
        transform). NaN = bad pixel (never part of a plateau). With several channels, the
        plateau is found on their mean and every channel is raised alike.
    level : float, optional
        The saturation level: pixels at or above it are saturated. Default: the image's largest
        finite value.
    min_radius : float
        The smallest plateau core restored (pixels; :data:`MIN_PLATEAU_RADIUS`).

    Returns
    -------
    ndarray of float32
        The image, same shape, plateaus raised.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:40, :40]
    >>> nucleus = np.clip(300 - 20 * np.hypot(yy - 20, xx - 20), 0, None).astype(np.float32)
    >>> clipped = np.minimum(nucleus, 200.0)            # a flat core 10 px across
    >>> restored = restore_saturated(clipped)
    >>> float(clipped[20, 20]), bool(restored[20, 20] > 230), float(restored[0, 0])
    (200.0, True, 0.0)
    >>> bool(np.array_equal(restore_saturated(nucleus), nucleus))   # nothing saturated
    True
    """
    x = np.array(validate_image(image, name="image"), dtype=np.float32)
    grey = x if x.ndim == 2 else x.mean(axis=-1, dtype=np.float32)
    if level is None:
        finite = finite_values(grey)
        if not finite.size:
            return x
        level = float(finite.max())
    saturated = grey >= np.float32(level)  # NaN compares False: never saturated
    raise_by = _plateau_profile(grey, saturated, float(min_radius))
    if raise_by is None:
        return x
    return x + (raise_by if x.ndim == 2 else raise_by[..., None])


def _plateau_profile(grey: np.ndarray, saturated: np.ndarray, min_radius: float):
    """``(H, W)`` float32 heights to add to the plateaus restored (None: none is)."""
    plateaus, n = ndi.label(saturated)
    if n == 0:
        return None
    sizes = np.bincount(plateaus.ravel(), minlength=n + 1)
    smallest = (2 * int(np.ceil(min_radius)) - 1) ** 2  # the fewest pixels a core that deep has
    if not (sizes[1:] >= smallest).any():
        return None
    distance = ndi.distance_transform_edt(saturated).astype(np.float32)
    index = np.arange(n + 1)
    deepest = np.asarray(ndi.maximum(distance, plateaus, index), dtype=np.float32)
    kept = (sizes >= smallest) & (deepest >= min_radius)
    kept[0] = False
    if not kept.any():
        return None
    ids = np.where(kept[plateaus], plateaus, 0)
    # the ring around each kept plateau, labelled with it, and the flanks' gradient there
    grown = ndi.grey_dilation(ids, size=(2 * _RING + 1, 2 * _RING + 1))
    ring = np.where((grown > 0) & ~saturated & np.isfinite(grey), grown, 0)
    filled = np.where(np.isfinite(grey), grey, np.float32(0.0))
    gy, gx = np.gradient(ndi.gaussian_filter(filled, 1.0))
    steepness = np.hypot(gy, gx)
    slope = np.zeros(n + 1, np.float32)
    with_ring = np.unique(ring[ring > 0])
    if with_ring.size:
        slope[with_ring] = ndi.median(steepness, ring, with_ring)
    d = distance
    top = np.maximum(deepest[ids], np.float32(1.0))
    height = slope[ids] * (d - d * d / (2 * top))
    return np.where(ids > 0, height, np.float32(0.0)).astype(np.float32)
