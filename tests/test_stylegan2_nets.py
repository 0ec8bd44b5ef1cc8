"""StyleGAN2 generator and discriminator: parameter counts against the official implementation,
shapes at every size, mapping / truncation / style mixing, (de)modulation, noise,
minibatch stddev, equalised lr, bf16, path length penalty, and config errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.checks.errors import ConfigError
from genlab.nets.stylegan2 import (
    STYLEGAN2_SIZES,
    EqualizedLinear,
    ModulatedConv2d,
    PathLengthPenalty,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    minibatch_stddev,
)


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


SMALL = dict(channel_base=256, channel_max=16)  # 16 channels up to 16 px, 8 at 32 px


def small_g(size=32, **kwargs) -> StyleGAN2Generator:
    options = dict(w_dim=16, mapping_layers=2, **SMALL) | kwargs
    return StyleGAN2Generator(16, 3, size, **options)


def small_d(size=32, **kwargs) -> StyleGAN2Discriminator:
    return StyleGAN2Discriminator(3, size, **(dict(cmap_dim=16, **SMALL) | kwargs))


@pytest.fixture(scope="module")
def official_1024():
    """G and D as NVlabs/stylegan2-ada-pytorch builds them for a 1024 px ``--cfg=auto`` run
    (z = w = 512, 2 mapping layers, channel_base 32768, channel_max 512, unconditional)."""
    torch.manual_seed(0)
    return StyleGAN2Generator(512, 3, 1024, mapping_layers=2), StyleGAN2Discriminator(3, 1024)


def test_parameter_counts_match_the_official_network_summary_at_1024(official_1024):
    """stylegan2-ada-pytorch prints ``misc.print_module_summary`` of G and D when training
    starts; for this configuration the published log (a 1024 px auto-config run, reproduced
    in a public stylegan2-ada-pytorch training guide) reads "Total 28794124" parameters for
    G and "Total 29012513" for D, and per layer the rows checked below."""
    g, d = official_1024
    assert num_params(g) == 28_794_124
    assert num_params(d) == 29_012_513
    assert num_params(g.mapping.layers[0]) == 262_656  # mapping.fc0
    assert num_params(g.convs[0]) == 2_622_465  # synthesis.b4.conv1
    assert num_params(g.to_rgbs[0]) == 264_195  # synthesis.b4.torgb
    assert g.const.numel() == 8_192  # synthesis.b4 (the constant input)
    assert [num_params(g.convs[i]) for i in (9, 10)] == [1_442_561, 721_409]  # b128.conv0/1
    assert num_params(g.to_rgbs[5]) == 132_099  # synthesis.b128.torgb
    assert [num_params(g.convs[i]) for i in (15, 16)] == [51_297, 25_665]  # b1024.conv0/1
    assert num_params(d.from_rgb) == 128  # b1024.fromrgb
    first = d.blocks[0]
    assert [num_params(first[k]) for k in ("skip", "conv0", "conv1")] == [2_048, 9_248, 18_496]
    assert [num_params(m) for m in (d.conv, d.fc, d.out)] == [2_364_416, 4_194_816, 513]
    assert g.num_ws == 18


def test_config_f_parameter_counts_at_256():
    """Config F at 256 px (8 mapping layers): the same per-layer rows summed over the
    resolutions 4..256 (G: 8 * 262,656 + b4 2,894,852 + b8..b64 4 * 5,509,125 + b128
    2,296,069 + b256 705,669; D: fromrgb 512 + b256 475,520 + b128 1,901,312 + b64..b8
    4 * 4,981,760 + epilogue 6,559,745)."""
    assert num_params(StyleGAN2Generator(512, 3, 256)) == 30_034_338
    assert num_params(StyleGAN2Discriminator(3, 256)) == 28_864_129


@pytest.mark.parametrize("size", [s for s in STYLEGAN2_SIZES if s <= 256])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_shapes_at_every_size(size, num_classes):
    torch.manual_seed(0)
    g, d = small_g(size, num_classes=num_classes), small_d(size, num_classes=num_classes)
    labels = torch.tensor([0, 4, 9]) if num_classes else None
    images, ws = g(torch.randn(3, 16), labels, return_ws=True)
    assert images.shape == (3, 3, size, size)
    assert ws.shape == (3, 2 * int(math.log2(size)) - 2, 16) and g.num_ws == ws.shape[1]
    logits = d(images, labels)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    g.eval()
    assert g(torch.randn(3, 16), labels).abs().max() <= 1.0  # eval: clamped to [-1, 1]


def test_grayscale_images():
    g, d = StyleGAN2Generator(16, 1, 32, w_dim=16, **SMALL), StyleGAN2Discriminator(1, 32, **SMALL)
    assert d(g(torch.randn(2, 16))).shape == (2,)


def test_truncation_pulls_every_sample_to_the_mean_w():
    torch.manual_seed(0)
    g = small_g()
    g(torch.randn(64, 16))  # training mode: updates w_avg
    assert g.mapping.w_avg.abs().sum() > 0
    g.eval()
    z = torch.randn(4, 16)
    at_mean = g(z, truncation=0.0, noise_mode="const")
    assert torch.allclose(at_mean, at_mean[:1].expand_as(at_mean), atol=1e-6)
    _, ws = g(z, truncation=0.5, noise_mode="const", return_ws=True)
    _, ws_full = g(z, noise_mode="const", return_ws=True)
    w_avg = g.mapping.w_avg
    assert torch.allclose(ws, w_avg + 0.5 * (ws_full - w_avg), atol=1e-5)


def test_conditional_labels_change_generator_and_discriminator_outputs():
    torch.manual_seed(0)
    g, d = small_g(num_classes=10).eval(), small_d(num_classes=10)
    z = torch.randn(1, 16).repeat(2, 1)
    images = g(z, torch.tensor([1, 2]), noise_mode="const")
    assert not torch.allclose(images[0], images[1])
    x = images[:1].repeat(2, 1, 1, 1)
    logits = d(x, torch.tensor([1, 2]))
    assert logits[0] != logits[1]
    with pytest.raises(ValueError, match="labels"):
        g(z)


def test_style_mixing_switches_styles_after_a_layer_only_in_training():
    torch.manual_seed(0)
    g = small_g(style_mixing_prob=1.0)
    _, ws = g(torch.randn(2, 16), return_ws=True)
    distinct = (ws[:, 1:] - ws[:, :-1]).abs().amax(dim=(0, 2)) > 0
    assert distinct.sum() == 1  # exactly one switch point
    g.eval()
    _, ws = g(torch.randn(2, 16), return_ws=True)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_demodulation_cancels_the_weight_scale_and_to_rgb_does_not():
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 4, 3, 16, 8)
    rgb = ModulatedConv2d(8, 3, 1, 16, 8, to_rgb=True)
    x, w = torch.randn(2, 8, 8, 8), torch.randn(2, 16)
    out, out_rgb = conv(x, w, "none"), rgb(x, w)
    with torch.no_grad():
        conv.weight.mul_(10.0)
        rgb.weight.mul_(10.0)
    assert torch.allclose(conv(x, w, "none"), out, atol=1e-4)
    assert torch.allclose(rgb(x, w), 10 * out_rgb, atol=1e-4)
    # demodulated output has unit expected variance per output channel for unit-variance input
    assert conv(torch.randn(64, 8, 8, 8), torch.randn(64, 16), "none").std() < 3.0


def test_modulated_conv_equals_the_papers_per_sample_weights():
    """Eq. 1-3 of the paper done literally: w'_{o,i,k} = s_i w_{o,i,k}, w'' = w' / ||w'_o||,
    one conv per sample (as a grouped conv). The layer must give the same output."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, 16, 8)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 16)
    styles = conv.affine(w)  # (B, in)
    w_mod = conv.weight[None] * styles[:, None, :, None, None]  # (B, out, in, k, k)
    w_mod = w_mod * (w_mod.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    y = torch.nn.functional.conv2d(
        x.reshape(1, 18, 8, 8), w_mod.reshape(15, 6, 3, 3), padding=1, groups=3
    ).reshape(3, 5, 8, 8)
    expected = torch.nn.functional.leaky_relu(y + conv.bias[None, :, None, None], 0.2)
    assert torch.allclose(conv(x, w, "none"), expected * math.sqrt(2), atol=1e-5)


def test_noise_modes():
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 4, 3, 8, 8)
    with torch.no_grad():
        conv.noise_strength.fill_(1.0)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    assert not torch.equal(conv(x, w, "random"), conv(x, w, "random"))
    assert torch.equal(conv(x, w, "const"), conv(x, w, "const"))
    assert not torch.allclose(conv(x, w, "const"), conv(x, w, "none"))
    with pytest.raises(ConfigError, match="noise_mode"):
        small_g()(torch.randn(1, 16), noise_mode="fixed")


