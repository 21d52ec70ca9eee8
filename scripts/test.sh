#!/usr/bin/env bash
# The test suite: lint, type-check, then every test (slow end-to-end ones included).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
ensure_venv requirements-dev.txt
cd "$ROOT"
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1
"$VENV/bin/ruff" check src tests
"$VENV/bin/ruff" format --check src tests
"$VENV/bin/mypy"
exec "$VENV/bin/python" -m pytest "$@"
