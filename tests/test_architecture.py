"""The layout's rules, measured on the source: module sizes, private names, import direction.

Rules (``design.md``): no package module over 800 lines; a concept two modules need has a public
home, so no module imports another module's ``_private`` names; imports between the stages run
one way (no cycles). A *unit* is a top-level module or package of sciconv (``sciconv.io`` with
its private modules is one unit) for the import direction; private names are never shared
between modules, not even inside a unit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sciconv"
MAX_LINES = 800
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _unit(module: str) -> str:
    """``sciconv.io._fits`` -> ``sciconv.io``; ``sciconv`` stays ``sciconv``."""
    return ".".join(module.split(".")[:2])


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(module: str, node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path):
    """Yield ``(imported module, imported name or None, line)`` and private attribute uses.

    Attribute uses ``alias._name`` are reported as ``(module, "_name", line)`` when ``alias`` is
    bound to a sciconv module by an import in the same file.
    """
    module = _module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sciconv"):
                    if a.asname:
                        aliases[a.asname] = a.name
                    yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node, path)
            if not source.startswith("sciconv"):
                continue
            for a in node.names:
                submodule = f"{source}.{a.name}"
                if (PACKAGE.parent / (submodule.replace(".", "/") + ".py")).exists() or (
                    PACKAGE.parent / submodule.replace(".", "/")
                ).is_dir():
                    aliases[a.asname or a.name] = submodule
                    yield submodule, None, node.lineno
                else:
                    yield source, a.name, node.lineno
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
        ):
            yield aliases[node.value.id], node.attr, node.lineno


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        unit = _unit(_module_name(path))
        for target, _, _ in _imports(path):
            other = _unit(target)
            if other not in (unit, "sciconv"):  # the root only holds __version__ and lazy access
                graph.setdefault(unit, set()).add(other)
    return graph


def test_the_rules_see_the_package():
    assert len(SOURCES) > 20
    assert {"sciconv.io", "sciconv.models", "sciconv.inference"} <= {
        _unit(_module_name(p)) for p in SOURCES
    }


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_size(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines (> {MAX_LINES}): split by role"


def test_no_private_names_across_modules():
    """Not even inside a package: what a sibling module needs is a public name of its (private)
    module, e.g. ``sciconv.io._common.brief``, never ``_brief``."""
    offences = []
    for path in SOURCES:
        module = _module_name(path)
        for target, name, line in _imports(path):
            if name is not None and _is_private(name) and target != module:
                offences.append(f"{path.relative_to(ROOT)}:{line}: {target}.{name}")
    assert not offences, "private names used across modules:\n" + "\n".join(offences)


def test_no_import_cycles_between_units():
    graph = _import_graph()
    cycles = []

    def visit(node, stack, on_stack, done):
        on_stack.add(node)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in done:
                visit(nxt, stack, on_stack, done)
        stack.pop()
        on_stack.discard(node)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [], set(), done)
    assert not cycles, "import cycles between modules:\n" + "\n".join(cycles)


def test_checks_catch_what_they_look_for(tmp_path):
    """The scanner sees private imports (absolute, relative, attribute) and package units."""
    pkg = tmp_path / "sciconv"
    (pkg / "io").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "io" / "__init__.py").write_text("from ._fits import _decode\n")
    (pkg / "io" / "_fits.py").write_text("def _decode(): pass\n")
    (pkg / "cli.py").write_text(
        "from sciconv.io._fits import _decode\nfrom sciconv import io\nio._stem\n"
    )
    global ROOT, PACKAGE
    saved = ROOT, PACKAGE
    ROOT, PACKAGE = tmp_path, pkg
    try:
        found = {(t, n) for t, n, _ in _imports(pkg / "cli.py") if n}
        assert found == {("sciconv.io._fits", "_decode"), ("sciconv.io", "_stem")}
        inside = [n for _, n, _ in _imports(pkg / "io" / "__init__.py") if n]
        assert inside == ["_decode"] and _unit("sciconv.io._fits") == "sciconv.io"
    finally:
        ROOT, PACKAGE = saved
