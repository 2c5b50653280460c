"""Write environment.yml from pyproject.toml, the single source of truth for dependencies.

Run ``python tools/generate_environment.py`` after editing the dependency lists in pyproject.toml;
``tests/test_packaging.py`` fails when the two disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name where they differ; None = pip-only (from `pip install -e .`).
CONDA_NAMES = {
    "dask[array]": "dask-core",
    "pyyaml": "pyyaml",
    "pyqt5": "pyqt",
    "tensorflow[and-cuda]": None,
}

HEADER = """\
# GENERATED from pyproject.toml by tools/generate_environment.py -- do not edit by hand.
# conda env create -f environment.yml && conda activate sciconv
"""


def split_requirement(req: str) -> tuple[str, str]:
    """Return (name with extras, version spec) of a PEP 508 requirement string; an environment
    marker (``; python_version >= '3.11'``) is dropped: conda solves the Python version."""
    req = req.split(";", 1)[0]
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*(.*)$", req)
    if m is None:
        raise ValueError(f"cannot parse requirement {req!r}")
    return m.group(1).lower(), m.group(2).replace(" ", "")


def conda_requirements(pyproject: dict) -> list[str]:
    """Conda-forge requirement lines for the core and dev dependencies."""
    reqs = list(pyproject["project"]["dependencies"])
    reqs += pyproject["project"]["optional-dependencies"]["dev"]
    out = []
    for req in reqs:
        name, spec = split_requirement(req)
        conda = CONDA_NAMES.get(name, name)
        if conda is None or f"{conda}{spec}" in out:  # zarr is core and dev: once
            continue
        out.append(f"{conda}{spec}")
    return out


def render(pyproject: dict) -> str:
    python = pyproject["project"]["requires-python"]
    lines = [HEADER, "name: sciconv", "channels:", "  - conda-forge", "dependencies:"]
    lines.append(f"  - python{python},<3.13")
    lines.append("  - pip")
    lines += [f"  - {r}" for r in conda_requirements(pyproject)]
    lines += ["  - pip:", "      - -e ."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    text = render(pyproject)
    target = ROOT / "environment.yml"
    if "--check" in argv:
        return 0 if target.read_text() == text else 1
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