def test_minibatch_stddev_appends_the_group_std_and_takes_any_batch():
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    groups = x.reshape(4, 2, 3, 4, 4)  # sample i is in group i % 2
    expected = groups.std(dim=0, unbiased=False).mean(dim=(1, 2, 3))  # (2,)
    assert torch.allclose(out[:, 3, 0, 0], expected.repeat(4), atol=1e-5)
    d = small_d()
    for batch in (1, 3, 6):
        assert d(torch.randn(batch, 3, 32, 32)).shape == (batch,)


def test_equalized_learning_rate_stores_unit_weights_and_scales_at_run_time():
    torch.manual_seed(0)
    layer = EqualizedLinear(256, 64)
    assert layer.weight.std().item() == pytest.approx(1.0, abs=0.05)
    assert layer.weight_gain == pytest.approx(1 / 16)
    g = small_g()
    mapping_weight = g.mapping.layers[0].weight
    assert mapping_weight.std().item() == pytest.approx(100.0, rel=0.2)  # N(0, 1) / 0.01
    assert g.mapping.layers[0].weight_gain == pytest.approx(0.01 / math.sqrt(16))
    assert g.convs[1].affine.bias.detach().eq(1.0).all()  # styles start at 1


def test_bf16_autocast_forward_and_backward_on_cpu():
    torch.manual_seed(0)
    g, d = small_g(num_classes=10), small_d(num_classes=10)
    labels = torch.tensor([0, 1, 2, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        images = g(torch.randn(4, 16), labels)
        logits = d(images, labels)
    assert images.dtype == torch.bfloat16 and images.shape == (4, 3, 32, 32)
    assert torch.isfinite(images.float()).all() and torch.isfinite(logits.float()).all()
    torch.nn.functional.softplus(-logits.float()).mean().backward()
    grads = [p.grad for p in g.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)


def test_one_training_step_in_fp32_changes_both_nets():
    torch.manual_seed(0)
    g, d = small_g(), small_d()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))
    reals = torch.rand(8, 3, 32, 32) * 2 - 1
    before_g, before_d = g.convs[-1].weight.clone(), d.out.weight.clone()
    loss_d = nn.functional.softplus(d(g(torch.randn(8, 16)).detach())).mean()
    loss_d = loss_d + nn.functional.softplus(-d(reals)).mean()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = nn.functional.softplus(-d(g(torch.randn(8, 16)))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert not torch.equal(g.convs[-1].weight, before_g)
    assert not torch.equal(d.out.weight, before_d)


def test_path_length_penalty_tracks_the_mean_length_and_reaches_g():
    torch.manual_seed(0)
    g = small_g(style_mixing_prob=0.0)
    penalty = PathLengthPenalty()
    images, ws = g(torch.randn(4, 16), return_ws=True)
    values = penalty(images, ws)
    assert values.shape == (4,) and torch.isfinite(values).all()
    assert penalty.mean_length.item() > 0
    values.mean().backward()
    assert g.convs[-1].weight.grad.abs().sum() > 0
    assert "mean_length" in penalty.state_dict()


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: small_g(28), "data.image_size"),
        (lambda: small_d(48), "data.image_size"),
        (lambda: small_g(mapping_layers=0), "model.generator.mapping_layers"),
        (lambda: small_g(style_mixing_prob=1.5), "model.generator.style_mixing_prob"),
        (lambda: small_g(channel_base=0), "model.generator.channel_base"),
        (lambda: small_d(mbstd_group_size=0), "model.discriminator.mbstd_group_size"),
        (lambda: StyleGAN2Generator(0, 3, 32), "model.latent_dim"),
    ],
)
def test_bad_settings_name_the_key(make, key):
    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.key == key


