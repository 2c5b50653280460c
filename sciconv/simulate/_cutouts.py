"""Telescope cutouts of galaxy morphology classes, in one or several bands."""

from __future__ import annotations

import numpy as np

from sciconv.errors import ConfigError
from sciconv.simulate._render import (
    BAND_SKY,
    GAIN,
    OVERSAMPLE,
    READ_NOISE,
    band_fluxes,
    draw_colours,
    draw_galaxy_params,
    galaxy,
    observe,
    psf_kernel,
    star,
    validate_count,
    validate_seed,
)

#: Morphology classes of :func:`galaxy_cutouts`, sorted (label i is ``GALAXY_CLASSES[i]``).
GALAXY_CLASSES = ("elliptical", "point", "spiral")
#: Every shape :func:`galaxy_cutouts` can draw with ``classes=``: the default classes and
#: ``"disk"``, a spiral's disk and bulge without arms (the same radial profiles as ``"spiral"``).
GALAXY_SHAPES = (*GALAXY_CLASSES, "disk")


def galaxy_cutouts(
    n_per_class: int,
    *,
    size: int = 64,
    seed: int = 0,
    classes: tuple[str, ...] | list[str] | None = None,
    bands: str = "r",
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
    bands : str, optional
        The photometric bands, one image channel each, in this order: letters of ``"grz"``
        (DECaLS-like). Default ``"r"``: one band, as before. With several, the same galaxy is
        drawn in each band with its own sky level and noise, and with colour: ellipticals and
        bulges red (g - r 0.75 ± 0.08, r - z 0.45 ± 0.08 AB mag), disks and arms blue (0.45 ±
        0.12, 0.25 ± 0.12; so spirals have red centres), stars any colour. ``flux`` is the
        r-band flux.

    Returns
    -------
    images : ndarray of float32, shape (N, size, size, len(bands))
        Raw counts (ADU, sky not subtracted); N = len(classes) * n_per_class, grouped by class in
        the order of ``class_names``.
    labels : ndarray of int64, shape (N,)
    class_names : list of str
        ``classes``; by default ``["elliptical", "point", "spiral"]``.
    params : dict of str -> ndarray of shape (N,)
        ``"sersic_n"``, ``"r_eff"`` (pixels, along the major axis), ``"flux"`` (total ADU before
        noise), ``"ellip"``, ``"theta"`` (radians from +x), ``"x"``, ``"y"`` (0-based centre),
        ``"psf_fwhm"``, ``"sky"``, ``"ra"``, ``"dec"`` (a sky position for the cutout's WCS; see
        :func:`cutout_header`); with several bands also ``"g_r"``, ``"r_z"`` (the main
        component's colours) and ``"bulge_g_r"``, ``"bulge_r_z"``.

    Examples
    --------
    >>> from sciconv.simulate import galaxy_cutouts
    >>> images, labels, names, params = galaxy_cutouts(3, size=32, seed=0)
    >>> labels.tolist()
    [0, 0, 0, 1, 1, 1, 2, 2, 2]
    >>> sorted(params)[:4]
    ['dec', 'ellip', 'flux', 'psf_fwhm']
    >>> galaxy_cutouts(2, size=32, classes=("disk", "spiral"))[2]
    ['disk', 'spiral']
    >>> galaxy_cutouts(1, size=32, bands="grz")[0].shape
    (3, 32, 32, 3)
    """
    n_per_class = validate_count(n_per_class, "n_per_class")
    size = validate_count(size, "size", minimum=16)
    classes = _validate_classes(classes)
    bands = _validate_bands(bands)
    rng = np.random.default_rng(validate_seed(seed))
    images, labels, rows = [], [], []
    for label, cls in enumerate(classes):
        for _ in range(n_per_class):
            p = draw_galaxy_params("spiral" if cls == "disk" else cls, size, rng)
            if cls == "disk":
                p["arm_amp"] = 0.0
            weights = None
            if bands != "r":
                p.update(draw_colours(cls, rng))
                weights = list(zip(band_fluxes(bands, p["g_r"], p["r_z"]),
                                   band_fluxes(bands, p["bulge_g_r"], p["bulge_r_z"])))  # fmt: skip
            if cls == "point":
                model = star((size, size), p["x"], p["y"], p["flux"], p["psf_fwhm"], p["psf_alpha"])
                model = model if weights is None else np.stack([w * model for w, _ in weights])
            else:
                kernel = psf_kernel(p["psf_fwhm"], p["psf_alpha"], OVERSAMPLE)
                model = galaxy((size, size), p, kernel, weights=weights)
            if weights is None:
                images.append(observe(model, p["sky"], GAIN, READ_NOISE, rng)[..., np.newaxis])
            else:
                images.append(np.stack([observe(m, p["sky"] * BAND_SKY[b], GAIN, READ_NOISE, rng)
                                        for m, b in zip(model, bands)], axis=-1))  # fmt: skip
            labels.append(label)
            rows.append(p)
    keys = ("sersic_n", "r_eff", "flux", "ellip", "theta", "x", "y", "psf_fwhm", "sky", "ra", "dec")
    if bands != "r":
        keys += ("g_r", "r_z", "bulge_g_r", "bulge_r_z")
    params = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in keys}
    return np.stack(images), np.asarray(labels, dtype=np.int64), list(classes), params


def _validate_bands(bands) -> str:
    if not isinstance(bands, str) or not bands or any(b not in BAND_SKY for b in bands):
        raise ConfigError(f"bands must be letters of 'grz', e.g. 'grz'; got {bands!r}")
    if len(set(bands)) != len(bands):
        raise ConfigError(f"bands must not repeat a band; got {bands!r}")
    return bands


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
