"""Opening a file that must be a regular file, without blocking on a FIFO or reading a device.

``open(path)`` of a named pipe blocks until a writer appears (for ever, for a FIFO left by a tool
or planted in an upload), and a link to ``/dev/zero`` reads until memory runs out; a check made
with ``stat`` before ``open`` can be raced. :func:`open_regular` opens without blocking and checks
what it opened.
"""

from __future__ import annotations

import errno
import io
import os
import stat


class NotRegularFileError(OSError):
    """The path names a FIFO, socket, device or folder, not a regular file."""

    def __str__(self) -> str:  # the file is named by the error that reports it
        return str(self.strerror)


def open_regular(path: str | os.PathLike):
    """Open ``path`` for binary reading if it is a regular file (after links).

    The file is opened non-blocking (a FIFO without a writer does not block), checked with
    ``fstat`` on the opened descriptor (no race with a replaced path), then set back to blocking.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    io.BufferedReader
        The open file; close it (a ``with`` block).

    Raises
    ------
    NotRegularFileError
        A FIFO, socket, device or folder (an :class:`OSError`: its ``strerror`` says which).
    OSError
        The file cannot be opened (missing: :class:`FileNotFoundError`).

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "a.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("hi")
    >>> with open_regular(path) as f:
    ...     f.read()
    b'hi'
    >>> os.mkfifo(os.path.join(folder, "pipe"))
    >>> open_regular(os.path.join(folder, "pipe"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.io._open.NotRegularFileError: not a regular file (a FIFO, socket or device)
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
            raise NotRegularFileError(errno.EINVAL, f"not a regular file ({kind})", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        raw = io.FileIO(fd, "rb")
        raw.name = os.fspath(path)  # for readers that name or reopen the file (tifffile)
        return io.BufferedReader(raw)
    except BaseException:
        os.close(fd)
        raise
