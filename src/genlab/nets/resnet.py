"""ResNet generator and discriminator for 32, 48, 64 and 128 px images.

The architecture of SNGAN (Miyato et al. 2018, appendix B; as in mimicry, Lee & Town 2020) and
WGAN-GP's ResNet (Gulrajani et al. 2017), with BigGAN's (Brock et al. 2019) options: a shared
class embedding feeding conditional batch norm in G, a hierarchical latent, self-attention
(SAGAN, Zhang et al. 2019) at one resolution, spectral norm in G, orthogonal initialisation.
Widths are multiples of ``base_channels`` (BigGAN's ``ch``), see :data:`G_LAYOUTS` and
:data:`D_LAYOUTS`; the defaults (64) give mimicry's SNGAN nets at every size
(at 32 px: G 256 wide, D 128 wide).

Generator, z (B, latent_dim) [+ labels (B,)] -> images (B, channels, S, S) in [-1, 1]::

    h_0 = Linear(z_0) viewed as (B, w_0, b, b)             z_0 = z, or its first chunk
    h_i = GBlock_i(h_{i-1}, c_i)                           (B, w_i, b 2^i, b 2^i), i = 1..n
    x   = tanh(conv3x3(relu(BN(h_n))))
    GBlock(h, c) = conv3x3(relu(CBN_2(conv3x3(up(relu(CBN_1(h, c)))), c))) + conv1x1(up(h))

``up`` is x2 nearest (SNGAN, BigGAN) or bilinear (mimicry) upsampling. ``CBN(h, c)`` is plain
batch norm (unconditional), per-class gain and bias (``num_classes`` without an embedding), or
``(1 + W_g c) BN(h) + W_b c`` with ``c = [embed(y), z_i]`` (BigGAN: shared embedding and/or
``hierarchical_z``, where z is split into n + 1 equal chunks, one for the input and one per block).

Discriminator, images (B, channels, S, S) [+ labels (B,)] -> logits (B,)::

    h_i  = DBlock_i(h_{i-1})                               h_0 = x
    phi  = sum_{H, W} relu(h_n)                            (B, w_n) ("mean" pooling: WGAN-GP)
    D(x) = psi(phi) [+ <embed(y), phi>]                    projection (Miyato & Koyama 2018)
    DBlock(h) = pool(conv3x3(relu(conv3x3(relu(h))))) + pool(conv1x1(h))

The first D block has no leading ReLU and pools before its shortcut conv (SNGAN's "optimised"
block); ``pool`` is 2x2 average pooling where the layout downsamples, else the identity, and the
shortcut is the identity where widths match and nothing is pooled. Every D layer is spectrally
normalised unless ``spectral_norm=False`` (WGAN-GP).

Self-attention goes after the first block whose output has side ``attention_resolution``
(:func:`block_resolutions` lists the output side of every block). StudioGAN's ``attn_g_loc: [n]``
/ ``attn_d_loc: [n]`` (attention after the n-th block, counted from 1, in its big_resnet.py) is
``attention_resolution = block_resolutions(image_size, net)[n - 1]``: for its CIFAR-10 BigGAN
(``[2]`` in G, ``[1]`` in D at 32 px) that is 16 in both nets. A D location after a block
that does not change the side (StudioGAN's 3 or 4 at 32 px) has no genlab equivalent.

Initialisation: ``xavier`` gives the residual 3x3 convs a gain of sqrt(2) (SNGAN, mimicry);
``ortho`` uses gain 1 everywhere, as BigGAN-PyTorch and StudioGAN (``init.orthogonal_``).
Two options make it per layer, to mirror a source exactly:

* ``bias_init``: ``zero`` (default; the chainer SNGAN and BigGAN code) starts every bias at 0;
  ``default`` keeps PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases, as mimicry (which
  re-initialises only the weights).
* ``default_init_layers``: layers that keep PyTorch's default initialisation (weight and bias)
  instead of ``init``: ``shortcut`` (the 1x1 shortcut convs), in G also ``input`` (the linear
  layer on z) and ``output`` (the last 3x3 conv), in D also ``head`` (the logit layer); see
  :data:`DEFAULT_INIT_LAYERS`. mimicry's WGAN-GP nets (nets/wgan_gp/wgan_gp_resblocks.py)
  redefine their shortcut convs after the Glorot init and leave G's output conv at PyTorch's
  init: ``[shortcut, output]`` in G and ``[shortcut]`` in D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from genlab.checks.errors import ConfigError
from genlab.checks.values import number, positive_int
from genlab.nets.catalog import RESNET_SIZES
from genlab.nets.layers import (
    ClassConditionalBatchNorm2d,
    LinearConditionalBatchNorm2d,
    SelfAttention,
    check_bias_init,
    check_init,
    conv2d,
    embedding,
    linear,
)
from genlab.nets.shapes import check_net_args

# image_size -> (bottom width b, widths / base_channels: w_0 then the output of each G block)
G_LAYOUTS = {
    32: (4, (4, 4, 4, 4)),
    48: (6, (8, 4, 2, 1)),
    64: (4, (16, 8, 4, 2, 1)),
    128: (4, (16, 16, 8, 4, 2, 1)),
}
# image_size -> ((output width / base_channels, downsample) of each D block)
D_LAYOUTS = {
    32: ((2, True), (2, True), (2, False), (2, False)),
    48: ((1, True), (2, True), (4, True), (8, True), (16, False)),
    64: ((1, True), (2, True), (4, True), (8, True), (16, True)),
    128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
}
UPSAMPLE_MODES = ("nearest", "bilinear")
D_POOLINGS = ("sum", "mean")
# net -> the layers ``default_init_layers`` may name (they keep PyTorch's default init)
DEFAULT_INIT_LAYERS = {
    "generator": ("input", "shortcut", "output"),
    "discriminator": ("shortcut", "head"),
}
_RESIDUAL_GAIN = math.sqrt(2.0)  # Glorot gain of the residual convs (SNGAN, mimicry)
NETS = ("generator", "discriminator")


def _residual_gain(init: str) -> float:
    """Init gain of the residual 3x3 convs: sqrt(2) for xavier (SNGAN, mimicry), else 1
    (BigGAN-PyTorch's and StudioGAN's orthogonal init has gain 1)."""
    return _RESIDUAL_GAIN if init == "xavier" else 1.0


def block_resolutions(image_size: int, net: str) -> list[int]:
    """Output side of each block of the ``net`` (``generator`` | ``discriminator``) at
    ``image_size``: entry n - 1 is where StudioGAN's ``attn_g_loc``/``attn_d_loc`` n puts
    self-attention. Generator at 32 px: [8, 16, 32]; discriminator: [16, 8, 8, 8]."""
    if net not in NETS:
        raise ValueError(f"net must be one of {NETS}, got {net!r}")
    if image_size not in G_LAYOUTS:
        raise ConfigError("data.image_size", image_size, sorted(G_LAYOUTS))
    if net == "generator":
        bottom, mults = G_LAYOUTS[image_size]
        return [bottom * 2 ** (i + 1) for i in range(len(mults) - 1)]
    sides, size = [], image_size
    for _, down in D_LAYOUTS[image_size]:
        size = size // 2 if down else size
        sides.append(size)
    return sides


def _check_common(
    image_size, channels, num_classes, base_channels, init, bias_init, default_layers, net: str
) -> None:
    """The checks both nets share; ``net`` is ``generator`` or ``discriminator``."""
    widths = {"base_channels": base_channels}
    check_net_args("resnet", net, RESNET_SIZES, image_size, channels, num_classes, widths)
    check_init(init, f"model.{net}.init")
    check_bias_init(bias_init, f"model.{net}.bias_init")
    allowed = DEFAULT_INIT_LAYERS[net]
    listed = isinstance(default_layers, Sequence) and not isinstance(default_layers, str)
    names = list(default_layers) if listed else [None]
    if not all(n in allowed for n in names) or len(set(names)) != len(names):
        raise ConfigError(
            f"model.{net}.default_init_layers",
            default_layers,
            f"a list of distinct names from {list(allowed)} (e.g. [] or [shortcut])",
        )


def _layer_inits(init: str, default_layers, names) -> dict[str, str]:
    """name -> the init scheme of that layer group: ``default`` for the groups named in
    ``default_layers``, else ``init``."""
    return {name: "default" if name in default_layers else init for name in names}


def _check_attention(resolution, width_at: dict[int, int], image_size: int, net: str) -> None:
    """``resolution`` must be a feature-map side of the net (``width_at``: side -> width)."""
    if resolution is None:
        return
    key = f"model.{net}.attention_resolution"
    if resolution not in width_at:
        allowed = sorted(width_at)
        raise ConfigError(key, resolution, f"null or one of {allowed} at {image_size} px")
    if width_at[resolution] < 8:
        raise ConfigError(
            f"model.{net}.base_channels",
            width_at[resolution],
            f"widths >= 8 at {resolution} px for self-attention (raise base_channels)",
        )


class _BatchNorm2d(nn.BatchNorm2d):
    """Plain batch norm that takes (and ignores) a conditioning input, like the conditional ones."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


