"""A bad-pixel mask that blanks the sources themselves: measured, and said.

Some archives ship, next to the image, a flag plane that marks where the *sources* are: ZTF's
``_mskimg`` sets bit 1 (value 2) on every pixel of a source SExtractor detected (IRSA's
recommended bad-pixel bits, 6141, leave it out), Legacy Surveys ``maskbits`` mark the halos of
bright and medium stars (BRIGHT, MEDIUM), DES masks bright stars (``BADPIX_STAR``), an LSST
plane without ``MP_`` cards has ``DETECTED``. Read as bad pixels with the default
``ignore_flags=0`` (every set bit is bad), such a mask turns every source's core to NaN: the
catalog comes out empty or starved, and nothing fails (QA 55: a ZTF mask gave 0 objects of 18).

:func:`sources_masked` measures it. The *source pixels* are the brightest 1 % of the finite
pixels, ranked by the median of their 5 x 5 neighbourhood (among the brightest 5 %), where that
median is 3 sigma above the sky (sky and sigma: the median and 1.4826 x MAD of the pixels):
the cores of sources, not single bright pixels, since a 5 x 5 median removes a cosmic ray, a
hot pixel, a bad column. The mask *blanks the sources* when there are at least
:data:`MIN_SOURCE_PIXELS` of them, at least half are bad, and their bad share is
:data:`CONTRAST` times that of the other pixels or :data:`MARGIN` above it. An image over
:data:`SAMPLE_PIXELS` pixels is looked at in 16 windows of 512 x 512 spread over it (a lazy
image reads only those): a few tenths of a second at most.

Measured in QA 55 (the share of the source pixels bad, against that of the rest): a
ZTF-like ``_mskimg`` read with every bit bad, 1.00 against 0.02 (said; with IRSA's bits 6141,
0.01); a Legacy-like mask of three bright stars' halos, 0.92 against 0.02 (said); the bundled
HST ACS cut-out's own DQ, whose saturated star cores are bad, 0.18 (not said); a JWST-like DQ
with ``JUMP_DET`` on 20 % of the pixels read with every bit bad, 0.23 against 0.27 (not said);
simulated exposures with 50-2000 flagged cosmic rays (grown by a pixel), 1 % flagged hot
pixels and a bad column, with or without saturated star cores flagged, at most 0.17; random
defects on the 531 DSB2018 images, at most 0.06 (none said); their nuclei labels used as a
mask, said on 425 of the 428 fluorescence images (on the brightfield and stained ones the
nuclei are dark, and the brightest pixels are background: not said).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from sciconv.io._common import warn_caller

__all__ = [
    "CONTRAST",
    "MARGIN",
    "MIN_SOURCE_PIXELS",
    "SAMPLE_PIXELS",
    "MaskedSources",
    "sources_masked",
    "warn_if_sources_masked",
]

#: The share of the finite pixels that are source pixels at most: the brightest, ranked by
#: their neighbourhood median ...
BRIGHTEST = 0.01
#: ... among this share of the brightest pixels.
CANDIDATES = 0.05
#: Side of the neighbourhood whose median a source pixel must share (a cosmic ray does not).
NEIGHBOURHOOD = 5
#: How far above the sky, in sigma of the pixels, that median must be.
SIGMAS = 3.0
#: Fewer source pixels than this: no sources to speak of, nothing said.
MIN_SOURCE_PIXELS = 25
#: The bad share of the source pixels at which a mask blanks the sources ...
BAD_SHARE = 0.5
#: ... when it is also this many times the bad share of the other pixels, or above it by
#: :data:`MARGIN` (a mask of the sources of a crowded field covers a good share of the rest).
CONTRAST = 5.0
MARGIN = 0.5
#: Images up to this many pixels are looked at whole; larger ones in 16 windows of 512 x 512.
SAMPLE_PIXELS = 1 << 22
_WINDOW = 512
_GRID = 4

# archives whose masks flag sources, by the mask file's name: the example said with the warning
_ARCHIVE_HINTS = (
    (
        "mskimg",
        "ZTF _mskimg: IRSA's recommended bad-pixel bits are 6141 (bit 1 is a detected source): "
        "ignore_flags='~6141' (--ignore-flags '~6141')",
    ),
    (
        "maskbits",
        "Legacy Surveys maskbits: the defects are SATUR_* and ALLMASK_* (BRIGHT, MEDIUM, "
        "GALAXY and CLUSTER mark regions around objects): ignore_flags='~49404' "
        "(--ignore-flags '~49404')",
    ),
)


class MaskedSources(NamedTuple):
    """How much of an image's sources a bad-pixel mask covers (:func:`sources_masked`).

    Attributes
    ----------
    share : float
        The bad fraction of the source pixels.
    rest : float
        The bad fraction of the other finite pixels.
    pixels : int
        The source pixels looked at.
    bits : tuple of (int, float)
        The flag values that make source pixels bad, each with the fraction of the source
        pixels it is set on, largest first (empty for a boolean mask or without flags).
    """

    share: float
    rest: float
    pixels: int
    bits: tuple[tuple[int, float], ...]

    @property
    def blanked(self) -> bool:
        """Whether the mask blanks the sources: enough source pixels, at least half of them
        bad, and :data:`CONTRAST` times the bad share of the rest or :data:`MARGIN` above it."""
        return (
            self.pixels >= MIN_SOURCE_PIXELS
            and self.share >= BAD_SHARE
            and (self.share >= CONTRAST * self.rest or self.share - self.rest >= MARGIN)
        )


def _windows(h: int, w: int) -> list[tuple[slice, slice]]:
    """The whole image, or a 4 x 4 grid of windows spread over a large one."""
    if h * w <= SAMPLE_PIXELS:
        return [(slice(0, h), slice(0, w))]
    wy, wx = min(_WINDOW, h), min(_WINDOW, w)
    y0s = np.unique(np.linspace(0, h - wy, _GRID).astype(int))
    x0s = np.unique(np.linspace(0, w - wx, _GRID).astype(int))
    return [(slice(y, y + wy), slice(x, x + wx)) for y in y0s for x in x0s]


def _plane(a, ys: slice, xs: slice, reduce) -> np.ndarray:
    """``a[ys, xs]`` as ``(h, w)``: a stack's first plane, channels reduced by ``reduce``."""
    if getattr(a, "ndim", 0) == 4:
        a = a[0]
    block = np.asarray(a[ys, xs])
    return reduce(block) if block.ndim == 3 else block


