"""Helpers every reader and writer of :mod:`sciconv.io` shares.

Warnings attributed to the caller outside the package, short error text, the axis plans that turn
a raw array into ``(H, W, C)`` or ``(N, H, W, C)``, sections, the memory check and the float32
conversion of pixels. Nothing here knows a file format.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sciconv._warnings import caught
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io._memory import available_memory
from sciconv.io._precision import check_float32_precision

# Roles of the axes of a raw array: spatial, channel, stack (N) and degenerate (length 1, dropped).
ROLE_Y, ROLE_X, ROLE_C, ROLE_N, ROLE_ONE = "Y", "X", "C", "N", "1"

_PACKAGE = __name__.rpartition(".")[0]  # "sciconv.io"


def warn_caller(message: str, package: str = _PACKAGE) -> None:
    """Warn with SciconvWarning, attributed to the first caller outside ``package``
    (``sciconv.io``; ``"sciconv"``: the user's code)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and _in_package(frame.f_globals.get("__name__", ""), package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, SciconvWarning, stacklevel=level)


@contextlib.contextmanager
def library_warnings_said_once(path, what: str):
    """Collect astropy's warnings while a file's structure is parsed and say them in one
    warning naming the file, with the first one's printable text (QA: a corrupt BITPIX made
    astropy parse the pixels as header cards: 6,128 warning lines quoting binary bytes, none
    naming the file). Other warnings pass through as they were."""
    from astropy.utils.exceptions import AstropyWarning

    heard: list = []
    try:
        with caught("always", record=True) as heard:
            yield
    finally:  # said also when the caller stops early (a generator closed: review)
        said = [w for w in heard if issubclass(w.category, AstropyWarning)]
        for w in heard:
            if not issubclass(w.category, AstropyWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if said:
            first = "".join(c if c.isprintable() else "?" for c in str(said[0].message))[:120]
            more = f" ({len(said) - 1} more)" if len(said) > 1 else ""
            warn_caller(f"{path}: astropy found {what} suspect: {first}{more}")


def hdus_said_once(hdul, path):
    """The HDUs of an astropy ``HDUList``, parsed with astropy's warnings said in one line
    (:func:`library_warnings_said_once`)."""
    with library_warnings_said_once(path, "the file's HDUs"):
        yield from hdul


#: A first axis this small before two axes this large looks like channels first (C, H, W).
CHANNELS_FIRST_MAX_C, CHANNELS_FIRST_MIN_SIDE = 4, 16


def looks_channels_first(shape: tuple) -> bool:
    """Whether an image's shape ``(C, H, W)`` looks channels-first: the rule of
    :func:`warn_if_channels_first` (a first axis of at most 4, both others longer than 16).

    Examples
    --------
    >>> looks_channels_first((3, 64, 64)), looks_channels_first((64, 64, 3))
    (True, False)
    """
    if len(shape) != 3:
        return False
    c, h, w = (int(v) for v in shape)
    return c <= CHANNELS_FIRST_MAX_C and h > CHANNELS_FIRST_MIN_SIDE and w > CHANNELS_FIRST_MIN_SIDE


def channels_first_hint(shape: tuple) -> str:
    """The fix an error about an image's channels names when its shape looks channels-first
    (:func:`looks_channels_first`), else "".

    Examples
    --------
    >>> channels_first_hint((3, 256, 256))
    'it looks channels-first (C, H, W): pass np.moveaxis(image, 0, -1)'
    """
    if not looks_channels_first(shape):
        return ""
    return "it looks channels-first (C, H, W): pass np.moveaxis(image, 0, -1)"


def warn_if_channels_first(x, *, name: str, batch: bool | None = None) -> bool:
    """Warn (SciconvWarning) if image ``x`` looks channels-first ``(C, H, W)``; sciconv expects
    channels last ``(H, W, C)``.

    The one rule every entry point shares: a 3-D image (or, for a 4-D batch, each image after
    axis 0) whose first axis is at most 4 long while both the other axes are longer than 16.
    A channels-last image with C <= 4 has a small *last* axis, so it never warns.

    Parameters
    ----------
    x : array-like or shape
        The image ``(H, W, C)`` or batch ``(N, H, W, C)``, or its shape (a tuple of ints).
    name : str
        The argument, named in the warning.
    batch : bool, optional
        Whether ``x`` is a batch. Default None: a 4-D ``x`` is a batch, a 3-D one an image
        (anything else is not checked).

    Returns
    -------
    bool
        Whether it warned.

    Examples
    --------
    >>> import warnings, numpy as np
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn_if_channels_first(np.zeros((3, 64, 64)), name="x")
    ...     warn_if_channels_first(np.zeros((64, 64, 3)), name="x")
    True
    False
    >>> print(seen[0].message)
    x looks channels-first (C, H, W) = (3, 64, 64); sciconv expects channels last (H, W, C): np.moveaxis(x, 0, -1)
    """  # noqa: E501
    try:
        shape = tuple(x) if isinstance(x, tuple) else tuple(np.shape(x))
    except (TypeError, ValueError):  # ragged lists and the like: the caller's checks say so
        return False
    if batch is None:
        batch = len(shape) == 4
    image = shape[1:] if batch else shape
    if not looks_channels_first(image):
        return False
    c, h, w = (int(v) for v in image)
    move = "np.moveaxis(x, 1, -1)" if batch else "np.moveaxis(x, 0, -1)"
    warn_caller(
        f"{name} looks channels-first (C, H, W) = {(c, h, w)}; sciconv expects channels last "
        f"(H, W, C): {move}",
        package="sciconv",
    )
    return True


def _in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# where in its C sources wcslib raised an error: the line before the reason (dropped)
_WCSLIB_WHERE = re.compile(r"^ERROR \d+ in \w+\(\) at line \d+ of file \S+:?$")


def brief(exc: BaseException) -> str:
    """``exc`` in one line: its type and its message's first line (wcslib's: the reason, not
    the C source location before it)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reasons = [line for line in lines if not _WCSLIB_WHERE.match(line)]
    text = (reasons or lines or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def fits_output(tmp: Path, target: Path):
    """Where a writer puts the FITS bytes of ``target`` (its scratch file is ``tmp``): ``tmp``
    itself, or, for a name ending in ``.gz`` in any case, a gzip stream into ``tmp``.

    astropy gzips only a lower-case ``.gz`` (``x.FITS.GZ`` was written uncompressed) and stores
    the file's own name and time in the gzip header: the hidden scratch name (``gunzip -N``
    made ``.x.fits.<pid>.<random>.part.fits``) and bytes that differed at each write. Here the
    header holds the target's name less ``.gz`` and time 0: the same pixels give the same bytes.
    """
    import gzip

    if not target.name.lower().endswith(".gz"):
        yield tmp
        return
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(
            filename=target.name[: -len(".gz")], mode="wb", fileobj=raw, mtime=0
        ) as stream,
    ):
        yield stream


def astropy_fits():
    """``astropy.io.fits``, imported on first use (importing sciconv.io stays cheap)."""
    from astropy.io import fits

    return fits


# --------------------------------------------------------------------------------------------------
# axis plans: raw array -> (H, W, C) or (N, H, W, C)
# --------------------------------------------------------------------------------------------------


def arrange_axes(block: np.ndarray, roles: Sequence[str], *, stack: bool) -> np.ndarray:
    """Reorder ``block`` (degenerate axes indexed away) into ``(h, w, C)`` or ``(N, h, w, C)``."""
    roles = [r for r in roles if r != ROLE_ONE]
    order = (
        [i for i, r in enumerate(roles) if r == ROLE_N]
        + [roles.index(ROLE_Y), roles.index(ROLE_X)]
        + [i for i, r in enumerate(roles) if r == ROLE_C]
    )
    block = np.transpose(block, order)
    n_stack = sum(r == ROLE_N for r in roles)
    lead = int(np.prod(block.shape[:n_stack])) if n_stack else 1
    h, w = block.shape[n_stack], block.shape[n_stack + 1]
    c = int(np.prod(block.shape[n_stack + 2 :])) if block.ndim > n_stack + 2 else 1
    out = block.reshape(lead, h, w, c)
    return out if stack else out[0]


def raw_index(roles: Sequence[str], ys: slice, xs: slice) -> tuple:
    idx = []
    for r in roles:
        if r == ROLE_Y:
            idx.append(ys)
        elif r == ROLE_X:
            idx.append(xs)
        elif r == ROLE_ONE:
            idx.append(0)
        else:
            idx.append(slice(None))
    return tuple(idx)


def shift_axes(s: slice, offset: int) -> slice:
    return slice(s.start + offset, s.stop + offset)


def section_slices(section, ny: int, nx: int, path) -> tuple[slice, slice]:
    if section is None:
        return slice(0, ny), slice(0, nx)
    ys = slice(*section[0].indices(ny)[:2])
    xs = slice(*section[1].indices(nx)[:2])
    if ys.stop <= ys.start or xs.stop <= xs.start:
        raise ConfigError(
            f"section {section!r} selects no pixels of an image of {ny} x {nx} pixels", path=path
        )
    return ys, xs


# --------------------------------------------------------------------------------------------------
# memory and pixel conversion
# --------------------------------------------------------------------------------------------------


def check_memory(n_pixels: int, itemsize: int, path: Path) -> None:
    """Refuse to load what cannot fit: raw + float64 scratch + float32 result per pixel.

    The bound is the smallest of the machine's free memory, this job's cgroup limit (SLURM,
    Kubernetes, Docker) and ``ulimit -v``: each bound is read where the system has it.
    """
    need = n_pixels * (itemsize + 12)
    avail = available_memory()
    if avail is not None and need > avail[0]:
        raise InvalidImageError(
            f"the image has {n_pixels} pixels and needs about {need / 2**30:.1f} GiB to load, "
            f"more than the {avail[0] / 2**30:.1f} GiB {avail[1]}; use lazy=True or section=",
            path=path,
        )


def check_pixel_limit(
    n_pixels: int, path: Path, *, source: str = "the PNG header", windowed: bool = False
) -> None:
    """Refuse what Pillow refuses: more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels.

    Every reader that decodes a whole image into memory applies it (PNG and JPEG through Pillow,
    the 16-bit PNG decoder, TIFF and OME-Zarr), so a file of a few kB that declares a huge image
    is refused before a byte is inflated. Reading window by window (``lazy=True``, ``section=``)
    is not limited: that is how whole slides and survey mosaics are read.

    Parameters
    ----------
    n_pixels : int
        Pixels of one plane (height x width), as Pillow counts them.
    path : pathlib.Path
        The file, named in the error.
    source : str
        What declares the size, for the message.
    windowed : bool
        The format can be read window by window: the message says so.

    Raises
    ------
    InvalidImageError
        Over the limit; the message says how to read the file anyway.

    Examples
    --------
    >>> from pathlib import Path
    >>> check_pixel_limit(1000 * 1000, Path("small.tif"), source="the TIFF", windowed=True)
    """
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and n_pixels > 2 * limit:
        windows = "Read it window by window (lazy=True or section=), or r" if windowed else "R"
        raise InvalidImageError(
            f"{source} claims {n_pixels:,} pixels, more than twice "
            f"PIL.Image.MAX_IMAGE_PIXELS ({limit:,}): a decompression bomb? {windows}aise "
            "PIL.Image.MAX_IMAGE_PIXELS to read it whole if you trust the file",
            path=path,
        )


def first_call():
    """A callable answering True on its first call and False after, from any thread: a lazy
    image's reader checks the float32 precision of its first window only.

    Examples
    --------
    >>> first = first_call()
    >>> first(), first(), first()
    (True, False, False)
    """
    left = iter((True,))  # next() of a tuple iterator is one step: no two threads get True
    return lambda: next(left, False)


def to_float32(
    raw: np.ndarray, *, path: Path | str | None = None, check: bool = True
) -> np.ndarray:
    """``raw`` as float32, non-finite values NaN; with ``check``, a warning naming ``path`` when
    the cast loses the pixels' signal (:func:`sciconv.io.check_float32_precision`; a lazy
    image's reader checks its first window only)."""
    raw = np.asarray(raw)
    if raw.dtype.kind == "b":
        raw = raw.astype(np.uint8)
    if raw.dtype.kind == "c":
        raise InvalidImageError("complex-valued pixels are not supported", path=path)
    if check:
        check_float32_precision(raw, path=path)
    out = raw.astype(np.float32)
    if raw.dtype.kind == "f":
        out[~np.isfinite(out)] = np.nan
    return out


#: Characters a FITS header cannot hold, spelled in ASCII (the rest: accents dropped, escapes).
_FITS_SPELLING = {"µ": "u", "μ": "u", "ß": "ss", "°": "deg", "±": "+/-", "×": "x", "Å": "A"}


def fits_text(text: str, *, exact: bool = False) -> str:
    """``text`` as a FITS header holds it: printable ASCII.

    Accents are dropped (``é`` -> ``e``), a few symbols spelled out (``µ`` -> ``u``, ``ß`` ->
    ``ss``, ``°`` -> ``deg``), tabs and line breaks become spaces, and any other character is
    escaped as Python writes it (``\\u2192``). ``exact`` (a file's name): every non-ASCII
    character escaped, none dropped, so the name is not another file's (``é`` -> ``\\xe9``).

    Examples
    --------
    >>> fits_text("µm, Müller\\t→ done")
    'um, Muller \\\\u2192 done'
    >>> fits_text("champ é.fits", exact=True)
    'champ \\\\xe9.fits'
    """
    import unicodedata

    text = str(text)
    if not exact:
        text = "".join(_FITS_SPELLING.get(c, c) for c in text)
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    text = "".join(" " if c in "\t\n\r\v\f" else c for c in text)
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if 32 <= ord(c) < 127 else f"\\x{ord(c):02x}" for c in text)


