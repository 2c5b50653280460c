"""What ``sciconv predict`` says about one input's result beyond its count: the chips of a
multi-chip FITS file it did not segment, and a catalog with no object from an image with data.

Both were silent (QA 55): an HST ``_flt`` (``SCI,1`` and ``SCI,2``) or a DECam file of 60 CCDs
gave the first chip's objects only, and a ZTF mask flagging every star's pixels gave 0 objects,
exit 0, no word. Each is one line per input on stderr, as the console command shows warnings
(``sciconv: warning: ...``), with ``--quiet`` too; never an error, and not a Python warning:
a catalog of no object or one chip of several is a result to report in a batch's log, not a
condition for code to filter (which ``warnings`` would also turn into a failure under
``-W error``).

Examples
--------
>>> import numpy as np
>>> from astropy.io import fits
>>> from sciconv.io import GridImage
>>> img = GridImage(np.zeros((2, 2, 1), np.float32), header=fits.Header({"EXTNAME": "SCI"}),
...                 meta={"format": "fits", "hdu": 1})
>>> hdu_read(img)
'SCI'
"""

from __future__ import annotations

import sys

import numpy as np

from sciconv.errors import name_text
from sciconv.io._chips import hdu_label, science_hdus

__all__ = ["chips_note", "empty_catalog_note", "hdu_read", "note_chips", "warn_empty_catalog"]


def warning_line(text: str) -> None:
    """``text`` on stderr as the console command shows a warning: ``sciconv: warning: TEXT``
    (one line: a name's line breaks and control characters escaped). A stderr that cannot be
    written (a full log disk) loses the line, not the batch."""
    try:
        print(f"sciconv: warning: {name_text(text, controls=True)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # ENOSPC, a closed stream
        pass


def hdu_read(img, chips=()) -> str | None:
    """The HDU a FITS image was read from, as ``--hdu`` takes it (``SCI,1``, ``S29``, ``0``):
    its label among ``chips`` (:func:`sciconv.io._chips.science_hdus`), else its EXTNAME, else
    its index; None for an image that is not FITS."""
    meta = getattr(img, "meta", {}) or {}
    index = meta.get("hdu")
    if meta.get("format") != "fits" or not isinstance(index, int):
        return None
    for i, label in chips:
        if i == index:
            return label
    return hdu_label(img.header, index, shared=False)


def chips_note(path, img, args) -> tuple[str | None, str | None]:
    """The HDU ``img`` was read from (:func:`hdu_read`), and a line naming the others when
    ``path`` is a multi-chip FITS file (HST ``SCI,1``/``SCI,2``, DECam CCD extensions) read
    without ``--hdu``, with how to segment them (None otherwise).

    Examples
    --------
    >>> import argparse, tempfile, pathlib
    >>> from astropy.io import fits
    >>> from sciconv import io
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c4d_ooi.fits"
    >>> ccd = np.zeros((4, 4), np.float32)
    >>> fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(ccd, name=n) for n in ("S29", "S30")]
    ...              ).writeto(p)
    >>> read, note = chips_note(p, io.read(p), argparse.Namespace(hdu=None))
    >>> read
    'S29'
    >>> print(note)  # doctest: +ELLIPSIS
    /.../c4d_ooi.fits has 2 science image HDUs (S29, S30); segmented S29 only: ... --hdu S30 ...
    >>> chips_note(p, io.read(p, hdu="S30"), argparse.Namespace(hdu="S30"))
    ('S30', None)
    """
    meta = getattr(img, "meta", {}) or {}
    index = meta.get("hdu")
    fits = meta.get("format") == "fits" and isinstance(index, int)
    chips = science_hdus(path, index) if fits else []
    read = hdu_read(img, chips)
    if len(chips) < 2 or getattr(args, "hdu", None) is not None:
        return read, None
    others = [label for i, label in chips if i != index]
    listed = ", ".join(label for _, label in chips[:8]) + (", ..." if len(chips) > 8 else "")
    return read, (
        f"{path} has {len(chips)} science image HDUs ({listed}); segmented {read} only: run "
        f"again with --hdu {others[0]}{' (and so on)' if len(others) > 1 else ''} and another "
        "--out for the other(s) (the products are named after the file, not the HDU)"
    )


def note_chips(path, img, args) -> str | None:
    """:func:`chips_note`: its line said on stderr (:func:`warning_line`), the HDU returned."""
    read, note = chips_note(path, img, args)
    if note is not None:
        warning_line(note)
    return read


def warn_empty_catalog(path, img, n_objects: int, args) -> None:
    """:func:`empty_catalog_note`, said on stderr (:func:`warning_line`)."""
    note = empty_catalog_note(path, img, n_objects, args)
    if note is not None:
        warning_line(note)


#: Pixels this many robust standard deviations above an image's median are "bright".
BRIGHT_SIGMA = 10.0
#: An image with at least this many bright pixels holds something to find.
BRIGHT_PIXELS = 5


def _bright_pixels(finite: np.ndarray) -> int:
    """The pixels over :data:`BRIGHT_SIGMA` robust sigmas (1.4826 MAD; the standard deviation
    when the MAD is 0) above the median: sources, not noise (a field of pure noise has none)."""
    sample = finite[:: max(1, finite.size // 1_000_000)].astype(np.float64)
    median = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - median))) or float(np.std(sample))
    if not sigma > 0:
        return 0
    return int(np.count_nonzero(finite > median + BRIGHT_SIGMA * sigma))


