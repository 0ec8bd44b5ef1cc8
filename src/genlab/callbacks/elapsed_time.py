"""Log wall-clock training time as ``time/elapsed`` (seconds), so curves can be drawn against
time as well as steps (``genlab.compare``; CSV has no time column of its own)."""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl

from genlab.compat import lightning_writes_logs_now


class ElapsedTimeCallback(pl.Callback):
    """Seconds of fitting since the run started, continued across resumes (kept in the
    checkpoint), logged on the steps whose metrics Lightning writes (``log_every_n_steps``) and
    at the end of every validation (after the FID of that epoch: this callback comes after
    ``sample_quality``), so each validation point has its own wall time."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0  # seconds of earlier (resumed) runs
        self.start: float | None = None

    def elapsed(self) -> float:
        return self.offset + (time.monotonic() - self.start if self.start is not None else 0.0)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args) -> None:
        if lightning_writes_logs_now(trainer):  # every self.log costs ~0.2 ms; log when written
            pl_module.log("time/elapsed", self.elapsed(), on_step=True, on_epoch=False)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            pl_module.log("time/elapsed", self.elapsed(), on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.offset = float(state_dict.get("elapsed", 0.0))
