"""Private: write outputs atomically and never overwrite without being asked.

Every writer in sciconv (images, catalogs, models, reports) goes through :func:`atomic_output`, so a
process killed mid-write leaves the old file or no file, never a partial one.

``overwrite=False`` is atomic: the finished temporary file is hard-linked onto the target
(``os.link`` fails when the target exists), so of several writers racing for one new file exactly
one succeeds and the others raise :class:`~sciconv.errors.OutputExistsError`. Where the file system
has no hard links (some FAT, SMB and FUSE mounts) sciconv falls back to checking for the target and
renaming, which two writers racing within the same instant can both pass: the documented limit.

A writer killed mid-write leaves a hidden partial file ``.{stem}.{pid}.{random}.part{suffixes}``
next to the target (or, for outputs built in a folder, a scratch folder
``.{name}.{pid}.{random}.part``: :func:`scratch_folder`); the next write of the same target
removes those whose writer process is gone and that have not changed for :data:`STALE_SECONDS` (a
writer on another machine sharing the folder has a pid this machine cannot check: the age keeps
its file safe while it writes). The scratch of a write that failed or was interrupted is removed
until it stays gone (:func:`abandon_scratch`: chunk writes zarr's I/O thread still has in flight
re-create it) and recorded: any later sweep and the end of the process remove it again, though its
writer (this process: a notebook kernel) still runs.

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

import atexit
import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sciconv.errors import OutputExistsError, SciconvError, WriteError

#: A partial file of a dead writer is removed once it is this many seconds old.
STALE_SECONDS = 60.0

#: The scratch of a failed or interrupted write must stay gone this many seconds before
#: :func:`abandon_scratch` returns (chunk writes still in flight in zarr's I/O thread re-create
#: it within milliseconds), waiting :data:`SETTLE_LIMIT` seconds at most.
SETTLE_SECONDS = 0.5
SETTLE_LIMIT = 3.0
_SETTLE_POLL = 0.02

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

# numpy's tofile (under tifffile) reports a short write as an OSError without errno
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")

# errors after which no later file can be written in the same folder (a batch stops there)
_FOLDER_REFUSALS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}

# the longest name part of a target kept in its scratch names (bytes); longer ones are hashed,
# so that ".{part}.{pid}.{random}.part{suffixes}" stays under the usual 255-byte limit
_SCRATCH_PART_BYTES = 120
_SCRATCH_SUFFIX_BYTES = 40

# the targets put in place while a :func:`recording_writes` block runs (one set per block)
_recorders: list[set] = []
_recorders_lock = threading.Lock()

# errors of os.link meaning "no hard links here" (not "the target exists"); EINVAL: Windows'
# ERROR_INVALID_FUNCTION / ERROR_NOT_SUPPORTED (exFAT and FAT32 disks, SMB shares), as Python
# maps them (link(2) on POSIX never reports it)
_NO_LINKS = {
    errno.EPERM,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EXDEV,
    errno.EMLINK,
    errno.ENOSYS,
    errno.EINVAL,
}


def check_overwrite(overwrite) -> None:
    """Refuse an ``overwrite`` that is not True or False: a truthy ``"no"`` replaced the file
    (QA), where ``read(stack="yes")`` was refused.

    Examples
    --------
    >>> check_overwrite(False)
    >>> check_overwrite("no")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: overwrite must be True or False; got 'no'
    """
    from sciconv._validation import check_bool

    check_bool(overwrite, name="overwrite")


def check_writable(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Return ``path`` as a Path; raise :class:`~sciconv.errors.OutputExistsError` if it exists (no
    ``overwrite``).

    Examples
    --------
    >>> check_writable("does/not/exist.fits", overwrite=False).name
    'exist.fits'
    """
    check_overwrite(overwrite)
    path = Path(path)
    try:
        exists, is_dir = os.path.lexists(path), path.is_dir()  # a broken link is there too
    except OSError as err:  # a name too long, a folder without permission
        raise _write_error(err, path) from err
    if exists and not overwrite:
        raise OutputExistsError(
            f"output exists{broken_link(path)}; pass overwrite=True to replace it", path=path
        )
    if is_dir:
        raise OutputExistsError("output path is a directory", path=path)
    return path


