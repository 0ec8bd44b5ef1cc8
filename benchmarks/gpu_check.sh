#!/usr/bin/env bash
# GPU smoke benchmark of every GAN architecture, in 16-mixed and bf16-mixed: a few hundred
# generator steps each on the bundled Fashion-MNIST mini padded to 32 px RGB (no network, no
# CIFAR-10), images/s, a NaN/Inf check and a 10k-sample FID. Under 8 minutes on one GPU.
#   benchmarks/gpu_check.sh                 # on a CUDA machine
#   benchmarks/gpu_check.sh --cpu-dry-run   # tiny nets on the CPU: checks the script only
# Extra arguments go to benchmarks/gpu_check.py (--steps, --archs, --precisions, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
if [[ " $* " != *" --cpu-dry-run "* ]]; then
  if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: error: no CUDA device visible to torch; run on a GPU machine," \
         "or pass --cpu-dry-run to check the script on the CPU" >&2
    exit 2
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec timeout 470 "$PYTHON" benchmarks/gpu_check.py "$@"
