#!/usr/bin/env bash
# Run the whole test suite (unit tests, bad-input suite, notebooks) in ./.venv, installing it if needed.
source "$(dirname "$0")/_env.sh"
export SCICONV_FAST=1
# two worker processes (one per core of a 2-core CI machine; SCICONV_TEST_WORKERS=0: in this
# process), each test file on one worker so its module fixtures are made once
exec python -m pytest -n "${SCICONV_TEST_WORKERS:-2}" --dist loadfile "$@"
