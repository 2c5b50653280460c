#!/usr/bin/env bash
# Run the main job, `sciconv demo`, on the bundled data, installing ./.venv if needed.
source "$(dirname "$0")/_env.sh"
exec sciconv demo "$@"
