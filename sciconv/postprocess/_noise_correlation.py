"""Correlated pixel noise: how much larger an object's summed noise is than its pixels' errors
added in quadrature.

A resampled image (a drizzled HST ``drz``/``drc``, a JWST ``i2d``, a reprojected mosaic) shares
each input pixel between neighbouring output pixels, so their noise is correlated: the variance
of a sum over ``N`` pixels is ``R N sigma**2`` with ``R > 1`` (Casertano et al. 2000, AJ 120,
2747, drizzle's "R"; Fruchter & Hook 2002), and a ``flux_err`` summed in quadrature, from the
file's own ``ERR`` or from the background rms alike, is ``sqrt(R)`` too small (QA: 1.42x on an
image resampled with bilinear weights, with a correct per-pixel ``ERR``; JWST's documentation
says its ``i2d`` ``ERR`` ignores it).

:class:`NoiseCorrelation` measures the correlation on the background: the pixels outside the
objects (grown by 3 pixels) and bad pixels, in whole 64-pixel boxes of the image's box grid (the
:class:`~sciconv.postprocess.BackgroundMesh` grid; at most :data:`MAX_BOXES` of them, a regular
sample of a large image), each box's plane (the sky and its gradient) fitted and subtracted and
its pixels 4-sigma clipped (cosmic rays, hot pixels). From the products of pixels
``d = (dy, dx)`` apart (``|dy|, |dx| <= MAX_LAG``) in each box comes the correlation ``rho(d)``
of the noise, and from it the variance ratio of a ``k x k`` box sum,
``R(k) = var(sum) / (k**2 var(pixel)) = sum_d (1 - |dx|/k)(1 - |dy|/k) rho(d)``; an object of
``A`` pixels gets ``R(sqrt(A))``, which rises from 1 (one pixel) to ``R(inf) = sum_d rho(d)``.

The correlation is applied where the image's noise is measurably correlated and the correlation
is a resampling's, which ends within 1-3 pixels: ``R(inf)`` above ``1 + MIN_EXCESS`` and 3 times
its statistical error, the nearest offsets (1 pixel, diagonals included) adding at least
:data:`NEAR_SHARE` of ``R(inf) - 1`` (bilinear weights: all of it; a Gaussian smoothing of 1
pixel: 48 %) and the offsets of 3 and 4 pixels at most :data:`FAR_SHARE` (within twice their
noise). A correlation spread farther is sky structure, unmasked faint sources or confusion (a
crowded HST field: ``rho`` 0.3 at 4 pixels; the nearest offsets 17 % of a star's unlabelled
wings' ``R - 1``), an uneven microscopy background or a broad smoothing kernel, which these
offsets cannot measure: it is reported (:meth:`NoiseCorrelation.describe`), not applied. White
noise (a detector frame) keeps its ``flux_err`` as it was (a factor 1, not a noisy one). These
offsets cannot tell a resampling kernel from a detector frame's undersampled sky (QA: 800-3000
faint unlabelled sources with a PSF of sigma 0.8-1 pixel, a white-noise frame: R(inf) 1.3-1.8
taken for a resampling's, flux_err 1.1-1.35x too large), nor from interpixel capacitance of a
large frame (:data:`MIN_EXCESS`): ``measure(noise_correlation="auto")`` applies a resampling's
correlation only to an image whose header says it was resampled (:func:`resampled_by`), and
does not measure it otherwise (0.3-1 s a catalog saved); ``"measure"`` measures it whatever the
header, and applies it where it is a resampling's. An
anti-correlated noise (``R < 1``) is not applied either (the errors are never made smaller). A
map in ``Jy/beam`` is left to its ``flux_density_err``
(:func:`~sciconv.postprocess.add_beam_columns`: correlated over the beam).

The plane subtracted in each box takes a little of its noise (``rho`` about ``-3/4096`` at
every offset, ``R(inf)`` 0.06 low); ``rho`` is corrected for it (``B(d)``, :func:`_plane_bias`),
so white noise measures ``R = 1.00`` and a bilinear resampling ``R(8) = 2.066`` (box sums of a
2000 x 2000 realisation: 2.066).

Each box's numbers come from its own pixels (and the objects within 3 pixels of it) and are
pooled exactly (``math.fsum``), so a block-wise run that reads the sampled boxes through its
window reader, with the stitched labels (:meth:`NoiseCorrelation.from_windows`), or adds tiles
on the box grid (:meth:`NoiseCorrelation.add`, as :class:`~sciconv.postprocess.BackgroundMesh`
takes them) gets the whole image's numbers, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from sciconv._validation import check_int
from sciconv.errors import InvalidImageError
from sciconv.postprocess._flux_error_notes import APPLIED_NOTE, CORRELATED_FLUX_ERR, flux_error_note

__all__ = [
    "APPLIED_NOTE",
    "FAR_SHARE",
    "MAX_BOXES",
    "MAX_LAG",
    "MIN_EXCESS",
    "NEAR_SHARE",
    "NOT_RESAMPLED_NOTE",
    "NoiseCorrelation",
    "apply_noise_correlation",
    "correlation_of",
    "flux_error_note",
    "grown_objects",
    "large_sum_ratio",
    "noise_correlation",
]

#: Side of the boxes the correlation is measured in (the background mesh's).
BOX_SIZE = 64
#: Largest pixel offset (rows, columns) whose correlation is measured: drizzle and bilinear
#: kernels reach 1-2 pixels, Lanczos-3 3.
MAX_LAG = 4
#: Most boxes measured: a larger image's whole boxes are sampled on a regular sub-grid.
MAX_BOXES = 256
#: ``R(inf)`` must exceed 1 by this (and by 3 standard errors) to be applied. It does not leave
#: out interpixel capacitance: a 2-3 % IPC (HgCdTe) gives ``R(inf)`` 1.17-1.28, above it on a
#: frame large enough (QA: 3 %, 62 % of 192-pixel frames; an image under about 128 pixels is
#: mostly left alone), which is why ``"auto"`` asks the header (:func:`resampled_by`).
MIN_EXCESS = 0.1
#: The offsets of 3 and 4 pixels may add at most this share of ``R(inf) - 1`` (a resampling's
#: correlation ends before: bilinear 0 %, a 1-pixel Gaussian smoothing 15 %; a crowded field's
#: or a star's unmasked wings 50 % and more).
FAR_SHARE = 0.2
#: The offsets of 1 pixel must add at least this share of ``R(inf) - 1`` (bilinear weights
#: 100 %, a 1-pixel Gaussian smoothing 48 %; unlabelled wings of bright sources 17-20 %).
NEAR_SHARE = 0.4
#: Pixels (>= 0) the objects are grown by before they are left out (the background's ``grow``).
GROW = 3
_MIN_GOOD = 0.5  # fraction of a box's pixels left for it to be measured (the mesh's rule)
_SPREAD_CAP = 4.0  # largest R(inf) the plane's bias and the statistical errors are scaled by
_CLIP = 4.0  # sigma: outliers (cosmic rays, hot pixels); a 3-sigma clip lowers R by 2 %
# the offsets measured: half of the (2 L + 1)^2 square (rho(-d) = rho(d)), (0, 0) first
_LAGS = [(0, 0)] + [
    (dy, dx) for dy in range(MAX_LAG + 1) for dx in range(-MAX_LAG, MAX_LAG + 1) if dy > 0 or dx > 0
]
_FAR = np.array([max(abs(dy), abs(dx)) >= MAX_LAG - 1 for dy, dx in _LAGS])  # 3 and 4 px
_NEAR = np.array([max(abs(dy), abs(dx)) == 1 for dy, dx in _LAGS])  # 1 px


class NoiseCorrelation:
    """The noise correlation of an image's background, gathered box by box (module notes).

    Parameters
    ----------
    shape : tuple of int
        The image's ``(H, W)``.
    channels : int, optional
        The image's channels (one correlation each).
    max_boxes : int, optional
        Most 64-pixel boxes measured (a regular sample of them beyond).

    Attributes
    ----------
    ratio_inf : ndarray, shape (C,)
        ``R(inf)``, the variance ratio of a large sum (NaN: not measured).
    error_inf : ndarray, shape (C,)
        Its standard error (the independent pixels' times ``R(inf)``).
    applied : ndarray of bool, shape (C,)
        Whether :meth:`factor` differs from 1 (module notes).
    structure : ndarray of bool, shape (C,)
        Whether the correlation is spread farther than a resampling's (module notes): not
        applied.
    withheld : ndarray of bool, shape (C,)
        A resampling's correlation not applied: the header does not say the image was
        resampled (:meth:`gate`).
    resampled : str or None
        What :meth:`gate` was given: the header card saying the image was resampled.
    pixels : ndarray of int, shape (C,)
        The background pixels measured.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage as ndi
    >>> from sciconv.postprocess._noise_correlation import NoiseCorrelation
    >>> rng = np.random.default_rng(0)
    >>> white = rng.normal(0, 1, (256, 256))
    >>> smooth = ndi.uniform_filter(white, 2)  # each pixel the mean of 2 x 2: correlated
    >>> ok = np.zeros(white.shape, bool)
    >>> for image in (white, smooth):
    ...     corr = NoiseCorrelation(image.shape)
    ...     corr.add((0, 0), image, ok)
    ...     corr = corr.finish()
    ...     print(corr.applied[0], np.round(corr.factor([1, 16, 400])[:, 0], 2))
    False [1. 1. 1.]
    True [1.   1.76 1.93]
    """

    def __init__(self, shape, channels: int = 1, *, max_boxes: int = MAX_BOXES) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.channels = check_int(channels, name="channels", minimum=1)
        max_boxes = check_int(max_boxes, name="max_boxes", minimum=1)
        grid = (self.shape[0] // BOX_SIZE, self.shape[1] // BOX_SIZE)  # whole boxes only
        self.stride = max(1, math.ceil(math.sqrt(grid[0] * grid[1] / max_boxes)))
        rows = range(self.stride // 2, grid[0], self.stride)
        cols = range(self.stride // 2, grid[1], self.stride)
        self._index = {(by, bx): i for i, (by, bx) in enumerate((r, c) for r in rows for c in cols)}
        n = len(self._index)
        self._sums = np.full((n, self.channels, len(_LAGS)), np.nan)  # sum of products
        self._pairs = np.zeros((n, self.channels, 2, len(_LAGS)))  # pairs, and the plane's bias
        self.rho = None
        self.ratio_inf = np.full(self.channels, np.nan)
        self.error_inf = np.full(self.channels, np.nan)
        self.applied = np.zeros(self.channels, bool)
        self.structure = np.zeros(self.channels, bool)
        self.withheld = np.zeros(self.channels, bool)
        self.resampled = None
        self.pixels = np.zeros(self.channels, np.int64)

    @property
    def boxes(self) -> list[tuple[int, int]]:
        """The ``(row, column)`` (in boxes) of the boxes measured, in grid order."""
        return list(self._index)

    def add(self, origin, pixels, masked) -> None:
        """Measure the sampled boxes lying wholly in a window of the image.

        Parameters
        ----------
        origin : tuple of int
            The window's top-left pixel (a box that crosses its edges is left to the window
            that holds it whole: windows on the 64-pixel box grid).
        pixels : ndarray, shape (h, w) or (h, w, C)
            The window's pixels (float64: the whole image's numbers).
        masked : ndarray of bool, shape (h, w) or (h, w, C)
            Pixels left out (the objects, grown; non-finite pixels are left out anyway).
        """
        y0, x0 = int(origin[0]), int(origin[1])
        data = np.asarray(pixels, dtype=np.float64)
        data = data[..., None] if data.ndim == 2 else data
        bad = np.asarray(masked, dtype=bool)
        bad = bad[..., None] if bad.ndim == 2 else bad
        if data.ndim != 3 or data.shape[-1] != self.channels or bad.shape[:2] != data.shape[:2]:
            raise InvalidImageError(
                f"a window of {self.channels} channel(s) and its (h, w) mask: got pixels of "
                f"shape {np.shape(pixels)} and a mask of shape {np.shape(masked)}"
            )
        h, w = data.shape[:2]
        inside = [
            (key, i)
            for key, i in self._index.items()
            if key[0] * BOX_SIZE >= y0
            and (key[0] + 1) * BOX_SIZE <= y0 + h
            and key[1] * BOX_SIZE >= x0
            and (key[1] + 1) * BOX_SIZE <= x0 + w
        ]
        for (by, bx), i in inside:
            ys = slice(by * BOX_SIZE - y0, (by + 1) * BOX_SIZE - y0)
            xs = slice(bx * BOX_SIZE - x0, (bx + 1) * BOX_SIZE - x0)
            for k in range(self.channels):
                box = data[ys, xs, k]
                self._sums[i, k], self._pairs[i, k] = _box_products(
                    box, bad[ys, xs, min(k, bad.shape[-1] - 1)] | ~np.isfinite(box)
                )

    def finish(self) -> NoiseCorrelation:
        """Pool the boxes into ``rho(d)``, ``R(inf)`` and whether it is applied; ``self``."""
        self.rho = np.full((self.channels, len(_LAGS)), np.nan)
        for k in range(self.channels):
            measured = np.isfinite(self._sums[:, k, 0])
            if not measured.any():
                continue
            # fsum: the same number whatever order the boxes were added in
            sums = np.array([math.fsum(self._sums[measured, k, j]) for j in range(len(_LAGS))])
            pairs, bias = (
                np.array([math.fsum(self._pairs[measured, k, i, j]) for j in range(len(_LAGS))])
                for i in range(2)
            )
            if not (sums[0] > 0 and pairs.min() > 0):
                continue
            # each box's plane took some of its noise: E[sum] = var (pairs rho - R(inf) B),
            # R(inf) = sum(rho) (a plane is smooth: the noise's covariance acts on it as R)
            ratio = 1.0  # (the correction capped: a larger R is structure's, not applied)
            for _ in range(50):
                taken = min(max(ratio, 0.0), _SPREAD_CAP)
                var = sums[0] / (pairs[0] - taken * bias[0])
                rho = (sums / var + taken * bias) / pairs
                ratio, before = 1.0 + 2.0 * float(rho[1:].sum()), ratio
                if abs(ratio - before) < 1e-12:
                    break
            self.rho[k] = rho
            self.pixels[k] = int(pairs[0])
            self.ratio_inf[k] = ratio
            # var(rho(d)) ~ 1 / pairs(d) for independent pixels (each offset counts twice),
            # R(inf)^2 times that for a resampling's (simulated: 0.23 for 0.09 at R = 2.2);
            # capped: a larger R is structure's, whose far offsets must not hide in the noise
            spread = 2.0 * min(max(ratio, 1.0), _SPREAD_CAP)
            self.error_inf[k] = spread * math.sqrt(float(np.sum(1.0 / pairs[1:])))
            # a resampling kernel's correlation ends within a few pixels; sky structure's,
            # unmasked sources' or a broad smoothing kernel's goes on (module notes)
            excess = self.ratio_inf[k] - 1.0
            far = 2.0 * float(rho[_FAR].sum())  # what the offsets of 3 and 4 px add to R
            far_error = spread * math.sqrt(float(np.sum(1.0 / pairs[_FAR])))
            near = 2.0 * float(rho[_NEAR].sum())  # what the offsets of 1 px add to R
            significant = excess > max(MIN_EXCESS, 3.0 * self.error_inf[k])
            self.structure[k] = significant and bool(
                abs(far) > FAR_SHARE * excess + 2.0 * far_error or near < NEAR_SHARE * excess
            )
            self.applied[k] = bool(significant and not self.structure[k])
        return self

    def gate(self, resampled: str | None) -> NoiseCorrelation:
        """``noise_correlation="auto"``'s rule (module notes): apply a resampling's correlation
        only where ``resampled`` (:func:`resampled_by`) says the image was resampled; else it is
        :attr:`withheld` and described (:data:`NOT_RESAMPLED_NOTE`). ``self``.

        Parameters
        ----------
        resampled : str or None
            The header card saying so, or None.
        """
        self.resampled = resampled
        if resampled is None:
            self.withheld |= self.applied
            self.applied[:] = False
        return self

    def _ratio(self, k: int, side: np.ndarray) -> np.ndarray:
        """``R(side)`` of channel ``k`` as measured (module notes), for each side (pixels)."""
        side = np.maximum(np.asarray(side, dtype=np.float64), 1.0)[:, None]
        dy = np.array([abs(d[0]) for d in _LAGS], np.float64)[None]
        dx = np.array([abs(d[1]) for d in _LAGS], np.float64)[None]
        weight = np.clip(1.0 - dy / side, 0.0, None) * np.clip(1.0 - dx / side, 0.0, None)
        weight[:, 1:] *= 2.0  # rho(-d) = rho(d)
        return weight @ self.rho[k]

    def ratio(self, area) -> np.ndarray:
        """``R(sqrt(area))`` for objects of ``area`` pixels, ``(N, C)``: 1 where not applied.

        Parameters
        ----------
        area : array_like, shape (N,) or (N, C)
            Each object's pixels (per channel: its finite ones).
        """
        if self.rho is None:
            raise RuntimeError("NoiseCorrelation.ratio before finish()")
        a = np.asarray(area, dtype=np.float64)
        a = np.broadcast_to(a[:, None] if a.ndim == 1 else a, (a.shape[0], self.channels))
        out = np.ones(a.shape)
        for k in np.flatnonzero(self.applied):
            out[:, k] = np.maximum(self._ratio(k, np.sqrt(np.nan_to_num(a[:, k]))), 1.0)
        return out

    def factor(self, area) -> np.ndarray:
        """The factor of each object's ``flux_err``, ``sqrt(R(sqrt(area)))``, ``(N, C)``.

        Parameters
        ----------
        area : array_like, shape (N,) or (N, C)
            Each object's pixels.
        """
        return np.sqrt(self.ratio(area))

    def describe(self) -> str:
        """What a catalog's ``meta["FLUXCORR"]`` says: ``R`` measured, and whether applied."""
        parts = []
        for k in range(self.channels):
            if not np.isfinite(self.ratio_inf[k]):
                parts.append("not measured (too few background pixels)")
                continue
            sides = np.array([2.0, 4.0, 8.0, np.inf])
            r = self._ratio(k, sides)
            measured = (
                f"R(k) = var(k x k sum) / (k^2 var(pixel)) = {r[0]:.2f}, {r[1]:.2f}, "
                f"{r[2]:.2f}, {r[3]:.2f} +- {self.error_inf[k]:.2f} at k = 2, 4, 8, inf px "
                f"({self.pixels[k]} background pixels)"
            )
            if self.applied[k]:
                how = "flux_err x sqrt(R(sqrt(area)))"
                how += f" (resampled: {self.resampled})" if self.resampled else ""
            elif self.withheld[k]:
                how = f"a resampling's, flux_err not changed: {NOT_RESAMPLED_NOTE}"
            elif self.structure[k]:
                how = (
                    "spread farther than a resampling's (sky structure, unmasked sources or a "
                    "broad smoothing kernel): flux_err not changed"
                )
            else:
                how = "consistent with independent pixels: flux_err not changed"
            parts.append(f"{measured}; {how}")
        head = "correlated noise: " if self.channels == 1 else "correlated noise per channel: "
        return head + " | ".join(parts)

    @classmethod
    def from_windows(
        cls,
        read,
        labels,
        shape,
        channels: int = 1,
        *,
        grow: int = GROW,
        max_boxes: int = MAX_BOXES,
    ) -> NoiseCorrelation:
        """Measure an image read window by window: only its sampled boxes are read (at most
        :data:`MAX_BOXES` of 64 x 64 pixels), so a huge image costs a few MB.

        Parameters
        ----------
        read : callable
            ``read((y0, y1), (x0, x1))``: the image's pixels there, ``(h, w)`` or ``(h, w, C)``
            (a block-wise run's window reader).
        labels : array_like of int, shape (H, W), or None
            The objects (sliced: a memory map or zarr array is read box by box), grown by
            ``grow`` pixels and left out.
        shape : tuple of int
            The image's ``(H, W)``.
        channels : int, optional
            The image's channels.
        grow, max_boxes : int, optional
            As for :meth:`of`.

        Returns
        -------
        NoiseCorrelation
            Finished: the numbers :meth:`of` gives for the whole image in memory.
        """
        grow = check_int(grow, name="grow", minimum=0)
        corr = cls(shape, channels, max_boxes=max_boxes)
        for by, bx in corr.boxes:  # only the boxes measured are read (and grown)
            ys = (by * BOX_SIZE, (by + 1) * BOX_SIZE)
            xs = (bx * BOX_SIZE, (bx + 1) * BOX_SIZE)
            objects = np.zeros((BOX_SIZE, BOX_SIZE), bool)
            if labels is not None:
                objects = grown_objects(labels, ys, xs, corr.shape, grow)
            corr.add((ys[0], xs[0]), np.asarray(read(ys, xs), dtype=np.float64), objects)
        return corr.finish()

    @classmethod
    def of(
        cls, image, labels=None, *, grow: int = GROW, max_boxes: int = MAX_BOXES
    ) -> NoiseCorrelation:
        """The noise correlation of a whole image in memory.

        Parameters
        ----------
        image : ndarray, shape (H, W) or (H, W, C)
            The pixels (NaN ones left out).
        labels : ndarray of int, shape (H, W), optional
            Objects to leave out, grown by ``grow`` pixels.
        grow : int, optional
            Pixels the objects are grown by.
        max_boxes : int, optional
            Most 64-pixel boxes measured.

        Returns
        -------
        NoiseCorrelation
            Finished.
        """
        data = np.asarray(image)
        channels = 1 if data.ndim == 2 else data.shape[-1]

        def read(ys, xs):
            return data[ys[0] : ys[1], xs[0] : xs[1]]

        return cls.from_windows(
            read, labels, data.shape[:2], channels, grow=grow, max_boxes=max_boxes
        )


