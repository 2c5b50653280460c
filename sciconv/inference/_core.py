"""The numpy core: fill an ``(H, W, K)`` array from a source, tile by tile.

Tiles are planned (:mod:`._tiles`), read and normalized with the whole image's limits, run in
batches of equal-size tiles (traced once), and blended into the output (:mod:`._blend`). The next
batch is read on a worker thread while the model runs.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np

from sciconv import preprocess
from sciconv.inference._blend import axis_spans, paste
from sciconv.inference._model import Runner
from sciconv.inference._progress import progress_bar
from sciconv.inference._settings import PredictionSettings
from sciconv.inference._source import Source
from sciconv.inference._tiles import index_map


def prepare_tile(source: Source, sy: int, sx: int, s: PredictionSettings, limits):
    """Read, normalize and pad one tile -> (tile (th, tw, C) float32, bad-pixel mask or None)."""
    th, tw = s.tile
    h, w = source.shape[:2]
    iy, zy = index_map(sy, th, h, s.pad_mode)
    ix, zx = index_map(sx, tw, w, s.pad_mode)
    y0, y1, x0, x1 = int(iy.min()), int(iy.max()) + 1, int(ix.min()), int(ix.max()) + 1
    raw = source.read(slice(y0, y1), slice(x0, x1))
    if limits is not None:
        raw = preprocess.apply_limits(raw, limits, clip=bool(s.normalization.clip))
    if iy[0] != y0 or iy[-1] != y1 - 1 or len(iy) != y1 - y0:
        raw = raw[iy - y0]
    if ix[0] != x0 or ix[-1] != x1 - 1 or len(ix) != x1 - x0:
        raw = raw[:, ix - x0]
    bad = ~np.isfinite(raw)
    mask = None
    if bad.any():
        mask = bad.any(axis=-1)
        raw = np.where(bad, np.float32(0), raw)
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
