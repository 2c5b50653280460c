"""Fluorescence-microscopy-like nuclei with instance labels."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from sciconv._validation import standardize_tuple
from sciconv.errors import ConfigError
from sciconv.simulate._render import (
    validate_count,
    validate_seed,
)

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
    >>> from sciconv.simulate import nuclei
    >>> images, labels = nuclei(2, size=64, seed=0, channels=2)
    >>> images.shape, images.dtype, labels.shape, labels.dtype
    ((2, 64, 64, 2), dtype('float32'), (2, 64, 64), dtype('int32'))
    """
    n = validate_count(n, "n")
    h, w = standardize_tuple(size, 2, name="size")
    if min(h, w) < 32:
        raise ConfigError(f"size must be at least 32 x 32; got {(h, w)}")
    if channels not in (1, 2) or isinstance(channels, bool):
        raise ConfigError(f"channels must be 1 or 2; got {channels!r}")
    rng = np.random.default_rng(validate_seed(seed))
    images, labels = zip(*(_one_nuclei_image(h, w, channels, rng) for _ in range(n)))
    return np.stack(images), np.stack(labels)
