"""Disentanglement metrics (genlab.metrics.disentanglement) on codes with known answers: codes
that copy the factors score near 1, codes that mix every factor into every code score low,
constant codes score 0."""

import numpy as np
import pytest

from genlab.checks.errors import ConfigError
from genlab.metrics.disentanglement import (
    dci,
    dci_from_importance,
    discrete_mutual_info,
    disentanglement_scores,
    factor_vae_score,
    mig,
)

# a 4 x 4 Hadamard rotation: every code weighs every factor equally (the worst entanglement)
HADAMARD = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0


def grid(sizes=(3, 4, 5, 6), seed=0):
    """Every combination of the factor values (a full factor grid, as dSprites), shuffled, and
    the standardised factors."""
    axes = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
    factors = np.stack(axes, -1).reshape(-1, len(sizes))
    factors = factors[np.random.default_rng(seed).permutation(len(factors))]
    z = (factors - factors.mean(0)) / factors.std(0)
    return factors, z


def test_mutual_info_of_a_copy_is_the_entropy():
    a = np.repeat(np.arange(4), 5)
    assert discrete_mutual_info(a, a) == pytest.approx(np.log(4))
    assert discrete_mutual_info(a, np.zeros_like(a)) == pytest.approx(0.0)


def test_mig_copy_rotation_constant():
    factors, z = grid()
    assert mig(z, factors)["mig"] > 0.95
    assert mig(z @ HADAMARD, factors)["mig"] < 0.1
    q = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))[0]
    assert mig(z @ q, factors)["mig"] < 0.5
    assert mig(np.zeros_like(z), factors)["mig"] == 0.0


def test_dci_importance_matrix_known_answers():
    assert dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0), abs=1e-6)
    assert dci_from_importance(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert dci_from_importance(np.zeros((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-6)
    # one code explains both factors: perfectly complete, not disentangled
    d, c = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(1.0, abs=1e-6)


def test_dci_logistic_copy_rotation_constant():
    factors, z = grid((3, 4, 4, 5))
    tr, te = slice(0, 160), slice(160, 240)
    copy = dci(z[tr], factors[tr], z[te], factors[te], "logistic")
    assert copy["dci_disentanglement"] > 0.85 and copy["dci_completeness"] > 0.85
    assert copy["dci_informativeness_test"] > 0.9
    mixed = dci((z @ HADAMARD)[tr], factors[tr], (z @ HADAMARD)[te], factors[te], "logistic")
    assert mixed["dci_disentanglement"] < 0.1 and mixed["dci_completeness"] < 0.1
    const = np.zeros_like(z)
    zero = dci(const[tr], factors[tr], const[te], factors[te], "logistic")
    assert zero["dci_disentanglement"] == pytest.approx(0.0, abs=1e-6)
    assert zero["dci_completeness"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_dci_gbt_copy_rotation_constant():
    pytest.importorskip("sklearn")
    factors, z = grid((3, 4, 5, 6))
    tr, te = slice(0, 240), slice(240, 360)
    copy = dci(z[tr], factors[tr], z[te], factors[te], "gbt")
    assert copy["dci_disentanglement"] > 0.95 and copy["dci_informativeness_test"] > 0.95
    mixed = dci((z @ HADAMARD)[tr], factors[tr], (z @ HADAMARD)[te], factors[te], "gbt")
    assert mixed["dci_disentanglement"] < 0.2
    const = np.zeros_like(z)
    zero = dci(const[tr], factors[tr], const[te], factors[te], "gbt")
    assert zero["dci_disentanglement"] == pytest.approx(0.0, abs=1e-6)


def test_factor_vae_score_copy_mixed_constant():
    factors, z = grid()
    kw = {"num_train": 200, "num_eval": 200, "num_variance_estimate": 360}
    assert factor_vae_score(z, factors, **kw)["factor_vae_eval_accuracy"] == 1.0
    # every code the same mix of all factors: the argmin is noise, the vote near chance (1/4)
    assert factor_vae_score(z @ HADAMARD, factors, **kw)["factor_vae_eval_accuracy"] < 0.6
    out = factor_vae_score(np.zeros_like(z), factors, **kw)
    assert out["factor_vae_eval_accuracy"] == 0.0 and out["factor_vae_active_dims"] == 0


def test_unknown_names_are_refused():
    factors, z = grid((2, 3))
    with pytest.raises(ConfigError, match="disentanglement.metrics"):
        disentanglement_scores(z, factors, metrics=["mig", "sap"])
    with pytest.raises(ConfigError, match="disentanglement.dci_classifier"):
        dci(z, factors, z, factors, "forest")


def test_scores_state_their_protocol():
    factors, z = grid((3, 4, 5))
    out = disentanglement_scores(z, factors, metrics=["mig", "factor_vae"], num_points=40,
                                 factor_vae_num_train=50, factor_vae_num_eval=50)  # fmt: skip
    assert out["mig"] > 0.9 and out["factor_vae_score"] == 1.0
    assert out["disentanglement_num_points"] == 40 and out["disentanglement_pool_size"] == 60
    assert "20 equal-width bins" in out["disentanglement_protocol"]


def test_eval_scores_a_vae_on_shapes2d_and_refuses_data_without_factors():
    """genlab.eval's disentanglement step: posterior means of a pool of shapes2d images, the
    protocol in the results; one ConfigError naming the key on data without factor labels."""
    import torch
    from omegaconf import OmegaConf

    from genlab.data.shapes2d import Shapes2DDataModule
    from genlab.eval import disentanglement
    from genlab.models.vae import BetaTCVAE

    torch.manual_seed(0)
    model = BetaTCVAE(image_size=64, channels=1, arch="mlp", hidden_dims=[8], latent_dim=3)
    data = Shapes2DDataModule(num_train=300, num_test=20)
    data.setup("test")
    dcfg = OmegaConf.create({"metrics": ["mig", "dci", "factor_vae"], "split": "train",
                             "num_images": 200, "num_points": 120, "num_test_points": 80,
                             "dci_classifier": "logistic", "factor_vae_num_train": 30,
                             "factor_vae_num_eval": 30})  # fmt: skip
    out = disentanglement(model, data, dcfg, torch.device("cpu"), seed=0)
    assert 0 <= out["train/mig"] <= 1 and 0 <= out["train/dci_disentanglement"] <= 1
    assert 0 <= out["train/factor_vae_score"] <= 1
    assert out["disentanglement_pool_size"] == 200 and out["disentanglement_num_points"] == 120
    assert disentanglement(model, data, OmegaConf.create({"metrics": []}), "cpu", 0) == {}

    class NoFactors:
        pass

    with pytest.raises(ConfigError, match="disentanglement.metrics.*no factor labels"):
        disentanglement(model, NoFactors(), dcfg, torch.device("cpu"), seed=0)
