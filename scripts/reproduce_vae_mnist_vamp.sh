#!/usr/bin/env bash
# Reproduce the VampPrior VAE (experiment=vae_mnist_vamp: 784-400-40 MLP, K=500 pseudo-inputs)
# on binarised MNIST: train, then estimate the test NLL with k importance samples (Burda et al.
# 2015 estimator, over the model's exact prior / all latent layers) on all 10,000 fixed-binarised
# test images. Writes <run dir>/checkpoints/eval.json. Published: pythae 85.79 nats.
#
#   scripts/reproduce_vae_mnist_vamp.sh                    # 200 epochs, k=5000
#   EPOCHS=20 K=1000 THREADS=2 scripts/reproduce_vae_mnist_vamp.sh
#
#   EPOCHS=60 scripts/reproduce_vae_mnist_vamp.sh model.nll_every_n_epochs=10  # the README's run
#
# Cost on 2 shared CPU cores (1 training thread, 2-4 other jobs running): 25-45 s per epoch
# (60 epochs: ~35 min); the k=5000 evaluation of the 10,000 test images ~1 h with 1 thread.
#
# Needs the raw MNIST IDX files in $GENLAB_MNIST_DIR/MNIST/raw (default: ../shared/data).
set -euo pipefail
# Same protocol as the anchor: train, then the k-sample NLL on the fixed-binarised test set.
EXPERIMENT=vae_mnist_vamp exec "$(dirname "$0")/reproduce_vae_mnist_nll.sh" "$@"
