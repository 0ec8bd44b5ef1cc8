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

With either, :class:`genlab.models.GAN` also copies rank 0's buffers to every rank at the end
of each training step (batch-norm statistics and the EMA's buffers moved on each rank's own
batch), so checkpoints, validation, sampling and the end of training see one model everywhere.

The strategy overrides two private ``DDPStrategy`` methods; that code lives in
:func:`genlab.compat.ddp_strategy_without_wrapper` with the pinning test.
"""

from __future__ import annotations

from genlab.compat import ddp_strategy_without_wrapper
from genlab.runs.distributed import broadcast_buffers, broadcast_module_states

__all__ = ["GANDDPStrategy", "broadcast_buffers"]


class GANDDPStrategy(ddp_strategy_without_wrapper(broadcast_module_states, broadcast_buffers)):
    """``DDPStrategy`` that leaves a module with ``syncs_own_gradients = True`` (the GAN)
    unwrapped; any other module (e.g. the VAE) is wrapped in plain DDP as usual.

    Takes every ``DDPStrategy`` argument (``accelerator``/``devices`` come from the Trainer),
    e.g. ``process_group_backend="gloo"``, ``start_method="spawn"``.
    """
