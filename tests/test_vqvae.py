"""VQ-VAE: straight-through gradients, EMA codebook, dead codes, the PixelCNN prior, the CLIs."""

from __future__ import annotations

import csv

import pytest
import torch

from genlab.checks.errors import ConfigError
from genlab.models.vqvae import VQVAE
from genlab.models.vqvae.quantizer import EMAVectorQuantizer
from genlab.nets.pixelcnn import GatedPixelCNN

TINY = {"image_size": 8, "channels": 1, "num_embeddings": 6, "embedding_dim": 3,
        "hidden_channels": 8, "num_residual_blocks": 1}  # fmt: skip


def test_straight_through_copies_the_decoder_gradient_to_the_encoder_output():
    torch.manual_seed(0)
    quantizer = EMAVectorQuantizer(5, 3).eval()
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = quantizer(z_e)
    flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    nearest = torch.cdist(flat, quantizer.codebook).argmin(1)
    torch.testing.assert_close(out["codes"].flatten(), nearest)
    # forward: the codebook vectors; backward: identity to z_e
    torch.testing.assert_close(
        out["z_q"].permute(0, 2, 3, 1).reshape(-1, 3), quantizer.codebook[nearest]
    )
    upstream = torch.randn(2, 3, 4, 4)
    (out["z_q"] * upstream).sum().backward()
    torch.testing.assert_close(z_e.grad, upstream)
    # the commitment term pulls z_e towards its (fixed) code: d/dz_e mean||z_e - e||^2
    z_e.grad = None
    quantizer(z_e)["commitment"].backward()
    expected = 2 * (flat - quantizer.codebook[nearest]) / flat.numel()
    torch.testing.assert_close(z_e.grad.permute(0, 2, 3, 1).reshape(-1, 3), expected)


def test_ema_codebook_update_matches_a_hand_computation():
    quantizer = EMAVectorQuantizer(3, 2, decay=0.8, epsilon=0.1, dead_code_threshold=0.0)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]))
        quantizer.embed_sum.copy_(quantizer.codebook)
        quantizer.cluster_size.fill_(1.0)
    vectors = torch.tensor([[0.5, 0.0], [0.0, -0.5], [3.0, 1.0], [5.0, 0.0]])  # -> 0, 0, 1, 1
    z_e = vectors.view(1, 2, 2, 2).permute(0, 3, 1, 2)  # (1, D=2, 2, 2), raster order kept
    out = quantizer.train()(z_e)
    assert out["codes"].flatten().tolist() == [0, 0, 1, 1]
    # by hand: N = 0.8 * 1 + 0.2 * n, m = 0.8 * e + 0.2 * sum
    n = [0.8 + 0.2 * 2, 0.8 + 0.2 * 2, 0.8]
    m = [[0.8 * 0 + 0.2 * 0.5, 0.8 * 0 + 0.2 * -0.5],
         [0.8 * 4 + 0.2 * 8.0, 0.8 * 0 + 0.2 * 1.0],
         [0.0, 0.8 * 4]]  # fmt: skip
    total = sum(n)
    smoothed = [(n_k + 0.1) / (total + 3 * 0.1) * total for n_k in n]
    expected = torch.tensor([[m[k][d] / smoothed[k] for d in range(2)] for k in range(3)])
    torch.testing.assert_close(quantizer.cluster_size, torch.tensor(n))
    torch.testing.assert_close(quantizer.embed_sum, torch.tensor(m))
    torch.testing.assert_close(quantizer.codebook, expected)
    # perplexity of the batch's code frequencies (1/2, 1/2, 0) = 2; usage 2 of 3 codes
    assert out["perplexity"].item() == pytest.approx(2.0)
    assert out["usage"].item() == pytest.approx(2 / 3)
    quantizer.eval()(z_e)  # evaluation never moves the codebook
    torch.testing.assert_close(quantizer.codebook, expected)


