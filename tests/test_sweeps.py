"""Hydra multirun sweeps through the CLI: basic and joblib launchers with wandb offline, a
failing job, Optuna, and multirun + multi-process DDP (one run dir per job)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genlab.compare import compare
from wandb_offline import read_offline_run

TINY = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
    "callbacks.sample_grid.num_samples=16",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
    "data.batch_size=16",
    "metrics.every_n_epochs=0",  # no FID here (tests/test_metrics.py covers it)
]


def offline_env(tmp_path: Path) -> dict[str, str]:
    """No account, no network: wandb must go offline by itself (nothing forces it here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), NETRC=str(tmp_path / "home" / ".netrc"))
    env.update(WANDB_CONFIG_DIR=str(tmp_path / "home" / "wandb"))
    return env


def sweep(tmp_path: Path, *args: str, env=None, sweep_dir="sweep") -> subprocess.CompletedProcess:
    """``python -m genlab.train -m TINY args`` in ``tmp_path`` (``sweep_dir=None``: Hydra's
    default ``outputs/train/multirun/<date>_<time>``, as a user runs it)."""
    where = [f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else []
    return subprocess.run(
        [sys.executable, "-m", "genlab.train", "-m", *TINY, *args, *where],
        cwd=tmp_path,
        env=env or offline_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,  # a prompt would fail instead of hanging
    )


def run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "config.yaml").is_file())


