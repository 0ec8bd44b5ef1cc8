"""Sønderby et al.'s Ladder VAE (model=ladder_vae): the precision-weighted merge, training and
likelihood evaluation through the CLIs, and the refusal of the former ladder_vae (the top-down
VAE, now model=topdown_vae) by name."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from genlab.checks.errors import ConfigError
from genlab.models.vae import LadderVAE, TopDownVAE
from genlab.models.vae.ladder import kl_normal, log_normal, precision_weighted

TINY = {"image_size": 4, "channels": 1, "latent_dims": [3, 2, 2],
        "layer_hidden_dims": [[8, 8], [6], [5]], "likelihood": "bernoulli",
        "data_binarized": True}  # fmt: skip


def test_precision_weighted_merge_is_the_formula_and_the_normalised_product():
    torch.manual_seed(0)
    mu_hat, mu_p = torch.randn(2, 5, dtype=torch.float64).unbind()
    var_hat, var_p = (torch.rand(2, 5, dtype=torch.float64) * 3 + 0.05).unbind()
    mu_q, var_q = precision_weighted(mu_hat, var_hat, mu_p, var_p)
    # Sønderby et al. 2016, section 2.2: sigma_q^2 = 1 / (sigma_hat^-2 + sigma_p^-2),
    # mu_q = (mu_hat sigma_hat^-2 + mu_p sigma_p^-2) sigma_q^2
    expected_var = 1.0 / (var_hat**-1 + var_p**-1)
    torch.testing.assert_close(var_q, expected_var)
    torch.testing.assert_close(mu_q, (mu_hat / var_hat + mu_p / var_p) * expected_var)
    # N(z; mu_hat, var_hat) N(z; mu_p, var_p) / N(z; mu_q, var_q) does not depend on z
    z = torch.randn(7, 1, 5, dtype=torch.float64) * 3
    ratio = [log_normal(z[..., [d]], m[d : d + 1], v[d : d + 1])
             for m, v in ((mu_hat, var_hat), (mu_p, var_p), (mu_q, var_q)) for d in range(5)]  # fmt: skip
    per_dim = [ratio[d] + ratio[5 + d] - ratio[10 + d] for d in range(5)]
    for values in per_dim:
        torch.testing.assert_close(values, values[:1].expand_as(values))
    # the merge is tighter than either term, and equal precisions average the means
    assert (var_q < var_hat).all() and (var_q < var_p).all()
    mu, var = precision_weighted(mu_hat, var_p, mu_p, var_p)
    torch.testing.assert_close(mu, (mu_hat + mu_p) / 2)
    torch.testing.assert_close(var, var_p / 2)


@pytest.mark.parametrize("share", [True, False], ids=["shared", "separate-top-down"])
def test_each_posterior_layer_merges_the_bottom_up_term_with_the_top_down_one(share):
    """In the model: z_L's posterior is the bottom-up term alone; below it, the merge of the
    layer's bottom-up term with the prior p(z_l | z_{l+1}) (shared) or with the separate
    inference MLP (the reference's -ladder_share_params False), the KL measured against the
    prior either way."""
    torch.manual_seed(0)
    model = LadderVAE(**TINY, share_top_down=share).eval()
    x = torch.bernoulli(torch.full((4, 1, 4, 4), 0.4))
    with torch.no_grad():
        up = model.bottom_up_terms(x)
        zs, log_qs, log_ps, kls = model._top_down(up, 1, noise_scale=0.0)  # z at the q means
        torch.testing.assert_close(zs[2][0], up[2][0])
        torch.testing.assert_close(
            kls[2][0], kl_normal(*up[2], torch.zeros(4, 2), torch.ones(4, 2))
        )
        for layer in (1, 0):  # 0-based: z_2, then z_1
            prior = model.priors[layer](zs[layer + 1][0])
            top_down = prior if share else model.inference_top_down[layer](zs[layer + 1][0])
            mean, var = precision_weighted(*up[layer], *top_down)
            torch.testing.assert_close(zs[layer][0], mean)
            torch.testing.assert_close(log_qs[layer][0], log_normal(mean, mean, var))
            torch.testing.assert_close(log_ps[layer][0], log_normal(mean, *prior))
            torch.testing.assert_close(kls[layer][0], kl_normal(mean, var, *prior))
    assert len(model.inference_top_down) == (0 if share else 2)


def test_analytic_kl_per_layer_is_the_mean_of_log_q_minus_log_p_and_the_bound_tightens():
    torch.manual_seed(0)
    model = LadderVAE(**TINY).eval()
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.4))
    with torch.no_grad():
        terms = model.elbo_terms(x)
        assert terms["kl_per_layer"].shape == (3, 3) and (terms["kl_per_layer"] >= 0).all()
        zs, log_qs, log_ps, kls = model._top_down(model.bottom_up_terms(x), 4000)
        sampled = torch.stack([q - p for q, p in zip(log_qs, log_ps)], -1)  # (n, B, L)
        analytic = torch.stack(kls, -1)  # each layer's KL given the draw of the layers above
        stderr = sampled.std(0) / math.sqrt(4000)
        assert ((sampled.mean(0) - analytic.mean(0)).abs() < 4 * stderr + 1e-3).all()
        torch.testing.assert_close(analytic[:, :, 2], analytic[:1, :, 2].expand(4000, 3))
        elbo = terms["recon"] - terms["kl"]
        bound = model.iwae_bound(x, k=256, chunk_size=64)
        assert (bound > elbo - 1.0).all() and (-bound > 0).all()  # a pmf: -log P(x) >= 0
    a = model.generate(2, generator=torch.Generator().manual_seed(0))
    b = model.generate(2, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 1, 4, 4) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1


def test_config_errors_name_key_value_and_allowed():
    with pytest.raises(ConfigError, match="model.bottom_up_from='up'.*'hidden', 'mean'"):
        LadderVAE(**{**TINY, "bottom_up_from": "up"})
    with pytest.raises(ConfigError, match="model.activation='elu'.*leaky_relu"):
        LadderVAE(**{**TINY, "activation": "elu"})
    with pytest.raises(ConfigError, match="model.layer_hidden_dims"):
        LadderVAE(**{**TINY, "layer_hidden_dims": [[8]]})
    with pytest.raises(ConfigError, match="model.variance_epsilon=0"):
        LadderVAE(**{**TINY, "variance_epsilon": 0})


def test_preset_trains_and_evaluates_an_nll_over_all_layers(make_cfg, tmp_path):
    """model=ladder_vae: genlab.train (KL warm-up, batch norm) -> checkpoint -> genlab.eval's
    ELBO and importance-sampled NLL; genlab.sample's rebuild draws the same images twice."""
    from conftest import compose_config
    from genlab.eval import evaluate
    from genlab.models.registry import build_model_from_checkpoint
    from genlab.train import train

    out = tmp_path / "run"
    train(make_cfg("model=ladder_vae", "model.latent_dims=[6,4]",
                   "model.layer_hidden_dims=[[16,16],[8,8]]", "model.kl_warmup_steps=2",
                   "data.binarize=true", "model.nll_every_n_epochs=1", "model.nll_k=3",
                   "model.nll_num_images=8", "~callbacks.sample_grid",
                   f"callbacks.model_checkpoint.dirpath={out}/ckpt",
                   f"logger.csv.save_dir={out}"))  # fmt: skip
    with open(out / "csv" / "metrics.csv") as f:
        logged = {name for row in csv.DictReader(f) for name, value in row.items() if value}
    assert {"val/nll", "train/kl_1", "train/kl_2", "val/kl_1", "val/kl_2"} <= logged
    ckpt = out / "ckpt" / "last.ckpt"
    model = build_model_from_checkpoint(ckpt)
    assert isinstance(model, LadderVAE) and model.family == "ladder_vae"
    assert model.config.batch_norm and model.config.activation == "leaky_relu"
    a = model.generate(3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 1, 28, 28) and torch.equal(a, model.generate(3, generator=torch.Generator().manual_seed(0)))  # fmt: skip
    results = evaluate(compose_config(tmp_path / "eval", f"ckpt_path={ckpt}", "num_test_images=8",
                                      "k=20", "k_batch=10", "metrics.num_samples=0",
                                      config_name="eval"))  # fmt: skip
    assert results["likelihood"] == "bernoulli" and results["k"] == 20
    assert 0 < results["test/nll"] <= -results["test/elbo"] + 1.0  # the bound is not looser
    assert results["test/nll_bpd"] == pytest.approx(results["test/nll"] / (784 * math.log(2)))


# -- the former ladder_vae (the top-down VAE, now topdown_vae) ------------------------------------
TOPDOWN_TINY = {"image_size": 8, "channels": 3, "width": 8, "num_resolutions": 2,
                "blocks_per_resolution": 1, "z_channels": 2,
                "likelihood": "discretized_logistic_mixture", "num_mixtures": 2}  # fmt: skip


def _former_checkpoint(path, family: str = "ladder_vae"):
    """A checkpoint as genlab wrote the top-down VAE when it was registered as ladder_vae."""
    model = TopDownVAE(**TOPDOWN_TINY)
    checkpoint = {"genlab": {"family": family, "model_class": "LadderVAE", "counters": {}},
                  "hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()}  # fmt: skip
    torch.save(checkpoint, path)
    return model, checkpoint


def test_a_checkpoint_of_the_former_ladder_vae_is_refused_naming_topdown_vae(tmp_path):
    from genlab.models.registry import build_model_from_checkpoint

    path = tmp_path / "old.ckpt"
    model, checkpoint = _former_checkpoint(path)
    with pytest.raises(ConfigError) as info:
        build_model_from_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"ckpt_path='{path}' is invalid") and "\n" not in message
    assert "model.width" in message and "use model=topdown_vae" in message
    # resuming it into today's ladder_vae (Lightning's hook, before any weight is loaded)
    with pytest.raises(ConfigError, match="ckpt_path=.*model=topdown_vae"):
        LadderVAE(**TINY).on_load_checkpoint(checkpoint)
    # the conversion the message names: the same file as a topdown_vae checkpoint loads
    checkpoint["genlab"]["family"] = "topdown_vae"
    torch.save(checkpoint, path)
    loaded = build_model_from_checkpoint(path)
    assert isinstance(loaded, TopDownVAE)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)


def test_a_stored_config_of_the_former_ladder_vae_is_refused_naming_topdown_vae():
    """A run's saved config (.hydra/config.yaml) from before the rename: the ladder_vae target
    with the top-down VAE's settings, checked before torch is imported and at instantiation."""
    import hydra
    from omegaconf import OmegaConf

    from genlab.models.registry import check_model_config

    old = OmegaConf.create({"_target_": "genlab.models.vae.LadderVAE", "_recursive_": False,
                            **TOPDOWN_TINY})  # fmt: skip
    with pytest.raises(ConfigError, match=r"model\._target_=.*model\.width.*model=topdown_vae"):
        check_model_config(old)
    with pytest.raises(Exception, match="model=topdown_vae"):
        hydra.utils.instantiate(old)
    renamed = OmegaConf.merge(old, {"_target_": "genlab.models.vae.TopDownVAE"})
    check_model_config(renamed)  # today's name for it: accepted
