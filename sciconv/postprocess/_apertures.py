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

The sums are photutils' (:func:`photutils.aperture.aperture_photometry`'s, ``method="exact"``:
each pixel weighted by its overlap with the circle, from the aperture's masks, built once per
radius); the background is subtracted as ``flux``'s is, the background map summed over the same
weighted pixels. The columns are converted to flux densities (Jy) as ``flux`` is, on maps in
``MJy/sr`` or ``Jy/beam`` (``flux_density_aper``: :mod:`sciconv.postprocess._beam`), and get a
correlated-noise factor as ``flux_err`` does (:func:`scale_aperture_errors`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from sciconv.errors import ConfigError
from sciconv.io import PixelScale, image_pixel_scale
from sciconv.io._scale import parse_unit
from sciconv.postprocess._noise_correlation import NoiseCorrelation

__all__ = [
    "APERTURE_COLUMNS",
    "Aperture",
    "ApertureColumns",
    "add_aperture_columns",
    "aperture_column_sets",
    "aperture_radius",
    "parse_apertures",
    "scale_aperture_errors",
]

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
        value, unit = aperture_radius(radius)
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


def aperture_radius(radius):
    """One aperture radius as :func:`parse_apertures` reads it, checked without an image.

    Parameters
    ----------
    radius : float, Quantity or str
        A number (pixels), a Quantity in pixels, an angle or a length, or a string astropy
        reads as one (``"2 arcsec"``, ``"2arcsec"``, ``"6"``).

    Returns
    -------
    value : float
        The radius, positive and finite.
    unit : astropy.units.UnitBase or None
        Its angle or length unit; None for pixels.

    Raises
    ------
    ConfigError
        Not a radius: unreadable, not positive and finite, or in another kind of unit.

    Examples
    --------
    >>> from sciconv.postprocess import aperture_radius
    >>> aperture_radius("2arcsec")[0], str(aperture_radius("2arcsec")[1]), aperture_radius(6)
    (2.0, 'arcsec', (6.0, None))
    """
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
    unit=None,
):
    """Add fixed-aperture fluxes at ``positions`` to a catalog (:data:`APERTURE_COLUMNS`).

    For each aperture: ``flux_aper`` (shape (N, C) for C > 1 channels, as ``flux``), the
    photutils ``"exact"`` sum of the pixels minus the ``background``'s sum over the same
    weighted pixels; ``flux_aper_err`` with an ``error``: the pixel errors in quadrature;
    ``flag_aper_masked`` and ``aper_masked_fraction``: the share of the aperture's area on the
    image left out as ``bad`` or non-finite in any channel (left out of every channel's sum; a
    flux with all of it left out is NaN); ``flag_aper_edge``: the aperture reaches off the image
    (its flux is the part on it). With several apertures each column name takes the radius'
    tag (:data:`APERTURE_COLUMNS`). ``meta["APERTURE"]`` says the radii in pixels and where the
    apertures sit; each ``flux_aper`` column's ``meta["aperture_area"]`` holds its aperture's
    area in pixels, from which :func:`scale_aperture_errors` takes the correlated-noise ratio.

    Each aperture's photutils masks are built once and their weights serve every channel, the
    error, the background and the left-out pixels (a constant background is its value times
    the weights kept; QA: four photutils passes per radius and channel took 24 s for 1e5
    objects and two radii).

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
    background, error : ndarray of shape (H, W, 1 or C) or (1, 1, 1 or C), or None, optional
        The background map and the 1-sigma pixel errors in the image's unit.
    bad : ndarray of bool, shape (H, W), optional
        Pixels left out (True = bad).
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
    data = np.asarray(image, dtype=np.float64)
    data = data[..., None] if data.ndim == 2 else data
    channels = data.shape[-1]
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
            on_image, kept, flux, err = _sums(ap.region(xy), data, left_out, background, error)
        none_kept = ~(kept > 0)
        flux[none_kept] = err[none_kept] = np.nan  # all left out: no flux (measure's rule)
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
            table[name].meta["ucd"] = ucd
            table[name].description = f"{description}, r = {ap.given}"[:60]
            if is_flux and unit is not None:
                table[name].unit = unit
        table[names["flux_aper"]].meta["aperture_area"] = ap.area
        said.append(f"{names['flux_aper']}: {ap.describe()}")
    table.meta["APERTURE"] = (
        "; ".join(said) + " (photutils exact overlap at the weighted centroid, masked and NaN "
        "pixels left out)"
    )
    return table


def _named(base: str, tag: str | None) -> str:
    """``base`` with the radius' ``tag`` after its ``aper`` (None: ``base``)."""
    return base if tag is None else base.replace("aper", f"aper_{tag}", 1)


