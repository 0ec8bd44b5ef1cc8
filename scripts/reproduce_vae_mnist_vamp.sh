#!/usr/bin/env bash
# Reproduce the VampPrior VAE (experiment=vae_mnist_vamp: 784-400-40 MLP, K=500 pseudo-inputs)
# on binarised MNIST: train, then estimate the test NLL with k importance samples (Burda et al.
# 2015 estimator, over the model's exact prior / all latent layers) on all 10,000 fixed-binarised
# test images. Writes <run dir>/checkpoints/eval.json. Published: pythae 85.79 nats.
#
#   scripts/reproduce_vae_mnist_vamp.sh                    # 200 epochs, k=5000
#   EPOCHS=20 K=1000 THREADS=2 scripts/reproduce_vae_mnist_vamp.sh
#
# Cost on 2 shared CPU cores (1 training thread, measured under load 4): ~60 s per epoch,
# so 200 epochs take ~3.5 h; the k=5000 evaluation of the 10,000 test images ~100 min.
#
# Needs the raw MNIST IDX files in $GENLAB_MNIST_DIR/MNIST/raw (default: ../shared/data).
set -euo pipefail
# Same protocol as the anchor: train, then the k-sample NLL on the fixed-binarised test set.
EXPERIMENT=vae_mnist_vamp exec "$(dirname "$0")/reproduce_vae_mnist_nll.sh" "$@"
