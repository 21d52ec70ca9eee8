#!/usr/bin/env bash
# The test suite: lint, type-check, then every test (slow end-to-end ones included).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
ensure_venv requirements-dev.txt
cd "$ROOT"
# A real Ethereum JSON-RPC node for the anchoring tests (tests/anchor/test_rpc_node.py).
GANACHE_VERSION=7.9.2
if command -v npm >/dev/null && ! [ -x .tools/ganache/node_modules/.bin/ganache ]; then
  npm install --silent --no-audit --no-fund --prefix .tools/ganache "ganache@$GANACHE_VERSION" \
    || echo "warning: could not install ganache; the anchoring node test will fail" >&2
fi
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1
"$VENV/bin/ruff" check src tests
"$VENV/bin/ruff" format --check src tests
"$VENV/bin/mypy"
# Two workers (the CI machine's two cores); tests that start a federation's processes share one
# worker, one after another (tests/markers.py). Pass -n 0 to run everything in this process.
exec "$VENV/bin/python" -m pytest -n 2 --dist loadgroup "$@"
