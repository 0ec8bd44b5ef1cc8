#!/usr/bin/env bash
# Reproduce the MLP-VAE likelihood anchor on binarised MNIST (experiment=vae_mnist_nll):
# train the 784-400-40 VAE, then estimate the test NLL with k importance samples (Burda et al.
# 2015 estimator) on all 10,000 fixed-binarised test images. Writes <run dir>/checkpoints/eval.json.
#
#   scripts/reproduce_vae_mnist_nll.sh                    # 200 epochs, k=5000 (Burda et al.)
#   EPOCHS=50 K=1000 THREADS=2 scripts/reproduce_vae_mnist_nll.sh
#   EXPERIMENT=vae_mnist_vamp scripts/reproduce_vae_mnist_nll.sh   # any binarised-MNIST recipe
#   scripts/reproduce_vae_mnist_nll.sh model.nll_every_n_epochs=10  # arguments: training overrides
#
# Cost on 2 shared CPU cores (1 training thread): ~15-30 s per epoch; the k=1000 evaluation of
# the 10,000 test images ~10-15 min (k=5000: five times that).
#
# Needs the raw MNIST IDX files in $GENLAB_MNIST_DIR/MNIST/raw (default: ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
EXPERIMENT=${EXPERIMENT:-vae_mnist_nll}
EPOCHS=${EPOCHS:-200}
K=${K:-5000}
THREADS=${THREADS:-1}            # torch threads of the training
EVAL_THREADS=${EVAL_THREADS:-2}  # torch threads of the evaluation
RUN_DIR=${RUN_DIR:-outputs/$EXPERIMENT/repro_$(date +%Y%m%d_%H%M%S)}
# genlab.eval never reads a data location from the checkpoint: give it the training's MNIST dir
# (the recipes' default, or a data.data_dir=<dir> among the arguments).
DATA_DIR=${GENLAB_MNIST_DIR:-$(cd .. && pwd)/shared/data}
for arg in "$@"; do
  case "$arg" in data.data_dir=*) DATA_DIR=${arg#data.data_dir=} ;; esac
done

start=$(date +%s)
"$PYTHON" -m genlab.train experiment="$EXPERIMENT" trainer.max_epochs="$EPOCHS" \
  num_threads="$THREADS" hydra.run.dir="$RUN_DIR" \
  '~callbacks.rich_progress_bar' +trainer.enable_progress_bar=false "$@"
trained=$(date +%s)
echo "train wall time: $((trained - start)) s"

"$PYTHON" -m genlab.eval ckpt_path="$RUN_DIR/checkpoints/last.ckpt" k="$K" \
  data.data_dir="$DATA_DIR" num_threads="$EVAL_THREADS" metrics.num_samples=0
done_at=$(date +%s)
echo "eval wall time: $((done_at - trained)) s; total: $((done_at - start)) s"
echo "results: $RUN_DIR/checkpoints/eval.json"
# A likelihood of the binarised test pixels, so an NLL must be there; if not,
# eval.json says why (nll_unavailable_reason) and this script fails.
"$PYTHON" - "$RUN_DIR/checkpoints/eval.json" <<'EOF'
import json
import sys

results = json.load(open(sys.argv[1]))
if "test/nll" not in results:
    sys.exit(f"no test/nll: {results.get('nll_unavailable_reason')}")
nll, err, bpd = results["test/nll"], results["test/nll_stderr"], results["test/nll_bpd"]
print(f"test NLL {nll:.2f} +- {err:.2f} nats ({bpd:.4f} bits/dim), k={results['k']}")
EOF
