"""Which image of a TIFF holding several is read: the series tifffile finds in it.

A whole slide holds its scan beside side images: Aperio SVS, NDPI, QPTIFF, Philips and Ventana
name theirs (``Thumbnail``, ``Label``, ``Macro``, ``Map``), a Leica SCN starts with the macro
(an overview of the whole glass slide) and names nothing; a multi-position OME-TIFF holds one
image per position, an LSM its thumbnails. :func:`main_series` is the one :func:`read` takes
by default: in a whole-slide file the largest image that is not a side image, the first of
those near its size; in any other file the first, as tifffile, Fiji and QuPath read it.
``read(path, series=i)`` takes another.
"""

from __future__ import annotations

import re

import numpy as np

from sciconv.errors import ConfigError
from sciconv.io._common import warn_caller
from sciconv.io._tiff_vendor import scn_macro

#: Words in the names tifffile gives a whole slide's side images.
SIDE_IMAGES = ("thumbnail", "label", "macro", "overview", "map")
#: tifffile's flags of the whole-slide formats, whose files hold side images beside the scan
#: (Aperio SVS, Hamamatsu NDPI, Leica SCN, Philips, PerkinElmer QPTIFF, Ventana BIF). Any other
#: TIFF's first series is its image, as tifffile, Fiji and QuPath read it (review: a
#: multi-position OME-TIFF whose positions were named "A1 label-free" or sized 64 and 256 px
#: had another position read).
WHOLE_SLIDE_FLAGS = ("svs", "ndpi", "scn", "philips", "qpi", "bif")


def plane_size(series) -> tuple[int, int]:
    """``(H, W)`` of one plane of a tifffile series (its ``Y`` and ``X`` axes; the last two
    axes of a series without them)."""
    axes, shape = str(series.axes), tuple(int(n) for n in series.shape)
    if "Y" in axes and "X" in axes and len(axes) == len(shape):
        return shape[axes.index("Y")], shape[axes.index("X")]
    return (shape[-2], shape[-1]) if len(shape) >= 2 else (1, shape[0] if shape else 0)


def side_image(tif, index: int) -> str | None:
    """What series ``index`` of ``tif`` is when it is a whole slide's side image and the file
    says so (``"macro"``, ``"label"``, ``"thumbnail"``, ...); None for any other image."""
    if not whole_slide(tif):
        return None
    words = re.findall(r"[a-z]+", str(getattr(tif.series[index], "name", "") or "").lower())
    word = next((w for w in SIDE_IMAGES if w in words), None)
    if word is not None:
        return word
    return "macro" if scn_macro(tif, index) else None


def whole_slide(tif) -> bool:
    """Whether ``tif`` (a tifffile.TiffFile) is a whole-slide format (:data:`WHOLE_SLIDE_FLAGS`)."""
    flags = getattr(tif, "flags", set())
    return any(f in flags for f in WHOLE_SLIDE_FLAGS)


def main_series(tif) -> int:
    """The index of the image :func:`sciconv.io.read` takes from ``tif`` (a tifffile.TiffFile)
    by default: in a whole-slide format (:func:`whole_slide`), among the series that are not
    side images (:func:`side_image`; all of them when every one is), the first whose plane has
    at least half the pixels of the largest (a Leica SCN's scan, not the overview before it);
    in any other TIFF the first series, as other tools read it.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "two.tif"
    >>> with tifffile.TiffWriter(p) as w:  # two positions of a plate, the second larger
    ...     w.write(np.zeros((8, 20), np.uint8))
    ...     w.write(np.zeros((64, 80), np.uint8))
    >>> with tifffile.TiffFile(p) as tif:
    ...     main_series(tif)
    0
    """
    if not whole_slide(tif):
        return 0
    n = len(tif.series)
    areas = [int(np.prod(plane_size(s))) for s in tif.series]
    candidates = [i for i in range(n) if side_image(tif, i) is None] or list(range(n))
    top = max(areas[i] for i in candidates)
    return next(i for i in candidates if areas[i] * 2 >= top)


def choose_series(tif, series, path) -> int:
    """The index of the series to read: ``series`` (validated against what the file holds) or
    :func:`main_series` when it is None."""
    n = len(tif.series)
    if series is None:
        return main_series(tif)
    if isinstance(series, bool) or not isinstance(series, (int, np.integer)):
        raise ConfigError(f"series must be an int (0 = the file's first image); got {series!r}")
    if not -n <= int(series) < n:
        listed = "; ".join(describe_series(tif, i) for i in range(min(n, 8)))
        raise ConfigError(
            f"series={series}, but the file holds {n} image{'s' if n > 1 else ''}: {listed}"
            f"{'; ...' if n > 8 else ''}",
            path=path,
        )
    return int(series) % n


def describe_series(tif, index: int, *, quote: bool = True) -> str:
    """``'20x' (series 1, 1024 x 1280 px, 3 levels)``, or ``series 0 (304 x 800 px, macro:
    an overview of the whole slide)`` for an unnamed one: what a warning lists."""
    s = tif.series[index]
    name = str(getattr(s, "name", "") or "").strip()
    if name.lower() in ("", "baseline", "unknown"):  # tifffile's names that say nothing
        name = ""
    h, w = plane_size(s)
    parts = [] if not name else [f"series {index}"]
    parts.append(f"{h} x {w} px")
    levels = len(getattr(s, "levels", ()) or ())
    if levels > 1:
        parts.append(f"{levels} levels")
    what = side_image(tif, index)
    if what is not None and what not in name.lower():
        parts.append(
            "macro: an overview of the whole slide" if what == "macro" else f"a slide's {what}"
        )
    head = (repr(name) if quote else name) if name else f"series {index}"
    return f"{head} ({', '.join(parts)})"


def warn_other_series(tif, index: int, path) -> None:
    """Say which images of the file are not read when a user would expect one of them: when
    the image read is not the first (other tools' default), or another image is near its size
    and not a side image (a plate's other positions). A slide's thumbnail, label and macro
    beside its scan, and reduced copies, go unsaid."""
    try:
        message = _other_series_message(tif, index, path)
    except Exception:  # an odd series table: the read itself reports what is wrong
        return
    if message:
        warn_caller(message)


def _other_series_message(tif, index: int, path) -> str | None:
    n = len(tif.series)
    top = int(np.prod(plane_size(tif.series[index])))
    others = [
        i
        for i in range(n)
        if i != index
        and side_image(tif, i) is None
        and int(np.prod(plane_size(tif.series[i]))) * 2 >= top
    ]
    if index == 0 and not others:
        return None
    left = [i for i in range(n) if i != index]
    listed = ", ".join(describe_series(tif, i, quote=False) for i in left[:6])
    listed += ", ..." if len(left) > 6 else ""
    choose = (
        "series=i reads image i (sciconv predict --series i); or split the file into one file "
        "per image (tifffile: TiffFile(path).series[i].asarray())"
    )
    if index == 0:
        return (
            f"{path}: the file holds {n} images (positions/series); only the first, "
            f"{describe_series(tif, 0)}, is read, not {listed}; {choose}"
        )
    return (
        f"{path}: the file holds {n} images; the main one, {describe_series(tif, index)}, "
        f"is read, not {listed}; {choose}"
    )
