#!/usr/bin/env bash
# Reproduce Burda et al.'s two-stochastic-layer IWAE (experiment=vae_mnist_iwae2: 100+50
# latents, k=5) on binarised MNIST: train, then estimate the test NLL with k importance samples
# over both latent layers (Burda et al. 2015 estimator) on all 10,000 fixed-binarised test
# images. Writes <run dir>/checkpoints/eval.json. Published: 82.90 (k=50) / 83.77 (k=5) nats.
#
#   scripts/reproduce_vae_mnist_iwae2.sh                    # 200 epochs, k=5000
#   EPOCHS=20 K=1000 THREADS=2 scripts/reproduce_vae_mnist_iwae2.sh
#
# Cost on 2 shared CPU cores (1 training thread, measured under load 4): ~75 s per epoch,
# so 200 epochs take ~4 h; the k=5000 evaluation of the 10,000 test images ~50 min.
#
# Needs the raw MNIST IDX files in $GENLAB_MNIST_DIR/MNIST/raw (default: ../shared/data).
set -euo pipefail
# Same protocol as the anchor: train, then the k-sample NLL on the fixed-binarised test set.
EXPERIMENT=vae_mnist_iwae2 exec "$(dirname "$0")/reproduce_vae_mnist_nll.sh" "$@"
