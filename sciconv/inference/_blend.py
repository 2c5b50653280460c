"""Blending: how the tiles' predictions are weighted and written into the output.

Per axis, every tile gets a :class:`Span`: the output range it writes, the matching range of the
tile, and its window weights already divided by the sum over the tiles covering each pixel. Since
windows are separable and tiles form a grid, the 2-D weight sum factorizes, so no (H, W) weight
image is ever needed. ``blend="none"`` gives each pixel to the one tile whose centre region
holds it.

Exact blending: a tile's outermost ``margin`` pixels at an *interior* edge (one inside the image)
are computed with the tile's own zero padding in their receptive field, so they differ from the
whole-image call. With ``margin`` = the receptive-field half-width ``r``, every window is zero
there (the image's own edges keep their weights: the model pads them as a whole-image call does),
and each tile writes only where its weight is positive. Every pixel then mixes only exact
predictions, so for a fully convolutional model the blended result equals the whole-image call
to float precision whenever ``overlap >= 2 * margin`` (the margins of two neighbours never meet).
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


def window(
    t: int, blend: str, overlap: int, *, margin: int = 0, lo: bool = False, hi: bool = False
) -> np.ndarray:
    """The 1-D weight window of a tile of side ``t`` (peak 1, floor :data:`_WINDOW_FLOOR`).

    ``lo`` / ``hi``: the tile's first / last side is interior (inside the image), where its
    outermost ``margin`` pixels get weight 0. The linear ramp then runs across the rest of the
    overlap; without a margin, it leaves the outer quarter of the overlap at ~0.
    """
    i = np.arange(t, dtype=np.float64)
    if blend == "gaussian":
        sigma = max(_GAUSSIAN_SIGMA * t, 1e-3)
        w = np.exp(-0.5 * ((i - (t - 1) / 2) / sigma) ** 2)
    else:  # linear ramp across the overlap beyond the margin (or its outer quarter)
        edge = np.minimum(i, t - 1 - i)
        m = margin if margin else overlap // 4
        w = np.clip((edge - m + 1) / (max(overlap - 2 * m, 1) + 1), 0.0, 1.0)
    w = np.maximum(w / w.max(), _WINDOW_FLOOR)
    if margin:
        if lo:
            w[:margin] = 0.0
        if hi:
            w[t - margin :] = 0.0
    return w


def axis_spans(
    n: int, t: int, starts: Sequence[int], *, blend: str, overlap: int, margin: int = 0
) -> list[Span]:
    """One :class:`Span` per tile start along an axis of length ``n``.

    ``margin``: pixels next to a tile's interior edges that get no weight (see the module notes);
    at most ``overlap // 2`` so that every pixel keeps a positive weight.

    Examples
    --------
    >>> [(sp.out_lo, sp.out_hi) for sp in axis_spans(100, 40, [0, 30, 60], blend="gaussian",
    ...                                               overlap=10, margin=3)]
    [(0, 37), (33, 67), (63, 100)]
    """
    if blend == "none":
        bounds = [0] + [(starts[i + 1] + starts[i] + t) // 2 for i in range(len(starts) - 1)] + [n]
        return [Span(lo, hi, lo - s, hi - s, None) for s, lo, hi in zip(starts, bounds, bounds[1:])]
    margin = max(0, min(int(margin), overlap // 2))
    wins = [window(t, blend, overlap, margin=margin, lo=s > 0, hi=s + t < n) for s in starts]
    total = np.zeros(n)
    for s, win in zip(starts, wins):
        lo, hi = max(0, s), min(n, s + t)
        total[lo:hi] += win[lo - s : hi - s]
    spans = []
    for s, win in zip(starts, wins):
        lo, hi = max(0, s), min(n, s + t)
        if margin and s > 0:
            lo = s + margin
        if margin and s + t < n:
            hi = s + t - margin
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
