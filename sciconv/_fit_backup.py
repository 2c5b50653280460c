"""The weights backup of :func:`sciconv.training.fit`: written atomically, restored with a fallback.

Keras' ``BackupAndRestore`` writes ``backup/latest.weights.h5`` in place. An exception raised in
the middle of that write (Ctrl-C, or SIGTERM, which ``sciconv train`` turns into one) left a file
that reads back as HDF5 but lacks some weights (93 KB of 493 KB), which the next run refused.
:class:`BackupAndRestore` writes each state to a temporary file in the same folder and renames it
onto its name, so an interruption at any moment leaves the previous state or the new one, whole.

A state is two files, the weights and ``training_metadata.json`` (the epoch); the previous state
keeps them as ``*.bkp``. While a pair is being replaced its metadata file is absent, so a reader
never takes the weights of one epoch for another: it finds the pair incomplete and uses the other
(:func:`sciconv.runs.backup_epoch`). On resume, a latest state whose weights do not load falls
back to the previous state with a warning; when neither loads the error names the file.

Examples
--------
>>> from sciconv._fit_backup import BackupAndRestore
>>> BackupAndRestore("run/backup").weights_path.name
'latest.weights.h5'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import keras

from sciconv.errors import ConfigError, SciconvError, SciconvWarning

__all__ = ["BackupAndRestore", "RestoreBackup", "other_model_error"]

# what a state that does not load raises: unreadable file, missing or misshapen weights
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError)


def other_model_error(workdir: Path, why: str) -> ConfigError:
    """A configuration error (the run asked for does not fit the folder), as for other settings;
    with ``resume=True`` (the default) ``overwrite=True`` alone resumes, so both are named.

    Examples
    --------
    >>> "another model (its params 10" in str(other_model_error(Path("run"), "its params 10"))
    True
    """
    return ConfigError(
        f"workdir holds an interrupted run of another model ({why}); resume it with the model "
        "it started with, use another workdir, or start again there with resume=False and "
        "overwrite=True (YAML: training.resume: false, --overwrite)",
        path=workdir,
    )


@contextlib.contextmanager
def _temporary(target: Path):
    """A free temporary path next to ``target`` (same name ending, for Keras' checks); removed
    afterwards unless it was renamed."""
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".part" + "".join(target.suffixes),
        dir=target.parent,
    )  # fmt: skip
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _synced(path: Path) -> None:
    with open(path, "r+b") as fh:  # Windows: fsync (_commit) needs write access
        os.fsync(fh.fileno())


def _link_or_copy(source: Path, tmp: Path) -> None:
    """``source``'s content at the free temporary path ``tmp``: a hard link (``source`` is only
    ever replaced, never written in place) or, where there are none, a copy on disk."""
    tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        _synced(tmp)


def _link(source: Path, target: Path) -> None:
    """Put ``source``'s content at ``target`` atomically (:func:`_link_or_copy`, renamed)."""
    with _temporary(target) as tmp:
        _link_or_copy(source, tmp)
        os.replace(tmp, target)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore`` with atomic writes and a fallback to the previous state.

    Parameters
    ----------
    backup_dir : str or os.PathLike
        The folder of the state (``latest.weights.h5``, ``training_metadata.json`` and their
        ``.bkp`` copies).
    double_checkpoint, delete_checkpoint : bool
        As for Keras' callback.
    same_model : bool
        Whether the model was checked to be the interrupted run's (config.json's weight
        fingerprint): a state that does not load is then damaged, not another model's.
    on_rewind : callable, optional
        Called with the epoch of the previous state when the resume falls back to it, so that
        the run folder (log, config) follows. Called before any other callback starts when
        :class:`RestoreBackup` is the first callback.

    Examples
    --------
    >>> BackupAndRestore("run/backup").previous_weights_path.name
    'latest.weights.h5.bkp'
    """

    def __init__(
        self,
        backup_dir,
        *,
        double_checkpoint: bool = True,
        delete_checkpoint: bool = True,
        same_model: bool = False,
        on_rewind: Callable[[int], None] | None = None,
    ):
        super().__init__(
            str(backup_dir),
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )
        self.weights_path = Path(self._weights_path)
        self.state_path = Path(self._training_metadata_path)
        self.previous_weights_path = Path(self._prev_weights_path)
        self.previous_state_path = Path(self._prev_training_metadata_path)
        self.same_model = same_model
        self.on_rewind = on_rewind
        self._restored = False

    # ------------------------------------------------------------------------------ restore
    def on_train_begin(self, logs=None):
        self.restore()

    def restore(self) -> None:
        """Load the latest state, else the previous one (with a warning); once per ``fit``."""
        if self._restored:
            return
        self._restored = True
        try:
            self._load(self.weights_path, self.state_path)
            return
        except _LOAD_ERRORS as err:
            if not self.model.built:
                raise
            first = err
        previous = self.previous_weights_path
        if not previous.exists():
            raise self._unloadable(first, None) from None
        try:
            epoch = self._load(previous, self.previous_state_path)
        except _LOAD_ERRORS as err:
            raise self._unloadable(first, err) from None
        # the previous state becomes the latest: the next save keeps it as the previous one
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        os.replace(previous, self.weights_path)
        if self.previous_state_path.exists():
            os.replace(self.previous_state_path, self.state_path)
        warnings.warn(
            f"{self.weights_path}: the latest training state does not load ({_brief(first)}); "
            f"resuming from epoch {epoch}, the state saved before it",
            SciconvWarning,
            stacklevel=2,
        )
        if self.on_rewind is not None:
            self.on_rewind(epoch)

    def _load(self, weights: Path, state: Path) -> int:
        """Keras' ``_load_model`` for one state; returns its epoch (0 without metadata)."""
        if not self.model.built:
            return super()._load_model()  # Keras' error for an unbuilt model
        if weights.exists():
            optimizer = self.model.optimizer
            if optimizer is not None and not optimizer.built:
                optimizer.build(self.model.trainable_variables)
            if weights.name.endswith(".weights.h5"):
                self.model.load_weights(str(weights))
            else:  # Keras reads only files named *.weights.h5
                with _temporary(self.weights_path) as tmp:
                    _link_or_copy(weights, tmp)
                    self.model.load_weights(str(tmp))
        epoch = 0
        if state.exists():
            epoch = json.loads(state.read_text(encoding="utf-8"))["epoch"]
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
                raise ValueError(f"{state.name}: no epoch count in it ({epoch!r})")
            self.model._initial_epoch = epoch
        return epoch

    def _unloadable(self, first: Exception, second: Exception | None) -> SciconvError:
        if not self.same_model:  # a run folder without the weights fingerprint to tell
            return other_model_error(
                Path(self.backup_dir).parent, f"its weights do not fit: {_brief(first)}"
            )
        previous = (
            "and it has no previous copy"
            if second is None
            else f"nor does its previous copy {self.previous_weights_path.name} ({_brief(second)})"
        )
        return SciconvError(
            f"the training state saved there does not load into this model ({_brief(first)}), "
            f"{previous}: the backup of the interrupted run is damaged (truncated or corrupted) "
            "and the run cannot resume; start it again with resume=False and overwrite=True "
            "(YAML: training.resume: false, --overwrite)",
            path=self.weights_path,
        )

    # ------------------------------------------------------------------------------ save
    def _save_model(self):
        """Write the state of now atomically; the one before it becomes the previous state."""
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        state = json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen})
        with _temporary(self.weights_path) as weights_tmp, _temporary(self.state_path) as tmp:
            self.model.save_weights(filepath=str(weights_tmp), overwrite=True)  # the long part
            _synced(weights_tmp)
            tmp.write_text(state, encoding="utf-8")
            _synced(tmp)
            # Each pair is incomplete (no metadata) while it changes: a reader then takes the
            # other one, never the weights of one epoch with the epoch count of another.
            latest = self.weights_path.exists() and self.state_path.exists()
            if self.double_checkpoint and latest:
                with contextlib.suppress(FileNotFoundError):
                    self.previous_state_path.unlink()
                _link(self.weights_path, self.previous_weights_path)
                _link(self.state_path, self.previous_state_path)
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()
            os.replace(weights_tmp, self.weights_path)
            os.replace(tmp, self.state_path)


