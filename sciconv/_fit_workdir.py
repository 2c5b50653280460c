"""What a run folder holds: a fresh run, an interrupted run to resume, or a refusal.

:func:`refuse_workdir` refuses early (before :func:`sciconv.training.fit` changes the model);
:func:`prepare_workdir` decides under the run's lock (:mod:`sciconv._workdir_lock`).

Examples
--------
>>> import tempfile, pathlib
>>> run = pathlib.Path(tempfile.mkdtemp())
>>> prepare_workdir(run, resume=True, overwrite=False, model={})
0
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from sciconv import devices
from sciconv._fit_backup import other_model_error
from sciconv._workdir_lock import check_workdir_free
from sciconv.errors import ConfigError, OutputExistsError, SciconvWarning, name_text
from sciconv.io._files import check_name_length, user_path
from sciconv.runs import backup_epoch, read_config

__all__ = [
    "CONTENT_FULL_BYTES",
    "content_digest",
    "data_files",
    "json_default",
    "prepare_workdir",
    "refuse_workdir",
    "run_files",
    "run_times",
    "tensorboard_dir",
    "workdir_path",
]


def json_default(value):
    """What ``json.dumps`` writes for numpy scalars, sets, tuples and other values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return repr(value)


def run_files(workdir: Path) -> list[str]:
    """The names of a previous run's files in ``workdir`` (none when it does not exist)."""
    ours = ("config.json", "best.keras", "last.keras", "log.csv", "backup", "logs")
    present = [n for n in ours if (workdir / n).exists()]
    present += sorted(p.name for p in workdir.glob("backup-worker*")) if workdir.is_dir() else []
    return present


def _run_config(workdir: Path) -> dict:
    config: dict = {}
    with contextlib.suppress(ConfigError):
        config = read_config(workdir)
    return config


def workdir_path(workdir) -> Path | None:
    """``fit(workdir=)`` as a :class:`~pathlib.Path`: ``~`` expanded (as astropy expands it; a
    YAML file or a notebook has no shell to do it, and the run went to a folder named ``~``);
    bytes and URLs refused (:class:`~sciconv.errors.ConfigError`), a name longer than the file
    system allows refused (:class:`~sciconv.errors.WriteError`) before anything is trained.

    Examples
    --------
    >>> workdir_path("~/runs/a") == Path(os.path.expanduser("~/runs/a")), workdir_path(None)
    (True, None)
    """
    if workdir is None:
        return None
    path = user_path(workdir, what="workdir")
    check_name_length(path)
    return path