def empty_catalog_note(path, img, n_objects: int, args) -> str | None:
    """A line for a catalog of no object from an image with something in it, naming ``path``
    and the likely causes; None when objects were found, or the image is blank or pure noise.

    Something in it: bright pixels (:data:`BRIGHT_PIXELS` or more over :data:`BRIGHT_SIGMA`
    robust sigmas above the median), or bad pixels from a mask (which may cover the sources:
    a mask that flags detections, such as a ZTF mskimg's value 2 or a DETECTED plane). The
    causes named: those bad pixels, the probability threshold, ``--min-size``. Exit 0 stays:
    an empty field is a result.

    Examples
    --------
    >>> import argparse
    >>> from sciconv.io import GridImage
    >>> sky = np.random.default_rng(0).normal(100, 1, (32, 32, 1)).astype(np.float32)
    >>> args = argparse.Namespace(threshold=None, min_size=None, mask=None)
    >>> empty_catalog_note("a.fits", GridImage(sky), 0, args) is None  # noise: nothing to find
    True
    >>> sky[10:13, 10:13] += 500  # a star
    >>> print(empty_catalog_note("a.fits", GridImage(sky), 0, args))  # doctest: +ELLIPSIS
    a.fits: no objects found, though 9 of its 1024 finite pixels are over 10 sigma above ...
    >>> empty_catalog_note("a.fits", GridImage(sky), 3, args) is None
    True
    """
    if n_objects:
        return None
    data = np.asarray(img.data)
    finite = data[np.isfinite(data)]
    if finite.size == 0:  # nothing there to find
        return None
    mask = getattr(img, "mask", None)
    bad = 0.0 if mask is None else float(np.mean(np.asarray(mask)))
    meta = getattr(img, "meta", {}) or {}
    source = meta.get("mask_from")
    bright = _bright_pixels(finite)
    masked = source is not None and bad > 0
    if bright < BRIGHT_PIXELS and not masked:
        return None
    causes = []
    if masked:
        causes.append(
            f"the mask ({source}) may flag the sources themselves (a detection or segmentation "
            "plane, e.g. a ZTF mskimg's value 2): pass --ignore-flags with the bits that are not "
            "defects"
        )
    threshold = getattr(args, "threshold", None)
    causes.append(
        f"--threshold {threshold} (lower it)" if threshold is not None
        else "the model's probability threshold (try a lower --threshold)"
    )  # fmt: skip
    if getattr(args, "min_size", None) is not None:
        causes.append(f"--min-size {args.min_size} (objects smaller are dropped)")
    seen = (
        f", though {bright} of its {finite.size} finite pixels are over {BRIGHT_SIGMA:g} sigma "
        "above its median"
        if bright >= BRIGHT_PIXELS
        else f" with {bad:.1%} of its pixels masked"
    )
    return (
        f"{path}: no objects found{seen}; if it holds sources, the likely causes: "
        f"{'; '.join(causes)}"
    )
