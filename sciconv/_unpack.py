"""Unpack a downloaded archive once, next to it, safely when several jobs do it at once.

A job array or several notebooks loading the same data set for the first time each unpack into
a scratch folder of their own (:func:`sciconv._atomic.scratch_folder`), check that every member
is there, and rename it into place: the first rename wins and the others take its folder (one
shared scratch folder had each job delete the others' files, and a short copy was kept as
complete). A stamp in the folder (``.complete``) names the archive it came from, so an archive
fetched again is unpacked again; the ``.stale`` folder of a killed unpacking is cleared. A
read-only cache (a shared data folder) is unpacked into a temporary folder, removed once read.

Examples
--------
>>> import pathlib, tempfile, zipfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with zipfile.ZipFile(root / "set.zip", "w") as zf:
...     zf.writestr("a/b.txt", "hello")
>>> folder, temporary = unpack_once(root / "set.zip", stamp="v1", what="the archive")
>>> (folder / "a" / "b.txt").read_text(), temporary
('hello', False)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from sciconv._archive import zip_name_problem, zip_size_problem
from sciconv._atomic import pid_alive, remove_scratch, scratch_folder
from sciconv.errors import DownloadError, WriteError

__all__ = ["extract_checked", "removed_when_read", "unpack_once"]

#: The stamp file of an unpacked folder: the ``stamp`` of the archive it was unpacked from.
DONE = ".complete"


def unpack_once(
    file: Path,
    *,
    stamp: str,
    what: str,
    max_total: int | None = None,
    max_ratio: float | None = None,
    writable_hint: str = "",
) -> tuple[Path, bool]:
    """The folder the zip archive ``file`` is unpacked in (``NAME/`` beside ``NAME.zip``), and
    whether it is a temporary one (a read-only folder: remove it when read).

    Parameters
    ----------
    file : pathlib.Path
        The archive.
    stamp : str
        What identifies this copy of the archive (``sciconv.fetch``: its recorded SHA-256,
        else its size and time): a folder unpacked from another archive is unpacked again.
    what : str
        The archive in messages (``"the DSB2018 archive"``).
    max_total, max_ratio : optional
        The decompression-bomb limits of :func:`sciconv._archive.zip_size_problem`.
    writable_hint : str
        The end of the warning for a read-only folder (where a lasting copy can go).

    Returns
    -------
    (pathlib.Path, bool)

    Raises
    ------
    DownloadError
        The archive cannot be read or unpacked, or a member is missing after unpacking; nothing
        is kept.

    Examples
    --------
    >>> import pathlib, tempfile, zipfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(root / "set.zip", "w") as zf:
    ...     zf.writestr("x.txt", "1")
    >>> unpack_once(root / "set.zip", stamp="v1", what="it")[0].name
    'set'
    """
    folder = file.with_suffix("")
    for old in folder.parent.glob(f".{folder.name}.*.stale"):  # of a killed unpacking
        pid = old.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not pid_alive(int(pid)):
            remove_scratch(old)
    if _unpacked_from(folder, stamp):
        return folder, False
    try:
        scratch = scratch_folder(folder)
    except WriteError as err:
        from sciconv.io._common import warn_caller

        hint = f" ({writable_hint})" if writable_hint else ""
        why = getattr(err.__cause__, "strerror", None) or err.message
        warn_caller(
            f"{file.parent} cannot be written ({why}): {what} is unpacked into a "
            f"temporary folder for this call{hint}",
            "sciconv",
        )
        scratch = Path(tempfile.mkdtemp(prefix=f"sciconv-{folder.name}-"))
        extract_checked(file, scratch, what=what, max_total=max_total, max_ratio=max_ratio)
        return scratch, True
    try:
        extract_checked(file, scratch, what=what, max_total=max_total, max_ratio=max_ratio)
        (scratch / DONE).write_text(stamp, encoding="utf-8")
        for _ in range(3):
            try:
                os.rename(scratch, folder)  # atomic; refused while another job's folder is there
                return folder, False
            except OSError:
                if _unpacked_from(folder, stamp):
                    return folder, False  # another job unpacked it first: take that one
                aside = folder.with_name(f".{folder.name}.{os.getpid()}.stale")
                with contextlib.suppress(OSError):
                    os.rename(folder, aside)  # from another archive, or interrupted: away
                remove_scratch(aside)
        raise DownloadError(f"cannot unpack {what} into {folder}", path=file)
    except OSError as err:
        if isinstance(err, DownloadError):
            raise
        raise DownloadError(f"cannot unpack {what} into {folder} ({err})", path=file) from err
    finally:
        remove_scratch(scratch)  # gone after the rename; a failed unpacking leaves nothing


def _unpacked_from(folder: Path, stamp: str) -> bool:
    try:
        return (folder / DONE).read_text(encoding="utf-8") == stamp
    except (OSError, UnicodeDecodeError):
        return False


def extract_checked(
    file: Path,
    scratch: Path,
    *,
    what: str,
    max_total: int | None = None,
    max_ratio: float | None = None,
) -> None:
    """Extract every member of the zip ``file`` into ``scratch`` and check each is there.

    Raises :class:`~sciconv.errors.DownloadError` (and removes ``scratch``) for an archive over
    the size limits, unreadable, or with members missing after extraction.

    Examples
    --------
    >>> import pathlib, tempfile, zipfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(root / "set.zip", "w") as zf:
    ...     zf.writestr("x.txt", "1")
    >>> extract_checked(root / "set.zip", root / "out", what="it")
    >>> (root / "out" / "x.txt").read_text()
    '1'
    """
    try:
        with zipfile.ZipFile(file) as zf:
            if max_total is not None and max_ratio is not None:
                problem = zip_size_problem(zf, max_total=max_total, max_ratio=max_ratio)
                if problem:
                    raise DownloadError(
                        f"refusing to unpack {what}: {problem} (limits: "
                        "sciconv.fetch.MAX_EXTRACT_BYTES, MAX_EXTRACT_RATIO); delete it and "
                        "fetch it again",
                        path=file,
                    )
            unsafe = zip_name_problem(zf)
            if unsafe:  # zipfile would strip it; no honest archive has one (QA 53)
                raise DownloadError(
                    f"refusing to unpack {what}: {unsafe}; it was not made by the dataset's "
                    "publisher: delete it",
                    path=file,
                )
            zf.extractall(scratch)  # zipfile inflates no member beyond its declared size
            members = [m.filename for m in zf.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        remove_scratch(scratch)
        if isinstance(err, DownloadError):
            raise
        advice = "delete it and fetch it again" if isinstance(err, zipfile.BadZipFile) else ""
        raise DownloadError(
            f"cannot unpack {what} into {scratch.parent} ({err}){'; ' if advice else ''}{advice}",
            path=file,
        ) from err
    missing = [m for m in members if not (scratch / m).is_file()]
    if missing:
        remove_scratch(scratch)
        raise DownloadError(
            f"unpacking {what} left out {len(missing)} of {len(members)} members (e.g. "
            f"{missing[0]}); nothing was kept",
            path=file,
        )


def removed_when_read(items: Iterable, folder: Path) -> Iterator:
    """Yield ``items``, then remove ``folder`` (also when the reading stops early).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> list(removed_when_read(iter([1, 2]), folder)), folder.exists()
    ([1, 2], False)
    """
    try:
        yield from items
    finally:
        remove_scratch(folder)