def _mean_channels(block: np.ndarray) -> np.ndarray:
    block = block.astype(np.float32, copy=False)
    return block[..., 0] if block.shape[-1] == 1 else block.mean(axis=-1)  # NaN if any is


def _any_channel(block: np.ndarray) -> np.ndarray:
    return block.any(axis=-1)


def _or_channels(block: np.ndarray) -> np.ndarray:
    return np.bitwise_or.reduce(block, axis=-1)


def _as_bits(flags: np.ndarray) -> np.ndarray:
    """Integer flags as uint64 (bool: 1; float flags: their whole values, NaN 0)."""
    if flags.dtype == bool:
        return flags.astype(np.uint64)
    if flags.dtype.kind == "f":
        flags = np.where(np.isfinite(flags), flags, 0).astype(np.int64)
    return (
        flags.astype(np.int64).view(np.uint64)
        if flags.dtype.kind == "i"
        else flags.astype(np.uint64)
    )


def _bad_bits(ignore_flags: Any) -> int:
    """The flag bits that make a pixel bad under ``ignore_flags`` (astropy's reading)."""
    from astropy.nddata.bitmask import interpret_bit_flags

    ignored = interpret_bit_flags(ignore_flags)
    return 0 if ignored is None else ~int(ignored) & (2**64 - 1)


