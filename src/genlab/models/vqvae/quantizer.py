"""Vector quantiser with an EMA codebook (van den Oord, Vinyals & Kavukcuoglu 2017, app. A.1).

Each encoder vector z_e (D,) is replaced by its nearest codebook entry e_k,
``k = argmin_j ||z_e - e_j||^2`` (eq. 1-2), and the decoder sees
``z_q = z_e + sg[e_k - z_e]`` (the straight-through estimator: forward e_k, gradient dL/dz_q
copied to z_e). The loss adds only the commitment term ``beta ||z_e - sg[e_k]||^2`` (eq. 3
without its codebook term), because the codebook follows exponential moving averages of the
vectors assigned to it (eq. 6-8), in training steps::

    N_k <- gamma N_k + (1 - gamma) n_k          n_k: vectors of the batch assigned to k
    m_k <- gamma m_k + (1 - gamma) sum_{z_e -> k} z_e
    e_k  = m_k / N~_k,  N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j   (Laplace smoothing)

Dead codes: after the update, every code with ``N_k < dead_code_threshold`` is restarted at a
random encoder vector of the batch (``N_k = 1``, ``m_k = e_k = that vector``), so the codebook
keeps being used (Dhariwal et al. 2020 / Zeghidour et al. 2021 style restarts).
Under multi-process training the counts and sums are all-reduced and the restart vectors come
from rank 0, so every rank keeps the same codebook.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.runs.distributed import distributed_world_size


def _all_reduce_sum(tensor: Tensor) -> Tensor:
    if distributed_world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


class EMAVectorQuantizer(nn.Module):
    """Codebook (K, D) as buffers; forward on z_e (B, D, H, W) channel-first.

    Buffers: ``codebook`` (K, D) = e, ``cluster_size`` (K,) = N, ``embed_sum`` (K, D) = m.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        dead_code_threshold: float = 1.0,
    ):
        super().__init__()
        self.decay, self.epsilon, self.dead_code_threshold = decay, epsilon, dead_code_threshold
        codebook = torch.randn(num_embeddings, embedding_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(num_embeddings))
        self.register_buffer("embed_sum", codebook.clone())

    @property
    def num_embeddings(self) -> int:
        return self.codebook.shape[0]

    def nearest_codes(self, flat: Tensor) -> Tensor:
        """Indices (N,) of the nearest codebook entries of vectors flat (N, D)."""
        codebook = self.codebook.to(flat.dtype)
        distances = (
            flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.T + codebook.pow(2).sum(1)
        )
        return distances.argmin(1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Codebook vectors (B, D, H, W) of codes (B, H, W)."""
        return self.codebook[codes].permute(0, 3, 1, 2)

    @torch.no_grad()
    def ema_update(self, flat: Tensor, codes: Tensor) -> int:
        """One EMA step (module docstring) from vectors flat (N, D) assigned to codes (N,),
        then dead-code restarts; returns how many codes were restarted."""
        one_hot = F.one_hot(codes, self.num_embeddings).type(flat.dtype)  # (N, K)
        counts = _all_reduce_sum(one_hot.sum(0))
        sums = _all_reduce_sum(one_hot.T @ flat)
        gamma = self.decay
        self.cluster_size.mul_(gamma).add_(counts.float(), alpha=1 - gamma)
        self.embed_sum.mul_(gamma).add_(sums.float(), alpha=1 - gamma)
        total = self.cluster_size.sum()
        smoothed = (
            (self.cluster_size + self.epsilon)
            / (total + self.num_embeddings * self.epsilon)
            * total
        )
        self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))
        return self.restart_dead_codes(flat)

    @torch.no_grad()
    def restart_dead_codes(self, flat: Tensor) -> int:
        """Codes with ``cluster_size < dead_code_threshold`` move to random vectors of flat
        (N, D) (rank 0's, on every rank); returns how many moved."""
        if self.dead_code_threshold <= 0:
            return 0
        dead = self.cluster_size < self.dead_code_threshold
        if distributed_world_size() > 1:
            dist.broadcast(dead, 0)
        num_dead = int(dead.sum())
        if num_dead == 0:
            return 0
        picks = torch.randint(flat.shape[0], (num_dead,), device=flat.device)
        fresh = flat[picks].float()
        if distributed_world_size() > 1:
            dist.broadcast(fresh, 0)
        self.codebook[dead] = fresh
        self.embed_sum[dead] = fresh
        self.cluster_size[dead] = 1.0
        return num_dead

    def forward(self, z_e: Tensor) -> dict[str, Tensor]:
        """z_e (B, D, H, W) -> ``z_q`` (B, D, H, W, straight-through), ``codes`` (B, H, W),
        ``commitment`` (scalar: mean over elements of ||z_e - sg[e]||^2), ``perplexity``
        (exp of the entropy of the batch's code frequencies), ``usage`` (fraction of codes
        used in the batch), ``restarted`` (dead codes restarted in this step, training only).
        In training mode the EMA update runs after the assignment."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d).float()
        codes = self.nearest_codes(flat.detach())
        quantized = self.codebook[codes]  # (N, D), no gradient to the buffers
        commitment = F.mse_loss(flat, quantized)
        restarted = 0
        if self.training:
            restarted = self.ema_update(flat.detach(), codes)
        z_q = flat + (quantized - flat).detach()  # straight-through
        z_q = z_q.view(b, h, w, d).permute(0, 3, 1, 2).to(z_e.dtype)
        frequencies = torch.bincount(codes, minlength=self.num_embeddings).float() / codes.numel()
        entropy = -(frequencies * torch.log(frequencies.clamp(min=1e-12))).sum()
        return {
            "z_q": z_q,
            "codes": codes.view(b, h, w),
            "commitment": commitment,
            "perplexity": entropy.exp(),
            "usage": (frequencies > 0).float().mean(),
            "restarted": torch.tensor(float(restarted)),
        }
