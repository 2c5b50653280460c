"""zscale limits (IRAF's display limits) measured on every finite pixel, not on 1000 of them.

astropy's :class:`~astropy.visualization.ZScaleInterval` fits its line to ``n_samples`` (1000)
pixels. With so few, the limits are a random variable: on the bundled HST/ACS cutout, 40 draws
of 1000 pixels gave vmax 1801 to 2452 (7.8 % rms), and any change of the draw (one extra NaN
row, a NaN frame) moved the limits and a quarter of a sky detector's catalog (QA). Here the
same algorithm (sorted values, a line fitted with iterative k-sigma rejection, the contrast)
runs on every finite pixel of a channel up to :data:`ZSCALE_PIXELS`, in O(n) per iteration
(astropy dilates its rejection mask with a convolution, O(n^2) on a whole image), and above it
on a fixed subsample of that many pixels.

The values beyond the expected extremes of astropy's default 1000-pixel sample are left out:
the fit and the limits' clamp use the values of rank 1/1001 to 1000/1001 (:func:`zscale_clamp`,
the "weibull" quantiles of :func:`numpy.quantile`), read off the sorted values for free. So the
limits are astropy's ZScaleInterval on every one of those values, that is astropy's algorithm
with its default sample's range in expectation and without its noise; with at most 1000 values
they are astropy's on all of them. On every pixel instead (the clamp the min and max of all),
vmin was the image's single lowest pixel whenever the line falls below it, as it usually does
on sky images: one dead pixel moved vmin by 1.5 sky rms on a 1024 x 1024 sky, a 256 x 256 crop
got vmin 70 against 65 (QA); and that pixel, rejected, grew its rejection over the lowest 0.5 %
of the values (astropy's growth by 1 % of the count), which moved vmax of the HST cutout by
1.7 % of its span. Now one outlier pixel (-1e4, +1e6) moves the limits as little as dropping
that pixel does (2e-4 of the span on that cutout), and a crop gets the whole image's vmin
within a few hundredths of the sky rms.
"""

from __future__ import annotations

import math

import numpy as np

#: zscale uses every finite pixel of a channel up to this many, and above it this many places
#: of a fixed subsample (:func:`zscale_values`). 1 million: the limits have converged long
#: before (a 4000 x 4000 simulated sky of 10,000 sources: 1 million places within 0.005 sky rms
#: of every pixel's limits, 4 million no closer), and sorting and fitting them takes about
#: 0.1 s (4 million: 0.5 s per 2000 x 2000 image on a busy 2-core machine).
ZSCALE_PIXELS = 1_000_000
#: astropy's ZScaleInterval's default sample size: its min and max set the clamp
#: (:func:`zscale_clamp`)
ZSCALE_SAMPLE = 1000
#: astropy's ZScaleInterval defaults (IRAF's)
_CONTRAST, _MAX_REJECT, _MIN_NPIXELS, _KREJ, _MAX_ITERATIONS = 0.25, 0.5, 5, 2.5, 5


def _finite_box(chan: np.ndarray) -> tuple[np.ndarray, int]:
    """``chan`` ((H, W) or (H, W, C)) cropped to the rows and columns holding a finite value,
    and its count of finite values."""
    if chan.dtype.kind != "f":
        return chan, chan.size
    good = np.isfinite(chan)
    covered = good.any(axis=2) if good.ndim == 3 else good
    rows = np.flatnonzero(covered.any(axis=1))
    if rows.size == 0:
        return chan[:0, :0], 0
    cols = np.flatnonzero(covered.any(axis=0))
    ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    return chan[ys, xs], int(np.count_nonzero(good[ys, xs]))