def test_dead_codes_restart_at_encoder_outputs():
    torch.manual_seed(0)
    quantizer = EMAVectorQuantizer(4, 2, decay=0.5, dead_code_threshold=0.3).train()
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [-50, 50], [50, -50]]))
        quantizer.embed_sum.copy_(quantizer.codebook)
    vectors = torch.randn(16, 2) * 0.1  # all nearest to code 0: codes 1-3 starve
    z_e = vectors.view(1, 4, 4, 2).permute(0, 3, 1, 2)
    restarted = [int(quantizer(z_e)["restarted"]) for _ in range(2)]
    assert restarted == [0, 3]  # N_k: 1 -> 0.5 -> 0.25 < 0.3 at the second step
    for k in (1, 2, 3):  # each now sits on one of the batch's vectors, counted once
        assert torch.isclose(vectors, quantizer.codebook[k]).all(1).any()
        torch.testing.assert_close(quantizer.embed_sum[k], quantizer.codebook[k])
        assert quantizer.cluster_size[k] == 1.0
    out = quantizer(z_e)
    assert out["usage"].item() > 0.25  # the restarted codes take part of the batch


def test_pixelcnn_is_causal_in_raster_order():
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=5, channels=8, num_layers=4, kernel_size=3)
    codes = torch.randint(5, (1, 5, 5))
    embedded = net.embedding(codes).permute(0, 3, 1, 2).detach().requires_grad_(True)
    v = h = embedded
    for layer in net.layers:
        v, h = layer(v, h)
    logits = net.head(h)
    for i, j in [(0, 0), (2, 2), (2, 4), (4, 0)]:
        (grad,) = torch.autograd.grad(logits[0, :, i, j].sum(), embedded, retain_graph=True)
        seen = grad[0].abs().sum(0) > 0  # (5, 5): which inputs the output at (i, j) depends on
        order = torch.arange(25).view(5, 5)
        assert not seen[order >= i * 5 + j].any(), (i, j)  # never itself or later positions
        if (i, j) != (0, 0):
            assert seen[order < i * 5 + j].any()  # and something before it
    # a full-row receptive field with no blind spot: (2, 2) sees (1, 4) through the stacks
    (grad,) = torch.autograd.grad(logits[0, :, 2, 2].sum(), embedded)
    assert grad[0, :, 1, 4].abs().sum() > 0


def test_config_errors():
    with pytest.raises(ConfigError, match="model.image_size.*multiple of 4"):
        VQVAE(**{**TINY, "image_size": 30})
    with pytest.raises(ConfigError, match="model.ema_decay"):
        VQVAE(**{**TINY, "ema_decay": 1.0})


def test_recon_scale_divides_the_reconstruction_mse_by_the_data_variance():
    """loss = mse / data_variance + beta * commitment (the Sonnet example's recon_error; the
    commitment term is not divided), in the loss and in its gradient."""
    torch.manual_seed(0)
    plain = VQVAE(**TINY)
    scaled = VQVAE(**TINY, recon_scale="data_variance", data_variance=0.05)
    scaled.load_state_dict({**plain.state_dict(), "data_variance": scaled.data_variance})
    x = torch.rand(2, 1, 8, 8)
    losses = {}
    for name, model in (("plain", plain), ("scaled", scaled)):
        model.eval()  # the same codebook for both (no EMA update)
        torch.manual_seed(1)
        losses[name] = model.loss_terms(x)
    p, s = losses["plain"], losses["scaled"]
    torch.testing.assert_close(s["recon_mse"], p["recon_mse"])
    torch.testing.assert_close(p["recon_loss"], p["recon_mse"])
    torch.testing.assert_close(s["recon_loss"], p["recon_mse"] / 0.05)
    torch.testing.assert_close(s["loss"], p["recon_mse"] / 0.05 + 0.25 * p["commitment"])
    (grad_plain,) = torch.autograd.grad(p["recon_loss"], plain.decoder.parameters().__next__())
    (grad_scaled,) = torch.autograd.grad(s["recon_loss"], scaled.decoder.parameters().__next__())
    torch.testing.assert_close(grad_scaled, grad_plain / 0.05)


