"""Per-pixel error bars of an image, for the flux errors of a catalog (photutils' recipe).

A catalog's ``flux_err`` is the square root of the summed squares of the per-pixel 1-sigma
errors over the object's good pixels (photutils' ``segment_flux_err``), times the correlated-
noise factor ``sqrt(R)`` of a resampled image (a drizzled ``drz``, JWST ``i2d``, a reprojected
mosaic: neighbouring pixels share their input pixels' noise, and the sum's variance is ``R``
times the summed variances; :mod:`sciconv.postprocess._noise_correlation`, measured on the
background and applied only where the correlation is a resampling's, ``meta["FLUXCORR"]``).
The per-pixel error is the image's own when it has one (an NDData's or CCDData's uncertainty,
kept by :meth:`sciconv.io.GridImage.from_nddata`); else :func:`estimate_error` combines the
background's noise (its sigma-clipped rms) with the sources' Poisson noise through photutils'
:func:`~photutils.utils.calc_total_error`, which needs the *effective gain* (electrons per unit of
the pixels, :func:`effective_gain`): 1 for ``BUNIT = ELECTRONS``, ``EXPTIME`` for electrons per
second, ``EGAIN`` (else ``GAIN``, ``ATODGAIN``, ``CCDGAIN``) for ADU, DN or counts, their product
for ADU per second. Photon counts (``BUNIT`` count, ct, counts, or none, from a photon-counting
X-ray or UV mission, :data:`PHOTON_COUNTING`) have gain 1, and per second the exposure. Without a
known gain the error is the background's alone (no Poisson term) and the table says so
(``meta["FLUXERR"]``). On a resampled image the Poisson term of a pixel is its photons' variance
over ``R(inf)`` (a pixel averaging its neighbours' photons has that much less), so that the
correlated-noise factor gives a large object its photons' variance, not ``R`` times it.

When the background's rms is 0 over the whole image and no Poisson term is known (a constant or
noise-free background), every error is NaN, with a warning: an error bar of 0 (an SNR of
infinity) is never a measurement. Where it is 0 only locally (a sigma-clipped box of one 8-bit
value), integer-valued data get the quantization noise ``1/sqrt(12)`` instead. With a Poisson
term, a pixel of 0 counts on a background of 0 contributes 0 (Poisson's variance of nothing),
as photutils has it.

The Poisson term is the positive part of ``data - background`` (photutils'
``calc_total_error``). In a difference image a fading object is negative: its photons were in
the reference image, and their Poisson variance is at least ``|data - background|``. Given the
``labels``, :func:`estimate_error` takes that for the pixels of an object whose background-
subtracted sum is negative (the reference's counts; the science image's own counts of the object
are not known from the difference and are left out, as photutils leaves out the reference's for
a brightening one).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io import UNIT_KEYWORDS, as_array, is_nddata, recorded_dtype
from sciconv.io._fits_errors import GAIN_KEYWORDS, RESAMPLED_CARD, RESAMPLED_HISTORY, sigma_of
from sciconv.io._units import known_unit
from sciconv.postprocess._background import background_and_rms, in_unit
from sciconv.postprocess._labels import validate_labels
from sciconv.postprocess._noise_correlation import (
    NoiseCorrelation,
    correlation_of,
    large_sum_ratio,
)
from sciconv.postprocess._observation import image_headers
from sciconv.postprocess._pixels import per_pixel

__all__ = [
    "NO_POISSON",
    "NO_RMS",
    "PHOTON_COUNTING",
    "effective_gain",
    "error_source",
    "error_windows",
    "estimate_error",
    "own_error",
    "photon_counting",
    "resampled_by",
]

#: How an error without a known gain was found (``meta["FLUXERR"]``).
NO_POISSON = "background rms only (gain unknown: no Poisson term)"
#: What ``meta["FLUXERR"]`` says when the background's rms could not be measured anywhere (too
#: few sky pixels: every ``flux_err`` is NaN).
NO_RMS = "unknown (background rms not measurable: too few background pixels)"
#: Missions (FITS ``TELESCOP``) whose counts images count photons (effective gain 1, no GAIN
#: card): X-ray and gamma-ray event lists binned (Chandra ``dmcopy``, XMM ``evselect``, eROSITA,
#: Swift XRT/UVOT, NuSTAR ...) and GALEX's photon-counting detectors. Swift BAT and other
#: coded-mask images are deconvolved, not counts (:data:`_NOT_COUNTING`).
PHOTON_COUNTING = frozenset(
    {
        "CHANDRA",
        "XMM",
        "XMM-NEWTON",
        "SRG",
        "SRG/EROSITA",
        "EROSITA",
        "SWIFT",
        "NUSTAR",
        "ROSAT",
        "SUZAKU",
        "ASCA",
        "EINSTEIN",
        "XRISM",
        "HITOMI",
        "NICER",
        "EXOSAT",
        "GALEX",
        "GLAST",
        "FERMI",
    }
)
_NOT_COUNTING = frozenset({"BAT", "IBIS", "JEM-X", "SPI", "GBM"})
_EXPOSURE_KEYWORDS = ("EXPTIME", "EXPOSURE", "LIVETIME")  # an X-ray header's is EXPOSURE


def _card(image, key: str):
    """A header card of ``image`` (its own header's, else its primary header's), or None."""
    for cards in image_headers(image):
        value = None if cards is None else cards.get(key)
        if value is not None:
            return value
    return None


def resampled_by(image) -> str | None:
    """The header card saying ``image``'s pixels were resampled, or None: HST drizzle's
    (``D001KERN``, ``D###PIXF``, ``NDRIZIM``), JWST's ``S_RESAMP`` (not ``SKIPPED``), SWarp's
    (``RESAMPT1``, ``SOFTNAME``), or a ``HISTORY`` line naming drizzle, SWarp, reproject or a
    resampling; in the image's own header, else its primary header (``meta["primary"]``), or an
    NDData's meta. ``measure(noise_correlation="auto")`` applies a correlated-noise factor only
    to such an image (:mod:`sciconv.postprocess._noise_correlation`).

    Parameters
    ----------
    image : GridImage, NDData or array_like
        The image (a plain array says nothing: None).

    Returns
    -------
    str or None
        The card, e.g. ``"D001KERN = 'square'"``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import resampled_by
    >>> pixels = np.zeros((4, 4, 1), np.float32)
    >>> resampled_by(GridImage(pixels, header=fits.Header({"D001KERN": "square"})))
    "D001KERN = 'square'"
    >>> resampled_by(GridImage(pixels, meta={"primary": {"S_RESAMP": "COMPLETE"}}))
    "S_RESAMP = 'COMPLETE'"
    >>> resampled_by(pixels) is None
    True
    """
    for cards in image_headers(image):
        for key in [] if cards is None else list(dict.fromkeys(cards.keys())):
            name, value = str(key).upper(), cards[key]
            if name == "HISTORY":
                lines = [value] if isinstance(value, str) else list(value)
                said = [str(v).strip() for v in lines if RESAMPLED_HISTORY.search(str(v))]
                if said:
                    return f"HISTORY {said[0][:60]}"
                continue
            text = str(value).strip()
            if RESAMPLED_CARD.fullmatch(name) and (
                (name != "S_RESAMP" or text.upper() not in ("", "SKIPPED"))
                and (name != "SOFTNAME" or "SWARP" in text.upper())
            ):
                return f"{name} = {text!r}"
    return None


def _detector_gain(image) -> float | None:
    """The first positive gain keyword (:data:`GAIN_KEYWORDS`, ``EGAIN`` first) of ``image``'s
    own header, else of its primary header's: a chip's ``GAIN`` over a primary ``EGAIN``
    (review: the key-by-key lookup took the primary's EGAIN 1.0 over the chip's GAIN 4.2)."""
    for cards in image_headers(image):
        if cards is None:
            continue
        for key in GAIN_KEYWORDS:
            gain = _positive(cards.get(key))
            if gain is not None:
                return gain
    return None


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(number) or number <= 0:
        return None
    return number


def photon_counting(image) -> bool:
    """Whether ``image``'s header names a photon-counting instrument (module notes): its
    ``TELESCOP`` (or ``MISSION``) is in :data:`PHOTON_COUNTING`, its ``INSTRUME`` not a coded
    mask, and it has no detector gain card (a CCD's counts are ADU).

    Parameters
    ----------
    image : GridImage, NDData or array_like
        The image, with its header (a plain array names none).

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import photon_counting
    >>> header = fits.Header({"TELESCOP": "CHANDRA", "INSTRUME": "ACIS"})
    >>> photon_counting(GridImage(np.zeros((2, 2, 1)), header=header))
    True
    >>> photon_counting(GridImage(np.zeros((2, 2, 1)), header=fits.Header({"GAIN": 1.0})))
    False
    """
    cards = (_card(image, k) for k in ("TELESCOP", "MISSION"))
    mission = next((str(v).strip().upper() for v in cards if v), "")
    instrument = str(_card(image, "INSTRUME") or "").strip().upper()
    if any(_card(image, k) is not None for k in GAIN_KEYWORDS):
        return False
    return mission in PHOTON_COUNTING and instrument not in _NOT_COUNTING


def _integer_valued(image) -> bool:
    """Whether ``image``'s pixels are integers: stored as ints (``meta["dtype"]``), else its
    finite values (a lazy image: a central window of at most 512 x 512) all whole."""
    stored = recorded_dtype(image)
    if stored is not None and stored.kind in "iub":
        return True
    data = as_array(image)
    if not isinstance(data, np.ndarray):  # lazy: a window, not the whole file
        h, w = (int(n) for n in data.shape[:2])
        y0, x0 = max(0, h // 2 - 256), max(0, w // 2 - 256)
        data = data[y0 : y0 + 512, x0 : x0 + 512]
    v = np.asarray(data, dtype=np.float64)
    v = v[np.isfinite(v)]
    return v.size > 0 and bool(np.array_equal(v, np.round(v)))


def effective_gain(image, gain: str | float | None = "auto") -> float | None:
    """Electrons per unit of ``image``'s pixels (photutils' ``effective_gain``), or None.

    Electrons and photons count 1 each; per second, ``EXPTIME``; ADU, DN and counts the
    detector's gain (the first of EGAIN, GAIN, ATODGAIN, CCDGAIN the image's header has, else
    its primary header), per second times
    ``EXPTIME``. Counts without a gain keyword are photons (gain 1; per second ``EXPTIME``, else
    ``EXPOSURE``) when the header names a photon-counting mission (:data:`PHOTON_COUNTING`:
    Chandra, XMM, eROSITA, Swift ...), else unknown (a CCD's counts are ADU). An image with no
    unit at all (no ``BUNIT``) but a gain keyword is taken as ADU with that gain, as SExtractor
    reads a raw frame; with neither, counts of a photon-counting mission (a Chandra ``dmcopy``
    image has no ``BUNIT``) when its pixels are integers (a GALEX ``-int`` map is counts per
    second), else unknown.

    Parameters
    ----------
    image : GridImage or NDData
        Its unit (FITS ``BUNIT``) and header (``EXPTIME``, ``GAIN`` ...; an extension's cards,
        else the primary header's) decide (module notes).
    gain : "auto", float or None, optional
        A number is taken as the effective gain itself; None: unknown (no Poisson term).

    Returns
    -------
    float or None
        None when the unit is unknown or the header lacks what the unit needs.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import effective_gain
    >>> img = GridImage(np.zeros((2, 2, 1), np.float32), header={"EXPTIME": 60.0},
    ...                 meta={"bunit": "ELECTRONS/S"})
    >>> effective_gain(img)
    60.0
    >>> xray = GridImage(np.zeros((2, 2, 1), np.float32), header={"TELESCOP": "CHANDRA"})
    >>> effective_gain(xray)  # no BUNIT: dmcopy's counts
    1.0
    """
    from astropy import units as u

    if gain is None:
        return None
    if isinstance(gain, str):
        look_up_option(gain, ("auto",), name="gain")
    elif isinstance(gain, bool) or not isinstance(gain, numbers.Real) or not gain > 0:
        raise ConfigError(f"gain must be 'auto' or a number > 0 (electrons per unit); got {gain!r}")
    else:
        return float(gain)
    exptime = _positive(_card(image, "EXPTIME"))
    detector = _detector_gain(image)
    photons = photon_counting(image)
    if getattr(image, "unit", None) is None:  # no BUNIT: a GAIN card's pixels are ADU, as
        # SExtractor reads them (QA: a raw frame's errors 4x too small); an unreadable one: no
        if any(_card(image, key) for key in UNIT_KEYWORDS) or getattr(image, "meta", {}).get(
            "bunit"
        ):
            return None
        if photons:  # QA: a dmcopy image's counts had no error; a GALEX -int map is counts/s
            return 1.0 if _integer_valued(image) else None
        return detector
    unit = known_unit(image.unit)
    if unit is None:
        return None
    quanta = ((u.electron, 1.0), (u.photon, 1.0), (u.adu, detector), (u.DN, detector))
    for per_unit, electrons in quanta:
        if unit == per_unit:
            return electrons
        if unit == per_unit / u.s:
            return None if electrons is None or exptime is None else electrons * exptime
    if photons:  # X-ray counts are photons (QA: every flux_err was 0 on an XMM image)
        detector = 1.0
        exposure = (_positive(_card(image, k)) for k in _EXPOSURE_KEYWORDS)
        exptime = next((t for t in exposure if t is not None), None)
    if unit == u.count and detector is not None:
        return detector
    if unit == u.count / u.s and detector is not None and exptime is not None:
        return detector * exptime
    return None


def own_error(image) -> np.ndarray | None:
    """The 1-sigma error an image carries (an NDData's uncertainty, or a GridImage's
    ``meta["uncertainty"]``: standard deviation, variance or inverse variance), or None.

    A FITS file's ``ERR`` or ``UNCERT`` HDU (HST, JWST, ``CCDData.write``), or its variance
    (``VAR``, ``VARIANCE``) or inverse variance (``IVAR``, ``INVVAR``) HDU, is read into
    ``meta["uncertainty"]`` by :func:`sciconv.io.read`.

    Parameters
    ----------
    image : GridImage, NDData or array
        An array has none.

    Returns
    -------
    numpy.ndarray of float64 or None

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import NDData, VarianceUncertainty
    >>> from sciconv.postprocess import own_error
    >>> nd = NDData(np.ones((2, 2)), uncertainty=VarianceUncertainty(np.full((2, 2), 4.0)))
    >>> own_error(nd).tolist()
    [[2.0, 2.0], [2.0, 2.0]]
    """
    unc = image.uncertainty if is_nddata(image) else getattr(image, "meta", {}).get("uncertainty")
    if unc is None:
        return None
    # None for a kind with no standard deviation (unknown, not an error); in the data's unit
    return sigma_of(unc, getattr(image, "unit", None))


class _ArrayErrors:
    """Window reads of an in-memory error array (picklable: the array travels)."""

    def __init__(self, sigma: np.ndarray):
        self.sigma = sigma

    def read(self, ys: tuple[int, int], xs: tuple[int, int]) -> np.ndarray:
        return self.sigma[ys[0] : ys[1], xs[0] : xs[1]]


def error_windows(image):
    """The image's own 1-sigma errors read window by window (``.read((y0, y1), (x0, x1))``),
    or None: a lazily read FITS file's error HDU (``meta["uncertainty_windows"]``, read as each
    window is asked for) or an in-memory uncertainty (:func:`own_error`). Block-wise catalogs
    take their ``flux_err`` from it, as whole-image ones do from :func:`estimate_error`.

    Parameters
    ----------
    image : GridImage or astropy.nddata.NDData or array_like
        The image; a plain array (no uncertainty) gives None.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> from sciconv.postprocess import error_windows
    >>> nd = NDData(np.ones((4, 4)), uncertainty=StdDevUncertainty(np.full((4, 4), 3.0)))
    >>> error_windows(nd).read((0, 2), (1, 3)).tolist()
    [[3.0, 3.0], [3.0, 3.0]]
    >>> error_windows(np.ones((4, 4))) is None
    True
    """
    meta = getattr(image, "meta", None)
    lazy = meta.get("uncertainty_windows") if isinstance(meta, dict) else None
    if lazy is not None:
        return lazy
    own = own_error(image)
    if own is None:
        return None
    return _ArrayErrors(own[..., 0] if own.ndim == 3 and own.shape[-1] == 1 else own)


def estimate_error(
    image,
    labels=None,
    *,
    background=None,
    background_rms=None,
    gain: str | float | None = "auto",
    box_size: int = 64,
    filter_size: int = 3,
    grow: int = 3,
    noise_correlation: str | NoiseCorrelation | float | None = "auto",
) -> tuple[np.ndarray, str]:
    """The per-pixel 1-sigma error of an image, and how it was found.

    The image's own uncertainty when it has one (:func:`own_error`); else photutils'
    ``calc_total_error(data - background, background_rms, effective_gain)``, the background and
    its rms from :func:`sciconv.postprocess.estimate_background`'s Background2D (objects in
    ``labels`` left out) unless given.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), GridImage or NDData
        Raw pixels.
    labels : ndarray of int (H, W), or GridImage, optional
        Objects to leave out of the background statistics (taken as
        :func:`sciconv.postprocess.measure` takes them); with a gain, an object whose
        background-subtracted sum is negative (a fading source of a difference image) gets the
        Poisson term of ``|data - background|`` (module notes).
    background, background_rms : float or ndarray, optional
        Known background level and noise (both, or neither).
    gain : "auto", float or None, optional
        See :func:`effective_gain`; unknown (None): the background noise alone (no Poisson
        term), NaN when it is 0 everywhere (warned), ``1/sqrt(12)`` where it is 0 on
        integer-valued data.
    box_size, filter_size, grow : int, optional
        As for :func:`sciconv.postprocess.estimate_background`.
    noise_correlation : "auto", "measure", NoiseCorrelation, float or None, optional
        With a Poisson term: a resampled image's pixel holds ``1 / R(inf)`` of the Poisson
        variance of the photons it averages (its correlated noise, module notes), so the
        Poisson term is divided by ``R(inf)`` where :func:`sciconv.postprocess.measure` applies
        ``sqrt(R)``, and a large object's ``flux_err`` gets its photons' variance (QA: 0.78x
        the scatter with the photons' variance, 1.04 so). ``"auto"`` (default): measured as
        ``measure`` measures it, and divided only where the header says the image was
        resampled (:func:`resampled_by`); ``"measure"``: whatever the header says; the others
        as for ``measure``. Give the ``labels``: without them the sources' wings are measured as
        sky structure and the Poisson term is *not* divided by ``R``, while ``measure`` (which
        has the labels) multiplies by ``sqrt(R)``: a bright source's ``flux_err`` of a
        resampled image comes out ``sqrt(R(inf))`` too large (QA: 1.45x at ``R`` 2.2).

    Returns
    -------
    error : ndarray of float64
        ``(H, W)`` for one channel, else ``(H, W, C)``; pass it to :func:`measure` as ``error=``.
    source : str
        ``"image uncertainty"``, ``"background rms + Poisson (effective gain G)"`` (``"...; per
        pixel, over R(inf) 2.2 of the correlated noise)"`` where divided),
        ``"background rms only (gain unknown: no Poisson term)"`` or, when the rms could not be
        measured (:data:`NO_RMS`; every error NaN), ``"unknown (background rms not measurable:
        too few background pixels)"``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import estimate_error
    >>> sky = 100 + np.random.default_rng(0).normal(0, 2, (64, 64))
    >>> error, source = estimate_error(sky, gain=1.0)
    >>> round(float(np.median(error)), 1), source
    (2.0, 'background rms + Poisson (effective gain 1)')
    """
    own = own_error(image)
    data = np.asarray(as_array(image, load=True), dtype=np.float64)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if own is not None:
        own = own.reshape(data.shape) if own.size == data.size else None
    if own is not None:
        return own, "image uncertainty"
    if (background is None) != (background_rms is None):
        raise ConfigError("give background and background_rms together, or neither")
    if background is None:
        background, background_rms = background_and_rms(
            image, labels, box_size=box_size, filter_size=filter_size, grow=grow
        )
    unit = getattr(image, "unit", None)  # a Quantity given in another unit is converted
    level, rms = (
        _as_pixels(in_unit(background, unit, name="background"), "background", data),
        _as_pixels(in_unit(background_rms, unit, name="background_rms"), "background_rms", data),
    )
    g = effective_gain(image, gain)
    if not np.isfinite(rms).any():  # a crowded field (warned): no error bar is known
        return np.full(data.shape, np.nan), NO_RMS
    if g is None:
        correlation_of(noise_correlation, None, None)  # checked
        return _no_zero(np.array(rms, dtype=np.float64), data), error_source(None)
    from photutils.utils import calc_total_error

    signal = np.where(np.isfinite(data), data - level, 0.0)
    if labels is not None:  # a fading object of a difference image: the reference's photons
        signal = _faded(signal, labels)
    # a resampled pixel's Poisson variance: its photons' / R(inf) (correlated noise)
    pixels = data if data.ndim == 3 else data[..., None]
    objects = None if labels is None else validate_labels(labels)
    ratio = large_sum_ratio(
        correlation_of(noise_correlation, pixels, objects, intensity=image), pixels.shape[-1]
    )
    gains = g * ratio  # electrons per unit, each channel's
    if (gains == gains[0]).all():  # one number (photutils' scalar path)
        gains = float(gains[0])
    else:
        gains = np.broadcast_to(gains, data.shape)
    error = calc_total_error(signal, np.array(rms), gains)
    return np.where(np.isfinite(data), error, np.nan), error_source(g, ratio)


def _faded(signal: np.ndarray, labels) -> np.ndarray:
    """``signal`` with the sign of each object whose sum is negative turned (module notes), so
    the Poisson term counts its ``|data - background|``; the labels as :func:`measure` takes
    them."""
    lab = validate_labels(labels)
    if lab.shape != signal.shape[:2]:
        raise InvalidImageError(
            f"labels must have the image's shape {signal.shape[:2]}; got {lab.shape}"
        )
    ids, index = np.unique(lab, return_inverse=True)
    index = index.reshape(lab.shape)
    flat = signal.reshape(lab.size, -1)
    sums = np.stack(
        [np.bincount(index.ravel(), flat[:, k]) for k in range(flat.shape[1])], axis=-1
    ).sum(axis=-1)
    negative = (sums < 0) & (ids > 0)
    turn = negative[index]
    return np.where(turn[..., None] if signal.ndim == 3 else turn, -signal, signal)


def _no_zero(error: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``error`` (the background rms, no Poisson term) where it is 0 at a finite pixel: NaN when
    it is 0 at every finite pixel (no noise measured at all: unknown, not exact), with a warning
    (one text: shown once per caller, not per window of a mosaic); else, for integer-valued
    data, the quantization noise ``1/sqrt(12)`` (a sigma-clipped box of one 8-bit value has rms 0:
    QA, a DSB2018 nucleus lost its flux_err); float data keep it."""
    finite = np.isfinite(data)
    zero = (error == 0) & finite
    if not zero.any():
        return error
    if zero.sum() == finite.sum():
        warnings.warn(
            "estimate_error: the background rms is 0 (a constant or noise-free background) "
            "and the gain is unknown (no Poisson term): the error of those pixels is NaN, not "
            "0; give gain= (1 for photon counts) or the image's own uncertainty",
            SciconvWarning,
            stacklevel=3,
        )
        return np.where(zero, np.nan, error)
    if np.array_equal(data[finite], np.round(data[finite])):
        return np.where(zero, 1.0 / np.sqrt(12.0), error)
    return error