def recorded_dtype(image) -> np.dtype | None:
    """The dtype ``image``'s file stored its pixels in, as a GridImage records it in
    ``meta["dtype"]`` (:func:`sciconv.io.read` gives float32 pixels); None when nothing (or
    nothing numpy reads) is recorded: plain arrays say it with their own ``dtype``.

    Parameters
    ----------
    image : GridImage, LazyImage or array-like
        The image as read.

    Returns
    -------
    numpy.dtype or None

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage, recorded_dtype
    >>> recorded_dtype(GridImage(np.zeros((2, 2, 1), np.float32), meta={"dtype": "uint8"}))
    dtype('uint8')
    >>> recorded_dtype(np.zeros(3, np.int16)) is None
    True
    """
    meta = getattr(image, "meta", None)
    stored = meta.get("dtype") if isinstance(meta, dict) else None
    if stored is None:
        return None
    try:
        return np.dtype(stored)
    except TypeError:
        return None


#: The escapes :func:`fits_text` writes for characters a FITS card cannot hold
_FITS_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")


def fits_text_unescaped(text: str) -> str:
    """The text :func:`fits_text` (``exact=True``) spelled as ``text``: its escapes turned back
    into the characters (class names of ``CLASSn`` cards read back as they were given).

    A name holding a backslash escape as plain ASCII (a literal ``\\xe4``) reads back as the
    character: FITS cards cannot tell the two apart.

    Examples
    --------
    >>> from sciconv.io._common import fits_text, fits_text_unescaped
    >>> fits_text_unescaped(fits_text("Grenzfläche 観測", exact=True))
    'Grenzfläche 観測'
    """

    def char(m: re.Match) -> str:
        code = int(m[1][1:], 16)
        return chr(code) if code <= 0x10FFFF else m[0]

    return _FITS_ESCAPE.sub(char, text)


