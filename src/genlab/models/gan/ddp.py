"""Multi-process GAN training without DDP's unused-parameter problem.

A manual-optimisation GAN runs two backward passes (D, then G) per DDP forward and each uses
only part of the parameters, so plain ``strategy=ddp`` fails with "parameters that were not
used in producing the loss" (Lightning issues 20328, 20685). Two fixes work:

- ``strategy=ddp_find_unused_parameters_true``: DDP walks the autograd graph after every
  backward and all-reduces *every* parameter bucket (G and D) after each of the two backwards;
- :class:`GANDDPStrategy` (``strategy: {_target_: genlab.models.gan.ddp.GANDDPStrategy}``):
  no DDP wrapper; parameters and buffers are broadcast from rank 0 at start, buffers again
  before every training step (as DDP's ``broadcast_buffers``), and :class:`genlab.models.GAN`
  all-reduces only the gradients of the network it is about to step (one flat all-reduce per
  optimizer step). ``benchmarks/bench_gan_ddp.py`` compares the two.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy ``module``'s buffers (e.g. batch-norm running statistics) from rank ``src``,
    one flat broadcast per dtype."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for buffer in module.buffers():
        by_dtype.setdefault(buffer.dtype, []).append(buffer)
    for buffers in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src)
        offset = 0
        for b in buffers:
            b.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()


class GANDDPStrategy(DDPStrategy):
    """``DDPStrategy`` that leaves a module with ``syncs_own_gradients = True`` (the GAN)
    unwrapped; any other module (e.g. the VAE) is wrapped in plain DDP as usual.

    Takes every ``DDPStrategy`` argument (``accelerator``/``devices`` come from the Trainer),
    e.g. ``process_group_backend="gloo"``, ``start_method="spawn"``.
    """

    def _setup_model(self, model: nn.Module) -> nn.Module:
        if not getattr(model, "syncs_own_gradients", False):
            return super()._setup_model(model)
        _sync_module_states(model)  # same initial weights and buffers everywhere (as DDP does)
        return model

    def _register_ddp_hooks(self) -> None:
        if isinstance(self.model, DistributedDataParallel):
            super()._register_ddp_hooks()

    def training_step(self, *args: Any, **kwargs: Any):
        if self.world_size > 1 and not isinstance(self.model, DistributedDataParallel):
            broadcast_buffers(self.lightning_module)
        return super().training_step(*args, **kwargs)
