"""SIGTERM (a Slurm or cron timeout) during ``sciconv train``: exit 143, lock released, resumable.

``sciconv train`` ends on SIGTERM through its clean-up, as after Ctrl-C: the exception may land
while the weights backup is written, which is atomic (temporary file + rename), so the rerun of
the same command resumes from the last finished epoch, with no stale-lock warning.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import blob_images

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")

COMMAND = [sys.executable, "-m", "sciconv.cli"]
EPOCHS = 40
TIMEOUT = 240


def _config(tmp_path: Path) -> Path:
    blob_images(tmp_path / "data" / "a", 6, bright=True, seed=1)
    blob_images(tmp_path / "data" / "b", 6, bright=False, seed=2)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"dataset: {{kind: folder, path: {tmp_path / 'data'}, validation_split: 0.25, "
        "batch_size: 4, seed: 0}\n"
        "model: {type: classifier, filters: [2], dense: [], dropout: 0.0}\n"
        f"training: {{epochs: {EPOCHS}, workdir: {tmp_path / 'run'}, tensorboard: false, "
        "verbose: 0, seed: 0, reduce_lr: false}\n"
    )
    return cfg


def _start(cfg: Path) -> subprocess.Popen:
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("SCICONV_DEBUG", None)
    return subprocess.Popen(
        [*COMMAND, "train", str(cfg)],
        cwd=cfg.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _epochs(log: Path) -> list[int]:
    if not log.exists():
        return []
    with open(log, newline="") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh) if row.get("epoch")]


@pytest.mark.slow
def test_sigterm_during_train_exits_143_and_the_rerun_resumes(tmp_path):
    cfg = _config(tmp_path)
    run, log = tmp_path / "run", tmp_path / "run" / "log.csv"
    proc = _start(cfg)
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(_epochs(log)) < 2:  # epochs 0 and 1 logged: the backup of epoch 0 is whole
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"training did not reach its second epoch: {proc.communicate()}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "sciconv: terminated" in err
    assert "Traceback" not in err
    assert not (run / "run.lock").exists()  # released, as after Ctrl-C
    assert json.loads((run / "config.json").read_text())["status"] == "running"
    state = json.loads((run / "backup" / "training_metadata.json").read_text())
    done = state["epoch"]
    assert 1 <= done < EPOCHS
    assert not [p.name for p in (run / "backup").iterdir() if p.name.startswith(".")]

    rerun = _start(cfg)
    _, err = rerun.communicate(timeout=TIMEOUT)
    assert rerun.returncode == 0, err
    assert "lock" not in err and "no longer running" not in err, err
    assert "warning" not in err, err
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished"
    assert config["resumed_from_epoch"] == done
    assert _epochs(log) == list(range(EPOCHS))  # continuous: no gap, no repeated epoch
    assert not (run / "backup").exists() and not (run / "run.lock").exists()
