#!/usr/bin/env bash
# Run the linters (flake8 + pep257 docstrings) and the pytest suite against the built workspace.
# Extra arguments go to pytest, e.g.: bash scripts/test.sh test/test_msgs_roundtrip.py -x
# pytest runs on one worker per core (pytest-xdist; DTS_TEST_WORKERS=N to choose, 0 for none):
# each worker claims its own ROS domain id (test/conftest.py). worksteal: a worker that runs
# out takes tests from the other's queue; conftest.py puts the long-running tests first.
# Needs `bash scripts/setup.sh` first. "No tests collected" counts as a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/env.sh
START=$SECONDS

LINT_PATHS=()
for p in dts_planner launch test scripts setup.py; do [[ -e "$p" ]] && LINT_PATHS+=("$p"); done
# flake8 runs beside pytest at the lowest CPU priority (nice 19), so it runs mostly on the
# idle share of the cores (while tests wait on nodes and subprocesses) instead of taking CPU
# from the tests; its report prints after pytest's. test/test_lint.py repeats it for plain
# `pytest` / `colcon test` runs.
LINT_LOG="$(mktemp)"
trap 'rm -f "$LINT_LOG"' EXIT
nice -n 19 python -m flake8 "${LINT_PATHS[@]}" >"$LINT_LOG" 2>&1 &
LINT_PID=$!

echo "==> pytest $*"
test_rc=0
python -m pytest -p no:cacheprovider -n "${DTS_TEST_WORKERS:-auto}" --dist worksteal \
    --deselect test/test_lint.py::test_flake8 "$@" || test_rc=$?
[[ $test_rc == 5 ]] && echo "test.sh: error: pytest collected no tests" >&2

echo "==> flake8 ${LINT_PATHS[*]}"
lint_rc=0
wait "$LINT_PID" || lint_rc=$?
cat "$LINT_LOG"
[[ $lint_rc == 0 ]] && echo "flake8: clean"

echo "==> test.sh: flake8 rc=$lint_rc, pytest rc=$test_rc, $((SECONDS - START)) s"
if [[ $lint_rc != 0 || $test_rc != 0 ]]; then exit 1; fi
