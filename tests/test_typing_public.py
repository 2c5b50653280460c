"""sciconv's public annotations as type checkers (mypy, pyright/Pylance) and run-time readers of
hints (``typing.get_type_hints``: pydantic, typer, beartype, sphinx-autodoc-typehints) see them.

No type checker runs here (none is a dependency): these tests read what the checkers read, the
annotations, the ``@overload`` signatures and the ``if TYPE_CHECKING:`` blocks of the lazy
packages.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from pathlib import Path

import numpy as np
import pytest
from _public_api import public_objects

import sciconv

ROOT = Path(sciconv.__file__).parent

# Resolvable only with typing.TYPE_CHECKING set (as sphinx-autodoc-typehints can): their
# annotations name a type imported only for checkers, because importing it at run time would
# slow the module's import (astropy.units +0.14 s for sciconv.metrics, sciconv.preprocess
# +0.15 s for sciconv.viz; measured with python -X importtime). Kept as the one exception.
HINTS_NEED_TYPE_CHECKING = {
    "sciconv.metrics._catalogs.match_catalogs",
    "sciconv.viz._network.feature_maps",
    "sciconv.viz._network.grad_cam",
    "sciconv.viz._network.grad_cam_heatmap",
}


def _callables() -> dict[str, typing.Callable]:
    """Every public function, class and method of the modules in ``sciconv.__all__`` (and their
    public submodules; not the napari plugin, which napari loads, not ``import sciconv``)."""
    return {
        key: obj
        for key, obj in public_objects().items()
        if (inspect.isfunction(obj) or inspect.isclass(obj))
        and key.split(".")[1] in sciconv.__all__
    }


def test_type_hints_resolve_on_every_public_callable():
    failed = {}
    callables = _callables()
    assert len(callables) > 300  # the walk reaches the API (323 callables at the time)
    for key, obj in callables.items():
        try:
            typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
        except Exception as exc:  # NameError: a name only a type checker imports
            failed[key] = f"{type(exc).__name__}: {exc}"
    unexpected = {k: v for k, v in failed.items() if k not in HINTS_NEED_TYPE_CHECKING}
    assert not unexpected, unexpected


def test_no_public_parameter_is_typed_by_its_default():
    """pyright types an unannotated parameter from its default ("auto" -> str, 0 -> int), so a
    documented other value (an array for ``error="auto"``) is an error in every user's editor."""
    bare = []
    for key, obj in _callables().items():
        try:
            params = inspect.signature(obj).parameters.values()
        except ValueError:  # a builtin's (an Exception subclass without __init__)
            continue
        for param in params:
            default = param.default
            if default is inspect.Parameter.empty or default is None:
                continue
            if param.annotation is inspect.Parameter.empty:
                bare.append(f"{key}({param.name}={default!r})")
    assert not bare, bare


@pytest.mark.parametrize(
    ("func", "param", "takes"),
    [
        ("sciconv.postprocess.measure", "mask", (str, np.ndarray, type(None))),
        ("sciconv.postprocess.measure", "error", (str, np.ndarray, type(None))),
        ("sciconv.postprocess.measure", "saturation", (str, float, type(None))),
        ("sciconv.postprocess.to_photutils", "error", (str, np.ndarray, type(None))),
        ("sciconv.postprocess.estimate_error", "gain", (str, float, type(None))),
        ("sciconv.postprocess.effective_gain", "gain", (str, float, type(None))),
        ("sciconv.inference.predict_mosaic", "ignore_flags", (int, str, list, type(None))),
        ("sciconv.inference.predict_instances_blocks", "mask", (str, np.ndarray, type(None))),
        ("sciconv.datasets.from_arrays", "augment", (bool, dict)),
        ("sciconv.datasets.from_arrays", "normalize", (str, dict, type(None))),
        ("sciconv.inference.second_pass_input", "normalize", (str, type(None))),
    ],
)
def test_documented_values_are_in_the_annotation(func, param, takes):
    module, name = func.rsplit(".", 1)
    hint = typing.get_type_hints(getattr(importlib.import_module(module), name))[param]
    args = {typing.get_origin(a) or a for a in typing.get_args(hint)}
    for kind in takes:
        assert kind in args, f"{func}({param}=): {hint} lacks {kind.__name__}"


