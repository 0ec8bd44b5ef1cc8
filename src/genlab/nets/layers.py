"""Building blocks shared by the ResNet (SNGAN / BigGAN) networks.

* :func:`conv2d`, :func:`linear`, :func:`embedding`: layers initialised with a named scheme and
  optionally wrapped in spectral normalisation (Miyato et al. 2018), ``W_SN = W / sigma(W)``;
  biases start at 0 (``bias_init="zero"``, as the chainer SNGAN and BigGAN code) or keep
  PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``bias_init="default"``, as mimicry).
* :class:`SelfAttention`: the SAGAN non-local block (Zhang et al. 2019) as in BigGAN.
* :class:`ClassConditionalBatchNorm2d`: per-class gain and bias (Miyato & Koyama 2018).
* :class:`LinearConditionalBatchNorm2d`: gain and bias linear in a conditioning vector
  (BigGAN's shared class embedding, optionally with a chunk of z).
* :func:`orthogonal_regularization`: BigGAN's ``R_beta(W) = beta/2 ||W W^T * (1 - I)||_F^2``, at
  BigGAN-PyTorch's scale (its gradient is that of ``utils.ortho``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genlab.checks.errors import ConfigError

# xavier: Glorot uniform (SNGAN, mimicry); ortho: orthogonal (BigGAN); normal: N(0, 0.02) (DCGAN);
# default: PyTorch's own initialisation.
INIT_SCHEMES = ("xavier", "ortho", "normal", "default")
# zero: biases start at 0 (chainer SNGAN, BigGAN-PyTorch); default: PyTorch's
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which mimicry keeps.
BIAS_INITS = ("zero", "default")


def check_init(scheme: str, key: str) -> str:
    """Return ``scheme`` or raise a ConfigError naming ``key`` and :data:`INIT_SCHEMES`."""
    if scheme not in INIT_SCHEMES:
        raise ConfigError(key, scheme, INIT_SCHEMES)
    return scheme


def check_bias_init(value: str, key: str) -> str:
    """Return ``value`` or raise a ConfigError naming ``key`` and :data:`BIAS_INITS`."""
    if value not in BIAS_INITS:
        raise ConfigError(key, value, BIAS_INITS)
    return value


def init_weight(weight: torch.Tensor, scheme: str, gain: float = 1.0) -> None:
    """Initialise ``weight`` in place; ``gain`` applies to ``xavier`` and ``ortho``."""
    with torch.no_grad():
        if scheme == "xavier":
            nn.init.xavier_uniform_(weight, gain)
        elif scheme == "ortho":
            nn.init.orthogonal_(weight, gain)
        elif scheme == "normal":
            nn.init.normal_(weight, 0.0, 0.02)


def _wrap(module: nn.Module, spectral_norm: bool) -> nn.Module:
    return _spectral_norm(module) if spectral_norm else module


def conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    spectral_norm: bool,
    init: str,
    gain: float = 1.0,
    bias: bool = True,
    bias_init: str = "zero",
) -> nn.Module:
    """``kernel_size`` x ``kernel_size`` conv, stride 1, 'same' padding: (B, in, H, W) -> (B, out, H, W).

    The weight follows ``init`` (``gain`` for xavier/ortho); the bias starts at 0 unless
    ``bias_init="default"`` or ``init="default"`` (then it keeps PyTorch's)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2, bias=bias)
    init_weight(conv.weight, init, gain)
    if bias and init != "default" and bias_init == "zero":
        nn.init.zeros_(conv.bias)
    return _wrap(conv, spectral_norm)


def linear(
    in_features: int,
    out_features: int,
    *,
    spectral_norm: bool,
    init: str,
    gain: float = 1.0,
    bias: bool = True,
    bias_init: str = "zero",
) -> nn.Module:
    """Linear layer (B, in) -> (B, out), initialised as :func:`conv2d` and optionally
    spectrally normalised."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    init_weight(layer.weight, init, gain)
    if bias and init != "default" and bias_init == "zero":
        nn.init.zeros_(layer.bias)
    return _wrap(layer, spectral_norm)


def embedding(num: int, dim: int, *, spectral_norm: bool, init: str) -> nn.Module:
    """Class embedding: labels (B,) -> (B, dim)."""
    layer = nn.Embedding(num, dim)
    init_weight(layer.weight, init)
    return _wrap(layer, spectral_norm)


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019), with BigGAN's 2x2 max-pooled keys and values.

    For x (B, C, H, W), with N = H W positions and M = N / 4 pooled positions:
    ``f = theta(x)`` (B, C/8, N), ``g = maxpool(phi(x))`` (B, C/8, M),
    ``beta = softmax(f^T g)`` (B, N, M), ``h = maxpool(psi(x))`` (B, C/2, M),
    ``o = out(h beta^T)`` (B, C, H, W) and the block returns ``x + gamma * o``; ``gamma`` starts
    at 0, so the block starts as the identity.
    """

    def __init__(self, channels: int, spectral_norm: bool = True, init: str = "xavier"):
        super().__init__()
        if channels < 8:
            raise ValueError(f"self-attention needs at least 8 channels, got {channels}")
        layer = dict(spectral_norm=spectral_norm, init=init, bias=False)
        self.theta = conv2d(channels, channels // 8, 1, **layer)
        self.phi = conv2d(channels, channels // 8, 1, **layer)
        self.psi = conv2d(channels, channels // 2, 1, **layer)
        self.out = conv2d(channels // 2, channels, 1, **layer)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        query = self.theta(x).flatten(2)  # (B, C/8, N)
        key = F.max_pool2d(self.phi(x), 2).flatten(2)  # (B, C/8, M)
        value = F.max_pool2d(self.psi(x), 2).flatten(2)  # (B, C/2, M)
        attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (B, N, M)
        attended = (value @ attention.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.out(attended)


class ClassConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up per class: ``gamma_y * BN(x) + beta_y``.

    x (B, C, H, W), labels (B,) -> (B, C, H, W). Gains start at 1, biases at 0; ``eps`` is the
    batch norm's.
    """

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=eps, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gain = self.gain(labels)[:, :, None, None]
        bias = self.bias(labels)[:, :, None, None]
        return self.bn(x) * gain + bias


class LinearConditionalBatchNorm2d(nn.Module):
    """BigGAN's conditional batch norm: ``(1 + W_g c) * BN(x) + W_b c``.

    x (B, C, H, W), c (B, cond_dim) -> (B, C, H, W). ``c`` is the shared class embedding
    and/or a chunk of z (hierarchical latent). The projections have no bias; BigGAN
    spectrally normalises them together with the rest of G. ``eps`` is the batch norm's.
    """

    def __init__(
        self,
        num_features: int,
        cond_dim: int,
        spectral_norm: bool = False,
        init: str = "ortho",
        eps: float = 1e-5,
    ):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=eps, affine=False)
        layer = dict(spectral_norm=spectral_norm, init=init, bias=False)
        self.gain = linear(cond_dim, num_features, **layer)
        self.bias = linear(cond_dim, num_features, **layer)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(cond)[:, :, None, None]
        bias = self.bias(cond)[:, :, None, None]
        return self.bn(x) * gain + bias


def _raw_weights(module: nn.Module):
    """(name, weight) of every conv/linear weight of ``module``, before spectral normalisation;
    embeddings (BigGAN leaves the shared embedding out) and 1-d parameters are skipped."""
    skip = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    for name, param in module.named_parameters():
        if param.ndim >= 2 and id(param) not in skip:
            yield name, param


def orthogonal_regularization(module: nn.Module, strength: float = 1e-4) -> torch.Tensor:
    """BigGAN's orthogonal regularisation (Brock et al. 2019, section 3.1), summed over layers,
    at the scale of BigGAN-PyTorch's ``utils.ortho`` (the authors' PyTorch release):

        R_beta = beta / 2 * sum_W || W W^T * (1 - I) ||_F^2,
        dR_beta / dW = beta * 2 ((W W^T) * (1 - I)) W

    with each weight W reshaped to (out_features, fan_in), so that the filters (rows) are
    pushed towards mutual orthogonality without constraining their norms. BigGAN-PyTorch adds
    exactly that gradient, ``strength * 2 ((W W^T) * (1 - I)) W``, to ``param.grad``; the paper's
    formula without the 1/2 has twice that gradient for the same beta (1e-4 in BigGAN). The 1/2
    makes ``model.ortho_reg`` mean BigGAN-PyTorch's ``--G_ortho``. Spectrally normalised
    layers are regularised on their raw weight, as in BigGAN-PyTorch, and embeddings (the shared
    class embedding) are left out. Returns a scalar to add to the generator loss.
    """
    total = None
    for _, weight in _raw_weights(module):
        w = weight.flatten(1)
        gram = w @ w.t()
        off_diagonal = gram - torch.diag_embed(torch.diagonal(gram))
        term = off_diagonal.pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return 0.5 * strength * total
