"""Hydra multirun support: one job per run dir under DDP, failed jobs reported, a sweep summary.

- ``patch_ddp_relaunch()``: Lightning's DDP launcher starts ranks >= 1 by re-running
  ``sys.argv``. Inside a multirun that re-runs the whole sweep (basic launcher: a second sweep
  dir) or crashes (joblib: ``--pipe`` missing). The patch re-launches only the current job:
  ``python -m genlab.train <this job's overrides> hydra.run.dir=<its run dir> hydra.mode=RUN``.
- ``multirun_job``: wraps the task function. In a multirun a failing job is logged (traceback
  in the job's log), recorded in the job's ``<run dir>/status.json`` (the one status file of
  every run, :mod:`genlab.runs.records`) and returns NaN so the sweep goes
  on (Optuna records the trial as failed); the DDP environment of the job is cleaned so the next
  job in the same process starts its own processes.
- ``HydraConfigAtSweepStartCallback`` (Hydra callback): ``${hydra:runtime.cwd}`` (in
  ``paths.root_dir``, so in the default ``hydra.sweep.dir``) resolves at the start of a sweep.
- ``SweepSummaryCallback`` (Hydra callback): at the end of a multirun, prints one line per job
  (status, value, overrides) and the commands that compare the sweep (TensorBoard, ``wandb
  sync``, ``genlab.compare``), writes the sweep's TensorBoard HParams experiment and
  ``<sweep dir>/sweep_summary.yaml``, and exits with code 1 if any job failed.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from genlab.compat import replace_hydra_launch_command
from genlab.runs.records import STATUS_FILE, read_job_statuses, read_status, update_status
from genlab.tracking.run_identity import swept_overrides

log = logging.getLogger(__name__)

SUMMARY_FILE = "sweep_summary.yaml"
DDP_ENV_KEYS = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_NOT_RELAUNCHED = ("hydra.mode", "hydra.run.dir", "hydra.output_subdir", "hydra.job.name")


def in_multirun() -> bool:
    """True inside a job of ``python -m genlab.train -m ...``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def single_job_command(local_rank: int, module: str = "genlab.train") -> tuple[list[str], str]:
    """The command (and cwd) that runs rank ``local_rank`` of the current Hydra job alone.

    Same config name/dirs, the job's own overrides (not the sweep's), the job's run dir, no
    second ``.hydra/`` (``hydra.output_subdir=null``), RUN mode.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hc = HydraConfig.get()
    command = [sys.executable, "-m", module]
    if hc.job.config_name:
        command.append(f"--config-name={hc.job.config_name}")
    for source in hc.runtime.config_sources:
        if source.provider == "command-line" and source.schema == "file":
            command.append(f"--config-dir={source.path}")
    hydra_overrides = [
        o for o in hc.overrides.hydra if not o.lstrip("+~").startswith(_NOT_RELAUNCHED)
    ]
    command += list(hc.overrides.task) + hydra_overrides
    command += [
        f'hydra.run.dir="{hc.runtime.output_dir}"',
        "hydra.output_subdir=null",
        f"hydra.job.name=train_ddp_process_{local_rank}",
        "hydra.mode=RUN",
    ]
    return command, get_original_cwd()


def patch_ddp_relaunch() -> None:
    """Make Lightning's DDP subprocess launcher re-run only the current job in a multirun
    (outside a multirun Lightning's own command is kept)."""

    def build(local_rank: int, original):
        return single_job_command(local_rank) if in_multirun() else original(local_rank)

    replace_hydra_launch_command(build)  # genlab.compat


def _reset_distributed(saved_env: dict[str, str | None]) -> None:
    """Undo what a DDP job left in this process: the process group and the launcher's env
    variables (with ``LOCAL_RANK`` set, Lightning would not start ranks for the next job)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def record_job(info: dict[str, Any], status: str, **details: Any) -> None:
    """Add the job's ``info`` (num, swept, overrides, run_dir) and outcome to its run's
    ``status.json``. A run that recorded itself as ``diverged`` or ``interrupted`` keeps that
    status (the sweep still counts it as not completed), and so does a ``collapsed`` one."""
    run_dir = Path(info["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    recorded = (read_status(run_dir) or {}).get("status")
    if status == "failed" and recorded in ("diverged", "interrupted", "collapsed"):
        status = recorded
    if status == "completed" and recorded == "collapsed":  # ran to the end, but collapsed
        status = recorded
    update_status(run_dir, status, **info, **details)


def multirun_job(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Decorate a Hydra task so that, in a multirun, a failing job does not stop the sweep."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        if not in_multirun():
            return task(cfg)
        from hydra.core.hydra_config import HydraConfig

        from genlab.checks.errors import find_config_error

        hc = HydraConfig.get()
        info = {
            "num": int(hc.job.num),
            "swept": swept_overrides(hc),
            "overrides": list(hc.overrides.task),
            "run_dir": str(hc.runtime.output_dir),
        }
        saved_env = {key: os.environ.get(key) for key in DDP_ENV_KEYS}
        try:
            value = task(cfg)
        except Exception as err:  # noqa: BLE001 - the sweep goes on; reported at its end
            config_error = find_config_error(err)
            message = str(config_error) if config_error else f"{type(err).__name__}: {err}"
            if config_error is None:
                log.error("Job failed:\n" + traceback.format_exc())
            log.error(f"Job #{info['num']} failed: {message}")
            record_job(info, "failed", error=message[:2000])
            return math.nan
        finally:
            _reset_distributed(saved_env)
        number = float(value) if isinstance(value, (int, float)) else None
        record_job(info, "completed", value=number)
        return value

    return wrapper


class HydraConfigAtSweepStartCallback(Callback):
    """Make ``${hydra:...}`` resolvable before the first job of a multirun starts.

    Hydra sets :class:`~hydra.core.hydra_config.HydraConfig` per job only, but the sweeper (and
    launchers such as submitit) resolve ``hydra.sweep.dir`` before any job runs. genlab's sweep
    dir is ``${paths.log_dir}/...`` and ``paths.root_dir`` is ``${hydra:runtime.cwd}``, so
    without this ``python -m genlab.train -m seed=1,2`` fails with "HydraConfig was not set"
    unless ``hydra.sweep.dir`` is given. The sweep's own config is set (a copy, so the sweep
    config stays writable), replacing any left from an earlier run in this process; each job
    sets its own as before.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(copy.deepcopy(config))  # replaces a stale one too