#: Aperture pixels times planes gathered at once by :func:`_sums` (8 MB of float64 a plane).
_CHUNK = 1 << 20


def _sums(region, data, left_out, background, error):
    """``(on_image, kept, flux, err)`` of a photutils aperture (N positions) on ``data``
    (``(H, W, C)``): the weights on the image, those on pixels not ``left_out``, the weighted
    sum of each channel less the background's and the errors' quadrature sum (photutils'
    ``aperture_photometry`` with ``method="exact"``, ``mask=left_out``), ``(N,)``, ``(N,)``,
    ``(N, C)``, ``(N, C)`` (NaN without ``error``). The masks are built once, and all
    positions of one cutout shape are summed together."""
    h, w, channels = data.shape
    masks = region.to_mask(method="exact")
    masks = [masks] if region.isscalar else masks
    n = len(masks)
    on_image, kept = np.zeros(n), np.zeros(n)
    flux, under, var = np.zeros((n, channels)), np.zeros((n, channels)), np.zeros((n, channels))
    sky, sky_map = _per_pixel(background)
    noise, noise_map = _per_pixel(error)
    pixels, bad = data.reshape(-1, channels), left_out.ravel()
    shapes = np.array([m.data.shape for m in masks], dtype=np.intp)
    corners = np.array([(m.bbox.iymin, m.bbox.ixmin) for m in masks], dtype=np.intp)
    keys = shapes[:, 0] * (shapes[:, 1].max() + 1) + shapes[:, 1]
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.diff(keys[order], prepend=-1))
    for members in np.split(order, starts[1:]):
        ny, nx = shapes[members[0]]
        step = max(1, _CHUNK // (ny * nx * (channels + 2)))
        for start in range(0, len(members), step):
            idx = members[start : start + step]
            weights = np.stack([masks[i].data for i in idx])
            rows = corners[idx, :1] + np.arange(ny)
            cols = corners[idx, 1:] + np.arange(nx)
            inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None]
            flat = (np.clip(rows, 0, h - 1) * w)[:, :, None] + np.clip(cols, 0, w - 1)[:, None]
            overlap = np.where(inside, weights, 0.0).sum(axis=(1, 2))
            on_image[idx] = np.where(inside.any(axis=(1, 2)), overlap, np.nan)  # photutils'
            use = (inside & (weights > 0) & ~bad[flat]).reshape(len(idx), -1)
            weight = np.where(use, weights.reshape(len(idx), -1), 0.0)
            flat = flat.reshape(len(idx), -1)
            kept[idx] = weight.sum(axis=1)
            flux[idx] = _weighted(weight, pixels, flat, use)
            if sky_map is not None:
                under[idx] = _weighted(weight, sky_map, flat, use)
            if noise_map is not None:
                var[idx] = _weighted(weight, noise_map, flat, use, power=2)
    if sky is not None:  # a constant: its value times the weights kept
        under = np.broadcast_to(kept[:, None] * sky, (n, channels))
    if noise is not None:
        var = np.broadcast_to(kept[:, None] * noise**2, (n, channels))
    err = np.sqrt(var) if error is not None else np.full((n, channels), np.nan)
    return on_image, kept, flux - under, err


def _per_pixel(values):
    """``(constant, None)`` of a ``(1, 1, 1 or C)`` array (its values, ``(1 or C,)``),
    ``(None, pixels)`` of an ``(H, W, 1 or C)`` one (``(H * W, 1 or C)``), or ``(None, None)``."""
    if values is None:
        return None, None
    values = np.asarray(values, dtype=np.float64)
    if values.shape[:2] == (1, 1):
        return values[0, 0], None
    return None, values.reshape(-1, values.shape[-1])


def _weighted(weight, values, flat, use, power: int = 1):
    """``sum(weight * values**power)`` over each row's ``use``d pixels ``flat`` (indices into
    ``values``, ``(H * W, P)``), ``(K, P)``."""
    got = values[flat] if power == 1 else values[flat] ** power
    with np.errstate(invalid="ignore"):
        got = np.where(use[..., None], got, 0.0)  # left-out pixels (NaN) add nothing
    return np.einsum("km,kmp->kp", weight, got)


@dataclasses.dataclass(frozen=True)
class ApertureColumns:
    """The columns of one aperture in a catalog (:func:`aperture_column_sets`).

    Parameters
    ----------
    flux, error, masked_fraction : str
        ``flux_aper``, ``flux_aper_err`` and ``aper_masked_fraction`` (with the radius' tag).
    area : float or None
        The aperture's area in pixels (the flux column's ``meta["aperture_area"]``), None
        where the column lost it.

    Examples
    --------
    >>> ApertureColumns("flux_aper", "flux_aper_err", "aper_masked_fraction", 28.27).error
    'flux_aper_err'
    """

    flux: str
    error: str
    masked_fraction: str
    area: float | None


