"""genlab.eval: likelihood report of VAE checkpoints, sample quality, JSON beside the checkpoint."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from conftest import FAST, SHARED_MNIST_RAW, compose_config
from genlab import eval as genlab_eval
from genlab.checks.errors import ConfigError
from genlab.eval import evaluate
from genlab.models.registry import build_model_from_checkpoint
from genlab.models.vae.evaluation import vae_likelihood
from genlab.train import train


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    """One tiny MLP VAE checkpoint shared by the tests of this file (saves a training each)."""
    run_dir = tmp_path_factory.mktemp("vae_run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train(
        compose_config(
            run_dir,
            *FAST,
            "model=vae_mlp",
            "model.hidden_dims=[64]",
            "data.binarize=true",  # a Bernoulli is a likelihood of binary pixels only
            "~callbacks.sample_grid",
        )
    )
    torch.set_num_threads(threads)
    GlobalHydra.instance().clear()
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture
def vae_ckpt(trained_vae, tmp_path):
    """A private copy of the shared checkpoint (eval.json is written beside it)."""
    path = tmp_path / "ckpt" / "last.ckpt"
    path.parent.mkdir()
    shutil.copy(trained_vae, path)
    return path


def eval_cfg(tmp_path, *overrides):
    return compose_config(tmp_path / "eval", *overrides, config_name="eval")


def test_vae_report_is_consistent_and_written_beside_checkpoint(vae_ckpt, tmp_path):
    results = evaluate(
        eval_cfg(
            tmp_path,
            f"ckpt_path={vae_ckpt}",
            "num_test_images=40",
            "batch_size=16",
            "k=50",
            "k_batch=20",
            "metrics.num_samples=0",
        )
    )
    saved = json.loads((vae_ckpt.parent / "eval.json").read_text())
    assert saved["test/nll"] == results["test/nll"] and saved["num_images"] == 40
    assert "test/fid" not in saved  # metrics.num_samples=0 skips sample quality
    # importance sampling tightens the ELBO: NLL <= -ELBO (up to Monte Carlo noise)
    assert results["test/nll"] < -results["test/elbo"] + 1.0
    assert results["test/elbo"] == pytest.approx(
        results["test/recon_log_prob"] - results["test/kl"], rel=1e-6
    )
    # Bernoulli likelihood: a probability of the binary pixels, no dequantisation term
    assert results["test/nll_bpd"] == pytest.approx(results["test/nll"] / (784 * math.log(2)))
    assert 0 < results["test/recon_mse"] < 1


def test_same_seed_same_numbers_and_subset_size(vae_ckpt, tmp_path):
    args = [f"ckpt_path={vae_ckpt}", "num_test_images=20", "k=10", "metrics.num_samples=0"]
    first = evaluate(eval_cfg(tmp_path, *args, f"output={tmp_path / 'a.json'}"))
    again = evaluate(eval_cfg(tmp_path, *args, f"output={tmp_path / 'b.json'}"))
    other = evaluate(eval_cfg(tmp_path, *args, "seed=1", f"output={tmp_path / 'c.json'}"))
    assert first["test/nll"] == again["test/nll"] != other["test/nll"]
    assert first["num_images"] == 20


def test_estimate_is_batching_invariant_in_expectation(vae_ckpt):
    """Chunking the k samples only changes which random numbers are drawn, not the estimator."""
    model = build_model_from_checkpoint(vae_ckpt)
    x = torch.bernoulli(torch.full((8, 1, 28, 28), 0.15, dtype=torch.float32))
    torch.manual_seed(0)
    a = vae_likelihood(model, [x], k=400, k_batch=400, device=torch.device("cpu"))
    torch.manual_seed(1)
    b = vae_likelihood(model, [x[:3], x[3:]], k=400, k_batch=37, device=torch.device("cpu"))
    assert b["num_images"] == 8
    assert a["test/nll"] == pytest.approx(b["test/nll"], abs=0.5)


def test_sample_quality_for_gan_and_vae(make_cfg, tmp_path, vae_ckpt):
    args = [
        "metrics.num_samples=32",
        "metrics.num_real=64",
        "metrics.kid_subsets=5",
        "metrics.kid_subset_size=32",
        "metrics.cache_dir=null",
        "num_test_images=16",
        "k=5",
    ]
    vae = evaluate(eval_cfg(tmp_path, f"ckpt_path={vae_ckpt}", *args))
    gan_dir = tmp_path / "gan"
    train(
        make_cfg(
            "model=gan",
            f"callbacks.model_checkpoint.dirpath={gan_dir}",
            "~callbacks.sample_grid",
            "trainer.limit_train_batches=1",
            "model.generator.base_channels=8",
            "model.discriminator.base_channels=8",
        )
    )
    gan = evaluate(eval_cfg(tmp_path, f"ckpt_path={gan_dir / 'last.ckpt'}", *args))
    for results in (vae, gan):
        for key in ("test/fid", "test/kid", "test/is", "test/precision", "test/recall"):
            assert math.isfinite(results[key]), key
    assert "test/nll" in vae and "test/nll" not in gan
    assert json.loads((gan_dir / "eval.json").read_text())["test/fid"] == gan["test/fid"]


def test_inception_features_with_and_without_torch_fidelity_weights(
    vae_ckpt, tmp_path, monkeypatch
):
    """The issue's ``metrics.features=inception`` command: fid-helper's Inception (no logits)
    gives every metric but IS; torch-fidelity's weights in the torch hub cache add IS."""
    from genlab.metrics.inception import FID_HELPER_SHA256
    from test_inception_backends import convert_fid_helper_to_torch_fidelity

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    args = [
        f"ckpt_path={vae_ckpt}",
        "metrics.features=inception",
        "metrics.num_samples=8",
        "metrics.num_real=8",
        "metrics.batch_size=8",
        "metrics.kid_subset_size=8",
        "metrics.is_splits=1",
        "metrics.pr_k=2",
        "metrics.cache_dir=null",
        "num_test_images=8",
        "k=4",
    ]
    without = evaluate(eval_cfg(tmp_path, *args))
    assert {"test/fid", "test/kid", "test/precision", "test/recall"} <= set(without)
    assert "test/is" not in without and math.isfinite(without["test/fid"])
    assert (
        without["sample_quality_network"] == f"inception-fid_helper-{FID_HELPER_SHA256[0][:12]}-q8"
    )
    assert without["sample_quality_reference_split"] == "train"
    assert without["sample_quality_num_real"] == 8 and without["sample_quality_num_fake"] == 8
    converted = convert_fid_helper_to_torch_fidelity(tmp_path)
    with_is = evaluate(eval_cfg(tmp_path, *args, f"metrics.inception_weights={converted}"))
    assert math.isfinite(with_is["test/is"])
    assert with_is["sample_quality_network"].startswith("inception-torch_fidelity-")
    assert with_is["test/fid"] == pytest.approx(without["test/fid"], rel=1e-3)
    saved = json.loads((vae_ckpt.parent / "eval.json").read_text())
    assert (
        saved["test/is"] == with_is["test/is"] and saved["sample_quality_features"] == "inception"
    )