def broken_link(path: str | os.PathLike) -> str:
    """``" (a broken symbolic link to TARGET)"`` for a link whose target is gone, else ``""``:
    the words an "output exists" message adds for it (QA: "output appeared while writing").

    Examples
    --------
    >>> import os, tempfile, pathlib
    >>> link = pathlib.Path(tempfile.mkdtemp()) / "a.tif"
    >>> os.symlink("/purged/scratch/a.tif", link)
    >>> broken_link(link)
    ' (a broken symbolic link to /purged/scratch/a.tif)'
    """
    if os.path.islink(path) and not os.path.exists(path):
        return f" (a broken symbolic link to {os.readlink(path)})"
    return ""


def scratch_name_parts(path: str | os.PathLike) -> tuple[str, str]:
    """The name part and suffixes that the scratch names of ``path`` are made of
    (``.{part}.{pid}.{random}.part{suffixes}``): its stem and suffixes, a long stem shortened
    with a hash of it (and long suffixes cut to the last ones), so that a target with a legal
    name never gets a scratch name over the file system's limit.

    Examples
    --------
    >>> scratch_name_parts("out/a_prob.fits.gz")
    ('a_prob.fits', '.fits.gz')
    >>> part, suffix = scratch_name_parts("x" * 240 + "_labels.tif")
    >>> len(part.encode()) <= 120, suffix
    (True, '.tif')
    """
    path = Path(path)
    suffix = "".join(path.suffixes) or ".tmp"
    while len(os.fsencode(suffix)) > _SCRATCH_SUFFIX_BYTES and len(path.suffixes) > 1:
        suffix = suffix[suffix.index(".", 1) :]
    if len(os.fsencode(suffix)) > _SCRATCH_SUFFIX_BYTES:
        suffix = ".tmp"
    return _shortened(path.stem), suffix


def _shortened(part: str) -> str:
    """``part`` when it is short; else its start and a hash of the whole."""
    if len(os.fsencode(part)) <= _SCRATCH_PART_BYTES:
        return part
    digest = hashlib.sha1(os.fsencode(part)).hexdigest()[:16]
    head = part
    while len(os.fsencode(head)) > _SCRATCH_PART_BYTES - 17:
        head = head[:-1]
    return f"{head}~{digest}"


@contextlib.contextmanager
def recording_writes() -> Iterator[set]:
    """Collect the targets this process puts in place while the block runs: the files
    :func:`atomic_output` finished and the targets :func:`scratch_folder` was asked for (outputs
    built in a folder, moved into place by their writer).

    ``sciconv predict`` removes only these when an input fails, never a file another process
    wrote meanwhile.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with recording_writes() as written:
    ...     with atomic_output(target) as tmp:
    ...         _ = tmp.write_text("x")
    >>> written == {target}
    True
    """
    written: set = set()
    with _recorders_lock:
        _recorders.append(written)
    try:
        yield written
    finally:  # this very set: another thread's may be equal to it (list.remove compares ==;
        # QA: two predicts in threads, one ended "unexpected ValueError" with its products made)
        with _recorders_lock:
            _recorders[:] = [r for r in _recorders if r is not written]


def _record(path: Path) -> None:
    with _recorders_lock:
        for written in _recorders:
            written.add(path)


