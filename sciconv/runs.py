"""A training run's folder read back: its configuration and its per-epoch log, without TensorFlow.

:func:`sciconv.training.fit` writes a run folder (``config.json``, ``log.csv``, the models); this
module is the one place that reads its two text files, for training (resuming a run) and for
:func:`sciconv.viz.training_curves` alike, and checks its ``backup/`` folder before a run resumes
(:func:`backup_epoch`). It needs only numpy and the standard library (h5py for the backup check),
so reading a run's numbers never imports TensorFlow.

Examples
--------
>>> from sciconv.runs import read_log
>>> import tempfile, pathlib
>>> run = pathlib.Path(tempfile.mkdtemp())
>>> _ = (run / "log.csv").write_text("epoch,loss,val_loss\\n0,0.9,1.0\\n1,0.5,NA\\n")
>>> log = read_log(run)
>>> log["loss"].tolist(), log["val_loss"].tolist()
([0.9, 0.5], [1.0, nan])
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sciconv._atomic import atomic_output
from sciconv.errors import ConfigError, SciconvWarning
from sciconv.io import user_path
from sciconv.io._open import open_regular

__all__ = [
    "CONFIG_FILE",
    "LOG_FILE",
    "backup_epoch",
    "best_epoch",
    "read_config",
    "read_log",
    "truncate_log",
    "widen_log",
]

#: Name of the run configuration :func:`sciconv.training.fit` writes in its workdir.
CONFIG_FILE = "config.json"
#: Name of the per-epoch CSV log (one row per epoch, first column ``epoch``) in the workdir.
LOG_FILE = "log.csv"

#: Largest ``config.json`` accepted (bytes); fit writes a few kilobytes.
MAX_CONFIG_BYTES = 16 * 2**20

# keys of config.json that sciconv reads back, and their JSON types
_CONFIG_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "status": ((str,), "a string"),
    "epochs_done": ((int,), "an integer"),
    "model": ((dict,), "a JSON object"),
    "metadata": ((dict,), "a JSON object"),
    "final": ((dict,), "a JSON object"),
}

# cells Keras' CSVLogger writes for a metric missing in an epoch; read as NaN
_MISSING = ("", "NA", "N/A")


def read_config(workdir: str | os.PathLike) -> dict:
    """Read ``workdir/config.json`` written by :func:`sciconv.training.fit`.

    Parameters
    ----------
    workdir : str or os.PathLike
        The run folder.

    Returns
    -------
    dict
        Run settings, library versions, ``status`` (``"running"`` or ``"finished"``), ...

    Raises
    ------
    ConfigError
        If the file is missing, unreadable, larger than :data:`MAX_CONFIG_BYTES`, not valid
        JSON (nested too deep included), not a JSON object, or a key sciconv reads back
        (``status``, ``epochs_done``, ``model``, ``metadata``, ``final``) has the wrong type.

    Examples
    --------
    >>> from sciconv.runs import read_config
    >>> read_config("no/such/run")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: no/such/run/config.json: no run configuration ...
    """
    path = Path(workdir) / CONFIG_FILE
    try:
        # a FIFO or a link to /dev/zero: refused at once, never read (QA 53); at most the limit
        with open_regular(path) as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
            size = max(os.fstat(fh.fileno()).st_size, len(data))
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"run configuration is {size:,} bytes, over the {MAX_CONFIG_BYTES:,}-byte limit "
                "(sciconv.runs.MAX_CONFIG_BYTES); fit writes a few kB",
                path=path,
            )
        config = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "no run configuration (was fit run with this workdir?)", path=path
        ) from None
    except RecursionError:
        raise ConfigError(
            "unreadable run configuration (JSON nested too deep)", path=path
        ) from None
    except (OSError, ValueError) as err:  # ValueError: bad JSON/UTF-8, a huge integer literal
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise ConfigError(f"unreadable run configuration ({reason})", path=path) from None
    if not isinstance(config, dict):
        raise ConfigError(
            f"run configuration must be a JSON object; got {type(config).__name__}", path=path
        )
    for key, (kinds, what) in _CONFIG_TYPES.items():
        value = config.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ConfigError(
                f"run configuration key {key!r} must be {what}; got {type(value).__name__} "
                f"{_clip(value)} (delete the run folder or pass overwrite=True to fit)",
                path=path,
            )
    if config.get("status") not in (None, "running", "finished"):
        raise ConfigError(
            f"run configuration key 'status' must be 'running' or 'finished'; got "
            f"{_clip(config['status'])}",
            path=path,
        )
    return config


def _clip(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _log_file(path: str | os.PathLike) -> Path:
    path = user_path(path)
    return path / LOG_FILE if path.is_dir() else path


def _numbered_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The log's rows, each with the line it ends on (1-based)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"unreadable training log ({err})", path=path) from None


def _header_and_body(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the non-empty rows of a log; refused when a row has more cells than the
    header (its columns cannot be told apart: never guessed)."""
    rows = [(line, row) for line, row in _numbered_rows(path) if row]
    if not rows:
        return [], []
    header = rows[0][1]
    for line, row in rows[1:]:
        if len(row) > len(header):
            raise ConfigError(
                f"training log line {line} has {len(row)} cells but its header names "
                f"{len(header)} columns {header}: which value is which metric cannot be told "
                "(a run started by an older sciconv and resumed by a newer one appended rows "
                "of more columns under the old header). Edit the file so that the header names "
                "every column of its rows, or remove those rows",
                path=path,
            )
    return header, [row for _, row in rows[1:]]