def refuse_workdir(workdir, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before :func:`sciconv.training.fit` changes the model (its metadata, a
    regressor's target scale), a ``workdir`` that is not a folder, is held by a live run, or
    holds a run this call may not replace; :func:`prepare_workdir` decides again under the
    lock."""
    if workdir is None or not devices.is_chief():
        return
    workdir = workdir_path(workdir)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError("workdir exists and is not a folder", path=workdir)
    check_workdir_free(workdir)  # a live run's "running" is not an interrupted run
    present = run_files(workdir)
    if present and not overwrite:
        _check_replaceable(workdir, present, _run_config(workdir).get("status"), resume)


def _check_replaceable(workdir: Path, present: list[str], status, resume: bool) -> None:
    """Without ``overwrite``: only an interrupted run that is resumed may be continued."""
    if status == "running" and resume:
        return
    what = "an interrupted run (resume=False)" if status == "running" else "a previous run"
    raise OutputExistsError(
        f"workdir holds {what} ({', '.join(present)}); pass overwrite=True to replace it, "
        "or use another workdir",
        path=workdir,
    )


def prepare_workdir(
    workdir: Path, *, resume: bool, overwrite: bool, model: dict, settings: dict | None = None
) -> int:
    """Decide between a fresh run, a resumed run, or a refusal; return the initial epoch.

    A resumed run continues with its restored optimizer, so ``settings`` (the training values
    this call asks for) that differ from the interrupted run's would be ignored while
    ``config.json`` recorded them: refused instead. Called under :func:`lock_workdir
    <sciconv._workdir_lock.lock_workdir>`, which refuses a ``workdir`` that is not a folder."""
    backup = workdir / "backup"
    if backup.is_dir() and all(p.name.startswith(".") for p in backup.iterdir()):
        shutil.rmtree(backup)  # a run stopped in its first backup: partial files, nothing saved
    present = run_files(workdir)
    if not present:
        return 0
    config = _run_config(workdir)
    status = config.get("status")
    if status == "running" and resume:
        before = config.get("model") if isinstance(config.get("model"), dict) else {}
        epoch = backup_epoch(backup)
        for key, value in model.items():  # a key an older run did not record is not compared
            if epoch and before.get(key, value) != value:
                raise other_model_error(
                    workdir, f"its {key} {before[key]!r}; this model's {value!r}"
                )
        for key, value in (settings or {}).items():
            asked = json.loads(json.dumps(value, default=json_default))
            # a dataset's batch size was recorded as None before: not refused for it
            was = config.get(key)
            if epoch and key in config and was != asked and (was, key) != (None, "batch_size"):
                raise ConfigError(
                    f"workdir holds an interrupted run with {key} {config[key]!r}; this call "
                    f"asks {asked!r}, which a resumed run would ignore (it continues with its "
                    "restored optimizer): resume with the same settings, or start again with "
                    "resume=False and overwrite=True (YAML: training.resume: false, --overwrite)",
                    path=workdir,
                )
        return epoch
    if not overwrite:
        _check_replaceable(workdir, present, status, resume)
    for name in present:
        target = workdir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    return 0


#: :func:`content_digest` hashes every byte of the files up to this total; above it, each
#: file's size, first and last MiB (a changed pixel in between then goes unseen).
CONTENT_FULL_BYTES = 2 * 2**30


def data_files(train, validation_data=None) -> list[str]:
    """The files ``fit``'s data were read from: the images (and masks) of both splits and a
    catalog's CSV, as the datasets' ``.file_paths`` / ``.mask_paths`` / ``.source`` name them;
    empty for arrays and plain ``tf.data`` datasets.

    Examples
    --------
    >>> import numpy as np
    >>> data_files((np.zeros((2, 4, 4, 1)), np.zeros(2)))
    []
    """
    files: list[str] = []
    for data in (train, validation_data):
        for key in ("file_paths", "mask_paths"):
            paths = getattr(data, key, None)
            if isinstance(paths, (list, tuple)):
                files += [os.fspath(p) for p in paths]
    source = getattr(train, "source", None)
    if files and isinstance(source, dict) and isinstance(source.get("catalog"), str):
        files.append(source["catalog"])
    return files


def content_digest(paths) -> dict | None:
    """A sha256 of the files' contents (in order), with how it was made: ``"sha256"``, every
    byte (531 PNG images and their masks, 54 MB: 0.08 s), or above :data:`CONTENT_FULL_BYTES`
    in all ``"size+ends"``, each file's size and its first and last MiB. None for no file or
    one that cannot be read.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = f.write_text("abc")
    >>> d = content_digest([f])
    >>> d["method"], d["files"], d["bytes"], d["sha256"][:12]
    ('sha256', 1, 3, '4f8b42c22dd3')
    """
    import pooch

    paths = [os.fspath(p) for p in paths]
    if not paths:
        return None
    start = time.perf_counter()
    try:
        sizes = [os.stat(p).st_size for p in paths]
        full = sum(sizes) <= CONTENT_FULL_BYTES
        total = hashlib.sha256()
        for path, size in zip(paths, sizes):
            if full:  # every byte (pooch's file hash, as sciconv.fetch checks downloads)
                total.update(bytes.fromhex(pooch.file_hash(path, alg="sha256")))
                continue
            with open(path, "rb") as fh:
                one = hashlib.sha256(f"{size}|".encode())
                one.update(fh.read(2**20))
                if size > 2**21:
                    fh.seek(size - 2**20)
                one.update(fh.read(2**20))
            total.update(one.digest())
    except OSError:
        return None
    return {
        "method": "sha256" if full else "size+ends",
        "sha256": total.hexdigest(),
        "files": len(paths),
        "bytes": int(sum(sizes)),
        "seconds": round(time.perf_counter() - start, 3),
    }


def run_times(workdir: Path, resumed_from: int, now: str) -> dict:
    """``started`` (the first start of the run) and ``resumed`` (each later start) for the
    config.json of a run starting ``now``: a resumed run (``resumed_from`` > 0) keeps those of
    the run it continues.

    Examples
    --------
    >>> run_times(Path("no/such/run"), 0, "2026-01-01T00:00:00+00:00")
    {'started': '2026-01-01T00:00:00+00:00', 'resumed': []}
    """
    before = _run_config(workdir) if resumed_from else {}
    started = before.get("started")
    resumed = before.get("resumed")
    resumed = list(resumed) if isinstance(resumed, list) else []
    if not isinstance(started, str):
        return {"started": now, "resumed": []}
    return {"started": started, "resumed": [*resumed, now]}


def tensorboard_dir(workdir: Path) -> str | None:
    """Where :func:`sciconv.training.fit` has TensorBoard write: ``workdir/logs``; or None,
    with a :class:`~sciconv.errors.SciconvWarning` naming the reason (from fit's caller), when
    the ``tensorboard`` package is not installed or the path cannot be handed to TensorFlow.

    TensorFlow takes only UTF-8 names: under a folder whose name is not UTF-8 (a latin-1
    ``Projet_caf\\xe9`` from an old zip), the path relative to the working folder is given
    when it is UTF-8 (the run is not stopped at its first epoch, after config.json was written).

    Examples
    --------
    >>> import os, tempfile
    >>> run = Path(tempfile.mkdtemp()) / "run"
    >>> tensorboard_dir(run) == os.fspath(run / "logs")
    True
    """
    import importlib.util
    import warnings

    if importlib.util.find_spec("tensorboard") is None:
        why = "the tensorboard package is not installed (pip install tensorboard, or pass"
        why += " tensorboard=False)"
    else:
        logs = os.fspath(Path(workdir) / "logs")
        for candidate in (logs, _relative(logs)):
            if candidate is not None and name_text(candidate) == candidate:
                return candidate
        why = (
            f"TensorFlow takes only UTF-8 file names, and {name_text(logs)} is not one; move "
            "the workdir, start from a folder under it, or pass tensorboard=False"
        )
    warnings.warn(
        f"tensorboard=True but {why}; training without TensorBoard logs",
        SciconvWarning,
        stacklevel=3,
    )
    return None


def _relative(path: str) -> str | None:
    """``path`` relative to the working folder, or None (another drive)."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return None
