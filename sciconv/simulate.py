"""Seeded synthetic telescope and microscopy images with ground truth.

Everything here is deterministic for a given ``seed`` and physically sensible enough for tests,
notebooks and the demo:

- :func:`galaxy_cutouts`: small telescope cutouts of three morphology classes (Sérsic n~4
  ellipticals, n~1 disks with two logarithmic spiral arms and a small bulge, point sources),
  convolved with a Moffat PSF, on a sky background, with Poisson and read noise, digitized to ADU;
- :func:`sky_field`: a large field (2048 x 2048 by default) of stars and galaxies with a TAN WCS
  and a truth catalog (pixel and RA/Dec); each source is rendered in its own postage stamp, so the
  whole field takes about a second;
- :func:`nuclei`: fluorescence-microscopy-like nuclei (touching and overlapping, irregular,
  textured, blurred, Poisson noise) with int32 instance labels, optionally with a second cytoplasm
  channel.

Profiles come from :mod:`astropy.modeling` (``Sersic2D``, ``Moffat2D``). Pixel coordinates are
0-based with integer values at pixel centres (numpy and ``WCS.pixel_to_world`` convention).

Examples
--------
>>> images, labels, class_names, params = galaxy_cutouts(2, size=32, seed=1)
>>> images.shape, images.dtype, class_names
((6, 32, 32, 1), dtype('float32'), ['elliptical', 'point', 'spiral'])
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from astropy.io import fits
from astropy.modeling.models import Moffat2D, Sersic2D
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage, signal
from scipy.special import gamma as gamma_fn
from scipy.special import gammaincinv

from sciconv._validation import standardize_tuple
from sciconv.errors import ConfigError

__all__ = [
    "GALAXY_CLASSES",
    "GALAXY_SHAPES",
    "cutout_header",
    "galaxy_cutouts",
    "nuclei",
    "sky_field",
    "tan_wcs",
]

#: Morphology classes of :func:`galaxy_cutouts`, sorted (label i is ``GALAXY_CLASSES[i]``).
GALAXY_CLASSES = ("elliptical", "point", "spiral")
#: Every shape :func:`galaxy_cutouts` can draw with ``classes=``: the default classes and
#: ``"disk"``, a spiral's disk and bulge without arms (the same radial profiles as ``"spiral"``).
GALAXY_SHAPES = (*GALAXY_CLASSES, "disk")

_GAIN = 2.0  # e-/ADU
_READ_NOISE = 4.0  # e-
_EXPTIME = 300.0  # s
_OVERSAMPLE = 3


# --------------------------------------------------------------------------------------------------
# validation


def _validate_count(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _validate_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int; got {seed!r}")
    return int(seed)


def _validate_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number; got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------------
# profiles


def _sersic_amplitude(flux: float, r_eff: float, n: float, ellip: float) -> float:
    """Surface brightness at r_eff giving total ``flux`` (Graham & Driver 2005, eq. 2)."""
    bn = gammaincinv(2.0 * n, 0.5)
    total_per_ie = 2 * math.pi * n * gamma_fn(2 * n) * math.exp(bn) / bn ** (2 * n)
    return flux / (total_per_ie * r_eff**2 * (1.0 - ellip))


def _moffat_gamma(fwhm: float, alpha: float) -> float:
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / alpha) - 1.0))


def _grid(shape, oversample: int, x0: float = 0.0, y0: float = 0.0):
    """Sub-pixel sample positions (0-based pixels, offset by x0/y0) of an oversampled grid."""
    h, w = shape
    ys = (np.arange(h * oversample) + 0.5) / oversample - 0.5 + y0
    xs = (np.arange(w * oversample) + 0.5) / oversample - 0.5 + x0
    return np.meshgrid(xs, ys)


def _bin(img: np.ndarray, oversample: int) -> np.ndarray:
    """Sum oversampled sub-pixels into pixels (flux is kept when ``img`` is flux per sub-pixel)."""
    h, w = img.shape[0] // oversample, img.shape[1] // oversample
    return img.reshape(h, oversample, w, oversample).sum(axis=(1, 3))


def _psf_kernel(fwhm: float, alpha: float, oversample: int) -> np.ndarray:
    """Moffat PSF sampled on the oversampled grid, normalized to sum 1."""
    half = math.ceil(3.0 * fwhm) * oversample
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1] / oversample
    k = Moffat2D.evaluate(xx, yy, 1.0, 0.0, 0.0, _moffat_gamma(fwhm, alpha), alpha)
    return k / k.sum()


def _star(shape, x, y, flux, fwhm, alpha, oversample=_OVERSAMPLE, origin=(0, 0)):
    """A Moffat point source of total ``flux`` at (x, y), integrated over pixels."""
    xx, yy = _grid(shape, oversample, origin[1], origin[0])
    gam = _moffat_gamma(fwhm, alpha)
    amp = flux * (alpha - 1.0) / (math.pi * gam**2)
    sub = Moffat2D.evaluate(xx, yy, amp, x, y, gam, alpha) / oversample**2
    return _bin(sub, oversample)


def _galaxy(shape, p: dict, kernel, oversample=_OVERSAMPLE, origin=(0, 0)):
    """A PSF-convolved Sérsic galaxy (plus arms and bulge for disks), integrated over pixels."""
    xx, yy = _grid(shape, oversample, origin[1], origin[0])
    x0, y0, theta, ellip = p["x"], p["y"], p["theta"], p["ellip"]
    bulge_frac = p.get("bulge_frac", 0.0)
    disk_flux = p["flux"] * (1.0 - bulge_frac)
    amp = _sersic_amplitude(disk_flux, p["r_eff"], p["sersic_n"], ellip)
    img = Sersic2D.evaluate(xx, yy, amp, p["r_eff"], p["sersic_n"], x0, y0, ellip, theta)
    arm_amp = p.get("arm_amp", 0.0)
    if arm_amp > 0:
        # two-armed log spiral in the disk plane: 1 + A cos(2 (phi - ln(r / r_eff) / tan(pitch)))
        c, s = math.cos(theta), math.sin(theta)
        u = (xx - x0) * c + (yy - y0) * s
        v = (-(xx - x0) * s + (yy - y0) * c) / (1.0 - ellip)
        r = np.hypot(u, v) + 1e-3
        phi = np.arctan2(v, u)
        wave = np.cos(2.0 * (phi - np.log(r / p["r_eff"]) / math.tan(p["pitch"]) - p["arm_phase"]))
        taper = 1.0 - np.exp(-((r / (0.5 * p["r_eff"])) ** 2))  # arms fade into the centre
        img = img * (1.0 + arm_amp * taper * wave)
    if bulge_frac > 0:
        r_b = p["bulge_r_eff"]
        amp_b = _sersic_amplitude(p["flux"] * bulge_frac, r_b, 4.0, 0.5 * ellip)
        img = img + Sersic2D.evaluate(xx, yy, amp_b, r_b, 4.0, x0, y0, 0.5 * ellip, theta)
    img = signal.fftconvolve(img, kernel, mode="same")
    return _bin(np.clip(img, 0.0, None) / oversample**2, oversample)


def _observe(model: np.ndarray, sky: float, gain: float, read_noise: float, rng) -> np.ndarray:
    """Sky + Poisson (in electrons) + Gaussian read noise, digitized to integer ADU, as float32."""
    electrons = rng.poisson(np.clip((model + sky) * gain, 0.0, None)).astype(np.float64)
    electrons += rng.normal(0.0, read_noise, size=model.shape)
    return np.round(electrons / gain).astype(np.float32)


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
    >>> w = tan_wcs((64, 64), ra=150.0, dec=2.0)
    >>> [round(float(v), 6) for v in w.pixel_to_world_values(31.5, 31.5)]
    [150.0, 2.0]
    """
    h, w = standardize_tuple(tuple(shape), 2, name="shape")
    if not (isinstance(ra, numbers.Real) and isinstance(dec, numbers.Real) and -90 <= dec <= 90):
        raise ConfigError(
            f"ra/dec must be numbers with -90 <= dec <= 90; got ra={ra!r}, dec={dec!r}"
        )
    scale = _validate_positive(pixel_scale, "pixel_scale") / 3600.0
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

    Examples
    --------
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
    hdr["EXPTIME"] = (_EXPTIME, "[s] exposure time")
    hdr["GAIN"] = (_GAIN, "[e-/adu] detector gain")
    hdr["RDNOISE"] = (_READ_NOISE, "[e-] read noise")
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
# galaxy cutouts


