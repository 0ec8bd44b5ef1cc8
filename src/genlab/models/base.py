"""What every genlab model shares: typed config, checkpoint metadata, the ``generate`` API."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import hydra.utils
import lightning.pytorch as pl
import torch

import genlab
from genlab.utils.config import config_from_kwargs
from genlab.utils.rng import get_rng_states, set_rng_states
from genlab.utils.run_info import environment_info


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
        """``checkpoint["genlab"]``: class, family, version, counters, the resolved run config,
        the environment (git commit, package versions) and every RNG state (exact resume)."""
        checkpoint["genlab"] = {
            "model_class": type(self).__name__,
            "family": self.family,
            "version": genlab.__version__,
            "counters": self.counters(),
            "run_config": self.run_config,
            "env": environment_info(),
            "rng_states": get_rng_states(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.load_counters(checkpoint.get("genlab", {}).get("counters", {}))
        self._resume_rng_states = checkpoint.get("genlab", {}).get("rng_states")

    def on_train_start(self) -> None:
        """Restore the checkpoint's RNG states right before training continues (not at load
        time: a sanity check run in between would consume them)."""
        states = getattr(self, "_resume_rng_states", None)
        self._resume_rng_states = None
        if states is not None:
            set_rng_states(states)
            self._resume_rng = None  # supersedes a subclass's own (epoch-start) RNG restore

    def on_validation_start(self) -> None:
        """Validation (and the sanity check) leave the training RNG streams as they were, so
        training is the same whether, how often and how long validation runs (a resumed run
        may skip the validation the crashed run did before its checkpoint)."""
        self._rng_before_validation = get_rng_states()

    def on_validation_end(self) -> None:
        states = getattr(self, "_rng_before_validation", None)
        self._rng_before_validation = None
        if states is not None:
            set_rng_states(states)

    def counters(self) -> dict[str, int]:
        """Schedule counters that must survive a resume."""
        return {}

    def load_counters(self, counters: dict[str, int]) -> None:
        for name, value in counters.items():
            setattr(self, name, int(value))