def _neighbourhood_median(pix: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The median of the ``NEIGHBOURHOOD``-square around each pixel ``(ys, xs)`` of ``pix``
    (NaN-free; a pixel nearer the edge than that gets -inf: not a source pixel)."""
    r = NEIGHBOURHOOD // 2
    h, w = pix.shape
    out = np.full(len(ys), -np.inf)
    inside = np.nonzero((ys >= r) & (ys < h - r) & (xs >= r) & (xs < w - r))[0]
    if h < NEIGHBOURHOOD or w < NEIGHBOURHOOD or not len(inside):
        return out
    views = np.lib.stride_tricks.sliding_window_view(pix, (NEIGHBOURHOOD, NEIGHBOURHOOD))
    step = 1 << 16  # bounded memory: 65536 neighbourhoods at a time
    for i in range(0, len(inside), step):
        at = inside[i : i + step]
        part = views[ys[at] - r, xs[at] - r].reshape(len(at), -1)
        out[at] = np.median(part, axis=1)
    return out


def sources_masked(pixels, bad, flags=None, *, ignore_flags: Any = 0) -> MaskedSources | None:
    """How much of the sources of ``pixels`` the mask ``bad`` covers (module docstring).

    Parameters
    ----------
    pixels : numpy.ndarray or LazyImage
        The image as read, before the mask: ``(H, W)``, ``(H, W, C)`` (channels averaged) or a
        stack ``(N, H, W, C)`` (its first plane); NaN pixels are left out.
    bad : numpy.ndarray
        Bool, True at the pixels the mask makes bad: ``(H, W)``, ``(H, W, 1)``, ``(H, W, C)``
        (any channel) or ``(N, H, W, C)``.
    flags : numpy.ndarray, optional
        The mask's flag values, laid out like ``bad``, to name the flags that do it.
    ignore_flags : int, str, list or None
        What ``bad`` was read with: only the flags that make a pixel bad are named.

    Returns
    -------
    MaskedSources or None
        None where the image has no finite pixel.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> image = np.random.default_rng(0).normal(0, 1, (64, 64))
    >>> for y, x in [(16, 16), (16, 48), (48, 16), (48, 48)]:   # four stars
    ...     image += 500 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8)
    >>> detected = (image > 20).astype(np.int16) * 2           # a "detected source" bit
    >>> found = sources_masked(image, detected != 0, detected)
    >>> found.blanked, found.share, found.bits
    (True, 1.0, ((2, 1.0),))
    >>> sources_masked(image, np.zeros((64, 64), bool)).blanked
    False
    """
    shape = tuple(pixels.shape)
    h, w = (shape[1], shape[2]) if len(shape) == 4 else (shape[0], shape[1])
    windows = _windows(h, w)
    blocks = [_plane(pixels, ys, xs, _mean_channels).astype(np.float32) for ys, xs in windows]
    finite_values = np.concatenate([b[np.isfinite(b)] for b in blocks])
    if finite_values.size == 0:
        return None
    sample = finite_values[:: max(1, finite_values.size >> 18)]  # the statistics: 2**18 values
    sky = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - sky)))
    # candidates: the brightest 5 % (cosmic rays and hot pixels may hold the top 1 % of a
    # sparse field); ranked by their neighbourhood median, the brightest 1 % of the pixels
    floor = float(np.quantile(sample, 1.0 - CANDIDATES))
    found = []
    for pix in blocks:
        finite = np.isfinite(pix)
        cy, cx = np.nonzero(finite & (pix >= floor) & (pix > sky))
        near = _neighbourhood_median(np.where(finite, pix, np.float32(sky)), cy, cx)
        found.append((cy, cx, near))
    every = np.concatenate([near for _, _, near in found])
    wanted = max(int(BRIGHTEST * finite_values.size), 1)
    rank = -np.inf  # the neighbourhood median of the wanted-th brightest candidate
    if every.size > wanted:
        rank = float(np.partition(every, every.size - wanted)[every.size - wanted])
    significant = sky + SIGMAS * sigma
    bad_bits = _bad_bits(ignore_flags) if flags is not None else 0
    n_src = n_src_bad = n_rest = n_rest_bad = 0
    bit_counts = np.zeros(64, np.int64)
    for (ys, xs), pix, (cy, cx, near) in zip(windows, blocks, found):
        finite = np.isfinite(pix)
        worse = np.broadcast_to(_plane(bad, ys, xs, _any_channel).astype(bool), pix.shape)
        source = np.zeros(pix.shape, bool)
        keep = (near >= rank) & (near > significant)
        source[cy[keep], cx[keep]] = True
        rest = finite & ~source
        n_src += int(source.sum())
        n_src_bad += int((source & worse).sum())
        n_rest += int(rest.sum())
        n_rest_bad += int((rest & worse).sum())
        if flags is not None and source.any():
            values = _as_bits(_plane(flags, ys, xs, _or_channels))
            values = np.broadcast_to(values, pix.shape)[source & worse] & np.uint64(bad_bits)
            for bit in range(64):
                bit_counts[bit] += np.count_nonzero(values & np.uint64(1 << bit))
    share = n_src_bad / n_src if n_src else 0.0
    rest_share = n_rest_bad / n_rest if n_rest else 0.0
    bits = tuple(
        sorted(
            ((1 << b, float(bit_counts[b] / n_src)) for b in range(64) if bit_counts[b]),
            key=lambda item: -item[1],
        )
    )
    return MaskedSources(float(share), float(rest_share), n_src, bits)


def _bits_text(bits) -> str:
    said = [(v, s) for v, s in bits if s >= 0.25][:3] or list(bits[:1])
    return ", ".join(f"{v} (bit {v.bit_length() - 1}) on {s:.0%}" for v, s in said)


def warn_if_sources_masked(
    pixels, bad, flags=None, *, source: str, ignore_flags: Any = 0
) -> MaskedSources | None:
    """Warn (SciconvWarning naming ``source``) when the mask ``bad`` blanks the sources of
    ``pixels`` (:func:`sources_masked`): the flags that do it, and the ``ignore_flags`` /
    ``--ignore-flags`` that reads them as good (an archive's own recommendation where the
    mask's name says which archive it is from).

    Parameters
    ----------
    pixels, bad, flags, ignore_flags
        As :func:`sources_masked`.
    source : str
        The mask file (or ``"mask array"``), named in the warning.

    Returns
    -------
    MaskedSources or None
        What :func:`sources_masked` found.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> image = 500 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 8)
    >>> image += np.random.default_rng(0).normal(0, 1, (64, 64))
    >>> flags = (image > 20).astype(np.int16) * 2
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     _ = warn_if_sources_masked(image, flags != 0, flags, source="x_mskimg.fits")
    >>> "ignore_flags=2" in str(said[0].message), "'~6141'" in str(said[0].message)
    (True, True)
    """
    found = sources_masked(pixels, bad, flags, ignore_flags=ignore_flags)
    if found is None or not found.blanked:
        return found
    offending = sum(v for v, s in found.bits if s >= 0.25) or sum(v for v, _ in found.bits[:1])
    if found.bits and np.asarray(flags).dtype != bool:
        what = f"flags {_bits_text(found.bits)} of them"
        if isinstance(ignore_flags, int) and not isinstance(ignore_flags, bool):
            value = ignore_flags | offending
            advice = (
                f"to read those flags as good, pass ignore_flags={value} (--ignore-flags {value})"
            )
        else:
            advice = f"to read those flags as good, add {offending} to ignore_flags"
        everything = np.bitwise_or.reduce(_as_bits(np.asarray(flags)), axis=None)
        if int(everything) & ~offending == 0:  # the mask holds nothing else
            advice += ", or leave the mask out"
    else:
        what = "a True/False mask"
        advice = "leave it out if it marks objects rather than defects"
    name = os.path.basename(str(source)).lower()
    hints = [hint for key, hint in _ARCHIVE_HINTS if key in name]
    example = f"; {hints[0]}" if hints else ""
    warn_caller(
        f"{source}: the mask flags the sources themselves: {found.share:.0%} of the image's "
        f"brightest source pixels are bad against {found.rest:.1%} of the others ({what}); "
        f"a detection or segmentation plane, not defects? Their pixels become NaN and the "
        f"catalog loses them: {advice}{example}",
        "sciconv",
    )
    return found
