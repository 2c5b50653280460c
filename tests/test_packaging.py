"""Packaging: environment.yml agrees with pyproject.toml; the set-up scripts are what CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from generate_environment import CONDA_NAMES, split_requirement  # noqa: E402


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    out = {}
    for req in reqs:
        name, spec = split_requirement(req)
        conda = CONDA_NAMES.get(name, name)
        if conda is not None:
            out[conda] = spec
    return out


def _environment_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    out, pip = {}, None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip = dep["pip"]
            continue
        name, spec = split_requirement(dep)
        if name not in ("python", "pip"):
            out[name] = spec
    return out, pip


def test_environment_yml_matches_pyproject():
    conda, pip = _environment_requirements()
    assert conda == _pyproject_requirements()
    assert pip == ["-e ."]


def test_generator_check_mode_agrees():
    rc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_environment.py"), "--check"]
    )
    assert rc.returncode == 0, "environment.yml is stale: run python tools/generate_environment.py"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme.split("\n## ")[0]
    assert "bash scripts/demo.sh" in readme.split("\n## ")[0]
    assert ci.strip().splitlines()[-1] == "bash scripts/test.sh"


_HEAVY = ("tensorflow", "keras")


def _heavy_after_import(module: str) -> list[str]:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {_HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


@pytest.mark.parametrize(
    "module",
    [
        "sciconv",
        "sciconv.errors",
        "sciconv.io",
        "sciconv.preprocess",
        "sciconv.postprocess",
        "sciconv.datasets.prepare",
        "sciconv.datasets.patches",
    ],
)
def test_numpy_stages_import_no_tensorflow(module):
    """Reading files, normalizing, post-processing and patch sampling work without TensorFlow."""
    assert _heavy_after_import(module) == []


def test_the_tensorflow_check_can_fail():
    assert "keras" in _heavy_after_import("sciconv.models")