def zscale_values(chan: np.ndarray, max_pixels: int = ZSCALE_PIXELS) -> np.ndarray:
    """The finite values zscale is measured on: every one, or a fixed subsample of a huge image.

    A channel with at most ``max_pixels`` finite values gives all of them, so no bad pixel
    (NaN, +/-inf) anywhere changes the result. A larger one gives the finite values at
    ``max_pixels`` places (drawn at random, repeats dropped, in raster order) of the bounding
    box of its finite values, from a generator seeded by that box's shape: a frame or a row of
    bad pixels around the image leaves every place where it was, and a bad pixel inside it
    drops its own value only.

    Parameters
    ----------
    chan : ndarray of shape (H, W) or (H, W, C)
        One channel (or all channels together).
    max_pixels : int, optional
        Default :data:`ZSCALE_PIXELS`.

    Returns
    -------
    ndarray, 1-D
        In ``chan``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.arange(12.0).reshape(3, 4)
    >>> framed = np.pad(image, 2, constant_values=np.nan)
    >>> zscale_values(framed).tolist() == image.ravel().tolist()
    True
    >>> big = np.arange(100.0 * 100).reshape(100, 100)  # above max_pixels: a subsample
    >>> framed = np.pad(big, 3, constant_values=np.nan)
    >>> np.array_equal(zscale_values(big, 500), zscale_values(framed, 500))
    True
    """
    box, n_finite = _finite_box(np.asarray(chan))
    if n_finite <= max_pixels:
        return box[np.isfinite(box)] if box.dtype.kind == "f" else box.ravel()
    rng = np.random.default_rng(list(box.shape))
    drawn = np.zeros(box.size, dtype=bool)  # repeats dropped, raster order: no sort needed
    drawn[rng.integers(0, box.size, max_pixels)] = True
    places = np.flatnonzero(drawn)
    del drawn
    if box.flags.c_contiguous:
        values = box.reshape(-1)[places]
    else:
        values = box[np.unravel_index(places, box.shape)]
    return values[np.isfinite(values)] if values.dtype.kind == "f" else values


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """The dot product of two 1-D float64 arrays without BLAS (whose threads made each one of
    160,000 values take 15 ms instead of 0.03 ms on a busy 2-core machine)."""
    return float(np.einsum("i,i->", a, b))


def _dilate(bad: np.ndarray, width: int, counts: np.ndarray) -> np.ndarray:
    """``np.convolve(bad, np.ones(width), mode="same") > 0`` in O(n): whether a bad element lies
    in ``[i - width // 2, i + (width - 1) // 2]``; ``counts``: integer scratch of n + width."""
    n, left = bad.size, width // 2
    counts[: left + 1] = 0
    np.cumsum(bad, dtype=counts.dtype, out=counts[left + 1 : left + 1 + n])
    counts[left + 1 + n :] = counts[left + n]
    return np.greater(counts[width:], counts[:-width], out=bad)


