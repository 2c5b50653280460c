"""Docstring examples of the public API run as a user pastes them: in a fresh namespace.

pytest's doctests run in their module's namespace, where an example may call a function it
never imported; a user pasting it into a notebook gets a ``NameError``. The examples of every
object in a public module's ``__all__`` (``tests/_public_api.py``) get an empty namespace
instead, so each one imports what it uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))


def pytest_collection_modifyitems(items):
    from _pytest.doctest import DoctestItem

    doctests = [item for item in items if isinstance(item, DoctestItem)]
    if not doctests:
        return
    from _public_api import public_objects

    public = public_objects()
    for item in doctests:
        if item.dtest is not None and item.dtest.name in public:
            item.dtest.globs = {"__name__": "__main__"}
