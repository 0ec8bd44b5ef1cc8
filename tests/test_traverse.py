"""genlab.sample mode=traverse: latent traversals for every family (genlab.models.traversal)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

from conftest import bare_trainer, compose_config
from genlab.checks.errors import ConfigError
from genlab.models import GAN, VAE
from genlab.models.traversal import principal_directions
from genlab.models.vqvae import VQVAE
from genlab.sample import traverse

TINY_VAE = {"image_size": 28, "channels": 1, "arch": "mlp", "hidden_dims": [16], "latent_dim": 5}
MLP = {"arch": "mlp", "hidden_dims": [16]}
STYLEGAN2_G = {"arch": "stylegan2", "channel_base": 128, "channel_max": 8, "w_dim": 6,
               "mapping_layers": 2, "style_mixing_prob": 0.0}  # fmt: skip
STYLEGAN2_D = {"arch": "stylegan2", "channel_base": 128, "channel_max": 8, "mbstd_group_size": 2}
TINY_VQVAE = {"image_size": 8, "channels": 1, "num_embeddings": 6, "embedding_dim": 3,
              "hidden_channels": 8, "num_residual_blocks": 1}  # fmt: skip


def sample_cfg(tmp_path, *overrides: str):
    return compose_config(tmp_path, "ckpt_path=unused", "mode=traverse", *overrides,
                          config_name="sample")  # fmt: skip


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size  # (width, height)


def test_principal_directions_are_orthonormal_and_ordered_by_variance():
    """GANSpace's PCA: on latents with known principal axes (a rotation Q of independent
    coordinates with stds 5, 3, 2, 1, 0.5) it finds Q's rows in that order, orthonormal, with
    the stds as step units; the signs are fixed (largest entry positive)."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=torch.float64))
    stds = torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    samples = (torch.randn(20000, 5, generator=gen, dtype=torch.float64) * stds) @ q.T + 7.0
    mean, directions, found, explained = principal_directions(samples, 3)
    assert torch.allclose(directions @ directions.T, torch.eye(3, dtype=torch.float64), atol=1e-9)
    assert (found[:-1] > found[1:]).all() and torch.allclose(found, stds[:3], rtol=0.03)
    assert torch.allclose((directions @ q[:, :3]).abs(), torch.eye(3, dtype=torch.float64),
                          atol=0.03)  # fmt: skip
    assert torch.allclose(explained, stds[:3] ** 2 / (stds**2).sum(), rtol=0.06)
    assert torch.allclose(mean, torch.full((5,), 7.0, dtype=torch.float64), atol=0.1)
    assert (directions.gather(1, directions.abs().argmax(1, keepdim=True)) > 0).all()
    with pytest.raises(ConfigError, match=r"traverse\.directions=6"):
        principal_directions(samples, 6)


def test_vae_traversal_of_dimension_i_changes_only_z_i(tmp_path):
    """center=data: the decoder gets, for direction i and image r, the posterior mean of
    image r with z_i replaced by mean_i + t (t = linspace(-range, range, steps)); nothing else."""
    torch.manual_seed(0)
    model = VAE(**TINY_VAE).eval()
    images = torch.rand(3, 1, 28, 28)
    walk = model.latent_traversal(4, center="data", num_centers=3, images=images)
    means = model.encode(images)[0]
    assert torch.allclose(walk.centers, means)
    seen = []
    decode = model.decode
    model.decode = lambda z: (seen.append(z.clone()), decode(z))[1]
    grids = walk.images(span=2.0, steps=5)
    assert grids.shape == (4, 3, 5, 1, 28, 28)
    z = torch.cat(seen).view(4, 3, 5, 5)
    t = torch.linspace(-2, 2, 5)
    for i in range(4):
        expected = means[:, None, :].repeat(1, 5, 1)
        expected[:, :, i] += t
        assert torch.allclose(z[i], expected, atol=1e-6)
    assert walk.names == ["z[0]", "z[1]", "z[2]", "z[3]"] and walk.explained is None