def test_cli_prints_and_rejects_bad_values(vae_ckpt, tmp_path, capsys):
    """The CLI body (the slow test below runs the real ``python -m genlab.eval``)."""
    from genlab.cli.entry import run_hydra_cli

    task = genlab_eval.hydra_main.__wrapped__  # the body under @hydra.main
    args = [f"ckpt_path={vae_ckpt}", "num_test_images=8", "k=4", "metrics.num_samples=0"]
    task(eval_cfg(tmp_path, *args))
    assert "test/nll" in capsys.readouterr().out and (vae_ckpt.parent / "eval.json").is_file()
    with pytest.raises(SystemExit) as exit_info:  # the CLI's one wrapper: one line, exit 2
        run_hydra_cli(lambda: task(eval_cfg(tmp_path, *args, "k=0")), config_name="eval")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "k=0" in err and "integer >= 1" in err


def test_data_overrides_are_checked_against_the_datamodule(vae_ckpt, tmp_path):
    """``data.*`` keys on the command line go through the same checks as the checkpoint's data
    config (genlab.data.datamodule_from_config): a misspelt key is one ConfigError naming it."""
    args = [f"ckpt_path={vae_ckpt}", "num_test_images=4", "k=2", "metrics.num_samples=0"]
    with pytest.raises(ConfigError, match=r"data\.batch_sise=3 is invalid: allowed the keys"):
        evaluate(eval_cfg(tmp_path, *args, "+data.batch_sise=3"))
    results = evaluate(eval_cfg(tmp_path, *args, "+data.batch_size=3"))
    assert results["data"] == "FashionMNISTMiniDataModule" and results["num_images"] == 4


@pytest.mark.slow
def test_cli_subprocess(vae_ckpt, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "genlab.eval",
        f"ckpt_path={vae_ckpt}",
        "num_test_images=8",
        "k=4",
        "metrics.num_samples=0",
        f"output={tmp_path / 'out.json'}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text())["k"] == 4


@pytest.mark.skipif(not SHARED_MNIST_RAW.is_dir(), reason="needs ../shared/data/MNIST/raw")
def test_mnist_nll_experiment_reads_shared_mnist_binarised(tmp_path, monkeypatch):
    import hydra

    monkeypatch.delenv("GENLAB_MNIST_DIR", raising=False)
    cfg = compose_config(tmp_path, "experiment=vae_mnist_nll")
    cfg.paths.root_dir = str(SHARED_MNIST_RAW.parents[3] / "main")
    assert cfg.model.arch == "mlp" and cfg.model.latent_dim == 40 and cfg.model.k == 1
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    assert len(dm.dataset("train")) == 60000 and len(dm.dataset("test")) == 10000
    assert set(dm.dataset("test").images.unique().tolist()) == {0, 255}
