#!/usr/bin/env bash
# Reproduce the VampPrior VAE (experiment=vae_mnist_vamp: 784-400-40 MLP, K=500 pseudo-inputs)
# on binarised MNIST: train, then estimate the test NLL with k importance samples (Burda et al.
# 2015 estimator, over the model's exact prior / all latent layers) on all 10,000 fixed-binarised
# test images. Writes <run dir>/checkpoints/eval.json. Published: pythae 85.79 nats.
#
#   scripts/reproduce_vae_mnist_vamp.sh                    # 200 epochs, k=5000
#   EPOCHS=20 K=1000 THREADS=2 scripts/reproduce_vae_mnist_vamp.sh
#
#   EPOCHS=300 scripts/reproduce_vae_mnist_vamp.sh model.nll_every_n_epochs=25  # the README's run: 85.03 nats
#
# Cost on 2 CPU cores (1 training thread): 11-22 s per epoch (300 epochs: 92 min with the other
# core partly busy); the k=1000 evaluation of the 10,000 test images a few minutes with 2
# threads, k=5000 about 5x that (19 min with the cores shared).
#
# Needs the raw MNIST IDX files in $GENLAB_MNIST_DIR/MNIST/raw (default: ../shared/data).
set -euo pipefail
# Same protocol as the anchor: train, then the k-sample NLL on the fixed-binarised test set.
EXPERIMENT=vae_mnist_vamp exec "$(dirname "$0")/reproduce_vae_mnist_nll.sh" "$@"
