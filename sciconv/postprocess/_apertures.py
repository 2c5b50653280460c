"""Fixed-aperture photometry for :func:`~sciconv.postprocess.measure` (``aperture=``).

Why: ``measure``'s ``flux`` is the segment (isophotal) sum over the object's label. Its share
of the object's total depends on the PSF and on the signal-to-noise ratio, so colours from one
set of labels measured in bands of different seeing, and magnitudes of one star on nights of
different seeing, are biased far beyond ``flux_err`` (QA: g - r off by +0.14 mag for a quoted
0.018; constant stars with a reduced chi2 of 14 over four nights). And ``flux_err`` (as the
weighted centroid's errors) holds for the footprint as given: a segment drawn anew on each
noisy image moves with the noise and scatters more. A circle of one size on the sky, placed at
the object's weighted centroid, takes the same share of a point source in every band and night
for a PSF well inside it, and its error does not depend on where the label's edge fell.

The sums are photutils' (:func:`photutils.aperture.aperture_photometry`, ``method="exact"``:
each pixel weighted by its overlap with the circle); the background is subtracted as ``flux``'s
is, the background map summed over the same weighted pixels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from sciconv._warnings import caught
from sciconv.errors import ConfigError
from sciconv.io import PixelScale, image_pixel_scale
from sciconv.io._scale import parse_unit
from sciconv.postprocess._noise_correlation import NoiseCorrelation

__all__ = ["APERTURE_COLUMNS", "Aperture", "add_aperture_columns", "parse_apertures"]

#: The columns :func:`add_aperture_columns` writes, one set per radius: name -> (IVOA UCD1+
#: UCD, whether it takes the intensity's unit, description). With several radii each name
#: gets the radius' tag after ``aper`` (``flux_aper_2arcsec``, ``flux_aper_2arcsec_err``,
#: ``flag_aper_2arcsec_edge``); the descriptions end with the radius (FITS ``TCOMMn``: <= 60).
APERTURE_COLUMNS: dict[str, tuple[str, bool, str]] = {
    "flux_aper": ("phot.flux;arith.diff", True, "aperture sum minus background"),
    "flux_aper_err": ("stat.error;phot.flux", True, "1-sigma error of flux_aper"),
    "flag_aper_masked": ("meta.code", False, "True: masked/NaN pixels left out of aperture"),
    "aper_masked_fraction": ("meta.code;arith.ratio", False, "masked share of the aperture"),
    "flag_aper_edge": ("meta.code", False, "True: the aperture reaches off the image"),
}
_NO_BACKGROUND = "aperture sum (no background given)"
_CORRELATED = "error of flux_aper x sqrt(R), see FLUXCORR"
_ROUND = 1e-6  # relative difference of the semi-axes below which the aperture is a circle


@dataclasses.dataclass(frozen=True)
class Aperture:
    """One aperture of ``measure(aperture=)``, in pixels: a circle of radius ``a`` (``b == a``),
    or the ellipse a circle on the sky is on non-square or skewed pixels.

    Parameters
    ----------
    given : str
        The radius as given (``"2 arcsec"``, ``"6 pix"``).
    tag : str
        Its part of the column names (``"2arcsec"``, ``"1p5arcsec"``, ``"6pix"``).
    a, b : float
        The semi-axes in pixels (``a >= b``).
    theta : float
        The angle of ``a`` from +x towards +y, radians.

    Examples
    --------
    >>> from sciconv.postprocess._apertures import Aperture
    >>> ap = Aperture("3 pix", "3pix", 3.0, 3.0, 0.0)
    >>> round(ap.area, 3), type(ap.region([(5.0, 5.0)])).__name__
    (28.274, 'CircularAperture')
    """

    given: str
    tag: str
    a: float
    b: float
    theta: float = 0.0

    @property
    def area(self) -> float:
        """The aperture's area in pixels, ``pi a b``."""
        return math.pi * self.a * self.b

    def region(self, positions):
        """The photutils aperture at ``positions`` (``(N, 2)``, x and y in pixels).

        Parameters
        ----------
        positions : array_like, shape (N, 2)
            The centres.
        """
        from photutils.aperture import CircularAperture, EllipticalAperture

        if abs(self.a - self.b) <= _ROUND * self.a:
            return CircularAperture(positions, r=self.a)
        return EllipticalAperture(positions, a=self.a, b=self.b, theta=self.theta)

    def describe(self) -> str:
        """``"r = 2 arcsec = 8 pix"`` (or the ellipse's semi-axes and angle in pixels)."""
        if abs(self.a - self.b) <= _ROUND * self.a:
            pixels = f"{self.a:.4g} pix"
        else:
            pixels = f"{self.a:.4g} x {self.b:.4g} pix at {math.degrees(self.theta):.4g} deg"
        return f"r = {self.given}" + ("" if self.given == pixels else f" = {pixels}")


