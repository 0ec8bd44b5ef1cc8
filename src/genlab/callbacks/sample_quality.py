"""Log FID / KID / IS / precision / recall of generated samples during training.

:class:`SampleQualityCallback` generates ``num_samples`` images with ``pl_module.generate`` every
``every_n_epochs`` epochs, scores them with :class:`genlab.metrics.SampleQuality` against the
cached reference features of ``trainer.datamodule`` and logs ``val/fid``, ``val/kid``,
``val/kid_std``, ``val/is``, ``val/is_std``, ``val/precision``, ``val/recall`` with
``pl_module.log(..., sync_dist=False)``, so ``ModelCheckpoint(monitor="val/fid", mode="min")``
can keep the best model.

What those numbers measured (reference data, split and fingerprint, N real, N fake, feature
network with its weights' sha256, KID subsets: :meth:`genlab.metrics.SampleQuality.protocol`) is
written by rank 0 to ``<trainer.default_root_dir>/sample_quality.json`` (the run directory under
``genlab.train``; :mod:`genlab.report.protocol`), which ``genlab.compare`` reads.

With ``at_start=True`` the model is also scored once before its first training step (a fresh
run, global step 0: the untrained generator), with the same settings, seed and latents, and
logged as ``untrained/fid``, ``untrained/kid``, ... at step 0: the level a short run's
``val/fid`` must be read against (an untrained generator already scores a finite FD).
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn

from genlab.checks.errors import ConfigError
from genlab.metrics.sample_quality import OUTPUT_KEYS, SampleQuality, eval_mode
from genlab.report.protocol import PROTOCOL_FILE, record_protocol

#: Prefix of the untrained model's scores (``at_start=True``), logged at step 0.
START_PREFIX = "untrained/"


class SampleQualityCallback(pl.Callback):
    """Sample-quality metrics as a Lightning callback.

    When: at the end of the (non-sanity-check) validation epoch when the run validates that epoch,
    otherwise at the end of the training epoch (GANs often have no validation loop); at most once
    per epoch, on epochs where ``(epoch + 1) % every_n_epochs == 0``. ``trainer.validate()`` always
    computes. Reference features are warmed up in ``on_fit_start`` so the first epoch is not
    charged with them. Use ``ModelCheckpoint(every_n_epochs=...)`` with the same period when
    monitoring these keys with ``every_n_epochs > 1``.

    Distributed: only global rank 0 generates and computes (torchmetrics states never sync); the
    results (or rank 0's error) are then sent to every rank with ``trainer.strategy.broadcast``, a
    collective every rank reaches, and every rank logs the same values with ``sync_dist=False``.
    No rank waits on a collective that another rank skips, so nothing deadlocks under DDP.

    Memory: the only state kept across epochs is the fixed-size reference features, the feature
    network (on ``pl_module.device``, eval mode, frozen, used under ``no_grad``) and the last
    results; torchmetrics states are reset after every computation.

    Args:
        every_n_epochs: compute every N epochs (``0`` disables the callback).
        prefix: prefix of the logged names (``"val/"``).
        kid_subsets: 10 by default here (100 in :class:`~genlab.metrics.SampleQuality`, the
            offline-evaluation protocol): 100 subsets of 1000 cost ~3 s on 2 CPU cores, 10% of an
            epoch on its own; 10 keep the mean and give a usable std for monitoring.
        protocol_file: where rank 0 records the protocol of the logged numbers (JSON); a
            relative path is relative to ``trainer.default_root_dir``; ``None`` = nowhere.
        at_start: also score the model before training (``on_train_start`` of a fresh run,
            global step 0; skipped when resuming) and send the results straight to the loggers
            as ``untrained/<metric>`` at step 0 (:data:`START_PREFIX`); kept in
            :attr:`start_results`. Not in ``trainer.callback_metrics``: checkpoint monitors and
            best-value tracking see only the trained model's ``val/*``.
        settings: the other keyword arguments of :class:`genlab.metrics.SampleQuality`
            (``features``, ``dataset``, ``metrics``, ``num_samples``, ``batch_size``,
            ``num_real``, ``real_split``, ``cache_dir``, ``kid_subset_size``, ``is_splits``,
            ``pr_k``, ``seed``, ``inception_net``, ``inception_weights``), with its defaults;
            not ``device`` (the module's); ``dataset=None`` uses ``trainer.datamodule.name``.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        *,
        kid_subsets: int = 10,
        prefix: str = "val/",
        protocol_file: str | os.PathLike | None = PROTOCOL_FILE,
        at_start: bool = False,
        **settings: Any,
    ):
        super().__init__()
        # SampleQuality's keyword arguments but its device (the module's, per computation)
        allowed = set(inspect.signature(SampleQuality).parameters) - {"device"}
        unknown = [key for key in settings if key not in allowed]
        if unknown:
            name = "SampleQualityCallback.__init__()"
            raise TypeError(f"{name} got an unexpected keyword argument {unknown[0]!r}")
        if (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or every_n_epochs < 0
        ):
            raise ConfigError(
                "metrics.every_n_epochs", every_n_epochs, "an integer >= 0 (0 disables)"
            )
        if not isinstance(at_start, bool):
            raise ConfigError("callbacks.sample_quality.at_start", at_start, "true or false")
        self.every_n_epochs = every_n_epochs
        self.at_start = at_start
        #: The untrained model's results (``at_start=True``, fresh run), without prefix.
        self.start_results: dict[str, float] = {}
        self.prefix = str(prefix)
        self.protocol_file = None if protocol_file in (None, "") else Path(protocol_file)
        self.sample_quality = SampleQuality(kid_subsets=kid_subsets, **settings)
        self._last_epoch: int | None = None
        #: Last logged values (without prefix) and wall time (s) of the last computation.
        self.last_results: dict[str, float] = {}
        #: What the last logged values measured (:meth:`SampleQuality.protocol`), on every rank.
        self.last_protocol: dict[str, Any] = {}
        self.last_duration: float = 0.0
        #: Number of computations and their total wall time (s), for overhead measurements.
        self.num_evaluations: int = 0
        self.total_duration: float = 0.0

    # ------------------------------------------------------------------ helpers
    def _due(self, trainer: pl.Trainer) -> bool:
        if self.every_n_epochs == 0 or trainer.sanity_checking:
            return False
        if self._last_epoch == trainer.current_epoch:
            return False
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _datamodule(self, trainer: pl.Trainer) -> Any:
        dm = getattr(trainer, "datamodule", None)
        if dm is None or not (hasattr(dm, "images") and hasattr(dm, "fingerprint")):
            raise RuntimeError(
                "SampleQualityCallback needs trainer.datamodule with images(split, max_images), "
                "fingerprint(split), name, image_size and channels (the genlab datamodule contract)"
            )
        return dm

    def _compute(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> tuple[dict[str, float], dict[str, Any]]:
        dm = self._datamodule(trainer)
        with eval_mode(pl_module), torch.no_grad():
            results = self.sample_quality.evaluate(pl_module.generate, dm, device=pl_module.device)
        return results, self.sample_quality.protocol(dm)

    def logged_names(self) -> list[str]:
        """``val/fid``, ``val/kid``, ``val/kid_std``, ...: the names this callback logs."""
        return [
            f"{self.prefix}{key}" for m in self.sample_quality.metrics for key in OUTPUT_KEYS[m]
        ]

    def protocol_path(self, trainer: pl.Trainer) -> Path | None:
        """Where the protocol is recorded (None: nowhere)."""
        if self.protocol_file is None or self.protocol_file.is_absolute():
            return self.protocol_file
        return Path(trainer.default_root_dir) / self.protocol_file

    def _evaluate(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, record: bool
    ) -> dict[str, float]:
        """Rank 0 computes (and, with ``record``, records the protocol); every rank gets the
        results (or rank 0's error, raised on every rank)."""
        results: dict[str, float] | None = None
        protocol: dict[str, Any] | None = None
        error: str | None = None
        exc: BaseException | None = None
        if trainer.is_global_zero:
            try:
                results, protocol = self._compute(trainer, pl_module)
                path = self.protocol_path(trainer)
                if record and path is not None:
                    record_protocol(path, protocol, trainer.current_epoch, self.logged_names())
            except Exception as e:  # re-raised below, after telling the other ranks
                error, exc = f"{type(e).__name__}: {e}", e
        if trainer.world_size > 1:
            results, protocol, error = trainer.strategy.broadcast((results, protocol, error), src=0)
        if exc is not None:
            raise exc
        if error is not None:
            raise RuntimeError(f"sample-quality metrics failed on rank 0: {error}")
        assert results is not None and protocol is not None
        self.last_protocol = dict(protocol)
        return results

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_epoch = trainer.current_epoch
        t0 = time.perf_counter()
        results = self._evaluate(trainer, pl_module, record=True)
        for name in self.sample_quality.metrics:
            for key in OUTPUT_KEYS[name]:
                pl_module.log(
                    f"{self.prefix}{key}",
                    float(results[key]),
                    on_step=False,
                    on_epoch=True,
                    prog_bar=key in ("fid", "is"),
                    sync_dist=False,
                    batch_size=1,
                )
        self.last_results = dict(results)
        self.last_duration = time.perf_counter() - t0
        self.num_evaluations += 1
        self.total_duration += self.last_duration

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_epoch = None
        if self.every_n_epochs and self._no_classifier_for_the_data(trainer):
            self.every_n_epochs = 0  # the default metrics on data genlab has no classifier for
        if self.every_n_epochs and trainer.is_global_zero:
            self.sample_quality.real_features(self._datamodule(trainer), device=pl_module.device)

    def _no_classifier_for_the_data(self, trainer: pl.Trainer) -> bool:
        """True (with one warning) when the metrics use classifier features of the datamodule's
        own name (``metrics.dataset=null``) and genlab ships no classifier for it (e.g.
        ``data=shapes2d``): training goes on without val/fid & co. rather than fail. A dataset
        named in ``metrics.dataset`` still has to exist (ConfigError)."""
        from genlab.metrics.classifier import available_classifiers
        from genlab.metrics.coverage import STACKED_DATASETS

        quality = self.sample_quality
        if quality.features != "classifier" or quality.dataset is not None:
            return False
        name = getattr(self._datamodule(trainer), "name", None)
        if name is None or name in available_classifiers() or name in STACKED_DATASETS:
            return False
        rank_zero_warn(
            f"no sample-quality metrics for data {name!r}: genlab ships no classifier for it "
            f"(shipped: {', '.join(available_classifiers())}); set metrics.features=inception "
            "for Inception FID, or metrics.every_n_epochs=0 to silence this"
        )
        return True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.at_start or self.every_n_epochs == 0 or trainer.global_step != 0:
            return
        results = self._evaluate(trainer, pl_module, record=False)
        self.start_results = dict(results)
        logged = {
            f"{START_PREFIX}{key}": float(results[key])
            for name in self.sample_quality.metrics
            for key in OUTPUT_KEYS[name]
        }
        for logger in trainer.loggers:  # straight to the loggers: step 0, not an epoch's value
            logger.log_metrics(logged, step=0)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.every_n_epochs == 0:
            return
        if trainer.state.fn == "fit" and not self._due(trainer):
            return
        self._run(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due(trainer):
            self._run(trainer, pl_module)
