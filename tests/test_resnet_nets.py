"""ResNet (SNGAN / BigGAN) generator and discriminator: sizes, parameter counts, conditioning,
spectral norm, self-attention, bf16, orthogonal regularisation, and overfitting a batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from genlab.checks.errors import ConfigError
from genlab.nets.layers import (
    ClassConditionalBatchNorm2d,
    SelfAttention,
    orthogonal_regularization,
)
from genlab.nets.resnet import (
    D_LAYOUTS,
    G_LAYOUTS,
    RESNET_SIZES,
    ResNetDiscriminator,
    ResNetGenerator,
)


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# mimicry (Lee & Town 2020, github.com/kwotsin/mimicry, torch_mimicry/nets/sngan/sngan_{32,48,64,128}.py
# with modules/resblocks.py), the SNGAN reference the sngan_cifar10 recipe reproduces.
# Neither SNGAN nor mimicry prints the totals; these are summed by hand from mimicry's layer
# definitions (nz=128, RGB, conv/linear biases, BN gain+bias; spectral-norm u/v are buffers):
#   32 px, ngf=256, bottom 4, 3 GBlocks 256->256:
#     l1 128*4096+4096 = 528,384; per GBlock c1+c2 2*590,080 + b1+b2 1,024 + c_sc 65,792
#     = 1,246,976 (x3 = 3,740,928); b5 512; c5 6,915; total 4,276,739.
#   32 px, ndf=128: optimised block 3,584+147,584+512 = 151,680; block2 (down, learnable
#     shortcut) 2*147,584+16,512 = 311,680; blocks 3-4 2*295,168; l5 129; total 1,053,825.
#   48 px (ngf=512, bottom 6; ndf=1024), 64 px (ngf=1024; ndf=1024), 128 px (ngf=1024; ndf=1024)
#     summed the same way.
MIMICRY_SNGAN_PARAMS = {  # image_size: (generator, discriminator)
    32: (4_276_739, 1_053_825),
    48: (4_878_083, 10_141_441),
    64: (12_220_675, 10_141_441),
    128: (32_150_787, 29_017_857),
}


@pytest.mark.parametrize("image_size", RESNET_SIZES)
def test_parameter_counts_match_mimicry_sngan(image_size):
    """Defaults (base_channels=64) are mimicry's SNGAN nets at every size, layer for layer:
    at 32 px the CIFAR-10 nets with G ch=256 and D ch=128 (see MIMICRY_SNGAN_PARAMS)."""
    g_count, d_count = MIMICRY_SNGAN_PARAMS[image_size]
    assert num_params(ResNetGenerator(128, 3, image_size)) == g_count
    assert num_params(ResNetDiscriminator(3, image_size)) == d_count


CONDITIONING = {
    "unconditional": dict(num_classes=None),
    "class_bn": dict(num_classes=10),  # SNGAN-projection: per-class BN gain and bias
    "shared_embedding": dict(num_classes=10, class_embedding_dim=16),  # BigGAN
    "hierarchical": dict(num_classes=10, class_embedding_dim=16, hierarchical_z=True),
    "hierarchical_unconditional": dict(num_classes=None, hierarchical_z=True),
}


def latent_dim_for(image_size: int) -> int:
    return 12 * len(G_LAYOUTS[image_size][1])  # a multiple of the hierarchical chunk count


@pytest.mark.parametrize("image_size", RESNET_SIZES)
@pytest.mark.parametrize("conditioning", sorted(CONDITIONING))
def test_shapes_at_every_size(image_size, conditioning):
    torch.manual_seed(0)
    options = CONDITIONING[conditioning]
    latent_dim = latent_dim_for(image_size)
    g = ResNetGenerator(latent_dim, 3, image_size, base_channels=4, **options)
    d = ResNetDiscriminator(3, image_size, num_classes=options["num_classes"], base_channels=4)
    labels = torch.tensor([0, 3, 9]) if options["num_classes"] else None
    images = g(torch.randn(3, latent_dim), labels)
    assert images.shape == (3, 3, image_size, image_size)
    assert images.abs().max() <= 1.0
    logits = d(images, labels)
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("image_size", RESNET_SIZES)
def test_self_attention_at_every_allowed_resolution(image_size):
    bottom, mults = G_LAYOUTS[image_size]
    g_sides = [bottom * 2 ** (i + 1) for i in range(len(mults) - 1)]
    for side in g_sides:
        g = ResNetGenerator(16, 1, image_size, base_channels=8, attention_resolution=side)
        assert g(torch.randn(1, 16)).shape == (1, 1, image_size, image_size)
    d_sides, size = [], image_size
    for _, down in D_LAYOUTS[image_size]:
        size = size // 2 if down else size
        if size >= 4 and size not in d_sides:
            d_sides.append(size)
    for side in d_sides:
        d = ResNetDiscriminator(1, image_size, base_channels=8, attention_resolution=side)
        assert d(torch.randn(1, 1, image_size, image_size)).shape == (1,)


def test_self_attention_starts_as_identity_and_learns_gamma():
    torch.manual_seed(0)
    attention = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(attention(x), x)  # gamma = 0 at init (SAGAN)
    attention(x).pow(2).sum().backward()
    assert attention.gamma.grad is not None and attention.gamma.grad != 0
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    assert not torch.allclose(attention(x), x)


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: ResNetGenerator(128, 3, 28), "data.image_size"),
        (lambda: ResNetDiscriminator(3, 256), "data.image_size"),
        (lambda: ResNetGenerator(128, 3, 32, attention_resolution=4), "attention_resolution"),
        (lambda: ResNetDiscriminator(3, 32, attention_resolution=32), "attention_resolution"),
        (lambda: ResNetGenerator(130, 3, 32, hierarchical_z=True), "model.latent_dim"),
        (lambda: ResNetGenerator(0, 3, 32), "model.latent_dim"),
        (lambda: ResNetGenerator(128, 3, 32, base_channels=0), "base_channels"),
        (
            lambda: ResNetGenerator(128, 3, 32, num_classes=10, hierarchical_z=True),
            "class_embedding_dim",
        ),
        (lambda: ResNetGenerator(128, 3, 32, upsample="cubic"), "upsample"),
        (lambda: ResNetGenerator(128, 3, 32, init="kaiming"), "init"),
        (lambda: ResNetGenerator(128, 3, 32, bn_eps=0.0), "model.generator.bn_eps"),
        (lambda: ResNetGenerator(128, 3, 32, bn_eps="1e-4"), "model.generator.bn_eps"),
        (lambda: ResNetDiscriminator(3, 32, pooling="max"), "pooling"),
        (lambda: ResNetDiscriminator(3, 32, num_classes=0), "model.num_classes"),
        (
            lambda: ResNetDiscriminator(3, 32, base_channels=2, attention_resolution=8),
            "base_channels",
        ),
    ],
)
def test_bad_sizes_and_options_name_the_key(make, key):
    with pytest.raises(ConfigError) as error:
        make()
    assert key in error.value.key
    assert "allowed" in str(error.value)


def test_image_size_error_lists_the_sizes():
    with pytest.raises(ConfigError, match=r"\[32, 48, 64, 128\]"):
        ResNetGenerator(128, 1, 28)


def _raw_weight(layer: nn.Module) -> torch.Tensor:
    """A conv/linear weight before spectral normalisation, viewed as (out, fan_in)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original.detach().flatten(1)
    return layer.weight.detach().flatten(1)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_orthogonal_init_has_gain_one_in_every_layer(spectral_norm):
    """init=ortho is BigGAN-PyTorch's and StudioGAN's init.orthogonal_ (gain 1) on every conv
    and linear layer, the residual 3x3 convs included: all singular values of each raw weight
    are 1 (xavier's sqrt(2) residual gain belongs to SNGAN/mimicry)."""
    torch.manual_seed(0)
    options = dict(num_classes=10, base_channels=8, attention_resolution=16, init="ortho")
    g = ResNetGenerator(16, 3, 32, spectral_norm=spectral_norm, class_embedding_dim=8, **options)
    d = ResNetDiscriminator(3, 32, spectral_norm=spectral_norm, wide=True, **options)
    layers = [m for net in (g, d) for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) > 20
    for layer in layers:
        singular_values = torch.linalg.svdvals(_raw_weight(layer))
        torch.testing.assert_close(singular_values, torch.ones_like(singular_values))


