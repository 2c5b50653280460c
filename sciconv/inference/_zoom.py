"""Resampling for the model and back, on one pixel grid for a whole image and its windows.

:func:`~sciconv.inference.predict_instances` resamples an image by a zoom factor before the model
sees it (:func:`rescale_image`: bilinear, anti-aliased when shrinking, as scikit-image's
``rescale``) and maps the labels found back to the input's pixels (:func:`resize_labels`:
nearest neighbour, each object's largest piece kept).

Block by block, each window must see the pixels the whole resampled image has there, or two
windows label an object differently and the stitching keeps it twice or loses it (seen on real
nuclei enlarged 3x before windows shared a grid: 4-6 objects overlapping per 3k mosaic, 3-7 lost).
:class:`ZoomGrid` is the resampled image's pixel grid: a window gets the resampled pixels whose
centres fall inside it, computed with the same Gaussian pre-filter and the same bilinear
coordinates as the whole image (scipy.ndimage, as scikit-image's ``resize`` computes them), so
away from the window's edges (its margin) they are the whole image's pixels; its labels map back
through the same nearest-neighbour rule as the whole image's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import re

import numpy as np

from sciconv._warnings import caught
from sciconv.errors import InferenceError
from sciconv.inference._source import is_dask

#: scipy 1.10-1.15 say this on every affine_transform with a 1-D (diagonal) matrix, a change
#: made in scipy 0.18; a 2-D matrix would take scipy's slower general path instead
_AFFINE_1D_WARNING = "The behavior of affine_transform with a 1-D array"


@functools.lru_cache(maxsize=1)
def _scipy_warns_1d() -> bool:
    """Whether the installed scipy warns on a 1-D ``affine_transform`` matrix (before 1.16)."""
    import scipy

    return tuple(int(p) for p in re.findall(r"\d+", scipy.__version__)[:2]) < (1, 16)


@contextlib.contextmanager
def _quiet_old_scipy():
    """:data:`_AFFINE_1D_WARNING` filtered on a scipy that says it; nothing on a newer one (a
    filter added and removed for every band makes Python < 3.14 show other warnings again
    each time: review)."""
    if not _scipy_warns_1d():
        yield
        return
    with caught() as quiet:
        quiet.filterwarnings("ignore", _AFFINE_1D_WARNING, UserWarning)
        yield


@dataclasses.dataclass(frozen=True)
class ZoomGrid:
    """The pixel grid of an image of ``shape`` (H, W) resampled to ``zoomed`` (H', W').

    Zoomed pixel ``k`` is centred at input coordinate ``(k + 0.5) * H / H' - 0.5`` (pixel
    centres at integers), the mapping of ``skimage.transform.resize``.

    Examples
    --------
    >>> grid = ZoomGrid.of((100, 60), 0.5)
    >>> grid.zoomed, grid.span(0, 10, 30)
    ((50, 30), (5, 15))
    """

    shape: tuple[int, int]
    zoomed: tuple[int, int]

    @classmethod
    def of(cls, shape, factor: float, *, path=None) -> ZoomGrid:
        """The grid of an image of ``shape`` resampled by ``factor`` (``round(n * factor)``
        pixels per axis, as :func:`rescale_image`; fewer than 2 along an axis: an
        :class:`~sciconv.errors.InferenceError` naming ``path``)."""
        h, w = int(shape[0]), int(shape[1])
        zoomed = (round(h * factor), round(w * factor))
        if min(zoomed) < 2:
            raise InferenceError(
                f"scale {factor:.4g} turns an image of {(h, w)} pixels into {list(zoomed)}",
                path=path,
            )
        return cls((h, w), zoomed)

    def ratio(self, axis: int) -> float:
        """Zoomed pixels per input pixel along ``axis``."""
        return self.zoomed[axis] / self.shape[axis]

    def span(self, axis: int, a: int, b: int) -> tuple[int, int]:
        """The zoomed pixels ``[k0, k1)`` whose centres lie on input pixels ``a`` to ``b - 1``
        (between their centres, ``a - 0.5`` and ``b - 0.5``, both included)."""
        r = self.ratio(axis)
        k0 = max(0, math.ceil(a * r - 0.5))
        k1 = min(self.zoomed[axis], math.floor(b * r - 0.5) + 1)
        return k0, max(k0, k1)

    def window(self, data: np.ndarray, origin: tuple[int, int], *, path=None):
        """The resampled pixels of the window ``data`` (h, w[, C]) at ``origin`` (y, x) of the
        image: ``(pixels (k1 - k0, l1 - l0[, C]) float32, (k0, l0))``.

        Raises :class:`~sciconv.errors.InferenceError` when fewer than 2 resampled pixels fall
        in the window along an axis (a block too small for the factor).
        """
        from scipy import ndimage as ndi

        (y0, x0), (h, w) = origin, data.shape[:2]
        (k0, k1), (l0, l1) = self.span(0, y0, y0 + h), self.span(1, x0, x0 + w)
        if min(k1 - k0, l1 - l0) < 2:
            raise InferenceError(
                f"a block window of {h} x {w} pixels holds {k1 - k0} x {l1 - l0} pixels "
                f"resampled by {self.ratio(0):.3g}: too few; give a larger block=",
                path=path,
            )
        steps = [1 / self.ratio(0), 1 / self.ratio(1)]  # input pixels per zoomed pixel
        extra = [1.0] * (data.ndim - 2)  # channels untouched
        sigma = [max(0.0, (f - 1) / 2) for f in steps] + [0.0] * len(extra)
        data = np.asarray(data, np.float32)
        if any(sigma):  # skimage's anti-aliasing (reflect: scipy's "mirror")
            data = ndi.gaussian_filter(data, sigma, mode="mirror")
        offset = [(k0 + 0.5) * steps[0] - 0.5 - y0, (l0 + 0.5) * steps[1] - 0.5 - x0]
        with _quiet_old_scipy():  # scipy < 1.16 warns on every call (numbers unchanged)
            out = ndi.affine_transform(
                data,
                np.array(steps + extra),
                offset=offset + [0.0] * len(extra),
                output_shape=(k1 - k0, l1 - l0, *data.shape[2:]),
                order=1,
                mode="mirror",
            )
        return out, (k0, l0)

    def sample(self, read, *, transform=None, band: int = 128, path=None) -> np.ndarray:
        """The normalization limits sample of the resampled image, as
        :meth:`~sciconv.inference._source.Source.limits_sample` takes it from the whole resampled
        image (every pixel of a small one, else its rows and columns of
        :func:`~sciconv.inference._source.sample_lines`), computed from bands of at most
        ``band`` input rows (plus the pre-filter's reach) read with ``read((y0, y1), (x0, x1))``
        and passed through ``transform``: the whole resampled image is never held.

        Returns (rows, columns, C) float32.
        """
        from sciconv.inference._source import sample_lines

        (h, w), (zh, zw) = self.shape, self.zoomed
        lines = sample_lines(zh, zw)
        rows, cols = lines if lines is not None else (np.arange(zh), np.arange(zw))
        step = 1 / self.ratio(0)
        reach = math.ceil(4 * max(0.0, (step - 1) / 2) + step) + 2  # filter + interpolation
        parts, k = [], 0
        while k < len(rows):
            centre = (rows[k] + 0.5) * step - 0.5
            y0 = max(0, math.floor(centre) - reach)
            y1 = min(h, max(y0 + band, math.ceil(centre) + reach + 1))
            data = np.asarray(read((y0, y1), (0, w)), np.float32)
            data = data[..., None] if data.ndim == 2 else data
            if transform is not None:
                data = transform(data)
            pixels, (k0, _) = self.window(data, (y0, 0), path=path)
            inside = [  # the sampled rows this band computes exactly (its reach inside it)
                j
                for j in range(k, len(rows))
                if (y0 == 0 or (rows[j] + 0.5) * step - 0.5 - reach >= y0)
                and (y1 == h or (rows[j] + 0.5) * step - 0.5 + reach < y1)
                and k0 <= rows[j] < k0 + pixels.shape[0]
            ]
            if not inside:  # a band too short for one row's reach: widen it
                band *= 2
                continue
            parts.append(pixels[np.asarray(rows[inside]) - k0][:, cols])
            k = inside[-1] + 1
        return np.concatenate(parts, axis=0)

    def labels_back(
        self,
        labels: np.ndarray,
        corner: tuple[int, int],
        origin: tuple[int, int],
        hw: tuple[int, int],
        *,
        min_size: float = 0,
    ) -> np.ndarray:
        """Labels found on zoomed pixels from ``corner`` (k0, l0), at the input pixels of the
        window at ``origin`` (y, x) of height and width ``hw``: each input pixel takes the
        zoomed pixel nearest its centre (:meth:`values_back`; :func:`keep_largest_pieces`
        then)."""
        out = self.values_back(labels, corner, origin, hw).astype(np.int32)
        return keep_largest_pieces(out, min_size=min_size)

    def values_back(self, values, corner, origin, hw) -> np.ndarray:
        """Per-pixel ``values`` of zoomed pixels from ``corner`` at the input pixels of the
        window at ``origin`` of height and width ``hw``, each from the zoomed pixel nearest its
        centre (as :meth:`labels_back` maps labels: a map of per-object values stays aligned)."""
        index = []
        for axis in (0, 1):
            start, n, first = origin[axis], hw[axis], corner[axis]
            centre = (np.arange(start, start + n) + 0.5) * self.ratio(axis)
            k = np.floor(centre).astype(np.int64) - first
            index.append(np.clip(k, 0, values.shape[axis] - 1))
        return np.asarray(values)[index[0][:, None], index[1][None, :]]


def rescale_image(arr, scale: float, *, path=None) -> np.ndarray:
    """``arr`` (numpy or dask, ``(H, W)`` or ``(H, W, C)``) resampled by ``scale`` as
    :func:`~sciconv.inference.predict_instances` resamples an image before the model sees it:
    bilinear, anti-aliased when shrinking, ``round(n * scale)`` pixels per axis, float32, on
    :class:`ZoomGrid`'s pixels (scikit-image's ``rescale`` to float32 rounding, 1.5e-5 on
    0-255 data; 1.5-4x faster enlarging).

    Raises :class:`~sciconv.errors.InferenceError` (naming ``path``) when that leaves fewer
    than 2 pixels along an axis or more than 2**31 pixels.

    Examples
    --------
    >>> import numpy as np
    >>> rescale_image(np.ones((10, 21)), 0.5).shape
    (5, 10)
    """
    data = np.asarray(arr.compute() if is_dask(arr) else arr, dtype=np.float32)
    grid = ZoomGrid.of(data.shape[:2], scale, path=path)
    if grid.zoomed[0] * grid.zoomed[1] > 2**31:
        raise InferenceError(
            f"scale {scale:.4g} turns an image of {data.shape[:2]} pixels into {list(grid.zoomed)}",
            path=path,
        )
    return grid.window(data, (0, 0), path=path)[0]  # the grid block-wise windows share


def resize_labels(labels: np.ndarray, hw: tuple[int, int], *, min_size: float = 0) -> np.ndarray:
    """Labels found on a resampled image, at the input's size ``hw`` (nearest neighbour, the
    rule of :meth:`ZoomGrid.labels_back`): each object keeps its largest 4-connected piece
    (sampling can cut a thin neck), and objects of fewer than ``min_size`` pixels are dropped;
    numbered 1..N again.

    Examples
    --------
    >>> import numpy as np
    >>> small = np.zeros((4, 4), np.int32); small[1:3, 1:3] = 7
    >>> big = resize_labels(small, (8, 8))
    >>> int(big.max()), int((big == 1).sum())
    (1, 16)
    """
    grid = ZoomGrid((int(hw[0]), int(hw[1])), (int(labels.shape[0]), int(labels.shape[1])))
    return grid.labels_back(labels, (0, 0), (0, 0), grid.shape, min_size=min_size)


def keep_largest_pieces(labels: np.ndarray, *, min_size: float = 0) -> np.ndarray:
    """``labels`` with each object reduced to its largest 4-connected piece (ties: the first)
    and objects under ``min_size`` pixels dropped, numbered 1..N again (int32).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[5, 5, 0, 5], [5, 0, 0, 0], [0, 0, 3, 0]])
    >>> keep_largest_pieces(labels).tolist()
    [[2, 2, 0, 0], [2, 0, 0, 0], [0, 0, 1, 0]]
    """
    from skimage.measure import label as connected
    from skimage.segmentation import relabel_sequential

    out = np.asarray(labels, dtype=np.int32).copy()
    if not out.any():  # nothing found (or nothing left at the input's size)
        return np.zeros(out.shape, np.int32)
    pieces = connected(out, background=0, connectivity=1)  # pixels of one value, 4-connected
    size = np.bincount(pieces.ravel())
    owner = np.zeros(len(size), np.int64)  # the object each piece belongs to
    owner[pieces.ravel()] = out.ravel()
    ids = np.arange(1, len(size))
    # per object, its largest piece (ties: the first), kept when it has min_size pixels
    order = ids[np.lexsort((-size[1:], owner[1:]))]
    first = np.r_[True, owner[order[1:]] != owner[order[:-1]]]
    keep = np.zeros(len(size), bool)
    keep[order[first]] = size[order[first]] >= min_size
    out[~keep[pieces]] = 0
    return relabel_sequential(out)[0].astype(np.int32)


__all__ = ["ZoomGrid", "keep_largest_pieces", "rescale_image", "resize_labels"]
