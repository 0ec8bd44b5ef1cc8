"""VAE family: likelihoods, KL, IWAE bound, importance-sampled NLL, schedules across a resume."""

from __future__ import annotations

import csv

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from genlab.checks.errors import ConfigError
from genlab.losses.likelihoods import (
    Likelihood,
    build_likelihood,
    gaussian_kl,
    gaussian_log_density,
)
from genlab.models.vae import VAE
from genlab.runs.checkpoints import load_checkpoint
from genlab.train import train

TINY = {"image_size": 28, "channels": 1, "arch": "mlp", "hidden_dims": [32], "latent_dim": 4}


def test_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mean, log_var = torch.randn(8, 5, generator=gen) * 2, torch.randn(8, 5, generator=gen)
    expected = kl_divergence(Normal(mean, torch.exp(0.5 * log_var)), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mean, log_var), expected)
    z = torch.randn(8, 5, generator=gen)
    density = Normal(mean, torch.exp(0.5 * log_var)).log_prob(z).sum(-1)
    torch.testing.assert_close(gaussian_log_density(z, mean, log_var), density)


def test_bernoulli_and_gaussian_sum_over_pixels_per_image():
    gen = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.3), generator=gen)
    logits = torch.randn(3, 1, 4, 4, generator=gen)
    expected = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(build_likelihood("bernoulli").log_prob(x, logits), expected)
    # interior 8-bit pixels: the Gaussian mass of the pixel's bin [(i-0.5)/255, (i+0.5)/255]
    x = torch.randint(1, 255, (3, 2, 4, 4), generator=gen).double() / 255
    mean = torch.rand(3, 2, 4, 4, generator=gen)
    normal = Normal(mean.double(), 0.3)
    bins = normal.cdf(x + 0.5 / 255) - normal.cdf(x - 0.5 / 255)
    expected = bins.log().flatten(1).sum(1).float()
    got = build_likelihood("gaussian", 0.3).log_prob(x.float(), mean)
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-5)
    learned = build_likelihood("gaussian", 0.3, learn_std=True)
    assert [n for n, _ in learned.named_parameters()] == ["log_std"]
    torch.testing.assert_close(learned.log_prob(x.float(), mean), expected, atol=1e-3, rtol=1e-5)


def test_discretized_logistic_is_a_distribution_over_256_values():
    """Summed over the 256 pixel values, the probabilities of one pixel add up to 1."""
    likelihood = build_likelihood("discretized_logistic")
    values = torch.arange(256.0).view(256, 1, 1, 1) / 255.0
    for mean, log_scale in [(0.0, -2.0), (0.9, -4.0), (-1.0, -1.0), (0.3, -6.5)]:
        params = torch.tensor([mean, log_scale]).view(1, 2, 1, 1).expand(256, 2, 1, 1)
        total = likelihood.log_prob(values, params).exp().sum()
        assert abs(total.item() - 1.0) < 1e-3, (mean, log_scale, total)


def test_iwae_with_one_sample_is_the_elbo():
    torch.manual_seed(0)
    model = VAE(**TINY).eval()
    x = torch.bernoulli(torch.full((6, 1, 28, 28), 0.2))
    with torch.no_grad():
        # Same z: the k=1 bound is log p(x|z) + log p(z) - log q(z|x), the one-sample ELBO.
        torch.manual_seed(5)
        terms = model.elbo_terms(x)
        torch.manual_seed(5)
        mean, log_var = model.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        log_ratio = gaussian_log_density(z, 0 * z, 0 * z) - gaussian_log_density(z, mean, log_var)
        torch.manual_seed(5)
        bound = model.iwae_bound(x, 1)
        torch.testing.assert_close(bound, terms["recon"] + log_ratio, atol=1e-3, rtol=1e-5)
        # In expectation: mean of the k=1 bound = E log p(x|z) - analytic KL.
        draws = torch.stack([model.iwae_bound(x, 1) for _ in range(2000)])
        recon = torch.stack([model.elbo_terms(x)["recon"] for _ in range(2000)])
        elbo = recon.mean(0) - terms["kl"]
        stderr = (draws.std(0) ** 2 / 2000 + recon.std(0) ** 2 / 2000).sqrt()
        assert ((draws.mean(0) - elbo).abs() < 4 * stderr + 1e-3).all()
        # More samples: a tighter bound on average.
        assert model.iwae_bound(x, 64).mean() > draws.mean()


