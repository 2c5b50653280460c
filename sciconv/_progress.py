"""Progress over tiles, blocks or files that suits where it is written.

A terminal gets a redrawing ``tqdm`` bar and a notebook the widget bar (``tqdm.auto``). Any other
stream (a log file, CI output, a pipe) gets a handful of plain lines, one at each quarter of the
work, with no carriage returns and no escape codes. Progress is informational: when its stream
cannot be written (a full log disk, a closed file descriptor) it is dropped, never the work.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Plain (non-terminal) progress writes one line each time this fraction of the work is done.
PLAIN_STEP = 0.25


class PlainProgress:
    """Progress as a few plain lines: ``"{desc}: 3/12 tiles (25%), 1.2 s"``."""

    def __init__(self, total: int, *, desc: str, unit: str, file: TextIO):
        self.total, self.desc, self.unit, self.file = int(total), desc, unit, file
        self.n = 0
        self.next_mark = PLAIN_STEP
        self.t0 = time.perf_counter()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done; write a line when a quarter mark is passed."""
        self.n += n
        frac = self.n / self.total if self.total else 1.0
        if frac + 1e-12 < self.next_mark and self.n < self.total:
            return
        while self.next_mark <= frac + 1e-12:
            self.next_mark += PLAIN_STEP
        elapsed = time.perf_counter() - self.t0
        done = f"{self.n}/{self.total} {self.unit}s ({100 * frac:.0f}%)"
        self.file.write(f"{self.desc}: {done}, {elapsed:.1f} s\n")
        self.file.flush()

    def close(self) -> None:
        """Nothing to clean up (every line is complete)."""


class DroppingProgress:
    """A progress object whose output is dropped from its first failing write on (``OSError``:
    a full disk, a closed stream); the work it reports on goes on.

    Examples
    --------
    >>> class Full:
    ...     def write(self, text):
    ...         raise OSError(28, "No space left on device")
    >>> bar = DroppingProgress(PlainProgress(2, desc="predict", unit="file", file=Full()))
    >>> bar.update(1); bar.update(1); bar.close()
    >>> bar.lost
    True
    """

    def __init__(self, bar):
        self.bar, self.lost = bar, False

    def update(self, n: int = 1) -> None:
        """The wrapped bar's ``update``, unless its stream has failed."""
        if self.lost:
            return
        try:
            self.bar.update(n)
        except (OSError, ValueError):  # ValueError: a closed file
            self.lost = True

    def close(self) -> None:
        """The wrapped bar's ``close``; a failing stream is ignored."""
        try:
            self.bar.close()
        except (OSError, ValueError):
            self.lost = True

    def __getattr__(self, name):
        return getattr(self.bar, name)


def progress_bar(total: int, *, desc: str, unit: str, enabled: bool, file: TextIO | None = None):
    """A progress object with ``update(n)`` and ``close()``, or None when ``enabled`` is False.

    Parameters
    ----------
    total : int
        Items to do.
    desc, unit : str
        What is done (``"predict_tiled"``) and what an item is (``"tile"``).
    enabled : bool
        False: no output at all (returns None).
    file : text stream, optional
        Where to write. Default ``sys.stderr``. A terminal (``isatty()``) or a notebook gets a
        ``tqdm.auto`` bar; anything else :class:`PlainProgress` lines.

    Examples
    --------
    >>> import io
    >>> stream = io.StringIO()
    >>> bar = progress_bar(4, desc="predict_tiled", unit="tile", enabled=True, file=stream)
    >>> for _ in range(4):
    ...     bar.update(1)
    >>> bar.close()
    >>> print(stream.getvalue().splitlines()[1].split(",")[0])
    predict_tiled: 2/4 tiles (50%)
    """
    if not enabled:
        return None
    from tqdm.auto import tqdm

    file = sys.stderr if file is None else file
    try:
        if interactive(file):
            notebook = in_notebook()
            bar = tqdm(total=total, desc=desc, unit=unit, file=None if notebook else file)
        else:
            bar = PlainProgress(total, desc=desc, unit=unit, file=file)
    except (OSError, ValueError):  # a terminal that is gone: no progress
        return None
    return DroppingProgress(bar)


def in_notebook() -> bool:
    """Whether this runs in a notebook kernel (tqdm.auto's class is then tqdm.notebook's)."""
    from tqdm.auto import tqdm

    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


def interactive(file: TextIO | None = None) -> bool:
    """Whether progress written to ``file`` (default ``sys.stderr``) is watched live: a notebook
    or a terminal; logs and CI get plain lines instead of redrawn bars.

    Examples
    --------
    >>> import io
    >>> interactive(io.StringIO())
    False
    """
    file = sys.stderr if file is None else file
    isatty = getattr(file, "isatty", None)
    return in_notebook() or bool(isatty is not None and isatty())