def _draw_galaxy_params(cls: str, size: int, rng) -> dict:
    c = (size - 1) / 2.0
    p = {
        "x": c + rng.uniform(-1.5, 1.5),
        "y": c + rng.uniform(-1.5, 1.5),
        "theta": rng.uniform(0.0, math.pi),
        "psf_fwhm": rng.uniform(2.2, 3.2),
        "psf_alpha": rng.uniform(2.8, 4.5),
        "sky": rng.uniform(60.0, 160.0),
        "ra": rng.uniform(0.0, 360.0),
        "dec": math.degrees(math.asin(rng.uniform(-0.97, 0.97))),
    }
    scale = size / 64.0
    if cls == "elliptical":
        p.update(
            sersic_n=rng.uniform(3.0, 5.5),
            r_eff=rng.uniform(2.5, 8.0) * scale,
            ellip=rng.uniform(0.0, 0.5),
            flux=10 ** rng.uniform(4.2, 5.0),
        )
    elif cls == "spiral":
        p.update(
            sersic_n=rng.uniform(0.8, 1.3),
            r_eff=rng.uniform(4.5, 10.0) * scale,
            ellip=rng.uniform(0.0, 0.55),
            flux=10 ** rng.uniform(4.4, 5.1),
            arm_amp=rng.uniform(0.6, 0.95),
            pitch=math.radians(rng.uniform(12.0, 25.0)),
            arm_phase=rng.uniform(0.0, math.pi),
            bulge_frac=rng.uniform(0.08, 0.25),
        )
        p["bulge_r_eff"] = 0.15 * p["r_eff"]
    else:  # point source: PSF only
        p.update(sersic_n=0.0, r_eff=0.0, ellip=0.0, theta=0.0, flux=10 ** rng.uniform(3.6, 4.8))
    return p


