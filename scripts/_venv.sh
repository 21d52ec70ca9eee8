# Shared by demo.sh and test.sh: make .venv and install the pinned requirements into it.
# Re-installs only when a requirements file changed (a hash is kept in .venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEDSILO_VENV:-$ROOT/.venv}"
# pip on this kind of machine warns once per package about an absent local index; hide only that.
quiet_pip() {
  "$VENV/bin/python" -m pip --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}
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
    quiet_pip install -r "$ROOT/$reqs"
    quiet_pip install --no-deps -e "$ROOT"
    echo "$want" > "$stamp"
  fi
}
