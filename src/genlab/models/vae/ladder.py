"""Ladder VAE (Sønderby, Raiko, Maaløe, Sønderby & Winther 2016, "Ladder Variational
Autoencoders", section 2.2; reference implementation github.com/casperkaae/LVAE,
``run_models.py``: ``modeltype == 'ladderVAE'`` and ``LadderMergeLayer``).

Generative model, z_1 nearest the data (as :class:`~genlab.models.vae.HierarchicalVAE`)::

    p(z_L) = N(0, I),  p(z_l | z_{l+1}) = N(mu_p,l(z_{l+1}), sigma^2_p,l(z_{l+1})),  p(x | z_1)

Inference: a deterministic bottom-up pass computes an approximate likelihood term per layer,

    d_0 = x,  d_l = MLP_l(d_{l-1})  (``bottom_up_from=mean``: MLP_l(mu_hat_{l-1}))
    mu_hat_l = Linear(d_l),  sigma_hat^2_l = Softplus(Linear(d_l))

and a stochastic top-down pass merges it with the top-down prior by precision weighting::

    q(z_L | x) = N(mu_hat_L, sigma_hat^2_L)
    q(z_l | z_{l+1}, x) = N(mu_q,l, sigma^2_q,l),  l < L:
        sigma^2_q = 1 / (sigma_hat^-2 + sigma_p^-2)
        mu_q = (mu_hat sigma_hat^-2 + mu_p sigma_p^-2) sigma^2_q

with (mu_p, sigma^2_p) the generative prior p(z_l | z_{l+1}) at the sampled z_{l+1}
(``share_top_down``; else a separate inference MLP of z_{l+1}, the reference's
``-ladder_share_params False``). Every variance is a softplus plus ``variance_epsilon``.

ELBO = E_q log p(x|z_1) - sum_l KL_l, each KL_l analytic between the two diagonal Gaussians
given the sampled z_{l+1} (``train/kl_<l>``, ``val/kl_<l>``); the paper's warm-up (the KL
weight from 0 to 1 over N_t epochs) is ``model.kl_warmup_steps``. The NLL estimate
importance-samples all layers: ``log w = log p(x|z_1) + sum_l [log p(z_l|.) - log q(z_l|.)]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.losses.likelihoods import build_likelihood, num_decoder_params
from genlab.models.base import GenerativeModule
from genlab.models.registry import check_not_former_family
from genlab.models.vae.config import LadderVAEConfig
from genlab.models.vae.hierarchical import HierarchicalVAE

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),  # lasagne's leaky_rectify
}
_LOG_2PI = math.log(2 * math.pi)


def precision_weighted(
    mu_hat: Tensor, var_hat: Tensor, mu_p: Tensor, var_p: Tensor
) -> tuple[Tensor, Tensor]:
    """The Ladder VAE's merge of a bottom-up estimate N(mu_hat, var_hat) with the top-down
    prior N(mu_p, var_p) (the product of the two Gaussians, renormalised): returns
    ``(mu_q, var_q)`` with ``var_q = 1 / (1/var_hat + 1/var_p)`` and
    ``mu_q = (mu_hat / var_hat + mu_p / var_p) * var_q``."""
    precision_hat, precision_p = var_hat.reciprocal(), var_p.reciprocal()
    var_q = (precision_hat + precision_p).reciprocal()
    return (mu_hat * precision_hat + mu_p * precision_p) * var_q, var_q


def log_normal(z: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """log N(z; mean, diag var) summed over the last dim: (..., D) -> (...)."""
    return -0.5 * ((z - mean).pow(2) / var + var.log() + _LOG_2PI).sum(-1)


def kl_normal(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) summed over the last dim: (..., D) -> (...)."""
    kl = var_p.log() - var_q.log() + (var_q + (mean_q - mean_p).pow(2)) / var_p - 1.0
    return 0.5 * kl.sum(-1)


def _dense(in_dim: int, out_dim: int, batch_norm: bool) -> list[nn.Module]:
    """Linear (no bias under batch norm: its shift replaces it), then BatchNorm1d if asked."""
    if batch_norm:
        return [nn.Linear(in_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim)]
    return [nn.Linear(in_dim, out_dim)]


