"""A failing stdout (a full log disk, a closed pipe such as ``| head -1``) does not stop a batch:
the result lines are informational, so sciconv warns once on stderr and goes on writing its
files."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys

import pytest

from sciconv._cli_common import say


class _FailingStdout(io.StringIO):
    def __init__(self, error: OSError):
        super().__init__()
        self.error = error
        self.writes = 0

    def write(self, text):
        self.writes += 1
        raise self.error


@pytest.mark.parametrize(
    "error, reason",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), "Broken pipe"),
    ],
)
def test_say_warns_once_and_goes_on_when_stdout_fails(monkeypatch, capsys, error, reason):
    failing = _FailingStdout(error)
    monkeypatch.setattr(sys, "stdout", failing)
    say("a.png: 3 objects")
    say("b.png: 4 objects")
    err = capsys.readouterr().err
    assert err.count("sciconv: warning: cannot write to stdout") == 1, err
    assert f"({reason}); results still written to files" in err
    assert failing.writes == 1  # no further result lines are tried


def test_say_prints_again_on_a_new_stdout(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _FailingStdout(OSError(errno.ENOSPC, "full")))
    say("lost")
    monkeypatch.undo()
    say("shown")
    assert capsys.readouterr().out == "shown\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_stdout_does_not_stop_the_command():
    # the say() calls of a command, in a process whose stdout is a full disk
    code = (
        "from sciconv._cli_common import say\n"
        "for i in range(3):\n"
        "    say(f'line {i}')\n"
        "print('done', file=__import__('sys').stderr)\n"
    )
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot write to stdout (No space left on device)") == 1
    assert "done" in done.stderr
    assert "Exception ignored" not in done.stderr


def test_closed_pipe_does_not_stop_the_command():
    code = (
        "import time\n"
        "from sciconv._cli_common import say\n"
        "say('first')\n"
        "time.sleep(0.5)\n"  # the reader has gone by now
        "for i in range(3):\n"
        "    say(f'line {i}')\n"
        "print('done', file=__import__('sys').stderr)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "first\n"
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 0, err
    assert err.count("cannot write to stdout (Broken pipe)") == 1, err
    assert "done" in err
    assert "Exception ignored" not in err


def test_astropy_warnings_are_one_line_on_stderr():
    # astropy is imported while the command runs (reading a FITS file), after run() set up the
    # one-line format; its multi-line VerifyWarning blocks must come out as one line too
    code = (
        "import sys, warnings\n"
        "from sciconv import cli\n"
        "def cmd(args):\n"
        "    from astropy.io.fits.verify import VerifyWarning\n"
        "    warnings.warn(VerifyWarning(\"Card 'SKEW' is not FITS standard.\\n  Fixed it.\"))\n"
        "    return 0\n"
        "cli._cmd_info = cmd\n"
        "sys.argv = ['sciconv', 'info']\n"
        "sys.exit(cli.run())\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "SKEW" in line or "Fixed" in line]
    assert lines == [
        "sciconv: warning: VerifyWarning: Card 'SKEW' is not FITS standard. Fixed it."
    ], done.stderr


def test_say_escapes_a_name_stdout_cannot_encode(monkeypatch, capsys):
    """QA: with a latin-1 (or cp1252) stdout, an input named 'cell é 細胞.tif' raised
    UnicodeEncodeError in the result line: the batch stopped, --keep-going or not, and the
    products just computed were removed."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="latin-1")
    monkeypatch.setattr(sys, "stdout", stream)
    say("cell é 細胞.tif: 12 objects")
    stream.flush()
    assert raw.getvalue().decode("latin-1") == "cell é \\u7d30\\u80de.tif: 12 objects\n"


def test_a_bad_sciconv_precision_is_a_usage_error_before_any_input(monkeypatch, capsys, tmp_path):
    """QA: SCICONV_PRECISION=fp16 was reported as a failure of each input (exit 1; with
    --keep-going every file was read and failed)."""
    from _helpers import run_cli

    monkeypatch.setenv("SCICONV_PRECISION", "fp16")
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", tmp_path / "a.tif", "--out", tmp_path / "o"
    )
    assert code == 2 and "SCICONV_PRECISION='fp16'" in err and "a.tif" not in err
