"""What sciconv leaves in the caller's process (QA52 state): the environment that later
subprocesses inherit."""

from __future__ import annotations

import os

from sciconv import cli


def test_cli_main_from_python_leaves_the_environment_as_it_was(monkeypatch, capsys):
    """main() set TF_CPP_MIN_LOG_LEVEL=2 for good: every process the caller starts afterwards
    (dask workers, subprocess calls) lost TensorFlow's C++ error lines. Only the console command
    (run) sets it, for its own process."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.main(["--version"]) == 0
    assert "sciconv" in capsys.readouterr().out
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