def test_the_data_variance_is_the_pooled_population_variance_of_the_training_pixels():
    from genlab.data.tensor_dataset import TensorImageDataset
    from genlab.models.vqvae.module import training_data_variance

    images = torch.randint(0, 256, (7, 3, 4, 4), dtype=torch.uint8)
    expected = (images.double() / 255.0).var(unbiased=False).item()  # np.var(images / 255.0)

    class Data:  # the part of a genlab datamodule the computation uses
        def __init__(self, dataset):
            self.train = dataset

        def dataset(self, split):
            assert split == "train"
            return self.train

    splits = {
        "in-memory uint8": TensorImageDataset(images, torch.zeros(7, dtype=torch.long)),
        "uint8 images": [(im, 0) for im in images],
        "float images": [(im.float() / 255.0, 0) for im in images],
    }
    for name, dataset in splits.items():  # batches of 3, 3 and 1, merged
        value, count = training_data_variance(Data(dataset), batch_size=3)
        assert count == 7 and value == pytest.approx(expected, rel=1e-6), name


def test_recon_scale_config_errors():
    with pytest.raises(ConfigError, match="model.recon_scale='variance'.*'none', 'data_variance'"):
        VQVAE(**{**TINY, "recon_scale": "variance"})
    with pytest.raises(
        ConfigError, match="model.data_variance=0.06.*null with model.recon_scale=none"
    ):
        VQVAE(**{**TINY, "data_variance": 0.06})
    with pytest.raises(ConfigError, match="model.data_variance=-1.*a number > 0"):
        VQVAE(**{**TINY, "recon_scale": "data_variance", "data_variance": -1})
    unknown = VQVAE(**{**TINY, "recon_scale": "data_variance"})  # computed when fitting starts
    with pytest.raises(ConfigError, match="model.data_variance=None.*outside genlab.train"):
        unknown.loss_terms(torch.rand(2, 1, 8, 8))
    # resuming a run trained on the plain MSE into the scaled objective: refused by name
    plain = {"state_dict": VQVAE(**TINY).state_dict(), "genlab": {}}
    with pytest.raises(ConfigError, match="model.recon_scale='data_variance'.*none to resume"):
        unknown.on_load_checkpoint(plain)
    VQVAE(**TINY).on_load_checkpoint(plain)  # the same objective: resumes


def _logged(path) -> set[str]:
    with open(path) as f:
        return {name for row in csv.DictReader(f) for name, value in row.items() if value}


def test_first_stage_and_prior_train_sample_and_evaluate(make_cfg, tmp_path):
    from conftest import compose_config
    from genlab.eval import evaluate
    from genlab.models.registry import build_model_from_checkpoint
    from genlab.train import train

    small = ["~callbacks.sample_grid", "model.hidden_channels=8", "model.num_residual_blocks=1"]
    first = tmp_path / "first"
    train(make_cfg("model=vqvae", *small, "model.num_embeddings=16", "model.embedding_dim=4",
                   f"callbacks.model_checkpoint.dirpath={first}/ckpt",
                   f"logger.csv.save_dir={first}"))  # fmt: skip
    logged = _logged(first / "csv" / "metrics.csv")
    assert {"train/perplexity", "train/codebook_usage", "train/commitment", "val/psnr"} <= logged
    assert "train/recon_loss" in logged
    first_ckpt = first / "ckpt" / "last.ckpt"
    # model=vqvae divides the MSE by the variance of the training pixels, computed when fitting
    # started and kept in the checkpoint (hyper_parameters and buffer)
    import hydra

    from genlab.runs.checkpoints import load_checkpoint

    datamodule = hydra.utils.instantiate(make_cfg("model=vqvae").data)
    pixels = torch.stack([torch.as_tensor(im) for im, _ in datamodule.dataset("train")])
    expected = (pixels.double() / 255.0).var(unbiased=False).item()
    stored = load_checkpoint(first_ckpt)
    assert stored["hyper_parameters"]["recon_scale"] == "data_variance"
    assert stored["hyper_parameters"]["data_variance"] == pytest.approx(expected, rel=1e-6)
    assert stored["state_dict"]["data_variance"].item() == pytest.approx(expected, rel=1e-6)
    eval_args = ["num_test_images=8", "metrics.num_samples=0", "batch_size=4"]
    results = evaluate(compose_config(tmp_path / "e1", f"ckpt_path={first_ckpt}", *eval_args,
                                      config_name="eval"))  # fmt: skip
    assert 0 < results["test/recon_mse"] < 1 and results["test/psnr"] > 0
    assert 1 <= results["test/perplexity"] <= 16

    prior = tmp_path / "prior"
    train(make_cfg("model=vqvae_prior", f"model.vqvae_ckpt={first_ckpt}", "model.num_layers=2",
                   "model.hidden_channels=8", "~callbacks.sample_grid",
                   f"callbacks.model_checkpoint.dirpath={prior}/ckpt",
                   f"logger.csv.save_dir={prior}"))  # fmt: skip
    assert {"train/loss", "val/loss", "val/bits_per_code"} <= _logged(prior / "csv" / "metrics.csv")
    first_ckpt.unlink()  # the prior's checkpoint holds the first stage: no other file needed
    model = build_model_from_checkpoint(prior / "ckpt" / "last.ckpt")
    assert model.family == "vqvae_prior"
    a = model.generate(3, generator=torch.Generator().manual_seed(0))
    b = model.generate(3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 1, 28, 28) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    results = evaluate(compose_config(tmp_path / "e2", f"ckpt_path={prior / 'ckpt' / 'last.ckpt'}",
                                      *eval_args, config_name="eval"))  # fmt: skip
    assert results["test/nll_codes"] > 0 and "test/psnr" in results