def ladder_mlp(in_dim: int, hidden: list[int], activation: str, batch_norm: bool) -> nn.Sequential:
    """in_dim -> hidden[0] -> ... -> hidden[-1], each layer [BN] then the activation."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [*_dense(in_dim, width, batch_norm), ACTIVATIONS[activation]()]
        in_dim = width
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """h (N, in_dim) -> (mean, var), each (N, out_dim) in fp32: ``mean = Linear(h)``,
    ``var = softplus(Linear(h)) + epsilon`` (each linear map batch-normalised if asked; without
    batch norm the variance bias starts at 1, as the reference's ``b_init_var``)."""

    def __init__(self, in_dim: int, out_dim: int, batch_norm: bool, epsilon: float):
        super().__init__()
        self.mean = nn.Sequential(*_dense(in_dim, out_dim, batch_norm))
        self.var = nn.Sequential(*_dense(in_dim, out_dim, batch_norm))
        if not batch_norm:
            nn.init.constant_(self.var[0].bias, 1.0)
        self.epsilon = epsilon

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mean(h).float(), F.softplus(self.var(h).float()) + self.epsilon


class GaussianMLPHead(nn.Module):
    """z (..., in_dim) -> (mean, var) (..., out_dim): :func:`ladder_mlp` then
    :class:`GaussianHead` (leading dims flattened for the batch norm and restored)."""

    def __init__(self, in_dim, out_dim, hidden, activation, batch_norm, epsilon):
        super().__init__()
        self.mlp = ladder_mlp(in_dim, hidden, activation, batch_norm)
        self.head = GaussianHead(hidden[-1], out_dim, batch_norm, epsilon)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        lead = z.shape[:-1]
        mean, var = self.head(self.mlp(z.reshape(-1, z.shape[-1])))
        return mean.view(*lead, -1), var.view(*lead, -1)


class LadderVAE(HierarchicalVAE):
    """Sønderby et al.'s Ladder VAE (module docstring for the equations). Trains on the ELBO
    (KL warm-up, free bits per layer, analytic KL per layer ``train/kl_<l>``) or the IWAE bound
    (``k > 1``); ``val/nll`` and ``genlab.eval`` importance-sample all L layers; samples are
    ancestral draws from the generative model (``temperature``/``truncation`` act on the
    noise)."""

    config_class = LadderVAEConfig
    family = "ladder_vae"
    # what model.compile / channels_last act on
    networks = ("bottom_up", "bottom_up_heads", "priors", "inference_top_down", "decoder")

    def __init__(self, **kwargs):
        # a config of the model this name meant before (now topdown_vae): refused by name
        check_not_former_family(self.family, kwargs, "model._target_", type(self).__name__)
        GenerativeModule.__init__(self, **kwargs)  # the nets are not HierarchicalVAE's
        cfg = self.config
        self.likelihood = build_likelihood(
            cfg.likelihood, cfg.gaussian_std, cfg.learn_std, cfg.num_mixtures
        )
        dims, hidden = list(cfg.latent_dims), [list(h) for h in cfg.layer_hidden_dims]
        act, bn, eps = cfg.activation, cfg.batch_norm, cfg.variance_epsilon
        data_dim = cfg.channels * cfg.image_size**2
        below = dims[:-1] if cfg.bottom_up_from == "mean" else [h[-1] for h in hidden[:-1]]
        inputs = [data_dim, *below]  # what each bottom-up MLP reads
        self.bottom_up = nn.ModuleList(
            ladder_mlp(inputs[i], hidden[i], act, bn) for i in range(len(dims))
        )
        self.bottom_up_heads = nn.ModuleList(
            GaussianHead(hidden[i][-1], dims[i], bn, eps) for i in range(len(dims))
        )

        # priors[i]: p(z_{i+1} | z_{i+2}) in 1-based layers, through layer i+2's widths reversed
        def top_down() -> nn.ModuleList:
            return nn.ModuleList(
                GaussianMLPHead(dims[i + 1], dims[i], hidden[i + 1][::-1], act, bn, eps)
                for i in range(len(dims) - 1)
            )

        self.priors = top_down()
        self.inference_top_down = nn.ModuleList() if cfg.share_top_down else top_down()
        out_channels = num_decoder_params(self.likelihood, cfg.channels)
        self.output_shape = (out_channels, cfg.image_size, cfg.image_size)
        self.decoder = nn.Sequential(
            ladder_mlp(dims[0], hidden[0][::-1], act, bn),
            nn.Linear(hidden[0][0], math.prod(self.output_shape)),  # no batch norm (reference)
        )
        self._nll_images_seen = 0

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A resumed checkpoint of the model this name meant before is refused by name (before
        Lightning loads its weights)."""
        check_not_former_family(
            self.family, checkpoint.get("hyper_parameters"), "ckpt_path", "that checkpoint"
        )
        super().on_load_checkpoint(checkpoint)

    # -- the two passes -----------------------------------------------------------------------
    def bottom_up_terms(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """The deterministic bottom-up pass: [(mu_hat_l, var_hat_l)] for l = 1..L, each (B, d_l)."""
        h, terms = x.flatten(1), []
        for mlp, head in zip(self.bottom_up, self.bottom_up_heads):
            d = mlp(h)
            mean, var = head(d)
            terms.append((mean, var))
            h = mean.to(d.dtype) if self.config.bottom_up_from == "mean" else d
        return terms

    def _top_down(self, up: list[tuple[Tensor, Tensor]], n: int, noise_scale: float = 1.0):
        """n posterior draws per image from the bottom-up terms ``up``: returns
        ``(zs, log_qs, log_ps, kls)``, lists over layers 1..L of (n, B, d_l) and (n, B);
        ``noise_scale`` 0 puts every z_l at its posterior mean."""
        top_mean, top_var = up[-1]
        shape = (n, *top_mean.shape)
        mean, var = top_mean.expand(shape), top_var.expand(shape)
        z = mean + noise_scale * torch.randn(shape, device=mean.device) * var.sqrt()
        zeros, ones = torch.zeros_like(z), torch.ones_like(z)
        zs, log_qs = [z], [log_normal(z, mean, var)]
        log_ps, kls = [log_normal(z, zeros, ones)], [kl_normal(mean, var, zeros, ones)]
        for i in reversed(range(len(self.priors))):
            p_mean, p_var = self.priors[i](z)
            t_mean, t_var = (
                (p_mean, p_var) if self.config.share_top_down else self.inference_top_down[i](z)
            )
            mean, var = precision_weighted(*(t.expand_as(t_mean) for t in up[i]), t_mean, t_var)
            z = mean + noise_scale * torch.randn_like(mean) * var.sqrt()
            zs.insert(0, z)
            log_qs.insert(0, log_normal(z, mean, var))
            log_ps.insert(0, log_normal(z, p_mean, p_var))
            kls.insert(0, kl_normal(mean, var, p_mean, p_var))
        return zs, log_qs, log_ps, kls

    def decode(self, z: Tensor) -> Tensor:
        """z_1 (..., d_1) -> likelihood parameters (N, C * params_per_channel, H, W)."""
        return self.decoder(z.reshape(-1, z.shape[-1])).view(-1, *self.output_shape)

    def data_log_prob(self, x: Tensor, z1: Tensor) -> Tensor:
        """log p(x | z_1) (n, B) for x (B, C, H, W), z_1 (n, B, d_1)."""
        n = z1.shape[0]
        x_rep = x.unsqueeze(0).expand(n, *x.shape).flatten(0, 1)
        return self.likelihood.log_prob(x_rep, self.decode(z1)).view(n, -1).float()

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log_var) of the bottom-up term of z_1 (B, d_1): mu_hat_1, log sigma_hat^2_1."""
        mean, var = self.bottom_up_terms(x)[0]
        return mean, var.log()

    # -- bounds -------------------------------------------------------------------------------
    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Per image (B,): ``recon`` = log p(x|z_1), z ~ q; ``kl_per_layer`` (B, L), layer 1
        first, each analytic given the sampled layer above; ``kl`` their sum."""
        zs, _, _, kls = self._top_down(self.bottom_up_terms(x), 1)
        kl_per_layer = torch.stack([kl[0] for kl in kls], dim=1)
        recon = self.data_log_prob(x, zs[0])[0]
        return {"recon": recon, "kl": kl_per_layer.sum(1), "kl_per_layer": kl_per_layer,
                "kl_per_dim": None}  # fmt: skip

    def log_importance_weights(
        self, x: Tensor, k: int, prior_weight: float = 1.0, chunk_size: int | None = None
    ) -> Tensor:
        """log w_i = log p(x|z_1) + prior_weight * sum_l [log p(z_l|.) - log q(z_l|.)], (k, B)
        fp32; the bottom-up pass runs once, the top-down pass on at most ``chunk_size * B``
        draws at a time."""
        up = self.bottom_up_terms(x)
        chunk_size = k if chunk_size is None else max(1, int(chunk_size))
        out = []
        for start in range(0, k, chunk_size):
            zs, log_qs, log_ps, _ = self._top_down(up, min(chunk_size, k - start))
            log_ratio = torch.stack(log_ps).sum(0) - torch.stack(log_qs).sum(0)
            out.append(self.data_log_prob(x, zs[0]) + prior_weight * log_ratio)
        return torch.cat(out, dim=0)

    # -- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def _descend(self, z: Tensor, noise: list[Tensor] | None) -> Tensor:
        """From z_L (N, d_L) down to the likelihood's mean image; ``noise`` [eps_{L-1}..eps_1]
        for ancestral sampling (None: the conditional means)."""
        for j, i in enumerate(reversed(range(len(self.priors)))):
            mean, var = self.priors[i](z)
            z = mean if noise is None else mean + noise[j].to(z.device) * var.sqrt()
        return self.likelihood.mean(self.decode(z)).float()

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean image (B, C, H, W) of p(x|z_1) with every z_l at its posterior mean."""
        zs, _, _, _ = self._top_down(self.bottom_up_terms(x.to(self.device)), 1, noise_scale=0.0)
        return self.likelihood.mean(self.decode(zs[0])).float()
