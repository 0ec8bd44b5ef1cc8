"""What every genlab model shares: typed config, checkpoint metadata, the ``generate`` API."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import hydra.utils
import lightning.pytorch as pl
import torch

import genlab
from genlab.utils.config import config_from_kwargs


def build_optimizer(spec: dict[str, Any], params) -> torch.optim.Optimizer:
    """Instantiate an optimizer from a ``{_target_: ..., lr: ...}`` spec for ``params``."""
    return hydra.utils.instantiate({**spec, "_partial_": True})(params)


class GenerativeModule(pl.LightningModule):
    """Base class. Subclasses set ``config_class`` (a dataclass) and ``family`` ("gan"/"vae").

    Hyperparameters are the config dataclass as a plain dict, so a checkpoint alone rebuilds
    the model (``genlab.sample``) and loads with ``torch.load(weights_only=True)``.
    """

    config_class: ClassVar[type]
    family: ClassVar[str]

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.config = config_from_kwargs(self.config_class, kwargs)
        self.save_hyperparameters(dataclasses.asdict(self.config))
        self.run_config: dict[str, Any] | None = None  # the resolved run config, set by train()

    # -- sampling API used by callbacks, metrics and the CLIs ---------------------------------
    def sample_latent(self, num_samples: int, generator: torch.Generator | None = None):
        """Prior draws z (num_samples, latent_dim) on the module's device."""
        z = torch.randn(num_samples, self.config.latent_dim, generator=generator)
        return z.to(self.device)

    def generate(self, num_samples: int, z: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1]."""
        raise NotImplementedError

    # -- checkpoint metadata ------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["genlab"] = {
            "model_class": type(self).__name__,
            "family": self.family,
            "version": genlab.__version__,
            "counters": self.counters(),
            "run_config": self.run_config,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.load_counters(checkpoint.get("genlab", {}).get("counters", {}))

    def counters(self) -> dict[str, int]:
        """Schedule counters that must survive a resume."""
        return {}

    def load_counters(self, counters: dict[str, int]) -> None:
        for name, value in counters.items():
            setattr(self, name, int(value))
