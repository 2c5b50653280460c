"""Read and write scientific images: FITS (plain, gzipped, tile-compressed), TIFF, PNG and JPEG.

:func:`read` turns a file into a :class:`GridImage` whose ``.data`` is channels-last ``(H, W, C)``
float32 with NaN where pixels are bad (FITS ``BLANK``, NaN, Inf), a matching boolean ``.mask``, the
FITS ``.header`` and a celestial 2-D ``.wcs`` (or None). :func:`write` writes arrays back,
carrying a FITS header and WCS over, always atomically. :func:`list_images` lists the image
files of a folder.

FITS as telescopes write it
    With ``hdu=None`` the first HDU holding image pixels is read (HST, JWST and fpack files keep an
    empty primary HDU). ``BSCALE``/``BZERO``/``BLANK`` are applied here, not by astropy, so every
    astropy version gives the same float32 values. Degenerate axes (radio ``FREQ``/``STOKES`` of
    length 1) are squeezed; a cube's third axis becomes channels, or a stack with ``stack=True``.
    A WCS that astropy cannot build, or one without celestial axes, gives ``wcs=None`` and a
    :class:`~sciconv.errors.SciconvWarning`; the pixels are kept.

Microscopy
    TIFF axes come from tifffile's series (``"YX"``, ``"YXS"``, ``"CYX"``, ``"ZYX"``, ...) or from
    ``axes=``; colour samples (``S``) and channels (``C``) become channels, one other axis
    (``Z``, ``T``, ``Q``, ...) becomes channels when there are no colour channels, several need
    ``stack=True``.
    An alpha channel that is fully opaque is dropped (``meta["alpha"]`` says so); otherwise kept.
    Palette images are expanded to RGB.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from sciconv import io
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = io.write(folder / "a.fits", np.ones((4, 5), dtype=np.float32), history="demo")
>>> img = io.read(folder / "a.fits")
>>> img.shape, img.data.dtype.name, bool(img.mask.any())
((4, 5, 1), 'float32', False)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import stat
import struct
import sys
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._atomic import atomic_output
from sciconv._validation import look_up_option
from sciconv.errors import (
    ConfigError,
    DatasetError,
    InvalidImageError,
    SciconvError,
    SciconvWarning,
)

__all__ = [
    "FITS_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "GridImage",
    "LazyImage",
    "list_images",
    "read",
    "write",
]

FITS_EXTENSIONS = (
    ".fits",
    ".fit",
    ".fts",
    ".fz",
    ".fits.gz",
    ".fit.gz",
    ".fts.gz",
    ".fits.fz",
    ".fits.bz2",
    ".fits.Z",
)
TIFF_EXTENSIONS = (".tif", ".tiff")
PNG_EXTENSIONS = (".png",)
JPEG_EXTENSIONS = (".jpg", ".jpeg")
IMAGE_EXTENSIONS = FITS_EXTENSIONS + TIFF_EXTENSIONS + PNG_EXTENSIONS + JPEG_EXTENSIONS

_WRITE_FORMATS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".fit.gz": "fits",
    ".fts.gz": "fits",
    ".fits.fz": "fits-compressed",
    ".fz": "fits-compressed",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
}

_MAGIC = (
    (b"SIMPLE  =", "fits"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\x1f\x9d", "lzw"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)

# Roles of the axes of a raw array: spatial, channel, stack (N) and degenerate (length 1, dropped).
_Y, _X, _C, _N, _ONE = "Y", "X", "C", "N", "1"
_TIFF_AXES = (
    "YXCSZTNQIRPHEFLMAB"  # letters tifffile uses; Y/X spatial, C/S channels, rest stack-like
)


def _warn(message: str) -> None:
    """Warn with SciconvWarning, attributed to the first caller outside this module."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, SciconvWarning, stacklevel=level)


# --------------------------------------------------------------------------------------------------
# Public containers
# --------------------------------------------------------------------------------------------------