def stops_every_write(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) says the disk is full, over quota or
    read-only: no later file can be written there either.

    Examples
    --------
    >>> stops_every_write(WriteError("cannot write")), stops_every_write(OSError(errno.EROFS, "x"))
    (False, True)
    """
    seen = set()
    current = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and not isinstance(current, SciconvError):
            if current.errno in _FOLDER_REFUSALS:
                return True
            if current.errno is None and _SHORT_WRITE.search(str(current)):
                return True
        current = current.__cause__ or current.__context__
    return False


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
    part, suffix = scratch_name_parts(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        # a leading "." keeps the temporary file hidden (io.list_images skips it) if we are
        # killed; the pid in the name tells a later writer whether its owner is still alive
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{part}.{os.getpid()}.", suffix=".part" + suffix, dir=path.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()  # writers (astropy, tifffile) create the file themselves
    except OSError as err:  # read-only or missing folder, full disk, quota
        raise _write_error(err, path) from err
    try:
        try:
            yield tmp
        except (SciconvError, OSError) as err:  # the writer's own failure
            mapped = target_error(err, tmp, path)
            if mapped is None:
                raise
            raise mapped from err
        try:
            if not tmp.exists():
                raise OSError(f"{path}: writer produced no file")
            with open(tmp, "r+b") as fh:  # Windows: fsync (_commit) needs write access
                os.fsync(fh.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                _link_new(tmp, path)
            _record(path)
        except OSError as err:
            if isinstance(err, SciconvError):
                raise
            raise _write_error(err, path) from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_error(err: OSError, path: Path) -> WriteError:
    """A WriteError naming the target (never the hidden temporary file) and the reason."""
    reason = refusal_reason(err) or err.strerror or str(err)
    return WriteError(f"cannot write ({reason}); nothing was written", path=path)


def refusal_reason(err: BaseException) -> str | None:
    """Why the disk or folder refused a write, if ``err`` (an ``OSError``) means that; else None.

    A refusal is an ``OSError`` with a full-disk, quota, permission, read-only or I/O errno,
    found on ``err`` or on the errors it was raised from (astropy re-raises a full disk as a bare
    ``OSError``), or a short write (numpy's ``tofile``, used by tifffile, reports ``"N requested
    and M written"`` without an errno).

    Examples
    --------
    >>> refusal_reason(OSError(errno.ENOSPC, "No space left on device"))
    'No space left on device'
    >>> refusal_reason(OSError("196608 requested and 153448 written"))
    'the disk took only 153448 of 196608 bytes: no space left on device or quota exceeded'
    >>> refusal_reason(OSError("cannot write mode P as PNG")) is None
    True
    """
    seen = set()
    current = err
    while isinstance(current, OSError) and id(current) not in seen:
        seen.add(id(current))
        if not isinstance(current, SciconvError):
            if current.errno in _WRITE_ERRNOS:
                return current.strerror or os.strerror(current.errno)
            short = _SHORT_WRITE.search(str(current)) if current.errno is None else None
            if short:
                return (
                    f"the disk took only {short[2]} of {short[1]} bytes: no space left on device "
                    "or quota exceeded"
                )
        current = current.__cause__ or current.__context__
    return None


def write_error(err: BaseException, path: str | os.PathLike) -> WriteError | None:
    """The :class:`~sciconv.errors.WriteError` naming ``path`` for a writer's failure ``err`` if
    the disk or folder refused the write (:func:`refusal_reason`); else None (a bug or a format
    problem, to be raised as it is).

    Examples
    --------
    >>> str(write_error(OSError(errno.EACCES, "Permission denied", ".a.1.x.part"), "a.tif"))
    'a.tif: cannot write (Permission denied); nothing was written'
    """
    if isinstance(err, SciconvError) or refusal_reason(err) is None:
        return None
    return _write_error(err, Path(path))


def target_error(
    err: BaseException, tmp: str | os.PathLike, path: str | os.PathLike
) -> Exception | None:
    """The error to raise instead of a writer's ``err`` so that it names the target ``path``
    rather than the temporary file or scratch folder ``tmp``; None to raise ``err`` as it is.

    A sciconv error naming ``tmp`` (or a file in it) is re-made naming ``path``; an ``OSError``
    meaning the disk or folder refused the write becomes a :func:`write_error`; anything else
    (a bug, a format problem) is left alone.

    Examples
    --------
    >>> err = WriteError("cannot write FITS (Disk quota exceeded)", path=".a.1.x.part.fits")
    >>> str(target_error(err, ".a.1.x.part.fits", "a.fits"))
    'a.fits: cannot write FITS (Disk quota exceeded)'
    """
    tmp, path = Path(tmp), Path(path)
    if isinstance(err, SciconvError):
        named = None if err.path is None else Path(err.path)
        if named is None or (named != tmp and tmp not in named.parents):
            return None
        try:
            return type(err)(err.message, path=path)
        except TypeError:  # a subclass with another signature: keep its text, name the target
            return SciconvError(err.message, path=path)
    return write_error(err, path) if isinstance(err, OSError) else None


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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (no signal is sent); True when it cannot be
    told (another user's process), so that its files are kept.

    Examples
    --------
    >>> pid_alive(os.getpid()), pid_alive(0)
    (True, False)
    """
    if pid <= 0:  # 0 and negative ids name process groups
        return False
    if os.name == "nt":  # signal 0 would be CTRL_C_EVENT there
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists (another user's: PermissionError) or cannot tell
        return True
    return True


def scratch_folder(path: str | os.PathLike) -> Path:
    """Create and return a hidden scratch folder ``.{name}.{pid}.{random}.part`` next to ``path``.

    For outputs that are folders (zarr stores) or are built in one (block-wise label maps): the
    caller writes there and renames the result onto ``path``, and removes the folder when done.
    Stale scratch of killed writers of the same target is removed first
    (:func:`remove_stale_partials`). A folder that cannot be made raises
    :class:`~sciconv.errors.WriteError` naming ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = scratch_folder(pathlib.Path(tempfile.mkdtemp()) / "labels.zarr")
    >>> folder.name.startswith(".labels.zarr.") and folder.name.endswith(".part")
    True
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        folder = Path(
            tempfile.mkdtemp(
                prefix=f".{_shortened(path.name)}.{os.getpid()}.", suffix=".part", dir=path.parent
            )
        )
        _unrecord_scratch(folder)
        _record(path)
        return folder
    except OSError as err:
        raise _write_error(err, path) from err


def remove_scratch(folder: str | os.PathLike | None, *, tries: int = 5) -> None:
    """Remove a scratch folder (or file) if it exists; never raises.

    Removal is retried a few times: chunk writes that a failed or interrupted zarr write left
    running in its I/O thread can add files while the folder is being removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> remove_scratch(folder); folder.exists()
    False
    """
    if folder is None:
        return
    folder = Path(folder)
    for attempt in range(tries):
        if _remove_once(folder):
            return
        time.sleep(0.05 * (attempt + 1))


def _remove_once(folder: Path) -> bool:
    """Remove ``folder`` (or a file) once; whether it is gone afterwards. Never raises."""
    try:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
        else:
            folder.unlink()
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return not os.path.lexists(folder)


# the scratch of failed or interrupted writes of this process: absolute path -> when it was last
# seen or removed (time.monotonic); swept by remove_stale_partials and at exit, though the pid in
# its name (ours) is alive, and forgotten once it has stayed gone for STALE_SECONDS
_ABANDONED: dict[str, float] = {}
_abandoned_lock = threading.Lock()


def abandon_scratch(folder: str | os.PathLike | None) -> None:
    """Remove the scratch folder (or file) of a write that failed or was interrupted, for good.

    A zarr write stopped by an error or Ctrl-C leaves chunk writes running in zarr's I/O thread,
    which re-create the folder milliseconds after it is removed (QA: a hidden full-size store
    after each stop button). The folder is removed until it has stayed gone for
    :data:`SETTLE_SECONDS` (at most :data:`SETTLE_LIMIT` seconds), and this process records it:
    :func:`remove_stale_partials` (every later write) and the end of the process remove it again
    if writes land later still, though this process, whose pid its name holds, still runs.
    Never raises; the scratch of a write still running must not be given.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / ".a.zarr.1.x.part"
    >>> folder.mkdir()
    >>> abandon_scratch(folder); folder.exists()
    False
    """
    if folder is None:
        return
    folder = Path(folder)
    with _abandoned_lock:  # first: a second Ctrl-C during the wait below leaves it recorded
        _ABANDONED[os.path.abspath(folder)] = time.monotonic()
    _remove_settled(folder, SETTLE_SECONDS, SETTLE_LIMIT)


def _remove_settled(folder: Path, settle: float, limit: float) -> None:
    """Remove ``folder`` until it has stayed gone for ``settle`` seconds or ``limit`` passed."""
    deadline = time.monotonic() + limit
    gone_since = None
    while True:
        now = time.monotonic()
        if os.path.lexists(folder):
            gone_since = None
            _remove_once(folder)
        elif gone_since is None:
            gone_since = now
        elif now - gone_since >= settle:
            return
        if now >= deadline:
            return
        time.sleep(_SETTLE_POLL)


def _sweep_abandoned(settle: float = 0.0) -> list[Path]:
    """Remove the recorded scratch of this process's failed writes that exists again; return it."""
    with _abandoned_lock:
        recorded = list(_ABANDONED.items())
    removed = []
    for name, seen in recorded:
        folder = Path(name)
        now = time.monotonic()
        if not os.path.lexists(folder):
            if now - seen >= STALE_SECONDS:  # no write landed for long: forget it
                with _abandoned_lock:
                    if _ABANDONED.get(name) == seen:
                        del _ABANDONED[name]
            continue
        if settle:
            _remove_settled(folder, settle, SETTLE_LIMIT)
        else:
            remove_scratch(folder)
        with _abandoned_lock:
            if name in _ABANDONED:
                _ABANDONED[name] = time.monotonic()
        if not os.path.lexists(folder):
            removed.append(folder)
            _forget(folder)
    return removed


def _unrecord_scratch(folder: Path) -> None:
    """A new scratch of a live write is never swept as abandoned (a reused random name)."""
    with _abandoned_lock:
        _ABANDONED.pop(os.path.abspath(folder), None)


def _sweep_abandoned_at_exit() -> None:
    try:
        _sweep_abandoned(settle=SETTLE_SECONDS)
    except Exception:  # never fail the interpreter's exit
        pass


def _forget_abandoned_in_child() -> None:
    """A forked child: the record and its lock are the parent's (its exit sweeps them)."""
    global _abandoned_lock
    _ABANDONED.clear()
    _abandoned_lock = threading.Lock()


# registered at import, before zarr is imported by a write: atexit runs the last registered first,
# so zarr's own exit hook has stopped its I/O loop when this sweep runs
atexit.register(_sweep_abandoned_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_abandoned_in_child)


#: Writer pids of this host known to have ended (a run took over their lock): their partials
#: are stale at once, not after STALE_SECONDS (which protects writers on other hosts)
_ENDED_WRITERS: set[int] = set()


def writer_ended(pid: int) -> None:
    """Record that process ``pid`` of this host, a run whose lock was taken over, has ended:
    :func:`remove_stale_partials` then removes its partials however young they are (a resume
    right after a SIGKILL left them for a later run, QA).

    Examples
    --------
    >>> writer_ended(2**22 + 7)
    """
    _ENDED_WRITERS.add(int(pid))


def remove_stale_partials(path: str | os.PathLike) -> list[Path]:
    """Remove partial files and scratch folders that killed writers of ``path`` left; return them.

    A partial file ``.{stem}.{pid}.{random}.part{suffixes}`` (:func:`atomic_output`) or scratch
    folder ``.{name}.{pid}.{random}.part`` (:func:`scratch_folder`; ``.{stem}.{pid}.{random}.part``
    in older versions) is stale when its writer process (the pid in its name) is gone and nothing
    in it has changed for :data:`STALE_SECONDS` (at once for a writer :func:`writer_ended`
    records). Files of other targets are never touched, except the scratch that failed or
    interrupted writes of this process gave up (:func:`abandon_scratch`), whatever its target:
    it is removed again wherever late chunk writes re-created it, though this process lives.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> remove_stale_partials(pathlib.Path(tempfile.mkdtemp()) / "a.fits")
    []
    """
    path = Path(path)
    part, suffix = scratch_name_parts(path)
    name, stem = _shortened(path.name), part
    tail = r"\.(\d+)\.[A-Za-z0-9_]+\.part"
    # a writer inside another's partial (a FITS product: io.write into atomic_output's file)
    # leaves ``..{stem}.{pid}.{r1}.part.{pid}.{r2}.part.{pid}.{r1}.part{suffix}``
    file_pattern = re.compile(
        rf"\.\.?{re.escape(part)}{tail}(?:\.\d+\.[A-Za-z0-9_]+\.part)*{re.escape(suffix)}"
    )
    folder_pattern = re.compile(rf"\.(?:{re.escape(name)}|{re.escape(stem)}){tail}")
    starts = tuple(f"{dots}{start}." for start in {name, stem} for dots in (".", ".."))
    candidates = [path.parent / n for n in _partial_names(path.parent) if n.startswith(starts)]
    removed = _sweep_abandoned()
    now = time.time()
    for candidate in sorted(candidates):
        try:
            folder = candidate.is_dir() and not candidate.is_symlink()
            match = (folder_pattern if folder else file_pattern).fullmatch(candidate.name)
            if not match:
                continue
            pid = int(match.group(1))
            if pid not in _ENDED_WRITERS and _changed_since(candidate, now - STALE_SECONDS):
                continue
            if pid_alive(pid):
                continue
            if folder:
                shutil.rmtree(candidate)
            else:
                candidate.unlink()
        except OSError:
            continue
        removed.append(candidate)
        _forget(candidate)
    return removed


# folder -> (when listed, the names in it that may be partial files or scratch folders): one
# listing serves every product a run writes there for STALE_SECONDS (a stale partial is at
# least that old), not one per product (a 90,000-file output folder: 89 ms per product)
_LISTINGS: dict[str, tuple[float, list[str]]] = {}


def _partial_names(folder: Path) -> list[str]:
    """The hidden ``*.part*`` names in ``folder``, listed at most once per STALE_SECONDS."""
    key = os.path.abspath(folder)
    now = time.monotonic()
    listed = _LISTINGS.get(key)
    if listed is not None and now - listed[0] < STALE_SECONDS:
        return listed[1]
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.startswith(".") and ".part" in e.name]
    except OSError:
        names = []
    _LISTINGS[key] = (now, names)
    return names


def _forget(candidate: Path) -> None:
    key = os.path.abspath(candidate.parent)
    listed = _LISTINGS.get(key)
    if listed is not None:  # a new list: another thread may be reading the old one
        _LISTINGS[key] = (listed[0], [n for n in listed[1] if n != candidate.name])


def forget_listings() -> None:
    """Drop the folder listings :func:`remove_stale_partials` keeps (the next call lists again).

    Examples
    --------
    >>> forget_listings()
    """
    _LISTINGS.clear()


def _changed_since(path: Path, since: float) -> bool:
    """Whether ``path`` or anything under it (a folder, not following links) changed after
    ``since``; stops at the first such entry."""
    if path.lstat().st_mtime >= since:
        return True
    if not path.is_dir() or path.is_symlink():
        return False
    with os.scandir(path) as entries:
        for entry in entries:
            if _changed_since(Path(entry.path), since):
                return True
    return False


@contextlib.contextmanager
def atomic_store(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden folder next to ``path``; move it onto ``path`` when the block succeeds.

    A write the disk or folder refuses is a :class:`~sciconv.errors.WriteError` naming ``path``;
    the scratch folder is removed whatever happens: after a failure or Ctrl-C until it stays
    gone (:func:`abandon_scratch`), and an old store moved aside is put back.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "a.zarr"
    >>> with atomic_store(store) as tmp:
    ...     (tmp / "zarr.json").parent.mkdir()
    ...     _ = (tmp / "zarr.json").write_text("{}")
    >>> sorted(p.name for p in store.iterdir())
    ['zarr.json']
    """
    check_overwrite(overwrite)
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists; pass overwrite=True to replace it", path=path)
    tmp = scratch_folder(path)  # sweeps the scratch that killed writers of path left
    tmp.rmdir()  # the store writer creates it
    old = None
    done = False
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise OutputExistsError("output appeared while writing; not replaced", path=path)
            old = tmp.with_name(tmp.name + ".old")
            os.rename(path, old)
        os.rename(tmp, path)
        done = True
    except Exception as err:  # full disk, read-only folder: name the store, not the scratch
        mapped = target_error(err, tmp, path)
        if mapped is None:
            raise
        raise mapped from err
    finally:
        if not done:
            if old is not None and not os.path.lexists(path):  # the old store back in place
                with contextlib.suppress(OSError):
                    os.rename(old, path)
            abandon_scratch(tmp)  # zarr's in-flight chunk writes re-create it (QA)
        if old is not None and os.path.lexists(path):  # kept if it could not be put back
            remove_scratch(old)
