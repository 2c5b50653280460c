"""Tile geometry: where tiles start, how big ``tile="auto"`` makes them, how a tile is padded.

Every tile starts on one grid of the model's divisor ``d`` (``2**depth`` for a U-Net), the grid of
the whole-image call: the image padded to a multiple of ``d``, centred (:func:`frame_origin`). A
U-Net's output shifts with its input only by multiples of ``d``, so a tile off that grid computes
other values than the whole image does (by up to 0.9 in probability on a 1001-pixel side).
Along each axis of length ``n`` with tile ``t`` and ``overlap`` ``o``: when the padded axis is
longer than ``t`` the tiles start at the grid's first point ``f`` (``-d < f <= 0``) and step by
``s = t - o`` rounded down to the divisor; the last tile ends where the padded axis ends (at most
``d - 1`` pixels past the image edge, filled by the pad mode). When it fits in one tile, that
tile is centred on it in steps of ``d``. A window of a larger image (a block) passes ``origin``,
where the whole image's grid falls in the window's coordinates, so its tiles keep that grid.

These are pure functions of integers (no model, no image), so a block-wise planner can reuse them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: ``tile="auto"`` never picks tiles larger than this (pixels per side).
AUTO_TILE_MAX = 2048


def round_up(n: int, d: int) -> int:
    """``n`` rounded up to a multiple of ``d``."""
    return -(-int(n) // d) * d


def frame_origin(n: int, divisor: int) -> int:
    """Where the whole-image call's frame starts along an axis of ``n`` pixels (``<= 0``): the
    axis padded to a multiple of ``divisor``, as evenly before as after.

    Examples
    --------
    >>> frame_origin(1001, 4), frame_origin(1000, 4)
    (-1, 0)
    """
    return -((round_up(n, divisor) - int(n)) // 2)


def padded_extent(n: int, divisor: int, origin: int | None = None) -> tuple[int, int]:
    """``(first, extent)``: the first grid point at or before pixel 0 and the length from it
    to the first grid point at or past the axis end (see the module notes)."""
    d = int(divisor)
    origin = frame_origin(n, d) if origin is None else int(origin)
    first = -((-origin) % d)
    return first, round_up(int(n) - first, d)


def tile_starts(
    n: int, tile: int, *, overlap: int, divisor: int = 1, origin: int | None = None
) -> list[int]:
    """Tile starts along one axis, all on the divisor grid (module notes); a negative start is
    padded before the image.

    Examples
    --------
    >>> tile_starts(1001, 256, overlap=32, divisor=4)
    [-1, 223, 447, 671, 747]
    >>> tile_starts(1000, 1024, overlap=32, divisor=4)
    [-12]
    >>> tile_starts(1001, 1004, overlap=0, divisor=4)
    [-1]
    """
    first, extent = padded_extent(n, divisor, origin)
    if extent <= tile:
        return [first - (tile - extent) // 2 // divisor * divisor]
    stride = ((tile - overlap) // divisor) * divisor
    last = first + extent - tile
    return [*range(first, last, stride), last]


def fit_tile(
    tile: Sequence[int], hw: Sequence[int], divisor: int, origin: Sequence[int] | None = None
) -> tuple[int, int]:
    """Never tile beyond an extent: each side at most what ``hw`` needs on the divisor grid."""
    origin = (None, None) if origin is None else origin
    return tuple(min(int(t), padded_extent(n, divisor, o)[1]) for t, n, o in zip(tile, hw, origin))


def auto_tile(
    hw: Sequence[int], *, overlap: int, divisor: int, max_pixels: float
) -> tuple[int, int]:
    """Largest tile of at most ``max_pixels`` (and :data:`AUTO_TILE_MAX`), equalized over ``hw``.

    When an axis fits in one tile it gets exactly one (no recompute); otherwise the tile count ``k``
    is the smallest the budget allows and the tile is shrunk to cover the axis with ``k`` tiles, so
    the recomputed fraction stays close to ``overlap / tile``.
    """
    tmax = int(math.sqrt(max_pixels)) // divisor * divisor
    tmax = min(max(tmax, round_up(overlap + divisor, divisor), divisor), AUTO_TILE_MAX)
    tmax = max(tmax // divisor * divisor, round_up(overlap + divisor, divisor))
    out = []
    for n in hw:
        if round_up(n, divisor) <= tmax:
            out.append(round_up(n, divisor))
            continue
        k = math.ceil((n - overlap) / (tmax - overlap))
        while True:
            t = round_up(math.ceil((n - overlap) / k) + overlap, divisor)
            if len(tile_starts(n, t, overlap=overlap, divisor=divisor)) <= k or t >= tmax:
                break
            k += 1
        out.append(min(t, max(tmax, t)))
    return out[0], out[1]


def index_map(start: int, t: int, n: int, pad_mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Source indices for tile positions ``start .. start + t`` (and the constant-pad mask)."""
    idx = np.arange(start, start + t)
    outside = (idx < 0) | (idx >= n)
    if not outside.any():
        return idx, None
    if pad_mode == "edge":
        src = np.clip(idx, 0, n - 1)
    elif pad_mode == "symmetric":
        period = 2 * n
        m = np.mod(idx, period)
        src = np.where(m < n, m, period - 1 - m)
    elif pad_mode == "reflect":
        period = 2 * n - 2
        m = np.mod(idx, period)
        src = np.where(m < n, m, period - m)
    else:  # constant: any valid index, zeroed afterwards
        src = np.clip(idx, 0, n - 1)
    return src, (outside if pad_mode == "constant" else None)
