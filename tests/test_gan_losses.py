"""GAN losses against hand-computed values on fixed logits; gradient penalties against their
definitions (closed-form gradients of a quadratic discriminator)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.losses.gan import GAN_LOSSES, gradient_penalty, r1_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def log_one_minus_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# Hand computations, term by term, for REAL=[2, -1], FAKE=[0.5, -3].
LOGISTIC_D = (
    -(log_sigmoid(2.0) + log_sigmoid(-1.0)) / 2
    - (log_one_minus_sigmoid(0.5) + log_one_minus_sigmoid(-3.0)) / 2
)
EXPECTED = {
    # name: (d_loss, g_loss)
    "saturating": (LOGISTIC_D, (log_one_minus_sigmoid(0.5) + log_one_minus_sigmoid(-3.0)) / 2),
    "non_saturating": (LOGISTIC_D, -(log_sigmoid(0.5) + log_sigmoid(-3.0)) / 2),
    # relu(1-2)=0, relu(1+1)=2 -> 1.0; relu(1+0.5)=1.5, relu(1-3)=0 -> 0.75
    "hinge": (1.0 + 0.75, -(0.5 - 3.0) / 2),
    # mean(fake) - mean(real) = -1.25 - 0.5
    "wasserstein": (-1.25 - 0.5, 1.25),
    # 0.5*mean((2-1)^2, (-1-1)^2) = 1.25; 0.5*mean(0.25, 9) = 2.3125; G: 0.5*mean(0.25, 16)
    "least_squares": (1.25 + 2.3125, 0.5 * (0.25 + 16.0) / 2),
    # RaGAN: mean(real) = 0.5, mean(fake) = -1.25; real - mean(fake) = [3.25, 0.25],
    # fake - mean(real) = [0, -3.5]. D: -log sig(real - mf) - log(1 - sig(fake - mr));
    # G: the same with real and fake swapped.
    "relativistic_average": (
        (softplus(-3.25) + softplus(-0.25)) / 2 + (softplus(0.0) + softplus(-3.5)) / 2,
        (softplus(-0.0) + softplus(3.5)) / 2 + (softplus(3.25) + softplus(0.25)) / 2,
    ),
    # RpGAN: real - fake = [1.5, 2]; D: softplus(-(real - fake)), G: softplus(-(fake - real))
    "relativistic_pairing": (
        (softplus(-1.5) + softplus(-2.0)) / 2,
        (softplus(1.5) + softplus(2.0)) / 2,
    ),
}


def test_every_registered_loss_has_a_hand_computed_check():
    assert set(GAN_LOSSES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_matches_hand_computed_value(name):
    d_expected, g_expected = EXPECTED[name]
    loss = GAN_LOSSES[name]
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(g_expected, rel=1e-6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_losses_stay_finite_on_extreme_logits(name):
    """Logit-space formulas: no log(0) for saturated discriminators (bf16/fp16 range)."""
    real, fake = torch.tensor([1e4, -1e4]), torch.tensor([-1e4, 1e4])
    loss = GAN_LOSSES[name]
    assert torch.isfinite(loss.d_loss(real, fake)) and torch.isfinite(loss.g_loss(fake, real))


def test_generator_gradients_point_the_right_way():
    """Minimising any G loss raises D's score of the fakes."""
    for name, loss in GAN_LOSSES.items():
        fake = torch.tensor([0.3, -0.7], requires_grad=True)
        loss.g_loss(fake, torch.tensor([1.0, 0.2])).backward()
        assert (fake.grad < 0).all(), name


class Quadratic(nn.Module):
    """D(x) = sum_i w_i x_i^2: grad_x D = 2 w * x, known in closed form."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x, labels=None):
        return (self.weight * x**2).flatten(1).sum(1)


def test_gradient_penalty_matches_definition():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    disc = Quadratic(torch.randn(1, 2, 2))
    torch.manual_seed(1)
    gp = gradient_penalty(disc, real, fake)
    torch.manual_seed(1)  # the same interpolation weights alpha ~ U(0, 1), one per sample
    alpha = torch.rand(4, 1, 1, 1)
    x_hat = alpha * real + (1 - alpha) * fake
    grad = 2 * disc.weight.detach() * x_hat  # d/dx of sum w x^2
    expected = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    gp.backward()  # differentiable w.r.t. D's parameters (create_graph)
    assert disc.weight.grad is not None and torch.isfinite(disc.weight.grad).all()


def test_gradient_penalty_is_zero_for_unit_gradient_critic():
    """D(x) = <u, x> with ||u|| = 1 has gradient norm 1 everywhere: penalty 0."""
    u = torch.randn(1, 3, 4, 4)
    u = u / u.norm()
    critic = lambda x, labels=None: (x * u).flatten(1).sum(1)  # noqa: E731
    gp = gradient_penalty(critic, torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_r1_penalty_matches_definition():
    torch.manual_seed(0)
    real = torch.randn(3, 1, 2, 2)
    disc = Quadratic(torch.randn(1, 2, 2))
    r1 = r1_penalty(disc, real)
    grad = 2 * disc.weight.detach() * real
    expected = grad.flatten(1).pow(2).sum(1).mean()
    assert r1.item() == pytest.approx(expected.item(), rel=1e-5)
    r1.backward()
    assert disc.weight.grad is not None


def test_penalties_run_in_fp32_under_autocast():
    """Under autocast the penalty is still computed (and returned) in fp32."""
    disc = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    real, fake = torch.randn(2, 1, 2, 2), torch.randn(2, 1, 2, 2)
    critic = lambda x, labels=None: disc(x).squeeze(1)  # noqa: E731
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(critic, real, fake)
        r1 = r1_penalty(critic, real)
    assert gp.dtype == torch.float32 and r1.dtype == torch.float32
    w = disc[1].weight.detach()
    assert r1.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-6)  # linear D: grad = w