def parse_apertures(aperture, image=None, *, wcs=None) -> list[Aperture]:
    """``measure``'s ``aperture=`` as :class:`Aperture` s in pixels.

    A radius is a plain number (pixels), an astropy Quantity in pixels (``u.pix``), an angle
    (``2 * u.arcsec``) or a length (``5 * u.um``), or a string astropy reads as one
    (``"2 arcsec"``). An angle or a length is converted with the image's own pixel scale
    (:func:`sciconv.io.image_pixel_scale`: its celestial WCS, its µm per pixel; else the scale
    of ``wcs``), so the aperture is the same size on the sky (or the slide) in every band and
    night; a circle on the sky is an ellipse on non-square or skewed pixels. The scale is the
    image's linear one (a distortion's few per cent over a chip are not followed).

    Parameters
    ----------
    aperture : float, Quantity, str or sequence of them, or None
        One radius or several (a Quantity array too).
    image : GridImage, astropy.nddata.NDData or array_like, optional
        The measured image, whose pixel scale converts angles and lengths.
    wcs : astropy.wcs.WCS, optional
        Its WCS, used when ``image`` carries no scale of its own.

    Returns
    -------
    list of Aperture
        Empty for None.

    Raises
    ------
    ConfigError
        A radius that is not positive and finite, of another unit, given twice, or an angle or
        length for an image without such a pixel scale (no WCS, no µm per pixel).

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.wcs import WCS
    >>> from sciconv.postprocess._apertures import parse_apertures
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> w.wcs.cdelt = [-0.25 / 3600, 0.25 / 3600]
    >>> [(ap.tag, round(ap.a, 6)) for ap in parse_apertures([2 * u.arcsec, 6], wcs=w)]
    [('2arcsec', 8.0), ('6pix', 6.0)]
    """
    from astropy import units as u

    if aperture is None:
        return []
    if isinstance(aperture, u.Quantity) and aperture.ndim == 1:
        radii = list(aperture)
    elif isinstance(aperture, Sequence) and not isinstance(aperture, str):
        radii = list(aperture)
    else:
        radii = [aperture]
    if not radii:
        raise ConfigError("aperture must be a radius or a sequence of radii; got an empty one")
    scale = None
    out: list[Aperture] = []
    for radius in radii:
        value, unit = _radius(radius)
        given = f"{value:g} {'pix' if unit is None else unit.to_string()}"
        if unit is None:
            a = b = value
            theta = 0.0
        else:
            if scale is None:
                scale = image_pixel_scale(image) or PixelScale.from_wcs(wcs)
            a, b, theta = _on_pixels(value * unit, scale, given)
        tag = given.replace(" ", "").replace(".", "p").replace("-", "m").replace("+", "")
        if any(ap.tag == tag for ap in out):
            raise ConfigError(f"aperture: the radius {given} is given twice; got {aperture!r}")
        out.append(Aperture(given, tag, float(a), float(b), float(theta)))
    return out


def _radius(radius):
    """``(value, unit)`` of one radius: the unit None for pixels."""
    from astropy import units as u

    text = radius
    if isinstance(radius, str):
        try:
            radius = u.Quantity(radius)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"aperture: {text!r} is not a radius (write e.g. '2 arcsec', '5 um' or '6')"
            ) from exc
    unit = None
    if isinstance(radius, u.Quantity):
        if radius.ndim:
            raise ConfigError(f"aperture: one radius per entry; got {text!r}")
        unit = None if radius.unit in (u.pix, u.dimensionless_unscaled) else radius.unit
        kind = None if unit is None else unit.physical_type
        if kind not in (None, "angle", "length"):
            raise ConfigError(
                f"aperture must be in pixels, an angle (arcsec) or a length (um); got {text!r} "
                f"({kind})"
            )
        radius = radius.value
    ok = not isinstance(radius, bool) and isinstance(radius, (int, float, np.number))
    if not ok or not np.isfinite(radius) or radius <= 0:
        raise ConfigError(f"aperture radii must be positive finite numbers; got {text!r}")
    return float(radius), unit