class SweepSummaryCallback(Callback):
    """At the end of a multirun: one line per job, ``sweep_summary.yaml``, exit 1 on failure."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        statuses = read_job_statuses(sweep_dir)
        if not statuses:
            return
        failed = [s for s in statuses if s["status"] != "completed"]
        lines = [f"Sweep {sweep_dir}: {len(statuses) - len(failed)}/{len(statuses)} jobs completed"]
        for s in statuses:
            shown = s.get("error") if s["status"] != "completed" else s.get("value")
            overrides = " ".join(s.get("swept") or s["overrides"]) or "(no overrides)"
            lines.append(
                f"  #{s['num']} {s['status']:<9} {overrides}"
                + (f"  -> {shown}" if shown is not None else "")
            )
        from genlab.tracking.tensorboard import write_sweep_experiment  # Lightning: imported late

        tensorboard_dir = write_sweep_experiment(sweep_dir)  # TensorBoard's HParams columns
        if tensorboard_dir is not None:
            lines.append(f"  compare in TensorBoard: tensorboard --logdir {tensorboard_dir}")
        for pattern in ("wandb/offline-run-*", "*/wandb/offline-run-*"):  # side by side or not
            if any(sweep_dir.glob(pattern)):
                lines.append(f"  upload the wandb runs: wandb sync {sweep_dir}/{pattern}")
        lines.append(f"  compare the runs: python -m genlab.compare {sweep_dir}")
        print("\n".join(lines), flush=True)
        OmegaConf.save(OmegaConf.create({"jobs": statuses}), sweep_dir / SUMMARY_FILE)
        if failed:
            print(
                f"genlab: error: {len(failed)} of {len(statuses)} jobs failed: "
                + ", ".join(f"#{s['num']}" for s in failed)
                + f" (see {sweep_dir}/<num>/{STATUS_FILE} and the job logs)",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1)
