"""Top-down hierarchical VAE with residual cells, in the small NVAE / VDVAE form (Vahdat &
Kautz 2020, "NVAE", section 3 and fig. 2; Child 2021, "Very Deep VAEs", fig. 3): inference and
generation share one top-down path, and each layer's posterior is a network of the top-down
state and the bottom-up features. This is *not* Sønderby et al. 2016's Ladder VAE (no
precision-weighted merge of a bottom-up estimate with the prior: that model is
:mod:`genlab.models.vae.ladder`, ``model=ladder_vae``); genlab called this model ``ladder_vae``
before and names it ``topdown_vae`` now.

A bottom-up residual stack reads x at resolutions S, S/2, ..., S/2^(R-1). The top-down stack
starts from a learned constant at the lowest resolution; each of its L cells holds a latent
z_l (z_channels x r x r) and shares the path with the generative model::

    p(z) = prod_l p(z_l | z_<l),   q(z | x) = prod_l q(z_l | x, z_<l)   (the same order)
    cell l: (mu_p, log s2_p, f) = P_l(h);  (mu_q, log s2_q) = Q_l([h, e_r(x)])
            z_l ~ q (inference) or p (sampling);  h <- Res_l(h + f + W_l z_l)
    p(x | z) = likelihood(Out(h at resolution S))

ELBO = E_q log p(x|z) - sum_l E_q KL(q(z_l|x,z_<l) || p(z_l|z_<l)), each KL analytic between
the two diagonal Gaussians (NVAE eq. 2); importance weights over all layers
``log w = log p(x|z) + sum_l [log p(z_l|z_<l) - log q(z_l|x,z_<l)]`` give the NLL estimate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.checks.errors import ConfigError
from genlab.losses.likelihoods import build_likelihood, num_decoder_params
from genlab.models.base import GenerativeModule
from genlab.models.vae.config import TopDownVAEConfig
from genlab.models.vae.hierarchical import HierarchicalVAE

LOG_VAR_RANGE = (-12.0, 6.0)  # both q and p: sampled and scored with the same clamped value


def log_normal(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(z; mean, diag exp(log_var)) summed over all but the batch dim: (B, ...) -> (B,)."""
    out = -0.5 * ((z - mean).pow(2) * torch.exp(-log_var) + log_var + math.log(2 * math.pi))
    return out.flatten(1).sum(1)


def gaussian_kl_two(mq: Tensor, lvq: Tensor, mp: Tensor, lvp: Tensor) -> Tensor:
    """KL(N(mq, e^lvq) || N(mp, e^lvp)) summed over all but the batch dim, (B,)."""
    kl = 0.5 * (lvp - lvq + (torch.exp(lvq) + (mq - mp).pow(2)) * torch.exp(-lvp) - 1.0)
    return kl.flatten(1).sum(1)