def _overloads(func) -> list[tuple[dict[str, str], str]]:
    """``[({param: annotation text}, return annotation text), ...]`` of ``func``'s overloads,
    each checked to list the implementation's parameters (names, kinds, in order)."""
    found = typing.get_overloads(func)
    assert found, f"{func.__qualname__} has no @overload"
    impl = [(p.name, p.kind) for p in inspect.signature(func).parameters.values()]
    out = []
    for over in found:
        params = inspect.signature(over).parameters.values()
        assert [(p.name, p.kind) for p in params] == impl, over
        out.append(({p.name: p.annotation for p in params}, over.__annotations__["return"]))
    return out


def test_overloads_type_what_each_call_returns():
    from sciconv.inference import predict_d4, predict_instances, predict_tiled, predict_uncertainty
    from sciconv.models import pretrained

    def picks(func, *params):
        return [(tuple(a[p] for p in params), ret) for a, ret in _overloads(func)]

    nd, nd2 = "np.ndarray", "tuple[np.ndarray, np.ndarray]"
    nd3 = "tuple[np.ndarray, np.ndarray, np.ndarray]"
    anything, out = inspect.Parameter.empty, "str | os.PathLike | np.ndarray | None"
    assert picks(predict_tiled, "image", "uncertainty", "out") == [
        (("da.Array", "None", out), "da.Array"),
        (("da.Array", "str", out), "tuple[da.Array, da.Array]"),
        ((anything, "None", "str | os.PathLike"), "np.memmap"),
        ((anything, "None", "np.ndarray | None"), nd),
        ((anything, "str", out), nd2),
    ]
    assert picks(predict_instances, "return_prob", "uncertainty") == [
        (("Literal[False]", "None"), nd),
        (("Literal[True]", "None"), nd2),
        (("bool", "str"), nd3),
        (("bool", "str | None"), f"{nd} | {nd2} | {nd3}"),
    ]
    assert picks(predict_d4, "return_std") == [
        (("Literal[False]",), nd),
        (("Literal[True]",), nd2),
        (("bool",), f"{nd} | {nd2}"),
    ]
    assert picks(predict_uncertainty, "image") == [
        (("da.Array",), "tuple[da.Array, da.Array]"),
        ((inspect.Parameter.empty,), nd2),
    ]
    assert picks(pretrained, "name") == [
        (("None",), "dict[str, str]"),
        (("str",), "keras.Model"),
        (("str | None",), "dict[str, str] | keras.Model"),
    ]


def test_overload_defaults_match_the_implementation():
    """An overload shows the implementation's defaults (hover, completion), except where it
    narrows the argument that picks the result (``Literal[True]`` has none)."""
    from sciconv.inference import predict_instances, predict_tiled

    for func in (predict_tiled, predict_instances):
        impl = inspect.signature(func).parameters
        assert typing.get_overloads(func), func.__name__
        for over in typing.get_overloads(func):
            for p in inspect.signature(over).parameters.values():
                if p.default is not inspect.Parameter.empty:
                    assert p.default == impl[p.name].default, (func.__name__, p.name)


def _checker_names(init: Path) -> tuple[dict[str, str], bool]:
    """The names the ``if TYPE_CHECKING:`` block of ``init`` imports (``{name: module}``), and
    whether a module ``__getattr__`` is visible to checkers (outside that block's ``else``)."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    visible_getattr = False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            visible_getattr = True
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
                for alias in stmt.names:
                    # "x as x": an explicit re-export, which pyright requires of a py.typed package
                    assert alias.asname == alias.name, ast.unparse(stmt)
                    names[alias.name] = stmt.module
    return names, visible_getattr


def test_checkers_see_every_submodule_of_sciconv():
    names, visible_getattr = _checker_names(ROOT / "__init__.py")
    assert set(names) == set(sciconv.__all__) - {"__version__"}
    assert set(names.values()) == {"sciconv"}
    assert not visible_getattr  # hidden from checkers: ``sc.iox`` is their error, not Any


def test_checkers_see_every_name_of_sciconv_datasets():
    from sciconv import datasets

    names, visible_getattr = _checker_names(ROOT / "datasets" / "__init__.py")
    assert set(names) == (set(datasets.__all__) - {"CACHE_BUDGET"}) | {"patches", "prepare"}
    assert not visible_getattr
    for name, module in names.items():  # each imported from where run time finds it
        found = getattr(importlib.import_module(module), name)
        assert found is getattr(datasets, name), name
