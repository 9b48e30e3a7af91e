# Source me (bash): `source scripts/env.sh` — the one place that sets up the environment:
# the .venv, the colcon workspace in install/ and the ROS / rendering environment variables.
# Requires `bash scripts/setup.sh` to have run. Safe to source more than once.
# shellcheck shell=bash

_dts_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_dts_venv="${DTS_VENV:-$_dts_root/.venv}"

if [[ ! -f "$_dts_venv/bin/activate" || ! -f "$_dts_root/install/setup.bash" ]]; then
    echo "env.sh: error: workspace not set up; run: bash scripts/setup.sh" >&2
    return 1 2>/dev/null || exit 1
fi

# shellcheck disable=SC1091
source "$_dts_venv/bin/activate"
# The pip-wheel ROS packages live in the venv prefix; the workspace overlays it.
case ":${AMENT_PREFIX_PATH:-}:" in
    *":$_dts_venv:"*) ;;
    *) export AMENT_PREFIX_PATH="$_dts_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
case ":${CMAKE_PREFIX_PATH:-}:" in
    *":$_dts_venv:"*) ;;
    *) export CMAKE_PREFIX_PATH="$_dts_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;;
esac
# colcon's setup scripts are not `set -u` clean.
_dts_nounset=0; [[ $- == *u* ]] && _dts_nounset=1 && set +u
# shellcheck disable=SC1091
source "$_dts_root/install/setup.bash"
((_dts_nounset)) && set -u

export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Camera-size frames through Fast DDS shared memory (config/fastdds_large_frames.xml says why).
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_dts_root/config/fastdds_large_frames.xml}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# Pick a domain per shell unless given, so parallel runs on one machine don't cross-talk.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 1 ))}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-$MUJOCO_GL}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export DTS_ROOT="$_dts_root"
unset _dts_root _dts_venv _dts_nounset
