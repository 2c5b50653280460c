"""Instance labels -> a measurement table: one row per object, with RA/Dec from a WCS."""

from __future__ import annotations

import copy
import warnings

import numpy as np
from scipy import ndimage as ndi

from sciconv._validation import look_up_option
from sciconv._warnings import caught
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io import as_array
from sciconv.io._common import channels_first_hint
from sciconv.io._frames import ecliptic_frame
from sciconv.io._scale import off_sky_frame
from sciconv.postprocess._apertures import add_aperture_columns, parse_apertures
from sciconv.postprocess._background import in_unit
from sciconv.postprocess._errors import own_error
from sciconv.postprocess._grids import check_measure_grid
from sciconv.postprocess._image_columns import add_image_columns, clip_levels
from sciconv.postprocess._labels import validate_labels
from sciconv.postprocess._noise_correlation import (
    NoiseCorrelation,
    apply_noise_correlation,
    correlation_of,
)
from sciconv.postprocess._pixels import numbers, per_pixel
from sciconv.postprocess._sky_errors import sky_errors

#: Rows per chunk of the per-object sums (:func:`measure`, :func:`object_scores`): memory stays
#: bounded by the chunk, not the image.
ROWS_PER_CHUNK = 1024
_SPARSE_IDS = 1 << 20  # above this largest id (and a quarter of the pixels) ids are renumbered