def aperture_column_sets(table) -> list[ApertureColumns]:
    """The aperture columns :func:`add_aperture_columns` wrote to ``table``, one set per
    aperture, found by their names (``flux_aper``, ``flux_aper_<tag>``): what
    :func:`~sciconv.postprocess.add_surface_brightness_columns`,
    :func:`~sciconv.postprocess.add_beam_columns` and
    :func:`~sciconv.postprocess.apply_noise_correlation` treat as ``flux`` and ``flux_err``.

    Parameters
    ----------
    table : astropy.table.Table
        A catalog.

    Returns
    -------
    list of ApertureColumns
        In the table's column order; empty without aperture columns.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> t = add_aperture_columns(Table({"label": [1]}), parse_apertures([2, 3]),
    ...                          np.ones((9, 9)), ([4.0], [4.0]))
    >>> [(s.flux, round(s.area, 2)) for s in aperture_column_sets(t)]
    [('flux_aper_2pix', 12.57), ('flux_aper_3pix', 28.27)]
    >>> aperture_column_sets(t)[0].error
    'flux_aper_2pix_err'
    """
    sets = []
    for name in table.colnames:
        if name != "flux_aper" and not (name.startswith("flux_aper_") and name[-4:] != "_err"):
            continue
        tag = name[len("flux_aper_") :] or None
        area = table[name].meta.get("aperture_area")
        sets.append(
            ApertureColumns(
                name,
                _named("flux_aper_err", tag),
                _named("aper_masked_fraction", tag),
                None if area is None else float(area),
            )
        )
    return sets


def scale_aperture_errors(table, correlation, *, check: bool = False) -> None:
    """Multiply each aperture's ``flux_aper*_err`` (and the ``flux_density_aper*_err`` made
    from it) by ``sqrt(R)`` at the area the aperture kept, its ``meta["aperture_area"]`` less
    its ``aper_masked_fraction`` (an aperture reaching off the image, flagged, is taken
    whole): :func:`~sciconv.postprocess.apply_noise_correlation`'s step for apertures.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog; modified in place.
    correlation : NoiseCorrelation or float
        The correlation (applied channels only) or the variance ratio ``R`` of every sum.
    check : bool, optional
        Only check that every aperture error column has its area (nothing changed). Default
        False.

    Raises
    ------
    ConfigError
        An aperture error column whose flux column lost ``meta["aperture_area"]`` (a catalog
        read back from a file that drops column meta), or without ``aper_masked_fraction``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> t = add_aperture_columns(Table({"label": [1]}), parse_apertures(3), np.ones((9, 9)),
    ...                          ([4.0], [4.0]), error=np.ones((1, 1, 1)))
    >>> before = float(t["flux_aper_err"][0])
    >>> scale_aperture_errors(t, 4.0)
    >>> round(float(t["flux_aper_err"][0]) / before, 12)
    2.0
    """
    from sciconv.postprocess._beam import density_column

    sets = [s for s in aperture_column_sets(table) if s.error in table.colnames]
    lost = [s.error for s in sets if s.area is None or s.masked_fraction not in table.colnames]
    if lost:
        raise ConfigError(
            f"cannot put a correlated-noise factor on {', '.join(lost)}: the aperture's area "
            "(the flux column's meta 'aperture_area', and its aper_masked_fraction) is not in "
            "the catalog; measure it with noise_correlation= instead"
        )
    if check:
        return
    for s in sets:
        kept = s.area * (1.0 - np.asarray(table[s.masked_fraction], dtype=np.float64))
        for name in (s.error, density_column(s.error)):
            if name in table.colnames:
                col = table[name]
                ratio = _ratio(correlation, kept, col.shape[1] if col.ndim == 2 else 1)
                col[:] = np.asarray(col, dtype=np.float64) * np.sqrt(
                    ratio if col.ndim == 2 else ratio[:, 0]
                )
        said = str(table[s.error].description or "")
        radius = said[said.find(", r = ") :] if ", r = " in said else ""
        table[s.error].description = f"{_CORRELATED}{radius}"[:60]


def _ratio(correlation, area, channels: int) -> np.ndarray:
    """The variance ratio ``R`` of sums over ``area`` pixels, ``(N, C)``: a
    NoiseCorrelation's ``R(sqrt(area))`` (1 where not applied), or the number given."""
    if isinstance(correlation, NoiseCorrelation):
        return correlation.ratio(area)
    return np.full((len(area), channels), float(correlation))
