"""The net options that let the recipes mirror their sources layer by layer (issue 30):

* DCGAN (Radford et al. 2016, github.com/Newmu/dcgan_code): ``kernel_size: 5`` (5x5 stride-2
  layers whose deconv is the gradient of the stride-2, padding-2 conv), ``init: normal``
  (N(0, 0.02) weights, N(1, 0.02) batch-norm gains, zero biases), ``bias: false`` (no biases
  outside batch norm) and ``bn_eps``; the defaults stay pytorch/examples' DCGAN (model=gan).
* ResNet (mimicry at a7fda06): ``bias_init: default`` keeps PyTorch's biases (mimicry
  re-initialises weights only) and ``default_init_layers`` leaves named layers at PyTorch's
  init (mimicry's WGAN-GP shortcuts and G output conv).

Nets are tiny; the statistics use layers of a few thousand weights at least."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.nn.utils import parametrize

from conftest import compose_config
from genlab.checks.errors import ConfigError
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.resnet import ResNetDiscriminator, ResNetGenerator
from genlab.nets.zoo import DISCRIMINATORS, GENERATORS

CONVS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def _weight(layer: nn.Module) -> torch.Tensor:
    """A layer's weight before spectral normalisation."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original.detach()
    return layer.weight.detach()


def _layers(net: nn.Module, kinds=CONVS) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kinds)]


# -- DCGAN --------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_size", [28, 32, 64])
@pytest.mark.parametrize("kernel_size", [4, 5])
def test_dcgan_kernel_size_keeps_every_stage_at_twice_or_half_the_side(image_size, kernel_size):
    g = DCGANGenerator(16, 3, image_size, base_channels=4, kernel_size=kernel_size)
    d = DCGANDiscriminator(3, image_size, base_channels=4, kernel_size=kernel_size)
    convs = _layers(g, nn.ConvTranspose2d) + _layers(d, nn.Conv2d)
    assert convs and all(c.kernel_size == (kernel_size, kernel_size) for c in convs)
    sides = []
    for conv in _layers(g, nn.ConvTranspose2d) + _layers(d, nn.Conv2d):
        conv.register_forward_hook(lambda m, i, o: sides.append((i[0].shape[-1], o.shape[-1])))
    images = g(torch.randn(2, 16))
    assert images.shape == (2, 3, image_size, image_size)
    assert d(images).shape == (2,)
    stages = len(sides) // 2
    assert all(out == 2 * side for side, out in sides[:stages])  # G doubles
    assert all(2 * out == side for side, out in sides[stages:])  # D halves


def test_dcgan_5x5_deconv_is_the_gradient_of_the_sources_strided_conv():
    """Newmu/dcgan_code's deconv (lib/ops.py) is the input gradient of a 5x5 conv with stride 2
    and border_mode 2 whose input is twice the output's side: kernel_size=5 gives exactly that
    map (padding 2, output_padding 1), not just the same shapes."""
    torch.manual_seed(0)
    g = DCGANGenerator(16, 3, 32, base_channels=4, kernel_size=5)
    deconv = _layers(g, nn.ConvTranspose2d)[0]
    h = torch.randn(2, deconv.in_channels, 4, 4)
    x = torch.zeros(2, deconv.out_channels, 8, 8, requires_grad=True)
    (source,) = torch.autograd.grad(
        F.conv2d(x, deconv.weight, stride=2, padding=2), x, grad_outputs=h
    )
    torch.testing.assert_close(deconv(h), source)


def test_dcgan_normal_init_is_radford_et_al():
    """init=normal: every conv/linear weight N(0, 0.02), every norm gain N(1, 0.02), every
    bias 0, in G and D (spectral norm applied after it); the default is PyTorch's."""
    torch.manual_seed(0)
    nets = [
        DCGANGenerator(64, 3, 32, base_channels=16, init="normal"),
        DCGANDiscriminator(3, 32, base_channels=16, init="normal"),
        DCGANDiscriminator(3, 32, base_channels=16, init="normal", spectral_norm=True),
    ]
    for net in nets:
        weights = torch.cat([_weight(m).flatten() for m in _layers(net)])
        assert weights.numel() > 40_000
        assert weights.mean().item() == pytest.approx(0.0, abs=1e-3)
        assert weights.std().item() == pytest.approx(0.02, rel=0.02)
        for layer in _layers(net):  # every big layer on its own too
            if _weight(layer).numel() >= 2000:
                assert _weight(layer).std().item() == pytest.approx(0.02, rel=0.1)
        gains = torch.cat([m.weight.detach() for m in _layers(net, nn.BatchNorm2d)])
        assert gains.std().item() == pytest.approx(0.02, rel=0.2)
        assert gains.mean().item() == pytest.approx(1.0, abs=0.01)
        biases = [m.bias for m in net.modules() if getattr(m, "bias", None) is not None]
        assert biases and all(torch.count_nonzero(b) == 0 for b in biases)
    default = DCGANGenerator(64, 3, 32, base_channels=16)
    assert all(torch.all(m.weight == 1) for m in _layers(default, nn.BatchNorm2d))
    assert _weight(_layers(default)[-1]).std().item() > 0.04  # U(+-1/sqrt(fan_in)), not 0.02


