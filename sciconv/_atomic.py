"""Private: write outputs atomically and never overwrite without being asked.

Every writer in sciconv (images, catalogs, models, reports) goes through :func:`atomic_output`, so a
process killed mid-write leaves the old file or no file, never a partial one.

``overwrite=False`` is atomic: the finished temporary file is hard-linked onto the target
(``os.link`` fails when the target exists), so of several writers racing for one new file exactly
one succeeds and the others raise :class:`~sciconv.errors.OutputExistsError`. Where the file system
has no hard links (some FAT, SMB and FUSE mounts) sciconv falls back to checking for the target and
renaming, which two writers racing within the same instant can both pass: the documented limit.

A writer killed mid-write leaves a hidden partial file ``.{stem}.{pid}.{random}.part{suffixes}``
next to the target; the next write of the same target removes those whose writer process is gone
and that have not changed for :data:`STALE_SECONDS` (a writer on another machine sharing the
folder has a pid this machine cannot check: the age keeps its file safe while it writes).

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_output(d / "a.txt") as tmp:
...     _ = tmp.write_text("hello")
>>> (d / "a.txt").read_text()
'hello'
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sciconv.errors import OutputExistsError, SciconvError, WriteError

#: A partial file of a dead writer is removed once it is this many seconds old.
STALE_SECONDS = 60.0

# errors of a writer meaning "this folder or disk cannot take the file" (mapped to WriteError)
_WRITE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EFBIG,
    errno.EIO,
}

# errors of os.link meaning "no hard links here" (not "the target exists")
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def check_writable(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Return ``path`` as a Path; raise :class:`~sciconv.errors.OutputExistsError` if it exists (no
    ``overwrite``).

    Examples
    --------
    >>> check_writable("does/not/exist.fits", overwrite=False).name
    'exist.fits'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists; pass overwrite=True to replace it", path=path)
    if path.is_dir():
        raise OutputExistsError("output path is a directory", path=path)
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary file keeps the target's suffixes (``.fits``, ``.tif``, ...) so format detection by
    extension works on it. On any exception the temporary file is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "cat.csv"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("a,b\\n")
    >>> target.exists()
    True
    """
    path = check_writable(path, overwrite=overwrite)
    suffix = "".join(path.suffixes) or ".tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        # a leading "." keeps the temporary file hidden (io.list_images skips it) if we are
        # killed; the pid in the name tells a later writer whether its owner is still alive
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.{os.getpid()}.", suffix=".part" + suffix, dir=path.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()  # writers (astropy, tifffile) create the file themselves
    except OSError as err:  # read-only or missing folder, full disk, quota
        raise _write_error(err, path) from err
    try:
        try:
            yield tmp
        except OSError as err:  # the writer's own failure: map only "the disk refused"
            if isinstance(err, SciconvError) or err.errno not in _WRITE_ERRNOS:
                raise
            raise _write_error(err, path) from err
        try:
            if not tmp.exists():
                raise OSError(f"{path}: writer produced no file")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                _link_new(tmp, path)
        except OSError as err:
            if isinstance(err, SciconvError):
                raise
            raise _write_error(err, path) from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_error(err: OSError, path: Path) -> WriteError:
    """A WriteError naming the target (never the hidden temporary file) and the reason."""
    reason = err.strerror or str(err)
    return WriteError(f"cannot write ({reason}); nothing was written", path=path)


def _link_new(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path`` only if nothing is there, atomically where hard links exist."""
    try:
        os.link(tmp, path)  # fails with FileExistsError when the target exists: no race
    except FileExistsError:
        raise OutputExistsError("output appeared while writing; not replaced", path=path) from None
    except OSError as err:
        if err.errno not in _NO_LINKS:
            raise
        # no hard links on this file system: check, then rename (a narrow race remains)
        if path.exists():
            raise OutputExistsError(
                "output appeared while writing; not replaced", path=path
            ) from None
        os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def remove_stale_partials(path: str | os.PathLike) -> list[Path]:
    """Remove partial files that killed writers of ``path`` left behind; return them.

    A partial file is stale when its writer process (the pid in its name) is gone and it has not
    changed for :data:`STALE_SECONDS`. Files of other targets are never touched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> remove_stale_partials(pathlib.Path(tempfile.mkdtemp()) / "a.fits")
    []
    """
    path = Path(path)
    suffix = "".join(path.suffixes) or ".tmp"
    pattern = re.compile(
        rf"\.{re.escape(path.stem)}\.(\d+)\.[A-Za-z0-9_]+\.part{re.escape(suffix)}"
    )
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.stem)}.*.part*"))
    except OSError:
        return removed
    now = time.time()
    for candidate in candidates:
        match = pattern.fullmatch(candidate.name)
        if not match:
            continue
        try:
            if now - candidate.stat().st_mtime < STALE_SECONDS:
                continue
            if _pid_alive(int(match.group(1))):
                continue
            candidate.unlink()
        except OSError:
            continue
        removed.append(candidate)
    return removed