def zscale_clamp(n: int, n_samples: int = ZSCALE_SAMPLE) -> tuple[int, int]:
    """The (0-based) ranks, among ``n`` sorted values, of the least and greatest value of
    astropy's ``n_samples``-value zscale sample in expectation.

    The min and max of ``n_samples`` values drawn from ``n`` have expected (1-based) ranks
    ``(n + 1) / (n_samples + 1)`` and ``n_samples (n + 1) / (n_samples + 1)`` (the quantiles
    1/1001 and 1000/1001 of :func:`numpy.quantile`'s ``method="weibull"`` for 1000), here
    rounded to the nearest rank; with ``n <= n_samples`` the first and last value.

    Parameters
    ----------
    n : int
        Count of values (at least 1).
    n_samples : int, optional
        The sample size whose expected extremes are meant. Default :data:`ZSCALE_SAMPLE`.

    Returns
    -------
    (int, int)
        ``(first, last)``, with ``last = n - 1 - first``.

    Examples
    --------
    >>> zscale_clamp(1_000_999)  # ranks 1000 and 1000000 (1-based)
    (999, 999999)
    >>> zscale_clamp(300)  # fewer than 1000 values: all of them
    (0, 299)
    """
    first = min(max(math.floor((n + 1) / (n_samples + 1) + 0.5) - 1, 0), (n - 1) // 2)
    return first, n - 1 - first


def zscale_limits(values: np.ndarray, *, bounds: tuple[float, float] | None = None):
    """IRAF's zscale limits of ``values``: astropy's
    :class:`~astropy.visualization.ZScaleInterval` on every value between the expected least and
    greatest of its default 1000-value sample (:func:`zscale_clamp`).

    The values are sorted, those below rank 1/1001 and above 1000/1001 left out, and a line is
    fitted to the rest with iterative k-sigma rejection (2.5 sigma, rejected runs grown by 1 %
    of the count, at most 5 rounds); the limits are the median -/+ the line's slope / contrast
    (0.25) over half the count, clamped to the least and greatest value kept (the values too,
    when the rejection leaves too few). A single outlier pixel is left out, not fitted: it
    neither sets vmin (as the least of every pixel would) nor grows a rejected run.

    Parameters
    ----------
    values : array-like
        Finite values (any shape; flattened).
    bounds : (float, float), optional
        Outer bounds of the limits (a subsample passes the whole image's min and max, which
        hold its kept values already). Default: none.

    Returns
    -------
    (float, float)
        ``(vmin, vmax)``; NaN, NaN for no value.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.visualization import ZScaleInterval
    >>> x = np.sort(np.random.default_rng(0).normal(100.0, 10.0, 5000))
    >>> first, last = zscale_clamp(x.size)  # 4 and 4995: 5 values left out at each end
    >>> kept = x[first : last + 1]
    >>> np.allclose(zscale_limits(x), ZScaleInterval(n_samples=kept.size).get_limits(kept))
    True
    >>> x[0] = -1e4  # a dead pixel: left out
    >>> np.allclose(zscale_limits(x), ZScaleInterval(n_samples=kept.size).get_limits(kept))
    True
    """
    s = np.sort(np.asarray(values).ravel())  # in the values' dtype: float32 sorts faster
    npix = s.size
    if npix == 0:
        return math.nan, math.nan
    first, last = zscale_clamp(npix)
    s = s[first : last + 1].astype(np.float64, copy=False)  # a copy: shifted in place below
    npix = s.size
    lo, hi = float(s[0]), float(s[-1])
    if bounds is not None:
        lo, hi = max(lo, float(bounds[0])), min(hi, float(bounds[1]))
    median = 0.5 * (s[(npix - 1) // 2] + s[npix // 2])
    minpix = max(_MIN_NPIXELS, int(npix * _MAX_REJECT))
    # the line is fitted to (x - its mean, s - the median): sums without cancellation
    s -= median
    x = np.arange(npix, dtype=np.float64)
    x -= 0.5 * (npix - 1)
    bad = np.zeros(npix, dtype=bool)
    w, flat = np.empty(npix), np.empty(npix)  # w: 1.0 for a value in the fit, then scratch
    width = max(1, int(npix * 0.01))
    counts = np.empty(npix + width, dtype=np.int32 if npix + width < 2**31 else np.int64)
    ngood, last, slope = npix, npix + 1, None
    for _ in range(_MAX_ITERATIONS):
        if ngood >= last or ngood < minpix:
            break
        np.logical_not(bad, out=w, casting="unsafe")
        mx, ms = _dot(w, x) / ngood, _dot(w, s) / ngood
        np.multiply(w, x, out=flat)
        sxx = _dot(flat, x) - ngood * mx * mx
        fit = (_dot(flat, s) - ngood * mx * ms) / sxx if sxx > 0 else 0.0
        np.multiply(x, -fit, out=flat)
        flat += s
        flat -= ms - fit * mx  # the residuals from the line
        mean = _dot(w, flat) / ngood
        w *= flat
        threshold = _KREJ * math.sqrt(max(_dot(w, flat) / ngood - mean * mean, 0.0))
        np.abs(flat, out=flat)
        bad |= flat > threshold
        bad = _dilate(bad, width, counts)
        last, ngood, slope = ngood, npix - int(np.count_nonzero(bad)), fit
    vmin, vmax = lo, hi
    if ngood >= minpix and slope is not None:
        slope = slope / _CONTRAST
        center = (npix - 1) // 2
        vmin = max(lo, float(median - (center - 1) * slope))
        vmax = min(hi, float(median + (npix - center) * slope))
    return vmin, vmax
