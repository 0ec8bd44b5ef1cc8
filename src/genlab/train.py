"""Train a model: ``python -m genlab.train [model=vae] [key=value ...]`` (Hydra overrides)."""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from genlab.utils.checkpoints import load_checkpoint
from genlab.utils.errors import ConfigError
from genlab.utils.instantiate import instantiate_callbacks, instantiate_loggers
from genlab.utils.run import configure_threads, exit_on_config_error, print_config

log = logging.getLogger(__name__)


def check_resume(ckpt_path: str | None, model: pl.LightningModule) -> str | None:
    """A resume checkpoint must exist, be genlab's, and hold the same model family."""
    if ckpt_path is None:
        return None
    family = load_checkpoint(ckpt_path)["genlab"]["family"]
    if family != model.family:
        raise ConfigError(
            "ckpt_path", ckpt_path, f"a {model.family} checkpoint (this one is a {family})"
        )
    return ckpt_path


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the model described by ``cfg`` and return the final metrics (floats, by name)."""
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    configure_threads(cfg)

    log.info(f"Instantiating datamodule <{cfg.data._target_}>")
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)

    log.info(f"Instantiating model <{cfg.model._target_}>")
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # stored in checkpoints

    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"))

    log.info(f"Instantiating trainer <{cfg.trainer._target_}>")
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)

    ckpt_path = check_resume(cfg.get("ckpt_path"), model)
    for logger in loggers:
        logger.log_hyperparams({"seed": cfg.get("seed"), "ckpt_path": ckpt_path})

    log.info("Starting training" + (f" from {ckpt_path}" if ckpt_path else ""))
    trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["g_step" if model.family == "gan" else "step"] = float(
        getattr(model, "g_steps", trainer.global_step)
    )
    if trainer.checkpoint_callback is not None:
        log.info(f"Last checkpoint: {trainer.checkpoint_callback.last_model_path}")
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@exit_on_config_error
def main(cfg: DictConfig) -> float | None:
    """Entry point of ``python -m genlab.train`` and ``genlab-train``; returns the
    ``optimized_metric`` for Hydra sweepers."""
    print_config(cfg)
    metrics = train(cfg)
    optimized = cfg.get("optimized_metric")
    return metrics.get(optimized) if optimized else None


if __name__ == "__main__":
    main()
