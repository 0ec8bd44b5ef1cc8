"""Reported nats and bits/dim are a log-likelihood of the data, or they are not reported.

* the Gaussian likelihood is a discretised Gaussian: a pmf over the 256 pixel values, so
  ``-log P(x) >= 0`` and bits/dim >= 0 even with a tiny learned std;
* a Bernoulli is a likelihood only of binary pixels: on grey levels no NLL / bits/dim, a
  warning and ``nll_unavailable_reason`` instead (evaluation and ``val/nll``);
* the default ``model=vae`` on the default data reports a real likelihood.
"""

from __future__ import annotations

import csv
import logging
import math

import pytest
import torch
from torch.distributions import Normal

from conftest import compose_config
from genlab.losses.likelihoods import build_likelihood
from genlab.models.vae import VAE
from genlab.models.vae.evaluation import bits_per_dim, vae_likelihood
from genlab.train import train

CPU = torch.device("cpu")
LEVELS = torch.arange(256.0).view(256, 1, 1, 1) / 255.0  # every 8-bit pixel value, as fed


def test_logistic_mixture_is_a_pmf_over_the_256_grey_values():
    grey = build_likelihood("discretized_logistic_mixture", num_mixtures=4)
    params = torch.randn(1, grey.num_params(1), 1, 1, generator=torch.Generator().manual_seed(1))
    params[:, 8:] = -3.0
    assert grey.num_params(1) == 12
    total = grey.log_prob(LEVELS, params.expand(256, -1, 1, 1)).double().exp().sum()
    assert abs(total.item() - 1.0) < 1e-3


@pytest.mark.slow  # 16.7M pixel values: ~20 s on an idle core
def test_logistic_mixture_is_a_pmf_over_all_256_cubed_rgb_values():
    """PixelCNN++'s coupled RGB mixture: summed over every (r, g, b) of one pixel, 1."""
    likelihood = build_likelihood("discretized_logistic_mixture", num_mixtures=2)
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(1, likelihood.num_params(3), 1, 1, generator=gen)
    params[:, 2:8] = params[:, 2:8].clamp(-0.9, 0.9)  # means inside [-1, 1]
    params[:, 8:14] = -2.5 + 0.5 * params[:, 8:14]  # log-scales: peaked, not flat
    params[:, 14:] *= 2  # strong r -> g -> b coupling
    gb = torch.cartesian_prod(torch.arange(256.0), torch.arange(256.0))  # (65536, 2)
    total = torch.zeros((), dtype=torch.float64)
    for red in range(256):
        x = torch.cat([torch.full((gb.shape[0], 1), float(red)), gb], 1).view(-1, 3, 1, 1) / 255
        total += likelihood.log_prob(x, params.expand(x.shape[0], -1, 1, 1)).double().exp().sum()
    assert abs(total.item() - 1.0) < 1e-3


