"""VAEs beyond the vanilla: VampPrior, the two-stochastic-layer IWAE, hierarchical NLL."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from genlab.checks.errors import ConfigError
from genlab.losses.likelihoods import Likelihood
from genlab.models.vae import VAE, HierarchicalVAE, TopDownVAE

VAMP_TINY = {
    "image_size": 4,
    "channels": 1,
    "arch": "mlp",
    "hidden_dims": [8],
    "latent_dim": 3,
    "likelihood": "bernoulli",
    "data_binarized": True,
    "prior": "vamp",
    "num_pseudo_inputs": 5,
}


def brute_force_vamp_log_density(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k N(z; mu(u_k), sigma^2(u_k)) with torch.distributions, one component at a
    time, in fp64."""
    u = model.prior.pseudo_inputs()
    means, log_vars = (t.double() for t in model.encode(u))
    per_component = torch.stack(
        [Normal(means[k], torch.exp(0.5 * log_vars[k])).log_prob(z.double()).sum(-1)
         for k in range(means.shape[0])]
    )  # fmt: skip
    return torch.logsumexp(per_component, 0) - math.log(means.shape[0])


def test_vamp_prior_density_is_the_mixture_of_posteriors_at_the_pseudo_inputs():
    torch.manual_seed(0)
    model = VAE(**VAMP_TINY).eval()
    with torch.no_grad():  # pseudo-inputs spread over [0, 1] (the default init is near 0.05)
        model.prior.pseudo_inputs_raw.uniform_(-0.2, 1.2)
        z = torch.randn(7, 2, 3) * 2
        got = model.prior_log_prob(z)
        assert got.shape == (7, 2)
        expected = brute_force_vamp_log_density(model, z.view(-1, 3)).view(7, 2)
        torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-6)
        u = model.prior.pseudo_inputs()
        means, log_vars = model.encode(u)
        mixture = MixtureSameFamily(
            Categorical(logits=torch.zeros(5)),
            Independent(Normal(means, torch.exp(0.5 * log_vars)), 1),
        )
        torch.testing.assert_close(got, mixture.log_prob(z), atol=1e-4, rtol=1e-5)
    assert u.min() >= 0 and u.max() <= 1


def test_vamp_importance_weights_and_kl_use_the_mixture_prior_exactly():
    torch.manual_seed(1)
    model = VAE(**VAMP_TINY).eval()
    x = torch.bernoulli(torch.full((4, 1, 4, 4), 0.4))
    with torch.no_grad():
        torch.manual_seed(3)
        log_w = model.log_importance_weights(x, k=6)  # (6, 4)
        torch.manual_seed(3)
        mean, log_var = model.encode(x)
        z = mean + torch.randn(6, *mean.shape) * torch.exp(0.5 * log_var)
        log_px_z = model.likelihood.log_prob(x.repeat(6, 1, 1, 1), model.decode(z.flatten(0, 1)))
        log_q = Normal(mean, torch.exp(0.5 * log_var)).log_prob(z).sum(-1)
        prior = brute_force_vamp_log_density(model, z.view(-1, 3)).view(6, 4).float()
        torch.testing.assert_close(log_w, log_px_z.view(6, 4) + prior - log_q, atol=1e-4, rtol=0)
        torch.manual_seed(4)
        terms = model.elbo_terms(x)
        torch.manual_seed(4)
        mean, log_var = model.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        log_q = Normal(mean, torch.exp(0.5 * log_var)).log_prob(z).sum(-1)
        expected_kl = log_q - brute_force_vamp_log_density(model, z).float()
        torch.testing.assert_close(terms["kl"], expected_kl, atol=1e-4, rtol=0)


def test_vamp_prior_trains_its_pseudo_inputs_and_samples_from_the_mixture():
    torch.manual_seed(2)
    model = VAE(**VAMP_TINY)
    x = torch.bernoulli(torch.full((8, 1, 4, 4), 0.4))
    model.loss_terms(x)["loss"].backward()
    assert model.prior.pseudo_inputs_raw.grad.abs().sum() > 0  # the prior is learned
    model.eval()
    a = model.generate(6, generator=torch.Generator().manual_seed(0))
    b = model.generate(6, generator=torch.Generator().manual_seed(0))
    assert a.shape == (6, 1, 4, 4) and torch.equal(a, b)
    # every prior draw sits at a component: z = mu(u_k) + sigma(u_k) * eps
    z = model.latents(2000, torch.Generator().manual_seed(1))
    with torch.no_grad():
        means, _ = model.encode(model.prior.pseudo_inputs())
    nearest = torch.cdist(z, means).argmin(1)
    assert len(set(nearest.tolist())) == 5  # all components are drawn


