"""Small torch.distributed helpers every genlab model and strategy shares (no-ops on 1 process).

All of them are collectives: under multi-process training every rank must call them at the
same point of the program, in the same order (Lightning calls the hooks that use them on every
rank: ``on_fit_start``, ``on_validation_start``, ``on_save_checkpoint``, ``training_step``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def distributed_world_size() -> int:
    """Processes in the default process group (1 when torch.distributed is not initialised)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy ``module``'s buffers (batch-norm running statistics, EMA copies and counts) from
    rank ``src`` to every rank, in place, one flat broadcast per dtype. No-op on 1 process."""
    _broadcast_tensors(list(module.buffers()), src)


@torch.no_grad()
def broadcast_module_states(module: nn.Module, src: int = 0) -> None:
    """Copy ``module``'s parameters and buffers from rank ``src`` to every rank (what DDP does
    when it wraps a module). No-op on 1 process."""
    _broadcast_tensors([*module.parameters(), *module.buffers()], src)


def _broadcast_tensors(tensors: list[torch.Tensor], src: int) -> None:
    if distributed_world_size() <= 1 or not tensors:
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in tensors:
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    for buffers in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src)
        offset = 0
        for b in buffers:
            b.data.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()


def all_gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (picklable ``obj``, sent between
    the run's own processes only); ``[obj]`` on 1 process."""
    world_size = distributed_world_size()
    if world_size <= 1:
        return [obj]
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, obj)
    return gathered