@pytest.mark.parametrize(
    ("architecture", "total"),
    [("orig", 23_089_664), ("skip", 23_095_808), ("resnet", 23_876_096)],
)
def test_cifar_discriminator_parameter_counts_per_architecture(architecture, total):
    """stylegan2-ada-pytorch's ``--cfg=cifar --cond=1`` D (32 px, 512 channels everywhere,
    10 classes, cmap_dim 512, 8 class-mapping layers). orig: fromrgb 2,048 + 3 blocks of
    conv0 + conv1 (2 * 2,359,808) + epilogue conv 2,364,416 + fc 4,194,816 + out 262,656 +
    class mapping 2,106,880 (embed 5,632 + 8 * 262,656) = 23,089,664; skip adds a FromRGB
    (2,048) at 16, 8 and 4 px; resnet adds a 1x1 skip conv (262,144) to each block. The
    reference's ``Discriminator(c_dim=10, img_resolution=32, img_channels=3,
    architecture=...)`` has these totals."""
    d = StyleGAN2Discriminator(3, 32, 10, mbstd_group_size=32, architecture=architecture)
    assert num_params(d) == total
    assert num_params(d.class_mapping) == 2_106_880


def test_discriminator_layouts_have_the_references_layers():
    """orig: conv0, conv1 per block and nothing else; skip: a FromRGB at every resolution
    (S: ``from_rgb``, 16 and 8: in the blocks, 4: ``from_rgb_4``); resnet: a 1x1 skip conv per
    block and one FromRGB (the default, unchanged: its state-dict keys are the old ones)."""
    layers = {
        a: [sorted(b) for b in small_d(architecture=a).blocks] for a in ("orig", "skip", "resnet")
    }
    assert layers["orig"] == [["conv0", "conv1"]] * 3
    assert layers["skip"] == [["conv0", "conv1"]] + [["conv0", "conv1", "from_rgb"]] * 2
    assert layers["resnet"] == [["conv0", "conv1", "skip"]] * 3
    assert small_d(architecture="skip").from_rgb_4 is not None
    assert small_d(architecture="orig").from_rgb_4 is None
    assert small_d().state_dict().keys() == small_d(architecture="resnet").state_dict().keys()
    assert not any("from_rgb_4" in k for k in small_d().state_dict())


