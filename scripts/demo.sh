#!/usr/bin/env bash
# The main job. Until `dts-demo` exists this runs a real two-node round trip over DDS with the
# built dts_msgs (Instruction -> VideoPlan + ActionChunk). Needs `bash scripts/setup.sh` first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/env.sh
exec python scripts/roundtrip_demo.py "$@"