def test_xavier_init_keeps_the_sqrt2_gain_of_the_residual_convs():
    """SNGAN/mimicry's Glorot init: the residual convs have gain sqrt(2), the shortcut gain 1."""
    torch.manual_seed(0)
    block = ResNetGenerator(16, 3, 32, base_channels=16).blocks[0]

    def gain(conv):  # std of U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)), is a / sqrt(3)
        out_ch, in_ch, k, _ = conv.weight.shape
        glorot_std = (2.0 / (in_ch * k * k + out_ch * k * k)) ** 0.5
        return conv.weight.std().item() / glorot_std

    assert gain(block.conv1) == pytest.approx(2**0.5, rel=0.03)
    assert gain(block.conv2) == pytest.approx(2**0.5, rel=0.03)
    assert gain(block.shortcut) == pytest.approx(1.0, rel=0.05)


def test_bn_eps_reaches_every_batch_norm_of_the_generator():
    """bn_eps (StudioGAN's big_resnet uses 1e-4) sets every batch norm of G, conditional or not;
    the default stays PyTorch's 1e-5."""
    for options in (dict(), dict(num_classes=10), dict(num_classes=10, class_embedding_dim=8)):
        default = ResNetGenerator(16, 3, 32, base_channels=4, **options)
        custom = ResNetGenerator(16, 3, 32, base_channels=4, bn_eps=1e-4, **options)
        for net, eps in ((default, 1e-5), (custom, 1e-4)):
            norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
            assert len(norms) == 7  # 2 per block x 3 blocks + the output norm
            assert all(m.eps == eps for m in norms)