def read_log(
    path: str | os.PathLike, *, columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Read a run's per-epoch log (``log.csv``) as one float array per column.

    Parameters
    ----------
    path : str or os.PathLike
        The ``log.csv`` file, or the run folder that holds it.
    columns : sequence of str, optional
        Read only these columns. Default: all of them, ``epoch`` included.

    Returns
    -------
    dict of str to numpy.ndarray
        Column name to float64 values ``(n_epochs,)``, in the file's column order. Cells Keras
        leaves empty or writes ``NA`` (a metric missing in an epoch) are NaN.

    Raises
    ------
    ConfigError
        If the log is missing or unreadable, has no epochs, lacks a requested column, a
        column holds something other than numbers, or a row has more cells than the header
        (naming its line: which value is which column cannot be told).

    Examples
    --------
    >>> from sciconv.runs import read_log
    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = log.write_text("epoch,accuracy,loss\\n0,0.5,1.2\\n1,0.75,0.8\\n")
    >>> read_log(log, columns=["loss"])
    {'loss': array([1.2, 0.8])}
    """
    path = _log_file(path)
    if not path.is_file():
        raise ConfigError("training log not found (expected a CSV written by fit)", path=path)
    header, body = _header_and_body(path)
    if not body:
        raise ConfigError("training log has no epochs yet", path=path)
    wanted = list(header) if columns is None else [str(c) for c in columns]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ConfigError(f"training log lacks column(s) {missing}; it has {header}", path=path)
    log = {}
    for name in wanted:
        j = header.index(name)
        cells = [r[j].strip() if j < len(r) else "" for r in body]
        try:
            log[name] = np.array([np.nan if c in _MISSING else float(c) for c in cells])
        except ValueError:
            raise ConfigError(
                f"training log column {name!r} holds non-numbers", path=path
            ) from None
    return log


def best_epoch(path: str | os.PathLike, monitor: str = "val_loss") -> dict | None:
    """The epoch with the lowest ``monitor`` over a whole run's log, with its logged values.

    This is the epoch ``best.keras`` holds: :func:`sciconv.training.fit` saves it whenever the
    monitored value improves on the best so far, across resumed calls (ties: the first).

    Parameters
    ----------
    path : str or os.PathLike
        The ``log.csv`` file, or the run folder that holds it.
    monitor : str, optional
        The column followed. Default ``"val_loss"``.

    Returns
    -------
    dict or None
        ``{"epoch": 0-based epoch, column: value, ...}`` (NaN cells left out); None when the
        log has no finite ``monitor`` value.

    Raises
    ------
    ConfigError
        As :func:`read_log` (no log, no epochs, no such column).

    Examples
    --------
    >>> from sciconv.runs import best_epoch
    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = log.write_text("epoch,loss,val_loss\\n0,0.9,1.0\\n1,0.5,0.7\\n2,0.4,0.8\\n")
    >>> best_epoch(log)
    {'epoch': 1, 'loss': 0.5, 'val_loss': 0.7}
    """
    log = read_log(path)
    if monitor not in log:
        raise ConfigError(f"training log lacks column {monitor!r}", path=_log_file(path))
    scores = log[monitor]
    if not np.isfinite(scores).any():
        return None
    row = int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan)))
    epoch = int(log["epoch"][row]) if "epoch" in log and np.isfinite(log["epoch"][row]) else row
    values = {k: float(v[row]) for k, v in log.items() if k != "epoch" and np.isfinite(v[row])}
    return {"epoch": epoch, **values}


def truncate_log(path: str | os.PathLike, keep_epochs: int) -> None:
    """Keep the header and the rows of epochs ``< keep_epochs`` of a run's log (to resume a run).

    The rows of an epoch that was cut short (or repeated after a kill) go, so that a resumed run
    appends its epochs after the ones it restarts from. The file is rewritten atomically; a
    missing or empty log is left as it is.

    Parameters
    ----------
    path : str or os.PathLike
        The ``log.csv`` file, or the run folder that holds it.
    keep_epochs : int
        Number of finished epochs to keep (epochs ``0 .. keep_epochs - 1``).

    Raises
    ------
    ConfigError
        If a row has more cells than the header (naming its line; the file is left as it was).

    Examples
    --------
    >>> from sciconv.runs import read_log, truncate_log
    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = log.write_text("epoch,loss\\n0,0.9\\n1,0.7\\n2,0.6\\n")
    >>> truncate_log(log, 2)
    >>> read_log(log)["epoch"].tolist()
    [0.0, 1.0]
    """
    path = _log_file(path)
    if not path.exists():
        return
    header, body = _header_and_body(path)  # a misaligned log refused before it is rewritten
    if not header:
        return
    _rewrite_log(path, header, [r for r in body if r[0].isdigit() and int(r[0]) < keep_epochs])


def _rewrite_log(path: Path, header: list[str], rows) -> None:
    """Write a log's ``header`` and ``rows`` over it, atomically."""
    with (
        atomic_output(path, overwrite=True) as tmp,
        open(tmp, "w", newline="", encoding="utf-8") as fh,
    ):
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def widen_log(path: str | os.PathLike, columns: Sequence[str]) -> list[str]:
    """Give a run's log (``log.csv``) the ``columns`` it lacks, empty in its rows; return its
    header.

    Keras' CSVLogger appends a resumed run's rows under the header the file has. A run started
    by a sciconv that logged fewer columns (before 2026-12-05: no ``learning_rate``) thus got
    rows of more cells than its header, which every reader took by position (the learning rate
    as the loss). :func:`sciconv.training.fit` widens the log first, then writes its rows by
    that header. The new columns go after the old ones, the file is rewritten atomically, and
    only when a column is missing; a missing or empty log is left as it is (``[]``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``log.csv`` file, or the run folder that holds it.
    columns : sequence of str
        The columns the rows to be appended have.

    Returns
    -------
    list of str
        The log's header after widening.

    Raises
    ------
    ConfigError
        If the log is unreadable, or a row has more cells than the header (naming its line).

    Examples
    --------
    >>> from sciconv.runs import read_log, widen_log
    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = log.write_text("epoch,loss\\n0,0.9\\n")
    >>> widen_log(log, ["epoch", "learning_rate", "loss"])
    ['epoch', 'loss', 'learning_rate']
    >>> read_log(log)["learning_rate"].tolist()
    [nan]
    """
    path = _log_file(path)
    if not path.exists():
        return []
    header, body = _header_and_body(path)
    if not header:
        return []
    missing = [str(c) for c in dict.fromkeys(columns) if str(c) not in header]
    if missing:
        wide = header + missing
        _rewrite_log(path, wide, (row + [""] * (len(wide) - len(row)) for row in body))
        header = wide
    return header


# the files of Keras' BackupAndRestore (double_checkpoint=True): the latest state and the one before
_WEIGHTS, _STATE = "latest.weights.h5", "training_metadata.json"


def _state_epoch(backup: Path, suffix: str) -> int | None:
    """The epoch of one saved state (weights + metadata) if both read back whole, else None."""
    try:
        epoch = json.loads((backup / (_STATE + suffix)).read_text(encoding="utf-8"))["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            return None
        import h5py  # a Keras dependency; only needed when a run resumes

        with h5py.File(backup / (_WEIGHTS + suffix), "r") as h5:
            h5.visititems(lambda _, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)
    except Exception:  # any failure to read the state back makes it unusable
        return None
    return epoch


def backup_epoch(backup: str | os.PathLike) -> int:
    """The epoch a run resumes from, read from its ``backup/`` folder; unreadable state is dropped.

    :func:`sciconv.training.fit` keeps Keras' BackupAndRestore state (the latest and the previous
    epoch's weights and metadata) in ``workdir/backup``. A state whose files do not read back
    whole (truncated by a full disk, overwritten, ...) would fail every rerun; here the latest
    readable state wins: when the latest is broken the previous one replaces it, and when
    neither reads back the folder is removed and the run starts again from epoch 0. Each case
    warns with what was discarded.

    Parameters
    ----------
    backup : str or os.PathLike
        The backup folder (it may not exist).

    Returns
    -------
    int
        The number of finished epochs to resume after; 0 when there is nothing to resume.

    Examples
    --------
    >>> from sciconv.runs import backup_epoch
    >>> import tempfile, pathlib, warnings
    >>> backup = pathlib.Path(tempfile.mkdtemp()) / "backup"
    >>> backup_epoch(backup)
    0
    >>> backup.mkdir()
    >>> _ = (backup / "training_metadata.json").write_text("garbage")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     backup_epoch(backup)
    0
    >>> "starting the run again from epoch 0" in str(caught[0].message), backup.exists()
    (True, False)
    """
    backup = Path(backup)
    if not backup.is_dir():
        return 0
    latest = _state_epoch(backup, "")
    if latest is not None:
        return latest
    previous = _state_epoch(backup, ".bkp")
    if previous is not None:
        for name in (_WEIGHTS, _STATE):
            os.replace(backup / (name + ".bkp"), backup / name)
        what = f"resuming from epoch {previous}, the state saved before it"
    else:
        shutil.rmtree(backup)
        what = "discarded the whole folder, starting the run again from epoch 0"
    warnings.warn(
        f"{backup}: the latest training state in this backup folder is unreadable (truncated "
        f"or corrupted) and was discarded; {what}",
        SciconvWarning,
        stacklevel=3,
    )
    return previous or 0