def wandb_runs(sweep_dir: Path) -> list[dict]:
    """The sweep's offline wandb runs, side by side in ``<sweep dir>/wandb/``, in job order."""
    files = sorted(sweep_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == len(run_dirs(sweep_dir)), f"one offline wandb run per job: {files}"
    assert not list(sweep_dir.glob("*/wandb/offline-run-*")), "no job keeps its own wandb dir"
    return [read_offline_run(f) for f in files]


@pytest.mark.slow
def test_basic_launcher_failed_job_is_reported_and_next_job_gets_its_own_wandb_run(tmp_path):
    # job 0 fails inside fit (at the end of the epoch, no such metric to monitor) after its
    # wandb run started; job 1 must run and log into a new wandb run, not the failed job's one.
    monitor = "callbacks.model_checkpoint.monitor"
    result = sweep(
        tmp_path,
        f"{monitor}=val/nope,null",
        "callbacks.model_checkpoint.every_n_epochs=1",
        "logger=default",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "1 of 2 jobs failed: #0" in result.stderr
    assert f"#0 failed    {monitor}=val/nope" in result.stdout
    assert f"#1 completed {monitor}=null" in result.stdout
    assert "wandb sync" in result.stdout + result.stderr
    sweep_dir = tmp_path / "sweep"
    assert [p.name for p in run_dirs(sweep_dir)] == ["0", "1"]
    assert (sweep_dir / "1" / "checkpoints" / "last.ckpt").is_file()
    summary = OmegaConf.load(sweep_dir / "sweep_summary.yaml")
    assert [job.status for job in summary.jobs] == ["failed", "completed"]
    assert "val/nope" in summary.jobs[0].error

    failed, completed = wandb_runs(sweep_dir)
    assert failed["id"] != completed["id"]
    assert failed["group"] == completed["group"] == "sweep"
    assert completed["name"] == f"{monitor}=null"
    assert (failed["exit_code"], completed["exit_code"]) == (1, 0)
    config = completed["config"]
    assert config["model.generator.base_channels"] == "8"  # flattened, resolved config
    assert config["data.batch_size"] == "16"
    logged = [key for step in completed["history"] for key in step]
    assert logged.count("train/loss_d") == 2  # its own 2 steps only, not the failed job's
    assert "samples/samples/_type" in logged  # the sample grid, as an image


@pytest.mark.slow  # ~50 s: two fresh worker processes each import torch, Lightning and wandb
def test_joblib_launcher_two_jobs_two_wandb_runs_in_one_group(tmp_path):
    result = sweep(
        tmp_path, "seed=1,2", "logger=default", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = tmp_path / "sweep"
    assert [p.name for p in run_dirs(sweep_dir)] == ["0", "1"]
    runs = wandb_runs(sweep_dir)
    assert len({run["id"] for run in runs}) == 2
    assert {run["group"] for run in runs} == {"sweep"}
    assert sorted(run["name"] for run in runs) == ["seed=1", "seed=2"]


@pytest.mark.slow
def test_optuna_two_trials_return_the_optimized_metric(tmp_path):
    args = [a for a in TINY if "base_channels" not in a]
    result = subprocess.run(
        [sys.executable, "-m", "genlab.train", "-m", "hparams_search=vae_optuna", *args]
        + ["hydra.sweeper.n_trials=2", "logger=csv", "hydra.sweep.dir=sweep"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert isinstance(results.best_value, float) and results.best_value > 0  # val/loss, nats
    statuses = OmegaConf.load(tmp_path / "sweep" / "sweep_summary.yaml").jobs
    assert [s.status for s in statuses] == ["completed", "completed"]
    assert results.best_value == min(s.value for s in statuses)
    assert set(results.best_params) == {
        "model.optimizer.lr",
        "model.latent_dim",
        "model.base_channels",
        "model.kl_warmup_steps",
    }


@pytest.mark.slow
def test_multirun_with_ddp_makes_one_run_dir_per_job(tmp_path):
    # the README's command, without hydra.sweep.dir (its default resolves ${hydra:runtime.cwd}
    # before any job started: "HydraConfig was not set" before the fix)
    result = sweep(tmp_path, "seed=1,2", "trainer=ddp_cpu", "logger=csv", sweep_dir=None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in result.stdout + result.stderr  # really two processes
    # one sweep dir: rank 1 did not start a sweep of its own
    (sweep_dir,) = (tmp_path / "outputs" / "train" / "multirun").iterdir()
    assert sorted(p.name for p in (tmp_path / "outputs" / "train").iterdir()) == ["multirun"]
    assert f"Sweep {sweep_dir}: 2/2 jobs completed" in result.stdout
    assert [p.name for p in run_dirs(sweep_dir)] == ["0", "1"]
    assert sorted(p.name for p in sweep_dir.iterdir()) == [
        "0",
        "1",
        "multirun.yaml",
        "sweep_summary.yaml",
    ]
    for run_dir in run_dirs(sweep_dir):
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()

    # the local comparison of the finished sweep
    from test_compare import parse_report

    report = parse_report(compare([sweep_dir]))
    header, group, *runs = report.rows  # the two seeds: one group row, then its runs
    assert group[2] == "1, 2" and group[-1] == "2 completed"
    assert sorted(r[1] for r in runs) == ["seed=1", "seed=2"]
    assert {"train/loss_d", "train/loss_g"} <= set(report.charts)
    assert [img for img in report.images if img.get("class") == "samples"]


def test_slurm_launcher_writes_an_sbatch_script_sized_from_the_trainer(tmp_path):
    # No SLURM here: a fake sbatch keeps the script submitit wrote and refuses the job.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\ncp "$1" "$SBATCH_CAPTURE"\nexit 1\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    env["SBATCH_CAPTURE"] = str(tmp_path / "job.sbatch")
    result = subprocess.run(
        [sys.executable, "-m", "genlab.train", "-m", "hydra/launcher=slurm", "trainer=ddp_cpu"]
        + ["seed=1,2", "hydra.launcher.partition=debug", "hydra.sweep.dir=sweep"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0  # the fake sbatch refused it
    script = (tmp_path / "job.sbatch").read_text()
    for line in (
        "#SBATCH --array=0-1",  # one array task per job of the sweep
        "#SBATCH --ntasks-per-node=2",  # = trainer.devices: SLURM starts the DDP processes
        "#SBATCH --nodes=1",
        "#SBATCH --partition=debug",
        "#SBATCH --time=240",
        f"{tmp_path}/sweep/.submitit/",
    ):
        assert line in script, line


def test_one_status_file_for_runs_and_sweep_jobs(tmp_path):
    """A sweep job's outcome goes into the run's own status.json (no second status file): a job
    that diverged stays ``diverged`` (not a generic ``failed``) in the sweep summary and in
    compare, and keeps what the run recorded (``resumed_from``, the divergence step)."""
    from genlab.report.runs import load_run
    from genlab.runs.records import STATUS_FILE, read_job_statuses, write_status
    from genlab.sweeps.multirun import record_job

    sweep_dir = tmp_path / "sweep"
    info = [{"num": n, "swept": [f"seed={n}"], "overrides": [f"seed={n}"]} for n in (0, 1)]
    for job in info:
        job["run_dir"] = str(sweep_dir / str(job["num"]))
        (sweep_dir / str(job["num"]) / ".hydra").mkdir(parents=True)
        OmegaConf.save({"seed": job["num"]}, sweep_dir / str(job["num"]) / ".hydra/config.yaml")
    write_status(info[0]["run_dir"], "diverged", step=7, resumed_from=None)  # genlab.train's
    record_job(info[0], "failed", error="DivergenceError: loss_d is nan")  # the job wrapper's
    write_status(info[1]["run_dir"], "completed", resumed_from="x.ckpt")
    record_job(info[1], "completed", value=1.5)

    assert sorted(p.name for p in (sweep_dir / "0").iterdir()) == [".hydra", STATUS_FILE]
    diverged, completed = read_job_statuses(sweep_dir)
    assert (diverged["status"], diverged["step"], diverged["num"]) == ("diverged", 7, 0)
    assert "loss_d is nan" in diverged["error"]
    assert (completed["status"], completed["value"]) == ("completed", 1.5)
    assert completed["resumed_from"] == "x.ckpt" and completed["overrides"] == ["seed=1"]
    assert load_run(sweep_dir / "0").status == "diverged"
    assert load_run(sweep_dir / "1").status == "completed"


def test_a_collapsed_run_stays_collapsed_in_its_status_and_the_sweep_summary(tmp_path):
    """A run that trained to the end while the collapse guard fired is ``collapsed``, not
    ``completed``: in its own status.json (written by genlab.train around the fit) and after
    the sweep's job wrapper records the job, so a sweep summary shows which jobs collapsed."""
    from types import SimpleNamespace

    from genlab.cli.status import recorded_status
    from genlab.runs.records import read_status
    from genlab.sweeps.multirun import record_job

    guard = SimpleNamespace(collapsed=True, details={"monitor": "val/modes_covered", "value": 3})
    healthy = SimpleNamespace(collapsed=False)
    for name, callbacks in (("collapsed", [healthy, guard]), ("healthy", [healthy])):
        with recorded_status(tmp_path / name, callbacks):
            pass
    assert read_status(tmp_path / "collapsed")["status"] == "collapsed"
    assert read_status(tmp_path / "collapsed")["collapse"]["monitor"] == "val/modes_covered"
    assert read_status(tmp_path / "healthy")["status"] == "completed"
    record_job({"num": 0, "run_dir": str(tmp_path / "collapsed")}, "completed", value=1.0)
    assert read_status(tmp_path / "collapsed")["status"] == "collapsed"
