"""The model protocol: what every genlab family offers and all that the CLIs and callbacks use.

A family is a :class:`GenerativeModule` subclass registered under its ``family`` name
(:mod:`genlab.models.registry`). ``genlab.train``/``sample``/``eval``/``compare`` and every
callback use only the names below (no family names, no attribute probing):

* ``generate(num_samples, *, generator=None, **options)`` -> images (N, C, H, W) in [0, 1],
  ``options`` from :attr:`GenerativeModule.sample_options` (e.g. truncation, temperature,
  labels, use_ema);
* ``latents`` / ``generate_from_latents`` (interpolation; ``latents`` None = no latent space),
  ``reconstruct`` when :attr:`~GenerativeModule.supports_reconstruction`;
* ``latent_traversal`` (``genlab.sample mode=traverse``: directions through the latent space,
  :mod:`genlab.models.traversal`; None = nothing to traverse);
* ``evaluation_terms(datamodule, settings)``: the family's own held-out numbers
  (likelihoods for VAEs, nothing for GANs);
* :attr:`~GenerativeModule.loss_parts` (the divergence guard), ``schedule_step()`` (the step
  counter schedules use), ``counters()``/``load_counters()`` (resumable counters).

Families log their training-step scalars through :meth:`GenerativeModule.log_train_scalars`
(only on the steps Lightning writes) and list the networks ``model.compile`` /
``model.channels_last`` act on in :attr:`GenerativeModule.networks`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from collections.abc import Collection
from typing import Any, ClassVar

import hydra.utils
import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

import genlab
from genlab.checks.errors import ConfigError
from genlab.checks.values import config_from_kwargs
from genlab.compat import batches_processed_this_epoch, lightning_writes_logs_now
from genlab.runs.distributed import all_gather_objects, broadcast_buffers
from genlab.runs.records import environment_info
from genlab.runs.rng import get_rng_states, rank_seed, seed_global_streams, set_rng_states


def build_optimizer(spec: dict[str, Any], params) -> torch.optim.Optimizer:
    """Instantiate an optimizer from a ``{_target_: ..., lr: ...}`` spec for ``params``."""
    return hydra.utils.instantiate({**spec, "_partial_": True})(params)


def channels_last_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook of ``model.channels_last``: 4-D float tensor arguments (images,
    feature maps) in ``torch.channels_last`` memory format; everything else unchanged."""
    return tuple(
        a.contiguous(memory_format=torch.channels_last)
        if isinstance(a, torch.Tensor) and a.ndim == 4 and a.is_floating_point()
        else a
        for a in args
    )


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend (Inductor) would use: ``$CXX`` or the
    first of g++, clang++, c++ on ``PATH``; None when there is none."""
    candidates = [os.environ.get("CXX", ""), "g++", "clang++", "c++"]
    return next((found for c in candidates if c and (found := shutil.which(c))), None)


class GenerativeModule(pl.LightningModule):
    """Base class of every family. Subclasses set ``config_class`` (a dataclass whose
    docstring lists every field) and ``family`` (the registered name), implement ``generate``
    (or ``latents`` and ``generate_from_latents``, which the default ``generate`` decodes) and
    Lightning's ``training_step``/``configure_optimizers``, and override what they offer.

    Hyperparameters are the config dataclass as a plain dict, so a checkpoint alone rebuilds
    the model (``genlab.sample``) and loads with ``torch.load(weights_only=True)``.

    Attributes:
        sample_options: keyword options ``generate`` accepts beyond ``num_samples`` and
            ``generator``; ``genlab.sample``/``genlab.eval`` pass only these, and refuse a
            non-default value of any other.
        supports_reconstruction: ``reconstruct`` is implemented.
        loss_parts: optimizer part (the child module owning the optimizer's parameters, or
            ``"model"`` with one optimizer) -> the logged loss behind its gradients.
        networks: names of the child networks ``model.compile`` and ``model.channels_last``
            act on (a ModuleList/ModuleDict stands for each module in it); empty = the family
            offers neither option.
    """

    config_class: ClassVar[type]
    family: ClassVar[str]
    sample_options: ClassVar[frozenset[str]] = frozenset()
    supports_reconstruction: ClassVar[bool] = False
    loss_parts: ClassVar[dict[str, str]] = {"model": "train/loss"}
    networks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.config = config_from_kwargs(self.config_class, kwargs)
        # logger=False: genlab.tracking.run.RunTracking logs them, with the run's overrides
        self.save_hyperparameters(dataclasses.asdict(self.config), logger=False)
        self.run_config: dict[str, Any] | None = None  # the resolved run config, set by train()
        reason = self.compile_unsupported_reason() if self._option("compile") else None
        if reason is not None:
            raise ConfigError("model.compile", True, f"false ({reason})")
        if self._option("channels_last") and not self.networks:
            raise ConfigError(
                "model.channels_last", True, f"false (the {self.family} family lists no networks)"
            )
        self._speed_options_applied = False
        self._train_scalars: dict[str, Any] = {}  # latest value of each name this epoch
        self._train_scalars_epoch = -1
        self._train_scalars_bar: Collection[str] = ()
        self._train_scalars_pending = False  # values of this step not logged yet

    # -- the protocol the CLIs and callbacks use ---------------------------------------------
    @torch.no_grad()
    def generate(
        self, num_samples: int, *, generator: torch.Generator | None = None, **options: Any
    ) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1], without gradients; the same seeded CPU
        ``generator`` gives the same images. ``options``: names in ``sample_options``.

        Default: prior draws of :meth:`latents` decoded by :meth:`generate_from_latents`, both
        given ``options`` (a family without a latent space implements its own)."""
        unknown = sorted(set(options) - self.sample_options)
        if unknown:
            name = f"{type(self).__name__}.generate()"
            raise TypeError(f"{name} got an unexpected keyword argument {unknown[0]!r}")
        z = self.latents(num_samples, generator, **options)
        if z is None:
            raise NotImplementedError(f"the {self.family} family implements no generate")
        return self.generate_from_latents(z, **options)

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

    def latent_traversal(
        self,
        num_directions: int,
        *,
        center: str = "prior",
        num_centers: int = 1,
        images: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        num_samples: int = 10_000,
        **options: Any,
    ) -> Any:
        """The latent space ``genlab.sample mode=traverse`` walks: a
        :class:`genlab.models.traversal.LatentTraversal` with ``num_directions`` directions
        and its start points (``center``: ``prior`` = one centre at the prior's / the sampled
        latents' mean, ``samples`` = ``num_centers`` prior draws, ``data`` = the posterior
        means of ``images`` (N, C, H, W) in [0, 1], families with an encoder only), or None
        when the family has no latent space. ``options``: names in ``sample_options``.

        Default: GANSpace (:func:`genlab.models.traversal.principal_traversal`), the top
        principal components of ``num_samples`` draws of :meth:`latents`, decoded by
        :meth:`generate_from_latents`; None when :meth:`latents` is None."""
        from genlab.models.traversal import principal_traversal

        if self.latents(1, generator, **options) is None:
            return None
        return principal_traversal(
            self, num_directions, center, num_centers, images, generator, options, num_samples
        )

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

    # -- training-step logging ----------------------------------------------------------------
    def log_train_scalars(
        self, values: dict[str, torch.Tensor | float], prog_bar: Collection[str] = ()
    ) -> None:
        """Log this training step's scalars (name -> 0-dim tensor or number; per step, not
        per epoch), the names in ``prog_bar`` also on the progress bar.

        Lightning writes step metrics to the loggers only every ``trainer.log_every_n_steps``
        batches (and when stopping), yet every ``self.log`` costs ~0.2 ms of Python in its
        result collection. So the values are kept (the latest of each name this epoch) and
        logged, with one ``log_dict`` call (and one for the progress-bar names), only on the
        steps Lightning writes, on the last batch of each epoch and of the run (so that
        epoch-end callbacks and ``genlab.train``'s returned metrics see the last step's
        values) and when a callback stops training after the step (``trainer.max_time``).
        The loggers (``metrics.csv``, wandb) get exactly the rows that logging every step
        gives, a name logged only on some steps (GAN ``train/loss_g`` with ``n_critic > 1``)
        included: Lightning repeats the latest value of the epoch there too. Between those
        steps ``trainer.callback_metrics`` and the progress bar hold the last logged values.
        The divergence guard does not read these (it checks the losses given to backward).
        """
        if self._train_scalars_epoch != self.current_epoch:  # Lightning resets them per epoch
            self._train_scalars.clear()
            self._train_scalars_epoch = self.current_epoch
        for name, value in values.items():  # no autograd graph kept alive until logged
            self._train_scalars[name] = value.detach() if isinstance(value, torch.Tensor) else value
        self._train_scalars_bar = prog_bar
        trainer = self._attached_trainer()
        if trainer is None or lightning_writes_logs_now(trainer):  # genlab.compat
            self._flush_train_scalars()
        else:
            self._train_scalars_pending = True

    def _attached_trainer(self) -> pl.Trainer | None:
        try:
            return self.trainer
        except RuntimeError:  # "not attached to a Trainer"
            return None

    def _flush_train_scalars(self) -> None:
        values, bar = self._train_scalars, self._train_scalars_bar
        plain = {k: v for k, v in values.items() if k not in bar}
        shown = {k: v for k, v in values.items() if k in bar}
        for logged, on_bar in ((plain, False), (shown, True)):
            if logged:
                self.log_dict(logged, prog_bar=on_bar, on_step=True, on_epoch=False)
        self._train_scalars_pending = False

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Log the step's pending :meth:`log_train_scalars` values when this batch ends the
        epoch or the run, or Lightning writes it after all (a callback stopped training)."""
        if not self._train_scalars_pending:
            return
        trainer = self.trainer
        max_steps = trainer.max_steps
        if (
            lightning_writes_logs_now(trainer)
            or batches_processed_this_epoch(trainer) >= trainer.num_training_batches
            or (max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps)
        ):
            self._flush_train_scalars()

    # -- speed options (model.compile, model.channels_last) --------------------------------
    def _option(self, name: str) -> bool:
        return bool(getattr(self.config, name, False))

    def compile_unsupported_reason(self) -> str | None:
        """Why ``model.compile=true`` cannot work with this config (one phrase), or None.
        Default: None when the family lists :attr:`networks`."""
        if not self.networks:
            return f"the {self.family} family lists no networks to compile"
        return None

    def speed_option_modules(self) -> list[nn.Module]:
        """The modules :attr:`networks` names (each module of a ModuleList/ModuleDict)."""
        modules: list[nn.Module] = []
        for name in self.networks:
            net = getattr(self, name, None)
            if not isinstance(net, nn.Module):
                raise ConfigError(
                    "model.compile" if self._option("compile") else "model.channels_last",
                    True,
                    f"false ({type(self).__name__} has no network {name!r} of its "
                    f"`networks` {list(self.networks)})",
                )
            members = net.values() if isinstance(net, nn.ModuleDict) else net
            modules.extend(members if isinstance(net, nn.ModuleList | nn.ModuleDict) else [net])
        return modules

    def apply_speed_options(self) -> None:
        """Once, before fitting: ``model.channels_last`` converts the weights of every
        :attr:`networks` module to ``torch.channels_last`` and its 4-D inputs through a
        forward pre-hook (:func:`channels_last_inputs`); ``model.compile`` compiles each
        module in place (``nn.Module.compile``: same parameters and state-dict keys, so
        checkpoints load with or without it). A ConfigError when a CPU run has no C++
        compiler (torch.compile's CPU backend needs one)."""
        channels_last, compile_ = self._option("channels_last"), self._option("compile")
        if self._speed_options_applied or not (channels_last or compile_):
            return
        trainer = self._attached_trainer()
        device = trainer.strategy.root_device if trainer is not None else self.device
        if compile_ and device.type == "cpu" and cpp_compiler() is None:
            raise ConfigError(
                "model.compile",
                True,
                "false on this machine (torch.compile on a CPU needs a C++ compiler: install "
                "g++ or clang++, or set CXX)",
            )
        for module in self.speed_option_modules():
            if channels_last:
                module.to(memory_format=torch.channels_last)
                module.register_forward_pre_hook(channels_last_inputs)
            if compile_:
                module.compile()
        self._speed_options_applied = True

    def setup(self, stage: str) -> None:
        """Before fitting: :meth:`apply_speed_options`."""
        if stage == "fit":
            self.apply_speed_options()

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
        writes the file), ``rng_states`` rank 0's (what one process resumes from), and
        ``torch_threads_by_rank`` each process's torch CPU thread count (CPU kernels round
        differently with another count: a resume with another one is not exact, and warns)."""
        self.sync_buffers()  # other ranks continue from the buffers rank 0 writes
        by_rank = all_gather_objects((self._training_rng_states(), torch.get_num_threads()))
        rng_states_by_rank = [states for states, _ in by_rank]
        checkpoint["genlab"] = {
            "model_class": type(self).__name__,
            "family": self.family,
            "version": genlab.__version__,
            "counters": self.counters(),
            "run_config": self.run_config,
            "env": environment_info(),
            "rng_states": rng_states_by_rank[0],
            "rng_states_by_rank": rng_states_by_rank,
            "torch_threads_by_rank": [int(threads) for _, threads in by_rank],
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
        threads = meta.get("torch_threads_by_rank")
        self._resume_threads_by_rank = threads if isinstance(threads, list) else None

    def on_train_start(self) -> None:
        """This rank's training RNG streams, set right before training (re)starts (not at fit
        start or checkpoint load: a sanity check in between would consume them).

        Multi-process runs: every rank first gets its own noise streams (latents,
        gradient-penalty weights, VAE noise, dynamic binarisation), seeded from ``(run seed,
        global rank)``; the weights are identical on every rank by now (initialised from the run
        seed, broadcast by the strategy) and ``PL_GLOBAL_SEED``, hence the distributed sampler's
        data order, is left alone. One process keeps the run seed's streams unchanged. Then a
        resumed run restores each rank's streams from the checkpoint, and warns when a CPU
        rank now runs with another torch thread count than when the checkpoint was written
        (``num_threads=null`` picks it from the cores other programs keep busy, so it can
        change between runs): float sums are split differently, so the weights drift apart
        from the uninterrupted run's by rounding."""
        trainer = self.trainer
        rank, world_size = trainer.global_rank, trainer.world_size
        if world_size > 1:
            seed_global_streams(rank_seed(torch.initial_seed(), rank))
        self._warn_if_threads_changed(rank)
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

    def _warn_if_threads_changed(self, rank: int) -> None:
        threads_by_rank = getattr(self, "_resume_threads_by_rank", None)
        self._resume_threads_by_rank = None
        if not threads_by_rank or rank >= len(threads_by_rank) or self.device.type != "cpu":
            return
        then, now = threads_by_rank[rank], torch.get_num_threads()
        if isinstance(then, int) and not isinstance(then, bool) and then != now:
            warnings.warn(
                f"Rank {rank} resumes with {now} torch CPU thread(s); the checkpoint was written "
                f"with {then}. CPU kernels split their float sums by thread, so training does "
                "not continue bit-exactly as the checkpointed run would have; set "
                f"num_threads={then} to continue exactly.",
                stacklevel=2,
            )

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
