"""The numpy core: fill an ``(H, W, K)`` array from a source, tile by tile.

Tiles are planned (:mod:`._tiles`), read and normalized with the whole image's limits, run in
batches of equal-size tiles (traced once), and blended into the output (:mod:`._blend`). The next
batch is read on a worker thread while the model runs.

Bad pixels (NaN, +/-inf) reach the network filled by :data:`sciconv.preprocess.BAD_PIXEL_FILL`
(the good data mirrored across their edge, as training fills them). So that every tile and
the whole image feed the same values, the fill is computed on a grid fixed to the whole image
(the divisor frame): each ``FILL_BLOCK``-pixel square of it is filled from itself and
``FILL_MARGIN`` pixels around, whichever tile asks (clipped to what the source holds: a dask
chunk's or a block window's margin, whose fill may then differ next to its edge). Bad regions
deeper than that margin fill with the nearest good pixel of the window, or 0 without one (their
outputs are NaN anyway).
"""

from __future__ import annotations

import concurrent.futures

import numpy as np

from sciconv import preprocess
from sciconv._progress import progress_bar
from sciconv.inference._blend import axis_spans, paste
from sciconv.inference._model import Runner
from sciconv.inference._settings import PredictionSettings
from sciconv.inference._source import Source
from sciconv.inference._tiles import frame_origin, index_map

FILL_BLOCK = 128
FILL_MARGIN = 64


def _read_normalized(source: Source, ys: slice, xs: slice, s: PredictionSettings, limits):
    if limits is None:
        return source.read(ys, xs)
    raw = source.read(ys, xs, exact=True)  # float64 pixels stretched in float64
    return preprocess.apply_limits(raw, limits, clip=bool(s.normalization.clip))


def fill_bad_pixels(raw, bad, corner, source: Source, s: PredictionSettings, limits) -> np.ndarray:
    """``raw`` (the normalized window of ``source`` at ``corner`` (y, x)) with its ``bad``
    pixels filled on the whole image's fill grid (module notes): the same values whichever
    window is asked."""
    h, w = source.shape[:2]
    anchors = (
        (frame_origin(h, s.divisor), frame_origin(w, s.divisor)) if s.origin is None else s.origin
    )
    out = np.array(raw, dtype=np.float32, copy=True)
    rows, cols = np.nonzero(bad.any(axis=-1))
    by = (rows + corner[0] - anchors[0]) // FILL_BLOCK
    bx = (cols + corner[1] - anchors[1]) // FILL_BLOCK
    occupied = np.zeros((by.max() - by.min() + 1, bx.max() - bx.min() + 1), bool)
    occupied[by - by.min(), bx - bx.min()] = True  # the grid squares with bad pixels (no sort)
    blocks = np.argwhere(occupied) + np.array([by.min(), bx.min()])
    y, x = corner
    squares = []  # (core, window) of each square, (y0, y1, x0, x1) in source coordinates
    for block in blocks.tolist():
        core, window = [], []
        for b, a, c, n, size in zip(block, anchors, corner, (h, w), raw.shape[:2], strict=True):
            lo = a + b * FILL_BLOCK
            core += [max(lo, c), min(lo + FILL_BLOCK, c + size)]
            window += [max(lo - FILL_MARGIN, 0), min(lo + FILL_BLOCK + FILL_MARGIN, n)]
        squares.append((core, window))
    # every window's pixels from one array: ``raw`` when it holds them all, else one read
    uy0, ux0 = min(wd[0] for _, wd in squares), min(wd[2] for _, wd in squares)
    uy1, ux1 = max(wd[1] for _, wd in squares), max(wd[3] for _, wd in squares)
    if uy0 >= y and uy1 <= y + raw.shape[0] and ux0 >= x and ux1 <= x + raw.shape[1]:
        context, (oy, ox) = raw, corner
    else:
        context = _read_normalized(source, slice(uy0, uy1), slice(ux0, ux1), s, limits)
        oy, ox = uy0, ux0
    for (cy0, cy1, cx0, cx1), (wy0, wy1, wx0, wx1) in squares:
        pixels = context[wy0 - oy : wy1 - oy, wx0 - ox : wx1 - ox]
        filled = preprocess.fill_nan(pixels, method=preprocess.BAD_PIXEL_FILL)
        target = (slice(cy0 - y, cy1 - y), slice(cx0 - x, cx1 - x))
        here = bad[target]
        out[target][here] = filled[cy0 - wy0 : cy1 - wy0, cx0 - wx0 : cx1 - wx0][here]
    return out


