#!/usr/bin/env bash
# Regenerate requirements/constraints.txt from the current .venv (after adding a package to
# requirements/requirements.txt and installing it). torch keeps its public pin (no +cpu tag).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DTS_VENV:-$ROOT/.venv}"
OUT="$ROOT/requirements/constraints.txt"
[[ -x "$VENV/bin/python" ]] || { echo "freeze.sh: error: no venv at $VENV" >&2; exit 1; }
{
    echo "# Exact versions of every package in .venv (pip freeze), used with -c by scripts/setup.sh."
    echo "# Regenerate: bash scripts/freeze.sh"
    "$VENV/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check \
        | grep -v -e '^-e ' -e ' @ ' -e '^dts[-_]planner' \
        | sed -E 's/^(torch==[0-9.]+)\+[a-z0-9.]+$/\1/'
} > "$OUT.tmp"
grep -q '^torch==2\.13\.0$' "$OUT.tmp" || { echo "freeze.sh: error: torch is not 2.13.0" >&2; exit 1; }
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT ($(grep -vc '^#' "$OUT") pins)"
