"""Tests of sciconv.runs: a run folder's config.json and log.csv read back without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sciconv import runs, training
from sciconv.errors import ConfigError

# what keras.callbacks.CSVLogger writes, with a metric missing in one epoch ("NA")
LOG = "epoch,accuracy,learning_rate,loss,val_loss\n0,0.5,0.001,1.0,1.1\n1,0.6,0.001,0.8,NA\n"


def test_read_log_from_file_or_workdir(tmp_path):
    (tmp_path / "log.csv").write_text(LOG)
    for source in (tmp_path, tmp_path / "log.csv", str(tmp_path)):
        log = runs.read_log(source)
        assert list(log) == ["epoch", "accuracy", "learning_rate", "loss", "val_loss"]
        np.testing.assert_array_equal(log["epoch"], [0, 1])
        np.testing.assert_allclose(log["loss"], [1.0, 0.8])
        assert log["val_loss"][0] == 1.1 and np.isnan(log["val_loss"][1])
        assert all(v.dtype == np.float64 for v in log.values())
    assert list(runs.read_log(tmp_path, columns=["loss", "epoch"])) == ["loss", "epoch"]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        (None, {}, r"log\.csv: training log not found"),
        ("", {}, "no epochs yet"),
        ("epoch,loss\n", {}, "no epochs yet"),
        ("epoch,loss\n0,abc\n", {}, "column 'loss' holds non-numbers"),
        ("epoch,loss\n0,1.0\n", {"columns": ["val_loss"]}, r"lacks column\(s\) \['val_loss'\]"),
    ],
)
def test_read_log_errors(tmp_path, text, kwargs, message):
    if text is not None:
        (tmp_path / "log.csv").write_text(text)
    with pytest.raises(ConfigError, match=message):
        runs.read_log(tmp_path, **kwargs)


def test_truncate_log_keeps_finished_epochs(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss\n0,0.9\n1,0.7\n2,0.6\n")
    runs.truncate_log(tmp_path, 2)
    assert log.read_text().splitlines() == ["epoch,loss", "0,0.9", "1,0.7"]
    runs.truncate_log(log, 0)
    assert log.read_text().splitlines() == ["epoch,loss"]
    runs.truncate_log(tmp_path / "other", 1)  # nothing there: nothing to do
    assert not (tmp_path / "other").exists()


def test_read_config_and_its_training_alias(tmp_path):
    assert training.read_config is runs.read_config
    (tmp_path / "config.json").write_text('{"status": "finished", "epochs": 3}')
    assert runs.read_config(tmp_path) == {"status": "finished", "epochs": 3}
    with pytest.raises(ConfigError, match="no run configuration"):
        runs.read_config(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable run configuration"):
        runs.read_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object; got list"):
        runs.read_config(tmp_path)


def test_reading_a_run_does_not_import_tensorflow():
    code = "import sys, sciconv.runs; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
