"""Sphinx configuration of the sciconv documentation.

Build it with ``bash scripts/docs.sh`` (or ``sphinx-build -W -b html docs docs/_build/html``).
Warnings are errors (``-W``): a broken docstring, cross-reference or notebook fails the build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

# The notebooks run at build time in their fast mode, as the test suite runs them
# (SCICONV_FAST=0 sphinx-build ... renders the full-size runs). Their kernel inherits this.
os.environ.setdefault("SCICONV_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sciconv  # noqa: E402  (quick: submodules load lazily, no TensorFlow here)

project = "sciconv"
author = "sciconv developers"
copyright = "sciconv developers, BSD-3-Clause"
version = release = sciconv.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",  # includes myst_parser: Markdown pages and the notebooks
    "sciconv_docs",  # docs/_ext: notebook copies, the stage diagram, the concept table
]

root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_ext",
    "_generated",  # included by architecture.md, not pages of their own
    "_templates",
    "images",
    "**/.ipynb_checkpoints",
    "Thumbs.db",
    ".DS_Store",
]
# no intersphinx: the build must work offline; no nitpicky: references to numpy, keras, ... types
# in docstrings are plain text, references to sciconv objects are links
nitpicky = False

# --- API reference: autosummary over the live package, numpydoc docstrings -------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's public names are its __all__
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc Parameters section gives the types
autodoc_inherit_docstrings = False  # no Keras / TensorFlow docstrings on overridden methods
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists members once (no duplicates)
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# --- notebooks (myst-nb) ------------------------------------------------------------------------
nb_execution_mode = "force"  # always run: the rendered outputs are today's code, never stale
nb_execution_timeout = 300  # per cell, as nbmake in the test suite
nb_execution_raise_on_error = False  # a failing cell is a warning: with -W it fails the build,
# after the rest of the site has been checked (--keep-going shows every problem at once)
nb_execution_show_tb = True
nb_execution_in_temp = True  # notebooks write into temporary folders, never into docs/
nb_merge_streams = True
# stderr is not rendered: TensorFlow's C++ start-up lines (CUDA probing, "before
# absl::InitializeLog()"), which TF_CPP_MIN_LOG_LEVEL cannot silence, and progress bars; what a
# notebook shows is its stdout, its figures and its tables
nb_output_stderr = "remove"
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# --- HTML -----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sciconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_static_path: list[str] = []
html_show_sourcelink = True