def galaxy_cutouts(
    n_per_class: int,
    *,
    size: int = 64,
    seed: int = 0,
    classes: tuple[str, ...] | list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, np.ndarray]]:
    """Simulated telescope cutouts of three morphology classes, with their true parameters.

    Classes (sorted): ``"elliptical"`` (Sérsic n 3-5.5, r_eff 2.5-8 px), ``"point"`` (a star: the
    PSF only, r_eff = sersic_n = 0) and ``"spiral"`` (exponential-like disk, n 0.8-1.3, r_eff
    4.5-10 px, two logarithmic arms, a small n=4 bulge). Each cutout has its own Moffat PSF (FWHM
    2.2-3.2 px), position jitter (±1.5 px), ellipticity and angle, sky level (60-160 ADU), Poisson
    noise at gain 2 e-/ADU and 4 e- read noise, and is digitized to integer ADU. Radii scale with
    ``size / 64``.

    Parameters
    ----------
    n_per_class : int
        Cutouts per class.
    size : int, optional
        Cutout side in pixels (>= 16). Default 64.
    seed : int, optional
        Random seed; the same seed gives identical output.
    classes : sequence of str, optional
        The classes to draw, in label order, from :data:`GALAXY_SHAPES`; default
        :data:`GALAXY_CLASSES`. ``("disk", "spiral")`` is a task radial profiles cannot solve:
        both draw the same disks, and only the spirals have arms.

    Returns
    -------
    images : ndarray of float32, shape (N, size, size, 1)
        Raw counts (ADU, sky not subtracted); N = len(classes) * n_per_class, grouped by class in
        the order of ``class_names``.
    labels : ndarray of int64, shape (N,)
    class_names : list of str
        ``classes``; by default ``["elliptical", "point", "spiral"]``.
    params : dict of str -> ndarray of shape (N,)
        ``"sersic_n"``, ``"r_eff"`` (pixels, along the major axis), ``"flux"`` (total ADU before
        noise), ``"ellip"``, ``"theta"`` (radians from +x), ``"x"``, ``"y"`` (0-based centre),
        ``"psf_fwhm"``, ``"sky"``, ``"ra"``, ``"dec"`` (a sky position for the cutout's WCS; see
        :func:`cutout_header`).

    Examples
    --------
    >>> images, labels, names, params = galaxy_cutouts(3, size=32, seed=0)
    >>> labels.tolist()
    [0, 0, 0, 1, 1, 1, 2, 2, 2]
    >>> sorted(params)[:4]
    ['dec', 'ellip', 'flux', 'psf_fwhm']
    >>> galaxy_cutouts(2, size=32, classes=("disk", "spiral"))[2]
    ['disk', 'spiral']
    """
    n_per_class = _validate_count(n_per_class, "n_per_class")
    size = _validate_count(size, "size", minimum=16)
    classes = _validate_classes(classes)
    rng = np.random.default_rng(_validate_seed(seed))
    images, labels, rows = [], [], []
    for label, cls in enumerate(classes):
        for _ in range(n_per_class):
            p = _draw_galaxy_params("spiral" if cls == "disk" else cls, size, rng)
            if cls == "disk":
                p["arm_amp"] = 0.0
            if cls == "point":
                model = _star(
                    (size, size), p["x"], p["y"], p["flux"], p["psf_fwhm"], p["psf_alpha"]
                )
            else:
                kernel = _psf_kernel(p["psf_fwhm"], p["psf_alpha"], _OVERSAMPLE)
                model = _galaxy((size, size), p, kernel)
            images.append(_observe(model, p["sky"], _GAIN, _READ_NOISE, rng))
            labels.append(label)
            rows.append(p)
    keys = ("sersic_n", "r_eff", "flux", "ellip", "theta", "x", "y", "psf_fwhm", "sky", "ra", "dec")
    params = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in keys}
    return (
        np.stack(images)[..., np.newaxis],
        np.asarray(labels, dtype=np.int64),
        list(classes),
        params,
    )


