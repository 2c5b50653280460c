"""What every ``sciconv`` subcommand shares: exit codes, the parser class, printing, errors.

The command's modules are split by role: :mod:`sciconv.cli` (the entry point: the parser and
``main``), ``_cli_train`` (``sciconv train`` and its YAML configuration), ``_cli_predict``
(``sciconv predict``: the runs), ``_cli_predict_plan`` (its inputs and planned products, all
checked before the first prediction), ``_cli_predict_batch`` (``--keep-going``: which errors an
input may fail with, and the batch's tally), ``_cli_predict_chips`` (which image of a file each
job reads: ``--hdu``, ``--series``, ``--hdu all``'s chips), ``_cli_predict_options`` (its options
and their value types) and this one, which the others import.

Examples
--------
>>> one_line(ValueError("two\\nlines"))
'two lines'
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from sciconv.errors import name_text

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "PRETRAINED_PREFIX",
    "Parser",
    "load_model_arg",
    "one_line",
    "say",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: How the command line names a model shipped with sciconv: ``pretrained:nuclei``.
PRETRAINED_PREFIX = "pretrained:"


def load_model_arg(name: str, *, trust: bool = False):
    """The model a command-line argument names: ``pretrained:NAME`` (shipped with sciconv) or a
    ``.keras`` file, loaded without its training settings.

    Raises
    ------
    SciconvError
        A folder or a missing file, naming it (unknown pretrained names: the models' error).

    Examples
    --------
    >>> load_model_arg("no/such.keras")
    Traceback (most recent call last):
    ...
    sciconv.errors.SciconvError: no/such.keras: model file not found
    """
    from pathlib import Path

    from sciconv.errors import SciconvError

    path = Path(name)
    if not name.startswith(PRETRAINED_PREFIX):  # checked before TensorFlow loads
        if path.is_dir():
            raise SciconvError("is a folder; give a .keras model file", path=path)
        if not path.is_file():
            raise SciconvError("model file not found", path=path)
    from sciconv import models

    if name.startswith(PRETRAINED_PREFIX):
        return models.pretrained(name[len(PRETRAINED_PREFIX) :])
    return models.load(path, trust=trust, compile=False)


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error format used everywhere in the command."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"sciconv: error: {message}\n")


# the stdout that failed (a full log disk, a closed pipe): nothing more is printed to it
_lost_stdout: Any = None


def resolved(path):
    """``path`` resolved, or made absolute when it cannot be (a symbolic link loop: Python
    raises RuntimeError there, which stopped a whole ``--keep-going`` batch; QA): reading it
    then gives that input its own error.

    Examples
    --------
    >>> from pathlib import Path
    >>> resolved(Path("/")) == Path("/")
    True
    """
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def say(*parts: Any) -> None:
    """Print progress for the person at the terminal (the CLI is the one place that prints).

    A name in them that is not UTF-8 is shown escaped (``caf\\xe9``), and so are line
    breaks and other control characters in a name (one line per file, for line-based logs).

    The lines are informational, so a stdout that cannot be written (a full log disk, a reader
    that has gone, as in ``| head -1``) does not stop the command: one warning goes to stderr,
    stdout is pointed at the null device (so that Python's flush at exit cannot fail either) and
    nothing more is printed to it.

    Examples
    --------
    >>> say("model:", "best.keras")
    model: best.keras
    """
    global _lost_stdout
    stream = sys.stdout
    if stream is None or stream is _lost_stdout:
        return
    line = name_text(" ".join(str(part) for part in parts), controls=True)
    try:
        encoding = getattr(stream, "encoding", None)
        if isinstance(encoding, str):  # a name the encoding lacks (latin-1, cp1252): escaped
            line = line.encode(encoding, "backslashreplace").decode(encoding)
        print(line, file=stream, flush=True)
    except OSError as err:  # BrokenPipeError, ENOSPC, EIO
        _lost_stdout = stream
        _to_null_device(stream)
        reason = err.strerror or one_line(err)
        try:
            print(
                f"sciconv: warning: cannot write to stdout ({reason}); results still written "
                "to files",
                file=sys.stderr,
                flush=True,
            )
        except (OSError, AttributeError):  # stderr is gone too
            pass


def _to_null_device(stream) -> None:
    """Point ``stream``'s file descriptor at the null device (Python's advice for BrokenPipe), so
    that the output still buffered in it is dropped instead of failing again at exit."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, fd)
    except OSError:
        pass
    finally:
        os.close(null)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KERAS_WRAPPER = re.compile(r"^Exception encountered when calling [\w.]+\(\)\.\s*")


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message with whitespace collapsed (or its type's name).

    An ``OSError`` with a file name reads ``"<file>: <reason>"``.

    Examples
    --------
    >>> one_line(FileNotFoundError(2, "No such file or directory", "a.fits"))
    'a.fits: No such file or directory'
    >>> one_line(ValueError("Exception encountered when calling X.call(). bad value"))
    'bad value'
    """
    text = _KERAS_WRAPPER.sub("", _ANSI.sub("", str(exc)))  # Keras re-raises with both
    text = " ".join(text.split()) or type(exc).__name__
    if isinstance(exc, OSError) and getattr(exc, "filename", None) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return text


def error_text(exc: BaseException, *, with_path: bool = True) -> str:
    """A sciconv (or OS) error as the command line shows it: :func:`one_line`, the library's
    ``overwrite=True`` said as the option ``--overwrite``; ``with_path=False``: a sciconv
    error's message without the file it names (the caller names it).

    Examples
    --------
    >>> from sciconv.errors import OutputExistsError
    >>> error_text(OutputExistsError("output exists; pass overwrite=True", path="a.fits"))
    'a.fits: output exists; pass --overwrite'
    >>> error_text(OutputExistsError("output exists", path="a.fits"), with_path=False)
    'output exists'
    """
    from sciconv.errors import OutputExistsError, SciconvError

    shown = exc if with_path or not isinstance(exc, SciconvError) else SciconvError(exc.message)
    text = one_line(shown)
    if isinstance(exc, OutputExistsError):  # the library says overwrite=True
        text = text.replace("overwrite=True", "--overwrite")
    return text
