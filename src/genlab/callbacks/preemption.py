"""Resumable ``last.ckpt`` on SIGTERM / SIGINT (Ctrl-C, cluster pre-emption), periodically, and
at the end of training.

Lightning on its own only *notices* SIGTERM (``trainer.received_sigterm``): it finishes the
current batch, raises ``SIGTERMException`` and saves nothing; Ctrl-C raises
``KeyboardInterrupt`` wherever the program is (possibly mid optimizer step) and saves nothing.

This callback:

* turns the first SIGINT into the same graceful stop as SIGTERM (the current batch finishes,
  a second Ctrl-C interrupts at once without saving);
* on that stop writes ``<dirpath>/last.ckpt`` through the trainer's CheckpointIO (atomic:
  temp file + rename) with the loop, optimizer, RNG and data-order state, so
  ``ckpt_path=last`` continues exactly where the run stopped;
* optionally also writes ``last.ckpt`` every ``every_n_train_batches`` training batches and/or
  every ``every_n_minutes`` minutes, so that after a ``kill -9`` at most that much work is lost
  (mid-epoch checkpoints resume exactly too). Under multi-process training all ranks save
  together: the batch count is the same on every rank, and for the clock, which differs
  between ranks, all save as soon as one rank's clock says a save is due;
* when training ends normally (``max_epochs``, ``max_steps``, ``max_time``, early stopping)
  writes ``last.ckpt`` once more, the final state: ModelCheckpoint's ``save_last`` copy is
  written only with a periodic checkpoint (every ``callbacks.model_checkpoint.every_n_epochs``),
  so a run of 12 epochs with checkpoints every 5 would otherwise end with the weights of epoch
  10 in ``last.ckpt``, and ``genlab.eval`` / ``genlab.sample`` / ``ckpt_path=last`` would read
  those. (One extra write when the last epoch was a checkpoint epoch anyway.)

``genlab.train`` then records ``status: interrupted`` in ``<run dir>/status.json`` and exits
with code 128 + signal number (143 for SIGTERM, 130 for SIGINT).

SLURM: with ``hydra/launcher=submitit_slurm`` Lightning's ``SLURMEnvironment`` (auto-detected)
handles the requeue signal (``SIGUSR1`` by default; ask for it with
``hydra.launcher.additional_parameters.signal=USR1@90``): it saves
``<default_root_dir>/hpc_ckpt_N.ckpt``, requeues the job and Lightning restores that file
automatically when the requeued job starts in the same run directory.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genlab.checks.errors import ConfigError
from genlab.compat import request_graceful_stop
from genlab.runs.files import remove_orphaned_temp_files

log = logging.getLogger(__name__)


class PreemptionCheckpoint(pl.Callback):
    """Save ``dirpath/filename`` on SIGTERM/SIGINT and every N batches / M minutes.

    Args:
        dirpath: checkpoint directory (the ModelCheckpoint one, so ``last.ckpt`` is shared).
        filename: file name of the resumable checkpoint.
        every_n_train_batches: also save every N training batches (0 = off).
        every_n_minutes: also save when this many minutes passed since the last save (null = off).
    """

    def __init__(
        self,
        dirpath: str,
        filename: str = "last.ckpt",
        every_n_train_batches: int = 0,
        every_n_minutes: float | None = None,
    ):
        super().__init__()
        n = every_n_train_batches
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError("callbacks.preemption.every_n_train_batches", n, "an integer >= 0")
        minutes = every_n_minutes
        if minutes is not None and (isinstance(minutes, bool) or not minutes > 0):
            raise ConfigError("callbacks.preemption.every_n_minutes", minutes, "null or > 0")
        self.path = Path(dirpath) / filename
        self.every_n_train_batches, self.every_n_minutes = n, minutes
        self.signum: int | None = None  # the signal that stopped the run
        self.saved_on_signal: Path | None = None
        self._batches = 0
        self._last_save = time.monotonic()
        self._previous: dict[int, Any] = {}
        self._saved_last_at: int | None = None  # global step of this callback's newest save

    # -- signal handling ---------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # SIGTERM from the start of fit (Lightning registers its own handler later and chains
        # to ours); SIGINT only once training runs (a Ctrl-C during start-up just aborts).
        if stage == "fit":
            self.signum, self.saved_on_signal, self._saved_last_at = None, None, None
            self._install(trainer, signal.SIGTERM)
            if trainer.is_global_zero:  # temp files of saves a kill -9 interrupted
                remove_orphaned_temp_files(self.path.parent)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install(trainer, signal.SIGINT)
        if self.signum is not None:  # Lightning resets its flag when it registers its handler
            request_graceful_stop(trainer)

    def _install(self, trainer: pl.Trainer, signum: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        previous = signal.getsignal(signum)
        while hasattr(previous, "genlab_previous"):  # left behind by an earlier fit
            previous = previous.genlab_previous
        self._previous[signum] = previous

        def handler(signum, frame):
            if trainer.state.status != TrainerStatus.RUNNING:  # fit is over: behave as before
                if callable(previous):
                    return previous(signum, frame)
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
                os.kill(os.getpid(), signum)  # the default action (terminate / ignore)
                return None
            if signum == signal.SIGINT and self.signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now, no checkpoint
            if self.signum is None:
                self.signum = signum
                log.warning(
                    f"Received {signal.Signals(signum).name}: stopping after the current batch "
                    f"and saving {self.path}" + (" (Ctrl-C again to abort)" if signum == 2 else "")
                )
            if signum == signal.SIGTERM and callable(previous):
                previous(signum, frame)  # e.g. a cluster launcher's own handler
            request_graceful_stop(trainer)  # Lightning's graceful stop
            return None

        handler.genlab_previous = previous
        signal.signal(signum, handler)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                if previous is not None:
                    signal.signal(signum, previous)
        self._previous = {}

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return  # a crash or divergence: keep the last good checkpoint as it is
        if self.signum is None:
            self.signum = signal.SIGTERM
        self._save(trainer)
        self.saved_on_signal = self.path
        log.warning(f"Saved resumable checkpoint {self.path}")

    # -- periodic saves ----------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._batches += 1
        due = self.every_n_train_batches and self._batches % self.every_n_train_batches == 0
        if self.every_n_minutes is not None:
            late = time.monotonic() - self._last_save >= 60 * self.every_n_minutes
            if trainer.world_size > 1:  # saving is a collective: all ranks or none
                late = trainer.strategy.reduce_boolean_decision(late, all=False)
            due = due or late
        if due and not trainer.sanity_checking and not trainer.fast_dev_run:
            self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_save = time.monotonic()
        self._saved_last_at = trainer.global_step

    # -- the end of training -----------------------------------------------------------------
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking or self.signum is not None:
            return
        if self._saved_last_at != trainer.global_step:
            self._save(trainer)
            log.info(
                f"Saved {self.path} at the end of training (global step {trainer.global_step})"
            )