def test_grid_and_file_per_direction_with_the_shipped_config(tmp_path):
    """The shipped sample.yaml's traverse keys: one PNG per direction (rows = centres,
    columns = steps) and the overview (one row per direction), from the prior mean (0)."""
    torch.manual_seed(0)
    model = VAE(**TINY_VAE).eval()
    cfg = sample_cfg(tmp_path, "traverse.directions=3", "traverse.steps=7",
                     "traverse.center=samples", "traverse.rows=2")  # fmt: skip
    written = traverse(cfg, model, tmp_path / "walk.png")
    names = [p.name for p in written]
    assert names == ["walk.png", "walk_z0.png", "walk_z1.png", "walk_z2.png"]
    side = 28 + 2  # save_image pads 2 px
    assert png_size(tmp_path / "walk.png") == (7 * side + 2, 3 * side + 2)
    assert png_size(tmp_path / "walk_z1.png") == (7 * side + 2, 2 * side + 2)
    prior = model.latent_traversal(2, center="prior")
    assert torch.equal(prior.centers, torch.zeros(1, 5))
    written = traverse(sample_cfg(tmp_path, "traverse.directions=2", "traverse.range=1"),
                       model, tmp_path / "walk.npz")  # fmt: skip
    import numpy as np

    with np.load(written[1]) as z:  # walk_z0.npz: 1 centre x 9 steps
        assert z["images"].shape == (9, 28, 28, 1) and z["offsets"][0] == -1.0


def test_bad_traverse_values_name_the_key(tmp_path):
    model = VAE(**TINY_VAE).eval()
    for override, key in (("traverse.directions=6", "traverse.directions"),
                          ("traverse.range=0", "traverse.range"),
                          ("traverse.center=middle", "traverse.center"),
                          ("traverse.steps=1", "traverse.steps")):  # fmt: skip
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            traverse(sample_cfg(tmp_path, override), model, tmp_path / "x.png")