def grown_objects(labels, ys, xs, shape, grow: int = GROW) -> np.ndarray:
    """The labelled pixels of the window ``ys`` x ``xs``, grown by ``grow`` pixels as the whole
    image's would be (read with a margin, so objects just outside reach in).

    Parameters
    ----------
    labels : array_like, shape (H, W)
        Instance labels (0: background); only the window and its margin are read.
    ys, xs : tuple of int
        The window's rows and columns.
    shape : tuple of int
        The image's ``(H, W)``.
    grow : int, optional
        Pixels (``binary_dilation`` iterations).

    Returns
    -------
    numpy.ndarray of bool, shape (len(ys), len(xs))
        True on the grown objects.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((8, 8), int); labels[0, 0] = 1
    >>> from sciconv.postprocess import grown_objects
    >>> grown_objects(labels, (0, 4), (0, 4), labels.shape, 1).astype(int).tolist()[:2]
    [[1, 1, 0, 0], [1, 0, 0, 0]]
    """
    y0, y1 = max(0, ys[0] - grow), min(shape[0], ys[1] + grow)
    x0, x1 = max(0, xs[0] - grow), min(shape[1], xs[1] + grow)
    objects = np.asarray(labels[y0:y1, x0:x1]) != 0
    if grow:
        objects = ndi.binary_dilation(objects, iterations=grow)
    return objects[ys[0] - y0 : ys[1] - y0, xs[0] - x0 : xs[1] - x0]


