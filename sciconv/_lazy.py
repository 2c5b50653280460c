"""Names a module hands out but imports only when first asked for (PEP 562)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def lazy_names(owner: str, source: str, names: Iterable[str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for module ``owner``: each of ``names`` is imported from module
    ``source`` when first asked for and kept in ``owner`` (later lookups are plain); other names
    raise :class:`AttributeError`; ``dir(owner)`` lists them all.

    Examples
    --------
    >>> import types, sys
    >>> sys.modules["demo_owner"] = types.ModuleType("demo_owner")
    >>> get, _ = lazy_names("demo_owner", "json", ["dumps"])
    >>> get("dumps")([1])
    '[1]'
    >>> "dumps" in vars(sys.modules["demo_owner"])
    True
    """
    names = tuple(names)

    def __getattr__(name: str):
        if name in names:
            value = getattr(importlib.import_module(source), name)
            setattr(sys.modules[owner], name, value)
            return value
        raise AttributeError(f"module {owner!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*vars(sys.modules[owner]), *names})

    return __getattr__, __dir__
