"""One training run at a time in a workdir: the lock file ``fit`` holds while it trains (QA).

A second ``sciconv train`` on the workdir of a run still in progress took it for an interrupted
run and resumed it: both crashed on HDF5 errors and the weights backup was truncated.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from _helpers import assert_one_line_error, blob_images, live_process, run_cli

import sciconv as sc
from sciconv.errors import ConfigError, SciconvWarning

LOCK = "run.lock"


def _xy(n=8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    return x, (x.mean(axis=(1, 2, 3)) > 0).astype("int64")


def _tiny():
    keras.utils.set_random_seed(0)
    return sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())


def _fit(workdir, **kw):
    return sc.training.fit(
        _tiny(), _xy(), epochs=1, workdir=workdir, verbose=0, tensorboard=False, **kw
    )


def _write_lock(workdir, pid, host=None, started="2024-05-01T10:00:00"):
    workdir.mkdir(parents=True, exist_ok=True)
    lock = {"pid": pid, "host": host or socket.gethostname(), "started": started}
    (workdir / LOCK).write_text(json.dumps(lock))
    return lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_fit_refuses_a_workdir_a_live_run_holds_and_touches_nothing(tmp_path):
    run = tmp_path / "run"
    with live_process() as (pid, started):
        _write_lock(run, pid, started=started)  # a run in progress
        before = (run / LOCK).read_text()
        with pytest.raises(ConfigError, match=r"in use by a run in progress \(pid \d+ on .* since"):
            _fit(run)
        assert sorted(p.name for p in run.iterdir()) == [LOCK]  # nothing written
        assert (run / LOCK).read_text() == before  # and the other run's lock is kept
        # overwrite=True does not replace a live run either
        with pytest.raises(ConfigError, match="in use by a run in progress"):
            _fit(run, overwrite=True)
        assert (run / LOCK).read_text() == before


def test_fit_takes_over_the_lock_of_a_dead_run_with_a_warning(tmp_path):
    run = tmp_path / "run"
    pid = _dead_pid()
    _write_lock(run, pid)
    with pytest.warns(
        SciconvWarning, match=rf"lock of a run that is no longer running \(pid {pid}"
    ):
        _fit(run)
    assert sc.runs.read_config(run)["status"] == "finished"
    assert not (run / LOCK).exists()  # released when fit ends


def test_fit_refuses_a_lock_from_another_host_and_says_how_to_remove_it(tmp_path):
    run = tmp_path / "run"
    _write_lock(run, 12345, host="elsewhere.example.org")
    with pytest.raises(ConfigError, match=r"another host.*elsewhere\.example\.org") as err:
        _fit(run)
    assert str(run / LOCK) in str(err.value) and "delete" in str(err.value)
    assert (run / LOCK).exists()


class _Check(keras.callbacks.Callback):
    """Records the lock during training; raises ``error`` after the first epoch."""

    def __init__(self, run, error=None):
        super().__init__()
        self.run, self.error, self.seen = run, error, None

    def on_epoch_end(self, epoch, logs=None):
        self.seen = json.loads((self.run / LOCK).read_text())
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize("error", [None, KeyboardInterrupt("kill"), RuntimeError("crash")])
def test_fit_holds_the_lock_while_it_trains_and_releases_it(tmp_path, error):
    run = tmp_path / "run"
    check = _Check(run, error)
    if error is None:
        _fit(run, callbacks=[check])
    else:
        with pytest.raises(type(error)):
            _fit(run, callbacks=[check])
    assert check.seen["pid"] == os.getpid()
    assert check.seen["host"] == socket.gethostname() and check.seen["started"]
    assert not (run / LOCK).exists()
    if error is not None:  # the interrupted run resumes, with no stale-lock warning
        _fit(run)


def test_cli_train_refuses_a_workdir_in_use_with_exit_2(capsys, tmp_path):
    blob_images(tmp_path / "data" / "a", 4, bright=True, seed=1)
    blob_images(tmp_path / "data" / "b", 4, bright=False, seed=2)
    run = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"dataset: {{kind: folder, path: {tmp_path / 'data'}, batch_size: 4}}\n"
        "model: {type: classifier, filters: [2], dense: []}\n"
        f"training: {{epochs: 1, workdir: {run}, tensorboard: false, verbose: 0}}\n"
    )
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"status": "running", "epochs_done": 3}))
    with live_process() as (pid, started):
        _write_lock(run, pid, started=started)
        for flags in ((), ("--overwrite",)):
            code, out, err = run_cli(capsys, "train", cfg, *flags)
            assert code == 2, err
            assert_one_line_error(err, str(run), "in use by a run in progress", f"pid {pid}")
            assert "dataset:" not in out  # refused before the data are read
    assert sorted(p.name for p in run.iterdir()) == ["config.json", LOCK]


def test_an_empty_lock_file_is_a_run_starting_unless_it_is_old(tmp_path):
    """A lock file is written right after it is created: empty, it is a run starting; empty for
    long, a run killed in between, and stale."""
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text("")
    with pytest.raises(ConfigError, match="in use by a run that is starting"):
        _fit(run)
    old = os.stat(run / LOCK).st_mtime - 3600
    os.utime(run / LOCK, (old, old))
    with pytest.warns(SciconvWarning, match=r"no longer running \(its lock file unreadable"):
        _fit(run)
    assert not (run / LOCK).exists()


def _two_threads_take(folder) -> tuple[int, int]:
    """Two threads asking for ``folder``'s lock at the same moment: (holders, refused)."""
    import threading

    from sciconv._workdir_lock import lock_workdir
    from sciconv.errors import ConfigError

    start, tried = threading.Barrier(2), threading.Barrier(2)
    holders, refused = [], []

    def take():
        start.wait()
        try:
            with lock_workdir(folder):
                holders.append(1)
                tried.wait(timeout=5)  # held until the other thread has tried
        except ConfigError:
            refused.append(1)
            tried.wait(timeout=5)

    threads = [threading.Thread(target=take) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(holders), len(refused)


def test_two_threads_asking_for_one_workdir_at_once_get_it_one_at_a_time(tmp_path):
    # QA threads: between creating its lock and marking it held, a thread's lock was judged an
    # earlier process's (same pid) by the other thread, which took it over: both held it in
    # 41-50 of 50 tries (two fits into one folder: a double-clicked "train" button)
    import warnings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        outcomes = [_two_threads_take(tmp_path / f"run{k}") for k in range(12)]
    assert outcomes == [(1, 1)] * 12
    assert not [w for w in said if "taking over" in str(w.message)]
