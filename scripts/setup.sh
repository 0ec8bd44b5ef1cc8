#!/usr/bin/env bash
# Create .venv beside the repo and install genlab with its test and documentation tools.
# Safe to re-run.
# GENLAB_TORCH overrides the torch/torchvision pins (e.g. a CPU-only or aarch64 build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q ${GENLAB_TORCH:-torch==2.14.1 torchvision==0.29.1}
.venv/bin/python -m pip install -q -e ".[dev,docs]"
echo "genlab installed in $(pwd)/.venv (activate with: . .venv/bin/activate)"