def _as_pixels(value, name: str, data: np.ndarray) -> np.ndarray:
    """A number or per-pixel ``value``, checked (naming ``name``), broadcast to ``data``."""
    channels = 1 if data.ndim == 2 else data.shape[-1]
    v = per_pixel(value, name, data.shape[:2], channels)
    return np.broadcast_to(v[..., 0] if data.ndim == 2 else v, data.shape)


def error_source(gain: float | None, correlation=None) -> str:
    """How :func:`estimate_error` found its error for an effective ``gain`` (None: unknown).

    Parameters
    ----------
    gain : float or None
        The effective gain used.
    correlation : NoiseCorrelation or array_like of float, optional
        The correlated noise the Poisson term was divided by: a NoiseCorrelation (its
        ``R(inf)`` where applied) or each channel's ``R(inf)`` (1: none).

    Returns
    -------
    str
        What ``meta["FLUXERR"]`` of a catalog says.

    Examples
    --------
    >>> from sciconv.postprocess import error_source
    >>> error_source(2.0)
    'background rms + Poisson (effective gain 2)'
    >>> error_source(1.0, [2.2]).endswith("over R(inf) 2.2 of the correlated noise)")
    True
    """
    if gain is None:
        return NO_POISSON
    if isinstance(correlation, NoiseCorrelation):
        correlation = large_sum_ratio(correlation, correlation.channels)
    ratio = np.ravel(1.0 if correlation is None else correlation)
    if (ratio == 1).all():
        return f"background rms + Poisson (effective gain {gain:g})"
    shown = ", ".join(f"{r:.3g}" for r in ratio)
    return (
        f"background rms + Poisson (effective gain {gain:g}; per pixel, over R(inf) {shown} "
        "of the correlated noise)"
    )
