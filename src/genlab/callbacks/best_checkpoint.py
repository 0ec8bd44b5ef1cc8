"""``best.ckpt``: the checkpoint of the best value of one logged metric, kept across resumes.

Turned on by naming the metric: ``python -m genlab.train callbacks.best_checkpoint.monitor=val/fid``
(``mode`` min/max, inferred from the name when not given: FID, KID, losses, NLL, bits/dim -> min;
IS, precision, recall, ELBO, accuracy -> max). After every validation (or every training epoch
when there is none) whose value of the metric is strictly better than the best so far, it writes
``<dirpath>/best.ckpt`` with ``trainer.save_checkpoint`` (through the trainer's CheckpointIO:
genlab's ``AtomicCheckpointIO`` writes a temp file and renames it, so a kill never leaves half a
file). It is a full checkpoint, so ``genlab.sample`` / ``genlab.eval`` / ``ckpt_path=`` take it
like ``last.ckpt``.

The best value, epoch and step are callback state stored in every checkpoint (``last.ckpt``
included: this callback runs before Lightning's ModelCheckpoint, which Lightning orders last),
so a run resumed with ``ckpt_path=`` only replaces ``best.ckpt`` with a better one. A resumed
run writes into a new run directory: ``best.ckpt`` of the run it resumed from (beside the
``ckpt_path`` file, when it holds that same best) is copied there first. At the end of fit the
best epoch and value are logged.

The monitored value is taken from global rank 0 and broadcast, so all ranks of a multi-process
run decide together (saving is a collective).
"""

from __future__ import annotations

import difflib
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from genlab.checks.errors import ConfigError
from genlab.runs.files import atomic_write

log = logging.getLogger(__name__)

KEY = "callbacks.best_checkpoint"
# First word of the metric's last path part (``val/loss_d`` -> ``loss``), by direction.
LOWER_IS_BETTER = ("fid", "kid", "loss", "nll", "bpd", "bits", "recon", "kl", "mse", "mae", "error")
HIGHER_IS_BETTER = ("is", "precision", "recall", "elbo", "acc", "accuracy", "f1", "psnr", "ssim")
# Whole names whose first word does not tell (mode coverage, genlab.metrics.coverage).
EXACT = {
    **dict.fromkeys(("coverage_kl", "coverage_kl_uniform", "class_fid", "class_fid_max"), "min"),
    **dict.fromkeys(("classes_covered", "modes_covered"), "max"),
}


def infer_mode(monitor: str) -> str:
    """``min`` or ``max`` from a metric name (``val/fid`` -> min, ``val/is`` -> max)."""
    leaf = monitor.rsplit("/", 1)[-1].lower()
    if leaf in EXACT:
        return EXACT[leaf]
    words = leaf.split("_")
    if words[0] in LOWER_IS_BETTER or "loss" in words:
        return "min"
    if words[0] in HIGHER_IS_BETTER:
        return "max"
    raise ConfigError(
        f"{KEY}.mode",
        None,
        f"min or max (cannot tell from the name {monitor!r} whether lower is better)",
    )


def _copy_atomically(source: Path, target: Path) -> None:
    with open(source, "rb") as src:
        atomic_write(target, lambda out: shutil.copyfileobj(src, out))


