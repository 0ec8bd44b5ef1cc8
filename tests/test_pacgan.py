"""PacGAN packing (model.pack, Lin et al. 2018): D judges m samples at once, concatenated
along the channels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import bare_trainer
from genlab.checks.errors import ConfigError
from genlab.data import FashionMNISTMiniDataModule
from genlab.losses.gan import r1_penalty
from genlab.models import GAN
from genlab.models.gan.packing import pack_images

DCGAN_D = {"arch": "dcgan", "base_channels": 8, "norm": "none"}


def packed_gan(**overrides) -> GAN:
    kwargs = dict(
        image_size=28,
        channels=1,
        latent_dim=8,
        generator={"arch": "dcgan", "base_channels": 8},
        discriminator=DCGAN_D,
        pack=2,
    )
    return GAN(**{**kwargs, **overrides})


def test_pack_images_concatenates_consecutive_images_along_channels():
    images = torch.randn(6, 3, 4, 4)
    packed = pack_images(images, 3)
    assert packed.shape == (2, 9, 4, 4)
    assert torch.equal(packed[1], torch.cat([images[3], images[4], images[5]], dim=0))
    assert pack_images(images, 1) is images
    assert pack_images(images[:5], 2, drop_remainder=True).shape == (2, 6, 4, 4)


def test_discriminator_input_has_m_times_the_channels():
    torch.manual_seed(0)
    model = packed_gan(pack=3)
    first_conv = next(m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 3
    assert model.discriminate(torch.randn(6, 1, 28, 28), None).shape == (2,)
    assert GAN(image_size=28, channels=1, discriminator=DCGAN_D).discriminate(
        torch.randn(6, 1, 28, 28), None
    ).shape == (6,)


def test_packed_d_loss_equals_the_loss_of_d_on_the_packed_tensor():
    torch.manual_seed(0)
    model = packed_gan()
    real, fake = torch.rand(8, 1, 28, 28) * 2 - 1, torch.rand(8, 1, 28, 28) * 2 - 1
    out = model.discriminator_step(real, None, fake)
    d = model.discriminator
    expected = (
        F.softplus(-d(pack_images(real, 2), None)).mean()
        + F.softplus(d(pack_images(fake, 2), None)).mean()
    )
    torch.testing.assert_close(out["loss_d"], expected)
    # R1 of the packed D: each packed input's squared gradient norm, averaged over packs
    packed = pack_images(real, 2)
    torch.testing.assert_close(
        model.r1_loss(real, None)[1], r1_penalty(lambda x, y: d(x, y), packed, None)
    )


def test_a_batch_not_divisible_by_pack_names_both_keys():
    model = packed_gan(pack=3)
    with pytest.raises(ConfigError, match=r"data\.batch_size.*model\.pack=3"):
        model.discriminate(torch.randn(4, 1, 28, 28), None)


@pytest.mark.parametrize(
    ("overrides", "other_key"),
    [
        ({"conditional": True, "num_classes": 10}, "model.conditional"),
        ({"gp_weight": 10.0, "loss": "wasserstein"}, "model.gp_weight"),
    ],
)
def test_refused_combinations_name_both_keys(overrides, other_key):
    with pytest.raises(ConfigError, match=rf"model\.pack.*{other_key}"):
        packed_gan(**overrides)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_pack_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match=r"model\.pack"):
        packed_gan(pack=bad)


def test_trains_a_few_steps_with_ada_and_r1():
    torch.manual_seed(0)
    model = packed_gan(augment="ada", ada_speed_kimg=0.1, r1_gamma=1.0)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = bare_trainer(3)
    trainer.fit(model, datamodule=FashionMNISTMiniDataModule(data_dir=".", batch_size=8))
    assert model.g_steps == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.discriminator.parameters()))
