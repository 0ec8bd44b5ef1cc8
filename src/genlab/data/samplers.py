"""Training-order samplers that can start mid-epoch (exact resume); see :mod:`genlab.data.base`."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


class ResumableRandomSampler(Sampler[int]):
    """A random permutation of ``range(num_samples)`` per epoch that can start mid-epoch.

    The order of epoch ``e`` depends only on ``(seed, e)`` (own ``torch.Generator``, the global
    RNG is untouched). ``start`` indices of the order are skipped by the next iteration only
    (set when resuming). ``len()`` stays ``num_samples`` so Lightning's batch counting is
    unchanged; Lightning calls :meth:`set_epoch` every epoch.
    """

    def __init__(self, num_samples: int, seed: int, epoch: int = 0, start: int = 0):
        self.num_samples, self.seed = int(num_samples), int(seed)
        self.epoch, self.start = int(epoch), int(start)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int) -> list[int]:
        """The full permutation of ``epoch``."""
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        return torch.randperm(self.num_samples, generator=gen).tolist()

    def __iter__(self):
        start, self.start = self.start, 0
        yield from self.order(self.epoch)[start:]

    def __len__(self) -> int:
        return self.num_samples


class ResumableDistributedSampler(DistributedSampler):
    """``torch.utils.data.DistributedSampler`` (same indices for the same dataset size, world
    size, rank, ``seed`` and epoch) whose next iteration skips its first ``start`` indices
    (set when resuming mid-epoch). ``len()`` stays the per-rank count so Lightning's batch
    counting is unchanged; Lightning calls :meth:`set_epoch` every epoch and, since this is a
    ``DistributedSampler``, injects no sampler of its own.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int,
        rank: int,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        start: int = 0,
    ):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.epoch, self.start = int(epoch), int(start)

    def __iter__(self):
        start, self.start = self.start, 0
        return iter(list(super().__iter__())[start:])