class BestCheckpoint(pl.Callback):
    """Write ``dirpath/filename`` whenever ``monitor`` reaches a new best value.

    Args:
        dirpath: checkpoint directory (``<run dir>/checkpoints``).
        filename: file name of the best checkpoint.
        monitor: the logged metric (e.g. ``val/fid``); ``None`` turns the callback off.
        mode: ``min`` or ``max``; ``None`` infers it from the metric name (:func:`infer_mode`).
    """

    def __init__(
        self,
        dirpath: str,
        filename: str = "best.ckpt",
        monitor: str | None = None,
        mode: str | None = None,
    ):
        super().__init__()
        if monitor is not None and (not isinstance(monitor, str) or not monitor):
            raise ConfigError(f"{KEY}.monitor", monitor, "null (off) or a logged metric name")
        if mode not in (None, "min", "max"):
            raise ConfigError(f"{KEY}.mode", mode, "min, max or null (from the metric name)")
        if not isinstance(filename, str) or not filename.endswith(".ckpt") or "/" in filename:
            raise ConfigError(f"{KEY}.filename", filename, "a file name ending in .ckpt")
        self.monitor = monitor
        self.mode = (mode or infer_mode(monitor)) if monitor else mode
        self.path = Path(dirpath) / filename
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_step: int | None = None
        self.written = False  # best.ckpt of this run dir holds the best (written or copied)
        self._warned_missing = False
        self._validated_epoch: int | None = None

    # -- state ---------------------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        """Per metric and mode: resuming with another monitor starts a fresh best."""
        return f"{type(self).__qualname__}{{'monitor': {self.monitor!r}, 'mode': {self.mode!r}}}"

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        value = state_dict.get("best_value")
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            self.best_value = float(value)
            self.best_epoch = _int_or_none(state_dict.get("best_epoch"))
            self.best_step = _int_or_none(state_dict.get("best_step"))

    # -- hooks ---------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.written = self.path.is_file() and self.best_value is not None
        self._warned_missing = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """After a resume (callback state restored): bring the resumed run's best.ckpt along."""
        if not self.monitor or self.best_value is None or self.written or not trainer.ckpt_path:
            return
        source = Path(trainer.ckpt_path).parent / self.path.name
        if trainer.is_global_zero and source.resolve() != self.path.resolve():
            if self._holds_current_best(source):
                _copy_atomically(source, self.path)
                log.info(f"Copied the best checkpoint of the resumed run: {source} -> {self.path}")
            else:
                log.info(
                    f"{self.monitor} best so far: {self.best_value:.6g} at epoch "
                    f"{self.best_epoch} (resumed run; its {self.path.name} is not at {source}); "
                    f"{self.path} is written when {self.monitor} improves"
                )
        self.written = bool(trainer.strategy.broadcast(self.path.is_file(), src=0))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self._validated_epoch = trainer.current_epoch
        self._update(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._validated_epoch != trainer.current_epoch:  # no validation ran this epoch
            self._update(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.monitor or not trainer.is_global_zero or trainer.fast_dev_run:
            return
        if self.best_value is None:
            log.warning(f"No {self.path.name}: {KEY}.monitor={self.monitor} was never logged")
            return
        where = self.path if self.written else "a run resumed from; not beaten since"
        log.info(
            f"Best checkpoint: {where} (epoch {self.best_epoch}, step {self.best_step}, "
            f"{self.monitor}={self.best_value:.6g}, {self.mode})"
        )

    # -- internals -----------------------------------------------------------------------------
    def _update(self, trainer: pl.Trainer) -> None:
        if not self.monitor or trainer.fast_dev_run:
            return
        value = trainer.callback_metrics.get(self.monitor)
        value = float(value) if value is not None else None
        value = trainer.strategy.broadcast(value, src=0)  # all ranks decide alike
        if value is None:
            self._warn_missing(trainer)
            return
        if not math.isfinite(value) or not self._improves(value):
            return
        self.best_value = value
        self.best_epoch, self.best_step = trainer.current_epoch, trainer.global_step
        trainer.save_checkpoint(self.path, weights_only=False)  # state above is inside it
        self.written = True
        log.info(f"New best {self.monitor}={value:.6g} at epoch {self.best_epoch}: {self.path}")

    def _improves(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.mode == "min" else value > self.best_value

    def _warn_missing(self, trainer: pl.Trainer) -> None:
        if self._warned_missing or self.best_value is not None or not trainer.is_global_zero:
            return
        self._warned_missing = True
        logged = sorted(str(k) for k in trainer.callback_metrics)
        close = difflib.get_close_matches(self.monitor, logged, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        log.warning(
            f"{KEY}.monitor={self.monitor} was not logged at epoch {trainer.current_epoch} "
            f"(logged: {', '.join(logged) or 'nothing'}{hint}); {self.path.name} is written "
            f"once it is"
        )

    def _holds_current_best(self, source: Path) -> bool:
        """``source`` is a genlab checkpoint whose state of this callback is the restored best."""
        if not source.is_file():
            return False
        try:  # tensors and plain containers only: nothing in the file runs
            checkpoint = torch.load(source, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - unreadable or not a checkpoint: not the best one
            return False
        callbacks = checkpoint.get("callbacks") if isinstance(checkpoint, dict) else None
        state = callbacks.get(self.state_key) if isinstance(callbacks, dict) else None
        if not isinstance(state, dict):
            return False
        return (state.get("best_value"), state.get("best_epoch")) == (
            self.best_value,
            self.best_epoch,
        )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
