#!/usr/bin/env bash
# The main job: `dts-demo`, the planner, action predictor and Meta-World bridge nodes in one
# process, running closed-loop Meta-World episodes with the embedded default video model.
# Prints per-episode success, plan latency and sampler stats; writes runs/demo/plan.gif.
# Options go to dts-demo (e.g. --episodes 5 --task door-close --sampler ddim; see --help).
# Needs `bash scripts/setup.sh` first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/env.sh
exec "$ROOT/install/dts_planner/lib/dts_planner/dts-demo" "$@"
