#!/usr/bin/env bash
# One-command set-up of the dts_planner workspace on Debian 12 + Python 3.11 (no ROS install):
#   1. Debian packages (cmake, g++, offscreen GL libraries),
#   2. .venv with torch==2.13.0 first, then the pinned packages of requirements/,
#   3. the CMake path workaround for the ROS 2 Kilted pip wheels,
#   4. colcon build of dts_msgs and dts_planner into install/.
# Re-running is quick: every step is skipped when already done. Only packages are downloaded.
# Environment: DTS_VENV (venv dir, default .venv), PYTHON (interpreter, default python3),
#              DTS_SKIP_APT=1 (do not touch Debian packages).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${DTS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"
APT_PACKAGES=(cmake g++ libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)
START=$SECONDS

step() { printf '\n==> [setup %3ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH (need Python 3.11; set PYTHON=...)"
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$PYVER" == "3.11" ]] || die "$PYTHON is Python $PYVER; the ROS 2 Kilted wheels need 3.11"

# ---------------------------------------------------------------- 1. Debian packages
step "Debian packages"
need=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || need+=("$pkg")
done
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then need+=(python3-venv); fi
PYINC="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
if [[ ! -f "$PYINC/Python.h" ]]; then need+=(python3-dev); fi
if ((${#need[@]} == 0)); then
    echo "all present: ${APT_PACKAGES[*]}"
elif [[ "${DTS_SKIP_APT:-0}" == 1 ]]; then
    die "missing Debian packages (DTS_SKIP_APT=1): ${need[*]}"
else
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "need root or sudo to apt-get install: ${need[*]}"
        SUDO=(sudo)
    fi
    echo "installing: ${need[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
fi
[[ -f "$PYINC/Python.h" ]] || die "Python.h not found in $PYINC (install the Python 3.11 headers)"

# ---------------------------------------------------------------- 2. virtual environment
step "Python packages in $VENV"
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
fi
touch "$VENV/COLCON_IGNORE"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
STAMP="$VENV/.dts_requirements.sha256"
WANT="$(cat requirements/requirements.txt requirements/constraints.txt | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "up to date (requirements unchanged since the last install)"
else
    # torch first: the pinned CPU wheel; an unpinned resolve would pull the CUDA build.
    "${PIP[@]}" install -q "$TORCH_PIN"
    "${PIP[@]}" install -q -r requirements/requirements.txt -c requirements/constraints.txt
    "$VENV/bin/python" -c 'import torch, sys; v = torch.__version__; print("torch", v);
sys.exit(0 if v.startswith("2.13.0") else "torch was replaced: " + v)'
    echo "$WANT" > "$STAMP"
    echo "venv size: $(du -sh "$VENV" | cut -f1)"
fi

# ---------------------------------------------------------------- 3. CMake path workaround
# The Kilted wheels' CMake exports name the build machine's Python and numpy include dirs
# (/opt/python/cp311-cp311/...). Point them at this machine's (venv-local edit, idempotent).
step "CMake path workaround"
NPINC="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
mapfile -t bad < <(grep -rlF --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" || true)
if ((${#bad[@]})); then
    sed -i \
        -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" \
        -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" \
        "${bad[@]}"
    echo "patched ${#bad[@]} CMake files"
else
    echo "nothing to patch"
fi

# ---------------------------------------------------------------- 4. colcon build
step "colcon build (dts_msgs, dts_planner) into install/"
# Skip when none of the build inputs changed since the last successful build.
BUILD_STAMP="install/.dts_build.sha256"
inputs=()
for p in dts_msgs package.xml setup.py setup.cfg resource launch config; do
    [[ -e "$p" ]] && inputs+=("$p")
done
BUILD_WANT="$( { echo "$VENV"; find "${inputs[@]}" -type f -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$BUILD_STAMP" && "$(cat "$BUILD_STAMP")" == "$BUILD_WANT" ]]; then
    echo "up to date (build inputs unchanged; rm $BUILD_STAMP to force)"
else
    rm -f "$BUILD_STAMP"
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    unset COLCON_PREFIX_PATH
    colcon build --base-paths . dts_msgs --symlink-install \
        --build-base build --install-base install \
        --event-handlers console_cohesion- summary+ \
        --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
        || die "colcon build failed (see log/latest_build)"
    echo "$BUILD_WANT" > "$BUILD_STAMP"
fi

step "done in $((SECONDS - START)) s"
echo "next: bash scripts/demo.sh   or   bash scripts/test.sh"
