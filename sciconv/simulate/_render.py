"""Rendering shared by the simulators: validation, Sérsic/Moffat profiles, PSF, colours, noise."""

from __future__ import annotations

import math
import numbers

import numpy as np
from astropy.modeling.models import Moffat2D, Sersic2D
from scipy import signal
from scipy.special import gamma as gamma_fn
from scipy.special import gammaincinv

from sciconv.errors import ConfigError

GAIN = 2.0  # e-/ADU
READ_NOISE = 4.0  # e-
EXPTIME = 300.0  # s
OVERSAMPLE = 3


# --------------------------------------------------------------------------------------------------
# validation


def validate_count(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def validate_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int; got {seed!r}")
    return int(seed)


def validate_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number; got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------------
# profiles


def sersic_amplitude(flux: float, r_eff: float, n: float, ellip: float) -> float:
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


def psf_kernel(fwhm: float, alpha: float, oversample: int) -> np.ndarray:
    """Moffat PSF sampled on the oversampled grid, normalized to sum 1."""
    half = math.ceil(3.0 * fwhm) * oversample
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1] / oversample
    k = Moffat2D.evaluate(xx, yy, 1.0, 0.0, 0.0, _moffat_gamma(fwhm, alpha), alpha)
    return k / k.sum()


def star(shape, x, y, flux, fwhm, alpha, oversample=OVERSAMPLE, origin=(0, 0)):
    """A Moffat point source of total ``flux`` at (x, y), integrated over pixels."""
    xx, yy = _grid(shape, oversample, origin[1], origin[0])
    gam = _moffat_gamma(fwhm, alpha)
    amp = flux * (alpha - 1.0) / (math.pi * gam**2)
    sub = Moffat2D.evaluate(xx, yy, amp, x, y, gam, alpha) / oversample**2
    return _bin(sub, oversample)


def galaxy(shape, p: dict, kernel, oversample=OVERSAMPLE, origin=(0, 0), weights=None):
    """A PSF-convolved Sérsic galaxy (plus arms and bulge for disks), integrated over pixels.

    ``weights``: one ``(main, bulge)`` flux multiplier pair per band; then ``(bands, H, W)``.
    """
    xx, yy = _grid(shape, oversample, origin[1], origin[0])
    x0, y0, theta, ellip = p["x"], p["y"], p["theta"], p["ellip"]
    bulge_frac = p.get("bulge_frac", 0.0)
    disk_flux = p["flux"] * (1.0 - bulge_frac)
    amp = sersic_amplitude(disk_flux, p["r_eff"], p["sersic_n"], ellip)
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
    bulge = 0.0
    if bulge_frac > 0:
        r_b = p["bulge_r_eff"]
        amp_b = sersic_amplitude(p["flux"] * bulge_frac, r_b, 4.0, 0.5 * ellip)
        bulge = Sersic2D.evaluate(xx, yy, amp_b, r_b, 4.0, x0, y0, 0.5 * ellip, theta)
    if weights is not None:
        return np.stack([_convolve_bin(w_main * img + w_bulge * bulge, kernel, oversample)
                         for w_main, w_bulge in weights])  # fmt: skip
    return _convolve_bin(img + bulge, kernel, oversample)


def _convolve_bin(img, kernel, oversample):
    img = signal.fftconvolve(img, kernel, mode="same")
    return _bin(np.clip(img, 0.0, None) / oversample**2, oversample)


#: Colours (g - r, r - z) in AB magnitudes, mean and scatter, of :func:`galaxy_cutouts`' bands:
#: old stellar populations (ellipticals, bulges) are red, star-forming disks blue, and the two
#: overlap as real galaxies do; stars take any colour.
_COLOURS = {"red": ((0.75, 0.45), 0.08), "blue": ((0.45, 0.25), 0.12)}
#: Sky brightness of each band relative to the drawn sky level (brighter in the near infrared).
BAND_SKY = {"g": 0.6, "r": 1.0, "z": 2.0}


def band_fluxes(bands: str, g_r: float, r_z: float) -> list[float]:
    """Flux of each band relative to r for AB colours g - r and r - z."""
    rel = {"g": 10 ** (-0.4 * g_r), "r": 1.0, "z": 10 ** (0.4 * r_z)}
    return [rel[b] for b in bands]


def draw_colours(cls: str, rng) -> dict:
    """Colours of the main component and of the bulge (galaxies) or of the star (points)."""
    if cls == "point":
        g_r = rng.uniform(0.2, 1.4)
        return {"g_r": g_r, "r_z": 0.5 * g_r + rng.normal(0.0, 0.1), "bulge_g_r": 0.0,
                "bulge_r_z": 0.0}  # fmt: skip
    out = {}
    for key, population in (("", "red" if cls == "elliptical" else "blue"), ("bulge_", "red")):
        (g_r, r_z), sd = _COLOURS[population]
        out[key + "g_r"], out[key + "r_z"] = g_r + rng.normal(0, sd), r_z + rng.normal(0, sd)
    return out


def observe(model: np.ndarray, sky: float, gain: float, read_noise: float, rng) -> np.ndarray:
    """Sky + Poisson (in electrons) + Gaussian read noise, digitized to integer ADU, as float32."""
    electrons = rng.poisson(np.clip((model + sky) * gain, 0.0, None)).astype(np.float64)
    electrons += rng.normal(0.0, read_noise, size=model.shape)
    return np.round(electrons / gain).astype(np.float32)


def draw_galaxy_params(cls: str, size: int, rng) -> dict:
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
