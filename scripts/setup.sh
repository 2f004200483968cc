#!/usr/bin/env bash
# Install everything the harness needs, skipping what is already there:
# the Debian packages of the firmware and data stages, a virtual environment
# in .venv, the CPU build of PyTorch, then this package with its pinned
# dependencies. Safe to run again; it does nothing when all is in place.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dataset-fashion-mnist)
# The C++ library of the TFLite Micro runtime is about 1.6 GB installed, so
# it is installed only when TFLM_ROOT is set, that is, for that runtime.
if [[ -n ${TFLM_ROOT:-} ]]; then
    APT_PACKAGES+=(libstdc++-arm-none-eabi-newlib)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "setup: missing Debian packages; run as root:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

if [[ ! -x $VENV/bin/python ]]; then
    echo "setup: creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# The stamp records the pyproject.toml the environment was built from, so an
# edited dependency list triggers a reinstall and an unchanged one skips pip.
stamp=$VENV/.harness-installed
if [[ ! -f $stamp ]] || ! cmp -s pyproject.toml "$stamp"; then
    echo "setup: installing Python packages into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    # torch first, pinned, so no later requirement can pull a CUDA build.
    "$VENV/bin/pip" install -q "torch==2.13.0"
    "$VENV/bin/pip" install -q -e ".[dev]"
    torch_version=$("$VENV/bin/python" -c "import torch; print(torch.__version__)")
    if [[ $torch_version != 2.13.0+cpu ]]; then
        echo "setup: expected torch 2.13.0+cpu, found $torch_version" >&2
        exit 1
    fi
    cp pyproject.toml "$stamp"
fi
