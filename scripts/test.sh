#!/usr/bin/env bash
# Run the whole test suite (unit tests, bad-input suite, notebooks) in ./.venv, installing it if needed.
source "$(dirname "$0")/_env.sh"
export SCICONV_FAST=1
exec python -m pytest "$@"
