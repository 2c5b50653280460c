"""What every ``sciconv`` subcommand shares: exit codes, the parser class, printing, errors.

The command's modules are split by role: :mod:`sciconv.cli` (the entry point: the parser and
``main``), ``_cli_train`` (``sciconv train`` and its YAML configuration), ``_cli_predict``
(``sciconv predict``: inputs, planned products, the runs), ``_cli_predict_options`` (its
options and their value types) and this one, which the others import.

Examples
--------
>>> one_line(ValueError("two\\nlines"))
'two lines'
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "Parser", "one_line", "say"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error format used everywhere in the command."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"sciconv: error: {message}\n")


def say(*parts: Any) -> None:
    """Print progress for the person at the terminal (the CLI is the one place that prints).

    Examples
    --------
    >>> say("model:", "best.keras")
    model: best.keras
    """
    print(*parts, flush=True)


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
