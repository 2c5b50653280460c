"""What sciconv leaves in the caller's process (QA52 state): the environment that later
subprocesses inherit."""

from __future__ import annotations

import os

import pytest

from sciconv import cli


def test_cli_main_from_python_leaves_the_environment_as_it_was(monkeypatch, capsys):
    """main() set TF_CPP_MIN_LOG_LEVEL=2 for good: every process the caller starts afterwards
    (dask workers, subprocess calls) lost TensorFlow's C++ error lines. Only the console command
    (run) sets it, for its own process."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.main(["--version"]) == 0
    assert "sciconv" in capsys.readouterr().out
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ


def test_onnx_export_leaves_the_environment_and_absl_level_as_they_were(tmp_path, monkeypatch):
    """tf2onnx's import set TF_CPP_MIN_LOG_LEVEL=3 and the absl logger to WARNING for the rest of
    the session (a caller's 2 became 3; later subprocesses lost TensorFlow's C++ errors)."""
    import logging
    import subprocess
    import sys

    code = (
        "import logging, os, sys\n"
        "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '1'\n"
        "import sciconv\n"
        "from sciconv.models import classifier, export\n"
        "m = classifier((16, 16, 1), 2, filters=(2,), dense=())\n"
        "export(m, sys.argv[1])\n"
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), logging.getLogger('absl').level)\n"
    )
    pytest.importorskip("tf2onnx")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.onnx")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["1", str(logging.NOTSET)]
    assert (tmp_path / "m.onnx").is_file()
