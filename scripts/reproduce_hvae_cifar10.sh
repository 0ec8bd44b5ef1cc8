#!/usr/bin/env bash
# CIFAR-10 hierarchical VAE (experiment=hvae_cifar10: topdown_vae, 12 latent layers, PixelCNN++
# discretised-logistic-mixture likelihood) on one GPU for a wall-clock budget, then the test
# bits/dim (importance-sampled NLL, k samples). Published: NVAE 2.91, VDVAE 2.87 bits/dim.
#
#   scripts/reproduce_hvae_cifar10.sh                 # 1 GPU-hour of training, k=100
#   BUDGET=00:08:00:00 K=1000 scripts/reproduce_hvae_cifar10.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BUDGET=${BUDGET:-00:01:00:00}   # DD:HH:MM:SS (Lightning max_time)
K=${K:-100}
RUN_DIR=${RUN_DIR:-outputs/hvae_cifar10/repro_$(date +%Y%m%d_%H%M%S)}

"$PYTHON" -m genlab.train experiment=hvae_cifar10 trainer=gpu trainer.max_time="$BUDGET" \
  hydra.run.dir="$RUN_DIR"
"$PYTHON" -m genlab.eval ckpt_path="$RUN_DIR/checkpoints/last.ckpt" k="$K" device=cuda \
  metrics.num_samples=0
echo "results (test/nll_bpd): $RUN_DIR/checkpoints/eval.json"
