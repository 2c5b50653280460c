"""Spotting a mosaic's uncovered area filled with 0 instead of NaN (:func:`check_nodata_fill`).

SWarp, Montage and slide stitchers fill the area no exposure covers with exact 0. Unless it is
read with ``nodata=0`` (CLI ``--nodata 0``), those zeros enter the whole-image normalization
statistics: on the bundled sky field cropped to 1024 x 1024 with its left 40 % set to 0, the zscale
limits went from 79..144 to 0..404 (67..146 to 0..407 with every pixel, QA 54) and the demo's
sky detector found 17 of its 49 sources in the covered part (50 with the frame masked).
"""

from __future__ import annotations

import math

import numpy as np

from sciconv.io import as_array, recorded_dtype
from sciconv.io._common import warn_caller

#: Pixels of the grid the check looks at (every ``step``-th row and column of a larger image)
_CHECK_PIXELS = 250_000
#: How far the fill value must lie from the rest of the image, in robust sky sigmas (1.4826 MAD)
_NOISE_SIGMAS = 5.0
#: Bytes of a lazy image's band of full rows read at once (float32)
_BAND_BYTES = 64 * 2**20


def _grid(x, max_pixels: int) -> np.ndarray:
    """Every ``step``-th row and column of ``x`` ((H, W) or (H, W, C), lazy or not) as (h, w, C),
    a lazy image read in full-width bands of about :data:`_BAND_BYTES`."""
    h, w = (int(s) for s in x.shape[:2])
    step = max(1, math.ceil(math.sqrt(h * w / max_pixels)))
    if isinstance(x, np.ndarray):
        sub = x[::step, ::step]
    else:  # LazyImage, dask, memmap: a strided slice would read the whole bounding box, and
        # single rows decompress a tile-compressed file's strip of tiles once per row (QA: 30 s
        # on a 4000^2 .fits.fz); bands of whole rows cost one pass, in bounded memory
        channels = int(x.shape[2]) if len(x.shape) == 3 else 1
        rows = max(1, _BAND_BYTES // (4 * w * channels))  # a lazy image reads float32
        band = max(step, rows // step * step)  # a multiple of step: the same rows as in memory
        sub = np.concatenate(
            [np.asarray(x[r : min(r + band, h)])[::step, ::step] for r in range(0, h, band)]
        )
    return sub[..., np.newaxis] if sub.ndim == 2 else sub


def _is_float(image, data) -> bool:
    """Whether the pixels were stored as floats (a GridImage says its file's dtype in ``meta``)."""
    stored = recorded_dtype(image)
    try:
        return (stored if stored is not None else np.dtype(data.dtype)).kind == "f"
    except TypeError:
        return False


def check_nodata_fill(image, *, path=None, value: float = 0.0, min_fraction: float = 0.1) -> float:
    """Warn when much of a float image is one connected region of exact ``value`` (no data?).

    A large connected region of exact 0 in a float image whose other pixels look like sky (they
    vary, and 0 lies more than 5 robust sigmas from their median) is a mosaic's uncovered area,
    as SWarp, Montage and stitchers fill it. Unless read with ``nodata=0`` (CLI ``--nodata 0``)
    it enters the normalization statistics and weakens what the network sees elsewhere (the
    demo's sky detector: 17 of 49 detections in the covered part). The image is looked at on a
    grid of about 250,000 pixels (a lazy image: read in bands of whole rows of about
    64 MB, one pass over the file). Integer images (counts,
    8-bit scans), images whose other pixels hardly vary (sparse counts stored as float) and
    sky-subtracted images, whose sky is 0 too, are left alone.

    Parameters
    ----------
    image : GridImage, LazyImage or array-like of shape (H, W) or (H, W, C)
        The image as read (``sciconv.io.read(..., lazy=True)`` included), before any nodata
        masking. A pixel is ``value`` when every channel is.
    path : str or os.PathLike, optional
        The file, named in the warning. Default: the GridImage's ``path``, else ``"image"``.
    value : float, optional
        The fill value looked for. Default 0.
    min_fraction : float, optional
        The share of the image the largest connected region must exceed. Default 0.1.

    Returns
    -------
    float
        The share of the image in the largest connected region of ``value`` when it warned,
        else 0.0.

    Warns
    -----
    SciconvWarning
        Naming the file, the share and ``nodata=VALUE`` / ``--nodata VALUE``.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sciconv.preprocess import check_nodata_fill
    >>> sky = np.random.default_rng(0).normal(100.0, 10.0, (200, 200)).astype(np.float32)
    >>> check_nodata_fill(sky)
    0.0
    >>> sky[:, :80] = 0.0  # a mosaic's uncovered 40 %
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     share = check_nodata_fill(sky, path="mosaic.fits")
    >>> round(share, 2), "--nodata 0" in str(said[0].message)
    (0.4, True)
    """
    from scipy import ndimage

    data = as_array(image)
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    if len(data.shape) not in (2, 3):
        return 0.0
    if not _is_float(image, data) or min(int(s) for s in data.shape[:2]) < 2:
        return 0.0
    sub = np.asarray(_grid(data, _CHECK_PIXELS), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        filled = np.all(sub == value, axis=-1)
    if filled.mean() <= min_fraction:
        return 0.0
    regions, _ = ndimage.label(filled, structure=np.ones((3, 3), bool))
    share = float(np.bincount(regions.ravel())[1:].max()) / filled.size
    rest = sub[~filled & np.all(np.isfinite(sub), axis=-1)][:, 0]
    if share <= min_fraction or rest.size < 100:
        return 0.0
    median = float(np.median(rest))
    sigma = 1.4826 * float(np.median(np.abs(rest - median)))
    if not (sigma > 0 and abs(median - value) > _NOISE_SIGMAS * sigma):
        return 0.0
    if path is None:
        path = getattr(image, "path", None) or "image"
    warn_caller(
        f"{path}: {share:.0%} of the image is one connected region of exact {value:g} while "
        f"the rest looks like sky ({median:.4g} +- {sigma:.2g}): a mosaic's uncovered area "
        f"(SWarp and Montage fill it with 0)? Read as data it enters the normalization and "
        f"weakens the sources elsewhere; if it holds no data, pass nodata={value:g} "
        f"(sciconv predict --nodata {value:g})",
        package="sciconv",
    )
    return share