def _lag_sums(r: np.ndarray) -> np.ndarray:
    """Sums of the products of the pixels of the square ``r`` ``d`` apart, each offset of
    ``_LAGS``."""
    size = r.shape[0]
    sums = np.empty(len(_LAGS))
    for j, (dy, dx) in enumerate(_LAGS):
        a = r[: size - dy, max(0, -dx) : size - max(0, dx)]
        b = r[dy:, max(0, dx) : size - max(0, -dx)]
        sums[j] = float(np.sum(a * b))
    return sums


def _plane_bias() -> np.ndarray:
    """``B(d)``: for a box of independent pixels of variance 1 whose fitted plane is subtracted,
    minus the expected sum of the residuals' products ``d`` apart (3 at ``d = 0``: the plane's
    parameters), over a whole box (``sum_pairs P_ij``, ``P`` the projection on the plane)."""
    if _BIAS:
        return _BIAS[0]
    t = (np.arange(BOX_SIZE, dtype=np.float64) - (BOX_SIZE - 1) / 2) / BOX_SIZE
    yy, xx = np.meshgrid(t, t, indexing="ij")
    basis, _ = np.linalg.qr(np.stack([np.ones(yy.size), yy.ravel(), xx.ravel()], axis=1))
    bias = sum(_lag_sums(q.reshape(yy.shape)) for q in basis.T)
    _BIAS.append((bias, _lag_sums(np.ones(yy.shape))))  # and the pairs of a whole box
    return _BIAS[0]


