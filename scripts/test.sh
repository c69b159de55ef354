#!/usr/bin/env bash
# Set up the virtualenv with test requirements and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements-dev.txt
exec .venv/bin/pytest "$@"
