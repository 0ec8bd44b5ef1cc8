"""Options that let the GAN recipes run what their sources run (issue 30): the labels of the
fakes (``model.fake_labels``: real | uniform | dataset), the prior of z
(``model.latent_distribution``: normal | uniform) and random flips of folder data
(``data.hflip``)."""

from __future__ import annotations

from types import SimpleNamespace

import hydra.utils
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image

from conftest import bare_trainer, compose_config
from genlab.checks.errors import ConfigError
from genlab.data import FolderDataModule
from genlab.data.base import ImageDataModule
from genlab.data.tensor_dataset import TensorImageDataset
from genlab.models import GAN
from genlab.models.gan.config import GANConfig
from genlab.runs.checkpoints import load_checkpoint
from genlab.runs.rng import rank_seed, seed_global_streams

MLP = {"arch": "mlp", "hidden_dims": [16]}
SKEW = (70, 20, 10)  # images per class in SkewedData's training split


class SkewedData(ImageDataModule):
    """100 random 8x8 grayscale images, 70% class 0, 20% class 1, 10% class 2 (shuffled)."""

    def __init__(self, batch_size: int = 8):
        super().__init__(batch_size=batch_size, image_size=8, channels=1)
        self.name, self.num_classes = "skewed", len(SKEW)

    def _load(self):
        g = torch.Generator().manual_seed(0)
        labels = torch.cat([torch.full((n,), c) for c, n in enumerate(SKEW)])
        labels = labels[torch.randperm(len(labels), generator=g)]
        images = torch.randint(0, 256, (len(labels), 1, 8, 8), dtype=torch.uint8, generator=g)
        return {"train": TensorImageDataset(images, labels), "test": TensorImageDataset(images[:8])}


def conditional_gan(**overrides) -> GAN:
    settings = dict(
        image_size=8,
        channels=1,
        latent_dim=4,
        num_classes=len(SKEW),
        conditional=True,
        generator=MLP,
        discriminator={**MLP, "norm": "none"},
    )
    return GAN(**{**settings, **overrides})


def record_inputs(net: torch.nn.Module) -> list[tuple[torch.Tensor, ...]]:
    """Every (inputs, labels) the net is called with from now on."""
    seen: list[tuple[torch.Tensor, ...]] = []
    net.register_forward_pre_hook(lambda _m, args: seen.append(tuple(a.clone() for a in args)))
    return seen


def frequencies(labels: torch.Tensor) -> torch.Tensor:
    return torch.bincount(labels, minlength=len(SKEW)).double() / len(labels)


# -- model.fake_labels ------------------------------------------------------------------------
def test_fake_labels_is_checked_and_defaults_to_the_real_labels():
    with pytest.raises(ConfigError, match=r"model\.fake_labels.*real.*uniform.*dataset"):
        GANConfig(image_size=32, channels=1, fake_labels="random")
    model = conditional_gan()
    labels = torch.tensor([2, 2, 2, 2])
    gen_inputs = record_inputs(model.generator)
    model.discriminator_step(torch.rand(4, 1, 8, 8) * 2 - 1, labels)
    assert torch.equal(gen_inputs[0][1], labels)  # as before: the real batch's labels


def test_uniform_fake_labels_are_uniform_fresh_and_differ_per_rank_and_seed():
    """StudioGAN: uniform classes, independent of the real batch (all class 2 here); D scores
    the reals with their labels and the fakes with the fakes' labels."""
    model = conditional_gan(fake_labels="uniform")
    real, labels = torch.rand(600, 1, 8, 8) * 2 - 1, torch.full((600,), 2)
    gen_inputs, d_inputs = record_inputs(model.generator), record_inputs(model.discriminator)
    torch.manual_seed(0)
    model.discriminator_step(real, labels)
    fake_labels = gen_inputs[0][1]
    assert (frequencies(fake_labels) - 1 / 3).abs().max() < 0.06
    assert torch.equal(d_inputs[0][1], labels) and torch.equal(d_inputs[1][1], fake_labels)
    model.generator_step(real, labels)  # fresh labels for the G step
    assert not torch.equal(gen_inputs[1][1], fake_labels)

    def draws(seed: int, rank: int) -> torch.Tensor:
        seed_global_streams(rank_seed(seed, rank))  # what each DDP rank runs with
        return model.draw_fake_labels(labels, 64)

    assert torch.equal(draws(0, 0), draws(0, 0))
    assert not torch.equal(draws(0, 0), draws(0, 1))  # ranks draw different labels
    assert not torch.equal(draws(0, 0), draws(1, 0))  # and so do seeds