_BIAS: list = []


def _box_products(box: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sums, pairs)`` of a 64 x 64 box: the sums of the products of its residual pixels (its
    plane subtracted, outliers clipped) ``d`` apart for each offset of ``_LAGS``, and ``(2, L)``:
    their numbers of pairs and the plane's bias ``B(d)`` scaled to them. NaN sums where too few
    pixels are left, or none vary."""
    good = ~bad
    nothing = np.full(len(_LAGS), np.nan), np.zeros((2, len(_LAGS)))
    if good.sum() < _MIN_GOOD * box.size:
        return nothing
    t = (np.arange(BOX_SIZE, dtype=np.float64) - (BOX_SIZE - 1) / 2) / BOX_SIZE
    yy, xx = np.meshgrid(t, t, indexing="ij")
    basis = np.stack([np.ones_like(yy), yy, xx])
    for attempt in range(4):  # the plane fitted to the good pixels, outliers clipped, again
        g = good.astype(np.float64)
        gram = np.einsum("iyx,jyx,yx->ij", basis, basis, g)
        coef = np.linalg.solve(gram, np.einsum("iyx,yx->i", basis, np.where(good, box, 0.0)))
        residual = np.where(good, box - np.einsum("i,iyx->yx", coef, basis), 0.0)
        spread = math.sqrt(float(np.sum(residual * residual)) / max(float(g.sum()) - 3, 1.0))
        keep = good & (np.abs(residual) <= _CLIP * spread)
        if attempt == 3 or keep.sum() == good.sum() or keep.sum() < _MIN_GOOD * box.size:
            break
        good = keep
    if not spread > 0:  # a constant box: no noise to correlate
        return nothing
    bias, whole = _plane_bias()
    pairs = whole if good.all() else _lag_sums(good.astype(np.float64))
    return _lag_sums(residual), np.stack([pairs, bias * pairs / whole])


def noise_correlation(image, labels=None, *, grow: int = GROW) -> NoiseCorrelation:
    """Measure how correlated an image's background noise is (module notes): what
    :func:`sciconv.postprocess.measure` applies to ``flux_err`` (``noise_correlation=
    "measure"``; by default only to an image :func:`~sciconv.postprocess.resampled_by` names).

    Parameters
    ----------
    image : GridImage, NDData or array_like, shape (H, W) or (H, W, C)
        The image (its raw pixels: a smooth background is fitted in each box).
    labels : ndarray of int, shape (H, W), or GridImage, optional
        Objects to leave out (grown by ``grow`` pixels).
    grow : int, optional
        Pixels the objects are grown by.

    Returns
    -------
    NoiseCorrelation
        ``ratio_inf``, ``applied``, :meth:`~NoiseCorrelation.factor` of an object's area and
        :meth:`~NoiseCorrelation.describe`; pass it to ``measure(noise_correlation=)``.

    Raises
    ------
    InvalidImageError
        An image that is not (H, W) or (H, W, C), or labels of another shape.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage as ndi
    >>> from sciconv.postprocess._noise_correlation import noise_correlation
    >>> rng = np.random.default_rng(1)
    >>> resampled = ndi.shift(rng.normal(0, 5, (200, 200)), (0.5, 0.5), order=1)
    >>> corr = noise_correlation(resampled)
    >>> bool(corr.applied[0]), round(float(corr.ratio_inf[0]), 1)
    (True, 3.9)
    """
    from sciconv.io import as_array
    from sciconv.postprocess._labels import validate_labels

    data = np.asarray(as_array(image, load=True), dtype=np.float64)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise InvalidImageError(f"image must be (H, W) or (H, W, C); got shape {data.shape}")
    if labels is not None:
        labels = validate_labels(labels)
        if labels.shape != data.shape[:2]:
            raise InvalidImageError(
                f"labels must have the image's shape {data.shape[:2]}; got {labels.shape}"
            )
    return NoiseCorrelation.of(data, labels, grow=grow)


#: Why ``noise_correlation="auto"`` leaves a resampling's correlation out (``FLUXCORR``).
NOT_RESAMPLED_NOTE = (
    "nothing in the header says the image was resampled; noise_correlation='measure' applies it"
)


def correlation_of(value, image: np.ndarray | None, labels, *, intensity=None):
    """``measure``'s ``noise_correlation=`` made a :class:`NoiseCorrelation` (``"measure"``:
    measured on ``image`` around ``labels``; ``"auto"``: so, applied only where
    :func:`resampled_by` of ``intensity`` says it was resampled), a number ``R`` (every
    object's), or None.

    Parameters
    ----------
    value : "auto", "measure", NoiseCorrelation, float or None
        The argument.
    image : ndarray, shape (H, W, C), or None
        The pixels measured (float64, bad pixels NaN); None: ``value`` is only checked (a
        catalog without ``flux_err``), and None returned.
    labels : ndarray of int, shape (H, W)
        The objects.
    intensity : GridImage, NDData or array, optional
        The image as given, with its header: a map in ``Jy/beam`` with its beam is left to its
        ``flux_density_err`` (None).

    Returns
    -------
    NoiseCorrelation, float or None

    Raises
    ------
    ConfigError
        Any other value, a number not above 0, or a NoiseCorrelation of other channels.

    Examples
    --------
    >>> import numpy as np
    >>> correlation_of(2.0, np.zeros((8, 8, 1)), np.zeros((8, 8), int))
    2.0
    >>> correlation_of("auto", np.zeros((8, 8, 1)), np.zeros((8, 8), int)) is None  # no box
    True
    """
    from sciconv.errors import ConfigError
    from sciconv.postprocess._beam import beam_pixels

    if value is None or isinstance(value, NoiseCorrelation):
        if image is None:
            return None
        if value is not None and (value.rho is None or value.channels != image.shape[-1]):
            raise ConfigError(
                f"noise_correlation must be a finished NoiseCorrelation of the intensity's "
                f"{image.shape[-1]} channel(s); got one of {value.channels} channel(s)"
                + ("" if value.rho is not None else ", not finished")
            )
        return value
    if isinstance(value, str):
        from sciconv._validation import look_up_option

        value = look_up_option(
            value, ("auto", "measure"), name="noise_correlation", error=ConfigError
        )
        if image is None or beam_pixels(intensity) is not None:  # flux_density_err has it
            return None
        if min(image.shape[:2]) < BOX_SIZE:
            return None
        from sciconv.postprocess._errors import resampled_by

        said = None if value == "measure" else resampled_by(intensity)
        if value == "auto" and said is None:  # never applied: not measured (0.3-1 s saved)
            return None
        corr = NoiseCorrelation.of(image, labels)
        return corr if value == "measure" else corr.gate(said)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
        raise ConfigError(
            "noise_correlation must be 'auto', 'measure', None, a NoiseCorrelation or the "
            "variance ratio "
            f"R > 0 of a sum over an object (e.g. drizzle's); got {value!r}"
        )
    return None if image is None else float(value)


def apply_noise_correlation(table, correlation):
    """Put a correlated-noise factor on the error columns of a catalog measured with
    independent pixels (``measure(noise_correlation=None)``), as ``measure`` does itself.

    ``flux_err`` (and ``flux_density_err``, made from it) of each row is multiplied by
    ``sqrt(R(sqrt(area)))`` (:class:`NoiseCorrelation`; per channel), each aperture's
    ``flux_aper*_err`` (and ``flux_density_aper*_err``) by ``sqrt(R)`` at the aperture's area
    (:func:`~sciconv.postprocess._apertures.scale_aperture_errors`), the weighted centroid's
    errors ``x_weighted_err``, ``y_weighted_err`` and ``ra_err``, ``dec_err`` by the square root
    of its mean over the channels (QA: with a bright star's centroid, 1.32-1.49x too small
    before, 0.90-1.00 after). ``meta["FLUXCORR"]`` says what was measured (or given) and
    whether it was applied; ``meta["FLUXERR"]``, when there, gets
    ``" x correlated-noise factor (FLUXCORR)"``. A block-wise run's catalog takes one
    correlation of the whole image (:meth:`NoiseCorrelation.from_windows`), its rows the same
    numbers as the whole image's catalog.

    Parameters
    ----------
    table : astropy.table.Table
        A :func:`~sciconv.postprocess.measure` catalog with ``area`` (and ``flux_err``; without
        it the table is returned as it is); modified in place.
    correlation : NoiseCorrelation, float or None
        A finished correlation, the variance ratio ``R`` of every object, or None (nothing).

    Returns
    -------
    astropy.table.Table
        ``table``.

    Raises
    ------
    ConfigError
        A table whose errors already carry a correlation (``meta["FLUXCORR"]``), one without
        ``area``, or aperture errors without their aperture's area.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import measure
    >>> from sciconv.postprocess._noise_correlation import apply_noise_correlation
    >>> labels = np.zeros((8, 8), int); labels[2:5, 2:5] = 1
    >>> t = measure(labels, intensity=np.ones((8, 8)), error=0.5, noise_correlation=None)
    >>> float(apply_noise_correlation(t, 4.0)["flux_err"][0])  # 1.5 x sqrt(4)
    3.0
    >>> t.meta["FLUXCORR"]
    'correlated noise: R = 4 given; flux_err x sqrt(R)'
    """
    from sciconv.errors import ConfigError
    from sciconv.postprocess._apertures import scale_aperture_errors

    if correlation is None or "flux_err" not in table.colnames:
        return table
    if "FLUXCORR" in table.meta:
        raise ConfigError(
            "the catalog's errors already carry a correlated-noise factor (meta FLUXCORR: "
            f"{table.meta['FLUXCORR']}); measure it with noise_correlation=None to apply one"
        )
    if "area" not in table.colnames:
        raise ConfigError(
            "apply_noise_correlation needs the objects' 'area' (a sciconv.postprocess.measure "
            f"catalog); got columns {table.colnames}"
        )
    scale_aperture_errors(table, correlation, check=True)  # refused before anything changes
    if isinstance(correlation, NoiseCorrelation):
        table.meta["FLUXCORR"] = correlation.describe()
        if not correlation.applied.any():
            return table
        ratio = correlation.ratio(np.asarray(table["area"], dtype=np.float64))
    else:
        table.meta["FLUXCORR"] = f"correlated noise: R = {correlation:g} given; flux_err x sqrt(R)"
        ratio = np.full((len(table), 1), float(correlation))
    for name in ("flux_err", "flux_density_err"):
        if name in table.colnames:
            col = table[name]
            factor = np.sqrt(ratio if col.ndim == 2 else ratio[:, 0])
            col[:] = np.asarray(col, dtype=np.float64) * factor
    table["flux_err"].description = CORRELATED_FLUX_ERR
    scale_aperture_errors(table, correlation)  # R at each aperture's area (QA 56: left out)
    position = np.sqrt(ratio.mean(axis=1))
    for name in ("x_weighted_err", "y_weighted_err", "ra_err", "dec_err"):
        if name in table.colnames:
            table[name][:] = np.asarray(table[name], dtype=np.float64) * position
    if isinstance(table.meta.get("FLUXERR"), str):
        table.meta["FLUXERR"] += APPLIED_NOTE
    return table


def large_sum_ratio(correlation, channels: int) -> np.ndarray:
    """``R(inf)`` of each channel under ``correlation`` (:func:`correlation_of`) where applied,
    else 1, ``(C,)``: by how much a resampled pixel's Poisson variance is less than its
    photons' (a kernel of weights ``w`` summing to 1 keeps ``sum(w**2) = 1 / R(inf)`` of it),
    which :func:`~sciconv.postprocess.estimate_error` divides its Poisson term by, so that
    ``measure``'s ``sqrt(R)`` gives a large object the variance of its photons.

    Parameters
    ----------
    correlation : NoiseCorrelation, float or None
        As :func:`correlation_of` gives it.
    channels : int
        The image's channels.

    Examples
    --------
    >>> large_sum_ratio(2.5, 2).tolist(), large_sum_ratio(None, 1).tolist()
    ([2.5, 2.5], [1.0])
    """
    if correlation is None:
        return np.ones(channels)
    if isinstance(correlation, NoiseCorrelation):
        return np.where(correlation.applied, correlation.ratio_inf, 1.0)
    return np.full(channels, float(correlation))
