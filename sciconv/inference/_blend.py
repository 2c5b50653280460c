"""Blending: how the tiles' predictions are weighted and written into the output.

Per axis, every tile gets a :class:`Span`: the output range it writes, the matching range of the
tile, and its window weights already divided by the sum over the tiles covering each pixel. Since
windows are separable and tiles form a grid, the 2-D weight sum factorizes, so no (H, W) weight
image is ever needed. ``blend="none"`` gives each pixel to the one tile whose centre region
holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

#: How overlapping tiles are merged (see :func:`sciconv.inference.predict_tiled`).
BLEND_MODES = ("gaussian", "linear", "none")
#: Gaussian window width as a fraction of the tile (MONAI's ``sigma_scale``).
_GAUSSIAN_SIGMA = 0.125
#: Window weights never drop below this fraction of the peak (avoids 0/0 at far tile corners).
_WINDOW_FLOOR = 1e-4


class Span(NamedTuple):
    """Where one tile writes along one axis: ``out[out_lo:out_hi] <- tile[tile_lo:tile_hi]``."""

    out_lo: int
    out_hi: int
    tile_lo: int
    tile_hi: int
    weights: np.ndarray | None  # float32 (out_hi - out_lo,), None = copy


def window(t: int, blend: str, overlap: int) -> np.ndarray:
    """The 1-D weight window of a tile of side ``t`` (peak 1, floor :data:`_WINDOW_FLOOR`)."""
    i = np.arange(t, dtype=np.float64)
    if blend == "gaussian":
        sigma = max(_GAUSSIAN_SIGMA * t, 1e-3)
        w = np.exp(-0.5 * ((i - (t - 1) / 2) / sigma) ** 2)
    else:  # linear ramp across the middle half of the overlap, 0 in its outer quarter
        edge = np.minimum(i, t - 1 - i)
        margin = overlap // 4  # where the tile's own zero padding corrupts it most
        w = np.clip((edge - margin + 1) / (max(overlap - 2 * margin, 1) + 1), 0.0, 1.0)
    return np.maximum(w / w.max(), _WINDOW_FLOOR)


def axis_spans(n: int, t: int, starts: Sequence[int], *, blend: str, overlap: int) -> list[Span]:
    """One :class:`Span` per tile start along an axis of length ``n``."""
    if blend == "none":
        bounds = [0] + [(starts[i + 1] + starts[i] + t) // 2 for i in range(len(starts) - 1)] + [n]
        return [Span(lo, hi, lo - s, hi - s, None) for s, lo, hi in zip(starts, bounds, bounds[1:])]
    win = window(t, blend, overlap)
    total = np.zeros(n)
    for s in starts:
        lo, hi = max(0, s), min(n, s + t)
        total[lo:hi] += win[lo - s : hi - s]
    spans = []
    for s in starts:
        lo, hi = max(0, s), min(n, s + t)
        w = (win[lo - s : hi - s] / total[lo:hi]).astype(np.float32)
        spans.append(Span(lo, hi, lo - s, hi - s, w))
    return spans


def paste(out: np.ndarray, pred: np.ndarray, sy: Span, sx: Span, bad: np.ndarray | None) -> None:
    """Write (or add, weighted) one tile's prediction ``(th, tw, K)`` into ``out`` (H, W, K).

    ``bad`` (th, tw) marks the tile's masked input pixels: the output is NaN there.
    """
    part = pred[sy.tile_lo : sy.tile_hi, sx.tile_lo : sx.tile_hi]
    region = out[sy.out_lo : sy.out_hi, sx.out_lo : sx.out_hi]
    if sy.weights is None:
        region[...] = part
    else:
        region += part * (sy.weights[:, None, None] * sx.weights[None, :, None])
    if bad is not None:
        region[bad[sy.tile_lo : sy.tile_hi, sx.tile_lo : sx.tile_hi]] = np.nan
