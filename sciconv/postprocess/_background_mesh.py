"""The background of an image as a mesh of boxes: measured, and mapped, window by window.

SExtractor's recipe, as photutils' ``Background2D`` runs it (photutils 3): a sigma-clipped
statistic in each ``box_size`` box of a grid that starts at the image's corner (partial boxes at
its bottom and right edges only), boxes with too few background pixels filled by inverse-distance
weighting from the 10 nearest measured ones, the mesh median-filtered over ``filter_size`` boxes,
then a cubic spline through the box centres (``scipy.ndimage.zoom(grid_mode=True)``), clipped to
the mesh's range. Only the first step reads pixels, and each box needs only its own: a
:class:`BackgroundMesh` gathers the boxes' statistics from windows on the box grid (the whole
image at once, or a block-wise run's tiles, a few at a time), fills and filters the mesh once,
and maps any window of the image through the spline coefficients of the whole mesh. The map of a
window is so the whole image's map there (the same numbers: ``map_coordinates`` on the prefiltered
mesh gives what ``zoom`` gives), whatever window it is, which makes a block-wise catalog's
``flux`` independent of its block size.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import ndimage as ndi

from sciconv._warnings import caught

#: Boxes holding no more than this fraction of background pixels are left out (photutils'
#: ``exclude_percentile=50``) and filled from their neighbours.
EXCLUDE_PERCENTILE = 50.0


class BackgroundMesh:
    """The low-resolution background (level and rms) of one channel of an image.

    Parameters
    ----------
    shape : tuple of int
        The image's ``(H, W)``.
    box_size : int, optional
        Side of the boxes (pixels); the grid starts at pixel ``(0, 0)``.
    filter_size : int, optional
        Side of the median filter over the boxes (odd; 1: none).
    counts : bool, optional
        Photon counts: the unclipped mean of each box instead of the sigma-clipped median, and
        a map whose level is clipped at 0 (the spline between boxes may dip below 0 where counts
        are rare) and whose rms is Poisson's, ``sqrt(level)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import BackgroundMesh
    >>> sky = 100 + np.random.default_rng(0).normal(0, 2, (128, 192))
    >>> mesh = BackgroundMesh(sky.shape, box_size=32)
    >>> for x0 in (0, 64, 128):  # three windows on the box grid
    ...     mesh.add((0, x0), sky[:, x0 : x0 + 64], np.zeros((128, 64), bool))
    >>> level, rms = mesh.finish().window((10, 50), (100, 180))
    >>> level.shape, round(float(level.mean())), round(float(rms.mean()), 1)
    ((40, 80), 100, 1.9)
    """

    def __init__(
        self, shape, *, box_size: int = 64, filter_size: int = 3, counts: bool = False
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.box = int(box_size)
        self.filter_size = int(filter_size)
        self.counts = bool(counts)
        grid = tuple(math.ceil(n / self.box) for n in self.shape)
        self.level = np.full(grid, np.nan)
        self.rms = np.full(grid, np.nan)
        self._coefficients = None

    def add(self, origin, pixels, masked) -> None:
        """Measure the boxes of a window of the image.

        Parameters
        ----------
        origin : tuple of int
            The window's top-left pixel: multiples of ``box_size``.
        pixels : ndarray, shape (h, w)
            The window's pixels (float64 for the whole image's numbers); whole boxes, and the
            partial ones only where the window ends at the image's edge.
        masked : ndarray of bool, shape (h, w)
            Pixels left out (the objects, grown; NaN pixels are left out anyway).
        """
        y0, x0 = int(origin[0]), int(origin[1])
        h, w = np.shape(pixels)[:2]
        ends = (y0 + h, x0 + w)
        for start, end, size in zip((y0, x0), ends, self.shape, strict=True):
            if start % self.box or (end % self.box and end != size) or end > size:
                raise ValueError(
                    f"window {origin} + {(h, w)} is not on the {self.box}-pixel box grid of "
                    f"an image of {self.shape}"
                )
        level, rms = _box_statistics(pixels, masked, self.box, self.counts)
        by, bx = y0 // self.box, x0 // self.box
        self.level[by : by + level.shape[0], bx : bx + level.shape[1]] = level
        self.rms[by : by + level.shape[0], bx : bx + level.shape[1]] = rms

    @property
    def measured(self) -> bool:
        """Whether any box holds enough background pixels to be measured."""
        return bool(np.isfinite(self.level).any())

    def finish(self) -> BackgroundMesh:
        """Fill the unmeasured boxes, median-filter the mesh and prepare its spline; ``self``.

        Raises ``ValueError`` when no box could be measured (a crowded field)."""
        if not self.measured:
            raise ValueError(f"no {self.box}-pixel box holds enough background pixels")
        meshes = (self.level,) if self.counts else (self.level, self.rms)
        self._coefficients = tuple(
            _spline(_median_filter(_fill(mesh), self.filter_size)) for mesh in meshes
        )
        return self

    def window(self, ys, xs) -> tuple[np.ndarray, np.ndarray]:
        """The image's background map over a window (after :meth:`finish`).

        Parameters
        ----------
        ys, xs : tuple of int
            The window's rows ``ys[0]:ys[1]`` and columns ``xs[0]:xs[1]``.

        Returns
        -------
        tuple of ndarray
            ``(level, rms)``, float64 ``(h, w)``: the whole image's map there (of counts:
            ``level`` at least 0, ``rms`` its square root).
        """
        if self._coefficients is None:
            raise RuntimeError("BackgroundMesh.window before finish()")
        rows = (np.arange(ys[0], ys[1]) + 0.5) / self.box - 0.5  # zoom's grid_mode centres
        cols = (np.arange(xs[0], xs[1]) + 0.5) / self.box - 0.5
        if self.counts:
            level = np.maximum(_map(self._coefficients[0], rows, cols), 0.0)
            return level, np.sqrt(level)
        return tuple(_map(c, rows, cols) for c in self._coefficients)


def _box_statistics(pixels, masked, box: int, counts: bool):
    """Each box's level and rms (NaN: too few background pixels), as ``Background2D``."""
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MeanBackground, MedianBackground

    chan = np.asarray(pixels, dtype=np.float64)
    grid = tuple(math.ceil(n / box) for n in chan.shape)
    try:
        with caught("ignore"):
            bkg = Background2D(
                chan,
                (box, box),
                filter_size=(1, 1),
                mask=masked,
                sigma_clip=None if counts else SigmaClip(sigma=3.0),
                bkg_estimator=MeanBackground(sigma_clip=None) if counts else MedianBackground(),
                exclude_percentile=EXCLUDE_PERCENTILE,
            )
            level = np.array(bkg.background_mesh, dtype=np.float64)
            rms = np.array(bkg.background_rms_mesh, dtype=np.float64)
    except ValueError:  # every box (or pixel) of the window left out
        return np.full(grid, np.nan), np.full(grid, np.nan)
    # the boxes Background2D left out (it filled them from this window alone): unmeasured
    out = np.asarray(bkg.n_pixels_mesh) <= (1 - EXCLUDE_PERCENTILE / 100.0) * box * box
    level[out] = np.nan
    rms[out] = np.nan
    return level, rms