def test_dataset_fake_labels_follow_the_training_label_frequencies(tmp_path):
    """stylegan2-ada-pytorch's gen_c: labels of random training images. The counts are taken
    from the datamodule when fitting starts and saved with the model."""
    model = conditional_gan(fake_labels="dataset")
    with pytest.raises(ConfigError, match=r"model\.fake_labels"):  # not fitted: no counts
        model.draw_fake_labels(torch.zeros(4, dtype=torch.long), 4)
    trainer = bare_trainer(2)
    trainer.fit(model, datamodule=SkewedData())
    assert model.fake_label_counts.tolist() == list(SKEW)
    torch.manual_seed(0)
    drawn = model.draw_fake_labels(torch.zeros(4, dtype=torch.long), 20000)
    expected = torch.tensor(SKEW, dtype=torch.float64) / sum(SKEW)
    assert (frequencies(drawn) - expected).abs().max() < 0.015
    torch.manual_seed(1)
    labels = model.random_labels(20000).cpu()  # generate() without labels: same frequencies
    assert (frequencies(labels) - expected).abs().max() < 0.015
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    state = load_checkpoint(tmp_path / "m.ckpt")["state_dict"]
    assert state["fake_label_counts"].tolist() == list(SKEW)


@pytest.mark.parametrize("mode", ["uniform", "dataset"])
def test_resume_continues_the_same_fake_label_draws(tmp_path, mode):
    """6 steps straight (checkpoint at step 3) == 3 steps + resume to 6: the same fake labels
    in steps 4 to 6 and the same final weights."""

    def run(max_steps: int, ckpt_path=None, callbacks=()):
        torch.manual_seed(0)
        model = conditional_gan(fake_labels=mode)
        seen = record_inputs(model.generator)
        trainer = bare_trainer(
            max_steps,
            callbacks=list(callbacks),
            enable_checkpointing=bool(callbacks),  # only the straight run saves (at step 3)
            default_root_dir=tmp_path / "runs",
        )
        trainer.fit(model, datamodule=SkewedData(), ckpt_path=ckpt_path)
        return model, [labels for _, labels in seen]

    saver = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_top_k=-1)
    straight, straight_labels = run(6, callbacks=[saver])
    resumed, resumed_labels = run(6, ckpt_path=next(tmp_path.glob("*step=3*.ckpt")))
    assert len(straight_labels) == 12 and len(resumed_labels) == 6  # G in D and G steps
    for a, b in zip(straight_labels[6:], resumed_labels, strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(straight_labels, straight_labels[1:]))
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


# -- model.latent_distribution ----------------------------------------------------------------
def test_uniform_latents_in_training_sampling_and_truncation():
    """Radford et al.: z ~ U[-1, 1], in the training steps and in generate/latents (which the
    interpolation uses); the default stays N(0, I)."""
    with pytest.raises(ConfigError, match=r"model\.latent_distribution.*normal.*uniform"):
        GANConfig(image_size=32, channels=1, latent_distribution="gaussian")
    model = conditional_gan(latent_distribution="uniform", latent_dim=64)
    gen_inputs = record_inputs(model.generator)
    model.discriminator_step(torch.rand(64, 1, 8, 8) * 2 - 1, torch.zeros(64, dtype=torch.long))
    z = gen_inputs[0][0]
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99
    assert abs(z.var().item() - 1 / 3) < 0.03  # uniform on [-1, 1]: variance 1/3
    prior = model.latents(64, torch.Generator().manual_seed(0))
    assert prior.min() >= -1 and prior.max() <= 1 and abs(prior.var().item() - 1 / 3) < 0.03
    truncated = model.latents(64, torch.Generator().manual_seed(0), truncation=0.5)
    assert truncated.abs().max() <= 0.5 and truncated.abs().max() > 0.45
    normal = conditional_gan(latent_dim=64).latents(64, torch.Generator().manual_seed(0))
    assert torch.equal(normal, torch.randn(64, 64, generator=torch.Generator().manual_seed(0)))


# -- data.hflip for folder data ---------------------------------------------------------------
def test_folder_hflip_mirrors_training_batches_with_the_seed_and_is_off_by_default(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    cfg = compose_config(tmp_path, "data=folder", f"data.path={tmp_path}", "data.image_size=4")
    assert cfg.data.hflip is False
    off = hydra.utils.instantiate(cfg.data)
    on = hydra.utils.instantiate({**cfg.data, "hflip": True})
    images = torch.randint(0, 256, (400, 3, 4, 4), dtype=torch.uint8)
    reference = images.float() / 255
    for dm in (off, on):
        dm.trainer = SimpleNamespace(training=True)

    def flipped(dm, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        out = dm.on_after_batch_transfer((images, torch.full((400,), -1)), 0)["image"]
        mirrored = (out == reference.flip(3)).flatten(1).all(1)
        assert bool((mirrored | (out == reference).flatten(1).all(1)).all())
        return mirrored

    assert not flipped(off, 0).any()
    assert 150 < int(flipped(on, 0).sum()) < 250
    assert torch.equal(flipped(on, 0), flipped(on, 0))
    assert not torch.equal(flipped(on, 0), flipped(on, 1))
    on.trainer = SimpleNamespace(training=False)  # evaluation batches: never flipped
    assert torch.equal(on.on_after_batch_transfer((images, None), 0)["image"], reference)
    with pytest.raises(ConfigError, match=r"data\.hflip"):
        FolderDataModule(path=str(tmp_path), image_size=4, hflip="yes")