def _layers(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding)]


def test_spectral_norm_on_every_discriminator_layer():
    torch.manual_seed(0)
    d = ResNetDiscriminator(3, 32, num_classes=10, base_channels=8, attention_resolution=16)
    assert all(parametrize.is_parametrized(m, "weight") for m in _layers(d))
    d.train()
    for _ in range(12):  # power iterations run in training-mode forwards
        d(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    d.eval()
    for m in _layers(d):
        if isinstance(m, nn.Linear | nn.Conv2d):
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert sigma == pytest.approx(1.0, abs=0.05)
    plain = ResNetDiscriminator(3, 32, base_channels=8, spectral_norm=False)  # WGAN-GP
    assert not any(parametrize.is_parametrized(m) for m in _layers(plain))
    g = ResNetGenerator(32, 3, 32, base_channels=8)
    assert not any(parametrize.is_parametrized(m) for m in _layers(g))  # SNGAN: plain G
    g_sn = ResNetGenerator(32, 3, 32, num_classes=10, class_embedding_dim=8, spectral_norm=True)
    convs_and_linears = [m for m in _layers(g_sn) if not isinstance(m, nn.Embedding)]
    assert all(parametrize.is_parametrized(m, "weight") for m in convs_and_linears)  # BigGAN
    assert not parametrize.is_parametrized(g_sn.embed)  # BigGAN's shared embedding: plain


def test_projection_discriminator_uses_the_labels():
    torch.manual_seed(0)
    d = ResNetDiscriminator(3, 32, num_classes=10, base_channels=8)
    image = torch.randn(1, 3, 32, 32).repeat(2, 1, 1, 1)
    logits = d(image, torch.tensor([2, 7]))
    assert logits[0] != logits[1]


def test_class_conditional_bn_trains_only_the_rows_of_the_given_classes():
    torch.manual_seed(0)
    g = ResNetGenerator(32, 3, 32, num_classes=10, base_channels=8)
    norms = [m for m in g.modules() if isinstance(m, ClassConditionalBatchNorm2d)]
    assert len(norms) == 2 * len(g.blocks)
    g(torch.randn(4, 32), torch.tensor([1, 1, 4, 4])).square().mean().backward()
    for norm in norms:
        used = norm.gain.weight.grad.abs().sum(dim=1) > 0
        assert used.nonzero().flatten().tolist() == [1, 4]


def test_shared_embedding_makes_the_labels_change_the_images():
    torch.manual_seed(0)
    g = ResNetGenerator(32, 3, 32, num_classes=10, base_channels=8, class_embedding_dim=16)
    g.eval()
    z = torch.randn(1, 32).repeat(2, 1)
    images = g(z, torch.tensor([0, 5]))
    assert not torch.allclose(images[0], images[1])


def test_hierarchical_z_feeds_every_block():
    torch.manual_seed(0)
    g = ResNetGenerator(32, 3, 32, base_channels=8, hierarchical_z=True)
    assert g.num_slots == len(g.blocks) + 1 == 4
    z = torch.randn(2, 32, requires_grad=True)
    g(z).sum().backward()
    for chunk in z.grad.chunk(4, dim=1):
        assert chunk.abs().sum() > 0
    # the last chunk only conditions the last block's batch norms
    assert g.linear.in_features == 8


def test_bf16_autocast_forward_and_backward_on_cpu():
    torch.manual_seed(0)
    g = ResNetGenerator(
        32,
        3,
        32,
        num_classes=10,
        base_channels=8,
        class_embedding_dim=8,
        hierarchical_z=True,
        attention_resolution=16,
        spectral_norm=True,
    )
    d = ResNetDiscriminator(3, 32, num_classes=10, base_channels=8, attention_resolution=8)
    labels = torch.tensor([0, 1, 2, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        images = g(torch.randn(4, 32), labels)
        logits = d(images, labels)
    assert images.dtype == torch.bfloat16
    assert images.shape == (4, 3, 32, 32) and logits.shape == (4,)
    assert torch.isfinite(images.float()).all() and torch.isfinite(logits.float()).all()
    logits.float().mean().backward()
    grads = [p.grad for p in g.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)


def test_orthogonal_regularization_is_biggans_formula():
    """beta/2 sum ||W W^T (1 - I)||_F^2: the 1/2 gives BigGAN-PyTorch's gradient (see
    tests/test_biggan_source.py)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), nn.Conv2d(2, 3, 3), nn.Embedding(5, 4))
    expected = 0.0
    for w in (net[0].weight, net[1].weight.flatten(1)):  # embeddings are left out (BigGAN)
        gram = w @ w.t()
        expected += (gram * (1 - torch.eye(gram.shape[0]))).pow(2).sum()
    value = orthogonal_regularization(net, 1e-4).item()
    assert value == pytest.approx(0.5 * 1e-4 * expected.item())


def test_orthogonal_regularization_vanishes_for_orthogonal_filters_of_any_norm():
    layer = nn.Linear(8, 8, bias=False)
    nn.init.orthogonal_(layer.weight)
    with torch.no_grad():
        layer.weight.mul_(torch.linspace(0.5, 3.0, 8)[:, None])  # row norms unconstrained
    assert orthogonal_regularization(layer, 1.0).item() == pytest.approx(0.0, abs=1e-8)


def test_orthogonal_regularization_gradient_descent_reduces_it_on_a_generator():
    torch.manual_seed(0)
    g = ResNetGenerator(16, 1, 32, base_channels=4, spectral_norm=True)
    optimizer = torch.optim.SGD(g.parameters(), lr=1e-2)
    before = orthogonal_regularization(g, 1.0)
    for _ in range(5):
        optimizer.zero_grad()
        orthogonal_regularization(g, 1.0).backward()
        optimizer.step()
    assert orthogonal_regularization(g, 1.0) < 0.9 * before


def _striped_images(n: int, generator: torch.Generator) -> torch.Tensor:
    """n tiny 1-channel 32 px images: horizontal stripes of random phase, in [-1, 1]."""
    rows = torch.arange(32, dtype=torch.float32)
    phase = torch.rand(n, 1, generator=generator) * 6.28
    stripes = torch.sin(rows[None, :] * 0.8 + phase)  # (n, 32)
    return stripes[:, None, :, None].expand(n, 1, 32, 32).contiguous()


def test_overfit_a_batch_of_64_images():
    """On 64 tiny images D learns to separate them from G's samples (hinge loss to ~0, every
    real scored above every fake), then G, trained against that D, learns to fool it."""
    torch.manual_seed(0)
    reals = _striped_images(64, torch.Generator().manual_seed(1))
    g = ResNetGenerator(16, 1, 32, base_channels=2)  # widths 8
    d = ResNetDiscriminator(1, 32, base_channels=4)  # widths 8
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.9))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.9))
    z = torch.randn(64, 16)
    with torch.no_grad():
        fakes = g(z)

    def d_loss():  # hinge (SNGAN), reals and fakes in one batch
        real_logits, fake_logits = d(torch.cat([reals, fakes])).chunk(2)
        return torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean()

    first_d = d_loss().item()
    for _ in range(12):
        opt_d.zero_grad()
        loss_d = d_loss()
        loss_d.backward()
        opt_d.step()
    with torch.no_grad():
        assert d_loss().item() < 0.1 * first_d
        assert (d(reals).min() > d(fakes).max()).item()  # perfectly separated

    d.requires_grad_(False)
    first_g = -d(g(z)).mean().item()
    for _ in range(12):
        opt_g.zero_grad()
        loss_g = -d(g(z)).mean()
        loss_g.backward()
        opt_g.step()
    assert loss_g.item() < first_g - 2.0
    with torch.no_grad():
        assert d(g(z)).mean() > d(fakes).mean() + 2.0
