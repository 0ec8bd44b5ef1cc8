"""Train a model: ``python -m genlab.train [model=vae] [key=value ...]`` (Hydra overrides)."""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from genlab.utils.checkpoints import load_checkpoint, resolve_ckpt_path
from genlab.utils.cli import run_hydra_cli
from genlab.utils.errors import ConfigError
from genlab.utils.instantiate import instantiate_callbacks, instantiate_loggers
from genlab.utils.run import configure_threads, exit_on_config_error, print_config
from genlab.utils.run_info import recorded_status, write_env
from genlab.utils.sweep import multirun_job, patch_ddp_relaunch
from genlab.utils.validate import check_run_config
from genlab.utils.wandb import finish_wandb, store_wandb_run_id

log = logging.getLogger(__name__)


def resume_scope(cfg: DictConfig) -> tuple[str, str, list[str]]:
    """(log_dir, task_name, command-line overrides): where ``ckpt_path=last`` looks."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    log_dir = cfg.get("paths", {}).get("log_dir") or "outputs"
    return str(log_dir), str(cfg.get("task_name", "train")), overrides


def check_resume(ckpt_path: str | None, model: pl.LightningModule) -> str | None:
    """A resume checkpoint must exist, be genlab's, and hold the same model family."""
    if ckpt_path is None:
        return None
    family = load_checkpoint(ckpt_path)["genlab"]["family"]  # weights_only: refuses pickles
    if family != model.family:
        raise ConfigError(
            "ckpt_path", ckpt_path, f"a {model.family} checkpoint (this one is a {family})"
        )
    return ckpt_path


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the model described by ``cfg`` and return the final metrics (floats, by name)."""
    check_run_config(cfg)  # trainer/seed/ckpt_path values, before anything slow
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), *resume_scope(cfg))
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    configure_threads(cfg)

    log.info(f"Instantiating datamodule <{cfg.data._target_}>")
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)

    log.info(f"Instantiating model <{cfg.model._target_}>")
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # stored in checkpoints
    ckpt_path = check_resume(ckpt_path, model)  # before the slow parts (Trainer, data setup)
    output_dir = cfg.get("paths", {}).get("output_dir")
    if output_dir:  # <run dir>/env.json: git commit, package versions, resolved config
        write_env(output_dir, model.run_config, resume_scope(cfg)[2])

    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"))

    store_wandb_run_id(model, loggers)
    failed = True
    try:
        log.info(f"Instantiating trainer <{cfg.trainer._target_}>")
        trainer: pl.Trainer = hydra.utils.instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers
        )

        for logger in loggers:
            logger.log_hyperparams({**model.run_config, "ckpt_path": ckpt_path})

        log.info("Starting training" + (f" from {ckpt_path}" if ckpt_path else ""))
        with recorded_status(output_dir, callbacks, resumed_from=ckpt_path):
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics["g_step" if model.family == "gan" else "step"] = float(
            getattr(model, "g_steps", trainer.global_step)
        )
        if trainer.checkpoint_callback is not None:
            log.info(f"Last checkpoint: {trainer.checkpoint_callback.last_model_path}")
        failed = False
    finally:  # also on failure: otherwise the next job of a multirun reuses this wandb run
        finish_wandb(loggers, failed=failed)
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@exit_on_config_error
@multirun_job
def hydra_main(cfg: DictConfig) -> float | None:
    """Entry point of ``python -m genlab.train`` and ``genlab-train``; returns the
    ``optimized_metric`` for Hydra sweepers. In a multirun a failing job returns NaN and is
    reported at the end of the sweep (genlab.utils.sweep)."""
    patch_ddp_relaunch()
    print_config(cfg)
    metrics = train(cfg)
    optimized = cfg.get("optimized_metric")
    return metrics.get(optimized) if optimized else None


def main() -> float | None:
    """``python -m genlab.train`` / ``genlab-train``: bad input exits 2 with one line,
    divergence 3, SIGTERM/SIGINT 128 + signal after saving last.ckpt (genlab.utils.cli)."""
    return run_hydra_cli(hydra_main, config_name="train")


if __name__ == "__main__":
    main()