def _on_pixels(radius, scale: PixelScale | None, given: str) -> tuple[float, float, float]:
    """The semi-axes (pixels) and angle of a circle of ``radius`` (angle or length) on pixels of
    ``scale``: ``|J p| = radius`` for the pixel offsets ``p`` (``J`` the scale's Jacobian)."""
    kind = radius.unit.physical_type
    if scale is None or parse_unit(scale.unit).physical_type != kind:
        has = "no pixel scale" if scale is None else f"a pixel scale in {scale.unit}"
        where = "sky (a celestial WCS" if kind == "angle" else "sample (µm per pixel"
        raise ConfigError(
            f"aperture radius {given} is an {kind} but the image has {has}: an {kind} radius needs "
            f"the image's {where}: a GridImage read from a file that has one, or wcs=); give "
            "the radius in pixels (a plain number) instead"
        )
    r = float(radius.to_value(parse_unit(scale.unit)))
    eigen, vectors = np.linalg.eigh(scale.jacobian.T @ scale.jacobian)  # ascending
    a, b = r / math.sqrt(eigen[0]), r / math.sqrt(eigen[1])
    return a, b, math.atan2(vectors[1, 0], vectors[0, 0])


def add_aperture_columns(
    table,
    apertures: Sequence[Aperture],
    image,
    positions,
    *,
    background=None,
    error=None,
    bad=None,
    correlation=None,
    unit=None,
):
    """Add fixed-aperture fluxes at ``positions`` to a catalog (:data:`APERTURE_COLUMNS`).

    For each aperture: ``flux_aper`` (shape (N, C) for C > 1 channels, as ``flux``), the
    photutils ``"exact"`` sum of the pixels minus the ``background``'s sum over the same
    weighted pixels; ``flux_aper_err`` with an ``error``: the pixel errors in quadrature, times
    ``sqrt(R)`` of the aperture's area under a ``correlation`` (``measure``'s
    ``noise_correlation``); ``flag_aper_masked`` and ``aper_masked_fraction``: the share of the
    aperture's area on the image left out as ``bad`` or non-finite in any channel (left out
    of every channel's sum; a flux with all of it left out is NaN); ``flag_aper_edge``: the
    aperture reaches off the image (its flux is the part on it). With several apertures each
    column name takes the radius' tag (:data:`APERTURE_COLUMNS`). ``meta["APERTURE"]`` says
    the radii in pixels and where the apertures sit.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog (one row per position); modified in place and returned.
    apertures : sequence of Aperture
        From :func:`parse_apertures`.
    image : ndarray, shape (H, W) or (H, W, C)
        The pixels (float; NaN where unknown).
    positions : tuple of two array_like of shape (N,)
        ``(x, y)`` of each row, 0-based pixel centres.
    background, error : ndarray of shape (H, W, 1 or C) or (1, 1, 1), or None, optional
        The background map and the 1-sigma pixel errors in the image's unit.
    bad : ndarray of bool, shape (H, W), optional
        Pixels left out (True = bad).
    correlation : NoiseCorrelation or float, optional
        The noise correlation ``measure`` applies to ``flux_err``.
    unit : astropy.units.Unit, optional
        The image's unit, given to the flux columns.

    Returns
    -------
    astropy.table.Table
        ``table``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from sciconv.postprocess._apertures import add_aperture_columns, parse_apertures
    >>> image = np.ones((20, 20)); image[0, :] = np.nan
    >>> t = add_aperture_columns(Table({"label": [1, 2]}), parse_apertures(3), image,
    ...                          ([10.0, 10.0], [10.0, 1.0]), background=np.ones((1, 1, 1)))
    >>> t["flux_aper"].round(6).tolist(), t["flag_aper_masked"].tolist()
    ([0.0, 0.0], [False, True])
    >>> t["flag_aper_edge"].tolist()
    [False, True]
    """
    from photutils.aperture import aperture_photometry

    data = np.asarray(image, dtype=np.float64)
    data = data[..., None] if data.ndim == 2 else data
    h, w, channels = data.shape
    left_out = ~np.isfinite(data).all(axis=-1)
    if bad is not None:
        left_out |= np.asarray(bad, dtype=bool)
    xy = np.column_stack([np.asarray(p, dtype=np.float64) for p in positions]).reshape(-1, 2)
    n = len(xy)
    several = len(apertures) > 1
    said = []
    for ap in apertures:
        names = {base: _named(base, ap.tag if several else None) for base in APERTURE_COLUMNS}
        flux = np.full((n, channels), np.nan)
        err = np.full((n, channels), np.nan)
        on_image = kept = np.zeros(n)
        if n:
            region = ap.region(xy)
            with caught("ignore"):  # photutils' NoOverlapWarning: the flag says it
                on_image = np.asarray(region.area_overlap(left_out), dtype=np.float64)
                kept = np.asarray(region.area_overlap(left_out, mask=left_out), np.float64)
                for k in range(channels):
                    sums = aperture_photometry(
                        data[..., k],
                        region,
                        error=_plane(error, k, (h, w)),
                        mask=left_out,
                        method="exact",
                    )
                    flux[:, k] = np.asarray(sums["aperture_sum"], dtype=np.float64)
                    if error is not None:
                        err[:, k] = np.asarray(sums["aperture_sum_err"], dtype=np.float64)
                    if background is not None:
                        under = aperture_photometry(
                            _plane(background, k, (h, w)), region, mask=left_out, method="exact"
                        )
                        flux[:, k] -= np.asarray(under["aperture_sum"], dtype=np.float64)
        none_kept = ~(kept > 0)
        flux[none_kept] = err[none_kept] = np.nan  # all left out: no flux (measure's rule)
        correlated = error is not None and _applied(correlation)
        if correlated and n:
            err *= np.sqrt(_ratio(correlation, kept, channels))
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(on_image > 0, 1.0 - kept / on_image, 1.0)
        fraction = np.clip(np.round(fraction, 12), 0.0, 1.0)  # exact overlaps' rounding
        columns = {
            "flux_aper": flux[:, 0] if channels == 1 else flux,
            "flag_aper_masked": fraction > 0,
            "aper_masked_fraction": fraction,
            "flag_aper_edge": on_image < ap.area * (1.0 - _ROUND),
        }
        if error is not None:
            columns["flux_aper_err"] = err[:, 0] if channels == 1 else err
        for base in APERTURE_COLUMNS:
            if base not in columns:
                continue
            name = names[base]
            table[name] = columns[base]
            ucd, is_flux, description = APERTURE_COLUMNS[base]
            if base == "flux_aper" and background is None:
                description = _NO_BACKGROUND
            if base == "flux_aper_err" and correlated:
                description = _CORRELATED
            table[name].meta["ucd"] = ucd
            table[name].description = f"{description}, r = {ap.given}"[:60]
            if is_flux and unit is not None:
                table[name].unit = unit
        said.append(f"{names['flux_aper']}: {ap.describe()}")
    table.meta["APERTURE"] = (
        "; ".join(said) + " (photutils exact overlap at the weighted centroid, masked and NaN "
        "pixels left out)"
    )
    return table


def _named(base: str, tag: str | None) -> str:
    """``base`` with the radius' ``tag`` after its ``aper`` (None: ``base``)."""
    return base if tag is None else base.replace("aper", f"aper_{tag}", 1)


def _plane(values, k: int, shape):
    """Channel ``k`` of a per-pixel array (``(H, W, 1 or C)`` or ``(1, 1, 1)``) as ``(H, W)``,
    or None."""
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    return np.broadcast_to(values[..., min(k, values.shape[-1] - 1)], shape)


def _applied(correlation) -> bool:
    """Whether ``correlation`` changes any error (a number, or a NoiseCorrelation applied)."""
    if isinstance(correlation, NoiseCorrelation):
        return bool(correlation.applied.any())
    return correlation is not None


def _ratio(correlation, area, channels: int) -> np.ndarray:
    """The variance ratio ``R`` of sums over ``area`` pixels, ``(N, C)``: a
    NoiseCorrelation's ``R(sqrt(area))`` (1 where not applied), or the number given."""
    if isinstance(correlation, NoiseCorrelation):
        return correlation.ratio(area)
    return np.full((len(area), channels), float(correlation))
