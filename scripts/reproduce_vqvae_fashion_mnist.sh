#!/usr/bin/env bash
# VQ-VAE on Fashion-MNIST, both stages: train the first stage (model=vqvae), train the gated
# PixelCNN prior over its 7x7 code grid (model=vqvae_prior), then evaluate (reconstruction MSE /
# PSNR, codebook perplexity, prior nats per code grid, sample quality of the prior's samples)
# and write a grid of reconstructions and one of new samples.
#
#   scripts/reproduce_vqvae_fashion_mnist.sh                  # 20 + 20 epochs
#   EPOCHS=5 PRIOR_EPOCHS=5 scripts/reproduce_vqvae_fashion_mnist.sh
#
# Downloads Fashion-MNIST into paths.data_dir on first use (data=fashion_mnist data.download=true);
# DATA=fashion_mnist_mini uses the bundled subset instead (no network).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DATA=${DATA:-fashion_mnist}
EPOCHS=${EPOCHS:-20}
PRIOR_EPOCHS=${PRIOR_EPOCHS:-20}
THREADS=${THREADS:-1}
ROOT=${ROOT:-outputs/vqvae_$DATA/repro_$(date +%Y%m%d_%H%M%S)}
DOWNLOAD=()
[ "$DATA" = fashion_mnist ] && DOWNLOAD=(data.download=true)
QUIET=('~callbacks.rich_progress_bar' +trainer.enable_progress_bar=false)

"$PYTHON" -m genlab.train model=vqvae data="$DATA" "${DOWNLOAD[@]}" trainer.max_epochs="$EPOCHS" \
  num_threads="$THREADS" hydra.run.dir="$ROOT/first_stage" "${QUIET[@]}"
"$PYTHON" -m genlab.train model=vqvae_prior data="$DATA" "${DOWNLOAD[@]}" \
  model.vqvae_ckpt="$ROOT/first_stage/checkpoints/last.ckpt" trainer.max_epochs="$PRIOR_EPOCHS" \
  num_threads="$THREADS" hydra.run.dir="$ROOT/prior" "${QUIET[@]}"
PRIOR_CKPT="$ROOT/prior/checkpoints/last.ckpt"
"$PYTHON" -m genlab.eval ckpt_path="$PRIOR_CKPT" num_threads="$THREADS"
"$PYTHON" -m genlab.sample ckpt_path="$PRIOR_CKPT" num_samples=64 output="$ROOT/samples.png"
"$PYTHON" -m genlab.sample ckpt_path="$PRIOR_CKPT" mode=reconstruct output="$ROOT/recon.png"
echo "results: $ROOT/prior/checkpoints/eval.json, $ROOT/samples.png, $ROOT/recon.png"
