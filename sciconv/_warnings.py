"""Warnings said inside a block, reworded as they are shown (the file they are about named, a
scratch file's name replaced by its target's), or collected instead of shown.

The wording changes where a warning is shown, after Python's filters have judged it where it
was raised (its module, its registry: ``"once"`` and ``"default"`` keep their meaning, and a
warning the caller ignores stays ignored), so nothing is raised twice. ``pytest.warns`` and
``warnings.catch_warnings(record=True)`` around the block record the reworded warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sciconv.errors import SciconvWarning

__all__ = ["naming", "reworded"]


@contextmanager
def reworded(reword: Callable[[Warning, type], Warning | None]) -> Iterator[None]:
    """Warnings shown inside the block go through ``reword(message, category)``: the message to
    show instead, or None to show nothing.

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     with reworded(lambda m, c: c(str(m).upper())):
    ...         warnings.warn("quiet", UserWarning)
    >>> str(said[0].message)
    'QUIET'
    """
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        message = reword(message, category)
        if message is not None:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


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
