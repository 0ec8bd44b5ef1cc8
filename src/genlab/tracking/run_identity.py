"""Who a run is, read from Hydra: its name (what differs), its sweep, where its loggers write.

Every logger names the run the same way (:func:`genlab.runs.naming.run_name`): a sweep job by
its swept overrides (``model=gan,seed=1``), a single run by its overrides, else by its run
directory. A sweep's jobs log side by side under one directory per logger in the sweep
directory (``<sweep dir>/tensorboard/<run name>/``, ``<sweep dir>/wandb/``), a single run under
its own run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.runs.naming import run_name


def swept_overrides(hc: Any) -> list[str]:
    """The overrides of this job that vary across its sweep: those whose key the whole sweep
    was given a sweep for (``model=gan,vae`` in ``<sweep dir>/multirun.yaml``) or that an
    Optuna-style sweeper samples (``hydra.sweeper.params``)."""
    from omegaconf import OmegaConf

    from genlab.compat import parse_overrides

    keys = set((hc.sweeper.get("params") or {}).keys())
    multirun_yaml = Path(str(hc.sweep.dir)) / "multirun.yaml"
    if multirun_yaml.is_file():
        sweep_args = list(OmegaConf.load(multirun_yaml).hydra.overrides.task)
        keys |= {o.key_or_group for o in parse_overrides(sweep_args) if o.is_sweep_override()}
    job = list(hc.overrides.task)
    return [text for text, o in zip(job, parse_overrides(job)) if o.key_or_group in keys]


@dataclass
class RunIdentity:
    """What Hydra knows about the running job (empty outside Hydra, e.g. ``train(cfg)`` in a
    test: no overrides, no sweep)."""

    multirun: bool = False
    overrides: list[str] = field(default_factory=list)  # the job's command-line overrides
    swept: list[str] = field(default_factory=list)  # those the sweep varies
    choices: dict[str, Any] = field(default_factory=dict)  # config group -> chosen option
    run_dir: str | None = None
    sweep_dir: str | None = None
    job_num: int | None = None

    @property
    def name(self) -> str:
        """The run's name in every logger and in ``genlab.compare``."""
        if self.multirun:
            return run_name(self.swept, f"job{self.job_num}")
        return run_name(self.overrides, Path(self.run_dir).name if self.run_dir else "run")

    def logger_root(self, logger: str) -> str | None:
        """Where ``logger`` writes: ``<sweep dir>/<logger>`` in a sweep (all jobs side by
        side), ``<run dir>/<logger>`` otherwise (None outside Hydra)."""
        base = self.sweep_dir if self.multirun else self.run_dir
        return str(Path(base) / logger) if base else None


def current_run() -> RunIdentity:
    """The running Hydra job's identity (an empty one outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return RunIdentity()
        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        return RunIdentity(
            multirun=multirun,
            overrides=[str(o) for o in hc.overrides.task],
            swept=swept_overrides(hc) if multirun else [],
            choices={str(k): v for k, v in (hc.runtime.get("choices") or {}).items()},
            run_dir=str(hc.runtime.output_dir),
            sweep_dir=str(hc.sweep.dir) if multirun else None,
            job_num=hc.job.get("num"),
        )
    except Exception:  # noqa: BLE001 - a partial HydraConfig (tests): no identity
        return RunIdentity()
