"""Relativistic GAN losses (RaGAN, RpGAN) against hand computations, and the loss object that
owns the discriminator's forward passes (the generator step sees the real logits)."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.losses.gan import GAN_LOSSES

REAL = torch.tensor([2.0, -1.0])  # mean 0.5
FAKE = torch.tensor([0.5, -3.0])  # mean -1.25


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_ragan_matches_hand_computation():
    # D: mean softplus(-(r - mean f)) + mean softplus(f - mean r)
    d = (softplus(-(2.0 + 1.25)) + softplus(-(-1.0 + 1.25))) / 2
    d += (softplus(0.5 - 0.5) + softplus(-3.0 - 0.5)) / 2
    # G: real and fake swapped
    g = (softplus(-(0.5 - 0.5)) + softplus(-(-3.0 - 0.5))) / 2
    g += (softplus(2.0 + 1.25) + softplus(-1.0 + 1.25)) / 2
    loss = GAN_LOSSES["relativistic_average"]
    assert loss.relativistic
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)


def test_rpgan_matches_hand_computation():
    # pairs (2, 0.5) and (-1, -3): D mean softplus(-(r - f)), G mean softplus(-(f - r))
    d = (softplus(-1.5) + softplus(-2.0)) / 2
    g = (softplus(1.5) + softplus(2.0)) / 2
    loss = GAN_LOSSES["relativistic_pairing"]
    assert loss.relativistic
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)


@pytest.mark.parametrize("name", ["relativistic_average", "relativistic_pairing"])
def test_relativistic_generator_loss_refuses_missing_real_logits(name):
    with pytest.raises(ValueError, match="real logits"):
        GAN_LOSSES[name].g_loss(FAKE, None)


class RecordingD(torch.nn.Module):
    """D(x) = sum of pixels * w; records which batches it scored."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, labels=None):
        self.seen.append(x.detach().clone())
        return x.flatten(1).sum(1) * self.w


@pytest.mark.parametrize("name", sorted(GAN_LOSSES))
def test_loss_object_owns_the_discriminator_passes(name):
    """generator_terms scores the real batch only for relativistic losses, and its loss equals
    the named function applied to D's logits; gradients reach the fakes."""
    real = torch.full((2, 1, 2, 2), 0.25)
    fake = torch.full((2, 1, 2, 2), -0.5, requires_grad=True)
    d = RecordingD()
    loss = GAN_LOSSES[name]
    terms = loss.generator_terms(d, real, fake, None)
    scored_real = any(torch.equal(x, real) for x in d.seen)
    assert scored_real == loss.relativistic
    fake_logits = fake.detach().flatten(1).sum(1) * 0.5
    real_logits = real.flatten(1).sum(1) * 0.5
    expected = loss.g_loss(fake_logits, real_logits if loss.relativistic else None)
    assert terms["loss_g"].item() == pytest.approx(expected.item(), rel=1e-6)
    terms["loss_g"].backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0

    d_terms = loss.discriminator_terms(d, real, fake.detach(), None)
    assert d_terms["loss_d"].item() == pytest.approx(
        loss.d_loss(real_logits, fake_logits).item(), rel=1e-6
    )
    assert not d_terms["real_logits"].requires_grad