class GaussianDensity(Likelihood):
    """A continuous Gaussian density N(x; mu, std^2) (test only: the closed-form marginal
    below is a density on R^4; genlab's own Gaussian is discretised to 8-bit pixels)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def log_prob(self, x, params):
        return Normal(params.float(), self.std).log_prob(x).flatten(1).sum(1)


def linear_gaussian_vae(exact_posterior: bool, sigma: float = 0.5):
    """VAE on 2x2 images with a linear Gaussian decoder x = W z + b + sigma * eps.

    p(x) = N(b, W W^T + sigma^2 I) in closed form. W has orthogonal columns, so the exact
    posterior is a diagonal Gaussian and a linear encoder can represent it.
    """
    torch.manual_seed(0)
    model = VAE(
        image_size=2,
        channels=1,
        arch="mlp",
        hidden_dims=[],
        latent_dim=2,
        likelihood="gaussian",
        gaussian_std=sigma,
    )
    model.likelihood = GaussianDensity(sigma)  # the importance sampler is what is tested
    q, _ = torch.linalg.qr(torch.randn(4, 2, dtype=torch.float64))
    scales = torch.tensor([1.5, 0.7], dtype=torch.float64)
    weight, bias = q * scales, torch.tensor([0.2, -0.1, 0.4, 0.0], dtype=torch.float64)
    decoder, encoder = model.decoder.net[0], model.encoder.net[1]
    # exact posterior: Sigma = (I + W^T W / s^2)^-1, mean = Sigma W^T (x - b) / s^2; the inexact
    # one shrinks the mean by 30% and doubles the variance (a typical amortisation gap)
    post_var = 1.0 / (1.0 + scales**2 / sigma**2)
    gain = post_var[:, None] * weight.T / sigma**2
    if not exact_posterior:
        gain, post_var = 0.7 * gain, 2.0 * post_var
    with torch.no_grad():
        decoder.weight.copy_(weight)  # (the model stays fp32; p(x) is computed in fp64)
        decoder.bias.copy_(bias)
        encoder.weight.copy_(torch.cat([gain, torch.zeros(2, 4, dtype=torch.float64)]))
        encoder.bias.copy_(torch.cat([-gain @ bias, post_var.log()]))
    marginal = torch.distributions.MultivariateNormal(
        bias, weight @ weight.T + sigma**2 * torch.eye(4, dtype=torch.float64)
    )
    return model.eval(), marginal


@pytest.mark.parametrize("exact_posterior", [True, False])
def test_importance_sampled_nll_matches_closed_form_marginal(exact_posterior):
    model, marginal = linear_gaussian_vae(exact_posterior)
    torch.manual_seed(1)
    x = marginal.sample((16,))
    log_px = marginal.log_prob(x)
    with torch.no_grad():
        images = x.view(16, 1, 2, 2).float()
        estimate = model.iwae_bound(images, k=5000, chunk_size=1000).double()
        elbo_gap = log_px - model.iwae_bound(images, k=1).double()
    if exact_posterior:  # every importance weight equals p(x): exact with any k
        torch.testing.assert_close(estimate, log_px, atol=1e-4, rtol=0)
    else:  # an inexact posterior: the ELBO is off, the k=5000 estimate is not
        assert elbo_gap.mean() > 0.2
        assert (estimate - log_px).abs().max() < 0.05
        assert (estimate - log_px).mean().abs() < 0.02


def test_config_errors_name_key_value_and_allowed():
    with pytest.raises(ConfigError, match="model.likelihood.*poisson.*bernoulli"):
        VAE(**{**TINY, "likelihood": "poisson"})
    with pytest.raises(ConfigError, match="model.free_bits.*model.k > 1"):
        VAE(**{**TINY, "k": 5, "free_bits": 0.5})
    with pytest.raises(ConfigError, match="model.activation.*gelu.*relu"):
        VAE(**{**TINY, "activation": "gelu"})
    with pytest.raises(ConfigError, match="model.nll_every_n_epochs"):
        VAE(**{**TINY, "nll_every_n_epochs": -1})


def test_free_bits_and_beta_shape_the_loss():
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((8, 1, 28, 28), 0.2))
    losses = {}
    for name, extra in {"elbo": {}, "beta": {"beta": 3.0}, "free": {"free_bits": 2.0}}.items():
        torch.manual_seed(0)
        model = VAE(**TINY, **extra)
        torch.manual_seed(1)
        out = model.loss_terms(x)
        losses[name] = (out["loss"].item(), out["recon"].item(), out["kl"].item())
    loss, recon, kl = losses["elbo"]
    assert loss == pytest.approx(-recon + kl, rel=1e-5)
    assert losses["beta"][0] == pytest.approx(-recon + 3.0 * kl, rel=1e-5)
    # untrained posterior ~ prior: per-dim KL < 2 nats, so free bits charge 2 nats per dim
    assert kl < 4 * 2.0 and losses["free"][0] == pytest.approx(-recon + 4 * 2.0, rel=1e-5)


def _logged(path, name):
    with open(path) as f:
        return {int(r["step"]): float(r[name]) for r in csv.DictReader(f) if r.get(name)}


def test_warmup_beta_and_lr_schedule_survive_resume(make_cfg, tmp_path):
    """An interrupted run continues the KL warm-up and the LR schedule where they stopped."""
    common = [
        "model=vae_mlp",
        "data.binarize=true",  # Bernoulli: val/nll is a likelihood only of binary pixels
        "model.hidden_dims=[32]",
        "model.beta=2.0",
        "model.kl_warmup_steps=10",
        "+model.lr_scheduler._target_=torch.optim.lr_scheduler.StepLR",
        "+model.lr_scheduler.step_size=1",
        "+model.lr_scheduler.gamma=0.5",
        "~callbacks.sample_grid",
        "model.nll_every_n_epochs=2",
        "model.nll_k=5",
        "model.nll_num_images=8",
    ]
    straight = tmp_path / "straight"
    train(
        make_cfg(
            *common,
            "trainer.max_epochs=2",
            f"paths.output_dir={straight}",
            f"callbacks.model_checkpoint.dirpath={straight}/ckpt",
            f"logger.csv.save_dir={straight}",
        )
    )
    first = tmp_path / "first"
    train(
        make_cfg(
            *common,
            "trainer.max_epochs=1",
            f"callbacks.model_checkpoint.dirpath={first}",
            f"logger.csv.save_dir={first}",
        )
    )
    ckpt = first / "last.ckpt"
    assert load_checkpoint(ckpt)["global_step"] == 3
    resumed = tmp_path / "resumed"
    metrics = train(
        make_cfg(
            *common,
            "trainer.max_epochs=2",
            f"ckpt_path={ckpt}",
            f"callbacks.model_checkpoint.dirpath={resumed}",
            f"logger.csv.save_dir={resumed}",
        )
    )
    assert metrics["step"] == 6
    expected = {s: 2.0 * min(1.0, s / 10) for s in range(6)}  # beta * step / warm-up steps
    assert _logged(straight / "csv" / "metrics.csv", "train/kl_weight") == pytest.approx(expected)
    assert list(_logged(straight / "csv" / "metrics.csv", "val/nll")) == [5]  # epoch 2 only
    resumed_weights = _logged(resumed / "csv" / "metrics.csv", "train/kl_weight")
    assert resumed_weights == pytest.approx({s: expected[s] for s in (3, 4, 5)})
    final = load_checkpoint(resumed / "last.ckpt")
    assert final["lr_schedulers"][0]["last_epoch"] == 2
    assert final["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-3 / 4)


@pytest.mark.parametrize("preset", ["vae", "beta_vae", "iwae", "vae_mlp"])
def test_presets_build_and_train_one_step(tmp_path, preset):
    import hydra

    from conftest import compose_config

    cfg = compose_config(tmp_path, f"model={preset}")
    model = hydra.utils.instantiate(cfg.model)
    expected = {
        "vae": ("conv", 1),
        "beta_vae": ("conv", 1),
        "iwae": ("mlp", 5),
        "vae_mlp": ("mlp", 1),
    }[preset]
    assert (model.config.arch, model.config.k) == expected
    likelihood = "discretized_logistic" if expected[0] == "conv" else "bernoulli"
    assert model.config.likelihood == likelihood
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.2))
    torch.manual_seed(0)
    loss = model.loss_terms(x)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and all(
        p.grad is not None for p in model.parameters() if p.requires_grad
    )
    if preset == "iwae":  # the training loss is the negative k-sample bound
        torch.manual_seed(0)
        model.elbo_terms(x)  # same random stream as loss_terms
        torch.testing.assert_close(loss.detach(), -model.iwae_bound(x, 5).mean().detach())


def test_vae_generate_refuses_options_it_does_not_take():
    """``genlab.sample labels=...`` on a VAE: the shared generate() names the option."""
    from genlab.models.vae import VAE

    model = VAE(image_size=28, channels=1, latent_dim=4, base_channels=8)
    assert model.generate(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 28, 28)
    with pytest.raises(TypeError, match="labels"):
        model.generate(2, labels=None)
