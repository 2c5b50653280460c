"""The catalog of a block-wise run, measured against the background of the whole image.

A block's window is no image of its own: a background map measured in it (photutils'
``Background2D`` on the window: a box grid from the window's corner, partial boxes at its edges,
a filter and a spline that see the window alone) moved each object's sky-subtracted ``flux`` by
up to 3.5 ``flux_err`` with the block size (QA round 54, a real HST field). So the catalog of a
background-subtracted run is measured after the labels: :class:`ImageBackground` measures the
image's 64-pixel boxes on tiles of the box grid (the stitched labels, grown, left out, as the
whole image's call leaves its labels out), fills, filters and prepares the mesh once
(:class:`~sciconv.postprocess.BackgroundMesh`), and
:func:`background_catalog` measures each block's objects with the map of its window read from
that one mesh, so ``flux``, ``flux_err``, ``background`` and the weighted centroids are the
whole-image catalog's whatever the block size.

Images whose background pixels are all non-negative integers may be photon counts, whose level
:func:`~sciconv.postprocess.background_and_rms` takes as the Poisson-clipped mean of each box
(rms ``sqrt(level)``) when the whole image's background pixels say so: their values are counted
tile by tile (:class:`~sciconv.postprocess._background.BackgroundHistogram`: exact, one
``np.bincount`` per tile), the whole image's rule decides from that histogram, and a channel of
counts has its mesh measured again, as counts (a second pass over the tiles). Images the mesh
cannot map (less than two boxes across, no box with enough background pixels) and integer images
with over a million distinct background values of 65536 and more that the histogram did not keep
(where those decide) keep one map per window, as before.
"""

from __future__ import annotations

import numpy as np

#: The background options of the whole-image call (``background_and_rms``'s defaults).
BOX_SIZE, FILTER_SIZE, GROW = 64, 3, 3


