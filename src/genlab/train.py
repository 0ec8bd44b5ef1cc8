"""Train a model: ``python -m genlab.train [model=vae] [key=value ...]`` (Hydra overrides)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from genlab.checks.errors import ConfigError
from genlab.cli.entry import run_hydra_cli, user_errors_exit
from genlab.cli.task import print_config
from genlab.sweeps.multirun import multirun_job, patch_ddp_relaunch

if TYPE_CHECKING:  # torch and Lightning load inside train(): `--cfg job`, `--help` and config
    import lightning.pytorch as pl  # errors answer before any heavy import (< 2 s)

log = logging.getLogger(__name__)


def resume_scope(cfg: DictConfig) -> tuple[str, str, list[str]]:
    """(log_dir, task_name, command-line overrides): where ``ckpt_path=last`` looks."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    log_dir = cfg.get("paths", {}).get("log_dir") or "outputs"
    return str(log_dir), str(cfg.get("task_name", "train")), overrides


def check_resume(ckpt_path: str | None, model: pl.LightningModule) -> str | None:
    """A resume checkpoint must exist, be genlab's, hold the same model family (its registered
    name) and only this
    model's counters (Lightning restores it into the model built from *this* run's config; the
    checkpoint's hyper_parameters and run config are not used)."""
    from genlab.runs.checkpoints import check_counters, load_checkpoint

    if ckpt_path is None:
        return None
    checkpoint = load_checkpoint(ckpt_path)  # weights_only: refuses pickles
    family = checkpoint["genlab"].get("family")
    if family != model.family:
        raise ConfigError(
            "ckpt_path", ckpt_path, f"a {model.family} checkpoint (this one is a {family})"
        )
    check_counters(checkpoint, model)
    return ckpt_path


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the model described by ``cfg`` and return the final metrics (floats, by name)."""
    from genlab.checks.run_config import check_run_config
    from genlab.models.registry import check_model_config, check_registered

    check_run_config(cfg)  # trainer/seed/ckpt_path values, before anything slow is imported
    check_model_config(cfg.get("model"))  # genlab's families: the typed config, torch-free too
    import lightning.pytorch as pl

    from genlab.cli.components import instantiate_callbacks, instantiate_loggers
    from genlab.cli.status import recorded_status
    from genlab.cli.task import configure_threads
    from genlab.runs.checkpoints import resolve_ckpt_path
    from genlab.runs.records import write_env
    from genlab.tracking.run import RunTracking

    patch_ddp_relaunch()  # a DDP job of a multirun re-runs only itself on the other ranks

    tracking = RunTracking(cfg)  # the run's name for every logger; WANDB_MODE checked now
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), *resume_scope(cfg))
    if ckpt_path is not None:  # the file `last` / a run dir resolved to, also for ${ckpt_path}
        cfg.ckpt_path = ckpt_path  # (logger.wandb.ckpt_path: resume: true reads its wandb id)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        log.info(f"Seed set to {cfg.seed}")
    configure_threads(cfg)

    log.info(f"Instantiating datamodule <{cfg.data._target_}>")
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)

    log.info(f"Instantiating model <{cfg.model._target_}>")
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    check_registered(type(model))  # its checkpoints must load by registered name later
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # stored in checkpoints
    ckpt_path = check_resume(ckpt_path, model)  # before the slow parts (Trainer, data setup)
    output_dir = cfg.get("paths", {}).get("output_dir")
    callbacks = instantiate_callbacks(cfg.get("callbacks"))

    # every logger: one run name, the same hyperparameters; wandb finished even on failure
    with tracking.open(model, instantiate_loggers(cfg.get("logger"))):
        if output_dir:  # <run dir>/env.json: git commit, package versions, config, wandb run id
            write_env(output_dir, model.run_config, resume_scope(cfg)[2], tracking.wandb_run_id)
        log.info(f"Instantiating trainer <{cfg.trainer._target_}>")
        trainer: pl.Trainer = hydra.utils.instantiate(
            cfg.trainer, callbacks=[*callbacks, tracking.callback], logger=tracking.loggers
        )
        log.info("Starting training" + (f" from {ckpt_path}" if ckpt_path else ""))
        with recorded_status(output_dir, callbacks, resumed_from=ckpt_path):
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["step"] = float(model.schedule_step())  # GAN: generator steps
    if trainer.checkpoint_callback is not None:
        log.info(f"Last checkpoint: {trainer.checkpoint_callback.last_model_path}")
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@user_errors_exit("train")
@multirun_job
def hydra_main(cfg: DictConfig) -> float | None:
    """Entry point of ``python -m genlab.train`` and ``genlab-train``; returns the
    ``optimized_metric`` for Hydra sweepers. In a multirun a failing job returns NaN and is
    reported at the end of the sweep (genlab.sweeps.multirun)."""
    print_config(cfg)
    metrics = train(cfg)
    optimized = cfg.get("optimized_metric")
    return metrics.get(optimized) if optimized else None


def main() -> float | None:
    """``python -m genlab.train`` / ``genlab-train``: bad input exits 2 with one line,
    divergence 3, SIGTERM/SIGINT 128 + signal after saving last.ckpt (genlab.cli.entry)."""
    return run_hydra_cli(hydra_main, config_name="train")


if __name__ == "__main__":
    main()