def history_lines(history, *, path: Path | str | None = None) -> list[str]:
    """``history=`` of the writers as a list of lines: a str is one line; None none.

    Raises
    ------
    ConfigError
        ``history`` is neither a str nor an iterable of lines (e.g. a number).
    """
    if history is None:
        return []
    if isinstance(history, str):
        return [history]
    if isinstance(history, (bytes, bytearray)) or not hasattr(history, "__iter__"):
        raise ConfigError(
            f"history must be a str or a list of str (HISTORY lines); got {type(history).__name__}",
            path=path,
        )
    return [str(line) for line in history]


def transparent_as_no_data(data: np.ndarray, meta: dict) -> np.ndarray:
    """``data`` without its alpha channel, once its fully transparent pixels (alpha 0) are NaN
    in every channel, as bad pixels; ``meta["alpha"]`` records it. ``data`` itself unless
    ``meta["alpha"]`` is ``"kept"``: a reader found an alpha channel last (2 or 4 channels).

    A registered or stitched export's transparent frame is not data (QA: it was segmented, 98
    objects in a transparent region, and its black weighed in the brightness stretch: AP@0.5
    0.869 against 0.900). Once those pixels are NaN the alpha has done its job: kept as a
    channel it was shown, measured as a 4th flux band (a mean of 255) and refused by models
    taking grey or RGB (QA), so every reader gives grey or RGB.

    Examples
    --------
    >>> import numpy as np
    >>> rgba = np.full((2, 3, 4), 200, np.float32); rgba[0, :, 3] = 0
    >>> meta = {"alpha": "kept"}
    >>> out = transparent_as_no_data(rgba, meta)
    >>> out.shape, int(np.isnan(out[..., 0]).sum()), meta["alpha"]
    ((2, 3, 3), 3, 'dropped; 3 fully transparent pixels are no data (NaN)')
    """
    if meta.get("alpha") != "kept" or data.shape[-1] not in (2, 4):
        return data
    data, count = transparent_as_nan(data)
    meta["alpha"] = (
        f"dropped; {count} fully transparent pixels are no data (NaN)"
        if count
        else "dropped (no pixel fully transparent)"
    )
    return np.ascontiguousarray(data[..., :-1])


def transparent_as_nan(data: np.ndarray) -> tuple[np.ndarray, int]:
    """``data`` (its last channel alpha) with its fully transparent pixels (alpha 0) NaN in
    every channel (a float32 copy; ``data`` itself when none is), and how many there are.

    Examples
    --------
    >>> import numpy as np
    >>> rgba = np.full((2, 3, 4), 200, np.uint8); rgba[1, 0, 3] = 0
    >>> out, count = transparent_as_nan(rgba)
    >>> count, bool(np.isnan(out[1, 0]).all()), out.dtype.name
    (1, True, 'float32')
    """
    clear = data[..., -1] == 0
    count = int(clear.sum())
    if count:
        data = np.array(data, dtype=np.float32, copy=True)
        data[clear] = np.nan
    return data, count
