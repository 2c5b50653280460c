"""The public API's docstrings: every parameter is documented (numpydoc ``Parameters``).

Their examples run as doctests in a fresh namespace (the root ``conftest.py``), so each one
imports what it uses, as a user pasting it into a notebook must.
"""

from __future__ import annotations

import inspect
import re

import pytest
from _public_api import public_objects

#: ``name : type`` or ``name1, name2 : type`` at the start of a line of a parameter section.
_ENTRY = re.compile(r"^\s*\**([A-Za-z_][\w]*(?:\s*,\s*\**[A-Za-z_]\w*)*)\s*(?::|$)")
_SECTIONS = ("Parameters", "Attributes", "Other Parameters", "Keyword Arguments")


def _documented(doc: str) -> set[str]:
    """The names listed in the docstring's parameter-like sections."""
    names: set[str] = set()
    lines = inspect.cleandoc(doc).splitlines()
    inside = False
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if underline:
            inside = line.strip() in _SECTIONS
            continue
        if inside and line and not line.startswith(" ") and set(line.strip()) != {"-"}:
            match = _ENTRY.match(line)
            if match:
                names.update(n.strip().lstrip("*") for n in match.group(1).split(","))
    return names


def _parameters(obj) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in signature.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _undocumented() -> dict[str, list[str]]:
    missing = {}
    for name, obj in public_objects().items():
        if inspect.ismodule(obj) or not callable(obj):
            continue
        doc = obj.__doc__ or ""
        if inspect.isclass(obj) and "__init__" not in vars(obj):
            continue  # inherited: its parameters are the base's (documented there)
        if inspect.isclass(obj):
            doc += "\n" + (obj.__init__.__doc__ or "" if "__init__" in vars(obj) else "")
        params = _parameters(obj)
        if not params:
            continue
        left = [p for p in params if p not in _documented(doc)]
        if left:
            missing[name] = left
    return missing


def test_documented_recognises_numpydoc_entries():
    doc = """Summary.

    Parameters
    ----------
    a, b : int
        Two.
    c
        No type.
    **kwargs
        Passed on.

    Returns
    -------
    d : int
    """
    assert _documented(doc) == {"a", "b", "c", "kwargs"}


def test_every_public_parameter_is_documented():
    missing = _undocumented()
    listing = "\n".join(f"{name}: {', '.join(params)}" for name, params in sorted(missing.items()))
    assert not missing, f"{len(missing)} public callables leave parameters undocumented:\n{listing}"


@pytest.mark.parametrize("name", ["sciconv.io.read", "sciconv.inference.predict_instances"])
def test_public_api_listing_reaches_the_main_functions(name):
    module, _, attr = name.rpartition(".")
    import importlib

    obj = getattr(importlib.import_module(module), attr)
    assert f"{obj.__module__}.{obj.__qualname__}" in public_objects()
