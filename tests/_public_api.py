"""The public API as a user reaches it: every object in a public module's ``__all__``.

Imported as ``_public_api`` by the root ``conftest.py`` (public docstring examples run in a
fresh namespace) and by ``test_docstrings.py`` (their parameters are documented); not a test
module.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import sciconv


def _public_modules() -> list:
    modules = [sciconv]
    for info in pkgutil.walk_packages(sciconv.__path__, "sciconv."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _overrides(cls: type, attr: str) -> bool:
    """Whether ``cls.attr`` overrides a base class's (Keras' ``call``, ``build``, ...): the base
    documents it."""
    return any(hasattr(base, attr) for base in cls.__mro__[1:])


def public_objects() -> dict[str, object]:
    """``{"module.qualname": object}`` for every public function and class, every public method
    of a public class (defined there, not an override), and every public module, under the name
    its docstring's doctest item gets (where it is defined, not where it is exported)."""
    found: dict[str, object] = {}
    for module in _public_modules():
        found[module.__name__] = module
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not str(getattr(obj, "__module__", "")).startswith(
                "sciconv"
            ):
                continue
            if not hasattr(obj, "__qualname__"):
                continue
            key = f"{obj.__module__}.{obj.__qualname__}"
            found[key] = obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") or _overrides(obj, attr):
                        continue
                    if isinstance(value, (classmethod, staticmethod)):
                        value = value.__func__
                    if isinstance(value, property):
                        value = value.fget
                    if inspect.isfunction(value):
                        found[f"{key}.{attr}"] = value
    return found
