"""The background under the objects: photutils' ``Background2D`` with the objects left out.

Photon counts (X-ray images: non-negative integers at a low rate whose spread is Poisson's,
:meth:`BackgroundHistogram.counts_rate`) are not measured by the sigma-clipped median: the
median of Poisson(λ) counts is 0 for every λ < ln 2 and a 3-sigma clip of a sparse image removes
every pixel holding a count, so level and rms both came out 0 (QA: 0.000 at 0.1-0.6 count/px).
Their level is the mean of the background pixels after a Poisson clip (pixels above the 1e-6
tail of Poisson(λ) left out: unlabelled sources), photutils' ``MeanBackground`` unclipped in each
box, and their rms the Poisson one, ``sqrt(level)``. Float images and integer images that are
not Poisson counts (a CCD's ADU with read noise, an offset microscopy frame) keep the
sigma-clipped median. Counts are recognised by a header that says so (:func:`says_counts`: a
photon-counting mission's counts; electrons or ADU at a gain of 1 are not enough, a CCD's have
read noise) or, without one, by a histogram Poisson's pmf fits (total-variation distance below
:data:`_POISSON_FIT`): an 8-bit microscopy frame with a camera offset has a Poisson-like
variance but almost no zeros (QA: 140 of 531 DSB2018 frames took the counts path, level 17.36
and rms 4.17 instead of 15.79 and 2.68). The decision reads only how often each value occurs
among the background pixels (:class:`BackgroundHistogram`), which a block-wise run gathers tile
by tile (``sciconv.inference._block_background``): the same decision, bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage as ndi

from sciconv._validation import check_int, look_up_option
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io import as_array
from sciconv.io._common import warn_if_channels_first
from sciconv.io._units import known_unit
from sciconv.postprocess._background_mesh import BackgroundMesh
from sciconv.postprocess._labels import labelled_pixels

#: ``background=`` modes of ``sciconv predict`` and ``predict_mosaic`` (:func:`wants_background`).
BACKGROUND_MODES = ("auto", "map", "none")
#: Fewer background pixels than this give no background rms (NaN: one pixel's spread is 0).
MIN_BACKGROUND_PIXELS = 16
#: Photon counts above this mean rate per pixel are measured as any image (a median's
#: quantization, at most 0.5 count, is then small against the rate).
COUNTS_MAX_RATE = 20.0
#: Pixels whose counts Poisson(rate) exceeds with a smaller probability are clipped (sources).
_POISSON_TAIL = 1e-6
#: Largest total-variation distance between a header-less background's histogram and the
#: Poisson pmf at its rate for it to be taken as counts (an offset frame: about 0.2 and more)
_POISSON_FIT = 0.1
#: Background values below this are counted in a dense histogram (``np.bincount``: a uint16
#: image's whole range, 512 KiB); larger ones as (value, count) pairs (:class:`BackgroundHistogram`)
DENSE_VALUES = 1 << 16
#: Most (value, count) pairs of values of :data:`DENSE_VALUES` and more a window-by-window
#: histogram keeps (16 MiB)
MAX_LARGE_VALUES = 1 << 20


def wants_background(mode: str, image) -> bool:
    """Whether a catalog of ``image`` gets background-subtracted fluxes: ``"map"`` always,
    ``"none"`` never, ``"auto"`` for an image with a celestial (sky) WCS.

    Parameters
    ----------
    mode : {"auto", "map", "none"}
        The ``background=`` option (:data:`BACKGROUND_MODES`).
    image : GridImage or astropy.nddata.NDData or array
        The image measured; only its ``wcs`` attribute (if any) is read.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import wants_background
    >>> wants_background("auto", GridImage(np.zeros((4, 4, 1), np.float32)))
    False
    """
    mode = look_up_option(mode, BACKGROUND_MODES, name="background")
    wcs = getattr(image, "wcs", None)
    sky = wcs is not None and getattr(wcs, "has_celestial", False)
    return mode == "map" or (mode == "auto" and sky)


def in_unit(value, unit, *, name: str):
    """``value`` (a per-pixel argument beside an intensity: ``background=``, ``error=``, ...) as
    plain numbers in the intensity's ``unit``.

    An astropy :class:`~astropy.units.Quantity` is converted (``value.to_value(unit)``: a
    background in mJy beside an image in Jy is divided by 1000); anything else is returned as it
    is and taken to be in ``unit`` already. Beside an intensity without a unit (``unit`` None, or
    one astropy does not know) only a dimensionless Quantity is accepted (``5 * u.percent`` is
    0.05): a physical one cannot be matched to bare pixel values.

    Parameters
    ----------
    value : float, array_like or astropy.units.Quantity
        The argument.
    unit : astropy.units.UnitBase, str or None
        The intensity's unit (an NDData's or Quantity's ``unit``, a GridImage's ``BUNIT``).
    name : str
        The argument's name, for the error.

    Returns
    -------
    float, array_like
        ``value`` itself when it is not a Quantity, else its values (float64) in ``unit``.

    Raises
    ------
    ConfigError
        A Quantity whose unit does not convert to ``unit`` (both named), or a Quantity with a
        physical unit beside an intensity without one.

    Examples
    --------
    >>> from astropy import units as u
    >>> float(in_unit(1000.0 * u.mJy, u.Jy, name="background")), in_unit(2.0, u.Jy, name="error")
    (1.0, 2.0)
    >>> in_unit(1.0 * u.m, "Jy", name="bkg")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: bkg is in m, which does not convert to the intensity's unit Jy
    """
    from astropy import units as u

    if not isinstance(value, u.Quantity):
        return value
    target = known_unit(unit)
    try:
        return value.to_value(u.dimensionless_unscaled if target is None else target)
    except u.UnitsError as exc:
        if target is None:
            raise ConfigError(
                f"{name} is in {value.unit} but the intensity has no unit (astropy knows): give "
                f"the intensity with its unit (a Quantity, an NDData, a GridImage with BUNIT) or "
                f"{name} as plain numbers in the intensity's units"
            ) from exc
        raise ConfigError(
            f"{name} is in {value.unit}, which does not convert to the intensity's unit {target}"
        ) from exc


def estimate_background(
    image, labels=None, *, box_size: int = 64, filter_size: int = 3, grow: int = 3
) -> np.ndarray:
    """The background level of an image, its objects and bad pixels left out.

    photutils' :class:`~photutils.background.Background2D` (sigma-clipped median in
    ``box_size`` boxes, the box grid median-filtered over ``filter_size`` boxes and
    interpolated; SExtractor's recipe) on each channel, with the labelled objects grown by
    ``grow`` pixels (their wings) and the NaN/inf pixels masked. An image less than two boxes
    across gets the sigma-clipped median of its background pixels
    (:func:`astropy.stats.sigma_clipped_stats`), one level; so does any image without photutils
    installed, or where too few boxes have background pixels (a crowded field), then with a
    :class:`~sciconv.errors.SciconvWarning` saying so.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), GridImage or NDData
        Raw pixels (intensity units).
    labels : ndarray of int (H, W), or GridImage, optional
        Instance labels (0 = background) of the objects to leave out; taken as :func:`measure`
        takes them (integer ``(H, W, 1)`` too; floats refused).
    box_size, filter_size : int, optional
        Background2D's box (pixels, capped at the image size) and filter (boxes; odd, 1 for
        none).
    grow : int, optional
        Pixels (>= 0) by which the objects are grown before they are left out.

    Returns
    -------
    ndarray of float64
        ``(H, W)`` for a one-channel image (a GridImage's ``(H, W, 1)`` too), else
        ``(H, W, C)``; pass it to :func:`measure` as ``background=``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import estimate_background
    >>> rng = np.random.default_rng(0)
    >>> sky = 100 + rng.normal(0, 1, (96, 96)); sky[40:50, 40:50] += 500
    >>> labels = np.zeros((96, 96), int); labels[40:50, 40:50] = 1
    >>> bkg = estimate_background(sky, labels, box_size=32)
    >>> bkg.shape, bool(abs(np.median(bkg) - 100) < 0.5)
    ((96, 96), True)
    """
    maps = background_and_rms(image, labels, box_size=box_size, filter_size=filter_size, grow=grow)
    return maps[0]


def background_and_rms(
    image, labels=None, *, box_size: int = 64, filter_size: int = 3, grow: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """``(background, rms)`` of :func:`estimate_background`: the level and the sigma-clipped
    standard deviation of the background pixels (Background2D's ``background_rms``), both
    ``(H, W)`` for one channel, else ``(H, W, C)``. A channel of photon counts
    (:meth:`BackgroundHistogram.counts_rate`) gets the Poisson-clipped mean and ``sqrt(level)``
    instead (module notes): the median and the clipped spread of sparse counts are 0.

    Parameters
    ----------
    image : GridImage, NDData or array_like, shape (H, W) or (H, W, C)
        The raw pixels (NaN ones are left out).
    labels : ndarray of int, shape (H, W), or GridImage, optional
        Objects to leave out of the background (grown by ``grow`` pixels first); taken as
        :func:`measure` takes them (integer ``(H, W, 1)`` too; floats refused).
    box_size : int
        Side of the boxes the background is measured in (photutils' ``Background2D``).
    filter_size : int
        Side of the median filter over the boxes' values (odd; 1: no filter).
    grow : int
        Pixels (>= 0) the objects are grown by before they are left out (their faint wings).

    Returns
    -------
    (background, rms) : ndarray of float64

    Raises
    ------
    InvalidImageError
        An image that is not (H, W) or (H, W, C), or labels of another shape.
    ConfigError
        ``box_size`` or ``filter_size`` not a positive int, an even ``filter_size``, or a
        negative ``grow``.

    Warns
    -----
    SciconvWarning
        An image that looks channels-first ``(C, H, W)`` (sciconv takes ``(H, W, C)``).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import background_and_rms
    >>> sky = 100 + np.random.default_rng(0).normal(0, 2, (128, 128))
    >>> level, rms = background_and_rms(sky, box_size=32)
    >>> round(float(np.median(level))), round(float(np.median(rms)), 1)
    (100, 2.0)
    """
    box_size, filter_size, grow = _check_options(box_size, filter_size, grow)
    data = np.asarray(as_array(image, load=True), dtype=np.float64)
    warn_if_channels_first(data, name="image", batch=False)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    single = data.ndim == 2
    data = data[..., None] if single else data
    if data.ndim != 3:
        raise InvalidImageError(f"image must be (H, W) or (H, W, C); got shape {data.shape}")
    objects = np.zeros(data.shape[:2], bool)
    if labels is not None:
        objects = labelled_pixels(labels)  # measure's rule: GridImage, (H, W, 1), integers
        if objects.shape != data.shape[:2]:
            raise InvalidImageError(
                f"labels must have the image's shape {data.shape[:2]}; got {objects.shape}"
            )
        if grow > 0:
            objects = ndi.binary_dilation(objects, iterations=int(grow))
    level, rms = np.empty_like(data), np.empty_like(data)
    counts_header = says_counts(image)
    for k in range(data.shape[-1]):
        chan = data[..., k]
        masked = objects | ~np.isfinite(chan)
        level[..., k], rms[..., k] = _channel_background(
            chan, masked, box_size, filter_size, counts_header
        )
    return (level[..., 0], rms[..., 0]) if single else (level, rms)


def _check_options(box_size, filter_size, grow) -> tuple[int, int, int]:
    """The options of :func:`background_and_rms` checked: ints, the filter odd (photutils)."""
    box_size = check_int(box_size, name="box_size", minimum=1)
    filter_size = check_int(filter_size, name="filter_size", minimum=1)
    if filter_size % 2 == 0:
        raise ConfigError(
            "filter_size must be odd (the median filter over the boxes is centred; photutils' "
            f"Background2D refuses an even one), e.g. 1 (no filter), 3 or 5; got {filter_size}"
        )
    return box_size, filter_size, check_int(grow, name="grow", minimum=0)


def says_counts(image) -> bool:
    """Whether ``image``'s header says its pixels are photon counts: it names a photon-counting
    instrument (:func:`sciconv.postprocess.photon_counting`: Chandra, XMM, eROSITA, Swift, ...,
    no detector gain card) and its unit is counts (effective gain 1,
    :func:`sciconv.postprocess.effective_gain`); a plain array says nothing.

    The rule :func:`background_and_rms` and block-wise catalogs read: with it, photon counts
    get their Poisson background without their histogram having to look Poisson (a
    spatially varying X-ray background widens it). Electrons (``BUNIT = ELECTRONS``) or ADU at
    a gain of 1 are *not* taken as counts by their header: a CCD or CMOS frame in electrons has
    read noise on top of Poisson's (QA: an integer frame with 3.5 e- of read noise on 15 e- of
    sky got rms 3.88 instead of 5.22), so its histogram must fit Poisson's pmf, as any image
    without a header's must.

    Parameters
    ----------
    image : GridImage, astropy.nddata.NDData or array_like
        The image, with its header or meta.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import says_counts
    >>> def image(**cards):
    ...     return GridImage(np.zeros((4, 4, 1), np.int32), header=fits.Header(cards))
    >>> says_counts(np.zeros((4, 4))), says_counts(image(TELESCOP="CHANDRA"))
    (False, True)
    >>> says_counts(image(BUNIT="ELECTRONS")), says_counts(image(BUNIT="ADU", GAIN=1.0))
    (False, False)
    """
    if getattr(image, "header", None) is None and getattr(image, "meta", None) is None:
        return False
    from sciconv.postprocess._errors import effective_gain, photon_counting  # it imports us

    return photon_counting(image) and effective_gain(image) == 1.0


class BackgroundHistogram:
    """How often each value occurs among a channel's background pixels, gathered window by
    window while they are all non-negative integers, and whether they are photon counts
    (:meth:`counts_rate`, the one rule of :func:`background_and_rms`).

    Values below :data:`DENSE_VALUES` (a uint16 image's whole range) are counted with
    ``np.bincount``; larger ones are kept as (value, count) pairs, at most ``max_large`` of them
    (None: all). Past that only their number, sum and range are kept, and a decision that needs
    more of them (a clip level among them) is refused. The first negative or fractional value
    ends the histogram (:attr:`integral` False): such pixels are no counts. Non-finite values
    are skipped.

    Parameters
    ----------
    max_large : int or None, optional
        Most (value, count) pairs kept for values of :data:`DENSE_VALUES` and more.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess._background import BackgroundHistogram
    >>> counts = np.random.default_rng(0).poisson(0.5, (128, 128))
    >>> hist = BackgroundHistogram()
    >>> for rows in (counts[:64], counts[64:]):  # window by window
    ...     hist.add(rows)
    >>> rate = hist.counts_rate()
    >>> round(rate, 2), rate == BackgroundHistogram.of(counts).counts_rate()
    (0.5, True)
    >>> BackgroundHistogram.of(counts + 0.5).counts_rate() is None  # not integers
    True
    """

    def __init__(self, *, max_large: int | None = MAX_LARGE_VALUES) -> None:
        self.max_large = max_large
        self.integral = True  # every value so far a non-negative integer
        self.size = 0
        self._dense = np.zeros(0, np.int64)
        self._large = (np.zeros(0), np.zeros(0, np.int64))  # (value, count) pairs, unsorted
        self._summary = None  # (count, sum, min, max) of the large values once not kept

    @classmethod
    def of(cls, values) -> BackgroundHistogram:
        """The histogram of ``values`` (all of them kept).

        Parameters
        ----------
        values : array-like
            Background pixel values.
        """
        hist = cls(max_large=None)
        hist.add(values)
        return hist

    def add(self, values) -> None:
        """Count ``values`` (the background pixels of a window; non-finite ones are skipped).

        Parameters
        ----------
        values : array-like
            The window's background pixel values.
        """
        if not self.integral:
            return
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if not v.size:
            return
        if v.min() < 0 or not np.array_equal(v, np.round(v)):
            self.integral, self._dense, self._large, self._summary = False, None, None, None
            return
        self.size += v.size
        small = v < DENSE_VALUES
        if small.all():
            self._count_dense(v)
            return
        self._count_dense(v[small])
        self._count_large(v[~small])

    def _count_dense(self, v) -> None:
        if not v.size:
            return
        seen = np.bincount(v.astype(np.int64))
        if seen.size > self._dense.size:
            seen[: self._dense.size] += self._dense
            self._dense = seen
        else:
            self._dense[: seen.size] += seen

    def _count_large(self, v) -> None:
        if self._summary is not None:  # no longer kept: their number, sum and range
            n, s, lo, hi = self._summary
            self._summary = (n + v.size, s + float(v.sum()), min(lo, v.min()), max(hi, v.max()))
            return
        lo = float(v.min())
        if self.max_large is not None and float(v.max()) - lo < DENSE_VALUES:  # as pairs
            seen = np.bincount((v - lo).astype(np.int64))
            step = np.flatnonzero(seen)
            values, counts = lo + step, seen[step]
        else:
            values, counts = v, np.ones(v.size, np.int64)
        values = np.concatenate([self._large[0], values])
        counts = np.concatenate([self._large[1], counts])
        if self.max_large is not None and values.size > 2 * self.max_large:
            values, inverse = np.unique(values, return_inverse=True)
            counts = np.bincount(inverse.ravel(), weights=counts).astype(np.int64)
            if values.size > self.max_large:  # too many distinct ones: a summary
                s = float(np.dot(values, counts))
                self._summary = (int(counts.sum()), s, values[0], values[-1])
                values, counts = np.zeros(0), np.zeros(0, np.int64)
        self._large = (values, counts)

    def _below(self, cut: float):
        """``(n, sum)`` of the values at most ``cut`` (NaN: none, as ``v <= nan``)."""
        if not cut >= 0:
            return 0, 0
        dense = self._dense[: max(0, int(np.floor(min(cut, self._dense.size - 1))) + 1)]
        n = int(dense.sum())
        s = int(np.dot(dense, np.arange(dense.size, dtype=np.int64)))
        values, counts = self._large
        kept = values <= cut
        if kept.any():
            n, s = n + int(counts[kept].sum()), s + float(np.dot(values[kept], counts[kept]))
        if self._summary is not None:
            count, total, lo, hi = self._summary
            if lo <= cut < hi:
                raise ValueError(
                    f"more than {self.max_large} distinct background values of {DENSE_VALUES} "
                    f"and more: their share below {cut:g} is not known"
                )
            if cut >= hi:
                n, s = n + count, s + total
        return n, s

    def _clip(self) -> tuple[float, float, int]:
        """``(mean, cut, n)`` after clipping the Poisson outliers (values above the 1e-6 tail
        of Poisson(mean), iterated): the mean of the ``n`` values at most ``cut``."""
        n_kept, s = self._below(np.inf)
        rate, kept = s / n_kept, np.inf
        for _ in range(10):
            cut = poisson_cut(rate)
            n, s = self._below(cut)
            if not n:
                break
            rate, same = s / n, n == n_kept
            n_kept, kept = n, cut
            if same:
                break
        return rate, kept, n_kept

    def counts_rate(self, says_counts: bool = False) -> float | None:
        """The mean rate of the values if they are photon counts, else None.

        Counts are non-negative integers whose mean (after a Poisson clip: values above the
        1e-6 tail of Poisson(mean) left out, iterated) is above 0 and at most
        :data:`COUNTS_MAX_RATE`, and whose variance is Poisson's (0.7 to 2 times the mean: a
        spatially varying background widens it a little; a CCD's read noise in ADU does not
        fit). Unless the header ``says_counts``, their histogram must also fit Poisson's pmf at
        that mean (total-variation distance below :data:`_POISSON_FIT`): an offset camera frame
        has the variance but not the zeros and low values.

        Parameters
        ----------
        says_counts : bool, optional
            The file's header says the pixels are counts (the histogram test is skipped).

        Returns
        -------
        float or None
            The clipped mean (counts per pixel); raises ``ValueError`` where the large values
            not kept would decide it (``max_large``).
        """
        if not self.integral or self.size < MIN_BACKGROUND_PIXELS:
            return None
        rate, cut, n = self._clip()
        if not 0 < rate <= COUNTS_MAX_RATE or n < MIN_BACKGROUND_PIXELS:
            return None
        if self._summary is not None and cut >= self._summary[2]:  # some of them, not kept
            raise ValueError(f"the large background values up to {cut:g} are not kept")
        dense = self._dense[: max(0, int(np.floor(min(cut, self._dense.size - 1))) + 1)]
        values, counts = self._large
        kept = values <= cut
        values, counts = values[kept], counts[kept]
        spread = np.dot(dense, (np.arange(dense.size) - rate) ** 2)
        spread += np.dot(counts, (values - rate) ** 2)
        if not 0.7 <= float(spread) / n / rate <= 2.0:  # the variance / the mean
            return None
        if says_counts:
            return rate
        if values.size:  # the counts of 0, 1, ... up to the largest kept value
            seen = np.zeros(int(values.max()) + 1, np.int64)
            seen[: dense.size] = dense
            np.add.at(seen, values.astype(np.int64), counts)
        else:
            nonzero = np.flatnonzero(dense)
            seen = dense[: nonzero[-1] + 1] if nonzero.size else dense[:0]
        return rate if _poisson_distance(seen, rate) < _POISSON_FIT else None


def _poisson_distance(seen: np.ndarray, rate: float) -> float:
    """Total-variation distance between the histogram ``seen`` (how many values are 0, 1, ...)
    and Poisson(rate)."""
    from scipy.stats import poisson

    seen = seen / seen.sum()
    pmf = poisson.pmf(np.arange(seen.size), rate)
    return 0.5 * float(np.abs(seen - pmf).sum() + max(0.0, 1.0 - pmf.sum()))


def poisson_cut(rate: float) -> float:
    """Counts above which a pixel is clipped at a Poisson ``rate`` (its 1e-6 upper tail): a
    source's, left out of the background of photon counts.

    Parameters
    ----------
    rate : float
        The Poisson mean (counts per pixel).

    Returns
    -------
    float

    Examples
    --------
    >>> from sciconv.postprocess import poisson_cut
    >>> poisson_cut(0.5), poisson_cut(10.0)
    (7.0, 28.0)
    """
    from scipy.stats import poisson

    return float(poisson.isf(_POISSON_TAIL, max(rate, 1e-3)))


def _channel_background(chan, masked, box_size, filter_size, says_counts=False) -> np.ndarray:
    from astropy.stats import sigma_clipped_stats

    rate = BackgroundHistogram.of(chan[~masked]).counts_rate(says_counts)
    if rate is not None:  # photon counts: the clipped mean, Poisson's rms (module notes)
        masked = masked | (np.nan_to_num(chan) > poisson_cut(rate))
    reason = None
    if min(chan.shape) < 2 * box_size:
        reason = ""  # not two boxes across: one level is the map
    try:
        if reason == "":
            raise _OneBox
        mesh = BackgroundMesh(
            chan.shape, box_size=box_size, filter_size=filter_size, counts=rate is not None
        )
        mesh.add((0, 0), chan, masked)  # the boxes, filled, filtered and interpolated as
        return mesh.finish().window((0, chan.shape[0]), (0, chan.shape[1]))  # Background2D
    except _OneBox:
        pass
    except ImportError:
        reason = "photutils is not installed (pip install photutils for a background map)"
    except ValueError as exc:  # too few boxes with background pixels
        reason = f"photutils' Background2D could not map it ({str(exc).splitlines()[0]})"
    good = chan[~masked]
    few = good.size < MIN_BACKGROUND_PIXELS  # a crowded field: the objects cover (nearly) all
    if few:
        why = f"only {good.size} background pixels are left around the objects (rms unknown: NaN)"
        reason = f"{reason} and {why}" if reason else why
    if good.size == 0:
        good = chan[np.isfinite(chan)]
    if rate is not None:
        level = float(good.mean()) if good.size else rate
        spread, how = np.sqrt(level), "Poisson-clipped mean"
    else:
        _, level, spread = sigma_clipped_stats(good, sigma=3.0) if good.size else (0.0, 0.0, 0.0)
        how = "sigma-clipped median"
    spread = np.nan if few else spread
    if reason:
        warnings.warn(
            f"background: one {how} level ({level:.6g}) for the whole image, since {reason}",
            SciconvWarning,
            stacklevel=3,
        )
    return np.full(chan.shape, float(level)), np.full(chan.shape, float(spread))


class _OneBox(Exception):
    """The image is less than two boxes across: its one level is the map."""
