"""The lock of a run folder: one :func:`sciconv.training.fit` at a time trains in a workdir.

While a run trains, ``workdir/run.lock`` (JSON) records its process id, host and start time. It
is created atomically (``O_CREAT | O_EXCL``), so of two runs started together only one gets it;
the other refuses before touching anything, instead of taking the live run for an interrupted
one and resuming into the same weights backup (both crashed on HDF5 errors). A lock whose
process is gone (same host, the pid no longer alive: SIGKILL, a pre-empted job) is stale and
taken over with a warning; a lock from another host cannot be checked and is refused, naming
the file to delete if that run is dead.

:func:`lock_folder` is the same lock for any folder a command writes into, with its own lock
file name, words and error class: ``sciconv predict`` locks its ``--out`` with it.

Examples
--------
>>> import tempfile, pathlib
>>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> with lock_workdir(run):
...     (run / LOCK_FILE).exists()
True
>>> (run / LOCK_FILE).exists()
False
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

from sciconv._atomic import pid_alive, writer_ended
from sciconv.errors import ConfigError, SciconvWarning, WriteError

__all__ = ["LOCK_FILE", "check_workdir_free", "lock_folder", "lock_workdir", "read_lock"]

LOCK_FILE = "run.lock"
# a lock file is written right after it is created: one still empty or torn this long after
# its last change was left by a process killed in between, and is stale
_UNREADABLE_GRACE_S = 10.0


def read_lock(workdir: str | os.PathLike, *, name: str = LOCK_FILE) -> dict | None:
    """The lock of ``workdir`` as ``{"pid", "host", "started", "text"}`` (``text``: the file as
    read); None when there is none.

    A lock file that cannot be parsed (being written right now, or torn) reads as
    ``{"unreadable": True, "age": seconds since its last change, "text"}``.

    Examples
    --------
    >>> import tempfile
    >>> read_lock(tempfile.mkdtemp()) is None
    True
    """
    path = Path(workdir) / name
    for attempt in range(5):  # its creator writes it right after creating it
        try:
            text = path.read_text(encoding="utf-8")
            age = time.time() - path.stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):  # no lock (or no folder to hold one)
            return None
        except OSError:
            text, age = "", 0.0
        with contextlib.suppress(ValueError):
            lock = json.loads(text)
            if isinstance(lock, dict) and isinstance(lock.get("pid"), int):
                return {**lock, "text": text}
        if attempt < 4:
            time.sleep(0.05)
    return {"unreadable": True, "age": age, "text": text}


def _holder(lock: dict) -> str:
    if lock.get("unreadable"):
        return f"its lock file unreadable for {lock['age']:.0f} s"
    return f"pid {lock.get('pid')} on {lock.get('host')} since {lock.get('started')}"


def _verdict(
    workdir: Path, lock: dict, *, name: str = LOCK_FILE, what: str = "workdir", busy=ConfigError
) -> str:
    """``"stale"`` for a lock that may be taken over; raise ``busy`` for a live one (``what``:
    the folder as the messages name it)."""
    path = workdir / name
    if lock.get("unreadable"):
        if lock["age"] > _UNREADABLE_GRACE_S:
            return "stale"
        raise busy(
            f"{what} is in use by a run that is starting (its lock {path} is being written); "
            f"wait for it to end, or use another {what}",
            path=workdir,
        )
    here = socket.gethostname()
    if lock.get("host") != here:
        raise busy(
            f"{what} is in use by a run on another host ({_holder(lock)}), which cannot be "
            f"checked from {here}; if that run is no longer running, delete {path} and run "
            f"again, or use another {what}",
            path=workdir,
        )
    pid = int(lock["pid"])
    if pid == os.getpid() and _held_name(path) not in _HELD:
        return "stale"  # an earlier process with this run's pid (a container restarted, QA)
    if pid_alive(pid) and not _started_after(pid, lock.get("started")):
        raise busy(
            f"{what} is in use by a run in progress ({_holder(lock)}); wait for it to end, "
            f"or use another {what}",
            path=workdir,
        )
    return "stale"


#: The lock files this process holds (a lock with its pid that is not one of them was left by
#: an earlier process that had the same pid).
_HELD: set[str] = set()
#: Taken while a thread of this process creates or judges a lock: between creating its lock and
#: adding it to _HELD, another thread judged it an earlier process's ("stale") and took it over.
_TAKING = threading.Lock()
#: Seconds a process may seem to start after its lock was written (clock ticks, rounding).
_START_SLACK_S = 2.0


def _held_name(path: Path) -> str:
    """The one spelling of a lock file's path (relative or absolute, through links)."""
    return os.path.realpath(path)


def _started_after(pid: int, started) -> bool:
    """Whether process ``pid`` started after the lock's ``started`` time (ISO 8601): the pid was
    reused by another process since the lock's run ended (Linux ``/proc``; False elsewhere or
    when it cannot be told)."""
    try:
        when = datetime.datetime.fromisoformat(str(started)).timestamp()
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        begun = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return False
    return begun > when + _START_SLACK_S


