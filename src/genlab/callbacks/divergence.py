"""Divergence guard: a NaN/Inf loss or gradient norm stops the run before it spoils anything.

Checks happen after ``backward`` and before every optimizer step (Lightning calls
``on_before_optimizer_step`` for manual optimisation too, so both GAN optimizers are covered):

* the loss passed to ``backward`` (``on_before_backward``) must be finite;
* the total gradient norm of the parameters of the optimizer about to step must be finite
  (skipped under ``16-mixed``, where the GradScaler itself skips overflowing steps).

A bad step is never applied: its gradients are dropped (``grad = None``, so the optimizer
leaves those parameters and their state alone). Up to ``max_skips`` bad steps are skipped
(with a warning each); the next one raises :class:`DivergenceError`, which names the step and
the loss. Before that, ``train/diverged = 1`` is logged to every logger; ``genlab.train``
writes ``status: diverged`` to ``<run dir>/status.json`` and exits with code 3.

Checkpoints: saving weights that are not finite raises :class:`DivergenceError` instead of
writing the file, so ``last.ckpt`` always holds the last good weights.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl
import torch

from genlab.checks.errors import ConfigError, DivergenceError

log = logging.getLogger(__name__)


def optimizer_part(pl_module: pl.LightningModule, optimizer: Any, num_optimizers: int) -> str:
    """``"model"`` for a single optimizer, else the name of the child module (``generator``,
    ``discriminator``) that owns the optimizer's first parameter."""
    if num_optimizers <= 1:
        return "model"
    optimizer = getattr(optimizer, "optimizer", optimizer)  # LightningOptimizer -> torch
    first = next((p for g in optimizer.param_groups for p in g["params"]), None)
    for name, child in pl_module.named_children():
        if any(p is first for p in child.parameters()):
            return name
    return "model"


def nonfinite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of floating-point tensors in ``state_dict`` holding a NaN or Inf."""
    return [
        name
        for name, t in state_dict.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(t.isfinite().all())
    ]


class DivergenceGuard(pl.Callback):
    """Stop (or skip up to ``max_skips`` bad steps) on a NaN/Inf loss or gradient norm.

    Args:
        max_skips: bad optimizer steps skipped before the run is stopped (0 = stop at the first).
        check_grad_norm: also check the gradient norm (not only the loss).
    """

    def __init__(self, max_skips: int = 0, check_grad_norm: bool = True):
        super().__init__()
        if isinstance(max_skips, bool) or not isinstance(max_skips, int) or max_skips < 0:
            raise ConfigError("callbacks.divergence.max_skips", max_skips, "an integer >= 0")
        self.max_skips, self.check_grad_norm = max_skips, bool(check_grad_norm)
        self.skipped = 0
        self._bad_loss: float | None = None
        self._batch_idx = -1

    # -- state survives a resume (the bound counts over the whole run) -----------------------
    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped = int(state_dict.get("skipped", 0))

    # -- checks ------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_idx = batch_idx

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        value = loss.detach().float()
        if value.numel() and not bool(value.isfinite().all()):
            self._bad_loss = float(value.flatten()[0])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        bad_loss, self._bad_loss = self._bad_loss, None
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        grad_norm = None
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if bad_loss is None and self.check_grad_norm and scaler is None and params:
            grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
            if math.isfinite(grad_norm):
                return
        elif bad_loss is None:
            return
        part = optimizer_part(pl_module, optimizer, len(trainer.optimizers))
        loss_name = pl_module.loss_parts.get(part, f"loss of {part}")  # the model protocol
        what = f"{loss_name}={bad_loss}" if bad_loss is not None else (
            f"gradient norm of the {part} step ({loss_name}) = {grad_norm}"
        )  # fmt: skip
        where = (
            f"epoch {trainer.current_epoch}, batch {self._batch_idx}, "
            f"global step {trainer.global_step}"
        )
        for p in params:  # never apply the bad update
            p.grad = None
        if self.skipped < self.max_skips:
            self.skipped += 1
            log.warning(
                f"Non-finite {what} at {where}: step skipped "
                f"({self.skipped}/{self.max_skips} allowed by callbacks.divergence.max_skips)"
            )
            return
        self._log_diverged(trainer)
        raise DivergenceError(
            f"training diverged at {where}: {what}"
            + (f" after {self.skipped} skipped step(s)" if self.skipped else "")
            + "; the last good checkpoint was kept (callbacks.divergence.max_skips="
            f"{self.max_skips} bad steps may be skipped)",
            step=trainer.global_step,
            what=what,
        )

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        bad = nonfinite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            self._log_diverged(trainer)
            raise DivergenceError(
                f"training diverged: weights {', '.join(bad[:5])} are not finite at global step "
                f"{trainer.global_step}; refusing to overwrite the last good checkpoint",
                step=trainer.global_step,
                what="weights",
            )

    @staticmethod
    def _log_diverged(trainer) -> None:
        for logger in trainer.loggers:
            try:
                logger.log_metrics({"train/diverged": 1.0}, step=trainer.global_step)
                logger.save()
            except Exception as err:  # noqa: BLE001 - never hide the divergence itself
                log.warning(f"could not log train/diverged to {type(logger).__name__}: {err}")
