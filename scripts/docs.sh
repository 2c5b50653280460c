#!/usr/bin/env bash
# Build the documentation site into docs/_build/html in ./.venv, installing it if needed.
# Warnings are errors (-W): a broken docstring, reference or notebook fails the build; -E reads
# every page again, so the API pages follow the current docstrings (Sphinx does not notice edits
# in Python files) and every warning is reported on every run. The four notebooks are executed in
# their fast mode (SCICONV_FAST=1). Arguments go to sphinx-build, e.g.
# `bash scripts/docs.sh -D nb_execution_mode=off` skips running the notebooks while editing prose.
source "$(dirname "$0")/_env.sh"
export SCICONV_FAST="${SCICONV_FAST:-1}"
python -m sphinx -W --keep-going -E -b html "$@" docs docs/_build/html
echo "sciconv: documentation in $ROOT/docs/_build/html/index.html" >&2