def sparse_ids(largest: int, pixels: int) -> bool:
    """Whether label ids up to ``largest`` on ``pixels`` pixels are sparse (offset, hashed):
    per-id arrays would then be sized by the ids, not by the objects, so they are renumbered
    (:func:`renumbered`).

    Examples
    --------
    >>> sparse_ids(120, 64 * 64), sparse_ids(10**9, 64 * 64)
    (False, True)
    """
    return largest > max(_SPARSE_IDS, pixels // 4)


def renumbered(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index, given)``: the labels numbered 1, 2, ... in increasing order of their ids (0
    stays the background), and ``given[k]`` the id numbered ``k`` (``given[0]`` = 0), so
    arrays per object are sized by the objects, not by the largest id.

    Examples
    --------
    >>> index, given = renumbered(np.array([[0, 10**9], [7, 7]]))
    >>> index.tolist(), given.tolist()
    ([[0, 2], [1, 1]], [0, 7, 1000000000])
    """
    given, index = np.unique(labels, return_inverse=True)
    index = index.reshape(labels.shape)
    if not given.size or given[0] != 0:  # keep 0 for the background
        given, index = np.concatenate([[0], given]).astype(given.dtype), index + 1
    return index, given


#: The IVOA UCD1+ word, unit and description of each column :func:`measure` writes (the UCDs let
#: TOPCAT, Aladin and the Virtual Observatory tools recognise positions and fluxes in a VOTable).
#: Every UCD is made of words of the UCD1+ controlled vocabulary (astropy's VOTable validator and
#: TOPCAT check them). The flux columns and ``background`` take the intensity's unit (None here).
#: ``orientation`` is ``pos.posAng`` ("position angle of a given vector") qualified by
#: ``instr.pixel`` (SExtractor's pixel-frame ``THETA_IMAGE`` is ``pos.posAng;instr.det``): an
#: angle in the pixel frame, not a sky position angle east of north.
COLUMN_UCDS: dict[str, tuple[str, str | None, str]] = {
    "label": ("meta.id;meta.main", None, "instance label (pixel value in the label image)"),
    "area": ("phys.area;instr.pixel", "pix2", "number of pixels"),
    "x": ("pos.cartesian.x;instr.pixel", "pix", "centroid column, 0-based pixel centres"),
    "y": ("pos.cartesian.y;instr.pixel", "pix", "centroid row, 0-based pixel centres"),
    "bbox_xmin": ("pos.cartesian.x;stat.min;instr.pixel", "pix", "first column of the object"),
    "bbox_ymin": ("pos.cartesian.y;stat.min;instr.pixel", "pix", "first row of the object"),
    "bbox_xmax": (
        "pos.cartesian.x;stat.max;instr.pixel",
        "pix",
        "last column of the object (inclusive)",
    ),
    "bbox_ymax": (
        "pos.cartesian.y;stat.max;instr.pixel",
        "pix",
        "last row of the object (inclusive)",
    ),
    # 2 sigma: twice SExtractor's A_IMAGE / B_IMAGE and photutils' semimajor_sigma (a uniform
    # disc's radius); said in the description the written catalogs carry (<= 60: a TCOMMn)
    "semi_major": (
        "phys.size.smajAxis;instr.pixel",
        "pix",
        "second-moment semi-major axis, 2 sigma (2x A_IMAGE)",
    ),
    "semi_minor": (
        "phys.size.sminAxis;instr.pixel",
        "pix",
        "second-moment semi-minor axis, 2 sigma (2x B_IMAGE)",
    ),
    "orientation": (
        "pos.posAng;instr.pixel",
        "deg",
        "pixel-frame major axis angle, +x to +y (not east of north)",
    ),
    "flux_sum": ("phot.flux", None, "sum of the finite pixels (background included)"),
    "flux_mean": ("phot.flux;stat.mean", None, "mean of the finite pixels (intensity units)"),
    "flux": ("phot.flux;arith.diff", None, "flux_sum minus the background under the object"),
    "flux_err": (
        "stat.error;phot.flux",
        None,
        "1-sigma error of flux and flux_sum (quadrature sum)",
    ),
    "background": (
        "instr.skyLevel;stat.mean",
        None,
        "mean background (sky) level per pixel under the object",
    ),
    "x_weighted": ("pos.cartesian.x;instr.pixel", "pix", "flux-weighted centroid column"),
    "y_weighted": ("pos.cartesian.y;instr.pixel", "pix", "flux-weighted centroid row"),
    "x_weighted_err": (
        "stat.error;pos.cartesian.x;instr.pixel",
        "pix",
        "1-sigma error of x_weighted (pixel errors propagated)",
    ),
    "y_weighted_err": (
        "stat.error;pos.cartesian.y;instr.pixel",
        "pix",
        "1-sigma error of y_weighted (pixel errors propagated)",
    ),
    "ra": ("pos.eq.ra;meta.main", "deg", "right ascension (ICRS)"),
    "dec": ("pos.eq.dec;meta.main", "deg", "declination (ICRS)"),
    "ra_err": (
        "stat.error;pos.eq.ra",
        "arcsec",
        "1-sigma error of ra on the sky (of ra cos dec)",
    ),
    "dec_err": ("stat.error;pos.eq.dec", "arcsec", "1-sigma error of dec"),
    "flag_masked": ("meta.code", None, "True when the object touches a masked (bad) pixel"),
    "masked_fraction": ("meta.code;arith.ratio", None, "fraction of its pixels that are masked"),
    "flag_saturated": (
        "meta.code",
        None,
        "True when a pixel reaches the saturation level (per channel)",
    ),
}

#: FITS keywords of the level (in the image's units) at which the detector saturates, first wins
SATURATION_KEYWORDS = ("SATURATE", "SATLEVEL")


def saturation_level(image) -> float | None:
    """The level at which the detector of a GridImage or NDData saturates, from its FITS header
    (:data:`SATURATION_KEYWORDS`; an NDData's ``meta``); None when it does not say.

    Parameters
    ----------
    image : GridImage or astropy.nddata.NDData or array_like
        The image; a plain array (no header) gives None.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import saturation_level
    >>> img = GridImage(np.zeros((4, 4, 1), np.float32), header=fits.Header({"SATURATE": 6.5e4}))
    >>> saturation_level(img), saturation_level(np.zeros((4, 4)))
    (65000.0, None)
    """
    header = getattr(image, "header", None)
    if header is None:
        header = getattr(image, "meta", None)
    if header is None or not hasattr(header, "get"):
        return None
    for key in SATURATION_KEYWORDS:
        value = header.get(key)
        try:
            level = float(value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(level):
            return level
    return None


def id_dtype(largest) -> np.dtype:
    """The dtype instance ids are kept in: int32, or int64 when the ``largest`` id exceeds
    2**31 - 1 (never wrapped; :func:`write_products`' rule).

    Examples
    --------
    >>> id_dtype(7), id_dtype(2**31)
    (dtype('int32'), dtype('int64'))
    """
    return np.dtype(np.int64 if int(largest) > np.iinfo(np.int32).max else np.int32)


def equivalent_diameters(labels) -> np.ndarray:
    """The diameter of the circle of each object's area, ``sqrt(4 area / pi)`` (pixels).

    The size rule of Cellpose's ``diameter`` and of the pretrained nuclei model's
    ``object_size``: ``np.median(equivalent_diameters(labels))`` is an image's typical object
    size.

    Parameters
    ----------
    labels : array_like of int, shape (H, W), or GridImage
        Instance labels, 0 = background (numbers need not be consecutive); integer
        ``(H, W, 1)`` too.

    Returns
    -------
    ndarray of float64, shape (N,)
        One value per object present, in label order.

    Raises
    ------
    InvalidImageError
        Labels that are not a 2-D map of non-negative integers (floats included).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import equivalent_diameters
    >>> labels = np.zeros((20, 20), int); labels[:4, :4] = 1; labels[10:19, 10:19] = 5
    >>> equivalent_diameters(labels).round(2).tolist()
    [4.51, 10.16]
    """
    areas = np.bincount(validate_labels(labels).ravel())[1:]
    return np.sqrt(4.0 * areas[areas > 0] / np.pi)


def _validate_intensity(intensity, shape) -> np.ndarray | None:
    if intensity is None:
        return None
    intensity = numbers(intensity, "intensity")
    if intensity.ndim == 2:
        intensity = intensity[..., None]
    if intensity.ndim != 3 or intensity.shape[:2] != tuple(shape):
        hint = channels_first_hint(intensity.shape)  # tifffile's (C, H, W)
        raise InvalidImageError(
            f"intensity must have the labels' shape {tuple(shape)} (optionally with channels); "
            f"got shape {intensity.shape}" + (f": {hint}" if hint else "")
        )
    return intensity


def _validate_mask(mask, shape) -> np.ndarray | None:
    """Bool ``(H, W)``, True at bad pixels (a pixel is bad when any of its channels is)."""
    if mask is None:
        return None
    mask = np.asarray(as_array(mask))
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf":
            raise ConfigError(f"mask must be a boolean array (True = bad); got dtype {mask.dtype}")
        mask = np.nan_to_num(mask, nan=1) != 0
    if mask.ndim == 3:
        mask = mask.any(axis=-1)
    if mask.shape != tuple(shape):
        raise InvalidImageError(
            f"mask must have the labels' shape {tuple(shape)} (optionally with channels); got "
            f"shape {mask.shape}"
        )
    return mask


def _reaches_icrs(wcs) -> bool:
    """Whether the WCS's world coordinates are a SkyCoord that transforms to ICRS (not a solar
    or planetary frame astropy cannot place on the sky without more information)."""
    from astropy.coordinates import SkyCoord

    try:
        with caught("ignore"):
            world = wcs.pixel_to_world(0.0, 0.0)
            world.icrs  # noqa: B018  (raises for frames without a transformation)
    except Exception:
        return False
    return isinstance(world, SkyCoord)


def celestial_wcs(wcs, *, instead: str = "ra/dec left out"):
    """The 2-D celestial part of ``wcs``, or None (with a warning) when its axes are not
    directions on the sky (helioprojective ``HPLN``/``HPLT``, heliographic, a planet's: decided
    by ``off_sky_frame`` from the axis types, whatever frames SunPy or another package taught
    astropy to transform) or do not transform to ICRS; the warning says what happens
    ``instead`` of failing after the model has run.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> celestial_wcs(w).naxis
    2
    """
    if wcs is None:
        return None
    if not getattr(wcs, "has_celestial", False):
        raise ConfigError(
            "wcs has no celestial axes: ra/dec need a celestial WCS (e.g. GridImage.wcs)"
        )
    wcs = wcs.celestial if wcs.naxis > 2 else wcs
    frame = off_sky_frame(wcs)
    if frame is not None:  # QA: SunPy's frames reach ICRS as 3-D points, not sky positions
        warnings.warn(
            f"the WCS's celestial axes {list(wcs.wcs.ctype)} are {frame} coordinates (a solar "
            f"or planetary frame), not directions on the sky: no transformation to ICRS gives "
            f"them ra/dec: {instead}",
            SciconvWarning,
            stacklevel=3,
        )
        return None
    if ecliptic_frame(wcs) is not None:  # astropy may have cached ICRS for it, read before
        wcs = copy.copy(wcs)  # sciconv.io registered the ecliptic frames (review); a copy
        vars(wcs).pop("_components_and_classes_cache", None)  # (deepcopy loses EQUINOX)
    if not _reaches_icrs(wcs):
        warnings.warn(
            f"the WCS's celestial axes {list(wcs.wcs.ctype)} have no transformation to ICRS "
            f"here (a solar or planetary frame, or one that needs distances): {instead}",
            SciconvWarning,
            stacklevel=3,
        )
        return None
    return wcs


def _saturation(saturation, intensity, image) -> np.ndarray | None:
    """``measure``'s ``saturation=`` as a level per channel (NaN: none), or None."""
    if isinstance(saturation, str):
        look_up_option(saturation, ("auto",), name="saturation", error=ConfigError)
        saturation = saturation_level(intensity)
        if saturation is None and image is not None:  # a 12-bit camera's 4095 in a TIFF (QA)
            return clip_levels(intensity, image)
    if saturation is None or image is None:
        return None
    if isinstance(saturation, bool) or not isinstance(saturation, (int, float, np.number)):
        raise ConfigError(f"saturation must be 'auto', a number or None; got {saturation!r}")
    return np.full(image.shape[-1], float(saturation))


def _auto_mask(intensity, image: np.ndarray | None):
    """``mask="auto"``: the intensity's own mask (GridImage, NDData), else its non-finite pixels
    (a lazy GridImage keeps its bad pixels as NaN), else None."""
    if isinstance(intensity, np.ma.MaskedArray):  # nomask is a scalar False, not an array
        own = np.ma.getmaskarray(intensity)
        if own.any():
            return own
    else:
        own = getattr(intensity, "mask", None)
        if own is not None and np.ndim(own) >= 2:
            return own
    if image is not None:
        bad = ~np.isfinite(image).all(axis=-1)
        if bad.any():
            return bad
    return None


def _validate_background(background, shape, channels: int, unit=None) -> np.ndarray | None:
    """(H, W, C), (H, W, 1) or (1, 1, 1) float64 (broadcast against the intensity) in the
    intensity's ``unit`` (:func:`in_unit`), or None."""
    if background is None:
        return None
    return per_pixel(in_unit(background, unit, name="background"), "background", shape, channels)


def _pixel_errors(error, intensity, image, shape, channels: int) -> np.ndarray | None:
    """``measure``'s ``error=`` as (H, W, C) or (H, W, 1) float64 standard deviations in the
    intensity's unit, or None."""
    if image is None or error is None:
        return None
    if isinstance(error, str):
        look_up_option(error, ("auto",), name="error", error=ConfigError)
        error = own_error(intensity) if intensity is not None else None
        if error is None or error.size not in (image.size, image.size // channels):
            return None
    error = in_unit(error, getattr(intensity, "unit", None), name="error")
    e = per_pixel(error, "error", shape, channels)
    for r0 in range(0, len(e), ROWS_PER_CHUNK):  # by row chunk: no full-size mask and copy
        part = e[r0 : r0 + ROWS_PER_CHUNK]
        if np.any(part[np.isfinite(part)] < 0):  # NaN and inf: unknown errors
            raise InvalidImageError("error must hold standard deviations (>= 0); some are negative")
    return e


def _at_pixels(values: np.ndarray, r0: int, rows, cols, shape) -> np.ndarray:
    """A per-pixel argument (:func:`per_pixel`: ``(1, 1, 1)`` for one value for the whole
    image) at the pixels ``rows``, ``cols`` of the row chunk starting at ``r0``, as ``shape``."""
    if values.shape[0] == 1:
        return np.broadcast_to(values[0, 0], shape)
    return np.broadcast_to(values[r0 : r0 + ROWS_PER_CHUNK][rows, cols], shape)


def measure(
    labels,
    *,
    intensity=None,
    wcs=None,
    mask: str | np.ndarray | None = "auto",
    background=None,
    error: str | np.ndarray | None = "auto",
    saturation: str | float | None = "auto",
    noise_correlation: str | NoiseCorrelation | float | None = "auto",
    aperture=None,
):
    """Measure every labelled object: one table row each.

    ``flux`` is the segment (isophotal) sum over the label: its share of the object's total
    depends on the seeing and the signal-to-noise ratio, so it is not for colours across bands
    of different PSF nor for comparing epochs (QA: g - r 0.14 mag off, 8 sigma); use
    ``aperture=`` (the same circle on the sky in every image) or photutils' Kron flux
    (:func:`to_photutils`). ``flux_err`` and the centroid errors hold for the footprint as
    given: a segment drawn anew on each noisy image moves with the noise (QA: scatter
    1.2-1.5x them with photutils' segments, 1.8-2.3x with the CNN's); ``flux_aper_err``
    does not depend on the footprint.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W), or GridImage
        Instance labels (0 = background), e.g. from :func:`instances` or
        :func:`sciconv.io.read_labels`, or their GridImage; integer ``(H, W, 1)`` too. Floats
        are refused (:func:`sciconv.io.read` gives images and label files alike as float32).
        Labels carrying a WCS (``read_labels(path, grid=True)``) must be on the
        ``intensity``'s pixel grid (:func:`reproject_labels` carries them to another).
    intensity : ndarray of shape (H, W) or (H, W, C), GridImage or NDData, optional
        Pixels to measure fluxes on (raw units; NaN pixels are skipped).
    wcs : astropy.wcs.WCS, optional
        A celestial WCS (e.g. ``GridImage.wcs``): adds ``ra`` and ``dec`` (ICRS, degrees).
    mask : "auto", ndarray of bool, shape (H, W) or (H, W, C), or None, optional
        Bad pixels (True = bad, e.g. ``GridImage.mask``; a pixel is bad when any channel is).
        Adds the columns ``flag_masked`` and ``masked_fraction``. ``"auto"`` (default): the
        ``intensity``'s own mask (a GridImage's or NDData's), else its NaN/inf pixels when it
        has any (a lazily read image), so objects cut by saturated or flagged pixels are
        flagged without asking. None: no mask columns.
    background : float or ndarray of shape (H, W) or (H, W, C), optional
        The sky (or slide) background in intensity units, e.g. from
        :func:`estimate_background`; an astropy Quantity is converted to the intensity's unit
        (a ``ConfigError`` when it does not convert; beside an intensity without a unit only a
        dimensionless one is taken). Adds ``background`` (its mean under each object) and
        ``flux`` (``flux_sum`` minus the background under the object's finite pixels), and the
        weighted centroid (hence ``ra``/``dec``) weights the background-subtracted pixels, as
        photutils' ``SourceCatalog`` does on background-subtracted data. ``flux_sum`` stays the
        raw sum.
    error : "auto", ndarray of shape (H, W) or (H, W, C), or None, optional
        The 1-sigma error of each pixel (intensity units; a Quantity is converted as
        ``background`` is), e.g. from :func:`estimate_error` (background noise and the sources'
        Poisson noise). Adds ``flux_err``, the root sum of
        squares over the object's finite, good pixels (photutils' ``segment_flux_err``).
        ``"auto"`` (default): the ``intensity``'s own uncertainty (an NDData's, or a GridImage
        made from one), else no ``flux_err``. None: none.
    saturation : "auto", float or None, optional
        The level (``intensity`` units, before any background) at which the detector saturates:
        adds ``flag_saturated``, True for an object with a pixel at or above it (its flux is a
        lower limit, its centroid and shape are biased), per channel ((N, C), as ``flux_sum``)
        for C > 1 channels. ``"auto"`` (default): the ``intensity``'s FITS header's level
        (``SATURATE``, ``SATLEVEL``: :func:`saturation_level`); for a non-FITS image of integers
        (TIFF, PNG) each channel's largest value where it forms a plateau of many pixels, a
        clip (:func:`clip_levels`: a 12-bit camera's 4095 in a 16-bit TIFF); else no column.
        ``meta["SATURATE"]``: the level (``"4095.0 nan"`` when channels differ). None: no column.
    noise_correlation : "auto", "measure", NoiseCorrelation, float or None, optional
        How much more an object's summed noise is than its pixels' errors in quadrature: a
        resampled image (drizzled ``drz``, JWST ``i2d``, a reprojected mosaic) has correlated
        noise, and ``flux_err`` is then ``sqrt(R)`` too small. ``"measure"``: measured on
        the ``intensity``'s pixels around the objects
        (:func:`sciconv.postprocess.noise_correlation`; 64-pixel boxes, so an image at least 64
        pixels across) and applied to ``flux_err`` (and the weighted centroid's errors) where
        the noise is measurably correlated as a resampling's, ``R(inf)`` above 1.1: each
        object's error times ``sqrt(R)`` of a box of its area; white noise leaves them
        unchanged, and a map in ``Jy/beam`` is left to its ``flux_density_err``. ``"auto"``
        (default): so, but applied only where the ``intensity``'s header says it was resampled
        (:func:`sciconv.postprocess.resampled_by`: drizzle's ``D001KERN``/``NDRIZIM``, JWST's
        ``S_RESAMP``, SWarp's, a HISTORY line); otherwise nothing is measured (a detector
        frame of a crowded field with an undersampled PSF, or with interpixel capacitance,
        measures like a resampling), so no ``meta["FLUXCORR"]``. A NoiseCorrelation: that one
        (a block-wise run's, of the whole image). A number: ``R`` of every object. None: the
        pixels are independent (photutils' ``segment_flux_err``).
    aperture : float, Quantity, str or sequence of them, optional
        Radii of fixed circular apertures at each object's weighted centroid (needs
        ``intensity``): a number (pixels), or an angle (``2 * u.arcsec``) or length (``5 *
        u.um``) converted with the ``intensity``'s own pixel scale (else ``wcs``'s), so the
        aperture is the same on the sky in every band and night (an angle without a sky
        scale: ``ConfigError``). Adds ``flux_aper``, ``flux_aper_err``, ``flag_aper_masked``,
        ``aper_masked_fraction`` and ``flag_aper_edge``; with several radii, one set each named
        by the radius (``flux_aper_2arcsec``, ``flux_aper_2arcsec_err``, ...).

    Returns
    -------
    astropy.table.Table
        Columns

        - ``label``; ``area`` (pixels);
        - ``x``, ``y``: centroid, x = column, y = row, 0-based pixel centres;
        - ``bbox_xmin``, ``bbox_ymin``, ``bbox_xmax``, ``bbox_ymax``: bounding box, the first and
          the last column and row of the object, both inclusive and 0-based (``xmax`` is its last
          column, as photutils' ``bbox_xmax`` and SExtractor's ``XMAX_IMAGE`` less 1; the object
          is ``labels[ymin : ymax + 1, xmin : xmax + 1]``);
        - ``semi_major``, ``semi_minor`` (pixels): semi-axes of the ellipse with the object's second
          moments (the radius for a disc); ``orientation`` (degrees, from +x towards +y, in
          (-90, 90]: an angle in the pixel frame, not a sky position angle);
        - with ``intensity``: ``flux_sum``, ``flux_mean`` (shape (N, C) when C > 1; a TIFF's
          channel names in ``meta["channel_names"]``, a CSV's ``flux_mean_DNA``) and the
          intensity-weighted centroid ``x_weighted``, ``y_weighted`` (positive pixels, summed over
          channels; for an object whose flux is negative, a fading source of a difference
          image, its negative pixels weighted by ``|flux|``); with ``background`` also ``flux``
          and ``background``; with an ``error``
          ``flux_err`` (``meta["FLUXERR"]`` says where the error came from when known; it
          includes the correlated-noise factor ``noise_correlation`` gives, and
          ``meta["FLUXCORR"]`` says what was measured and whether it was applied) and the
          weighted centroid's 1-sigma errors ``x_weighted_err``, ``y_weighted_err`` (pixels;
          SExtractor's ``ERRX2``/``ERRY2``, the pixel errors' propagation), all of them
          for the footprint as given (above);
        - with ``aperture``: the fixed-aperture columns (above; ``meta["APERTURE"]``);
        - with ``wcs``: ``ra``, ``dec`` (deg) of the weighted centroid when ``intensity`` is given,
          else of ``x``, ``y`` (``meta["RADECSRC"]`` says which); with the centroid's errors also
          ``ra_err``, ``dec_err`` (arcsec, on the sky: ``ra_err`` is the error of
          ``ra * cos(dec)``, Gaia's ``ra_error``), the pixel errors and their covariance through
          the WCS's local Jacobian at the centroid (scale, rotation, skew and distortion);
        - with a mask: ``flag_masked`` (bool: the object has a masked pixel or touches one, in
          its 8 neighbours) and ``masked_fraction`` (its masked pixels / its area): the fluxes
          and the weighted centroid of flagged objects leave the masked pixels out, while
          ``area`` and the shape columns (``x``, ``y``, the axes, ``orientation``) describe
          the whole label, masked pixels included (photutils' ``area`` leaves them out);
        - with a saturation level: ``flag_saturated`` (bool; (N, C) with channels);
        - with a radio map in ``Jy/beam`` with its beam (``BMAJ``/``BMIN``): ``flux_density``
          and ``flux_density_err`` in Jy (:func:`add_beam_columns`);
        - with an ``intensity`` that knows its pixel scale (a GridImage's, an NDData's celestial
          WCS): ``area_phys``, ``equivalent_diameter_phys``, ``semi_major_phys``,
          ``semi_minor_phys`` in µm, arcsec, ... (:func:`add_physical_columns`).

        Every column has a unit (``pix``, ``pix2``, ``deg``; fluxes and ``background`` take the
        ``intensity``'s unit: an NDData's, or a GridImage's ``unit`` from its FITS ``BUNIT``), a
        description and an IVOA UCD1+ UCD in ``col.meta["ucd"]`` (:data:`COLUMN_UCDS`: ``ra`` is
        ``pos.eq.ra;meta.main``, ``x`` is ``pos.cartesian.x;instr.pixel``, ...), which
        :func:`write_catalog` writes to VOTable and FITS so TOPCAT and Aladin recognise the
        positions.

    Raises
    ------
    InvalidImageError
        Labels that are not a 2-D map of non-negative integers (the message names
        :func:`sciconv.io.read_labels`); an ``intensity``, ``mask``,
        ``background`` or ``error`` of another shape; negative errors; labels and intensity
        on two pixel grids (their WCSs over 0.1 px apart).
    ConfigError
        An unknown option; a ``background`` or ``error`` Quantity whose unit does not convert
        to the intensity's.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import measure
    >>> labels = np.zeros((10, 10), int); labels[2:4, 1:7] = 1
    >>> t = measure(labels, intensity=np.full((10, 10), 2.0))
    >>> tuple(t[name][0].item() for name in ("area", "x", "y", "flux_sum", "orientation"))
    (12, 3.5, 2.5, 24.0, 0.0)
    >>> t["x"].unit, t["x"].meta["ucd"]
    (Unit("pix"), 'pos.cartesian.x;instr.pixel')
    >>> [int(t[k][0]) for k in ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax")]  # inclusive
    [1, 6, 2, 3]
    >>> labels[6:8, 6:8] = 2
    >>> bad = np.zeros((10, 10), bool); bad[8, 8] = True  # next to object 2
    >>> measure(labels, mask=bad)["flag_masked"].tolist()
    [False, True]
    """
    from astropy.table import Table

    given = labels  # a GridImage of labels carries its grid's WCS
    labels = validate_labels(labels, keep_dtype=True)  # cast by row chunk (QA: int64 copy)
    image = _validate_intensity(intensity, labels.shape)
    check_measure_grid(given, intensity, wcs)  # one pixel grid (QA: another band's pixels)
    apertures = parse_apertures(aperture, intensity, wcs=wcs)
    if apertures and image is None:
        raise ConfigError("aperture= needs the intensity to measure; got intensity=None")
    levels = _saturation(saturation, intensity, image)
    saturated = None if levels is None else image >= levels  # before bad pixels; NaN: never
    if isinstance(mask, str):
        look_up_option(mask, ("auto",), name="mask", error=ConfigError)
        mask = _auto_mask(intensity, image)
    bad = _validate_mask(mask, labels.shape)
    if image is not None and bad is not None and bad.any():  # fluxes leave the bad pixels out
        image = np.where(bad[..., None], np.nan, image)
    wcs = celestial_wcs(wcs)
    n = int(labels.max()) if labels.size else 0
    given_ids = None
    if sparse_ids(n, labels.size):  # sparse ids (offset, hashed): memory by objects
        labels, given_ids = renumbered(labels)
        n = len(given_ids) - 1
    c = 1 if image is None else image.shape[-1]
    flux_unit = getattr(intensity, "unit", None)
    sky = None if image is None else _validate_background(background, labels.shape, c, flux_unit)
    if sky is not None:
        bsum = np.zeros((n + 1, c))
    sigma = _pixel_errors(error, intensity, image, labels.shape, c)
    # correlated noise (a resampled image): the errors of an object of A pixels x sqrt(R(A))
    measured = None if sigma is None else image
    correlation = correlation_of(noise_correlation, measured, labels, intensity=intensity)
    if sigma is not None:
        esum = np.zeros((n + 1, c))
        # the weighted centroid's error: sums of var, var x, var x^2 (and y) over its pixels
        cen = {key: np.zeros((2, n + 1)) for key in ("v", "vx", "vy", "vxx", "vyy", "vxy")}
    # moments accumulated over row chunks: memory stays O(chunk), not O(H * W) per statistic
    count = np.zeros(n + 1)
    sx = np.zeros(n + 1)
    sy = np.zeros(n + 1)
    sxx = np.zeros(n + 1)
    syy = np.zeros(n + 1)
    sxy = np.zeros(n + 1)
    if image is not None:
        fsum = np.zeros((n + 1, c))
        fcount = np.zeros((n + 1, c))
        wsum = np.zeros((2, n + 1))  # [0]: positive pixels' weights, [1]: negative ones'
        wx = np.zeros((2, n + 1))
        wy = np.zeros((2, n + 1))
    h, w = labels.shape
    xs = np.arange(w, dtype=np.float64)
    for r0 in range(0, h, ROWS_PER_CHUNK):
        lab = labels[r0 : r0 + ROWS_PER_CHUNK]
        fg = lab > 0
        if not fg.any():
            continue
        rows, cols = np.nonzero(fg)
        ids = lab[rows, cols].astype(np.intp, copy=False)
        x = xs[cols]
        y = (rows + r0).astype(np.float64)
        count += np.bincount(ids, minlength=n + 1)
        sx += np.bincount(ids, x, n + 1)
        sy += np.bincount(ids, y, n + 1)
        sxx += np.bincount(ids, x * x, n + 1)
        syy += np.bincount(ids, y * y, n + 1)
        sxy += np.bincount(ids, x * y, n + 1)
        if image is not None:
            vals = image[r0 : r0 + ROWS_PER_CHUNK][rows, cols]  # (m, C)
            finite = np.isfinite(vals)
            clean = np.where(finite, vals, 0.0)
            for ch in range(c):
                fsum[:, ch] += np.bincount(ids, clean[:, ch], n + 1)
                fcount[:, ch] += np.bincount(ids, finite[:, ch].astype(np.float64), n + 1)
            if sigma is not None:
                var = _at_pixels(sigma, r0, rows, cols, vals.shape)
                # a pixel whose flux counts brings its error, NaN and inf too (unknown, no data)
                var = np.where(finite, var * var, 0.0)
                for ch in range(c):
                    esum[:, ch] += np.bincount(ids, var[:, ch], n + 1)
            if sky is not None:
                under = np.where(finite, _at_pixels(sky, r0, rows, cols, vals.shape), 0.0)
                for ch in range(c):
                    bsum[:, ch] += np.bincount(ids, under[:, ch], n + 1)
                clean = clean - under
            # both signs' weights: a negative object (a fading source of a difference image) is
            # weighted by its own sign once its sum is known (QA: placed by its noise)
            for s, part in ((0, clean > 0), (1, clean < 0)):
                wgt = np.where(part, np.abs(clean), 0.0).sum(axis=1)
                if sigma is not None:  # the weights' variance: of the channels counted
                    v = np.where(part, var, 0.0).sum(axis=1)
                    for key, weight in (("v", 1.0), ("vx", x), ("vy", y), ("vxx", x * x)):
                        cen[key][s] += np.bincount(ids, v * weight, n + 1)
                    cen["vyy"][s] += np.bincount(ids, v * y * y, n + 1)
                    cen["vxy"][s] += np.bincount(ids, v * x * y, n + 1)
                wsum[s] += np.bincount(ids, wgt, n + 1)
                wx[s] += np.bincount(ids, wgt * x, n + 1)
                wy[s] += np.bincount(ids, wgt * y, n + 1)

    present = np.nonzero(count[1:] > 0)[0] + 1
    cnt = count[present]
    mx, my = sx[present] / cnt, sy[present] / cnt
    cxx = np.maximum(sxx[present] / cnt - mx * mx, 0.0)
    cyy = np.maximum(syy[present] / cnt - my * my, 0.0)
    cxy = sxy[present] / cnt - mx * my
    # moments about the image origin leave a rounding residue (1e-10 of the spread far from it):
    # a vertical object came out at -89.9999999992 degrees in one catalog and 90 in another
    cxy = np.where(np.abs(cxy) <= 1e-9 * (cxx + cyy), 0.0, cxy)
    # and of cxx - cyy: a round object's -1e-16 made arctan2(0, -eps) 180, so identical discs
    # came out at 0 or 90 degrees by where they sat (photutils: 0 for all; QA)
    dxy = np.where(np.abs(cxx - cyy) <= 1e-9 * (cxx + cyy), 0.0, cxx - cyy)
    half_diff = np.sqrt((dxy / 2) ** 2 + cxy**2)
    lam1 = (cxx + cyy) / 2 + half_diff
    lam2 = np.maximum((cxx + cyy) / 2 - half_diff, 0.0)
    theta = np.degrees(0.5 * np.arctan2(2 * cxy, dxy))
    theta = np.round(np.where(theta <= -90, theta + 180, theta), 10)
    found = labels.astype(np.int32, copy=False) if n < 2**31 else labels
    slices = ndi.find_objects(found, max_label=n) if n else []  # no objects (0x0 labels too)
    bbox = np.array(
        [
            (s[1].start, s[0].start, s[1].stop - 1, s[0].stop - 1) if s is not None else (0,) * 4
            for s in (slices[i - 1] for i in present)
        ],
        dtype=np.int64,
    ).reshape(-1, 4)

    table = Table()
    ids = present if given_ids is None else given_ids[present]
    table["label"] = ids.astype(id_dtype(ids[-1] if len(ids) else 0))
    table["area"] = cnt.astype(np.int64)
    table["x"] = mx
    table["y"] = my
    table["bbox_xmin"], table["bbox_ymin"] = bbox[:, 0], bbox[:, 1]
    table["bbox_xmax"], table["bbox_ymax"] = bbox[:, 2], bbox[:, 3]
    table["semi_major"] = 2 * np.sqrt(lam1)
    table["semi_minor"] = 2 * np.sqrt(lam2)
    table["orientation"] = theta
    table["orientation"].unit = "deg"
    px, py = mx, my
    position_cov = None  # the weighted centroid's (var_x, var_y, cov_xy): ra_err, dec_err
    if image is not None:
        seen = fcount[present] > 0  # an object of masked pixels only has no flux (QA: 0 +- 0)
        fs = np.where(seen, fsum[present], np.nan)
        # a negative object (its background-subtracted sum over the channels < 0) is weighted
        # by its negative pixels, |flux|-weighted (SExtractor on the negated image)
        net = fsum[present].sum(axis=1) - (0.0 if sky is None else bsum[present].sum(axis=1))
        sign = (net < 0).astype(np.intp)
        at = (sign, present)
        with np.errstate(invalid="ignore", divide="ignore"):
            fm = np.where(seen, fs / fcount[present], np.nan)
            ws = wsum[at]
            xw = np.where(ws > 0, wx[at] / ws, mx)
            yw = np.where(ws > 0, wy[at] / ws, my)
        table["flux_sum"] = fs[:, 0] if c == 1 else fs
        table["flux_mean"] = fm[:, 0] if c == 1 else fm
        if sky is not None:
            bs = bsum[present]
            with np.errstate(invalid="ignore", divide="ignore"):
                bm = np.where(seen, bs / fcount[present], np.nan)
            table["flux"] = (fs - bs)[:, 0] if c == 1 else fs - bs
            table["background"] = bm[:, 0] if c == 1 else bm
        if sigma is not None:
            fe = np.where(seen, np.sqrt(esum[present]), np.nan)
            table["flux_err"] = fe[:, 0] if c == 1 else fe
            if isinstance(error, str):
                table.meta["FLUXERR"] = "image uncertainty"
        table["x_weighted"] = xw
        table["y_weighted"] = yw
        if sigma is not None:  # var(x_w) = sum var_i (x_i - x_w)^2 / W^2 (QA: no position error)
            v, vx, vy = (cen[key][at] for key in ("v", "vx", "vy"))
            vxx, vyy = cen["vxx"][at], cen["vyy"][at]
            with np.errstate(invalid="ignore", divide="ignore"):
                var_x = np.maximum(vxx - 2 * xw * vx + xw * xw * v, 0.0) / ws**2
                var_y = np.maximum(vyy - 2 * yw * vy + yw * yw * v, 0.0) / ws**2
                cov_xy = (cen["vxy"][at] - xw * vy - yw * vx + xw * yw * v) / ws**2
            table["x_weighted_err"] = np.where(ws > 0, np.sqrt(var_x), np.nan)
            table["y_weighted_err"] = np.where(ws > 0, np.sqrt(var_y), np.nan)
            position_cov = (var_x, var_y, cov_xy)
        px, py = xw, yw
        if apertures:  # photutils' sums at the weighted centroid; errors x sqrt(R(aperture))
            kw = {"background": sky, "error": sigma, "bad": bad}  # R: apply_noise_correlation
            add_aperture_columns(table, apertures, image, (px, py), unit=flux_unit, **kw)
    table.meta["PIXCONV"] = "x = column, y = row, 0-based pixel centres"
    if wcs is not None:
        if len(present):
            sky = wcs.pixel_to_world(px, py).icrs
            ra, dec = sky.ra.deg, sky.dec.deg
        else:
            ra = dec = np.zeros(0)
        table["ra"] = np.asarray(ra, dtype=np.float64)
        table["dec"] = np.asarray(dec, dtype=np.float64)
        table["ra"].unit = table["dec"].unit = "deg"
        if position_cov is not None:  # the centroid's errors on the sky (arcsec)
            errors = sky_errors(wcs, px, py, *position_cov) if len(present) else (ra, dec)
            table["ra_err"], table["dec_err"] = (np.asarray(e, np.float64) for e in errors)
            table["ra_err"].unit = table["dec_err"].unit = "arcsec"
        table.meta["RADECSRC"] = "x_weighted, y_weighted" if image is not None else "x, y"
    if bad is not None:
        inside = np.bincount(labels[bad].astype(np.intp), minlength=n + 1)[present]
        # touching: an object pixel within the bad pixels dilated by one (8 neighbours)
        near = ndi.binary_dilation(bad, structure=np.ones((3, 3), bool))
        touch = np.zeros(n + 1, bool)
        touch[np.unique(labels[near])] = True
        table["flag_masked"] = touch[present] | (inside > 0)
        table["masked_fraction"] = inside / cnt
    if saturated is not None:  # per channel, as the fluxes it makes lower limits
        hit = [
            np.bincount(labels[saturated[..., k]].astype(np.intp), minlength=n + 1)
            for k in range(c)
        ]
        table["flag_saturated"] = (np.stack(hit, 1)[present] > 0)[:, 0 if c == 1 else slice(None)]
        found = np.unique(levels[np.isfinite(levels)])  # one, else per channel (a FITS card)
        table.meta["SATURATE"] = float(found[0]) if len(found) == 1 else " ".join(map(str, levels))
    _annotate(table, flux_unit=flux_unit)
    # sizes in µm/arcsec when the image knows its pixel (QA: only the CLI added them), flux
    # densities of a map in Jy/beam, a cube plane's frequency or velocity, channel names
    add_image_columns(table, intensity, wcs=wcs)
    return apply_noise_correlation(table, correlation)


def _annotate(table, *, flux_unit=None) -> None:
    """Put the UCD (``col.meta["ucd"]``), unit and description of :data:`COLUMN_UCDS` on columns."""
    for name, (ucd, unit, description) in COLUMN_UCDS.items():
        if name not in table.colnames:
            continue
        col = table[name]
        col.meta["ucd"] = ucd
        col.description = description
        if name.startswith("flux") or name == "background":  # intensity units, as flux_mean
            unit = flux_unit
        if unit is not None:
            col.unit = unit
