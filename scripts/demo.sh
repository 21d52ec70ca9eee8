#!/usr/bin/env bash
# The main job: a demo federation of the four UCI heart-disease hospitals.
# Prints a results table and writes a report to runs/demo*/report/report.html.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
ensure_venv requirements.txt
cd "$ROOT"
exec "$VENV/bin/medsilo" demo "$@"