@pytest.mark.parametrize("norm", ["instance", "layer"])
def test_dcgan_normal_init_sets_the_gains_of_every_discriminator_norm(norm):
    torch.manual_seed(0)
    d = DCGANDiscriminator(3, 32, base_channels=64, norm=norm, init="normal")
    norms = _layers(d, (nn.InstanceNorm2d, nn.GroupNorm))
    assert len(norms) == 2
    gains = torch.cat([m.weight.detach() for m in norms])
    assert gains.std().item() == pytest.approx(0.02, rel=0.2)
    assert all(torch.count_nonzero(m.bias) == 0 for m in norms)


def _biased(net: nn.Module) -> list[nn.Module]:
    return [m for m in _layers(net) if m.bias is not None]


@pytest.mark.parametrize("num_classes", [None, 10])
def test_dcgan_bias_false_leaves_no_bias_outside_the_norms(num_classes):
    """bias=false: no conv, deconv or linear layer has a bias (the source's only additive terms
    are the batch-norm shifts); the default keeps G's output bias and D's conv/logit biases."""
    opts = dict(base_channels=4, num_classes=num_classes)
    g, d = (
        DCGANGenerator(16, 3, 32, bias=False, **opts),
        DCGANDiscriminator(3, 32, bias=False, **opts),
    )
    assert _biased(g) == [] and _biased(d) == []
    labels = torch.tensor([0, 1]) if num_classes else None
    assert d(g(torch.randn(2, 16), labels), labels).shape == (2,)
    g, d = DCGANGenerator(16, 3, 32, **opts), DCGANDiscriminator(3, 32, **opts)
    assert _biased(g) == [_layers(g, nn.ConvTranspose2d)[-1]]
    assert len(_biased(d)) == 4  # 3 convs + the logit layer
    assert d.head.bias is not None


def test_dcgan_bn_eps_reaches_every_batch_norm():
    g = DCGANGenerator(16, 3, 32, base_channels=4, bn_eps=1e-8)
    d = DCGANDiscriminator(3, 32, base_channels=4, bn_eps=1e-8)
    for net, count in ((g, 3), (d, 2)):
        norms = _layers(net, nn.BatchNorm2d)
        assert len(norms) == count and all(m.eps == 1e-8 for m in norms)
    assert all(m.eps == 1e-5 for m in _layers(DCGANGenerator(16, 3, 32), nn.BatchNorm2d))


def test_dcgan_defaults_are_unchanged():
    """model=gan/cpu_gan set none of the new options: 4x4 kernels, PyTorch's init, biases on
    G's output and D's layers, eps 1e-5, the same parameter names and shapes as before."""
    g, d = DCGANGenerator(100, 3, 32), DCGANDiscriminator(3, 32)
    shapes = {k: tuple(v.shape) for k, v in {**g.state_dict(), **d.state_dict()}.items()}
    assert shapes["upsample.0.weight"] == (256, 128, 4, 4)
    assert shapes["upsample.6.bias"] == (3,)
    assert shapes["features.0.weight"] == (64, 3, 4, 4)
    assert shapes["features.0.bias"] == (64,)
    assert shapes["head.bias"] == (1,)
    assert sum(v.numel() for v in g.parameters()) == 1_068_931
    assert sum(v.numel() for v in d.parameters()) == 663_745