def _validate_classes(classes) -> tuple[str, ...]:
    if classes is None:
        return GALAXY_CLASSES
    if isinstance(classes, str) or not all(isinstance(c, str) for c in classes):
        raise ConfigError(
            f"classes must be a sequence of names from {GALAXY_SHAPES}; got {classes!r}"
        )
    unknown = [c for c in classes if c not in GALAXY_SHAPES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ConfigError(
            f"classes must be distinct names from {GALAXY_SHAPES}; got {tuple(classes)!r}"
        )
    return tuple(classes)


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
    gain: float = _GAIN,
    read_noise: float = _READ_NOISE,
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
    >>> image, wcs, truth = sky_field((256, 256), n_stars=10, n_galaxies=5, seed=1)
    >>> image.shape, len(truth), wcs.has_celestial
    ((256, 256), 15, True)
    """
    h, w = standardize_tuple(tuple(shape), 2, name="shape")
    if min(h, w) < 64:
        raise ConfigError(f"shape must be at least (64, 64); got {(h, w)}")
    n_stars = _validate_count(n_stars, "n_stars", minimum=0)
    n_galaxies = _validate_count(n_galaxies, "n_galaxies", minimum=0)
    psf_fwhm = _validate_positive(psf_fwhm, "psf_fwhm")
    sky = _validate_positive(sky, "sky")
    gain = _validate_positive(gain, "gain")
    read_noise = _validate_positive(read_noise, "read_noise")
    rng = np.random.default_rng(_validate_seed(seed))
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
    kernel = _psf_kernel(psf_fwhm, alpha, oversample)

    for i in range(n_stars):
        half = int(np.clip(math.ceil(3 * psf_fwhm * (star_flux[i] / 1e3) ** 0.25), 8, 48))
        ix, iy = round(xs[i]), round(ys[i])
        stamp = _star(
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
        stamp = _galaxy(
            (2 * half + 1, 2 * half + 1), p, kernel, oversample=oversample,
            origin=(iy - half, ix - half),
        )  # fmt: skip
        _add_stamp(model, stamp, iy - half, ix - half)

    image = np.clip(_observe(model, sky, gain, read_noise, rng), 0.0, 65535.0)  # 16-bit ADC
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


# --------------------------------------------------------------------------------------------------
# nuclei


def _place_nuclei(h, w, count, rng):
    """Clustered centres with semi-axes; about 40 % are put against a neighbour (touching)."""
    n_clusters = int(rng.integers(2, 5))
    centres = np.column_stack([rng.uniform(0.15 * h, 0.85 * h, n_clusters),
                               rng.uniform(0.15 * w, 0.85 * w, n_clusters)])  # fmt: skip
    spread = 0.1 * min(h, w) + 8
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(count):
        for _try in range(60):
            a = rng.uniform(8.0, 15.0)
            b = a * rng.uniform(0.6, 1.0)
            r = 0.5 * (a + b)
            partner = None
            if placed and rng.uniform() < 0.4:
                partner = int(rng.integers(len(placed)))
                qy, qx, qa, qb = placed[partner]
                ang = rng.uniform(0.0, 2 * math.pi)
                dist = rng.uniform(0.7, 0.95) * (r + 0.5 * (qa + qb))
                cy, cx = qy + dist * math.sin(ang), qx + dist * math.cos(ang)
            else:
                cy, cx = centres[rng.integers(n_clusters)] + rng.normal(0.0, spread, 2)
            if not (-5 <= cy < h + 5 and -5 <= cx < w + 5):
                continue
            if all(
                j == partner or math.hypot(cy - q[0], cx - q[1]) >= 0.8 * (r + 0.5 * (q[2] + q[3]))
                for j, q in enumerate(placed)
            ):
                placed.append((cy, cx, a, b))
                break
    return placed


def _shape_mask(shape, cy, cx, a, b, angle, harmonics, expand=1.0):
    """Bounding-box slices and normalized radius (1 at the edge) of an irregular ellipse."""
    h, w = shape
    reach = math.ceil(max(a, b) * expand * 1.35) + 2
    y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, h)
    x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, w)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    phi = np.arctan2(v, u)
    edge = 1.0 + sum(amp * np.cos(m * phi + ph) for m, amp, ph in harmonics)
    rho = np.sqrt((u / (a * expand)) ** 2 + (v / (b * expand)) ** 2) / edge
    return (slice(y0, y1), slice(x0, x1)), rho


def _clean_labels(labels: np.ndarray) -> np.ndarray:
    """Keep each instance's largest connected piece; stray fragments join a touching neighbour."""
    from skimage.measure import label as cc_label
    from skimage.segmentation import relabel_sequential

    for lab, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        pad = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        region = labels[pad]
        comp = cc_label(region == lab, connectivity=1)
        if comp.max() <= 1:
            continue
        sizes = np.bincount(comp.ravel())
        sizes[0] = 0
        keep = int(np.argmax(sizes))
        for k in range(1, comp.max() + 1):
            if k == keep:
                continue
            frag = comp == k
            ring = ndimage.binary_dilation(frag) & ~frag
            neigh = region[ring]
            neigh = neigh[(neigh != 0) & (neigh != lab)]
            region[frag] = np.bincount(neigh).argmax() if neigh.size else 0
    small = np.bincount(labels.ravel())
    for lab in np.nonzero((small > 0) & (small < 12))[0]:
        if lab:
            labels[labels == lab] = 0
    return relabel_sequential(labels)[0].astype(np.int32)


def _one_nuclei_image(h, w, channels, rng):
    count = int(rng.integers(20, 40) * h * w / 256**2)
    placed = _place_nuclei(h, w, max(count, 3), rng)
    nuc = np.zeros((h, w), dtype=np.float64)
    cyto = np.zeros((h, w), dtype=np.float64)
    labels = np.zeros((h, w), dtype=np.int32)
    for k, (cy, cx, a, b) in enumerate(placed, start=1):
        angle = rng.uniform(0.0, math.pi)
        harmonics = [(m, rng.uniform(0.0, 0.06), rng.uniform(0, 2 * math.pi)) for m in (2, 3, 5)]
        got = _shape_mask((h, w), cy, cx, a, b, angle, harmonics)
        if got is None:
            continue
        sl, rho = got
        inside = rho <= 1.0
        bright = rng.uniform(250.0, 900.0)
        # domed profile, slightly brighter rim (nuclear envelope) and a couple of nucleoli
        profile = bright * (0.75 + 0.25 * np.sqrt(np.clip(1 - rho**2, 0, 1)) + 0.15 * (rho > 0.8))
        for _ in range(int(rng.integers(1, 3))):
            ny, nx = rng.uniform(-0.4, 0.4, 2)
            dy = sl[0].start + np.arange(rho.shape[0])[:, None] - (cy + ny * b)
            dx = sl[1].start + np.arange(rho.shape[1])[None, :] - (cx + nx * a)
            d2 = dy**2 + dx**2
            profile = profile + 0.5 * bright * np.exp(-d2 / (2 * (0.12 * b + 0.8) ** 2))
        nuc[sl] += np.where(inside, profile, 0.0)
        labels[sl][inside] = k  # later nuclei lie on top
        if channels > 1:
            expand = rng.uniform(1.7, 2.2)
            got_c = _shape_mask((h, w), cy, cx, a, b, angle, harmonics, expand=expand)
            if got_c is not None:
                slc, rho_c = got_c
                level = rng.uniform(40.0, 120.0)
                cell = (rho_c <= 1.0) * level * (0.7 + 0.3 * rho_c)
                cell += level * 1.5 * np.exp(-(((rho_c - 1.0) / 0.06) ** 2))  # membrane
                cyto[slc] += cell
    texture = 1.0 + 0.35 * ndimage.gaussian_filter(rng.normal(0.0, 1.0, (h, w)), 1.5) * 3.0
    nuc *= np.clip(texture, 0.3, None)
    background = rng.uniform(15.0, 40.0)
    gy, gx = rng.uniform(-0.3, 0.3, 2)
    ramp = 1.0 + gy * (np.arange(h)[:, None] / h - 0.5) + gx * (np.arange(w)[None, :] / w - 0.5)
    sigma = rng.uniform(1.0, 1.8)
    chans = [ndimage.gaussian_filter(nuc, sigma) + background * ramp]
    if channels > 1:
        chans.append(ndimage.gaussian_filter(cyto, sigma * 1.5) + 0.8 * background * ramp)
    img = np.stack([rng.poisson(np.clip(c, 0, None)).astype(np.float32) for c in chans], axis=-1)
    return img, _clean_labels(labels)


def nuclei(
    n: int,
    *,
    size: tuple[int, int] | int = (256, 256),
    seed: int = 0,
    channels: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Fluorescence-microscopy-like nuclei images with instance labels.

    Each image holds about 20-40 nuclei per 256 x 256 pixels in 2-4 clusters: irregular ellipses
    (radius 8-15 px whatever the image size), about 40 % of them put against a neighbour so they
    touch and partly overlap (where they overlap the signal adds up, and the later nucleus owns the
    pixels in ``labels``), with a domed profile, a bright rim, nucleoli, a multiplicative texture,
    Gaussian blur (sigma 1-1.8 px), a background with a gentle gradient and Poisson noise.
    ``channels=2`` adds a dimmer, blurrier cytoplasm channel with a membrane rim around each
    nucleus (the labels are always the nuclei).

    Parameters
    ----------
    n : int
        Number of images.
    size : int or (H, W), optional
        Image shape. Default (256, 256); at least 32 x 32.
    seed : int, optional
        Random seed.
    channels : {1, 2}, optional
        1: nuclei only; 2: nuclei + cytoplasm.

    Returns
    -------
    images : ndarray of float32, shape (N, H, W, C)
        Photon counts.
    labels : ndarray of int32, shape (N, H, W)
        Instance labels 1..K per image, 0 = background (semantic mask: ``labels > 0``).

    Examples
    --------
    >>> images, labels = nuclei(2, size=64, seed=0, channels=2)
    >>> images.shape, images.dtype, labels.shape, labels.dtype
    ((2, 64, 64, 2), dtype('float32'), (2, 64, 64), dtype('int32'))
    """
    n = _validate_count(n, "n")
    h, w = standardize_tuple(size, 2, name="size")
    if min(h, w) < 32:
        raise ConfigError(f"size must be at least 32 x 32; got {(h, w)}")
    if channels not in (1, 2) or isinstance(channels, bool):
        raise ConfigError(f"channels must be 1 or 2; got {channels!r}")
    rng = np.random.default_rng(_validate_seed(seed))
    images, labels = zip(*(_one_nuclei_image(h, w, channels, rng) for _ in range(n)))
    return np.stack(images), np.stack(labels)