def test_logistic_mixture_matches_a_hand_computed_two_component_pixel():
    likelihood = build_likelihood("discretized_logistic_mixture", num_mixtures=2)
    # logits (0, log 3): weights 1/4, 3/4; means, log-scales, couplings per (channel, component)
    means = torch.tensor([[0.1, -0.4], [0.2, 0.5], [-0.3, 0.0]])
    log_scales = torch.log(torch.tensor([[0.1, 0.2], [0.15, 0.05], [0.3, 0.1]]))
    raw = torch.tensor([[0.5, -0.2], [0.1, 0.3], [-0.6, 0.4]])
    params = torch.cat(
        [torch.tensor([0.0, math.log(3.0)]), means.flatten(), log_scales.flatten(), raw.flatten()]
    ).view(1, -1, 1, 1)
    pixel = torch.tensor([100.0, 140.0, 30.0])  # interior levels of r, g, b
    v = pixel / 127.5 - 1.0
    coeff = torch.tanh(raw)

    def bin_mass(value, mu, scale):
        sig = torch.sigmoid
        return sig((value + 1 / 255 - mu) / scale) - sig((value - 1 / 255 - mu) / scale)

    # the sum over components of weight * the product of the three coupled bin masses
    expected = sum(
        w
        * bin_mass(v[0], means[0, m], log_scales[0, m].exp())
        * bin_mass(v[1], means[1, m] + coeff[0, m] * v[0], log_scales[1, m].exp())
        * bin_mass(
            v[2], means[2, m] + coeff[1, m] * v[0] + coeff[2, m] * v[1], log_scales[2, m].exp()
        )
        for m, w in enumerate([0.25, 0.75])
    )
    got = likelihood.log_prob((pixel / 255).view(1, 3, 1, 1), params)
    torch.testing.assert_close(got, expected.log().view(1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mean", [0.5, 0.0, 1.0, -0.3, 1.4])
@pytest.mark.parametrize("std", [1e-4, 3e-3, 0.1, 2.0])
def test_discretised_gaussian_is_a_pmf_over_the_256_pixel_values(mean, std):
    likelihood = build_likelihood("gaussian", std)
    log_p = likelihood.log_prob(LEVELS, torch.full((256, 1, 1, 1), mean)).double()
    assert (log_p <= 0).all()
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


def test_discretised_gaussian_gives_each_pixel_the_mass_of_its_bin():
    """Bin of pixel i: [(i - 0.5)/255, (i + 0.5)/255], the end bins open to -inf / +inf."""
    likelihood = build_likelihood("gaussian", 0.2)
    levels = torch.arange(256.0, dtype=torch.float64)
    normal = Normal(torch.tensor(0.3, dtype=torch.float64), 0.2)
    upper, lower = normal.cdf((levels + 0.5) / 255), normal.cdf((levels - 0.5) / 255)
    upper[-1], lower[0] = 1.0, 0.0
    got = likelihood.log_prob(LEVELS, torch.full((256, 1, 1, 1), 0.3)).double()
    torch.testing.assert_close(got, (upper - lower).log(), atol=2e-4, rtol=1e-4)


def test_learned_tiny_std_cannot_make_the_likelihood_exceed_one():
    """The old midpoint rule gave log p = -log(std) - log(2 pi)/2 ~ +6 nats per pixel at
    std = 1e-3 (a density above 1 / bin width): negative bits/dim. A bin mass is at most 1."""
    likelihood = build_likelihood("gaussian", 1e-3, learn_std=True)
    x = torch.tensor([0.0, 17.0, 128.0, 255.0]).view(1, 1, 2, 2) / 255.0
    log_p = likelihood.log_prob(x, x.clone())  # the mean sits on the pixel
    half_bin = Normal(0.0, 1.0).cdf(torch.tensor(0.5 / 255 / 1e-3))  # Phi(1.96)
    # two interior pixels hold Phi(1.96) - Phi(-1.96), the end pixels 0 and 255 Phi(1.96)
    expected = 2 * math.log(2 * half_bin.item() - 1) + 2 * math.log(half_bin.item())
    assert log_p.item() == pytest.approx(expected, rel=1e-4) and expected < 0
    assert bits_per_dim(-log_p.item(), 4) >= 0
    log_p.backward()
    assert torch.isfinite(likelihood.log_std.grad)


def test_bits_per_dim_is_nats_over_dims_ln2():
    assert bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0)
    assert bits_per_dim(3 * 100.0, 100) == pytest.approx(3 / math.log(2.0))


def constant_decoder_vae(likelihood: str, decoder_bias: float) -> VAE:
    """A 2x2 VAE whose q(z|x) is the prior and whose p(x|z) ignores z: then every importance
    weight equals P(x) = prod_pixels P(x_pixel), so NLL = -log P(x) = -ELBO exactly."""
    model = VAE(
        image_size=2, channels=1, arch="mlp", hidden_dims=[], latent_dim=1,
        likelihood=likelihood, gaussian_std=0.25, data_binarized=True,
    )  # fmt: skip
    with torch.no_grad():
        for layer in (model.encoder.net[1], model.decoder.net[0]):
            layer.weight.zero_()
            layer.bias.zero_()  # encoder: mean 0, log_var 0 (= the prior)
        model.decoder.net[0].bias.fill_(decoder_bias)
    return model.eval()


def test_evaluation_matches_a_hand_computed_discretised_gaussian_likelihood():
    model = constant_decoder_vae("gaussian", decoder_bias=0.4)
    x = torch.tensor([[0.0, 51.0], [200.0, 255.0]]).view(1, 1, 2, 2) / 255.0
    normal = Normal(torch.tensor(0.4, dtype=torch.float64), 0.25)
    bins = [
        normal.cdf(torch.tensor(0.5 / 255)),  # pixel 0: (-inf, 0.5/255]
        normal.cdf(torch.tensor(51.5 / 255)) - normal.cdf(torch.tensor(50.5 / 255)),
        normal.cdf(torch.tensor(200.5 / 255)) - normal.cdf(torch.tensor(199.5 / 255)),
        1 - normal.cdf(torch.tensor(254.5 / 255)),  # pixel 255: [254.5/255, inf)
    ]
    nll = -sum(math.log(b.item()) for b in bins)
    out = vae_likelihood(model, [x, x], k=7, k_batch=3, device=CPU)
    assert out["test/nll"] == pytest.approx(nll, rel=1e-4)
    assert out["test/elbo"] == pytest.approx(-nll, rel=1e-4)  # KL(q || p) = 0
    assert out["test/nll_bpd"] == pytest.approx(nll / (4 * math.log(2.0)), rel=1e-4)
    assert out["test/elbo_bpd"] == pytest.approx(out["test/nll_bpd"], rel=1e-4)
    assert out["test/nll_bpd"] >= 0 and "nll_unavailable_reason" not in out
    assert out["num_images"] == 2 and out["likelihood"] == "gaussian"


def test_evaluation_of_bernoulli_on_binary_pixels_is_the_bernoulli_pmf():
    model = constant_decoder_vae("bernoulli", decoder_bias=math.log(0.3 / 0.7))  # P(1) = 0.3
    x = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2)
    nll = -(2 * math.log(0.3) + 2 * math.log(0.7))
    out = vae_likelihood(model, [x], k=5, k_batch=5, device=CPU, data_binarized=True)
    assert out["test/nll"] == pytest.approx(nll, rel=1e-5)
    assert out["test/nll_bpd"] == pytest.approx(nll / (4 * math.log(2.0)), rel=1e-5)


