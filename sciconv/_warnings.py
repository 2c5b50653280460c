"""Warnings said inside a block, reworded as they are shown (the file they are about named, a
scratch file's name replaced by its target's), collected instead of shown, or filtered: safely
when sciconv runs in several threads at once.

``warnings.catch_warnings`` saves and restores the whole process's filters and ``showwarning``
(Python < 3.14): two threads' blocks that overlap restore each other's state out of order, and
a read in a dask or web worker left filters behind for good, or every later warning of the
process recorded into a finished block's list (QA threads: all warnings lost within 1-7 rounds;
a clean file's read reported another file's broken header). Here:

- :func:`caught` adds the filters a block asks for and removes exactly those on exit (by
  identity), never a snapshot of the list; its ``record=True`` collects the warnings raised
  *in this thread* only;
- :func:`reworded` and :func:`naming` reword the warnings raised in this thread only.

Both go through one dispatcher put on ``warnings.showwarning`` (passing everything it is not
asked to handle to the ``showwarning`` it found), with a stack of handlers per thread. The
wording changes where a warning is shown, after Python's filters have judged it where it was
raised (its module, its registry: ``"once"`` and ``"default"`` keep their meaning, and a warning
the caller ignores stays ignored), so nothing is raised twice. ``pytest.warns`` and
``warnings.catch_warnings(record=True)`` around the block record the reworded warnings. The
filters themselves stay process-wide while a block runs (another thread's warning meanwhile is
judged by them too), as Python's are.
"""

from __future__ import annotations

import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sciconv.errors import SciconvWarning

__all__ = ["Caught", "carried", "caught", "naming", "reworded"]

_LOCK = threading.RLock()  # the filters list and the dispatcher's installation
_LOCAL = threading.local()  # .handlers: [("record", Caught) | ("reword", fn)], innermost last
_ACTIVE = [0]  # handlers pushed, all threads: the dispatcher is on showwarning while > 0


class _Bump(Warning):
    """Never raised: a filter for it, appended once, makes Python forget which warnings its
    registries saw shown (what ``catch_warnings`` does on exit), through the public API."""


def _handlers() -> list:
    handlers = getattr(_LOCAL, "handlers", None)
    if handlers is None:
        handlers = _LOCAL.handlers = []
    return handlers


def _dispatcher(previous):
    """A showwarning applying this thread's handlers, then passing to ``previous``, the one it
    replaced (each installation keeps its own: whoever restores an older showwarning restores
    that chain too)."""

    def dispatch(message, category, filename, lineno, file=None, line=None):
        if getattr(_LOCAL, "inside", False):  # a showwarning below wraps an older dispatcher
            return previous(message, category, filename, lineno, file, line)
        _LOCAL.inside = True
        try:
            for kind, target in reversed(_handlers()):
                if kind == "record":
                    target.append(
                        warnings.WarningMessage(message, category, filename, lineno, file, line)
                    )
                    return None
                message = target(message, category)
                if message is None:
                    return None
                category = type(message) if isinstance(message, Warning) else category
            return previous(message, category, filename, lineno, file, line)
        finally:
            _LOCAL.inside = False

    dispatch._sciconv_previous = previous
    return dispatch


def _install() -> None:
    with _LOCK:
        _ACTIVE[0] += 1
        if not hasattr(warnings.showwarning, "_sciconv_previous"):
            warnings.showwarning = _dispatcher(warnings.showwarning)


def _uninstall() -> None:
    with _LOCK:
        _ACTIVE[0] -= 1
        shown = warnings.showwarning
        if _ACTIVE[0] == 0 and hasattr(shown, "_sciconv_previous"):
            warnings.showwarning = shown._sciconv_previous  # as it was before any block


@contextmanager
def _handling(kind: str, target) -> Iterator[None]:
    _install()
    handlers = _handlers()
    entry = (kind, target)
    handlers.append(entry)
    try:
        yield
    finally:
        for i in range(len(handlers) - 1, -1, -1):
            if handlers[i] is entry:
                del handlers[i]
                break
        _uninstall()


def carried(fn):
    """``fn`` that runs, in whichever thread, with the records and rewordings of the thread
    that made it (a thread pool's workers inside a ``caught(record=True)`` block).

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with caught("always", record=True) as said, ThreadPoolExecutor(1) as pool:
    ...     _ = list(pool.map(carried(lambda k: warnings.warn(f"file {k}")), [7]))
    >>> [str(w.message) for w in said]
    ['file 7']
    """
    stack = list(_handlers())

    def run(*args, **kwargs):
        _install()
        handlers = _handlers()
        saved = handlers[:]
        handlers[:] = stack + saved
        try:
            return fn(*args, **kwargs)
        finally:
            handlers[:] = saved
            _uninstall()

    return run