@pytest.mark.parametrize(
    ("options", "key", "allowed"),
    [
        (dict(kernel_size=3), "kernel_size", "4, 5"),
        (dict(kernel_size=5.0), "kernel_size", "4, 5"),
        (dict(kernel_size=True), "kernel_size", "4, 5"),
        (dict(init="xavier"), "init", "'default', 'normal'"),
        (dict(bias="no"), "bias", "true or false"),
        (dict(bn_eps=0.0), "bn_eps", "(0, 1)"),
    ],
)
@pytest.mark.parametrize("net", ["generator", "discriminator"])
def test_dcgan_bad_option_names_the_key_and_the_allowed_values(options, key, allowed, net):
    with pytest.raises(ConfigError) as error:
        if net == "generator":
            DCGANGenerator(16, 3, 32, base_channels=4, **options)
        else:
            DCGANDiscriminator(3, 32, base_channels=4, **options)
    assert error.value.key == f"model.{net}.{key}"
    assert allowed in str(error.value)


# -- ResNet (mimicry) ---------------------------------------------------------------------------


def _pytorch_bound(layer: nn.Module) -> float:
    """PyTorch's default init of conv/linear weights and biases: U(-1/sqrt(fan_in), +)."""
    return 1.0 / math.sqrt(_weight(layer)[0].numel())


def _glorot_std(layer: nn.Module, gain: float = 1.0) -> float:
    w = _weight(layer)
    receptive = w[0, 0].numel()
    return gain * math.sqrt(2.0 / ((w.shape[0] + w.shape[1]) * receptive))


def _resnet_pair(**options):
    g = ResNetGenerator(16, 3, 32, base_channels=16, **options.get("g", {}))
    d = ResNetDiscriminator(3, 32, base_channels=64, **options.get("d", {}))
    return g, d


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_resnet_bias_init_default_keeps_pytorchs_biases(spectral_norm):
    """bias_init=default (mimicry): every bias is PyTorch's U(+-1/sqrt(fan_in)) while the
    weights stay Glorot; bias_init=zero (the default) starts them all at 0."""
    torch.manual_seed(0)
    opts = dict(bias_init="default", spectral_norm=spectral_norm)
    g, d = _resnet_pair(g=opts, d=opts)
    scaled = []
    for layer in _biased(g) + _biased(d):
        bound = _pytorch_bound(layer)
        assert layer.bias.abs().max().item() <= bound
        scaled.append(layer.bias.detach() / bound)
    assert len(scaled) == 11 + 11  # G: linear, 3 x 3 block convs, output; D: 3+3+2+2 convs, head
    scaled = torch.cat(scaled)
    assert scaled.std().item() == pytest.approx(1 / math.sqrt(3), rel=0.1)  # U(-1, 1)
    block = g.blocks[0]
    assert _weight(block.conv1).std().item() == pytest.approx(
        _glorot_std(block.conv1, math.sqrt(2)), rel=0.05
    )
    g, d = _resnet_pair(g=dict(spectral_norm=spectral_norm), d=dict(spectral_norm=spectral_norm))
    assert all(torch.count_nonzero(m.bias) == 0 for m in _biased(g) + _biased(d))


def test_resnet_default_init_layers_leave_mimicrys_wgan_gp_layers_at_pytorchs_init():
    """mimicry's WGAN-GP nets: the 1x1 shortcuts and G's output conv keep PyTorch's init
    (std 1/sqrt(3 fan_in), bias included) while the residual convs and the linear layers are
    Glorot; without the option every one of them is Glorot (gain 1) with zero bias."""
    torch.manual_seed(0)
    g, d = _resnet_pair(
        g=dict(default_init_layers=["shortcut", "output"]), d=dict(default_init_layers=["shortcut"])
    )
    plain_g, plain_d = _resnet_pair()
    pytorch = [b.shortcut for b in g.blocks] + [g.out_conv, d.blocks[1].shortcut]
    glorot = [b.shortcut for b in plain_g.blocks] + [plain_g.out_conv, plain_d.blocks[1].shortcut]
    for layer in pytorch:
        assert _weight(layer).std().item() == pytest.approx(
            _pytorch_bound(layer) / math.sqrt(3), rel=0.05
        )
        assert torch.count_nonzero(layer.bias) > 0
    for layer in glorot:
        assert _weight(layer).std().item() == pytest.approx(_glorot_std(layer), rel=0.05)
        assert torch.count_nonzero(layer.bias) == 0
    # D's first shortcut (3 -> 128, 384 weights): PyTorch's bound 1/sqrt(3) is wider than
    # Glorot's sqrt(6 / 131): the sampled weights must leave the Glorot range.
    first, plain_first = d.blocks[0].shortcut, plain_d.blocks[0].shortcut
    glorot_bound = _glorot_std(first) * math.sqrt(3)
    assert glorot_bound < _weight(first).abs().max().item() <= _pytorch_bound(first)
    assert _weight(plain_first).abs().max().item() <= glorot_bound
    assert [b.shortcut for b in d.blocks[2:]] == [None, None]  # identity shortcuts as mimicry
    # the layers not named keep init=xavier
    for net in (g, d):
        block = net.blocks[1]
        expected = _glorot_std(block.conv2, math.sqrt(2))
        assert _weight(block.conv2).std().item() == pytest.approx(expected, rel=0.05)
    assert _weight(g.linear).std().item() == pytest.approx(_glorot_std(g.linear), rel=0.05)


