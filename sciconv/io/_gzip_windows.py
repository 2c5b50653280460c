"""Windows of a gzip-compressed FITS HDU (``.fits.gz``), read from a decompressed copy made at
the first window.

astropy reads a section of a ``.fits.gz`` by decompressing the stream from its start, for every
window: a lazy image read block by block paid that each time (QA: 19 s per 256 px window of a
1024 px file). :class:`GzipWindows` decompresses the file once, when a window is first asked
for (opening the image, its shape or pixel scale decompress nothing), into a temporary file,
and reads the windows from it through a mapping of their own; :meth:`GzipWindows.close`
removes the copy. When the temporary folder cannot hold the copy, :meth:`GzipWindows.read`
gives None and the caller reads the compressed stream.

Most ``.fits.gz`` files never get here: the padding check decompresses every compressed FITS
file when it is opened and keeps those bytes (:func:`sciconv.io._fits_stream.open_fits`), and
astropy reads that copy as a plain file. :class:`GzipWindows` serves the files read from the
compressed stream instead (a header the check cannot size, a copy the temporary folder could not
hold when the file was opened).

The file decompressed is the one astropy opened, not the path read again at the first window
(QA: after ``os.chdir`` a relative path named nothing, and a file replaced under its name gave
the new file's pixels under the old header): :meth:`GzipWindows.of` opens the file when the
image is opened and keeps it open, checking that it is the one astropy holds (device and
inode). The copy has no name in any folder (:func:`tempfile.TemporaryFile`: unlinked at
creation on POSIX, deleted on close on Windows), so a process killed with SIGKILL leaves no
decompressed image behind in the temporary folder (QA: 36 MB per killed ``sciconv predict``
of a 3000 px image, never removed).

Examples
--------
>>> import gzip, pathlib, tempfile, numpy as np
>>> from astropy.io import fits
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.fits.gz"
>>> with gzip.open(path, "wb") as out:
...     fits.PrimaryHDU(np.arange(12, dtype=">f4").reshape(3, 4)).writeto(out)
>>> with fits.open(path) as hdul:
...     windows = GzipWindows.of(hdul[0], path, ">f4", (3, 4))
>>> windows.read((slice(1, 3), slice(0, 2))).tolist()
[[4.0, 5.0], [8.0, 9.0]]
>>> windows.close()
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
import threading
import zlib
from typing import BinaryIO

import numpy as np

from sciconv.errors import InvalidImageError
from sciconv.io._common import brief
from sciconv.io._mapped import read_mapped

__all__ = ["GzipWindows", "gunzipped_copy"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class GzipWindows:
    """The windows of one gzip-compressed HDU's pixels (its byte ``start`` in the stream), read
    from ``source``: the compressed file, open (this object closes it)."""

    def __init__(self, source: BinaryIO, start: int, dtype: str, shape: tuple) -> None:
        self._source, self._start, self._dtype, self._shape = source, start, dtype, shape
        self._lock = threading.Lock()
        self._copy: BinaryIO | None = None  # made at the first read; the source closed then

    @classmethod
    def of(cls, h, path, dtype: str, shape: tuple) -> GzipWindows | None:
        """For the astropy HDU ``h`` of a gzip-compressed file (None for any other, and when
        the file at ``path`` is no longer the one astropy opened: the stream is read then)."""
        fileobj = getattr(h, "_file", None)
        start = getattr(h, "_data_offset", None)  # in the decompressed stream
        if getattr(fileobj, "compression", None) != "gzip" or not isinstance(start, int):
            return None
        source = _open_same(fileobj, path)
        return None if source is None else cls(source, start, dtype, shape)

    def read(self, idx) -> np.ndarray | None:
        """``pixels[idx]`` (big-endian, as stored); None when no copy could be made."""
        with self._lock:
            if self._source is not None:
                self._copy = gunzipped_copy(self._source)
                with contextlib.suppress(OSError):  # read whole: one descriptor less held
                    self._source.close()  # (macOS allows 256 a process: review)
                self._source = None
            if self._copy is None:
                return None
            ref = (self._copy, self._dtype, self._shape, self._start, "C")
        return read_mapped(ref, idx)

    def close(self) -> None:
        """Close the compressed file and the copy (which goes with it); a later :meth:`read`
        gives None."""
        with self._lock:
            for file in (self._copy, self._source):
                if file is not None:
                    with contextlib.suppress(OSError):
                        file.close()
            self._copy = self._source = None


def _open_same(fileobj, path) -> BinaryIO | None:
    """``path`` opened for reading if it is the file astropy's ``fileobj`` holds open (the same
    device and inode; unchecked when astropy's file cannot be reached); None otherwise."""
    raw = getattr(getattr(fileobj, "_file", None), "fileobj", None)  # gzip.GzipFile's own
    try:
        held = os.fstat(raw.fileno())
    except (AttributeError, OSError, ValueError):  # no descriptor to compare with
        held = None
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        source = open(path, "rb")  # kept open: GzipWindows closes it
    except OSError:
        return None
    if held is not None:
        stat = os.fstat(source.fileno())
        if (stat.st_dev, stat.st_ino) != (held.st_dev, held.st_ino):  # replaced meanwhile
            source.close()
            return None
    return source


def gunzipped_copy(source: str | os.PathLike | BinaryIO) -> BinaryIO | None:
    """A temporary decompressed copy of a gzip-compressed file, for reading it window by window.

    ``source`` is a path or an open binary file, read from its start (its position is moved).
    The copy is an open file (at its start) with no name in the temporary folder (nothing is
    left there if the process is killed); closing it removes it.

    Returns
    -------
    file or None
        The copy, open for reading; None when ``source`` is not gzip, or when the temporary
        folder cannot hold the copy (the caller then reads the compressed stream).

    Raises
    ------
    InvalidImageError
        ``source`` starts as gzip but cannot be decompressed (truncated, corrupt).

    Examples
    --------
    >>> import gzip, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.fits.gz"
    >>> with gzip.open(path, "wb") as out:
    ...     _ = out.write(b"SIMPLE  =                    T")
    >>> with gunzipped_copy(path) as copy:
    ...     copy.read()[:6]
    b'SIMPLE'
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return gunzipped_copy(fh)
    name = getattr(source, "name", None)
    name = name if isinstance(name, (str, os.PathLike)) else None  # not a bare descriptor
    source.seek(0)
    if source.read(2) != _GZIP_MAGIC:
        return None
    source.seek(0)
    try:
        copy = tempfile.TemporaryFile(prefix="sciconv-", suffix=".fits")
    except OSError:  # a read-only or missing temporary folder: the compressed stream is read
        return None
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as src:
            shutil.copyfileobj(src, copy, _CHUNK)
        copy.flush()
        copy.seek(0)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        copy.close()
        raise InvalidImageError(f"not a readable gzip file ({brief(exc)})", path=name) from exc
    except OSError:  # a full temporary folder: the compressed stream is read
        copy.close()
        return None
    return copy