def test_prior_refuses_a_checkpoint_of_another_family(make_cfg, tmp_path):
    from omegaconf import OmegaConf

    from genlab.models.vqvae import VQVAEPrior
    from genlab.train import train

    out = tmp_path / "vae"
    train(make_cfg("model=vae_mlp", "model.hidden_dims=[8]", "~callbacks.sample_grid",
                   "trainer.limit_train_batches=1", f"callbacks.model_checkpoint.dirpath={out}",
                   f"logger.csv.save_dir={out}"))  # fmt: skip
    cfg = make_cfg("model=vqvae_prior", f"model.vqvae_ckpt={out / 'last.ckpt'}")
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
              if not k.startswith("_")}  # fmt: skip
    with pytest.raises(ConfigError, match="model.vqvae_ckpt.*a vqvae checkpoint.*a vae"):
        VQVAEPrior(**kwargs)
    with pytest.raises(ConfigError, match="model.vqvae_ckpt=None"):
        VQVAEPrior(**{**kwargs, "vqvae_ckpt": None})
    with pytest.raises(ConfigError, match="model.vqvae_ckpt.*existing"):
        VQVAEPrior(**{**kwargs, "vqvae_ckpt": str(tmp_path / "missing.ckpt")})


def test_resumed_first_stage_ends_with_the_same_codebook_and_weights(
    make_cfg, tmp_path, monkeypatch
):
    """EMA codebook buffers, the dead-code restarts' random draws and the data variance
    survive a resume (the resumed run does not compute the variance again)."""
    from genlab.runs.checkpoints import load_checkpoint
    from genlab.train import train

    common = ["model=vqvae", "model.hidden_channels=8", "model.num_residual_blocks=1",
              "model.num_embeddings=64", "model.ema_decay=0.5", "model.dead_code_threshold=0.5",
              "~callbacks.sample_grid",
              "trainer.deterministic=true", "num_threads=1", "seed=3"]  # fmt: skip

    def run(name, *extra):
        out = tmp_path / name
        train(make_cfg(*common, *extra, f"callbacks.model_checkpoint.dirpath={out}",
                       f"logger.csv.save_dir={out}"))  # fmt: skip
        return out / "last.ckpt"

    straight = load_checkpoint(run("straight", "trainer.max_epochs=2"))["state_dict"]
    with open(tmp_path / "straight" / "csv" / "metrics.csv") as f:
        restarts = [float(r["train/restarted_codes"]) for r in csv.DictReader(f)
                    if r.get("train/restarted_codes")]  # fmt: skip
    assert sum(restarts) > 0  # dead codes were restarted (random draws) during the run
    half = run("half", "trainer.max_epochs=1")

    def computed_again(*args, **kwargs):
        raise AssertionError("the resumed run computed the data variance again")

    monkeypatch.setattr("genlab.models.vqvae.module.training_data_variance", computed_again)
    resumed = load_checkpoint(run("resumed", "trainer.max_epochs=2", f"ckpt_path={half}"))
    got = resumed["state_dict"]
    assert [k for k in straight if not torch.equal(got[k], straight[k])] == []
    assert not torch.equal(
        load_checkpoint(half)["state_dict"]["quantizer.codebook"], got["quantizer.codebook"]
    )