def _fill(mesh: np.ndarray) -> np.ndarray:
    """NaN boxes filled by inverse-distance weighting of the 10 nearest measured boxes."""
    bad = np.isnan(mesh)
    if not bad.any():
        return mesh
    from photutils.utils import ShepardIDWInterpolator

    interpolate = ShepardIDWInterpolator(np.column_stack(np.nonzero(~bad)), mesh[~bad])
    filled = mesh.copy()
    filled[bad] = interpolate(np.column_stack(np.nonzero(bad)), n_neighbors=10, power=1.0)
    return filled


def _nanmedian(values) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values)


def _median_filter(mesh: np.ndarray, size: int) -> np.ndarray:
    if size == 1:
        return mesh
    return ndi.generic_filter(mesh, _nanmedian, size=(size, size), mode="constant", cval=np.nan)


def _spline(mesh: np.ndarray):
    """What a window needs of the mesh: its spline coefficients and range (None: a constant)."""
    low, high = float(np.min(mesh)), float(np.max(mesh))
    if high == low:
        return None, low, high
    return ndi.spline_filter(mesh, order=3, mode="reflect", output=np.float64), low, high


def _map(coefficients, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    spline, low, high = coefficients
    if spline is None:
        return np.full((rows.size, cols.size), low)
    y, x = np.meshgrid(rows, cols, indexing="ij")
    values = ndi.map_coordinates(spline, [y, x], order=3, mode="reflect", prefilter=False)
    return np.clip(values, low, high, out=values)


__all__ = ["EXCLUDE_PERCENTILE", "BackgroundMesh"]
