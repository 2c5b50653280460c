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
#: The smoothing of the image before its gradient is taken (sigma, pixels).
_SMOOTH = 1.0
#: The margin around a plateau's box its computation needs: the ring, the gradient's pixel and
#: the smoothing's reach (scipy truncates at 4 sigma).
_PAD = _RING + 1 + int(4 * _SMOOTH)
#: A plateau whose box spans this share of the image's (window's) height or width is not an
#: object but a frame or a border at the top value (a white mount, 255-padding): left as it is.
FRAME_SPAN = 0.9
#: The share of a plateau's pixels at the level itself (the rest above it: hot pixels) for it
#: to count as flat.
FLAT_SHARE = 0.9
#: Distinct values (from the top) tried as the saturation level: above a camera's ceiling sit
#: hot pixels and cosmic rays, which form no plateau.
_LEVEL_CANDIDATES = 4


def _core_side(min_radius: float) -> int:
    """The side of the smallest plateau with a core ``min_radius`` deep (a square of side
    ``2 r - 1``: it has the fewest pixels, the side squared)."""
    return 2 * int(np.ceil(min_radius)) - 1


def saturation_level(grey: np.ndarray, *, min_radius: float = MIN_PLATEAU_RADIUS) -> float | None:
    """The value at which ``grey`` (``(H, W)``) is saturated: the highest value whose pixels form
    a plateau :func:`restore_saturated` restores (a core ``min_radius`` deep, not a frame), or
    None. Hot pixels and cosmic rays above a camera's ceiling are passed over (the highest
    :data:`_LEVEL_CANDIDATES` values held by enough pixels are tried).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((40, 40), np.float32); image[10:20, 10:20] = 4095.0
    >>> image[30, 30] = image[2, 35] = 65535.0               # hot pixels above the ceiling
    >>> saturation_level(image), saturation_level(np.eye(5, dtype=np.float32))
    (4095.0, None)
    """
    side = _core_side(min_radius)
    smallest = side**2
    finite = finite_values(grey)
    if finite.size < smallest or min(grey.shape[:2]) < side:
        return None
    k = max(finite.size - max(smallest, finite.size // 100), 0)  # the top 1 %, at least a core
    top = finite[finite >= np.partition(finite, k)[k]]
    values, counts = np.unique(top, return_counts=True)
    for value in values[::-1][counts[::-1] >= smallest][:_LEVEL_CANDIDATES]:
        if _plateau_profile(grey, float(value), float(min_radius), test=True) is not None:
            return float(value)
    return None


def channel_mean(x: np.ndarray) -> np.ndarray:
    """The mean over the last axis of an ``(H, W, C)`` float32 image (R, G, B of an RGBA one),
    as ``(H, W)`` float32: the grey image whose plateaus :func:`restore_saturated` finds
    (channels added one by one, several times faster than ``x.mean(axis=-1)``).

    Examples
    --------
    >>> import numpy as np
    >>> channel_mean(np.array([[[1.0, 2.0, 6.0]]], np.float32)).tolist()
    [[3.0]]
    """
    if x.shape[-1] == 1:
        return x[..., 0]
    channels = 3 if x.shape[-1] == 4 else x.shape[-1]  # RGBA: its alpha is no brightness
    total = x[..., 0].astype(np.float32, copy=True)
    for c in range(1, channels):
        total += x[..., c]
    return total / np.float32(channels)


def restore_saturated(
    image, level: float | None = None, *, min_radius: float = MIN_PLATEAU_RADIUS
) -> np.ndarray:
    """Give the flat plateaus of saturated objects back a rounded profile.

    An over-exposed nucleus or star is a flat disc at the detector's ceiling: a network trained
    on unsaturated objects sees no rise to its centre and, where two touch, no dip between them,
    and loses them (the pretrained nuclei model found 4 of 24 large nuclei once a quarter of the
    image was saturated). Each plateau of pixels at ``level`` whose core is at least
    ``min_radius`` pixels from its edge (and whose box spans less than :data:`FRAME_SPAN` of the
    image's height and width: a white frame is no object) is raised by a paraboloid that
    continues its flanks: its slope at the edge is the median brightness gradient of the 2 px
    ring around the plateau, flattening to zero at the plateau's most inner pixel
    (``slope * (d - d**2 / (2 d_max))``, d the distance to the plateau's edge). Two saturated
    nuclei that touch get a saddle where they meet. Everything else is left as it is; on an
    image with no such plateau the result equals the input.

    Parameters
    ----------
    image : array-like
        ``(H, W)`` or ``(H, W, C)`` pixels, objects bright (the form a model gets after its input
        transform). NaN = bad pixel (never part of a plateau). With several channels, the
        plateau is found on their mean and every channel is raised alike.
    level : float, optional
        The saturation level: pixels at or above it (to float32 rounding) are saturated.
        Default: :func:`saturation_level` (the highest value that forms a plateau; hot pixels
        above a camera's ceiling are passed over).
    min_radius : float
        The smallest plateau core restored (pixels; :data:`MIN_PLATEAU_RADIUS`).

    Returns
    -------
    ndarray of float32
        The image, same shape, plateaus raised.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import restore_saturated
    >>> yy, xx = np.mgrid[:40, :40]
    >>> nucleus = np.clip(300 - 20 * np.hypot(yy - 20, xx - 20), 0, None).astype(np.float32)
    >>> clipped = np.minimum(nucleus, 200.0)            # a flat core 10 px across
    >>> restored = restore_saturated(clipped)
    >>> float(clipped[20, 20]), bool(restored[20, 20] > 230), float(restored[0, 0])
    (200.0, True, 0.0)
    >>> bool(np.array_equal(restore_saturated(nucleus), nucleus))   # nothing saturated
    True
    """
    x = np.asarray(validate_image(image, name="image"), dtype=np.float32)
    heights = plateau_heights(x, level, min_radius=min_radius)
    if heights is None:
        return x.copy()
    return x + (heights if x.ndim == 2 else heights[..., None])


def plateau_heights(
    x: np.ndarray, level: float | None = None, *, min_radius: float = MIN_PLATEAU_RADIUS
) -> np.ndarray | None:
    """What :func:`restore_saturated` adds to every channel of ``x`` (float32 ``(H, W)`` or
    ``(H, W, C)``): ``(H, W)`` float32 heights, or None where no plateau is restored (input
    transforms add them in place).

    Examples
    --------
    >>> import numpy as np
    >>> plateau_heights(np.zeros((8, 8, 3), np.float32) + np.eye(8)[..., None]) is None
    True
    """
    grey = x if x.ndim == 2 else channel_mean(x)
    if level is None:
        level = saturation_level(grey, min_radius=min_radius)
        if level is None:
            return None
    return _plateau_profile(grey, float(level), float(min_radius))


def _plateau_profile(grey: np.ndarray, level: float, min_radius: float, *, test: bool = False):
    """``(H, W)`` float32 heights to add to the plateaus at ``level`` restored (None: none is;
    ``test``: True at the first plateau restored, without computing anything).

    Saturated: at or above ``level`` to float32 rounding (a level decided on the image before
    its flip or channel mean may differ from the pixels' by an ulp; NaN never is). A plateau is
    flat: at least :data:`FLAT_SHARE` of its pixels at the level itself (hot pixels within it
    are above), so bright cores spread over the top few values of a display image are no
    plateau. Each plateau deep enough is handled in its bounding box grown by :data:`_PAD`
    (its ring, the gradient and the smoothing fit inside), so an image with a few saturated
    pixels costs next to nothing and the result equals a computation over the whole image. An
    image (a window: a row of a sample, a thin tile) narrower than a core holds none."""
    side = _core_side(min_radius)
    smallest = side**2
    if min(grey.shape) < side:
        return None
    tolerance = np.float32(abs(level) * 1e-6)
    saturated = grey >= np.float32(level) - tolerance
    if np.count_nonzero(saturated) < smallest:  # an image that is not saturated: at once
        return None
    at_level = saturated & (grey <= np.float32(level) + tolerance)
    plateaus, n = ndi.label(saturated)
    sizes = np.bincount(plateaus.ravel(), minlength=n + 1)
    height = None
    for i, box in enumerate(ndi.find_objects(plateaus), start=1):
        if box is None or sizes[i] < smallest:
            continue
        spans = [(b.stop - b.start) / size for b, size in zip(box, grey.shape)]
        if max(spans) >= FRAME_SPAN:  # a frame or a border, not an object
            continue
        if np.count_nonzero(at_level[box] & (plateaus[box] == i)) < FLAT_SHARE * sizes[i]:
            continue  # not flat: the top values of a bright core
        grown = tuple(
            slice(max(b.start - _PAD, 0), min(b.stop + _PAD, size))
            for b, size in zip(box, grey.shape)
        )
        mine = plateaus[grown] == i
        d = ndi.distance_transform_edt(mine).astype(np.float32)
        deepest = float(d.max())
        if deepest < min_radius:
            continue
        if test:
            return True
        near = ndi.binary_dilation(mine, np.ones((2 * _RING + 1,) * 2, bool))
        patch = grey[grown]
        ring = near & ~saturated[grown] & np.isfinite(patch)
        if not ring.any():
            continue
        filled = np.where(np.isfinite(patch), patch, np.float32(0.0))
        gy, gx = np.gradient(ndi.gaussian_filter(filled, _SMOOTH))
        slope = np.float32(np.median(np.hypot(gy, gx)[ring]))
        if height is None:
            height = np.zeros(grey.shape, np.float32)
        height[grown] += np.where(mine, slope * (d - d * d / (2 * deepest)), np.float32(0.0))
    return height
