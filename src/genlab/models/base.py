"""The model protocol: what every genlab family offers and all that the CLIs and callbacks use.

A family is a :class:`GenerativeModule` subclass registered under its ``family`` name
(:mod:`genlab.models.registry`). ``genlab.train``/``sample``/``eval``/``compare`` and every
callback use only the names below (no family names, no attribute probing):

* ``generate(num_samples, *, generator=None, **options)`` -> images (N, C, H, W) in [0, 1],
  ``options`` from :attr:`GenerativeModule.sample_options` (e.g. truncation, temperature,
  labels, use_ema);
* ``latents`` / ``generate_from_latents`` (interpolation; ``latents`` None = no latent space),
  ``reconstruct`` when :attr:`~GenerativeModule.supports_reconstruction`;
* ``evaluation_terms(datamodule, settings)``: the family's own held-out numbers
  (likelihoods for VAEs, nothing for GANs);
* :attr:`~GenerativeModule.loss_parts` (the divergence guard), ``schedule_step()`` (the step
  counter schedules use), ``counters()``/``load_counters()`` (resumable counters).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import hydra.utils
import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn

import genlab
from genlab.checks.errors import ConfigError
from genlab.checks.values import config_from_kwargs
from genlab.runs.distributed import all_gather_objects, broadcast_buffers
from genlab.runs.records import environment_info
from genlab.runs.rng import get_rng_states, rank_seed, seed_global_streams, set_rng_states


def build_optimizer(spec: dict[str, Any], params) -> torch.optim.Optimizer:
    """Instantiate an optimizer from a ``{_target_: ..., lr: ...}`` spec for ``params``."""
    return hydra.utils.instantiate({**spec, "_partial_": True})(params)


class GenerativeModule(pl.LightningModule):
    """Base class of every family. Subclasses set ``config_class`` (a dataclass whose
    docstring lists every field) and ``family`` (the registered name), implement ``generate``
    and Lightning's ``training_step``/``configure_optimizers``, and override what they offer.

    Hyperparameters are the config dataclass as a plain dict, so a checkpoint alone rebuilds
    the model (``genlab.sample``) and loads with ``torch.load(weights_only=True)``.

    Attributes:
        sample_options: keyword options ``generate`` accepts beyond ``num_samples`` and
            ``generator``; ``genlab.sample``/``genlab.eval`` pass only these, and refuse a
            non-default value of any other.
        supports_reconstruction: ``reconstruct`` is implemented.
        loss_parts: optimizer part (the child module owning the optimizer's parameters, or
            ``"model"`` with one optimizer) -> the logged loss behind its gradients.
    """

    config_class: ClassVar[type]
    family: ClassVar[str]
    sample_options: ClassVar[frozenset[str]] = frozenset()
    supports_reconstruction: ClassVar[bool] = False
    loss_parts: ClassVar[dict[str, str]] = {"model": "train/loss"}

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.config = config_from_kwargs(self.config_class, kwargs)
        self.save_hyperparameters(dataclasses.asdict(self.config))
        self.run_config: dict[str, Any] | None = None  # the resolved run config, set by train()

    # -- the protocol the CLIs and callbacks use ---------------------------------------------
    def generate(
        self, num_samples: int, *, generator: torch.Generator | None = None, **options: Any
    ) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1], without gradients; the same seeded CPU
        ``generator`` gives the same images. ``options``: names in ``sample_options``."""
        raise NotImplementedError

    def latents(
        self, num_samples: int, generator: torch.Generator | None = None, **options: Any
    ) -> torch.Tensor | None:
        """Latent codes (N, ...) that ``generate_from_latents`` decodes (interpolation), or
        None when the family has no latent space."""
        return None

    def generate_from_latents(self, z: torch.Tensor, **options: Any) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] from latent codes ``z`` of :meth:`latents`."""
        raise NotImplementedError(f"the {self.family} family has no latent space")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions (B, C, H, W) in [0, 1] of images ``x`` in [0, 1]."""
        raise NotImplementedError(f"the {self.family} family does not reconstruct")

    def evaluation_terms(self, datamodule: Any, settings: dict[str, Any]) -> dict[str, Any]:
        """The family's own held-out evaluation for ``genlab.eval`` (flat name -> number or
        string). ``settings``: split, num_images, batch_size, k, k_batch, device, prefix,
        seed. Default: nothing."""
        return {}

    def schedule_step(self) -> int:
        """The step counter that schedules and ``trainer.max_steps`` use."""
        return int(self.global_step)

    def check_sample_options(self, requested: dict[str, Any]) -> dict[str, Any]:
        """The ``requested`` options (name -> value, None = not given) this family takes;
        a ConfigError naming an option it does not take."""
        unknown = sorted(
            k for k, v in requested.items() if v is not None and k not in self.sample_options
        )
        if unknown:
            raise ConfigError(
                unknown[0],
                requested[unknown[0]],
                f"unset: the {self.family} family takes the options {sorted(self.sample_options)}",
            )
        return {k: v for k, v in requested.items() if v is not None}

    # -- multi-process training --------------------------------------------------------------
    def sync_buffers(self) -> None:
        """Copy every buffer (batch-norm running statistics, EMA copies and counts) from global
        rank 0 to all ranks, as DDP does before a forward; a no-op on one process. A collective:
        every rank calls it at the same point."""
        broadcast_buffers(self, src=0)

    # -- checkpoint metadata ------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """``checkpoint["genlab"]``: class, family, version, counters, the resolved run config,
        the environment (git commit, package versions) and every RNG state (exact resume):
        ``rng_states_by_rank`` holds each process's training streams (gathered to rank 0, which
        writes the file), ``rng_states`` rank 0's (what one process resumes from)."""
        self.sync_buffers()  # other ranks continue from the buffers rank 0 writes
        rng_states_by_rank = all_gather_objects(self._training_rng_states())
        checkpoint["genlab"] = {
            "model_class": type(self).__name__,
            "family": self.family,
            "version": genlab.__version__,
            "counters": self.counters(),
            "run_config": self.run_config,
            "env": environment_info(),
            "rng_states": rng_states_by_rank[0],
            "rng_states_by_rank": rng_states_by_rank,
        }

    def _training_rng_states(self) -> dict[str, Any]:
        """The training RNG streams now: inside validation (e.g. ModelCheckpoint saving in its
        ``on_validation_end``) the ones training continues from, not validation's."""
        states = getattr(self, "_rng_before_validation", None)
        return states if states is not None else get_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("genlab", {})
        self.load_counters(meta.get("counters", {}))
        by_rank = meta.get("rng_states_by_rank")
        if by_rank is None and meta.get("rng_states") is not None:  # older checkpoints: rank 0
            by_rank = [meta["rng_states"]]
        self._resume_rng_states_by_rank = by_rank

    def on_train_start(self) -> None:
        """This rank's training RNG streams, set right before training (re)starts (not at fit
        start or checkpoint load: a sanity check in between would consume them).

        Multi-process runs: every rank first gets its own noise streams (latents,
        gradient-penalty weights, VAE noise, dynamic binarisation), seeded from ``(run seed,
        global rank)``; the weights are identical on every rank by now (initialised from the run
        seed, broadcast by the strategy) and ``PL_GLOBAL_SEED``, hence the distributed sampler's
        data order, is left alone. One process keeps the run seed's streams unchanged. Then a
        resumed run restores each rank's streams from the checkpoint."""
        trainer = self.trainer
        rank, world_size = trainer.global_rank, trainer.world_size
        if world_size > 1:
            seed_global_streams(rank_seed(torch.initial_seed(), rank))
        by_rank = getattr(self, "_resume_rng_states_by_rank", None)
        self._resume_rng_states_by_rank = None
        if by_rank is None:
            return
        if len(by_rank) != world_size:
            rank_zero_warn(
                f"The checkpoint holds the RNG states of {len(by_rank)} process(es), this run has "
                f"{world_size}: ranks >= {len(by_rank)} keep their fresh (seed, rank) streams, "
                "so training does not continue exactly as the checkpointed run would have."
            )
        if rank < len(by_rank):
            set_rng_states(by_rank[rank])
            self._resume_rng = None  # supersedes a subclass's own (epoch-start) RNG restore

    def on_validation_start(self) -> None:
        """Every rank validates the same weights and buffers (batch-norm statistics drift
        between ranks during the last step). Validation (and the sanity check) leave the
        training RNG streams as they were, so training is the same whether, how often and how
        long validation runs (a resumed run may skip the validation the crashed run did before
        its checkpoint)."""
        self.sync_buffers()
        self._rng_before_validation = get_rng_states()

    def on_validation_end(self) -> None:
        states = getattr(self, "_rng_before_validation", None)
        self._rng_before_validation = None
        if states is not None:
            set_rng_states(states)

    def on_train_end(self) -> None:
        """Training ends with the same weights and buffers on every rank."""
        self.sync_buffers()

    def counters(self) -> dict[str, int]:
        """Schedule counters that must survive a resume."""
        return {}

    def load_counters(self, counters: dict[str, int]) -> None:
        for name, value in counters.items():
            setattr(self, name, int(value))
