"""The SLURM path, tested on one machine: a sweep through Hydra's submitit launcher with
submitit's local executor (``hydra/launcher=submitit_local``) runs every job to a checkpoint
(issue "trust, round 2")."""

from __future__ import annotations

import json

from genlab.runs.checkpoints import load_checkpoint
from test_sweeps import run_dirs, sweep


def test_a_sweep_runs_through_submitits_local_executor(tmp_path):
    result = sweep(
        tmp_path,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "hydra.launcher.cpus_per_task=1",
        "logger=csv",
        "seed=1,2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = tmp_path / "sweep"
    assert (sweep_dir / ".submitit").is_dir()  # the jobs went through submitit
    jobs = run_dirs(sweep_dir)
    assert len(jobs) == 2
    seeds = set()
    for job in jobs:
        ckpt = load_checkpoint(job / "checkpoints" / "last.ckpt")
        assert ckpt["global_step"] >= 1
        seeds.add(ckpt["genlab"]["run_config"]["seed"])
        assert json.loads((job / "status.json").read_text())["status"] == "completed"
    assert seeds == {1, 2}