class GBlock(nn.Module):
    """Up-sampling residual block: h (B, in, H, W) [, cond] -> (B, out, 2H, 2W)."""

    def __init__(
        self,
        in_ch,
        out_ch,
        *,
        norm,
        spectral_norm: bool,
        init: str,
        upsample: str,
        bias_init: str = "zero",
        shortcut_init: str | None = None,
    ):
        super().__init__()
        layer = dict(spectral_norm=spectral_norm, init=init, bias_init=bias_init)
        self.upsample = upsample
        self.norm1 = norm(in_ch)
        self.conv1 = conv2d(in_ch, out_ch, 3, gain=_residual_gain(init), **layer)
        self.norm2 = norm(out_ch)
        self.conv2 = conv2d(out_ch, out_ch, 3, gain=_residual_gain(init), **layer)
        self.shortcut = conv2d(in_ch, out_ch, 1, **{**layer, "init": shortcut_init or init})

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample == "nearest":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(self._up(F.relu(self.norm1(x, cond))))
        h = self.conv2(F.relu(self.norm2(h, cond)))
        return h + self.shortcut(self._up(x))


class DBlock(nn.Module):
    """Residual block of D: h (B, in, H, W) -> (B, out, H/2, W/2) (or H, W without downsampling).

    ``first``: SNGAN's optimised first block (no pre-activation, pool before the shortcut conv,
    hidden width ``out``). Otherwise the hidden width is ``in`` (SNGAN) or ``out`` (``wide``).
    """

    def __init__(
        self,
        in_ch,
        out_ch,
        *,
        downsample,
        first,
        wide,
        spectral_norm,
        init,
        bias_init: str = "zero",
        shortcut_init: str | None = None,
    ):
        super().__init__()
        layer = dict(spectral_norm=spectral_norm, init=init, bias_init=bias_init)
        hidden = out_ch if (first or wide) else in_ch
        self.downsample, self.first = downsample, first
        self.conv1 = conv2d(in_ch, hidden, 3, gain=_residual_gain(init), **layer)
        self.conv2 = conv2d(hidden, out_ch, 3, gain=_residual_gain(init), **layer)
        learnable = first or downsample or in_ch != out_ch
        shortcut = {**layer, "init": shortcut_init or init}
        self.shortcut = conv2d(in_ch, out_ch, 1, **shortcut) if learnable else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            return h + x
        if self.first:
            return h + self.shortcut(self._pool(x))
        return h + self._pool(self.shortcut(x))