def check_workdir_free(workdir: str | os.PathLike) -> None:
    """Refuse a workdir that a live run holds (or one on another host); a stale lock passes.

    ``sciconv train`` calls it before it reads the data; :func:`lock_workdir` takes the lock.

    Raises
    ------
    ConfigError
        ``workdir`` is in use by a run in progress, or locked from another host.

    Examples
    --------
    >>> import tempfile
    >>> check_workdir_free(tempfile.mkdtemp())
    """
    workdir = Path(workdir)
    lock = read_lock(workdir)
    if lock is not None:
        _verdict(workdir, lock)


def _create(path: Path, text: str) -> bool:
    """Create the lock file holding ``text``; False when one exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _set_aside(workdir: Path, lock: dict, name: str = LOCK_FILE) -> None:
    """Remove the stale ``lock``, atomically: of two runs taking it over, one moves it; a run
    that moved a fresh lock instead (another run took the stale one over just before) puts it
    back."""
    path = workdir / name
    aside = workdir / f".{name.lstrip('.')}.{os.getpid()}.stale"
    try:
        os.replace(path, aside)
    except FileNotFoundError:  # another run took it over: its lock is judged next round
        return
    moved = aside.read_text(encoding="utf-8") if aside.exists() else ""
    if moved != lock.get("text"):
        try:
            os.link(aside, path)  # back, unless yet another run has locked it since
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not path.exists():
                os.replace(aside, path)
    aside.unlink(missing_ok=True)
    if moved == lock.get("text"):
        if lock.get("pid") is not None:  # a dead run of this host (_verdict): its partials go
            writer_ended(int(lock["pid"]))
        warnings.warn(
            f"{workdir}: taking over the lock of a run that is no longer running ({_holder(lock)})",
            SciconvWarning,
            stacklevel=6,
        )


@contextlib.contextmanager
def lock_workdir(workdir: str | os.PathLike) -> Iterator[Path]:
    """Create ``workdir`` if needed and hold its lock while the ``with`` block runs.

    The lock is released when the block ends, by an exception or a KeyboardInterrupt too.

    Raises
    ------
    ConfigError
        ``workdir`` is not a folder, is in use by a run in progress on this host, or is locked
        by a run on another host (the message names the lock file to delete if that run is
        dead).
    WriteError
        ``workdir`` cannot be created, or the lock file cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with lock_workdir(run):
    ...     read_lock(run)["pid"] == os.getpid()
    True
    """
    with lock_folder(workdir) as path:
        yield path


@contextlib.contextmanager
def lock_folder(
    folder: str | os.PathLike,
    *,
    name: str = LOCK_FILE,
    what: str = "workdir",
    busy: type = ConfigError,
) -> Iterator[Path]:
    """Create ``folder`` if needed and hold its lock file ``name`` while the ``with`` block
    runs; the lock is released when the block ends, by an exception or a KeyboardInterrupt
    (Ctrl-C, SIGTERM as ``sciconv`` raises it) too.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to lock.
    name : str, optional
        The lock file's name in ``folder``. Default :data:`LOCK_FILE`.
    what : str, optional
        The folder as the messages name it (``"workdir"``, ``"--out"``).
    busy : type, optional
        The :class:`~sciconv.errors.SciconvError` class raised when a live run holds the lock.
        Default :class:`~sciconv.errors.ConfigError`.

    Raises
    ------
    ConfigError
        ``folder`` exists and is not a folder.
    busy
        A run in progress on this host holds the lock, or a run on another host (the message
        names the lock file to delete if that run is dead).
    WriteError
        ``folder`` cannot be created or the lock file cannot be written in it (a read-only or
        full disk, no permission): creating the lock is also the check that it is writable.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with lock_folder(out, name=".demo.lock", what="--out"):
    ...     read_lock(out, name=".demo.lock")["pid"] == os.getpid()
    True
    >>> (out / ".demo.lock").exists()
    False
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} exists and is not a folder", path=folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only disk, a file in the way, no permission
        raise WriteError(
            f"cannot create the {'run folder' if what == 'workdir' else 'folder'} "
            f"({err.strerror or type(err).__name__})",
            path=folder,
        ) from err
    path = folder / name
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    token = uuid.uuid4().hex  # this acquisition's own text (two threads in one second: review)
    text = json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "started": started, "nonce": token}
    )
    for _ in range(10):
        with _TAKING:  # a thread of this process sees its lock held, never "stale" (QA threads)
            try:
                if _create(path, text):
                    _HELD.add(_held_name(path))
                    break
            except OSError as err:
                with contextlib.suppress(OSError):  # created, then not written: a full disk
                    path.unlink()
                raise WriteError(
                    f"cannot write the run's lock file ({err.strerror or type(err).__name__}): "
                    f"{what} is not writable",
                    path=path,
                ) from err
            lock = read_lock(folder, name=name)
            verdict = (
                None if lock is None else _verdict(folder, lock, name=name, what=what, busy=busy)
            )
            if verdict == "stale":
                _set_aside(folder, lock, name)
    else:
        raise busy(
            f"could not take the lock {path}: other runs keep taking it over; use another {what}",
            path=folder,
        )
    try:
        yield path
    finally:
        with _TAKING:  # no thread of this process judges it "stale" half-released (review)
            _HELD.discard(_held_name(path))
            with contextlib.suppress(OSError):  # only our own lock: never another run's
                if path.read_text(encoding="utf-8") == text:
                    path.unlink()
