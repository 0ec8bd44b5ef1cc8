"""StyleGAN2 generator and discriminator (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN"), for square images of 32 to 1024 px, following the parameterisation of
NVlabs/stylegan2-ada-pytorch (``training/networks.py``) so that parameter counts match it.

Generator, z (B, latent_dim) [+ labels (B,)] -> images (B, channels, S, S)::

    w     = MLP_L(normalize(z) [, normalize(embed(one_hot(y)))])  (B, w_dim), L = mapping_layers
    w     <- w_avg + psi (w - w_avg)                              truncation psi (1: off)
    ws    = w repeated num_ws times (style mixing: a suffix from a second z, training only)
    x_4   = learned constant (C_4, 4, 4);  every resolution r = 8 .. S: up, conv, conv
    conv(x, w)  = lrelu(demod(weight * s) * x + noise * strength + bias),  s = A(w) (B, C_in)
    demod(w)_o  = w_o / sqrt(sum_{i,k} w_{o,i,k}^2 + 1e-8)       (modulation / demodulation)
    img_r = up(img_{r/2}) + ToRGB_r(x_r, w)                       (skip generator)

Discriminator, images (B, C, S, S) [+ labels] -> logits (B,), in one of the three layouts of
the reference's ``architecture`` argument (img_S = the input, img_{r/2} = down(img_r))::

    x = lrelu(FromRGB_S(img_S));  for r = S .. 8, block_r:
        resnet (default):  x = (skip_r(x) + conv_down(conv(x))) / sqrt(2)   (skip_r: 1x1, down)
        orig:              x = conv_down(conv(x))
        skip:              x = conv_down(conv(x + FromRGB_r(img_r)))  (no FromRGB_r at r = S)
    skip only:  x = x + FromRGB_4(img_4)
    x = minibatch_stddev(x) (B, C + 1, 4, 4) -> conv -> fc -> out  (projection on a class map)

Every weight uses the equalised learning rate (stored N(0, 1), scaled by 1 / sqrt(fan_in) at
run time; the mapping network also by ``lr_multiplier`` = 0.01). Resampling uses the [1, 3, 3, 1]
FIR filter; unlike the reference code, G upsamples with the filter before its 3x3 conv instead
of a transposed conv followed by the filter (same parameters, the same kind of operator).
Channels at resolution r are ``min(channel_base // r, channel_max)``: the defaults
(32768, 512) are config F. G returns raw images in training mode (the losses need them) and
clamped to [-1, 1] in eval mode (sampling, metrics).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.checks.errors import ConfigError
from genlab.checks.values import positive_int
from genlab.nets.catalog import STYLEGAN2_D_ARCHITECTURES, STYLEGAN2_SIZES
from genlab.nets.shapes import check_net_args

NOISE_MODES = ("random", "const", "none")
_LRELU_GAIN = math.sqrt(2.0)


def _fir_filter() -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(taps, taps)
    return f / f.sum()  # (4, 4)


def _blur(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1.0, stride=1):
    """Depthwise FIR filtering of x (B, C, H, W) with padding (before, after) on both axes."""
    c = x.shape[1]
    kernel = (f * gain).to(x.dtype)[None, None].expand(c, 1, *f.shape)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, kernel, stride=stride, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): zero insertion, then the FIR filter with gain 4."""
    b, c, h, w = x.shape
    x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, 1, 0, 0, 0, 1]).reshape(b, c, 2 * h, 2 * w)
    return _blur(x, f, (2, 1), gain=4.0)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2): the FIR filter, then every other pixel."""
    return _blur(x, f, (1, 1), stride=2)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualizedLinear(nn.Module):
    """y = act(x W^T * lr_mul / sqrt(in) + b * lr_mul), W ~ N(0, 1) / lr_mul: (B, in) -> (B, out)."""

    def __init__(self, in_features, out_features, *, bias_init=0.0, lr_multiplier=1.0, act=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain, self.act = lr_multiplier, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * _LRELU_GAIN if self.act else x


class EqualizedConv2d(nn.Module):
    """Equalised-lr conv of D: (B, in, H, W) -> (B, out, H, W), or (H/2, W/2) with ``down``."""

    def __init__(self, in_ch, out_ch, kernel, *, bias=True, act=True, down=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_ch * kernel * kernel)
        self.kernel, self.act, self.down = kernel, act, down
        self.register_buffer("fir", _fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down and self.kernel == 1:
            x = F.conv2d(downsample2d(x, self.fir), w, self.bias)
        elif self.down:  # blur, then a stride-2 conv
            x = F.conv2d(_blur(x, self.fir, (2, 2)), w, self.bias, stride=2)
        else:
            x = F.conv2d(x, w, self.bias, padding=self.kernel // 2)
        if self.act:
            x = F.leaky_relu(x, 0.2) * _LRELU_GAIN
        return x * gain


class MappingNetwork(nn.Module):
    """z (B, z_dim) [+ labels (B,)] -> w (B, w_dim); keeps the running mean ``w_avg``."""

    def __init__(self, z_dim, w_dim, num_classes, num_layers, lr_multiplier, w_avg_beta):
        super().__init__()
        self.z_dim, self.num_classes, self.w_avg_beta = z_dim, num_classes, w_avg_beta
        self.embed = EqualizedLinear(num_classes, w_dim) if num_classes else None
        dims = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualizedLinear(d_in, d_out, lr_multiplier=lr_multiplier, act=True)
            for d_in, d_out in zip(dims[:-1], dims[1:])
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, labels=None, truncation: float = 1.0, update_w_avg: bool = True):
        parts = [normalize_2nd_moment(z)] if self.z_dim else []
        if self.embed is not None:
            if labels is None:
                raise ValueError("this network is class-conditional: pass labels (B,)")
            one_hot = F.one_hot(labels, self.num_classes).to(self.embed.weight.dtype)
            parts.append(normalize_2nd_moment(self.embed(one_hot)))
        x = torch.cat(parts, dim=1)
        for layer in self.layers:
            x = layer(x)
        if self.training and update_w_avg and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation != 1.0:
            x = self.w_avg.to(x.dtype).lerp(x, truncation)
        return x


class ModulatedConv2d(nn.Module):
    """Modulated (and demodulated) conv with noise, bias and lrelu: (B, in, H, W), w (B, w_dim)
    -> (B, out, H', W'); ``up`` doubles H, W. ``demodulate=False``, no noise, no activation: ToRGB.
    """

    def __init__(self, in_ch, out_ch, kernel, w_dim, resolution, *, up=False, to_rgb=False):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1 / math.sqrt(in_ch * kernel * kernel)
        self.up, self.to_rgb, self.kernel = up, to_rgb, kernel
        if not to_rgb:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("fir", _fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random"):
        styles = self.affine(w)  # (B, in)
        if self.up:
            x = upsample2d(x, self.fir)
        if self.to_rgb:  # no demodulation: the equalised-lr gain goes on the styles
            x = F.conv2d(x * (styles * self.weight_gain)[:, :, None, None], self.weight)
            return x + self.bias.to(x.dtype)[None, :, None, None]
        x = F.conv2d(x * styles[:, :, None, None], self.weight, padding=self.kernel // 2)
        # demod_o = 1 / sqrt(sum_{i,k} (W_{o,i,k} s_i)^2) = 1 / sqrt(s^2 @ (sum_k W^2)^T): the same
        # sum as the reference's (B, out, in, k, k) tensor without building it (B x its size)
        w_sq = self.weight.float().square().sum(dim=(2, 3))  # (out, in)
        demod = (styles.float().square() @ w_sq.t() + 1e-8).rsqrt()  # (B, out)
        x = x * demod.to(x.dtype)[:, :, None, None]
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        return F.leaky_relu(x + self.bias.to(x.dtype)[None, :, None, None], 0.2) * _LRELU_GAIN


def _channels(resolution: int, channel_base: int, channel_max: int) -> int:
    return max(1, min(channel_base // resolution, channel_max))


class StyleGAN2Generator(nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, channels, image_size, image_size).

    Args:
        latent_dim, channels, image_size, num_classes: as every genlab generator.
        w_dim: size of w. mapping_layers: depth of the mapping MLP (8; 2 in ADA's CIFAR setup).
        channel_base, channel_max: channels min(channel_base // r, channel_max) at resolution r.
        mapping_lr_multiplier: equalised-lr multiplier of the mapping network (0.01).
        w_avg_beta: decay of the running mean of w that truncation pulls towards.
        style_mixing_prob: in training mode, the probability that a batch switches, after a
            random layer, to the styles of a second z (0.9 in config F; 0 in ADA's CIFAR setup).
    """

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        num_classes: int | None = None,
        w_dim: int = 512,
        mapping_layers: int = 8,
        channel_base: int = 32768,
        channel_max: int = 512,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
        style_mixing_prob: float = 0.9,
    ):
        super().__init__()
        widths = {"channel_base": channel_base, "channel_max": channel_max}
        check_net_args(
            "stylegan2", "generator", STYLEGAN2_SIZES, image_size, channels, num_classes, widths
        )
        for key, value in (
            ("model.latent_dim", latent_dim),
            ("model.generator.w_dim", w_dim),
            ("model.generator.mapping_layers", mapping_layers),
        ):
            if not positive_int(value):
                raise ConfigError(key, value, "an integer >= 1")
        if not (isinstance(style_mixing_prob, int | float) and 0 <= style_mixing_prob <= 1):
            raise ConfigError(
                "model.generator.style_mixing_prob", style_mixing_prob, "a number in [0, 1]"
            )
        self.num_classes, self.style_mixing_prob = num_classes, float(style_mixing_prob)
        self.mapping = MappingNetwork(
            latent_dim, w_dim, num_classes, mapping_layers, mapping_lr_multiplier, w_avg_beta
        )
        resolutions = [2**i for i in range(2, int(math.log2(image_size)) + 1)]
        ch = {r: _channels(r, channel_base, channel_max) for r in resolutions}
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.convs = nn.ModuleList()  # in order; the first of each r > 4 upsamples
        self.to_rgbs = nn.ModuleList()
        for r in resolutions:
            if r > 4:
                self.convs.append(ModulatedConv2d(ch[r // 2], ch[r], 3, w_dim, r, up=True))
            self.convs.append(ModulatedConv2d(ch[r], ch[r], 3, w_dim, r))
            self.to_rgbs.append(ModulatedConv2d(ch[r], channels, 1, w_dim, r, to_rgb=True))
        self.num_ws = len(self.convs) + 1  # ToRGB_r shares w with the next conv; +1 for the last
        self.register_buffer("fir", _fir_filter(), persistent=False)

    def mapping_ws(self, z, labels=None, truncation: float = 1.0) -> torch.Tensor:
        """z (B, latent_dim) -> ws (B, num_ws, w_dim), with truncation and (training) mixing."""
        w = self.mapping(z, labels, truncation)
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if self.training and self.style_mixing_prob > 0:
            if torch.rand(()) < self.style_mixing_prob:
                cutoff = int(torch.randint(1, self.num_ws, ()))
                w2 = self.mapping(torch.randn_like(z), labels, truncation, update_w_avg=False)
                ws[:, cutoff:] = w2[:, None]
        return ws

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """ws (B, num_ws, w_dim) -> raw images (B, channels, S, S)."""
        x = self.const[None].repeat(ws.shape[0], 1, 1, 1).to(ws.dtype)
        x = self.convs[0](x, ws[:, 0], noise_mode)
        image = self.to_rgbs[0](x, ws[:, 1])
        for i, to_rgb in enumerate(self.to_rgbs[1:]):
            idx = 1 + 2 * i
            x = self.convs[idx](x, ws[:, idx], noise_mode)
            x = self.convs[idx + 1](x, ws[:, idx + 1], noise_mode)
            image = upsample2d(image, self.fir) + to_rgb(x, ws[:, idx + 2])
        return image

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation: float = 1.0,
        noise_mode: str = "random",
        return_ws: bool = False,
    ):
        if noise_mode not in NOISE_MODES:
            raise ConfigError("noise_mode", noise_mode, NOISE_MODES)
        ws = self.mapping_ws(z, labels, truncation)
        images = self.synthesis(ws, noise_mode)
        if not self.training:
            images = images.clamp(-1, 1)
        return (images, ws) if return_ws else images


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C + 1, H, W): the mean over C, H, W of the std over groups of samples
    (the largest divisor of B up to ``group_size``), appended as one feature map."""
    b, c, h, w = x.shape
    g = min(group_size, b)
    while b % g:
        g -= 1
    y = x.float().reshape(g, -1, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (B / g, C, H, W)
    y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """images (B, channels, image_size, image_size) [+ labels (B,)] -> logits (B,).

    Args:
        channels, image_size, num_classes: as every genlab discriminator; with classes the
            logit is the projection <phi(x), cmap(y)> / sqrt(cmap_dim), cmap a mapping network.
        channel_base, channel_max: as for the generator.
        mbstd_group_size: samples per minibatch-stddev group (4; 32 in ADA's CIFAR setup).
        cmap_dim, class_mapping_layers: size and depth of the class mapping (conditional only).
        architecture: ``resnet`` (residual blocks, config F), ``orig`` (no skip or residual
            path; the reference's ``cifar`` config) or ``skip`` (a FromRGB of the input
            downsampled to every resolution 4..S, added before each block and the epilogue).
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int | None = None,
        channel_base: int = 32768,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        cmap_dim: int = 512,
        class_mapping_layers: int = 8,
        architecture: str = "resnet",
    ):
        super().__init__()
        widths = {"channel_base": channel_base, "channel_max": channel_max}
        check_net_args(
            "stylegan2", "discriminator", STYLEGAN2_SIZES, image_size, channels, num_classes, widths
        )
        if not positive_int(mbstd_group_size):
            key = "model.discriminator.mbstd_group_size"
            raise ConfigError(key, mbstd_group_size, "an integer >= 1")
        if architecture not in STYLEGAN2_D_ARCHITECTURES:
            key = "model.discriminator.architecture"
            raise ConfigError(key, architecture, STYLEGAN2_D_ARCHITECTURES)
        self.architecture = architecture
        resolutions = [2**i for i in range(int(math.log2(image_size)), 2, -1)]  # S .. 8
        ch = {r: _channels(r, channel_base, channel_max) for r in resolutions + [4]}
        # the FromRGB of resolution S (every layout); skip adds one per lower resolution,
        # in the blocks and the epilogue (from_rgb_4), each lrelu(1x1 conv) of img_r
        self.from_rgb = EqualizedConv2d(channels, ch[image_size], 1)
        self.blocks = nn.ModuleList()
        for r in resolutions:
            layers = {
                "conv0": EqualizedConv2d(ch[r], ch[r], 3),
                "conv1": EqualizedConv2d(ch[r], ch[r // 2], 3, down=True),
            }
            if architecture == "resnet":
                layers["skip"] = EqualizedConv2d(
                    ch[r], ch[r // 2], 1, bias=False, act=False, down=True
                )
            if architecture == "skip" and r < image_size:
                layers["from_rgb"] = EqualizedConv2d(channels, ch[r], 1)
            self.blocks.append(nn.ModuleDict(layers))
        self.from_rgb_4 = EqualizedConv2d(channels, ch[4], 1) if architecture == "skip" else None
        self.register_buffer("fir", _fir_filter(), persistent=False)
        self.mbstd_group_size = mbstd_group_size
        self.conv = EqualizedConv2d(ch[4] + 1, ch[4], 3)
        self.fc = EqualizedLinear(ch[4] * 16, ch[4], act=True)
        self.out = EqualizedLinear(ch[4], cmap_dim if num_classes else 1)
        self.class_mapping = None
        if num_classes:
            self.class_mapping = MappingNetwork(
                0, cmap_dim, num_classes, class_mapping_layers, 0.01, None
            )
        self.cmap_dim = cmap_dim

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x, img = self.from_rgb(images), images
        for block in self.blocks:
            if self.architecture == "skip":
                if "from_rgb" in block:
                    x = x + block["from_rgb"](img)
                img = downsample2d(img, self.fir)
            if self.architecture == "resnet":
                skip = block["skip"](x, gain=math.sqrt(0.5))
                x = skip + block["conv1"](block["conv0"](x), gain=math.sqrt(0.5))
            else:
                x = block["conv1"](block["conv0"](x))
        if self.from_rgb_4 is not None:
            x = x + self.from_rgb_4(img)
        x = self.conv(minibatch_stddev(x, self.mbstd_group_size))
        x = self.out(self.fc(x.flatten(1)))
        if self.class_mapping is None:
            return x.squeeze(1)
        cmap = self.class_mapping(None, labels)
        return (x * cmap).sum(dim=1) / math.sqrt(self.cmap_dim)


class PathLengthPenalty(nn.Module):
    """Path length regularisation (StyleGAN2, eq. 4): E_{w, y}(||J_w^T y||_2 - a)^2, with
    y ~ N(0, I) / sqrt(H W) and ``a`` the running mean of the lengths (decay 0.01, a buffer).

    ``penalty = PathLengthPenalty()(images, ws)`` with ``images, ws = G(z, return_ws=True)``
    returns (B,) penalties; StyleGAN2 adds ``2 * penalty.mean()`` every 4 G steps, times 4.
    """

    def __init__(self, decay: float = 0.01):
        super().__init__()
        self.decay = decay
        self.register_buffer("mean_length", torch.zeros(()))

    def forward(self, images: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()  # (B,)
        mean = self.mean_length.lerp(lengths.mean().detach(), self.decay)
        self.mean_length.copy_(mean)
        return (lengths - mean).square()