class ResBlock(nn.Module):
    """x + conv3x3(silu(conv3x3(silu(x)))), the last conv initialised small."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 3, 1, 1), nn.SiLU(), nn.Conv2d(width, width, 3, 1, 1)
        )
        nn.init.zeros_(self.net[-1].bias)
        self.net[-1].weight.data.mul_(0.1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class TopDownCell(nn.Module):
    """One latent layer of the top-down path (module docstring: P_l, Q_l, W_l, Res_l)."""

    def __init__(self, width: int, z_channels: int):
        super().__init__()
        self.zc = z_channels
        self.prior = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(width, 2 * z_channels + width, 3, 1, 1),
        )  # fmt: skip
        self.posterior = nn.Sequential(
            nn.SiLU(), nn.Conv2d(2 * width, width, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(width, 2 * z_channels, 3, 1, 1),
        )  # fmt: skip
        for last in (self.prior[-1], self.posterior[-1]):
            nn.init.zeros_(last.bias)
            last.weight.data.mul_(0.1)
        self.z_proj = nn.Conv2d(z_channels, width, 1)
        self.res = ResBlock(width)

    def forward(self, h: Tensor, enc: Tensor | None, noise: Tensor | None, scale: float = 1.0):
        """h (B, w, r, r), enc (B, w, r, r) or None (sample from the prior), noise like z or
        None (fresh). Returns (h, z, log_q, log_p, kl), the last three (B,) or None."""
        zc = self.zc
        p = self.prior(h).float()
        p_mean, p_log_var = p[:, :zc], p[:, zc : 2 * zc].clamp(*LOG_VAR_RANGE)
        feat = p[:, 2 * zc :].to(h.dtype)
        log_q = log_p = kl = None
        if enc is None:
            eps = torch.randn_like(p_mean) if noise is None else noise.to(p_mean)
            z = p_mean + scale * eps * torch.exp(0.5 * p_log_var)
        else:
            q = self.posterior(torch.cat([h, enc], dim=1)).float()
            q_mean, q_log_var = q[:, :zc], q[:, zc:].clamp(*LOG_VAR_RANGE)
            eps = torch.randn_like(q_mean) if noise is None else noise.to(q_mean)
            z = q_mean + eps * torch.exp(0.5 * q_log_var)
            log_q = log_normal(z, q_mean, q_log_var)
            log_p = log_normal(z, p_mean, p_log_var)
            kl = gaussian_kl_two(q_mean, q_log_var, p_mean, p_log_var)
        h = self.res(h + feat + self.z_proj(z.to(h.dtype)))
        return h, z, log_q, log_p, kl


class TopDownVAE(HierarchicalVAE):
    """Top-down hierarchical VAE (module docstring). Trains on the ELBO (free bits per layer,
    analytic KL per layer, ``train/kl_<l>``) or the IWAE bound (``k > 1``); ``val/nll`` and
    ``genlab.eval`` importance-sample all L layers."""

    config_class = TopDownVAEConfig
    family = "topdown_vae"
    networks = ("stem", "bottom_up", "cells", "out")  # model.compile / channels_last

    def __init__(self, **kwargs):
        GenerativeModule.__init__(self, **kwargs)
        cfg = self.config
        self.likelihood = build_likelihood(
            cfg.likelihood, cfg.gaussian_std, cfg.learn_std, cfg.num_mixtures
        )
        w, n = cfg.width, cfg.blocks_per_resolution
        self.resolutions = [cfg.image_size // 2**i for i in range(cfg.num_resolutions)]
        self.stem = nn.Conv2d(cfg.channels, w, 3, 1, 1)
        self.bottom_up = nn.ModuleList(
            nn.Sequential(*[ResBlock(w) for _ in range(n)]) for _ in self.resolutions
        )
        low = self.resolutions[-1]
        self.top_input = nn.Parameter(torch.zeros(1, w, low, low))
        self.cells = nn.ModuleList(
            TopDownCell(w, cfg.z_channels) for _ in range(len(self.resolutions) * n)
        )
        out = num_decoder_params(self.likelihood, cfg.channels)
        self.out = nn.Sequential(nn.SiLU(), nn.Conv2d(w, out, 3, 1, 1))
        self._nll_images_seen = 0

    def layer_dims(self) -> list[int]:
        """Scalar dimensions of each latent layer, top (lowest resolution) first."""
        n, zc = self.config.blocks_per_resolution, self.config.z_channels
        return [zc * r * r for r in reversed(self.resolutions) for _ in range(n)]

    def _cell_resolutions(self) -> list[int]:
        n = self.config.blocks_per_resolution
        return [r for r in reversed(self.resolutions) for _ in range(n)]

    def _encode_features(self, x: Tensor) -> dict[int, Tensor]:
        """Bottom-up activations per resolution r: (B, w, r, r)."""
        h = self.stem(x * 2.0 - 1.0)
        feats = {}
        for i, (r, blocks) in enumerate(zip(self.resolutions, self.bottom_up)):
            h = blocks(h)
            feats[r] = h
            if i < len(self.resolutions) - 1:
                h = F.avg_pool2d(h, 2)
        return feats

    def _top_down(self, batch: int, feats: dict[int, Tensor] | None, noise=None, scale=1.0):
        """Run the L cells; returns (params, [(log_q, log_p, kl) per layer])."""
        h = self.top_input.expand(batch, -1, -1, -1)
        stats, r_prev = [], None
        for i, (cell, r) in enumerate(zip(self.cells, self._cell_resolutions())):
            if r_prev is not None and r != r_prev:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            r_prev = r
            enc = None if feats is None else feats[r]
            h, _, log_q, log_p, kl = cell(h, enc, None if noise is None else noise[i], scale)
            stats.append((log_q, log_p, kl))
        return self.out(h), stats

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Per image (B,): ``recon`` = log p(x|z), z ~ q; ``kl_per_layer`` (B, L) analytic
        per cell; ``kl`` their sum."""
        params, stats = self._top_down(x.shape[0], self._encode_features(x))
        kl_per_layer = torch.stack([kl for _, _, kl in stats], dim=1)
        recon = self.likelihood.log_prob(x, params)
        return {"recon": recon, "kl": kl_per_layer.sum(1), "kl_per_layer": kl_per_layer,
                "kl_per_dim": None}  # fmt: skip

    def log_importance_weights(
        self, x: Tensor, k: int, prior_weight: float = 1.0, chunk_size: int | None = None
    ) -> Tensor:
        """log w over all layers (module docstring), (k, B) fp32; bottom-up once per image."""
        feats = self._encode_features(x)
        chunk_size = k if chunk_size is None else max(1, int(chunk_size))
        b, out = x.shape[0], []
        for start in range(0, k, chunk_size):
            n = min(chunk_size, k - start)
            rep = {r: f.repeat(n, 1, 1, 1) for r, f in feats.items()}
            params, stats = self._top_down(n * b, rep)
            log_ratio = sum(lp - lq for lq, lp, _ in stats)
            log_px = self.likelihood.log_prob(x.repeat(n, 1, 1, 1), params)
            out.append((log_px + prior_weight * log_ratio).view(n, b).float())
        return torch.cat(out, dim=0)

    # -- sampling ---------------------------------------------------------------------------
    def latents(self, num_samples, generator=None, truncation=None, temperature=None, **_):
        """None: the latent is a stack of noise grids, not one vector to interpolate."""
        return None

    @torch.no_grad()
    def generate(self, num_samples, *, generator=None, truncation=None, temperature=None):
        """Ancestral samples (N, C, H, W) in [0, 1], the likelihood's mean image; the prior
        noise of every layer from ``generator`` (CPU), scaled by ``temperature``."""
        if truncation is not None:
            raise ConfigError("truncation", truncation, "unset: the top-down VAE has no truncation")
        zc = self.config.z_channels
        noise = [
            torch.randn(num_samples, zc, r, r, generator=generator).to(self.device)
            for r in self._cell_resolutions()
        ]
        scale = 1.0 if temperature is None else float(temperature)
        params, _ = self._top_down(num_samples, None, noise, scale)
        return self.likelihood.mean(params).float()

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean image (B, C, H, W) of p(x|z) with every z_l at its posterior mean."""
        x = x.to(self.device)
        feats = self._encode_features(x)
        zeros = [torch.zeros(x.shape[0], self.config.z_channels, r, r, device=self.device)
                 for r in self._cell_resolutions()]  # fmt: skip
        params, _ = self._top_down(x.shape[0], feats, zeros)
        return self.likelihood.mean(params).float()