def test_vamp_config_errors():
    with pytest.raises(ConfigError, match="model.prior.*gaussian_mixture.*standard"):
        VAE(**{**VAMP_TINY, "prior": "gaussian_mixture"})
    with pytest.raises(ConfigError, match="model.num_pseudo_inputs"):
        VAE(**{**VAMP_TINY, "num_pseudo_inputs": 0})
    with pytest.raises(ConfigError, match="model.free_bits.*vamp"):
        VAE(**{**VAMP_TINY, "free_bits": 0.1})


class GaussianDensity(Likelihood):
    """A continuous N(x; mu, std^2) density (test only: the closed-form marginal below is a
    density on R^4; genlab's own Gaussian is discretised to 8-bit pixels)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def log_prob(self, x, params):
        return Normal(params.float(), self.std).log_prob(x).flatten(1).sum(1)

    def mean(self, params):
        return params


def two_layer_linear_gaussian(exact_posterior: bool, s1: float = 0.6, s2: float = 0.5):
    """z_2 ~ N(0, 1), z_1 = A z_2 + a + s1 eps, x = B z_1 + b + s2 eps on 2x2 "images".

    p(x) = N(B a + b, (A^2 + s1^2) B B^T + s2^2 I). With scalar layers the exact posterior
    q(z_1|x) p(z_2|z_1) is a product of 1-d Gaussians linear in x and z_1, which the linear
    encoders represent; the inexact one shrinks the gains by 30% and doubles the variances.
    """
    torch.manual_seed(0)
    model = HierarchicalVAE(
        image_size=2,
        channels=1,
        arch="mlp",
        latent_dims=[1, 1],
        layer_hidden_dims=[[], []],
        likelihood="gaussian",
    )
    model.likelihood = GaussianDensity(s2)
    a_w, a_b = 1.3, 0.4
    b_w = torch.tensor([[0.9], [-0.5], [0.3], [1.1]], dtype=torch.float64)
    b_b = torch.tensor([0.2, -0.1, 0.4, 0.0], dtype=torch.float64)
    v1 = a_w**2 + s1**2
    var1 = 1.0 / (1.0 / v1 + (b_w**2).sum().item() / s2**2)
    gain1, offset1 = var1 * b_w.T / s2**2, var1 * (a_b / v1 - (b_w.T @ b_b).item() / s2**2)
    var2 = 1.0 / (1.0 + a_w**2 / s1**2)
    gain2 = var2 * a_w / s1**2
    shrink, widen = (1.0, 1.0) if exact_posterior else (0.7, 2.0)
    with torch.no_grad():
        model.decoder.net[0].weight.copy_(b_w)
        model.decoder.net[0].bias.copy_(b_b)
        model.decoders[0].net[1].weight.copy_(torch.tensor([[a_w], [0.0]]))
        model.decoders[0].net[1].bias.copy_(torch.tensor([a_b, math.log(s1**2)]))
        model.encoders[0].net[1].weight.copy_(torch.cat([shrink * gain1, torch.zeros(1, 4)]))
        model.encoders[0].net[1].bias.copy_(
            torch.tensor([shrink * offset1, math.log(widen * var1)])
        )
        model.encoders[1].net[1].weight.copy_(torch.tensor([[shrink * gain2], [0.0]]))
        model.encoders[1].net[1].bias.copy_(
            torch.tensor([-shrink * gain2 * a_b, math.log(widen * var2)])
        )
    cov = v1 * b_w @ b_w.T + s2**2 * torch.eye(4, dtype=torch.float64)
    marginal = torch.distributions.MultivariateNormal(b_w[:, 0] * a_b + b_b, cov)
    return model.eval(), marginal


@pytest.mark.parametrize("exact_posterior", [True, False])
def test_hierarchical_nll_matches_the_closed_form_marginal(exact_posterior):
    model, marginal = two_layer_linear_gaussian(exact_posterior)
    torch.manual_seed(1)
    x = marginal.sample((16,))
    log_px = marginal.log_prob(x)
    images = x.view(16, 1, 2, 2).float()
    with torch.no_grad():
        estimate = model.iwae_bound(images, k=5000, chunk_size=1000).double()
        terms = model.elbo_terms(images)
    one_sample_elbo = (terms["recon"] - terms["kl"]).double()
    assert terms["kl_per_layer"].shape == (16, 2)
    torch.testing.assert_close(terms["kl"], terms["kl_per_layer"].sum(1))
    if exact_posterior:  # every importance weight over (z_1, z_2) is p(x) itself
        torch.testing.assert_close(estimate, log_px, atol=1e-4, rtol=0)
        torch.testing.assert_close(one_sample_elbo, log_px, atol=1e-4, rtol=0)
    else:
        assert (log_px - one_sample_elbo).mean() > 0.2  # the ELBO is loose, the estimate is not
        assert (estimate - log_px).abs().max() < 0.05
        assert (estimate - log_px).mean().abs() < 0.02


def test_hierarchical_free_bits_act_per_layer():
    torch.manual_seed(0)
    tiny = {"image_size": 4, "channels": 1, "arch": "mlp", "latent_dims": [3, 2],
            "layer_hidden_dims": [[8], [6]], "likelihood": "bernoulli"}  # fmt: skip
    x = torch.bernoulli(torch.full((8, 1, 4, 4), 0.4))
    plain = HierarchicalVAE(**tiny)
    floored = HierarchicalVAE(**{**tiny, "free_bits": 100.0})  # above any layer's KL here
    floored.load_state_dict(plain.state_dict())
    torch.manual_seed(5)
    out = plain.loss_terms(x)
    torch.manual_seed(5)
    out_floored = floored.loss_terms(x)
    assert set(out) >= {"kl_1", "kl_2"}
    torch.testing.assert_close(out["kl"], out["kl_1"] + out["kl_2"])
    # every layer at its floor: loss = -recon + 100 * (3 + 2) nats, no KL gradient
    torch.testing.assert_close(out_floored["loss"], -out_floored["recon"] + 500.0)
    torch.testing.assert_close(out["loss"], -out["recon"] + out["kl"])
    with pytest.raises(ConfigError, match="model.layer_hidden_dims"):
        HierarchicalVAE(**{**tiny, "layer_hidden_dims": [[8]]})


@pytest.mark.parametrize(
    "preset, extra",
    [
        ("vamp_vae", ["model.num_pseudo_inputs=7", "model.hidden_dims=[16]"]),
        ("iwae_2layer", ["model.layer_hidden_dims=[[16],[8]]", "model.latent_dims=[6,3]"]),
    ],
)
def test_preset_trains_resumes_samples_and_evaluates(make_cfg, tmp_path, preset, extra):
    """genlab.train -> checkpoint -> genlab.eval (NLL over the model's prior / all layers) and
    genlab.sample's rebuild, with tiny settings on binarised bundled data."""
    from conftest import compose_config
    from genlab.eval import evaluate
    from genlab.models.registry import build_model_from_checkpoint
    from genlab.train import train

    out = tmp_path / "run"
    common = [f"model={preset}", *extra, "data.binarize=true", "model.nll_every_n_epochs=1",
              "model.nll_k=3", "model.nll_num_images=8", "~callbacks.sample_grid",
              f"callbacks.model_checkpoint.dirpath={out}/ckpt", f"logger.csv.save_dir={out}"]  # fmt: skip
    train(make_cfg(*common))
    with open(out / "csv" / "metrics.csv") as f:
        logged = {name for row in csv.DictReader(f) for name, value in row.items() if value}
    assert {"val/nll", "train/kl"} <= logged
    if preset == "iwae_2layer":
        assert {"train/kl_1", "train/kl_2", "val/kl_1", "val/kl_2"} <= logged  # KL per layer
    ckpt = out / "ckpt" / "last.ckpt"
    model = build_model_from_checkpoint(ckpt)
    assert model.family == {"vamp_vae": "vae", "iwae_2layer": "hvae"}[preset]
    images = model.generate(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    results = evaluate(
        compose_config(
            tmp_path / "eval",
            f"ckpt_path={ckpt}",
            "num_test_images=8",
            "k=6",
            "k_batch=3",
            "metrics.num_samples=0",
            config_name="eval",
        )  # fmt: skip
    )
    assert results["test/nll"] > 0 and results["test/nll"] <= -results["test/elbo"] + 5.0
    resumed = tmp_path / "resumed"
    train(make_cfg(*common[:-2], f"callbacks.model_checkpoint.dirpath={resumed}/ckpt",
                   f"logger.csv.save_dir={resumed}", f"ckpt_path={ckpt}", "trainer.max_epochs=2"))  # fmt: skip
    assert (resumed / "ckpt" / "last.ckpt").is_file()


TOPDOWN_TINY = {"image_size": 8, "channels": 3, "width": 8, "num_resolutions": 2,
               "blocks_per_resolution": 1, "z_channels": 2,
               "likelihood": "discretized_logistic_mixture", "num_mixtures": 2}  # fmt: skip


def test_topdown_vae_weights_over_all_layers_and_analytic_kl_per_layer():
    torch.manual_seed(0)
    model = TopDownVAE(**TOPDOWN_TINY).eval()
    x = torch.randint(0, 256, (3, 3, 8, 8)) / 255.0
    assert model.layer_dims() == [2 * 4 * 4, 2 * 8 * 8]  # top (4x4) first
    with torch.no_grad():
        terms = model.elbo_terms(x)
        assert terms["kl_per_layer"].shape == (3, 2) and (terms["kl_per_layer"] >= 0).all()
        # the analytic KL per layer is the expectation of the one-sample log q - log p
        draws = []
        for _ in range(400):
            _, stats = model._top_down(3, model._encode_features(x))
            draws.append(torch.stack([lq - lp for lq, lp, _ in stats], 1))
        draws = torch.stack(draws)
        stderr = draws.std(0) / 20
        assert ((draws.mean(0) - terms["kl_per_layer"]).abs() < 4 * stderr + 1e-3).all()
        torch.manual_seed(1)
        log_w = model.log_importance_weights(x, k=6, chunk_size=4)
        assert log_w.shape == (6, 3)
        elbo = terms["recon"] - terms["kl"]
        bound = model.iwae_bound(x, k=64, chunk_size=16)
        assert (bound > elbo - 1.0).all()  # the 64-sample bound is not looser than the ELBO
        assert (-bound > 0).all()  # a pmf: -log P(x) >= 0
    images = model.generate(2, generator=torch.Generator().manual_seed(0))
    again = model.generate(2, generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, 8, 8) and torch.equal(images, again)
    assert model.reconstruct(x).shape == x.shape


def test_topdown_vae_cifar_recipe_trains_and_reports_bits_per_dim(tmp_path):
    """experiment=hvae_cifar10 on tiny generated 32x32 RGB data (CPU smoke test)."""
    import numpy as np

    from conftest import FAST, compose_config
    from genlab.eval import evaluate
    from genlab.train import train

    folder = tmp_path / "rgb"
    folder.mkdir()
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(24):
        base = rng.integers(0, 256, (1, 1, 3))
        noise = rng.integers(-20, 21, (32, 32, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype("uint8")).save(folder / f"{i}.png")
    out = tmp_path / "run"
    cfg = compose_config(
        out, *FAST, "experiment=hvae_cifar10", "data=folder", "~data.download", f"data.path={folder}",
        "data.image_size=32", "data.channels=3", "data.batch_size=8", "model.width=8",
        "model.blocks_per_resolution=1", "model.num_mixtures=2", "model.nll_every_n_epochs=1",
        "model.nll_k=2", "model.nll_num_images=4", "~callbacks.sample_grid",
        "trainer.max_epochs=1", f"callbacks.model_checkpoint.dirpath={out}/ckpt",
        f"logger.csv.save_dir={out}",
    )  # fmt: skip
    train(cfg)
    results = evaluate(compose_config(tmp_path / "eval", f"ckpt_path={out}/ckpt/last.ckpt",
                                      f"data.path={folder}",  # never read from the checkpoint
                                      "num_test_images=4", "k=3", "metrics.num_samples=0",
                                      config_name="eval"))  # fmt: skip
    assert 0 < results["test/nll_bpd"] < 10  # a real bits/dim of 8-bit RGB
    assert results["test/nll_bpd"] <= results["test/elbo_bpd"] + 0.5
    assert results["likelihood"] == "discretized_logistic_mixture"


def test_dlogistic_rgb_preset_is_a_pmf_likelihood_of_rgb_images(tmp_path):
    import hydra

    from conftest import compose_config

    cfg = compose_config(tmp_path, "model=vae_dlogistic_rgb", "data=cifar10", "model.latent_dim=4",
                         "model.base_channels=8")  # fmt: skip
    model = hydra.utils.instantiate(cfg.model)
    assert model.config.likelihood == "discretized_logistic_mixture"
    assert model.decoder.net[-1].out_channels == 10 * (1 + 2 * 3 + 3)  # PixelCNN++: 100
    assert model.nll_unavailable_reason() is None  # a pmf over 8-bit RGB: bits/dim are real
    x = torch.randint(0, 256, (2, 3, 32, 32)) / 255.0
    loss = model.loss_terms(x)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    with torch.no_grad():
        assert (model.iwae_bound(x, 4) < 0).all()
    assert model.generate(2).shape == (2, 3, 32, 32)