def test_gan_directions_in_z_and_stylegan2_w(tmp_path):
    """GANs: GANSpace directions, orthonormal and ordered by variance: of z for an MLP
    generator (any family's default), of w = mapping(z) for a stylegan2 generator, whose walk
    starts at w itself (the middle step decodes the centre w unchanged)."""
    torch.manual_seed(0)
    gan = GAN(image_size=28, channels=1, latent_dim=8, generator=MLP, discriminator=MLP)
    walk = gan.latent_traversal(3, center="samples", num_centers=2, num_samples=500,
                                generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert walk.space == "z" and walk.directions.shape == (3, 8)
    assert torch.allclose(walk.directions @ walk.directions.T, torch.eye(3), atol=1e-5)
    assert (walk.scales[:-1] >= walk.scales[1:]).all() and walk.names[0] == "PC1"
    assert walk.images(1.0, 3).shape == (3, 2, 3, 1, 28, 28)
    with pytest.raises(ConfigError, match=r"traverse\.center='data'.*no encoder"):
        gan.latent_traversal(3, center="data", images=torch.rand(2, 1, 28, 28))

    style = GAN(image_size=32, channels=1, latent_dim=4, generator=STYLEGAN2_G,
                discriminator=STYLEGAN2_D)  # fmt: skip
    walk = style.latent_traversal(3, center="samples", num_centers=2, num_samples=300,
                                  generator=torch.Generator().manual_seed(0), use_ema=True)  # fmt: skip
    assert walk.space == "w" and walk.directions.shape == (3, 6)
    assert torch.allclose(walk.directions @ walk.directions.T, torch.eye(3), atol=1e-5)
    assert (walk.scales[:-1] >= walk.scales[1:]).all()
    grids = walk.images(2.0, 5)
    assert grids.shape == (3, 2, 5, 1, 32, 32)
    net = style.generator.eval()
    ws = walk.centers[:, None].repeat(1, net.num_ws, 1)
    direct = (net.synthesis(ws, noise_mode="const").clamp(-1, 1) + 1) / 2
    assert torch.allclose(grids[0, :, 2], direct, atol=1e-5)


def test_a_conditional_gan_keeps_each_rows_label_along_the_walk():
    torch.manual_seed(0)
    gan = GAN(image_size=28, channels=1, latent_dim=8, generator=MLP, discriminator=MLP,
              conditional=True, num_classes=3).eval()  # fmt: skip
    walk = gan.latent_traversal(2, center="samples", num_centers=3, num_samples=200,
                                generator=torch.Generator().manual_seed(1))  # fmt: skip
    seen = []
    forward = gan.generator.forward
    gan.generator.forward = lambda z, labels=None, **kw: (seen.append(labels.clone()),
                                                          forward(z, labels, **kw))[1]  # fmt: skip
    walk.images(1.0, 4)
    labels = torch.cat(seen).view(2, 3, 4)  # (direction, row, step)
    assert (labels == labels[:, :, :1]).all()  # one label per row


def test_a_family_without_latents_is_refused_in_one_line(tmp_path):
    model = VQVAE(**TINY_VQVAE).eval()
    with pytest.raises(ConfigError) as err:
        traverse(sample_cfg(tmp_path), model, tmp_path / "x.png")
    assert str(err.value) == (
        "mode='traverse' is invalid: allowed sample or reconstruct for the vqvae family "
        "(no latents to traverse)"
    )


def test_hierarchical_vaes_walk_the_top_layer_and_top_down_is_refused(tmp_path):
    """hvae: the coordinates of z_L (what ``latents`` draws and ``generate_from_latents``
    decodes) around the prior mean; center=data is refused (it offers no posterior mean of z_L).
    The top-down VAE's latent is a stack of noise grids: nothing to traverse."""
    from genlab.models.vae import HierarchicalVAE, TopDownVAE

    hvae = HierarchicalVAE(image_size=4, channels=1, arch="mlp", latent_dims=[3, 2],
                           layer_hidden_dims=[[8], [6]], likelihood="bernoulli").eval()  # fmt: skip
    walk = hvae.latent_traversal(2, center="prior")
    assert walk.directions.shape == (2, 2) and walk.images(1.0, 3).shape == (2, 1, 3, 1, 4, 4)
    with pytest.raises(ConfigError, match=r"traverse\.center='data'.*hvae family gives no"):
        hvae.latent_traversal(2, center="data", images=torch.rand(2, 1, 4, 4))
    topdown = TopDownVAE(image_size=8, channels=3, width=8, num_resolutions=2,
                         blocks_per_resolution=1, z_channels=2).eval()  # fmt: skip
    with pytest.raises(ConfigError, match="topdown_vae family .no latents to traverse"):
        traverse(sample_cfg(tmp_path), topdown, tmp_path / "x.png")


@pytest.mark.slow
def test_cli_writes_the_grids_from_a_checkpoint(tmp_path):
    """``python -m genlab.sample mode=traverse`` on a VAE checkpoint (center=data reads the
    checkpoint's dataset: the bundled Fashion-MNIST mini) and a VQ-VAE's one-line refusal."""
    from genlab.data import FashionMNISTMiniDataModule

    ckpts = {}
    for name, model in (("vae", VAE(**TINY_VAE)), ("vqvae", VQVAE(**TINY_VQVAE))):
        size = model.config.image_size
        data = [{"image": torch.rand(1, size, size), "label": torch.tensor(-1)} for _ in range(4)]
        trainer = bare_trainer(1)
        trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=4))
        model.run_config = {"data": {"_target_": "genlab.data.FashionMNISTMiniDataModule"}}
        ckpts[name] = tmp_path / f"{name}.ckpt"
        trainer.save_checkpoint(ckpts[name])
    assert FashionMNISTMiniDataModule().image_size == 28

    def sample(ckpt, *args):
        return subprocess.run(
            [sys.executable, "-m", "genlab.sample", f"ckpt_path={ckpt}", "mode=traverse", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    done = sample(ckpts["vae"], "output=t.png", "traverse.center=data", "traverse.rows=3",
                  "traverse.directions=5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("t*.png")) == [
        "t.png", "t_z0.png", "t_z1.png", "t_z2.png", "t_z3.png", "t_z4.png"]  # fmt: skip
    assert png_size(tmp_path / "t_z0.png") == (9 * 30 + 2, 3 * 30 + 2)
    refused = sample(ckpts["vqvae"])
    assert refused.returncode == 2
    assert "allowed sample or reconstruct for the vqvae family" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
