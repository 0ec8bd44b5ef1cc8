"""genlab's BigGAN against its sources: orthogonal regularisation at BigGAN-PyTorch's scale
(utils.ortho), self-attention where StudioGAN's attn_g_loc / attn_d_loc put it
(src/models/big_resnet.py), and the CIFAR-10 recipes' nets with the parameter counts of the
StudioGAN runs they cite (logs/CIFAR10/BigGAN-train-2021_01_15_14_48_48.log and
logs/CIFAR10/DiffAugGAN(P)-train-2020_09_18_14_33_57.log)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import compose_config
from genlab.nets.layers import orthogonal_regularization
from genlab.nets.resnet import (
    ResNetDiscriminator,
    ResNetGenerator,
    block_resolutions,
)


def biggan_pytorch_ortho_grad(weight: torch.Tensor, strength: float) -> torch.Tensor:
    """The gradient BigGAN-PyTorch's utils.ortho adds to ``param.grad`` (utils.py, ``ortho``):
    ``strength * 2 * ((W W^T) * (1 - I)) W`` with W = param viewed as (out, -1)."""
    w = weight.detach().reshape(weight.shape[0], -1)
    eye = torch.eye(w.shape[0], dtype=w.dtype)
    grad = 2 * torch.mm(torch.mm(w, w.t()) * (1.0 - eye), w)
    return strength * grad.view(weight.shape)


def _regularised_weights(module: nn.Module):
    """Every parameter BigGAN-PyTorch regularises: >= 2 dims, the shared embedding left out."""
    skip = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return [p for p in module.parameters() if p.ndim >= 2 and id(p) not in skip]


@pytest.mark.parametrize("strength", [1e-4, 0.3])
def test_ortho_reg_gradient_is_biggan_pytorchs(strength):
    """d(ortho_reg term)/dW equals BigGAN-PyTorch's ortho() gradient for the same coefficient
    (ratio 1.0), on a BigGAN generator with spectral norm (the raw weights are regularised) and
    a shared embedding (left out, as BigGAN-PyTorch's blacklist of G.shared)."""
    torch.manual_seed(0)
    g = ResNetGenerator(
        16,
        3,
        32,
        num_classes=10,
        base_channels=4,
        spectral_norm=True,
        class_embedding_dim=8,
        hierarchical_z=True,
        attention_resolution=16,
        init="ortho",
    )
    for p in g.parameters():  # away from the orthogonal init, where the gradient is ~0
        p.data.add_(0.1 * torch.randn_like(p))
    orthogonal_regularization(g, strength).backward()
    weights = _regularised_weights(g)
    assert len(weights) > 10  # convs, linears, conditional-BN projections, attention
    references = [biggan_pytorch_ortho_grad(w, strength) for w in weights]
    dot = sum((w.grad * r).sum().item() for w, r in zip(weights, references))
    norm = sum(r.pow(2).sum().item() for r in references)
    assert dot / norm == pytest.approx(1.0, rel=1e-5)  # genlab / BigGAN-PyTorch (was 2.0)
    for w, reference in zip(weights, references):
        scale = reference.abs().max().item()
        torch.testing.assert_close(w.grad, reference, rtol=1e-4, atol=1e-5 * scale)
    assert g.embed.weight.grad is None  # the shared embedding is not regularised


# StudioGAN's big_resnet at 32 px (src/models/big_resnet.py): G blocks 4c wide, bottom 4, each
# doubling the side; D blocks 2c wide, d_down = [True, True, False, False]. Self-attention
# follows block ``index`` when ``index + 1 in attn_loc``.
def studiogan_sequence(net: str, loc: int, c: int) -> list[tuple[str, int, int]]:
    """(kind, channels, side) of every module StudioGAN's net runs, attention at ``loc``."""
    if net == "generator":
        blocks = [("block", 4 * c, 4 * 2 ** (i + 1)) for i in range(3)]
    else:
        sides = [16, 8, 8, 8]
        blocks = [("block", 2 * c, side) for side in sides]
    sequence = []
    for index, block in enumerate(blocks):
        sequence.append(block)
        if index + 1 == loc:
            sequence.append(("attention", block[1], block[2]))
    return sequence


def genlab_sequence(net: nn.Module, inputs) -> list[tuple[str, int, int]]:
    """(kind, channels, side) of every block and attention module ``net`` runs, in order."""
    sequence, hooks = [], []
    modules = [("block", b) for b in net.blocks] + [("attention", net.attention)]
    for kind, module in modules:
        hooks.append(
            module.register_forward_hook(
                lambda m, i, out, kind=kind: sequence.append((kind, out.shape[1], out.shape[-1]))
            )
        )
    with torch.no_grad():
        net(*inputs)
    for hook in hooks:
        hook.remove()
    return sequence


@pytest.mark.parametrize(
    ("net", "loc", "side"),
    [("generator", 1, 8), ("generator", 2, 16), ("generator", 3, 32)]
    + [("discriminator", 1, 16), ("discriminator", 2, 8)],
)
def test_attention_goes_after_studiogans_block(net, loc, side):
    """attention_resolution = block_resolutions(32, net)[loc - 1] puts self-attention exactly
    where StudioGAN's attn_g_loc / attn_d_loc = [loc] does: same module order, widths, sides.
    The CIFAR-10 recipe: G [2] and D [1], both 16 px."""
    torch.manual_seed(0)
    c = 8
    assert block_resolutions(32, net)[loc - 1] == side
    if net == "generator":
        model = ResNetGenerator(16, 3, 32, base_channels=c, attention_resolution=side)
        inputs = (torch.randn(2, 16),)
    else:
        model = ResNetDiscriminator(3, 32, base_channels=c, attention_resolution=side)
        inputs = (torch.randn(2, 3, 32, 32),)
    assert genlab_sequence(model, inputs) == studiogan_sequence(net, loc, c)


def test_block_resolutions_at_32_px():
    assert block_resolutions(32, "generator") == [8, 16, 32]
    assert block_resolutions(32, "discriminator") == [16, 8, 8, 8]
    with pytest.raises(ValueError, match="generator"):
        block_resolutions(32, "critic")


# "Number of parameters" printed before each net in both runs' logs (G first, then D).
STUDIOGAN_CIFAR10_PARAMS = (9_416_196, 2_415_170)


@pytest.mark.parametrize("experiment", ["biggan_cifar10", "biggan_diffaug_cifar10"])
def test_recipe_nets_have_the_cited_runs_parameter_counts(tmp_path, experiment):
    """The nets the recipe composes have exactly the parameter counts StudioGAN's runs print
    (widths 96/96, z 80 in 4 chunks, shared embedding 128, attention after G block 2 and D
    block 1, projection D). Built with PyTorch's default init and no spectral norm, which do
    not change the count (spectral norm's u, v are buffers) and build in a fraction of a second."""
    model = compose_config(tmp_path, f"experiment={experiment}").model
    shapes = dict(
        channels=model.channels, image_size=model.image_size, num_classes=model.num_classes
    )
    fast = dict(init="default", spectral_norm=False)
    specs = {}
    for name in ("generator", "discriminator"):
        spec = OmegaConf.to_container(model[name], resolve=True)
        assert spec.pop("arch") == "resnet" and spec["init"] == "ortho" and spec["spectral_norm"]
        specs[name] = {**spec, **fast}
    g = ResNetGenerator(model.latent_dim, **shapes, **specs["generator"])
    d = ResNetDiscriminator(**shapes, **specs["discriminator"])
    counts = tuple(sum(p.numel() for p in net.parameters()) for net in (g, d))
    assert counts == STUDIOGAN_CIFAR10_PARAMS