class RestoreBackup(keras.callbacks.Callback):
    """Restore ``backup`` when training begins, before the other callbacks start: put first,
    so that a fallback to the previous state (``on_rewind``) comes before ``log.csv`` is
    opened. ``backup`` itself stays where its saves belong (after the checkpoints).

    Examples
    --------
    >>> RestoreBackup(BackupAndRestore("run/backup")).backup.weights_path.name
    'latest.weights.h5'
    """

    def __init__(self, backup: BackupAndRestore):
        super().__init__()
        self.backup = backup

    def on_train_begin(self, logs=None):
        self.backup.restore()


def _brief(err: BaseException) -> str:
    """The first line of an error's message (Keras' list the objects over many lines)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


#: The attribute :func:`undo_interrupted_call` leaves on a model (read by the next ``fit``),
#: and its two values: the stopped call compiled the model / stepped the caller's optimizer
STOPPED = "_sciconv_stopped_fit"
COMPILED_BY_FIT = "compiled by fit"
OPTIMIZER_STEPPED = "optimizer stepped"


def undo_interrupted_call(model, start_weights: list | None, *, compiled_here: bool) -> None:
    """Leave ``model`` after an interrupted :func:`~sciconv.training.fit` call (Ctrl-C in a
    notebook, an error in a callback) so that running the call again trains as a fresh one.

    With a run folder, the weights the call started with come back (``start_weights``): the
    rerun resumes from the folder's backup, or, before the first one, starts again, where it
    trained on from the interrupted epoch's weights while ``config.json`` called it a fresh,
    exact run (QA52 state #2). The model is marked (:data:`STOPPED`): one that ``fit`` compiled
    is compiled afresh by the next ``fit``, which then warms up and steps a new optimizer (it
    kept the learning rate the interrupted warm-up had reached for the whole run, or, stopped
    while its first step was traced, failed with TensorFlow internals: QA52 state #3); the
    optimizer of a model the caller compiled was stepped by the stopped call, so the next run
    on a folder is recorded as not exact. The model stays compiled meanwhile (``evaluate``
    works; a review).
    """
    if start_weights is not None:
        model.set_weights(start_weights)
    if compiled_here:
        setattr(model, STOPPED, COMPILED_BY_FIT)
    elif start_weights is not None:
        setattr(model, STOPPED, OPTIMIZER_STEPPED)


def take_stopped_mark(model) -> str | None:
    """The mark :func:`undo_interrupted_call` left on ``model`` (None if none), removed."""
    mark = getattr(model, STOPPED, None)
    if mark is not None:
        with contextlib.suppress(AttributeError):
            delattr(model, STOPPED)
    return mark
