"""β-TCVAE and FactorVAE (genlab.models.vae.disentangle): the TC estimator on known cases, the
permutation of FactorVAE, and a few training steps of each on tiny data."""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from conftest import bare_trainer, compose_config
from genlab.checks.errors import ConfigError
from genlab.models.vae import BetaTCVAE, FactorVAE
from genlab.models.vae.disentangle import permute_dims, tc_decomposition

TINY = {"image_size": 8, "channels": 1, "arch": "mlp", "hidden_dims": [16], "latent_dim": 3,
        "likelihood": "bernoulli"}  # fmt: skip


def posteriors(correlation: float, n: int = 1000, dims: int = 2, std: float = 0.3, seed: int = 0):
    """Gaussian posteriors whose means are N(0, C) (C: ``correlation`` between every pair of
    dimensions), and one sample z of each."""
    gen = torch.Generator().manual_seed(seed)
    cov = torch.full((dims, dims), correlation) + (1 - correlation) * torch.eye(dims)
    mean = torch.randn(n, dims, generator=gen) @ torch.linalg.cholesky(cov).T
    log_var = torch.full_like(mean, 2 * math.log(std))
    z = mean + std * torch.randn(n, dims, generator=gen)
    return z, mean, log_var


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_total_correlation_is_near_zero_for_independent_and_positive_for_correlated(estimator):
    independent = tc_decomposition(*posteriors(0.0), estimator, dataset_size=1000)
    correlated = tc_decomposition(*posteriors(0.9), estimator, dataset_size=1000)
    assert abs(independent["tc"].mean().item()) < 0.1
    # true TC of the aggregate N(0, [[1.09, .9], [.9, 1.09]]): -0.5 log(1 - (.9/1.09)^2) = 0.57
    assert 0.35 < correlated["tc"].mean().item() < 0.8


def test_decomposition_sums_to_the_one_sample_kl():
    z, mean, log_var = posteriors(0.5, n=64, dims=3)
    terms = tc_decomposition(z, mean, log_var, "mss", dataset_size=5000)
    log_qz_x = -0.5 * ((z - mean) ** 2 / log_var.exp() + log_var + math.log(2 * math.pi)).sum(1)
    log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(1)
    torch.testing.assert_close(terms["mi"] + terms["tc"] + terms["dwkl"], log_qz_x - log_pz)


def test_permutation_keeps_marginals_and_breaks_dependence():
    x = torch.randn(2000, 1, generator=torch.Generator().manual_seed(0))
    z = torch.cat([x, x, -x], dim=1)  # fully dependent dimensions
    p = permute_dims(z, torch.Generator().manual_seed(1))
    torch.testing.assert_close(p.sort(0).values, z.sort(0).values)  # same marginals
    corr = torch.corrcoef(p.T)
    assert corr[0, 1].abs() < 0.1 and corr[0, 2].abs() < 0.1


def batches(n: int = 4, size: int = 16):
    gen = torch.Generator().manual_seed(0)
    images = [
        {"image": (torch.rand(1, 8, 8, generator=gen) > 0.5).float()} for _ in range(n * size)
    ]
    return DataLoader(images, batch_size=size)


def test_beta_tcvae_trains_and_logs_its_terms():
    model = BetaTCVAE(**TINY, beta=6.0, estimator="mss")
    x = next(iter(batches(1)))["image"]
    with pytest.raises(ConfigError, match="model.dataset_size"):
        model.loss_terms(x)  # mss needs N: read from the training data when training starts
    bare_trainer(3).fit(model, batches())
    assert model._train_size == 64 and model.global_step == 3
    out = model.loss_terms(x)
    assert {"mi", "tc", "dwkl", "recon", "kl"} <= set(out) and torch.isfinite(out["loss"])
    expected = -out["recon"] + out["mi"] + 6.0 * out["tc"] + out["dwkl"]
    torch.testing.assert_close(out["loss"], expected)


def test_factor_vae_trains_both_optimizers_counting_vae_steps():
    model = FactorVAE(**TINY, gamma=10.0, discriminator_hidden_dims=[8, 8])
    before = [p.detach().clone() for p in model.tc_discriminator.parameters()]
    enc_before = [p.detach().clone() for p in model.encoder.parameters()]
    bare_trainer(3).fit(model, batches())
    assert model.global_step == 3  # the discriminator's steps are not counted
    moved = lambda a, b: any(not torch.equal(x, y) for x, y in zip(a, b, strict=True))  # noqa: E731
    assert moved(before, list(model.tc_discriminator.parameters()))
    assert moved(enc_before, list(model.encoder.parameters()))
    loss_d, accuracy = model.discriminator_loss(torch.randn(16, 3))
    assert torch.isfinite(loss_d) and 0 <= accuracy <= 1
    # its checkpoint loads: the discriminator's optimizer spec is one genlab.eval/sample accept
    from genlab.runs.checkpoints import check_hyper_parameters

    check_hyper_parameters(dict(model.hparams))


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.estimator"):
        BetaTCVAE(**TINY, estimator="exact")
    with pytest.raises(ConfigError, match="model.k"):
        BetaTCVAE(**TINY, k=5)
    with pytest.raises(ConfigError, match="model.discriminator_hidden_dims"):
        FactorVAE(**TINY, discriminator_hidden_dims=[])


@pytest.mark.parametrize("preset", ["beta_tcvae", "factor_vae"])
def test_presets_compose_and_check_before_torch(tmp_path, preset):
    """The preset composes (conf/model/<preset>.yaml) and a bad value is refused from the
    config alone, before any model is built."""
    from genlab.models.registry import check_model_config

    bad = compose_config(tmp_path, f"model={preset}", "model.gamma=-1")
    with pytest.raises(ConfigError, match="model.gamma"):
        check_model_config(bad.model)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["beta_tcvae", "factor_vae"])
def test_preset_trains_on_shapes2d_and_evaluates_disentanglement(make_cfg, tmp_path, preset):
    """genlab.train model=<preset> data=shapes2d -> checkpoint -> genlab.eval with the three
    disentanglement metrics (tiny sizes)."""
    from genlab.eval import evaluate
    from genlab.train import train

    out = tmp_path / "run"
    train(make_cfg(f"model={preset}", "data=shapes2d", "data.num_train=256", "data.num_test=64",
                   "model.arch=mlp", "model.hidden_dims=[32]", "model.likelihood=bernoulli",
                   "model.discriminator_hidden_dims=[16]" if preset == "factor_vae" else "seed=0",
                   "~callbacks.sample_grid", f"callbacks.model_checkpoint.dirpath={out}/ckpt",
                   f"logger.csv.save_dir={out}"))  # fmt: skip
    with open(next(out.glob("csv/**/metrics.csv"))) as f:
        header = f.readline()
    expected = ("train/mi", "train/tc", "train/dwkl") if preset == "beta_tcvae" else (
        "train/tc", "train/loss_d")  # fmt: skip
    assert all(name in header for name in expected)
    results = evaluate(compose_config(
        tmp_path / "eval", f"ckpt_path={out}/ckpt/last.ckpt", "num_test_images=8", "k=2",
        "k_batch=2", "metrics.num_samples=0", "disentanglement.metrics=[mig,dci,factor_vae]",
        "disentanglement.num_images=200", "disentanglement.num_points=120",
        "disentanglement.num_test_points=80", "disentanglement.dci_classifier=logistic",
        "disentanglement.factor_vae_num_train=50", "disentanglement.factor_vae_num_eval=50",
        config_name="eval"))  # fmt: skip
    for name in ("train/mig", "train/dci_disentanglement", "train/factor_vae_score"):
        assert 0 <= results[name] <= 1
