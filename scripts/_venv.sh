# Shared by demo.sh and test.sh: make .venv and install the pinned requirements into it.
# Re-installs only when a requirements file changed (a hash is kept in .venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEDSILO_VENV:-$ROOT/.venv}"
ensure_venv() {
  local reqs="$1"  # requirements.txt or requirements-dev.txt
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.medsilo-$(basename "$reqs").sha256"
  local want
  want="$(cat "$ROOT/requirements.txt" "$ROOT/$reqs" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo ">> installing pinned $reqs into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$reqs"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
    echo "$want" > "$stamp"
  fi
}
