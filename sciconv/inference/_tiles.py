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


def axis_tile(n: int, k: int, *, overlap: int, divisor: int) -> int:
    """The smallest tile (a multiple of ``divisor``) that covers ``n`` pixels with ``k`` tiles.

    Examples
    --------
    >>> axis_tile(2048, 2, overlap=96, divisor=8), axis_tile(2048, 1, overlap=96, divisor=8)
    (1072, 2048)
    """
    if k <= 1:
        return round_up(n, divisor)
    t = round_up(math.ceil((n - overlap) / k) + overlap, divisor)
    while n > t and len(tile_starts(n, t, overlap=overlap, divisor=divisor)) > k:
        t += divisor
    return t


def auto_tile(
    hw: Sequence[int], *, overlap: int, divisor: int, max_pixels: float
) -> tuple[int, int]:
    """The tile of at most ``max_pixels`` (each side at most :data:`AUTO_TILE_MAX`) that computes
    the fewest pixels over ``hw``.

    Every tile count ``ky`` along H is tried with the smallest tile covering H with ``ky`` tiles
    (so tiles are equalized and the recomputed fraction stays close to ``overlap / tile``), and
    the fewest tiles along W that then fit the budget. The grid that computes the fewest pixels
    wins (ties: fewer tiles), so an axis that fits in one tile gets exactly one, and a tile may
    be a strip (e.g. two ``2048 x 1072`` (H x W) tiles on a ``2048 x 2048`` image instead of four
    ``1072 x 1072`` ones: 5 % recomputed instead of 10 %). When nothing fits, the smallest tile
    with a stride.

    Examples
    --------
    >>> auto_tile((2048, 2048), overlap=96, divisor=8, max_pixels=2.5e6)
    (2048, 1072)
    >>> auto_tile((300, 500), overlap=32, divisor=16, max_pixels=1e6)
    (304, 512)
    """
    h, w = (int(n) for n in hw)
    tmin = round_up(overlap + divisor, divisor)
    cap = max(AUTO_TILE_MAX // divisor * divisor, tmin)
    best = None
    ky = 1
    while True:
        ty = max(axis_tile(h, ky, overlap=overlap, divisor=divisor), tmin if h > tmin else 0)
        ny = len(tile_starts(h, ty, overlap=overlap, divisor=divisor))
        tx_max = min(cap, int(max_pixels // ty) // divisor * divisor)
        if ty <= cap and tx_max >= min(tmin, round_up(w, divisor)):
            if round_up(w, divisor) <= tx_max:
                tx = round_up(w, divisor)
            else:
                kx = max(2, math.ceil((w - overlap) / max(tx_max - overlap, 1)))
                while (tx := axis_tile(w, kx, overlap=overlap, divisor=divisor)) > tx_max:
                    kx += 1
            nx = len(tile_starts(w, tx, overlap=overlap, divisor=divisor))
            key = (ny * ty * nx * tx, ny * nx)
            if best is None or key < best[0]:
                best = (key, (ty, tx))
        if ty <= tmin or ny < ky:  # more tiles along H cannot get smaller
            break
        ky += 1
    if best is None:  # not even the smallest tile fits the budget: take it anyway
        return min(tmin, round_up(h, divisor)), min(tmin, round_up(w, divisor))
    return best[1]


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
