"""Tile geometry: where tiles start, how big ``tile="auto"`` makes them, how a tile is padded.

Along each axis of length ``n`` with tile ``t`` and ``overlap`` ``o``: when ``n > t`` the tiles
start at ``0, s, 2s, ...`` with stride ``s = t - o`` rounded down to the divisor, and the last tile
is moved back to end exactly at the image edge, so tiles never leave the image. When ``n <= t``
one tile covers the axis, centred: the image is padded on both sides up to the tile size.

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


def tile_starts(n: int, tile: int, *, overlap: int, divisor: int = 1) -> list[int]:
    """Tile starts along one axis (one negative start = padded before the image when ``n < t``)."""
    if n <= tile:
        return [-((tile - n) // 2)]
    stride = ((tile - overlap) // divisor) * divisor
    return [*range(0, n - tile, stride), n - tile]


def fit_tile(tile: Sequence[int], hw: Sequence[int], divisor: int) -> tuple[int, int]:
    """Never tile beyond an extent: each side at most ``hw``, rounded up to the divisor."""
    return tuple(min(int(t), round_up(n, divisor)) for t, n in zip(tile, hw))


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