GREY = torch.tensor([0.0, 0.2, 0.6, 1.0]).view(1, 1, 2, 2)


@pytest.mark.parametrize("data_binarized", [False, None, True])
def test_bernoulli_on_grey_levels_reports_no_nll_and_says_why(data_binarized, caplog):
    """Config says grey (False), unknown (None), or binary (True) while the pixels are not."""
    model = constant_decoder_vae("bernoulli", decoder_bias=0.0)
    with caplog.at_level(logging.WARNING, logger="genlab.models.vae.evaluation"):
        out = vae_likelihood(model, [GREY], k=5, k_batch=5, device=CPU, data_binarized=None)
        out_cfg = vae_likelihood(
            model, [GREY], k=5, k_batch=5, device=CPU, data_binarized=data_binarized
        )
    for results in (out, out_cfg):
        assert not [key for key in results if "nll" in key and key != "nll_unavailable_reason"]
        assert not [key for key in results if "elbo" in key or "bpd" in key]
        reason = results["nll_unavailable_reason"]
        assert "model.likelihood=bernoulli" in reason and "data.binarize=true" in reason
        assert math.isfinite(results["test/loss"]) and results["test/kl"] >= 0
    assert "no test/nll or bits/dim" in caplog.text and "bernoulli" in caplog.text


def test_default_vae_on_default_data_is_a_real_likelihood(tmp_path):
    """``model=vae`` (data fashion_mnist_mini, grey levels): a pmf over the 256 values."""
    cfg = compose_config(tmp_path, "model=vae")
    assert cfg.data._target_.endswith("FashionMNISTMiniDataModule")
    assert cfg.model.likelihood == "discretized_logistic"
    assert cfg.model.data_binarized is False  # interpolated from data.binarize
    vae_cfg = {k: v for k, v in cfg.model.items() if not k.startswith("_")}
    assert VAE(**vae_cfg).nll_unavailable_reason() is None
    anchor = compose_config(tmp_path, "experiment=vae_mnist_nll")  # binarised MNIST, Bernoulli
    assert anchor.model.likelihood == "bernoulli" and anchor.model.data_binarized is True
    binarised_grey = compose_config(tmp_path, "model=vae_mlp")
    assert binarised_grey.model.likelihood == "bernoulli"
    assert binarised_grey.model.data_binarized is False


def _logged_names(csv_path) -> set[str]:
    with open(csv_path) as f:
        return {name for row in csv.DictReader(f) for name, value in row.items() if value}


@pytest.mark.parametrize("binarize", [False, True])
def test_val_nll_is_logged_only_for_a_likelihood_of_the_data(make_cfg, tmp_path, binarize, caplog):
    out = tmp_path / f"run_{binarize}"
    cfg = make_cfg(
        "model=vae_mlp",
        "model.hidden_dims=[16]",
        "model.nll_every_n_epochs=1",
        "model.nll_k=2",
        "model.nll_num_images=4",
        f"data.binarize={str(binarize).lower()}",
        "~callbacks.sample_grid",
        "+trainer.num_sanity_val_steps=0",
        f"callbacks.model_checkpoint.dirpath={out}/ckpt",
        f"logger.csv.save_dir={out}",
    )
    with caplog.at_level(logging.WARNING, logger="genlab.models.vae.module"):
        train(cfg)
    names = _logged_names(out / "csv" / "metrics.csv")
    assert {"val/loss", "val/kl", "val/recon", "train/loss"} <= names
    if binarize:
        assert {"val/nll", "val/elbo", "train/elbo"} <= names
        assert "not logged" not in caplog.text
    else:
        assert not names & {"val/nll", "val/elbo", "train/elbo"}
        assert "val/nll are not logged" in caplog.text and "grey-level" in caplog.text