class ResNetGenerator(nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, channels, image_size, image_size) in [-1, 1].

    Args:
        latent_dim, channels, image_size, num_classes: as every genlab generator.
        base_channels: BigGAN's ``ch``; widths are :data:`G_LAYOUTS` multiples of it.
        spectral_norm: spectrally normalise every G layer (BigGAN; SNGAN leaves G plain).
        attention_resolution: feature-map side after which a self-attention block is inserted
            (null: none); StudioGAN's ``attn_g_loc: [n]`` is :func:`block_resolutions` [n - 1].
        class_embedding_dim: size of BigGAN's shared class embedding feeding every conditional
            batch norm; null with ``num_classes``: per-class gains and biases (SNGAN-projection).
        hierarchical_z: split z into (blocks + 1) chunks: one for the input linear layer, one
            concatenated to the conditioning vector of each block (BigGAN).
        upsample: ``nearest`` (SNGAN, BigGAN) or ``bilinear`` (mimicry).
        init: weight initialisation, one of :data:`genlab.nets.layers.INIT_SCHEMES`.
        bn_eps: epsilon of every batch norm of G (PyTorch's 1e-5; StudioGAN's big_resnet 1e-4).
        bias_init: ``zero`` (biases start at 0) or ``default`` (PyTorch's, as mimicry).
        default_init_layers: layers that keep PyTorch's default init (weight and bias) instead
            of ``init``: any of ``input`` (the linear layer on z), ``shortcut`` (the 1x1
            shortcut convs), ``output`` (the last conv); mimicry's WGAN-GP G:
            ``[shortcut, output]``.
    """

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        num_classes: int | None = None,
        base_channels: int = 64,
        spectral_norm: bool = False,
        attention_resolution: int | None = None,
        class_embedding_dim: int | None = None,
        hierarchical_z: bool = False,
        upsample: str = "nearest",
        init: str = "xavier",
        bn_eps: float = 1e-5,
        bias_init: str = "zero",
        default_init_layers: list[str] | tuple[str, ...] = (),
    ):
        super().__init__()
        checked = (init, bias_init, default_init_layers)
        _check_common(image_size, channels, num_classes, base_channels, *checked, "generator")
        if not number(bn_eps) or not 0 < bn_eps < 1:
            raise ConfigError("model.generator.bn_eps", bn_eps, "a number in (0, 1), e.g. 1e-5")
        if not positive_int(latent_dim):
            raise ConfigError("model.latent_dim", latent_dim, "an integer >= 1")
        if upsample not in UPSAMPLE_MODES:
            raise ConfigError("model.generator.upsample", upsample, UPSAMPLE_MODES)
        if class_embedding_dim is not None and not positive_int(class_embedding_dim):
            key = "model.generator.class_embedding_dim"
            raise ConfigError(key, class_embedding_dim, "null or an integer >= 1")
        bottom, mults = G_LAYOUTS[image_size]
        widths = [base_channels * m for m in mults]
        num_blocks = len(widths) - 1
        resolutions = block_resolutions(image_size, "generator")
        width_at = dict(zip(resolutions, widths[1:]))
        _check_attention(attention_resolution, width_at, image_size, "generator")
        self.num_slots = num_blocks + 1 if hierarchical_z else 1
        if latent_dim % self.num_slots:
            raise ConfigError(
                "model.latent_dim",
                latent_dim,
                f"a multiple of {self.num_slots} with model.generator.hierarchical_z=true"
                f" at {image_size} px (one chunk of z per block and one for the input)",
            )
        conditional = num_classes is not None
        shared = conditional and class_embedding_dim is not None
        if conditional and hierarchical_z and not shared:
            raise ConfigError(
                "model.generator.class_embedding_dim",
                None,
                "an integer >= 1 for a conditional generator with hierarchical_z=true",
            )
        chunk = latent_dim // self.num_slots
        cond_dim = (chunk if hierarchical_z else 0) + (class_embedding_dim if shared else 0)
        layer = dict(spectral_norm=spectral_norm, init=init)
        inits = _layer_inits(init, default_init_layers, DEFAULT_INIT_LAYERS["generator"])
        conv = dict(spectral_norm=spectral_norm, bias_init=bias_init)
        if cond_dim:  # BigGAN: (1 + W_g c) BN(h) + W_b c
            self.cond_mode = "vector"
            norm = partial(LinearConditionalBatchNorm2d, cond_dim=cond_dim, eps=bn_eps, **layer)
        elif conditional:  # SNGAN-projection: per-class gain and bias
            self.cond_mode = "class"
            norm = partial(ClassConditionalBatchNorm2d, num_classes=num_classes, eps=bn_eps)
        else:
            self.cond_mode = None
            norm = partial(_BatchNorm2d, eps=bn_eps)
        self.num_classes, self.bottom = num_classes, bottom
        self.embed = None  # BigGAN's shared embedding is a plain nn.Embedding, even with SN on G
        if shared:
            self.embed = embedding(num_classes, class_embedding_dim, spectral_norm=False, init=init)
        self.linear = linear(chunk, widths[0] * bottom * bottom, init=inits["input"], **conv)
        block = dict(layer, bias_init=bias_init, shortcut_init=inits["shortcut"])
        self.blocks = nn.ModuleList(
            GBlock(w_in, w_out, norm=norm, upsample=upsample, **block)
            for w_in, w_out in zip(widths[:-1], widths[1:])
        )
        self.attention_after = None
        self.attention = None
        if attention_resolution is not None:
            self.attention_after = resolutions.index(attention_resolution)
            width = widths[self.attention_after + 1]
            self.attention = SelfAttention(width, spectral_norm=spectral_norm, init=init)
        self.out_norm = nn.BatchNorm2d(widths[-1], eps=bn_eps)
        self.out_conv = conv2d(widths[-1], channels, 3, init=inits["output"], **conv)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes is not None and labels is None:
            raise ValueError("this generator is class-conditional: pass labels (B,)")
        chunks = z.chunk(self.num_slots, dim=1) if self.num_slots > 1 else (z,)
        z_blocks = chunks[1:] if self.num_slots > 1 else [None] * len(self.blocks)
        embedded = self.embed(labels) if self.embed is not None else None
        h = self.linear(chunks[0]).view(z.shape[0], -1, self.bottom, self.bottom)
        for i, (block, z_block) in enumerate(zip(self.blocks, z_blocks)):
            if self.cond_mode == "vector":
                cond = torch.cat([t for t in (embedded, z_block) if t is not None], dim=1)
            else:
                cond = labels if self.cond_mode == "class" else None
            h = block(h, cond)
            if i == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class ResNetDiscriminator(nn.Module):
    """images (B, channels, image_size, image_size) [+ labels (B,)] -> logits (B,).

    Args:
        channels, image_size, num_classes: as every genlab discriminator; with ``num_classes``
            the logit gets the projection term ``<embed(y), phi(x)>``.
        base_channels: widths are :data:`D_LAYOUTS` multiples of it.
        spectral_norm: spectral normalisation on every layer (SNGAN, BigGAN); off for WGAN-GP.
        attention_resolution: feature-map side after which a self-attention block is inserted
            (after the first block with that output side; null: none); StudioGAN's
            ``attn_d_loc: [n]`` is :func:`block_resolutions` [n - 1] (at 32 px: 1 -> 16, 2 -> 8).
        wide: hidden width of each block = its output width (BigGAN) instead of its input's.
        pooling: ``sum`` (SNGAN, BigGAN) or ``mean`` (WGAN-GP) global pooling of the features.
        init: weight initialisation, one of :data:`genlab.nets.layers.INIT_SCHEMES`.
        bias_init: ``zero`` (biases start at 0) or ``default`` (PyTorch's, as mimicry).
        default_init_layers: layers that keep PyTorch's default init (weight and bias) instead
            of ``init``: any of ``shortcut`` (the 1x1 shortcut convs), ``head`` (the logit
            layer); mimicry's WGAN-GP D: ``[shortcut]``.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int | None = None,
        base_channels: int = 64,
        spectral_norm: bool = True,
        attention_resolution: int | None = None,
        wide: bool = False,
        pooling: str = "sum",
        init: str = "xavier",
        bias_init: str = "zero",
        default_init_layers: list[str] | tuple[str, ...] = (),
    ):
        super().__init__()
        checked = (init, bias_init, default_init_layers)
        _check_common(image_size, channels, num_classes, base_channels, *checked, "discriminator")
        if pooling not in D_POOLINGS:
            raise ConfigError("model.discriminator.pooling", pooling, D_POOLINGS)
        layout = D_LAYOUTS[image_size]
        width_at: dict[int, int] = {}
        self.attention_after = None
        widths = [channels]
        for i, ((mult, _), size) in enumerate(
            zip(layout, block_resolutions(image_size, "discriminator"))
        ):
            widths.append(base_channels * mult)
            if size >= 4 and size not in width_at:
                width_at[size] = widths[-1]
                if size == attention_resolution:
                    self.attention_after = i
        _check_attention(attention_resolution, width_at, image_size, "discriminator")
        layer = dict(spectral_norm=spectral_norm, init=init)
        inits = _layer_inits(init, default_init_layers, DEFAULT_INIT_LAYERS["discriminator"])
        block = dict(layer, bias_init=bias_init, shortcut_init=inits["shortcut"])
        self.blocks = nn.ModuleList(
            DBlock(w_in, w_out, downsample=down, first=i == 0, wide=wide, **block)
            for i, (w_in, w_out, (_, down)) in enumerate(zip(widths[:-1], widths[1:], layout))
        )
        self.attention = None
        if attention_resolution is not None:
            self.attention = SelfAttention(width_at[attention_resolution], **layer)
        self.pooling = pooling
        head = dict(spectral_norm=spectral_norm, init=inits["head"], bias_init=bias_init)
        self.head = linear(widths[-1], 1, **head)
        self.projection = embedding(num_classes, widths[-1], **layer) if num_classes else None

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """phi(x): images (B, C, H, W) -> pooled features (B, width of the last block)."""
        h = images
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attention_after:
                h = self.attention(h)
        h = F.relu(h)
        return h.sum(dim=(2, 3)) if self.pooling == "sum" else h.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        phi = self.features(images)
        logits = self.head(phi).squeeze(1)
        if self.projection is not None:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: pass labels (B,)")
            logits = logits + (self.projection(labels) * phi).sum(dim=1)
        return logits
