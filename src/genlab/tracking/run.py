"""The one tracking object of a training run: it opens and closes every logger.

``train()`` makes a :class:`RunTracking` before anything slow (it checks ``WANDB_MODE``), then
opens it around the fit with the loggers of ``cfg.logger``::

    tracking = RunTracking(cfg)
    ...
    with tracking.open(model, instantiate_loggers(cfg.logger)):
        trainer = Trainer(logger=tracking.loggers, callbacks=[..., tracking.callback])
        trainer.fit(...)

On open it stores the wandb run id in the run config (checkpoints carry it, for ``resume``)
and logs the run's hyperparameters (:func:`genlab.tracking.hparams.run_hparams`) to every
logger under the run's one name (:mod:`genlab.tracking.run_identity`). On close, also after a
failure, it logs each HParams metric's best value (``best/val/fid``, ...), declares the
HParams metrics to TensorBoard and finishes the wandb run (else the next job of a multirun
would log into it).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig

from genlab.tracking.hparams import BestMetrics, flatten, run_hparams
from genlab.tracking.run_identity import RunIdentity, current_run
from genlab.tracking.tensorboard import GenlabTensorBoardLogger
from genlab.tracking.wandb import GenlabWandbLogger, check_wandb_mode, uses_wandb

#: Config trees that are plumbing, not hyperparameters (left out of wandb's run config).
NOT_HYPERPARAMETERS = ("callbacks", "logger", "paths", "hydra")


class BestMetricsCallback(pl.Callback):
    """Keeps the best value of every HParams metric after each validation."""

    def __init__(self) -> None:
        self.best = BestMetrics()
        self.trainer: pl.Trainer | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.trainer = trainer

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.best.update(trainer.callback_metrics)


class RunTracking:
    """Every logger of one run: named alike, given the same hyperparameters, closed once."""

    def __init__(self, cfg: DictConfig) -> None:
        if uses_wandb(cfg.get("logger")):
            check_wandb_mode()  # WANDB_MODE= or a typo: one line now, not a traceback later
        self.identity: RunIdentity = current_run()
        self.loggers: list[Any] = []
        self.callback = BestMetricsCallback()

    @property
    def wandb_run_id(self) -> str | None:
        """The run id of the (first) wandb logger, or None."""
        return next((lg.run_id for lg in self.loggers if isinstance(lg, GenlabWandbLogger)), None)

    @contextlib.contextmanager
    def open(self, model: Any, loggers: list[Any]) -> Iterator[RunTracking]:
        """Track ``model``'s run with ``loggers`` until the block ends."""
        self.loggers = list(loggers)
        run_config = model.run_config if isinstance(model.run_config, dict) else {}
        self._store_wandb_run_id(run_config)
        failed = True
        try:
            self._log_hyperparams(run_config, dict(getattr(model, "hparams", {}) or {}))
            yield self
            failed = False
        finally:
            self.close(failed=failed)

    def _store_wandb_run_id(self, run_config: dict[str, Any]) -> None:
        wandb_cfg = (run_config.get("logger") or {}).get("wandb")
        if isinstance(wandb_cfg, dict) and self.wandb_run_id is not None:
            wandb_cfg["id"] = self.wandb_run_id

    def _log_hyperparams(self, run_config: dict[str, Any], model_hparams: dict) -> None:
        identity = self.identity
        hparams = run_hparams(run_config, identity.overrides, identity.choices, model_hparams)
        rest = {k: v for k, v in run_config.items() if k not in NOT_HYPERPARAMETERS}
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):  # its run table: the config as well
                logger.log_hyperparams({**flatten(rest), **hparams})
            else:
                logger.log_hyperparams(hparams)

    def close(self, failed: bool = False) -> None:
        """Best values and HParams metrics to the loggers, then finish wandb."""
        try:
            trainer = self.callback.trainer
            if trainer is not None:
                self.callback.best.update(trainer.callback_metrics)
            self._log_results(trainer)
        finally:
            self._finish_wandb(failed)

    def _log_results(self, trainer: pl.Trainer | None) -> None:
        best = self.callback.best
        results = best.as_metrics()
        step = trainer.global_step if trainer is not None else 0
        for logger in self.loggers:
            if isinstance(logger, GenlabTensorBoardLogger):
                if results:
                    logger.log_metrics(results, step=step)
                logger.declare_metrics(best.metric_names())
                logger.finalize("success")  # flush: the event files are complete now
            elif isinstance(logger, WandbLogger) and results:
                logger.experiment.summary.update(results)  # the run table's best columns

    def _finish_wandb(self, failed: bool) -> None:
        for logger in self.loggers:
            if isinstance(logger, GenlabWandbLogger):
                logger.finish(failed=failed)
        wandb = sys.modules.get("wandb")  # only if something imported it
        if wandb is not None and getattr(wandb, "run", None) is not None:
            wandb.finish(exit_code=1 if failed else 0)
