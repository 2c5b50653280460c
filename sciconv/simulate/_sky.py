"""Sky images: a TAN WCS, cutout FITS headers and a large field of stars and galaxies."""

from __future__ import annotations

import math
import numbers

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from sciconv._validation import standardize_tuple
from sciconv.errors import ConfigError
from sciconv.simulate._render import (
    EXPTIME,
    GAIN,
    READ_NOISE,
    galaxy,
    observe,
    psf_kernel,
    star,
    validate_count,
    validate_positive,
    validate_seed,
)

# --------------------------------------------------------------------------------------------------
# WCS


def tan_wcs(
    shape: tuple[int, int],
    *,
    ra: float,
    dec: float,
    pixel_scale: float = 0.2,
    rotation: float = 0.0,
) -> WCS:
    """A celestial TAN (gnomonic) WCS centred on (ra, dec), north up and east left at rotation 0.

    Parameters
    ----------
    shape : (H, W)
        Image shape; the reference pixel is its centre.
    ra, dec : float
        Sky position of the image centre, degrees (ICRS).
    pixel_scale : float, optional
        Arcseconds per pixel. Default 0.2.
    rotation : float, optional
        Position angle of the y axis east of north, degrees. Default 0.

    Examples
    --------
    >>> from sciconv.simulate import tan_wcs
    >>> w = tan_wcs((64, 64), ra=150.0, dec=2.0)
    >>> [round(float(v), 6) for v in w.pixel_to_world_values(31.5, 31.5)]
    [150.0, 2.0]
    """
    h, w = standardize_tuple(tuple(shape), 2, name="shape")
    if not (isinstance(ra, numbers.Real) and isinstance(dec, numbers.Real) and -90 <= dec <= 90):
        raise ConfigError(
            f"ra/dec must be numbers with -90 <= dec <= 90; got ra={ra!r}, dec={dec!r}"
        )
    scale = validate_positive(pixel_scale, "pixel_scale") / 3600.0
    rot = math.radians(float(rotation))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [float(ra) % 360.0, float(dec)]
    wcs.wcs.crpix = [(w + 1) / 2.0, (h + 1) / 2.0]  # FITS is 1-based
    wcs.wcs.cd = scale * np.array([[-math.cos(rot), math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.set()
    return wcs


def cutout_header(params: dict, index: int, *, size: int = 64, class_name: str | None = None):
    """FITS header for cutout ``index`` of :func:`galaxy_cutouts`: TAN WCS plus observation cards.

    Cards: the WCS (centred on ``params["ra"][index]``, ``params["dec"][index]``), ``OBJECT``,
    ``EXPTIME``, ``GAIN``, ``RDNOISE``, ``BUNIT``, ``SKYLEVEL``, ``PSFFWHM`` and the truth
    (``SIMCLASS``, ``SERSIC_N``, ``R_EFF``, ``SIMFLUX``, ``ELLIP``, ``THETA``).

    Parameters
    ----------
    params : dict
        The truth table :func:`galaxy_cutouts` returns (arrays of ``ra``, ``dec``, ``sky``,
        ``psf_fwhm``, ``sersic_n``, ``r_eff``, ``flux``, ``ellip``, ``theta``).
    index : int
        Which cutout's row of ``params``.
    size : int, optional
        Side of the square cutout in pixels (its WCS reference pixel is the centre). Default 64.
    class_name : str, optional
        Recorded as ``SIMCLASS``; default None leaves that card out.

    Returns
    -------
    astropy.io.fits.Header

    Examples
    --------
    >>> from sciconv.simulate import cutout_header, galaxy_cutouts
    >>> _, _, names, params = galaxy_cutouts(1, size=32, seed=0)
    >>> hdr = cutout_header(params, 0, size=32, class_name=names[0])
    >>> hdr["CTYPE1"], hdr["BUNIT"], hdr["SIMCLASS"]
    ('RA---TAN', 'adu', 'elliptical')
    """
    i = int(index)
    wcs = tan_wcs((size, size), ra=float(params["ra"][i]), dec=float(params["dec"][i]))
    hdr = fits.Header()
    hdr["OBJECT"] = (f"SIM-{i:05d}", "simulated source (sciconv.simulate)")
    hdr["TELESCOP"] = ("SIMULATED", "sciconv.simulate.galaxy_cutouts")
    hdr["EXPTIME"] = (EXPTIME, "[s] exposure time")
    hdr["GAIN"] = (GAIN, "[e-/adu] detector gain")
    hdr["RDNOISE"] = (READ_NOISE, "[e-] read noise")
    hdr["BUNIT"] = ("adu", "raw counts, sky not subtracted")
    hdr["SKYLEVEL"] = (round(float(params["sky"][i]), 3), "[adu] sky background per pixel")
    hdr["PSFFWHM"] = (round(float(params["psf_fwhm"][i]), 4), "[pix] Moffat PSF FWHM")
    hdr.update(wcs.to_header())
    if class_name is not None:
        hdr["SIMCLASS"] = (class_name, "true morphology class")
    hdr["SERSIC_N"] = (round(float(params["sersic_n"][i]), 5), "true Sersic index (0: point)")
    hdr["R_EFF"] = (round(float(params["r_eff"][i]), 5), "[pix] true half-light radius")
    hdr["SIMFLUX"] = (round(float(params["flux"][i]), 3), "[adu] true total flux")
    hdr["ELLIP"] = (round(float(params["ellip"][i]), 5), "true ellipticity 1 - b/a")
    hdr["THETA"] = (round(float(params["theta"][i]), 5), "[rad] true major-axis angle from +x")
    return hdr


# --------------------------------------------------------------------------------------------------
# sky field


def _add_stamp(image: np.ndarray, stamp: np.ndarray, y0: int, x0: int) -> None:
    """Add ``stamp`` with its top-left corner at (y0, x0), clipped to the image."""
    h, w = image.shape
    sh, sw = stamp.shape
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + sh, h), min(x0 + sw, w)
    if ya < yb and xa < xb:
        image[ya:yb, xa:xb] += stamp[ya - y0 : yb - y0, xa - x0 : xb - x0]


def sky_field(
    shape: tuple[int, int] = (2048, 2048),
    *,
    seed: int = 0,
    n_stars: int = 400,
    n_galaxies: int = 250,
    ra: float = 150.1,
    dec: float = 2.2,
    pixel_scale: float = 0.2,
    psf_fwhm: float = 3.0,
    sky: float = 100.0,
    gain: float = GAIN,
    read_noise: float = READ_NOISE,
) -> tuple[np.ndarray, WCS, Table]:
    """A large simulated sky image of stars and galaxies, with its TAN WCS and truth catalog.

    Stars have a power-law flux distribution (300 to 3e5 ADU); galaxies are PSF-convolved Sérsic
    profiles (n 0.7-4.5, r_eff 1.5-10 px, flux 1e3-1e5 ADU). Each source is rendered in a postage
    stamp sized to its extent and added in, so the cost scales with the number of sources, not with
    the image area; a 2048 x 2048 field takes about a second.

    Parameters
    ----------
    shape : (H, W), optional
        Image shape. Default (2048, 2048).
    seed : int, optional
        Random seed.
    n_stars, n_galaxies : int, optional
        Number of sources of each kind. Defaults 400 and 250.
    ra, dec : float, optional
        Field centre, degrees. Default (150.1, 2.2), the COSMOS field.
    pixel_scale : float, optional
        Arcseconds per pixel. Default 0.2.
    psf_fwhm : float, optional
        Moffat (alpha 3.5) PSF FWHM, pixels. Default 3.0.
    sky, gain, read_noise : float, optional
        Sky level (ADU/pixel), gain (e-/ADU), read noise (e-).

    Returns
    -------
    image : ndarray of float32, shape (H, W)
        Raw counts, digitized to integer ADU by a 16-bit converter (0-65535; bright stars saturate).
    wcs : astropy.wcs.WCS
        Celestial TAN WCS centred on (ra, dec).
    truth : astropy.table.Table
        One row per source: ``id``, ``x``, ``y`` (0-based pixels), ``ra``, ``dec`` (degrees, from
        ``wcs``), ``flux`` (total ADU), ``kind`` ("star" or "galaxy"), ``r_eff``, ``sersic_n``,
        ``ellip``, ``theta``.

    Examples
    --------
    >>> from sciconv.simulate import sky_field
    >>> image, wcs, truth = sky_field((256, 256), n_stars=10, n_galaxies=5, seed=1)
    >>> image.shape, len(truth), wcs.has_celestial
    ((256, 256), 15, True)
    """
    h, w = standardize_tuple(tuple(shape), 2, name="shape")
    if min(h, w) < 64:
        raise ConfigError(f"shape must be at least (64, 64); got {(h, w)}")
    n_stars = validate_count(n_stars, "n_stars", minimum=0)
    n_galaxies = validate_count(n_galaxies, "n_galaxies", minimum=0)
    psf_fwhm = validate_positive(psf_fwhm, "psf_fwhm")
    sky = validate_positive(sky, "sky")
    gain = validate_positive(gain, "gain")
    read_noise = validate_positive(read_noise, "read_noise")
    rng = np.random.default_rng(validate_seed(seed))
    wcs = tan_wcs((h, w), ra=ra, dec=dec, pixel_scale=pixel_scale)
    alpha = 3.5
    margin = 8
    model = np.zeros((h, w), dtype=np.float64)

    n = n_stars + n_galaxies
    xs = rng.uniform(margin, w - 1 - margin, n)
    ys = rng.uniform(margin, h - 1 - margin, n)
    # stars: N(>F) ~ F^-0.6 between 300 and 3e5 ADU
    u = rng.uniform(0.0, 1.0, n_stars)
    star_flux = np.minimum(300.0 * (1.0 - u * (1 - 1000.0**-0.6)) ** (-1 / 0.6), 3e5)
    gal = {
        "flux": 10 ** rng.uniform(3.0, 5.0, n_galaxies),
        "r_eff": rng.uniform(1.5, 10.0, n_galaxies),
        "sersic_n": rng.uniform(0.7, 4.5, n_galaxies),
        "ellip": rng.uniform(0.0, 0.6, n_galaxies),
        "theta": rng.uniform(0.0, math.pi, n_galaxies),
    }
    oversample = 2
    kernel = psf_kernel(psf_fwhm, alpha, oversample)

    for i in range(n_stars):
        half = int(np.clip(math.ceil(3 * psf_fwhm * (star_flux[i] / 1e3) ** 0.25), 8, 48))
        ix, iy = round(xs[i]), round(ys[i])
        stamp = star(
            (2 * half + 1, 2 * half + 1), xs[i], ys[i], star_flux[i], psf_fwhm, alpha,
            oversample=oversample, origin=(iy - half, ix - half),
        )  # fmt: skip
        _add_stamp(model, stamp, iy - half, ix - half)
    for j in range(n_galaxies):
        i = n_stars + j
        half = int(np.clip(math.ceil(4 * gal["r_eff"][j] + 3 * psf_fwhm), 12, 64))
        ix, iy = round(xs[i]), round(ys[i])
        p = {k: float(v[j]) for k, v in gal.items()}
        p.update(x=xs[i], y=ys[i])
        stamp = galaxy(
            (2 * half + 1, 2 * half + 1), p, kernel, oversample=oversample,
            origin=(iy - half, ix - half),
        )  # fmt: skip
        _add_stamp(model, stamp, iy - half, ix - half)

    image = np.clip(observe(model, sky, gain, read_noise, rng), 0.0, 65535.0)  # 16-bit ADC
    ra_t, dec_t = wcs.pixel_to_world_values(xs, ys)
    truth = Table(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "x": xs,
            "y": ys,
            "ra": np.asarray(ra_t, dtype=np.float64),
            "dec": np.asarray(dec_t, dtype=np.float64),
            "flux": np.concatenate([star_flux, gal["flux"]]),
            "kind": np.array(["star"] * n_stars + ["galaxy"] * n_galaxies, dtype="U6"),
            "r_eff": np.concatenate([np.zeros(n_stars), gal["r_eff"]]),
            "sersic_n": np.concatenate([np.zeros(n_stars), gal["sersic_n"]]),
            "ellip": np.concatenate([np.zeros(n_stars), gal["ellip"]]),
            "theta": np.concatenate([np.zeros(n_stars), gal["theta"]]),
        }
    )
    for col, unit in (("x", "pix"), ("y", "pix"), ("ra", "deg"), ("dec", "deg"), ("r_eff", "pix")):
        truth[col].unit = unit
    truth["flux"].unit = "adu"
    truth["theta"].unit = "rad"
    truth.meta.update(
        {"ra_center": float(ra), "dec_center": float(dec), "pixel_scale_arcsec": pixel_scale,
         "psf_fwhm_pix": psf_fwhm, "sky_adu": sky, "gain": gain, "read_noise": read_noise,
         "seed": int(seed), "origin": "0-based pixel coordinates, integer at pixel centres"}
    )  # fmt: skip
    return image, wcs, truth
