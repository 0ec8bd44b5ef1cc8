"""benchmarks/disentanglement.py's table (no training): mean ± sample std over the seeds that
were scored, and the page's generated block replaced between its markers only."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "disentanglement_bench", ROOT / "benchmarks" / "disentanglement.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(tmp_path: Path, name: str, mig: float, train_s: float, step: int = 100) -> Path:
    run_dir = tmp_path / name
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "csv").mkdir()
    metrics = {"train/mig": mig, "train/dci_disentanglement": 0.5, "train/factor_vae_score": 0.7}
    (run_dir / "checkpoints" / "eval.json").write_text(json.dumps({"global_step": step, **metrics}))
    early = {"global_step": step // 2, "train/mig": 0.01, "train/factor_vae_score": 0.3}
    (run_dir / "checkpoints" / "eval_epoch_000.json").write_text(json.dumps(early))
    (run_dir / "timing.json").write_text(json.dumps({"train_s": train_s, "eval_s": 10.0}))
    (run_dir / "csv" / "metrics.csv").write_text(
        f"epoch,step,train/kl,train/recon\n0,{step - 1},12.5,-80.0\n0,{step - 1},,\n"
    )
    return run_dir


def test_table_mean_and_sample_std_over_scored_seeds(bench, tmp_path):
    runs = []
    for seed, mig in ((0, 0.1), (1, 0.3)):
        result = {"variant": "beta_tcvae", "seed": seed}
        result.update(bench.run_result(fake_run(tmp_path, f"t{seed}", mig, 100.0 + seed * 20)))
        runs.append(result)
    runs.append({"variant": "factor_vae", "seed": 0})  # trained, never scored
    lines = bench.table(runs)
    tc = next(line for line in lines if line.startswith("| β-TCVAE"))
    cells = [c.strip() for c in tc.split("|")[1:-1]]
    assert cells[1] == "0,1"
    assert cells[2] == "0.200 ± 0.141"  # MIG: mean 0.2, sample std sqrt(0.02)
    assert cells[3] == "0.500 ± 0.000"
    assert cells[-1] == "110 / 10"  # mean train / eval seconds per run
    fv = next(line for line in lines if line.startswith("| FactorVAE"))
    assert "not scored yet" in fv
    assert runs[0]["terms"] == {"train/kl": 12.5, "train/recon": -80.0, "step": 100}
    # the periodic checkpoints' scores, in step order, then last.ckpt's
    assert runs[1]["trend"] == [(50, 0.01, 0.3), (100, 0.3, 0.7)]
    trend = bench.trend_table(runs)
    assert "| `beta_tcvae_s1` | 0.010 (0.30) | 0.300 (0.70) |" in trend


def test_write_page_replaces_only_the_generated_block(bench, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{bench.START}\nold table\n{bench.END}\noutro\n")
    run = {"variant": "beta_vae_b1", "seed": 0, "metrics": {"train/mig": 0.05}}
    bench.write_page([run], "python benchmarks/disentanglement.py", page)
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n")
    assert "old table" not in text and "| β-VAE, β = 1 (the VAE) | 0 | 0.050 |" in text
    page.write_text("no markers\n")
    with pytest.raises(SystemExit, match="lacks the markers"):
        bench.write_page([run], "x", page)