class LazyImage:
    """An image on disk read region by region: ``lazy[y0:y1, x0:x1]`` -> float32 ``(h, w, C)``.

    Returned as ``GridImage.data`` by ``read(..., lazy=True)``. Only the pixels asked for are read
    (FITS through astropy's ``hdu.section``, uncompressed TIFF through a memory map), with
    ``BSCALE``/``BZERO``/``BLANK`` applied and bad pixels set to NaN, exactly as :func:`read` would.
    ``np.asarray(lazy)`` reads everything.

    Attributes
    ----------
    shape : tuple of int
        ``(H, W, C)``.
    dtype : numpy.dtype
        Always float32.
    ndim : int
        Always 3.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "big.fits"
    >>> _ = io.write(p, np.arange(20, dtype=np.int16).reshape(4, 5))
    >>> img = io.read(p, lazy=True)
    >>> img.data.shape
    (4, 5, 1)
    >>> img.data[1:3, 0:2, 0]
    array([[ 5.,  6.],
           [10., 11.]], dtype=float32)
    >>> img.data.close()
    """

    def __init__(
        self,
        reader: Callable[[slice, slice], np.ndarray],
        shape: tuple[int, int, int],
        *,
        path: str | None = None,
        closer: Callable[[], None] | None = None,
    ):
        self._reader = reader
        self._shape = tuple(int(s) for s in shape)
        self._path = path
        self._closer = closer

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self._shape))

    def __len__(self) -> int:
        return self._shape[0]

    def __repr__(self) -> str:
        return f"LazyImage(shape={self._shape}, dtype=float32, path={self._path!r})"

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (3 - (len(key) - 1))
            key = key[:i] + fill + key[i + 1 :]
        if len(key) > 3:
            raise IndexError(f"too many indices for LazyImage of shape {self._shape}: {key!r}")
        key = key + (slice(None),) * (3 - len(key))
        ky, kx, kc = key
        ys, y_local = _bounding(ky, self._shape[0], "y")
        xs, x_local = _bounding(kx, self._shape[1], "x")
        if ys.stop <= ys.start or xs.stop <= xs.start:
            block = np.empty(
                (max(ys.stop - ys.start, 0), max(xs.stop - xs.start, 0), self._shape[2]),
                dtype=np.float32,
            )
        else:
            block = self._reader(ys, xs)
        # index one axis at a time (two index arrays at once would pair up, not cross)
        ints = [i for i, k in enumerate((y_local, x_local)) if isinstance(k, int)]
        block = block[slice(0, 1) if 0 in ints else y_local]
        block = block[:, slice(0, 1) if 1 in ints else x_local]
        block = block[:, :, kc]
        return np.squeeze(block, axis=tuple(ints)) if ints else block

    def __array__(self, dtype=None, copy=None):
        out = self[:, :, :]
        return out if dtype is None else out.astype(dtype)

    def close(self) -> None:
        """Close the file behind this image (reading afterwards raises)."""
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass(repr=False)
class GridImage:
    """An image with its metadata: pixels channels-last plus FITS header, WCS and bad-pixel mask.

    Parameters
    ----------
    data : numpy.ndarray or LazyImage
        ``(H, W, C)`` float32, NaN where bad; ``(N, H, W, C)`` when read with ``stack=True``; a
        :class:`LazyImage` when read with ``lazy=True``.
    header : astropy.io.fits.Header or None
        The header of the HDU read (FITS only).
    wcs : astropy.wcs.WCS or None
        Celestial 2-D WCS of the pixel grid, or None.
    mask : numpy.ndarray or None
        Bool, same shape as ``data``, True = bad pixel. None when lazy.
    path : str or None
        The file read.
    meta : dict
        Format, original dtype and axes, HDU index and EXTNAME, BUNIT, ...

    Examples
    --------
    >>> import numpy as np
    >>> img = GridImage(np.zeros((4, 6, 1), dtype=np.float32))
    >>> img.cutout(1, 3, 2, 6).shape
    (2, 4, 1)
    """

    data: Any
    header: Any = None
    wcs: Any = None
    mask: np.ndarray | None = None
    path: str | None = None
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``: ``(H, W, C)`` (or ``(N, H, W, C)`` for a stack)."""
        return tuple(self.data.shape)

    def __repr__(self) -> str:
        wcs = "None" if self.wcs is None else "/".join(self.wcs.wcs.ctype)
        return (
            f"GridImage(shape={self.shape}, path={self.path!r}, wcs={wcs}, "
            f"header={'None' if self.header is None else f'<{len(self.header)} cards>'})"
        )

    def cutout(self, y0: int, y1: int, x0: int, x1: int) -> GridImage:
        """Return the pixels ``[y0:y1, x0:x1]`` with the WCS (and header WCS keywords) shifted.

        Parameters
        ----------
        y0, y1, x0, x1 : int
            Row and column bounds, ``0 <= y0 < y1 <= H`` and ``0 <= x0 < x1 <= W``.

        Returns
        -------
        GridImage
            In memory (a cutout of a lazy image reads only that region).

        Examples
        --------
        >>> import numpy as np
        >>> img = GridImage(np.arange(12, dtype=np.float32).reshape(3, 4, 1))
        >>> img.cutout(1, 3, 1, 3).data[..., 0]
        array([[ 5.,  6.],
               [ 9., 10.]], dtype=float32)
        """
        shape = self.shape
        ny, nx = shape[-3], shape[-2]
        ys = _validate_bounds(y0, y1, ny, "y", self.path)
        xs = _validate_bounds(x0, x1, nx, "x", self.path)
        if isinstance(self.data, LazyImage):
            data = self.data[ys, xs]
        else:
            data = np.array(self.data[..., ys, xs, :])
        if self.mask is not None:
            mask = np.array(self.mask[..., ys, xs, :])
        else:
            mask = np.isnan(data)
        wcs, header = _slice_wcs(self.wcs, self.header, ys, xs)
        meta = dict(self.meta)
        meta["cutout"] = (int(ys.start), int(ys.stop), int(xs.start), int(xs.stop))
        return GridImage(data, header=header, wcs=wcs, mask=mask, path=self.path, meta=meta)


# --------------------------------------------------------------------------------------------------
# read
# --------------------------------------------------------------------------------------------------


def read(
    path: str | os.PathLike,
    *,
    hdu: int | str | tuple[str, int] | None = None,
    axes: str | None = None,
    stack: bool = False,
    section: tuple[slice, slice] | None = None,
    lazy: bool = False,
) -> GridImage:
    """Read a FITS, TIFF, PNG or JPEG file into a :class:`GridImage`.

    Parameters
    ----------
    path : str or os.PathLike
        The file. The format is taken from its first bytes; the extension only has to agree.
    hdu : int, str or (str, int), optional
        FITS only: HDU index, EXTNAME, or (EXTNAME, EXTVER). Default: the first HDU holding pixels.
    axes : str, optional
        TIFF only: the axes of the stored array (e.g. ``"CYX"``, ``"YXC"``, ``"ZYX"``), overriding
        what tifffile reports. ``Y`` and ``X`` must appear once; ``C``/``S`` are channels.
    stack : bool
        Return a stack ``(N, H, W, C)`` instead of ``(H, W, C)``: FITS cube planes (all axes beyond
        the second) become ``N`` with ``C = 1``; TIFF ``Z``/``T``/... axes become ``N``.
    section : (slice, slice), optional
        Read only ``[ys, xs]`` of the image (step 1); the WCS and header are shifted to match.
        Only those pixels are read from an uncompressed or tile-compressed file.
    lazy : bool
        Return ``.data`` as a :class:`LazyImage` that reads regions on demand (``.mask`` is None).

    Returns
    -------
    GridImage
        ``.data`` float32 ``(H, W, C)`` with NaN at bad pixels, ``.mask`` True there.

    Raises
    ------
    InvalidImageError
        The file is missing, unreadable, empty, truncated, not an image, or holds no 2-D pixels;
        the message names the file and the problem.
    ConfigError
        An argument is not valid (``hdu``, ``axes``, ``section``, ``stack`` with ``lazy``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cube.fits"
    >>> _ = write(p, np.zeros((8, 8, 3), dtype=np.float32))
    >>> read(p).shape, read(p, stack=True).shape
    ((8, 8, 3), (3, 8, 8, 1))
    >>> read(p, section=(slice(2, 6), slice(0, 4))).shape
    (4, 4, 3)
    """
    path, kind = _validate_path(path)
    _validate_read_args(path, hdu=hdu, axes=axes, stack=stack, section=section, lazy=lazy)
    try:
        return _read(path, kind, hdu=hdu, axes=axes, stack=stack, section=section, lazy=lazy)
    except SciconvError:
        raise
    except MemoryError as exc:
        raise InvalidImageError(
            "not enough memory to read the image; use lazy=True or section=", path=path
        ) from exc
    except Exception as exc:  # a reader library failed in a way not foreseen above
        raise InvalidImageError(
            f"unexpected error while reading ({_short(exc)}); the file may be damaged",
            path=path,
        ) from exc


def _read(path: Path, kind: str, *, hdu, axes, stack, section, lazy) -> GridImage:
    if kind == "fits":
        if axes is not None:
            raise ConfigError("axes= applies to TIFF files only; FITS axes come from the header")
        return _read_fits(path, hdu=hdu, stack=stack, section=section, lazy=lazy)
    if hdu is not None:
        raise ConfigError(f"hdu= applies to FITS files only; {path.name} is {kind.upper()}")
    if kind == "tiff":
        return _read_tiff(path, axes=axes, stack=stack, section=section, lazy=lazy)
    if axes is not None:
        raise ConfigError(f"axes= applies to TIFF files only; {path.name} is {kind.upper()}")
    return _read_pil(path, kind=kind, stack=stack, section=section, lazy=lazy)


def _validate_path(path) -> tuple[Path, str]:
    """Check the file exists, is readable and looks like an image; return it and its format."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidImageError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        if os.path.lexists(path):
            target = os.readlink(path)
            raise InvalidImageError(
                f"broken symbolic link (target {target!r} does not exist)", path=path
            )
        raise InvalidImageError("file not found", path=path)
    try:
        st = path.stat()
    except OSError as exc:
        raise InvalidImageError(f"cannot access file: {exc.strerror or exc}", path=path) from exc
    if stat.S_ISDIR(st.st_mode):
        raise InvalidImageError("is a directory, not an image file", path=path)
    if not stat.S_ISREG(st.st_mode):
        raise InvalidImageError("not a regular file (device, FIFO or socket)", path=path)
    if st.st_size == 0:
        raise InvalidImageError("empty file (0 bytes)", path=path)
    if not os.access(path, os.R_OK):
        raise InvalidImageError("permission denied: the file is not readable", path=path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except PermissionError as exc:
        raise InvalidImageError("permission denied: the file is not readable", path=path) from exc
    except OSError as exc:
        raise InvalidImageError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    expected = _format_from_name(path)
    found = next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)
    if found in ("gzip", "bzip2", "lzw"):
        if expected not in (None, "fits"):
            raise InvalidImageError(
                f"{found}-compressed file with a {expected.upper()} name; only FITS may be "
                "compressed this way",
                path=path,
            )
        return path, "fits"
    if found is None:
        raise InvalidImageError(_describe_unknown(head, expected), path=path)
    if expected is not None and found != expected and {found, expected} != {"jpeg", "png"}:
        raise InvalidImageError(
            f"named as {expected.upper()} but the content is {found.upper()}; rename the file",
            path=path,
        )
    return path, found


def _format_from_name(path: Path) -> str | None:
    name = path.name.lower()
    for exts, fmt in (
        (FITS_EXTENSIONS, "fits"),
        (TIFF_EXTENSIONS, "tiff"),
        (PNG_EXTENSIONS, "png"),
        (JPEG_EXTENSIONS, "jpeg"),
    ):
        if name.endswith(tuple(e.lower() for e in exts)):
            return fmt
    return None


def _describe_unknown(head: bytes, expected: str | None) -> str:
    what = "not a FITS, TIFF, PNG or JPEG file"
    if expected is not None:
        what = f"not a {expected.upper()} file"
    text = head.lstrip()
    lowered = text[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in lowered:
        return f"{what}: it holds HTML/XML (a web page saved in place of the image?)"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and all(c.isprintable() or c in "\r\n\t" for c in decoded):
        start = decoded.strip()[:40]
        return f"{what}: it holds text starting {start!r}"
    return f"{what}: unrecognized content starting {head[:16]!r}"


def _validate_read_args(path, *, hdu, axes, stack, section, lazy) -> None:
    if hdu is not None:
        ok = (
            (isinstance(hdu, (int, np.integer)) and not isinstance(hdu, bool))
            or isinstance(hdu, str)
            or (
                isinstance(hdu, tuple)
                and len(hdu) == 2
                and isinstance(hdu[0], str)
                and isinstance(hdu[1], (int, np.integer))
            )
        )
        if not ok:
            raise ConfigError(
                f"hdu must be an int index, an EXTNAME string or (EXTNAME, EXTVER); got {hdu!r}"
            )
    if axes is not None:
        if not isinstance(axes, str) or not axes:
            raise ConfigError(f"axes must be a string such as 'YX', 'CYX' or 'ZYX'; got {axes!r}")
        up = axes.upper()
        bad = [c for c in up if c not in _TIFF_AXES]
        if bad or up.count("Y") != 1 or up.count("X") != 1 or len(set(up)) != len(up):
            raise ConfigError(
                "axes must name each axis once with letters from "
                f"{_TIFF_AXES!r}, including exactly one 'Y' and one 'X'; got {axes!r}"
            )
    if not isinstance(stack, (bool, np.bool_)):
        raise ConfigError(f"stack must be True or False; got {stack!r}")
    if not isinstance(lazy, (bool, np.bool_)):
        raise ConfigError(f"lazy must be True or False; got {lazy!r}")
    if stack and lazy:
        raise ConfigError("stack=True and lazy=True cannot be combined; read the stack eagerly")
    if section is not None:
        if (
            not isinstance(section, tuple)
            or len(section) != 2
            or not all(isinstance(s, slice) for s in section)
        ):
            raise ConfigError(
                f"section must be a pair of slices (ys, xs), e.g. (slice(0, 64), slice(0, 64)); "
                f"got {section!r}"
            )
        if any(s.step not in (None, 1) for s in section):
            raise ConfigError(f"section slices must have step 1; got {section!r}")


def _section_slices(section, ny: int, nx: int, path) -> tuple[slice, slice]:
    if section is None:
        return slice(0, ny), slice(0, nx)
    ys = slice(*section[0].indices(ny)[:2])
    xs = slice(*section[1].indices(nx)[:2])
    if ys.stop <= ys.start or xs.stop <= xs.start:
        raise ConfigError(
            f"section {section!r} selects no pixels of an image of {ny} x {nx} pixels", path=path
        )
    return ys, xs


def _validate_bounds(lo, hi, n: int, name: str, path) -> slice:
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"cutout bounds must be ints; got {name}0={lo!r}, {name}1={hi!r}")
    if not 0 <= lo < hi <= n:
        raise ConfigError(
            f"cutout {name}-range [{lo}, {hi}) is empty or outside the image (0 to {n})", path=path
        )
    return slice(int(lo), int(hi))


def _bounding(key, n: int, name: str) -> tuple[slice, Any]:
    """Smallest step-1 range covering ``key`` on an axis of length ``n`` and the local index."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        i = int(key)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for {name} with size {n}")
        i %= n
        return slice(i, i + 1), 0
    if isinstance(key, slice):
        r = range(*key.indices(n))
        if len(r) == 0:
            return slice(0, 0), slice(None)
        lo, hi = min(r), max(r) + 1
        if r.step == 1:
            return slice(lo, hi), slice(None)
        return slice(lo, hi), np.asarray(r) - lo
    raise IndexError(f"LazyImage supports ints and slices on {name}; got {key!r}")


# --------------------------------------------------------------------------------------------------
# axis plans: raw array -> (H, W, C) or (N, H, W, C)
# --------------------------------------------------------------------------------------------------


def _arrange(block: np.ndarray, roles: Sequence[str], *, stack: bool) -> np.ndarray:
    """Reorder ``block`` (degenerate axes indexed away) into ``(h, w, C)`` or ``(N, h, w, C)``."""
    roles = [r for r in roles if r != _ONE]
    order = (
        [i for i, r in enumerate(roles) if r == _N]
        + [roles.index(_Y), roles.index(_X)]
        + [i for i, r in enumerate(roles) if r == _C]
    )
    block = np.transpose(block, order)
    n_stack = sum(r == _N for r in roles)
    lead = int(np.prod(block.shape[:n_stack])) if n_stack else 1
    h, w = block.shape[n_stack], block.shape[n_stack + 1]
    c = int(np.prod(block.shape[n_stack + 2 :])) if block.ndim > n_stack + 2 else 1
    out = block.reshape(lead, h, w, c)
    return out if stack else out[0]


def _raw_index(roles: Sequence[str], ys: slice, xs: slice) -> tuple:
    idx = []
    for r in roles:
        if r == _Y:
            idx.append(ys)
        elif r == _X:
            idx.append(xs)
        elif r == _ONE:
            idx.append(0)
        else:
            idx.append(slice(None))
    return tuple(idx)


# --------------------------------------------------------------------------------------------------
# FITS
# --------------------------------------------------------------------------------------------------


def _fits():
    from astropy.io import fits

    return fits


def _open_fits(path: Path):
    fits = _fits()
    try:
        return fits.open(
            path,
            mode="readonly",
            do_not_scale_image_data=True,
            ignore_missing_end=True,
            lazy_load_hdus=True,
        )
    except Exception as exc:  # astropy raises OSError, ValueError, KeyError, ... on bad files
        raise InvalidImageError(f"not a readable FITS file ({_short(exc)})", path=path) from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Unparsable:
    def __repr__(self) -> str:
        return "<unparsable card>"


_UNPARSABLE = _Unparsable()


def _hget(header, key: str, default=None):
    """``header.get`` that survives unparsable cards (returns ``_UNPARSABLE`` for those)."""
    try:
        return header.get(key, default)
    except Exception:  # astropy raises VerifyError/ValueError on cards it cannot parse
        return _UNPARSABLE


def _hdu_dims(header) -> tuple[int, ...] | None:
    """NAXISn in FITS order (NAXIS1 first) from a header, or None if they are not valid."""
    naxis = _hget(header, "NAXIS", 0)
    if isinstance(naxis, bool) or not isinstance(naxis, (int, np.integer)) or not 0 <= naxis <= 999:
        return None
    dims = []
    for i in range(1, int(naxis) + 1):
        n = _hget(header, f"NAXIS{i}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            return None
        dims.append(int(n))
    return tuple(dims)


def _is_image_hdu(h) -> bool:
    fits = _fits()
    # CompImageHDU subclasses ImageHDU from astropy 7 on, BinTableHDU before (astropy 6.1 is
    # the newest release for Python 3.10), so name it explicitly.
    image_types = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
    return isinstance(h, image_types) and not isinstance(h, fits.GroupsHDU)


def _select_hdu(hdul, hdu, path: Path):
    """Return (index, HDU) of the HDU to read."""
    if hdu is None:
        seen = []
        try:
            for i, h in enumerate(hdul):
                dims = _hdu_dims(h.header)
                if _is_image_hdu(h) and dims and all(d > 0 for d in dims):
                    return i, h
                name = _hget(h.header, "EXTNAME", "PRIMARY" if i == 0 else "")
                seen.append(f"{i}:{type(h).__name__}{'(' + str(name) + ')' if name else ''}")
        except Exception as exc:
            raise InvalidImageError(
                f"FITS structure is damaged after HDU {len(seen) - 1} ({_short(exc)})", path=path
            ) from exc
        if len(seen) == 1 and _is_image_hdu(hdul[0]):
            raise InvalidImageError(
                "no image data: header-only FITS (NAXIS=0 or a zero-length axis)", path=path
            )
        raise InvalidImageError(
            f"no image HDU with pixels (HDUs: {', '.join(seen) or 'none'})", path=path
        )
    try:
        if isinstance(hdu, tuple):
            key = (hdu[0], int(hdu[1]))
        else:
            key = int(hdu) if not isinstance(hdu, str) else hdu
        h = hdul[key]
        index = hdul.index_of(key) if not isinstance(key, int) else key % max(len(hdul), 1)
    except (KeyError, IndexError) as exc:
        names = _hdu_names(hdul)
        raise InvalidImageError(f"no HDU {hdu!r} in this file (HDUs: {names})", path=path) from exc
    except Exception as exc:
        raise InvalidImageError(f"cannot open HDU {hdu!r} ({_short(exc)})", path=path) from exc
    if not _is_image_hdu(h):
        raise InvalidImageError(
            f"HDU {hdu!r} is a {type(h).__name__}, not an image (HDUs: {_hdu_names(hdul)})",
            path=path,
        )
    dims = _hdu_dims(h.header)
    if not dims or not all(d > 0 for d in dims):
        raise InvalidImageError(f"HDU {hdu!r} holds no pixels (NAXIS dims {dims})", path=path)
    return index, h


def _hdu_names(hdul) -> str:
    out = []
    try:
        for i, h in enumerate(hdul):
            name = _hget(h.header, "EXTNAME", "PRIMARY" if i == 0 else "")
            ver = _hget(h.header, "EXTVER")
            label = f"{name},{ver}" if ver is not None and name else str(name)
            out.append(f"{i}:{type(h).__name__}({label})")
    except Exception:
        out.append("... (damaged)")
    return ", ".join(out)


def _number(header, key: str, default: float, path: Path) -> float:
    value = _hget(header, key, default)
    if value is _UNPARSABLE:
        raise InvalidImageError(f"header keyword {key} is unparsable", path=path)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidImageError(f"header keyword {key} is not a number: {value!r}", path=path)
    value = float(value)
    if not math.isfinite(value):
        raise InvalidImageError(f"header keyword {key} is not finite: {value!r}", path=path)
    return value


class _Scaling:
    """Physical value = raw * bscale + bzero; raw == blank (integer data) -> NaN."""

    def __init__(self, header, bitpix: int, path: Path):
        self.bscale = _number(header, "BSCALE", 1.0, path)
        self.bzero = _number(header, "BZERO", 0.0, path)
        self.integer = bitpix > 0
        blank = _hget(header, "BLANK")
        self.blank = None
        if blank is not None and self.integer:
            if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)):
                _warn(f"{path}: BLANK is not an integer ({blank!r}); ignored")
            else:
                self.blank = int(blank)
        self.path = path

    def apply(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw)
        identity = self.bscale == 1.0 and self.bzero == 0.0
        if identity and raw.dtype.kind == "f" and raw.dtype.itemsize <= 4:
            out = raw.astype(np.float32)
            big = None
        elif identity and raw.dtype.kind in "iub" and raw.dtype.itemsize <= 2:
            out = raw.astype(np.float32)
            big = None
        else:
            big = raw.astype(np.float64)
            if self.bscale != 1.0:
                big *= self.bscale
            if self.bzero != 0.0:
                big += self.bzero
            with np.errstate(over="ignore", invalid="ignore"):
                out = big.astype(np.float32)
        bad = ~np.isfinite(out)
        if big is not None and bad.any():
            overflow = int(np.count_nonzero(bad & np.isfinite(big)))
            if overflow:
                _warn(
                    f"{self.path}: {overflow} pixel(s) exceed the float32 range after "
                    f"BSCALE={self.bscale:g}/BZERO={self.bzero:g}; set to NaN and masked"
                )
        if self.blank is not None and raw.dtype.kind in "iu":
            bad |= raw == self.blank
        out[bad] = np.nan
        return out


def _fits_roles(raw_shape: tuple[int, ...], *, stack: bool, path: Path) -> list[str]:
    """Roles of the numpy axes of FITS data (NAXISn ... NAXIS2, NAXIS1)."""
    if len(raw_shape) < 2:
        raise InvalidImageError(
            f"1-D data (NAXIS={len(raw_shape)}, shape {raw_shape}); an image needs 2 axes",
            path=path,
        )
    extra = raw_shape[:-2]
    roles = [_ONE if n == 1 else "?" for n in extra] + [_Y, _X]
    live = [i for i, r in enumerate(roles) if r == "?"]
    fits_shape = " x ".join(str(n) for n in raw_shape[::-1])
    if len(live) + 2 > 4:
        raise InvalidImageError(
            f"{len(live) + 2}-D data (NAXIS1..n = {fits_shape}); sciconv reads 2-D images, "
            "3-D cubes and 4-D stacks of cubes",
            path=path,
        )
    if stack:
        for i in live:
            roles[i] = _N
    elif len(live) == 1:
        roles[live[0]] = _C
    elif len(live) == 2:
        raise InvalidImageError(
            f"4-D data (NAXIS1..4 = {fits_shape}); pass stack=True to read it as a stack of planes",
            path=path,
        )
    return roles


def _read_fits(path: Path, *, hdu, stack: bool, section, lazy: bool) -> GridImage:
    hdul = _open_fits(path)
    keep_open = False
    try:
        index, h = _select_hdu(hdul, hdu, path)
        header = _inherit(h.header.copy(), hdul, index)
        dims = _hdu_dims(header)
        bitpix = _hget(header, "BITPIX")
        if bitpix not in (8, 16, 32, 64, -32, -64):
            raise InvalidImageError(f"invalid BITPIX {bitpix!r} in HDU {index}", path=path)
        _check_truncated(hdul, index, h, dims, bitpix, path)
        raw_shape = tuple(dims[::-1])
        roles = _fits_roles(raw_shape, stack=stack, path=path)
        scaling = _Scaling(header, bitpix, path)
        ny, nx = raw_shape[-2], raw_shape[-1]
        ys, xs = _section_slices(section, ny, nx, path)
        if not lazy:
            n = int(np.prod(raw_shape[:-2], dtype=np.int64)) * (ys.stop - ys.start)
            _check_memory(n * (xs.stop - xs.start), abs(bitpix) // 8, path)
        wcs = _fits_wcs(header, hdul, path)
        if section is not None:
            wcs, header = _slice_wcs(wcs, header, ys, xs)
        meta = _fits_meta(h, index, header, bitpix, roles, raw_shape, scaling)

        def reader(ys_: slice, xs_: slice) -> np.ndarray:
            idx = _raw_index(roles, _shift(ys_, ys.start), _shift(xs_, xs.start))
            try:
                raw = h.section[idx]
            except Exception as exc:
                raise InvalidImageError(
                    f"cannot read pixels of HDU {index} ({_short(exc)})", path=path
                ) from exc
            return _arrange(scaling.apply(raw), roles, stack=False)

        if lazy:
            n_chan = int(np.prod([raw_shape[i] for i, r in enumerate(roles) if r == _C]))
            shape = (ys.stop - ys.start, xs.stop - xs.start, n_chan)
            data = LazyImage(reader, shape, path=str(path), closer=hdul.close)
            keep_open = True
            return GridImage(data, header=header, wcs=wcs, mask=None, path=str(path), meta=meta)
        try:
            if section is None:  # whole image: astropy memory-maps unscaled data itself
                raw = h.data[_raw_index(roles, slice(None), slice(None))]
            else:  # only the rows/tiles needed are read
                raw = h.section[_raw_index(roles, ys, xs)]
        except Exception as exc:
            raise InvalidImageError(
                f"cannot read pixels of HDU {index} ({_short(exc)})", path=path
            ) from exc
        data = _arrange(scaling.apply(raw), roles, stack=stack)
        del raw
        return GridImage(
            data, header=header, wcs=wcs, mask=np.isnan(data), path=str(path), meta=meta
        )
    finally:
        if not keep_open:
            hdul.close()


def _inherit(header, hdul, index: int):
    """Apply the INHERIT=T convention: an extension gets the primary's cards it does not set."""
    if index == 0 or _hget(header, "INHERIT") is not True:
        return header
    try:
        primary = hdul[0].header
        for card in primary.cards:
            key = card.keyword
            if key in ("", "COMMENT", "HISTORY") or _STRUCTURAL.match(key) or key in header:
                continue
            header.append(card)
    except Exception:  # a damaged primary header: keep the extension's own cards
        pass
    return header


def _check_memory(n_pixels: int, itemsize: int, path: Path) -> None:
    """Refuse to load what cannot fit: raw + float64 scratch + float32 result per pixel."""
    need = n_pixels * (itemsize + 12)
    avail = _available_memory()
    if avail is not None and need > avail:
        raise InvalidImageError(
            f"the image has {n_pixels} pixels and needs about {need / 2**30:.1f} GiB to load, "
            f"more than the {avail / 2**30:.1f} GiB free; use lazy=True or section=",
            path=path,
        )


def _available_memory() -> int | None:
    """Bytes the kernel could hand out now (MemAvailable: free + reclaimable cache), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _shift(s: slice, offset: int) -> slice:
    return slice(s.start + offset, s.stop + offset)


def _check_truncated(hdul, index: int, h, dims, bitpix: int, path: Path) -> None:
    fits = _fits()
    if isinstance(h, fits.CompImageHDU):
        return
    try:
        # HDU._data_offset/_file: private but stable; HDUList.fileinfo() fails on odd headers
        start, fileobj = getattr(h, "_data_offset", None), getattr(h, "_file", None)
        if start is None or fileobj is None:
            info = hdul.fileinfo(index)
            start, fileobj = info["datLoc"], info["file"]
        if getattr(fileobj, "compression", None):
            return
        size = os.path.getsize(path)
        expected = abs(bitpix) // 8 * int(np.prod(dims, dtype=np.int64))
        start = int(start)
    except Exception:
        return
    if start + expected > size:
        raise InvalidImageError(
            f"truncated file: HDU {index} needs {expected} bytes of pixel data from byte {start}, "
            f"but the file has {size} bytes",
            path=path,
        )


def _fits_meta(h, index, header, bitpix, roles, raw_shape, scaling) -> dict:
    names = {"?": "?", _Y: "Y", _X: "X", _C: "C", _N: "N", _ONE: "1"}
    meta = {
        "format": "fits",
        "hdu": index,
        "hdu_type": type(h).__name__,
        "bitpix": int(bitpix),
        "dtype": _fits_dtype(bitpix, scaling),
        "axes": "".join(names[r] for r in roles),
        "raw_shape": raw_shape,
    }
    for key, out in (("EXTNAME", "extname"), ("EXTVER", "extver"), ("BUNIT", "bunit")):
        value = _hget(header, key)
        if value is not None and value is not _UNPARSABLE:
            meta[out] = value
    if scaling.bscale != 1.0 or scaling.bzero != 0.0:
        meta["bscale"], meta["bzero"] = scaling.bscale, scaling.bzero
    if scaling.blank is not None:
        meta["blank"] = scaling.blank
    return meta


def _fits_dtype(bitpix: int, scaling: _Scaling) -> str:
    base = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
    if bitpix > 0 and scaling.bscale == 1.0:
        unsigned = {16: 2**15, 32: 2**31, 64: 2**63}
        if bitpix in unsigned and scaling.bzero == unsigned[bitpix]:
            return f"uint{bitpix}"
        if bitpix == 8 and scaling.bzero == -128:
            return "int8"
    return base[bitpix]


_WCS_KEY = re.compile(
    r"^(WCSAXES|WCSNAME|CTYPE\d+|CRPIX\d+|CRVAL\d+|CDELT\d+|CUNIT\d+|CROTA\d+|CRDER\d+|CSYER\d+"
    r"|CNAME\d+|PC\d+_\d+|CD\d+_\d+|PV\d+_\d+|PS\d+_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX"
    r"|(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)|CPDIS\d+|CQDIS\d+|DP\d+|DQ\d+|CPERR\d+|CQERR\d+"
    r"|D2IMDIS\d+|D2IM\d+|D2IMERR\d+|D2IMEXT|AXISCORR|NPOLEXT)[A-Z]?$"
    r"|^(DP|DQ|D2IM)\d+\..*$"  # record-valued cards (DQ1.NAXES, ...)
)
# Digitized Sky Survey plate solution; astropy re-expresses it as a TPD distortion (CQDISn/DQn).
_DSS_KEY = re.compile(
    r"^(AMDX\d+|AMDY\d+|PPO\d+|PLTRAH|PLTRAM|PLTRAS|PLTDECSN|PLTDECD|PLTDECM|PLTDECS"
    r"|CNPIX\d|XPIXELSZ|YPIXELSZ|PLTSCALE)$"
)


def _fits_wcs(header, hdul, path: Path):
    """Celestial 2-D WCS of the image, or None (warning when a WCS was there but unusable)."""
    # A header without CTYPEn has at most a linear pixel grid: no sky WCS, nothing to warn about.
    ctypes = [_hget(header, f"CTYPE{i}") for i in (1, 2)]
    if not any(isinstance(c, str) and c.strip() for c in ctypes):
        return None
    from astropy.wcs import WCS, FITSFixedWarning

    keys = list(header.keys())
    if any(k.startswith(("CQDIS", "DQ")) for k in keys) and any(_DSS_KEY.match(k) for k in keys):
        # DSS plate keywords next to their own TPD translation (what `header.update(
        # wcs.to_header())` leaves) corrupt wcslib's heap in astropy 8 and abort the process.
        # Both describe the same solution: build the WCS from the TPD one only.
        header = header.copy()
        for k in [k for k in keys if _DSS_KEY.match(k)]:
            with contextlib.suppress(KeyError):
                del header[k]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            w = WCS(header, fobj=hdul, relax=True)
            if not w.has_celestial:
                reason = f"no celestial axes (CTYPE {list(w.wcs.ctype)})"
                w = None
            else:
                lng, lat = w.wcs.lng, w.wcs.lat
                if {lng, lat} != {0, 1}:
                    reason = (
                        f"celestial axes are not the image axes 1 and 2 (lng={lng + 1}, "
                        f"lat={lat + 1})"
                    )
                    w = None
                else:
                    if w.naxis > 2:
                        w = w.celestial
                    w.wcs.set()
                    ny, nx = _hget(header, "NAXIS2", 1), _hget(header, "NAXIS1", 1)
                    centre = np.array([[(nx - 1) / 2, (ny - 1) / 2]], dtype=float)
                    world = w.all_pix2world(centre, 0)
                    back = w.all_world2pix(world, 0) if np.all(np.isfinite(world)) else world
                    if not np.all(np.isfinite(back)) or np.abs(back - centre).max() > 0.01:
                        reason = (
                            "the transform is not invertible at the image centre (singular or "
                            "ill-conditioned CD/PC matrix?)"
                        )
                        w = None
    except Exception as exc:  # InvalidTransformError, VerifyError, ValueError, MemoryError...
        reason = f"astropy cannot build it ({_short(exc)})"
        w = None
    if w is None:
        _warn(f"{path}: WCS ignored: {reason}; pixels kept, wcs=None")
        return None
    return w


def _slice_wcs(wcs, header, ys: slice, xs: slice):
    """WCS and header for the pixels ``[ys, xs]``."""
    if header is not None:
        header = header.copy()
    if wcs is None:
        return None, header
    new = wcs.slice((ys, xs))
    if header is not None:
        header = _replace_wcs_cards(header, new)
    return new, header


def _replace_wcs_cards(header, wcs):
    """Drop every WCS keyword of ``header`` and insert those of ``wcs`` (celestial 2-D)."""
    header = header.copy()
    for key in [k for k in header.keys() if _WCS_KEY.match(k) or _DSS_KEY.match(k)]:
        with contextlib.suppress(KeyError):
            del header[key]
    from astropy.wcs import FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        new_cards = wcs.to_header(relax=True)
    for card in new_cards.cards:
        if card.keyword in ("COMMENT", "HISTORY", ""):
            continue
        header[card.keyword] = (card.value, card.comment)
    return header


# --------------------------------------------------------------------------------------------------
# TIFF
# --------------------------------------------------------------------------------------------------


def _tiff_roles(axes: str, shape: tuple[int, ...], *, stack: bool, path: Path) -> list[str]:
    roles = []
    for a, n in zip(axes, shape):
        if a in "YX":
            roles.append(a)
        elif n == 1:
            roles.append(_ONE)
        elif a in "CS":
            roles.append(_C)
        else:
            roles.append("?")
    others = [i for i, r in enumerate(roles) if r == "?"]
    if stack:
        for i in others:
            roles[i] = _N
    elif others:
        if len(others) == 1 and _C not in roles:
            roles[others[0]] = _C
        else:
            raise InvalidImageError(
                f"TIFF axes {axes!r} (shape {shape}) hold more than channels; pass stack=True to "
                "read a stack (N, H, W, C), or axes= to say which axis is which",
                path=path,
            )
    return roles


def _read_tiff(path: Path, *, axes, stack, section, lazy) -> GridImage:
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise InvalidImageError(f"not a readable TIFF file ({_short(exc)})", path=path) from exc
    try:
        try:
            series = tif.series[0]
            tif_axes = series.axes
            shape = tuple(series.shape)
            dtype = series.dtype
            page = series.pages[0] if series.pages else tif.pages[0]
            photometric = getattr(page, "photometric", None)
        except Exception as exc:
            raise InvalidImageError(f"damaged TIFF structure ({_short(exc)})", path=path) from exc
        if not shape or 0 in shape:
            raise InvalidImageError(f"TIFF holds no pixels (shape {shape})", path=path)
        use_axes = tif_axes if axes is None else axes.upper()
        if len(use_axes) != len(shape):
            raise ConfigError(
                f"axes={axes!r} has {len(use_axes)} letters but the TIFF array has "
                f"{len(shape)} axes (shape {shape}, tifffile axes {tif_axes!r})",
                path=path,
            )
        if "Y" not in use_axes or "X" not in use_axes:
            raise InvalidImageError(
                f"TIFF axes {tif_axes!r} (shape {shape}) have no Y and X; pass axes=", path=path
            )
        palette = photometric is not None and int(photometric) == 3
        meta = {
            "format": "tiff",
            "dtype": np.dtype(dtype).name,
            "axes": tif_axes,
            "shape": shape,
            "photometric": getattr(photometric, "name", photometric),
        }
        if axes is not None:
            meta["axes_override"] = use_axes
        if palette:
            return _read_tiff_palette(tif, page, path, meta, section)
        roles = _tiff_roles(use_axes, shape, stack=stack, path=path)
        ny, nx = shape[use_axes.index("Y")], shape[use_axes.index("X")]
        ys, xs = _section_slices(section, ny, nx, path)
        alpha = _has_alpha(page, use_axes, shape)
        mm = _tiff_memmap(path, shape) if lazy or section is not None else None
        if lazy and mm is not None:
            n_chan = int(np.prod([n for n, r in zip(shape, roles) if r == _C]))
            holder = [mm]

            def reader(ys_: slice, xs_: slice) -> np.ndarray:
                if holder[0] is None:
                    raise InvalidImageError("LazyImage was closed", path=path)
                idx = _raw_index(roles, _shift(ys_, ys.start), _shift(xs_, xs.start))
                return _arrange(_to_float32(holder[0][idx]), roles, stack=False)

            meta["alpha"] = "kept" if alpha else None
            data = LazyImage(
                reader,
                (ys.stop - ys.start, xs.stop - xs.start, n_chan),
                path=str(path),
                closer=lambda: holder.__setitem__(0, None),
            )
            return GridImage(data, path=str(path), meta=meta)
        if lazy:
            _warn(
                f"{path}: this TIFF is compressed or tiled and cannot be memory-mapped; "
                "it was read into memory"
            )
        if mm is not None:  # a section of an uncompressed file: read only those pixels
            n = int(np.prod(shape, dtype=np.int64)) // (ny * nx) * (ys.stop - ys.start)
            _check_memory(n * (xs.stop - xs.start), np.dtype(dtype).itemsize, path)
            raw = np.array(mm[_raw_index(roles, ys, xs)])
            del mm
        else:
            _check_memory(int(np.prod(shape, dtype=np.int64)), np.dtype(dtype).itemsize, path)
            try:
                raw = series.asarray()[_raw_index(roles, ys, xs)]
            except Exception as exc:
                raise InvalidImageError(
                    f"cannot decode TIFF pixels ({_short(exc)})", path=path
                ) from exc
    finally:
        tif.close()
    if alpha:
        raw, roles, meta["alpha"] = _drop_opaque_alpha(raw, roles, use_axes, dtype)
    data = _arrange(_to_float32(raw), roles, stack=stack)
    if lazy:
        data = _InMemoryLazy(data, str(path))
        return GridImage(data, path=str(path), meta=meta)
    return GridImage(data, mask=np.isnan(data), path=str(path), meta=meta)


def _tiff_memmap(path: Path, shape: tuple[int, ...]):
    """A read-only memory map of the first series, or None (compressed, tiled, non-contiguous)."""
    import tifffile

    try:
        mm = tifffile.memmap(path, mode="r")
    except Exception:
        return None
    return mm if tuple(mm.shape) == tuple(shape) else None


def _has_alpha(page, axes: str, shape) -> bool:
    if "S" not in axes:
        return False
    n = shape[axes.index("S")]
    extras = tuple(getattr(page, "extrasamples", ()) or ())
    return n in (2, 4) and (bool(extras) or n == 4)


def _drop_opaque_alpha(raw: np.ndarray, roles, axes: str, dtype):
    """Drop the last sample of the S axis when it is fully opaque (the dtype's maximum)."""
    s = [i for i, (a, r) in enumerate(zip(axes, roles)) if a == "S" and r != _ONE]
    if not s:
        return raw, roles, None
    # position of S among the axes that remain in raw (degenerate axes were indexed away)
    live = [i for i, r in enumerate(roles) if r != _ONE]
    pos = live.index(s[0])
    alpha = np.take(raw, -1, axis=pos)
    top = np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else 1.0
    if np.all(alpha == top):
        return np.delete(raw, -1, axis=pos), roles, "dropped (fully opaque)"
    return raw, roles, "kept"


def _read_tiff_palette(tif, page, path, meta, section) -> GridImage:
    try:
        idx = page.asarray()
        rgb = np.moveaxis(np.asarray(page.colormap)[:, idx], 0, -1)
    except Exception as exc:
        raise InvalidImageError(f"cannot decode palette TIFF ({_short(exc)})", path=path) from exc
    if rgb.dtype == np.uint16 and np.all(rgb % 257 == 0):
        rgb = (rgb // 257).astype(np.uint8)
    meta["palette"] = "expanded to RGB"
    ys, xs = _section_slices(section, rgb.shape[0], rgb.shape[1], path)
    data = _to_float32(rgb[ys, xs])
    return GridImage(data, mask=np.isnan(data), path=str(path), meta=meta)


class _InMemoryLazy(LazyImage):
    """A LazyImage over an array already in memory (fallback for compressed TIFF/PNG/JPEG)."""

    def __init__(self, array: np.ndarray, path: str | None):
        super().__init__(lambda ys, xs: array[ys, xs], array.shape, path=path)


def _to_float32(raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.dtype.kind == "b":
        raw = raw.astype(np.uint8)
    if raw.dtype.kind == "c":
        raise InvalidImageError("complex-valued pixels are not supported")
    out = raw.astype(np.float32)
    if raw.dtype.kind == "f":
        out[~np.isfinite(out)] = np.nan
    return out


# --------------------------------------------------------------------------------------------------
# PNG / JPEG
# --------------------------------------------------------------------------------------------------


def _read_pil(path: Path, *, kind: str, stack, section, lazy) -> GridImage:
    from PIL import Image

    info = _png_ihdr(path) if kind == "png" else None
    meta: dict[str, Any] = {"format": kind}
    if info is not None and info["bit_depth"] == 16 and info["color_type"] in (2, 4, 6):
        raw = _png_decode(path, info)  # Pillow would silently reduce these to 8 bits
        meta.update(dtype="uint16", mode=f"{info['channels']}x16-bit")
    else:
        try:
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                meta["mode"] = mode
                if mode == "P":
                    has_alpha = "transparency" in im.info
                    im = im.convert("RGBA" if has_alpha else "RGB")
                    meta["palette"] = "expanded to RGB"
                elif mode == "PA":
                    im = im.convert("RGBA")
                    meta["palette"] = "expanded to RGB"
                elif mode == "1":
                    im = im.convert("L")
                elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
                raw = np.asarray(im)
        except Exception as exc:
            raise InvalidImageError(
                f"not a readable {kind.upper()} file ({_short(exc)})", path=path
            ) from exc
        meta["dtype"] = raw.dtype.name
        if mode.startswith("I;16") or (
            mode == "I" and info is not None and info["bit_depth"] == 16
        ):
            raw = raw.astype(np.uint16)
            meta["dtype"] = "uint16"
    if raw.ndim == 2:
        raw = raw[:, :, None]
    meta["axes"] = "YXS" if raw.shape[2] > 1 else "YX"
    if raw.shape[0] == 0 or raw.shape[1] == 0:
        raise InvalidImageError(f"image holds no pixels (shape {raw.shape})", path=path)
    if raw.shape[2] in (2, 4):
        top = np.iinfo(raw.dtype).max if raw.dtype.kind in "iu" else 1.0
        if np.all(raw[..., -1] == top):
            raw = raw[..., :-1]
            meta["alpha"] = "dropped (fully opaque)"
        else:
            meta["alpha"] = "kept"
    ys, xs = _section_slices(section, raw.shape[0], raw.shape[1], path)
    data = _to_float32(raw[ys, xs])
    if lazy:
        return GridImage(_InMemoryLazy(data, str(path)), path=str(path), meta=meta)
    if stack:
        data = data[None]
    return GridImage(data, mask=np.isnan(data), path=str(path), meta=meta)


def _png_ihdr(path: Path) -> dict | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(33)
        if len(head) < 33 or head[12:16] != b"IHDR":
            return None
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    except OSError:
        return None
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype, 1)
    return {
        "width": w,
        "height": h,
        "bit_depth": depth,
        "color_type": ctype,
        "channels": channels,
        "interlace": interlace,
    }


def _png_decode(path: Path, info: dict) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG (gray+alpha, RGB, RGBA) that Pillow reads at 8 bits."""
    if info["interlace"]:
        raise InvalidImageError(
            "interlaced 16-bit colour PNG is not supported; save it as TIFF", path=path
        )
    try:
        blob = Path(path).read_bytes()
        pos, chunks = 8, []
        while pos + 8 <= len(blob):
            (length,) = struct.unpack(">I", blob[pos : pos + 4])
            ctype = blob[pos + 4 : pos + 8]
            if ctype == b"IDAT":
                chunks.append(blob[pos + 8 : pos + 8 + length])
            if ctype == b"IEND":
                break
            pos += 12 + length
        raw = zlib.decompress(b"".join(chunks))
    except Exception as exc:
        raise InvalidImageError(f"damaged PNG data ({_short(exc)})", path=path) from exc
    h, w, c = info["height"], info["width"], info["channels"]
    bpp = 2 * c
    stride = w * bpp
    if len(raw) < h * (stride + 1):
        raise InvalidImageError("truncated PNG pixel data", path=path)
    rows = np.frombuffer(raw, dtype=np.uint8, count=h * (stride + 1)).reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        ftype, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif ftype == 2:
            cur = (line + prev) % 256
        elif ftype in (3, 4):
            cur = np.zeros(stride, dtype=np.int32)
            for x in range(0, stride, bpp):
                left = cur[x - bpp : x] if x else np.zeros(bpp, dtype=np.int32)
                up = prev[x : x + bpp]
                if ftype == 3:
                    pred = (left + up) // 2
                else:
                    ul = prev[x - bpp : x] if x else np.zeros(bpp, dtype=np.int32)
                    p = left + up - ul
                    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - ul)
                    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
                cur[x : x + bpp] = (line[x : x + bpp] + pred) % 256
        else:
            raise InvalidImageError(f"damaged PNG data (filter type {ftype} in row {y})", path=path)
        out[y] = cur
        prev = cur
    return out.view(">u2").reshape(h, w, c).astype(np.uint16)


def _png_encode(array: np.ndarray) -> bytes:
    """Encode (H, W, C) uint8/uint16 with C in 1..4 as PNG bytes (no filtering, zlib level 6)."""
    h, w, c = array.shape
    depth = 16 if array.dtype == np.uint16 else 8
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    data = array.astype(">u2" if depth == 16 else np.uint8)
    rows = data.reshape(h, -1).view(np.uint8).reshape(h, -1)
    body = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(body, 6))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------------
# write
# --------------------------------------------------------------------------------------------------


def write(
    path: str | os.PathLike,
    array,
    *,
    like=None,
    overwrite: bool = False,
    history: str | Iterable[str] | None = None,
    header=None,
) -> Path:
    """Write an image to FITS, TIFF or PNG, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; the extension picks the format: ``.fits``/``.fit``/``.fts`` (``.gz`` for
        gzip), ``.fits.fz``/``.fz`` (lossless tile compression), ``.tif``/``.tiff``, ``.png``.
    array : array_like or GridImage
        ``(H, W)`` or ``(H, W, C)``. FITS stores ``(H, W, 1)`` as a 2-D image and ``(H, W, C)``
        as a cube ``(C, H, W)``; TIFF keeps the dtype (integer label maps stay integer); PNG takes
        uint8 or uint16 with 1-4 channels. A GridImage given here is also used as ``like``.
    like : GridImage or astropy.io.fits.Header, optional
        FITS only: header whose cards (and WCS, from ``like.wcs`` when a GridImage) are copied.
        Structural keywords (``NAXISn``, ``BITPIX``, ``BSCALE``, ``BZERO``, ``BLANK``, checksums,
        tile-compression cards) are dropped and regenerated. With a GridImage, its celestial WCS
        (SIP included) replaces every WCS card of its header; other WCS axes (spectral, Stokes)
        and lookup-table distortions are not written (the latter with a warning).
    overwrite : bool
        Replace an existing file; without it an existing file raises ``OutputExistsError``.
    history : str or iterable of str, optional
        Extra FITS HISTORY lines (after ``"Written by sciconv <version>"``); TIFF keeps them in its
        JSON description.
    header : dict or astropy.io.fits.Header, optional
        FITS only: cards set last, over ``like``'s.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InvalidImageError
        The array has the wrong shape, no pixels or a dtype the format cannot store.
    OutputExistsError
        The file exists and ``overwrite`` is False.
    ConfigError
        Unknown extension or an invalid header card.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> labels = np.array([[0, 1], [2, 2]], dtype=np.int32)
    >>> read(write(folder / "labels.tif", labels)).meta["dtype"]
    'int32'
    >>> write(folder / "labels.tif", labels)
    Traceback (most recent call last):
    ...
    sciconv.errors.OutputExistsError: ...labels.tif: output exists; pass overwrite=True ...
    """
    path = Path(path)
    suffix = next(
        (
            ext
            for ext in sorted(_WRITE_FORMATS, key=len, reverse=True)
            if path.name.lower().endswith(ext)
        ),
        "".join(path.suffixes[-2:]).lower() or "(none)",
    )
    fmt = _WRITE_FORMATS.get(
        look_up_option(suffix, tuple(_WRITE_FORMATS), name="output extension", path=path)
    )
    if isinstance(array, GridImage):
        if like is None:
            like = array
        array = array.data
    arr = _validate_array(array, path)
    if isinstance(history, str):
        history = [history]
    history = [str(h) for h in (history or [])]
    if fmt.startswith("fits"):
        hdr = _output_header(arr, like, header, history, path)
        with atomic_output(path, overwrite=overwrite) as tmp:
            _write_fits(tmp, arr, hdr, compressed=fmt == "fits-compressed", path=path)
        return path
    for name, value in (("like", like), ("header", header)):
        if value is not None and _carries_metadata(value):
            _warn(f"{path}: {fmt.upper()} cannot store a FITS header or WCS; {name}= was ignored")
    if fmt == "tiff":
        with atomic_output(path, overwrite=overwrite) as tmp:
            _write_tiff(tmp, arr, history)
        return path
    png = _validate_png(arr, path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(_png_encode(png))
    return path


def _carries_metadata(value) -> bool:
    if isinstance(value, GridImage):
        return value.header is not None or value.wcs is not None
    return bool(len(value)) if hasattr(value, "__len__") else True


def _validate_array(array, path: Path) -> np.ndarray:
    if isinstance(array, LazyImage):
        array = np.asarray(array)
    try:
        arr = np.asarray(array)
    except Exception as exc:
        raise InvalidImageError(
            f"array cannot be converted to numpy ({_short(exc)})", path=path
        ) from exc
    if arr.dtype.kind not in "biuf":
        raise InvalidImageError(
            f"array dtype {arr.dtype} cannot be written as an image (use bool, int, uint or float)",
            path=path,
        )
    if arr.ndim not in (2, 3):
        raise InvalidImageError(
            f"array must be (H, W) or (H, W, C); got shape {arr.shape}", path=path
        )
    if arr.size == 0:
        raise InvalidImageError(f"array has no pixels (shape {arr.shape})", path=path)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    return arr


def _output_header(arr: np.ndarray, like, header, history: list[str], path: Path):
    fits = _fits()
    import sciconv

    out = fits.Header()
    wcs = None
    like_shape = None
    if like is not None:
        if isinstance(like, GridImage):
            if like.header is not None:
                out = like.header.copy()
            wcs = like.wcs
            like_shape = like.shape[-3:-1]
        elif isinstance(like, fits.Header):
            out = like.copy()
        else:
            raise ConfigError(
                f"like must be a GridImage or an astropy.io.fits.Header; got {type(like).__name__}",
                path=path,
            )
    out = _strip_structural(out)
    if wcs is not None:
        if getattr(wcs, "cpdis1", None) is not None or getattr(wcs, "det2im1", None) is not None:
            _warn(
                f"{path}: the WCS lookup-table distortions (CPDIS/D2IM) of like= cannot be written "
                "to a single-HDU file; only the core WCS and SIP terms were kept"
            )
        out = _replace_wcs_cards(out, wcs)
    if like_shape is not None and tuple(like_shape) != tuple(arr.shape[:2]):
        _warn(
            f"{path}: array is {arr.shape[0]} x {arr.shape[1]} pixels but like= is "
            f"{like_shape[0]} x {like_shape[1]}; its WCS was copied unchanged"
        )
    if header is not None:
        items = header.cards if isinstance(header, fits.Header) else None
        try:
            if items is not None:
                for card in items:
                    if card.keyword in ("HISTORY", "COMMENT"):
                        out.add_history(
                            card.value
                        ) if card.keyword == "HISTORY" else out.add_comment(card.value)
                    else:
                        out[card.keyword] = (card.value, card.comment)
            elif isinstance(header, dict):
                for key, value in header.items():
                    out[key] = value
            else:
                raise ConfigError(
                    "header must be a dict or an astropy.io.fits.Header; "
                    f"got {type(header).__name__}",
                    path=path,
                )
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"invalid header card ({_short(exc)})", path=path) from exc
        out = _strip_structural(out)
    out.add_history(f"Written by sciconv {sciconv.__version__}")
    for line in history:
        out.add_history(line)
    return out


_STRUCTURAL = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|GROUPS|BSCALE|BZERO|BLANK|CHECKSUM"
    r"|DATASUM|THEAP|TFIELDS|TTYPE\d+|TFORM\d+|TDIM\d+|ZIMAGE|ZSIMPLE|ZTENSION|ZEXTEND|ZBITPIX"
    r"|ZNAXIS\d*|ZTILE\d+|ZCMPTYPE|ZNAME\d+|ZVAL\d+|ZQUANTIZ|ZDITHER0|ZBLANK|ZPCOUNT|ZGCOUNT"
    r"|ZHECKSUM|ZDATASUM|ZSCALE|ZZERO|ZMASKCMP|END)$"
)


def _strip_structural(header):
    header = header.copy()
    for key in [k for k in header.keys() if _STRUCTURAL.match(k)]:
        with contextlib.suppress(KeyError):
            del header[key]
    return header


def _write_fits(tmp: Path, arr: np.ndarray, header, *, compressed: bool, path: Path) -> None:
    fits = _fits()
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.byteorder not in ("=", "|", "<" if np.little_endian else ">"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    data = arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
    if data.ndim == 3:
        data = np.moveaxis(data, -1, 0)
    data = np.ascontiguousarray(data)
    try:
        if compressed:
            if data.dtype.kind in "iu" and data.dtype.itemsize == 8:
                raise InvalidImageError(
                    "tile-compressed FITS cannot store 64-bit integers; write .fits instead",
                    path=path,
                )
            kwargs = {"compression_type": "GZIP_2"}
            if data.dtype.kind == "f":
                kwargs["quantize_level"] = 0.0  # lossless for floats
            hdu = fits.CompImageHDU(data=data, header=header, **kwargs)
            hdul = fits.HDUList([fits.PrimaryHDU(), hdu])
        else:
            hdul = fits.HDUList([fits.PrimaryHDU(data=data, header=header)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=fits.verify.VerifyWarning)
            hdul.writeto(tmp, output_verify="silentfix", checksum=False)
    except InvalidImageError:
        raise
    except Exception as exc:
        raise InvalidImageError(f"cannot write FITS ({_short(exc)})", path=path) from exc


def _write_tiff(tmp: Path, arr: np.ndarray, history: list[str]) -> None:
    import tifffile

    import sciconv

    meta: dict[str, Any] = {"software": f"sciconv {sciconv.__version__}"}
    if history:
        meta["history"] = history
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        tifffile.imwrite(tmp, arr, photometric="minisblack", metadata={"axes": "YX", **meta})
    elif arr.shape[2] == 3 and arr.dtype in (np.uint8, np.uint16):
        tifffile.imwrite(tmp, arr, photometric="rgb", metadata={"axes": "YXS", **meta})
    else:
        tifffile.imwrite(
            tmp,
            np.ascontiguousarray(np.moveaxis(arr, -1, 0)),
            photometric="minisblack",
            metadata={"axes": "CYX", **meta},
        )


def _validate_png(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype not in (np.uint8, np.uint16):
        raise InvalidImageError(
            f"PNG stores uint8 or uint16 pixels; got {arr.dtype}. Convert the array "
            "(e.g. after sciconv.preprocess.normalize) or write .tif/.fits to keep the values",
            path=path,
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] > 4:
        raise InvalidImageError(
            f"PNG stores 1 to 4 channels; got {arr.shape[2]}. Write .tif or .fits instead",
            path=path,
        )
    if arr.shape[0] >= 2**31 or arr.shape[1] >= 2**31:
        raise InvalidImageError(f"image too large for PNG ({arr.shape})", path=path)
    return arr


# --------------------------------------------------------------------------------------------------
# list_images
# --------------------------------------------------------------------------------------------------

# longest first, so that "a.fits.gz" has the stem "a" (not "a.fits")
_SUFFIXES_LONGEST_FIRST = tuple(
    sorted({e.lower() for e in IMAGE_EXTENSIONS}, key=lambda e: (-len(e), e))
)


def _image_stem(path: str | os.PathLike) -> str:
    """File name without its image extension: ``"a.fits.gz"`` -> ``"a"``, ``"b.TIF"`` -> ``"b"``.

    The one rule for pairing files by name (images and masks, inputs and outputs). A name that
    is only an extension, or has no image extension, falls back to ``Path.stem``.
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """List the image files of ``folder`` by extension, sorted.

    Hidden files (names starting with ``.``, which includes the temporary files of an interrupted
    :func:`write`) and broken links are skipped. Extensions are matched case-insensitively:
    ``.fits .fit .fts .fits.gz .fits.fz .fz .tif .tiff .png .jpg .jpeg``.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to list.
    recursive : bool
        Also list sub-folders (hidden folders are skipped).

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    DatasetError
        ``folder`` does not exist or is not a directory.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write(d / "b.png", np.zeros((2, 2), dtype=np.uint8))
    >>> _ = write(d / "a.fits", np.zeros((2, 2), dtype=np.float32))
    >>> _ = (d / "notes.txt").write_text("x")
    >>> [p.name for p in list_images(d)]
    ['a.fits', 'b.png']
    """
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError("folder not found", path=folder)
    if not folder.is_dir():
        raise DatasetError("not a folder", path=folder)
    pattern = "**/*" if recursive else "*"
    out = []
    for p in folder.glob(pattern):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if not p.name.lower().endswith(tuple(e.lower() for e in IMAGE_EXTENSIONS)):
            continue
        if not p.is_file():  # broken links and folders named like images
            continue
        out.append(p)
    return sorted(out)