class ImageBackground:
    """The background level and rms of a (huge) image, one mesh per channel, read window by
    window: :meth:`of` measures it, :meth:`window` maps a window."""

    def __init__(self, meshes):
        self.meshes = meshes

    @classmethod
    def of(
        cls, read, labels, shape, channels: int, *, tile: int, says_counts: bool = False
    ) -> ImageBackground | None:
        """Measure the image's boxes on tiles of about ``tile`` pixels on the box grid.

        ``read((y0, y1), (x0, x1), dtype)``: the image's pixels (h, w, C); ``labels``: the
        stitched labels (array-like, sliced); ``says_counts``: the image's header says its
        pixels are photon counts (``background_and_rms``'s rule). None where one map per window
        is kept (module notes)."""
        from sciconv.postprocess import (
            BackgroundHistogram,
            BackgroundMesh,
            grown_objects,
            poisson_cut,
        )

        h, w = shape
        if min(h, w) < 2 * BOX_SIZE:
            return None
        meshes = [
            BackgroundMesh(shape, box_size=BOX_SIZE, filter_size=FILTER_SIZE)
            for _ in range(channels)
        ]
        histograms = [BackgroundHistogram() for _ in range(channels)]
        step = BOX_SIZE * max(1, int(tile) // BOX_SIZE)
        tiles = [(ys, xs) for ys in _spans(h, step) for xs in _spans(w, step)]
        for ys, xs in tiles:
            pixels = read(ys, xs, np.float64)
            objects = grown_objects(labels, ys, xs, shape, GROW)
            for k, (mesh, histogram) in enumerate(zip(meshes, histograms, strict=True)):
                chan = pixels[..., k]
                masked = objects | ~np.isfinite(chan)
                histogram.add(chan[~masked])
                mesh.add((ys[0], xs[0]), chan, masked)
        try:
            rates = [histogram.counts_rate(says_counts) for histogram in histograms]
        except ValueError:  # large values not kept decide (module notes)
            return None
        if any(rate is not None for rate in rates):  # counts: their boxes measured as counts
            cuts = {k: poisson_cut(rate) for k, rate in enumerate(rates) if rate is not None}
            for k in cuts:
                meshes[k] = BackgroundMesh(
                    shape, box_size=BOX_SIZE, filter_size=FILTER_SIZE, counts=True
                )
            for ys, xs in tiles:
                pixels = read(ys, xs, np.float64)
                objects = grown_objects(labels, ys, xs, shape, GROW)
                for k, cut in cuts.items():
                    chan = pixels[..., k]
                    masked = objects | ~np.isfinite(chan) | (np.nan_to_num(chan) > cut)
                    meshes[k].add((ys[0], xs[0]), chan, masked)
        if not all(mesh.measured for mesh in meshes):
            return None
        return cls([mesh.finish() for mesh in meshes])

    def window(self, ys, xs) -> tuple[np.ndarray, np.ndarray]:
        """``(level, rms)`` of rows ``ys`` and columns ``xs``: ``(h, w)`` for one channel,
        else ``(h, w, C)``, as :func:`~sciconv.postprocess.background_and_rms` gives them."""
        maps = [mesh.window(ys, xs) for mesh in self.meshes]
        if len(maps) == 1:
            return maps[0]
        return np.stack([m[0] for m in maps], -1), np.stack([m[1] for m in maps], -1)


def _spans(n: int, step: int):
    """``(start, end)`` of tiles of ``step`` pixels; the last one takes the remainder (so no
    tile ends inside a box but at the image's edge)."""
    starts = list(range(0, n, step))
    if len(starts) > 1 and n - starts[-1] < BOX_SIZE:
        starts.pop()
    return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


def measure_window(
    labels, raw, origin, *, wcs, bad, error, sky, saturation, noise_correlation=None
):
    """:func:`sciconv.postprocess.measure` of a window's objects, positions in the image's
    pixels; ``bad``: None, ``"nonfinite"`` or a reader of the image's bad-pixel mask;
    ``noise_correlation``: the whole image's (None: independent pixels, applied later)."""
    from sciconv import postprocess

    wy0, wx0 = origin
    wy1, wx1 = wy0 + labels.shape[0], wx0 + labels.shape[1]
    sub_wcs = None if wcs is None else wcs.slice((slice(wy0, wy1), slice(wx0, wx1)))
    mask = None  # flag_masked / masked_fraction, as measure(mask=) gives on the whole image
    if isinstance(bad, str):  # "nonfinite": a lazy GridImage's bad pixels are NaN
        mask = ~np.isfinite(raw)
    elif bad is not None:
        mask = bad.read((wy0, wy1), (wx0, wx1), dtype=bool)
    table = postprocess.measure(
        labels,
        intensity=raw,
        wcs=sub_wcs,
        mask=mask,
        background=sky,
        error=error,
        saturation=saturation,
        noise_correlation=noise_correlation,
    )
    for name in ("x", "x_weighted", "bbox_xmin", "bbox_xmax"):
        if name in table.colnames:
            table[name] += wx0
    for name in ("y", "y_weighted", "bbox_ymin", "bbox_ymax"):
        if name in table.colnames:
            table[name] += wy0
    return table


def background_catalog(
    plan, task: dict, labels, counts, *, tile: int, counts_header: bool, correlation=None
):
    """The catalog of every block's objects (``counts``: each block's, in row-major order, as
    numbered in ``labels``) against the image's background (module notes); None: no objects.
    ``counts_header``: the image's header says its pixels are counts
    (:func:`sciconv.postprocess.says_counts`, as the whole-image call reads it);
    ``correlation``: the whole image's noise correlation
    (:meth:`sciconv.postprocess.NoiseCorrelation.from_windows`; None: independent pixels)."""
    from astropy.table import vstack

    from sciconv import postprocess

    windows = task["windows"]
    channels = windows.shape[2] if len(windows.shape) == 3 else 1
    image = ImageBackground.of(
        windows.read, labels, plan.shape, channels, tile=tile, says_counts=counts_header
    )
    indices = [(i, j) for i in range(plan.grid[0]) for j in range(plan.grid[1])]
    tables, offset = [], 0
    for (i, j), n in zip(indices, counts, strict=True):
        if not n:
            continue
        (wy0, wy1), (wx0, wx1) = ys, xs = plan.window(i, j)
        every = np.asarray(labels[wy0:wy1, wx0:wx1])
        mine = np.where((every > offset) & (every <= offset + n), every - offset, 0)
        raw = windows.read(ys, xs)
        if image is not None:
            sky, rms = image.window(ys, xs)
        else:  # one map per window (module notes)
            sky, rms = postprocess.background_and_rms(raw, every)
        if task["errors"] is not None:  # the image's own error bars
            error = task["errors"].read(ys, xs)
        else:
            error, _ = postprocess.estimate_error(
                raw,
                every,
                background=sky,
                background_rms=rms,
                gain=task["gain"],
                noise_correlation=correlation,
            )
        table = measure_window(
            mine,
            raw,
            (wy0, wx0),
            wcs=task["wcs"],
            bad=task["bad"],
            error=error,
            sky=sky,
            saturation=task["saturation"],
            noise_correlation=correlation,
        )
        table["label"] += offset
        tables.append(table)
        offset += n
    return vstack(tables, metadata_conflicts="silent") if tables else None


def empty_catalog(task: dict):
    """The catalog of a run without objects: no rows, the columns of one with objects."""
    from sciconv import postprocess

    channels = task["windows"].shape[2] if len(task["windows"].shape) == 3 else 1
    bad = task["bad"]
    table = postprocess.measure(
        np.zeros((1, 1), np.int32),
        intensity=np.zeros((1, 1, channels)),
        wcs=task["wcs"],
        mask=None if bad is None else np.zeros((1, 1), bool),
        background=0.0 if task["background"] else None,
        error=np.zeros((1, 1)) if task["background"] else None,
        saturation=task["saturation"],
    )
    return table