def test_resnet_default_init_layers_input_and_head():
    torch.manual_seed(0)
    g = ResNetGenerator(16, 3, 32, base_channels=16, default_init_layers=["input"])
    d = ResNetDiscriminator(3, 32, base_channels=64, default_init_layers=["head"])
    assert _weight(g.linear).std().item() == pytest.approx(
        _pytorch_bound(g.linear) / 3**0.5, rel=0.05
    )
    assert torch.count_nonzero(g.linear.bias) > 0
    assert torch.count_nonzero(d.head.bias) == 1
    assert _weight(d.head).abs().max().item() <= _pytorch_bound(d.head)


@pytest.mark.parametrize(
    ("make", "key", "allowed"),
    [
        (lambda: ResNetGenerator(16, 3, 32, bias_init="uniform"), "generator.bias_init", "'zero'"),
        (lambda: ResNetDiscriminator(3, 32, bias_init=0), "discriminator.bias_init", "'default'"),
        (
            lambda: ResNetGenerator(16, 3, 32, default_init_layers="shortcut"),
            "generator.default_init_layers",
            "['input', 'shortcut', 'output']",
        ),
        (
            lambda: ResNetGenerator(16, 3, 32, default_init_layers=["shortcut", "shortcut"]),
            "generator.default_init_layers",
            "distinct",
        ),
        (
            lambda: ResNetDiscriminator(3, 32, default_init_layers=["output"]),
            "discriminator.default_init_layers",
            "['shortcut', 'head']",
        ),
        (
            lambda: ResNetDiscriminator(3, 32, default_init_layers=[{"a": 1}]),
            "discriminator.default_init_layers",
            "['shortcut', 'head']",
        ),
    ],
)
def test_resnet_bad_init_option_names_the_key_and_the_allowed_values(make, key, allowed):
    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.key == f"model.{key}"
    assert allowed in str(error.value)


# -- the recipes build the sources' layers --------------------------------------------------------


def _nets(tmp_path, experiment: str, *overrides: str):
    cfg = compose_config(tmp_path, f"experiment={experiment}", *overrides)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    g_spec, d_spec = dict(model["generator"]), dict(model["discriminator"])
    shape = dict(channels=3, image_size=32, num_classes=None)
    g = GENERATORS[g_spec.pop("arch")](latent_dim=model["latent_dim"], **shape, **g_spec)
    d = DISCRIMINATORS[d_spec.pop("arch")](**shape, **d_spec)
    return g, d


def test_dcgan_cifar10_builds_radford_et_als_layers(tmp_path):
    torch.manual_seed(0)
    small = ("model.generator.base_channels=16", "model.discriminator.base_channels=16")
    g, d = _nets(tmp_path, "dcgan_cifar10", *small)
    assert all(c.kernel_size == (5, 5) for c in _layers(g, nn.ConvTranspose2d))
    assert all(c.kernel_size == (5, 5) for c in _layers(d, nn.Conv2d))
    assert _biased(g) == [] and _biased(d) == []
    assert all(m.eps == 1e-8 for m in _layers(g, nn.BatchNorm2d) + _layers(d, nn.BatchNorm2d))
    assert _weight(d.head).std().item() == pytest.approx(0.02, rel=0.05)


def test_wgan_gp_cifar10_builds_mimicrys_init(tmp_path):
    torch.manual_seed(0)
    g, d = _nets(tmp_path, "wgan_gp_cifar10", "model.generator.base_channels=16")
    for layer in [b.shortcut for b in g.blocks] + [g.out_conv]:
        expected = _pytorch_bound(layer) / math.sqrt(3)
        assert _weight(layer).std().item() == pytest.approx(expected, rel=0.05)
    assert torch.count_nonzero(g.linear.bias) > 0 and torch.count_nonzero(d.head.bias) == 1
    assert _weight(d.blocks[1].shortcut).std().item() == pytest.approx(
        _pytorch_bound(d.blocks[1].shortcut) / math.sqrt(3), rel=0.05
    )
