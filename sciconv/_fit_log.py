"""The per-epoch log (``log.csv``) :func:`sciconv.training.fit` writes into its workdir: Keras'
CSVLogger, with the columns of a resumed run's log brought to this run's first."""

from __future__ import annotations

import os

import keras

from sciconv.runs import widen_log

__all__ = ["CsvLog"]


class CsvLog(keras.callbacks.CSVLogger):
    """Keras' CSVLogger without the ``val_*`` columns (all NA, ``val_learning_rate`` among
    them) it adds to a run that has no validation data; and, appending to a run's log, with
    rows written under its header by column name.

    The file is opened with ``newline=""``, as the csv module requires: Keras opens it in text
    mode, where Windows turned each row's ``\\r\\n`` into ``\\r\\r\\n`` (a blank row after every
    epoch in Excel); and in UTF-8, as :func:`sciconv.runs.read_log` reads it.

    Keras keeps an existing file's header and writes its own columns after it: the log of a
    run started by a sciconv that logged fewer columns (no ``learning_rate`` before
    2026-12-05) got rows of more cells than its header, which every reader took by position
    (the learning rate as the loss, ``config.json``'s ``best`` of the wrong epoch). Here the
    log gets the columns it lacks, empty in its old rows (:func:`sciconv.runs.widen_log`,
    atomic), before the first row is appended; a column only the old rows have is ``NA``.
    A log whose rows already have more cells than its header is refused before training
    (:class:`~sciconv.errors.ConfigError` naming the line).

    Examples
    --------
    >>> import tempfile, pathlib, sciconv as sc
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = log.write_text("epoch,accuracy,loss\\n0,0.5,0.9\\n")  # an older sciconv's run
    >>> cb = CsvLog(str(log), append=True, validates=False)
    >>> cb.on_train_begin()
    >>> cb.on_epoch_end(1, {"accuracy": 0.75, "learning_rate": 0.001, "loss": 0.7})
    >>> cb.on_train_end()
    >>> sc.runs.read_log(log)["loss"].tolist(), log.read_text().splitlines()[0]
    ([0.9, 0.7], 'epoch,accuracy,loss,learning_rate')
    """

    def __init__(self, filename: str, *, append: bool, validates: bool):
        super().__init__(filename, append=append)
        self.validates = validates

    def on_train_begin(self, logs=None):
        if self.append and os.path.exists(self.filename):
            widen_log(self.filename, [])  # a log with rows of unknown columns: refused now
        super().on_train_begin(logs)
        self._reopen()  # created (or emptied) by Keras: appended to from now on

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None and logs:
            self.keys = sorted(logs)
            if self.validates and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]  # as Keras: validated later
        if self.writer is None and not self.append_header and self.keys is not None:
            self._widen()
        super().on_epoch_end(epoch, logs)

    def _widen(self) -> None:
        """Appending to a log with a header: give it this run's columns, write by its header."""
        header = widen_log(self.filename, ["epoch", *self.keys])
        if not header:
            return
        self.keys = [c for c in header if c != "epoch"]  # fit's logs start with epoch
        self._reopen()  # the file may have been replaced (atomic rewrite): append to the new one

    def _reopen(self) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a", encoding="utf-8", newline="")