def prepare_tile(source: Source, sy: int, sx: int, s: PredictionSettings, limits):
    """Read, normalize and pad one tile -> (tile (th, tw, C) float32, bad-pixel mask or None)."""
    th, tw = s.tile
    h, w = source.shape[:2]
    iy, zy = index_map(sy, th, h, s.pad_mode)
    ix, zx = index_map(sx, tw, w, s.pad_mode)
    y0, y1, x0, x1 = int(iy.min()), int(iy.max()) + 1, int(ix.min()), int(ix.max()) + 1
    raw = _read_normalized(source, slice(y0, y1), slice(x0, x1), s, limits)
    bad = ~np.isfinite(raw)
    mask = None
    if bad.any():  # the network sees bad pixels as it saw them in training (module notes)
        raw = fill_bad_pixels(raw, bad, (y0, x0), source, s, limits)
        mask = bad.any(axis=-1)
    if iy[0] != y0 or iy[-1] != y1 - 1 or len(iy) != y1 - y0:
        raw = raw[iy - y0]
        mask = None if mask is None else mask[iy - y0]
    if ix[0] != x0 or ix[-1] != x1 - 1 or len(ix) != x1 - x0:
        raw = raw[:, ix - x0]
        mask = None if mask is None else mask[:, ix - x0]
    if zy is not None or zx is not None:
        raw = np.array(raw, dtype=np.float32, copy=True)
        if zy is not None:
            raw[zy] = 0
        if zx is not None:
            raw[:, zx] = 0
    return raw, mask


def predict_array(
    runner: Runner,
    source: Source,
    s: PredictionSettings,
    limits,
    out: np.ndarray,
    *,
    progress: bool,
) -> np.ndarray:
    """Fill ``out`` (H, W, K) from ``source`` tile by tile."""
    h, w = source.shape[:2]
    th, tw = s.tile
    starts_y, starts_x = s.tile_starts((h, w))
    spans_y = axis_spans(h, th, starts_y, blend=s.blend, overlap=s.overlap, margin=s.margin)
    spans_x = axis_spans(w, tw, starts_x, blend=s.blend, overlap=s.overlap, margin=s.margin)
    jobs = [(i, j) for i in range(len(starts_y)) for j in range(len(starts_x))]
    # full batches and a shorter last one (no zero tiles computed): Keras traces the predict
    # function for the first batch shape and once more, batch-size agnostic, for a second one
    batch_size = min(s.batch_size, len(jobs))
    batches = [jobs[i : i + batch_size] for i in range(0, len(jobs), batch_size)]
    c = source.shape[2]

    def prepare(batch_jobs):
        buf = np.empty((len(batch_jobs), th, tw, c), dtype=np.float32)
        masks = []
        for n, (i, j) in enumerate(batch_jobs):
            buf[n], m = prepare_tile(source, starts_y[i], starts_x[j], s, limits)
            masks.append(m)
        return buf, masks

    bar = progress_bar(len(jobs), desc="predict_tiled", unit="tile", enabled=progress)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(prepare, batches[0])
            for b, batch_jobs in enumerate(batches):
                buf, masks = pending.result()
                if b + 1 < len(batches):  # read the next batch while the model runs
                    pending = pool.submit(prepare, batches[b + 1])
                pred = runner.run(buf, s.tta, precision=s.precision)
                for n, (i, j) in enumerate(batch_jobs):
                    paste(out, pred[n], spans_y[i], spans_x[j], masks[n])
                if bar is not None:
                    bar.update(len(batch_jobs))
    finally:
        if bar is not None:
            bar.close()
    return out
