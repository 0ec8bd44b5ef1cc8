"""scripts/reproduce_vae_mnist_nll.sh end to end, on a tiny budget: it trains, then its
genlab.eval finds the same MNIST files (the checkpoint never names a data location)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data"


@pytest.mark.slow  # ~2 minutes: a few training batches and a k=2 NLL of the 10,000 test images
@pytest.mark.skipif(not (MNIST / "MNIST" / "raw").is_dir(), reason="MNIST IDX files not here")
def test_the_nll_script_evaluates_on_the_data_it_trained_on(tmp_path):
    env = {**os.environ, "EPOCHS": "1", "K": "2", "RUN_DIR": str(tmp_path / "run")}
    env.update(PYTHON=sys.executable, GENLAB_MNIST_DIR=str(tmp_path / "nowhere"))
    args = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=1"]
    # the data dir given to the training is the one the evaluation reads (not GENLAB_MNIST_DIR)
    args.append(f"data.data_dir={MNIST}")
    cmd = ["bash", "scripts/reproduce_vae_mnist_nll.sh", *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "test NLL" in done.stdout
    results = json.loads((tmp_path / "run" / "checkpoints" / "eval.json").read_text())
    assert results["k"] == 2 and results["test/nll"] > 0