class Caught(list):
    """The warnings a :func:`caught` block recorded (with ``record=True``), and the filters it
    adds: :meth:`simplefilter` and :meth:`filterwarnings` take ``warnings``' arguments."""

    def __init__(self) -> None:
        super().__init__()
        self._added: list = []

    def simplefilter(self, action: str, category: type[Warning] = Warning) -> None:
        """Add a filter for the block (as :func:`warnings.simplefilter`)."""
        self.filterwarnings(action, category=category)

    def filterwarnings(
        self, action: str, message: str = "", category: type[Warning] = Warning, module: str = ""
    ) -> None:
        """Add a filter for the block (as :func:`warnings.filterwarnings`)."""
        if action not in ("error", "ignore", "always", "all", "default", "module", "once"):
            raise ValueError(f"invalid warnings action: {action!r}")
        # put first as warnings.filterwarnings does, but without taking out an equal filter
        # already there: a caller's own ("always", Warning) was removed with this block's (QA)
        item = (
            action,
            re.compile(message, re.I) if message else None,
            category,
            re.compile(module) if module else None,
            0,
        )
        with _LOCK:
            warnings.filters.insert(0, item)
            self._added.append(item)  # removed on exit, this very object
            _forget_shown()

    def _remove_filters(self) -> None:
        with _LOCK:
            for item in self._added:
                for i, kept in enumerate(warnings.filters):
                    if kept is item:
                        del warnings.filters[i]
                        break
            _forget_shown()


def _forget_shown() -> None:
    """Make Python judge warnings by the filters as they are now (the registries of warnings
    shown are reset, as ``catch_warnings`` does on exit), through the public API: an appended
    filter for a warning never raised."""
    warnings.filterwarnings("ignore", category=_Bump, append=True)


@contextmanager
def caught(
    action: str | None = None,
    category: type[Warning] = Warning,
    *,
    record: bool = False,
) -> Iterator[Caught]:
    """A thread-safe ``warnings.catch_warnings``: the filters added through the yielded
    :class:`Caught` (``action`` and ``category``: a first one, as ``simplefilter`` takes them)
    hold while the block runs and are removed on exit (only those); with ``record``, the
    warnings raised in this thread are collected in it instead of shown (and in the threads
    that run a function :func:`carried` out of the block: a thread pool's workers).

    Examples
    --------
    >>> with caught("always", record=True) as said:
    ...     warnings.warn("kept", UserWarning)
    >>> [str(w.message) for w in said]
    ['kept']
    >>> with caught() as quiet:
    ...     quiet.simplefilter("ignore", UserWarning)
    ...     warnings.warn("not shown", UserWarning)
    """
    block = Caught()
    if getattr(sys.flags, "context_aware_warnings", False):  # Python 3.14+: already safe
        with warnings.catch_warnings(record=record) as log:
            if action is not None:
                warnings.simplefilter(action, category)
            try:
                yield block
            finally:
                if record:
                    block.extend(log)
        return
    if action is not None:
        block.simplefilter(action, category)
    try:
        if record:
            with _handling("record", block):
                yield block
        else:
            yield block
    finally:
        block._remove_filters()


@contextmanager
def reworded(reword: Callable[[Warning, type], Warning | None]) -> Iterator[None]:
    """Warnings shown inside the block go through ``reword(message, category)``: the message to
    show instead, or None to show nothing (the warnings raised in this thread only).

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     with reworded(lambda m, c: c(str(m).upper())):
    ...         warnings.warn("quiet", UserWarning)
    >>> str(said[0].message)
    'QUIET'
    """
    with _handling("reword", reword):
        yield


def naming(prefix: str, *, unless: str | None = None):
    """:func:`reworded` that puts ``prefix`` before every :class:`~sciconv.errors.SciconvWarning`
    (one that holds ``unless`` already names what the prefix would).

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     with naming("in/a.fits: ", unless="a.fits"):
    ...         warnings.warn("background: one level", SciconvWarning)
    ...         warnings.warn("a.fits: said already", SciconvWarning)
    >>> [str(w.message) for w in said]
    ['in/a.fits: background: one level', 'a.fits: said already']
    """

    def reword(message, category):
        text = str(message)
        if not issubclass(category, SciconvWarning) or (unless and unless in text):
            return message
        return category(prefix + text)

    return reworded(reword)
