"""The documentation site (docs/) builds with warnings as errors, with the API reference generated
from the docstrings and a page for each of the four notebooks.

The suite runs each notebook once, under nbmake; the site built here does not run them again
(``nb_execution_mode=off``: a second run cost about three minutes of the suite's twenty). The
site that ``bash scripts/docs.sh`` builds executes them (``conf.py`` says ``force``, checked
below), so its pages carry today's outputs."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sciconv

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
MODULES = [name for name in sciconv.__all__ if not name.startswith("_")]  # the public modules


def test_docs_requirements_are_in_the_dev_extra():
    """The test suite installs `.[dev]`, so the docs tools must be in it too."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    missing = set(extras["docs"]) - set(extras["dev"])
    assert not missing, f"add {sorted(missing)} to the dev extra in pyproject.toml"


def test_every_notebook_is_in_the_docs():
    toctree = (DOCS / "notebooks.md").read_text()
    assert len(NOTEBOOKS) == 4
    for stem in NOTEBOOKS:
        assert f"notebooks/{stem}\n" in toctree


def _text(page: Path) -> str:
    """The text of an HTML page, without its tags (code blocks are split by highlighting)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """Build the site as `bash scripts/docs.sh` does, into a temporary folder (once per
    session: a worker of the parallel suite may leave this module between its tests)."""
    out = tmp_path_factory.mktemp("docs") / "html"
    env = dict(os.environ, SCICONV_FAST="1", MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q"]
    cmd += ["-D", "nb_execution_mode=off"]  # nbmake runs the notebooks in this suite
    proc = subprocess.run(
        [*cmd, str(DOCS), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
    )
    return proc, out


@pytest.mark.slow
def test_docs_build_without_warnings(site):
    proc, _ = site
    # Sphinx's own messages, not the kernels' and TensorFlow's start-up lines on stderr
    sphinx_message = re.compile(r"(^|: )(WARNING|ERROR|CRITICAL): ")
    problems = [line for line in proc.stderr.splitlines() if sphinx_message.search(line)]
    problems = [line for line in problems if "absl::InitializeLog" not in line]
    assert proc.returncode == 0, "sphinx-build -W failed:\n" + "\n".join(problems or [proc.stderr])


@pytest.mark.slow
def test_docs_pages(site):
    _, out = site
    for page in ("index", "getting_started", "architecture", "notebooks", "api", "benchmarks"):
        assert (out / f"{page}.html").is_file(), page
    # getting started carries the README's two commands; benchmarks the benchmark tables
    getting_started = _text(out / "getting_started.html")
    assert "bash scripts/demo.sh" in getting_started and "bash scripts/test.sh" in getting_started
    assert "bench_pipeline.py" in _text(out / "benchmarks.html")
    # the architecture diagram, drawn from the package at build time
    assert "architecture.svg" in (out / "architecture.html").read_text()
    svg = (out / "_images" / "architecture.svg").read_text()
    assert "postprocess" in svg and "inference" in svg


@pytest.mark.slow
def test_docs_api_pages(site):
    _, out = site
    for module in MODULES:
        assert (out / "api" / f"sciconv.{module}.html").is_file(), module
    page = (out / "api" / "sciconv.io.read.html").read_text()
    assert 'id="sciconv.io.read"' in page
    assert "Parameters" in page  # numpydoc rendered the docstring's sections


def test_docs_site_executes_the_notebooks():
    """scripts/docs.sh renders the notebooks with the outputs of a fresh run, never stale ones."""
    conf = (DOCS / "conf.py").read_text()
    assert re.search(r'^nb_execution_mode = "force"', conf, re.M)
    assert "-D" not in (ROOT / "scripts" / "docs.sh").read_text().split("python -m sphinx")[1]


@pytest.mark.slow
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_docs_notebook_pages(site, stem):
    _, out = site
    page = _text(out / "notebooks" / f"{stem}.html")
    notebook = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    first_code = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    line = next(s.strip() for s in first_code["source"] if s.strip())
    assert line in page, "the notebook's code is not on its page"