def test_skip_discriminator_reads_the_image_downsampled_to_every_resolution():
    """skip: block r adds FromRGB_r(img_r) with img_r the input FIR-downsampled to r px, and
    the epilogue adds FromRGB_4(img_4); with those convs and the main path of the last block
    silenced, D still depends on the image only through img_4."""
    torch.manual_seed(0)
    d = small_d(architecture="skip")
    seen = []
    for conv in [d.blocks[1]["from_rgb"], d.blocks[2]["from_rgb"], d.from_rgb_4]:
        conv.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    images = torch.randn(2, 3, 32, 32)
    d(images)
    assert [tuple(x.shape[2:]) for x in seen] == [(16, 16), (8, 8), (4, 4)]
    fir = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    img = images
    for x in seen:  # img_{r/2}[i, j] = sum_{a, b} f_a f_b img_r[2i + a - 1, 2j + b - 1] (zero pad)
        padded = torch.nn.functional.pad(img, [1, 1, 1, 1])
        img = sum(
            fir[a] * fir[b] * padded[:, :, a : a + 2 * x.shape[2] : 2, b : b + 2 * x.shape[3] : 2]
            for a in range(4)
            for b in range(4)
        )
        assert torch.allclose(x, img, atol=1e-6)
    with torch.no_grad():  # the last block's output is lrelu(0) = 0: only FromRGB_4 is left
        d.blocks[2]["conv1"].weight.zero_()
        d.blocks[2]["conv1"].bias.zero_()
    logits = d(images)
    with torch.no_grad():
        d.from_rgb_4.weight.zero_()
        d.from_rgb_4.bias.zero_()
    flat = d(images)
    assert not torch.allclose(logits, flat)
    assert torch.allclose(flat, d(torch.randn(2, 3, 32, 32)))  # no path from the image left


def test_orig_discriminator_has_no_path_around_the_convs():
    """Silencing conv1 of the last block leaves orig without any path from the image (the
    logit is then a constant), while resnet still has its skip convs."""
    torch.manual_seed(0)
    for architecture, constant in (("orig", True), ("resnet", False)):
        d = small_d(architecture=architecture)
        with torch.no_grad():
            d.blocks[-1]["conv1"].weight.zero_()
            d.blocks[-1]["conv1"].bias.zero_()
        a, b = d(torch.randn(4, 3, 32, 32)), d(torch.randn(4, 3, 32, 32))
        assert torch.allclose(a, b) == constant


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_every_discriminator_layout_trains_and_conditions(architecture, num_classes):
    torch.manual_seed(0)
    d = small_d(num_classes=num_classes, architecture=architecture)
    images = torch.randn(4, 3, 32, 32, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3]) if num_classes else None
    logits = d(images, labels)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)  # R1 needs this
    (logits.sum() + grad.square().sum()).backward()
    no_grad = [n for n, p in d.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert no_grad == []
    if num_classes:
        same = images[:1].detach().repeat(2, 1, 1, 1)
        out = d(same, torch.tensor([1, 2]))
        assert out[0] != out[1]


def test_bad_discriminator_architecture_names_the_key_and_the_choices():
    with pytest.raises(ConfigError) as error:
        small_d(architecture="residual")
    assert error.value.key == "model.discriminator.architecture"
    assert all(name in str(error.value) for name in ("'orig'", "'skip'", "'resnet'"))
