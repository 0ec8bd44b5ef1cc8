"""Collapse diagnostic: the divergence guard's sibling for mode collapse.

:class:`CollapseGuard` watches a coverage number the sample-quality callback logs
(:mod:`genlab.metrics.coverage`: ``val/classes_covered`` by default, ``val/modes_covered`` on
Stacked MNIST, or ``val/coverage_kl`` with ``collapsed_when: above``). When it is on the wrong
side of ``threshold`` for ``patience`` evaluations in a row, the run is *collapsing*:

* a warning is logged (once per collapse episode), naming the value, the threshold and the epoch;
* ``train/collapsed = 1`` is sent to every logger (``0`` at each evaluation before that);
* rank 0 rewrites ``<run dir>/status.json`` (the run directory is ``trainer.default_root_dir``)
  with ``status: collapsed`` and a ``collapse`` record ``{monitor, value, threshold,
  collapsed_when, evaluations, epoch, step}``, keeping what the file already holds, and writes
  the same record to ``<run dir>/collapse.json`` (which nothing else rewrites);
* with ``stop: true`` the run is stopped by raising :class:`CollapseError` (as the divergence
  guard does): ``genlab.train`` records ``failed`` with the collapse message, and a sweep's
  summary line names it.

A recovered run (the value back on the right side) resets the count; ``collapsed`` stays true
(and collapse.json stays) once a collapse was seen. The guard reads the sample-quality
callback's own results, so it sees each evaluation exactly once whatever the hook order; it is
idle (costs nothing, checks nothing) when that callback is absent or does not log the monitored
key (``coverage`` not in ``metrics.metrics``), so it can sit in every run's callbacks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from genlab.checks.errors import ConfigError

log = logging.getLogger(__name__)

#: Where the collapse record is written (beside status.json).
COLLAPSE_FILE = "collapse.json"
DIRECTIONS = ("below", "above")


class CollapseError(RuntimeError):
    """Raised by :class:`CollapseGuard` with ``stop: true`` when the run collapsed."""


class CollapseGuard(pl.Callback):
    """Warn (and record ``collapsed`` in status.json) when coverage stays past a threshold.

    Args:
        monitor: logged name to watch (``val/classes_covered``; it must be one the
            sample-quality callback logs, i.e. ``coverage`` in ``metrics.metrics``).
        threshold: the limit; with ``relative`` a fraction of ``trainer.datamodule.num_classes``.
        relative: ``threshold`` is a fraction of the datamodule's number of classes.
        collapsed_when: ``below`` (value < threshold: counts) or ``above`` (value > threshold:
            KL-like monitors).
        patience: evaluations in a row past the threshold before the run counts as collapsed.
        stop: raise :class:`CollapseError` when it collapses (default: warn and record only).
    """

    def __init__(
        self,
        monitor: str = "val/classes_covered",
        threshold: float = 0.9,
        relative: bool = True,
        collapsed_when: str = "below",
        patience: int = 3,
        stop: bool = False,
    ):
        super().__init__()
        key = "callbacks.collapse"
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(
                f"{key}.monitor", monitor, "a logged metric name, e.g. val/classes_covered"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ConfigError(f"{key}.threshold", threshold, "a number")
        if not isinstance(relative, bool):
            raise ConfigError(f"{key}.relative", relative, "true or false")
        if collapsed_when not in DIRECTIONS:
            raise ConfigError(f"{key}.collapsed_when", collapsed_when, DIRECTIONS)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"{key}.patience", patience, "an integer >= 1")
        if not isinstance(stop, bool):
            raise ConfigError(f"{key}.stop", stop, "true or false")
        self.monitor, self.threshold, self.relative = monitor, float(threshold), relative
        self.collapsed_when, self.patience, self.stop = collapsed_when, patience, stop
        #: Evaluations in a row past the threshold, and whether the run has collapsed.
        self.count = 0
        self.collapsed = False
        #: The record written to status.json / collapse.json at the last collapse (or {}).
        self.details: dict[str, Any] = {}
        self._seen = 0  # sample-quality evaluations already read
        self._warned = False

    # -- state survives a resume --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "collapsed": self.collapsed, "details": dict(self.details)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.count = int(state_dict.get("count", 0))
        self.collapsed = bool(state_dict.get("collapsed", False))
        self.details = dict(state_dict.get("details", {}))

    # -- helpers ------------------------------------------------------------------------------
    def limit(self, trainer: pl.Trainer) -> float:
        """The threshold in the monitor's units (relative: times the datamodule's classes)."""
        if not self.relative:
            return self.threshold
        num_classes = getattr(getattr(trainer, "datamodule", None), "num_classes", None)
        if not num_classes:
            raise ConfigError(
                "callbacks.collapse.relative",
                True,
                "false (with an absolute threshold): the datamodule has no num_classes",
            )
        return self.threshold * float(num_classes)

    def past(self, value: float, limit: float) -> bool:
        """Whether ``value`` is on the collapsed side of ``limit``."""
        return value < limit if self.collapsed_when == "below" else value > limit

    @staticmethod
    def _sample_quality(trainer: pl.Trainer) -> Any:
        from genlab.callbacks.sample_quality import SampleQualityCallback

        return next((c for c in trainer.callbacks if isinstance(c, SampleQualityCallback)), None)

    def update(self, value: float, trainer: pl.Trainer) -> bool:
        """Count one evaluation's ``value``; True when the run (newly or still) collapsed."""
        limit = self.limit(trainer)
        self.count = self.count + 1 if self.past(value, limit) else 0
        if self.count < self.patience:
            self._warned = False
            return False
        self.collapsed = True
        self.details = {
            "monitor": self.monitor,
            "value": float(value),
            "threshold": limit,
            "collapsed_when": self.collapsed_when,
            "evaluations": self.count,
            "epoch": int(trainer.current_epoch),
            "step": int(trainer.global_step),
        }
        return True

    def _record(self, trainer: pl.Trainer) -> None:
        run_dir = getattr(trainer, "default_root_dir", None)
        if not trainer.is_global_zero or not run_dir:
            return
        from genlab.runs.records import update_status

        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
        (path / COLLAPSE_FILE).write_text(json.dumps(self.details, indent=2) + "\n")
        update_status(path, "collapsed", collapse=self.details)

    def message(self) -> str:
        d = self.details
        side = "<" if self.collapsed_when == "below" else ">"
        return (
            f"mode collapse: {d['monitor']} = {d['value']:g} {side} {d['threshold']:g} for "
            f"{d['evaluations']} evaluations in a row (epoch {d['epoch']}, step {d['step']})"
        )

    # -- hooks --------------------------------------------------------------------------------
    def _check(self, trainer: pl.Trainer) -> None:
        sq = self._sample_quality(trainer)
        if sq is None or sq.num_evaluations <= self._seen or not self.watching(trainer):
            return
        self._seen = sq.num_evaluations
        prefix = sq.prefix
        name = self.monitor[len(prefix) :] if self.monitor.startswith(prefix) else self.monitor
        if name not in sq.last_results:
            return
        collapsed = self.update(float(sq.last_results[name]), trainer)
        for logger in trainer.loggers:
            logger.log_metrics({"train/collapsed": float(collapsed)}, step=trainer.global_step)
        if not collapsed:
            return
        if not self._warned:
            log.warning(self.message())
            self._warned = True
        self._record(trainer)
        if self.stop:
            raise CollapseError(self.message())

    def watching(self, trainer: pl.Trainer) -> bool:
        """Whether the sample-quality callback logs ``monitor`` (else the guard does nothing)."""
        sq = self._sample_quality(trainer)
        return sq is not None and sq.every_n_epochs > 0 and self.monitor in sq.logged_names()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sq = self._sample_quality(trainer)
        self._seen = sq.num_evaluations if sq is not None else 0
        if self.watching(trainer):
            self.limit(trainer)  # relative threshold without classes: ConfigError before training
        else:
            log.debug(
                "collapse guard idle: %s is not logged (metrics.metrics lacks coverage)",
                self.monitor,
            )

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)
