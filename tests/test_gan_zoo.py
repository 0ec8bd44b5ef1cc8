"""The research-scale GAN presets (resnet_gan, biggan, stylegan2) and augmentations through the
real config and training path: every preset builds at every size its nets take (and refuses the
others before building), trains a few steps in fp32 and bf16-mixed through ``genlab.train``,
resumes exactly with ADA on, truncates towards the mean w; every ``experiment=`` recipe of
issue 13 composes with the protocol it states."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from conftest import CONF_DIR, FAST, bare_trainer, compose_config
from genlab.checks.errors import ConfigError, find_config_error
from genlab.data.base import ImageDataModule
from genlab.data.tensor_dataset import TensorImageDataset
from genlab.models import GAN
from genlab.nets.resnet import RESNET_SIZES
from genlab.nets.stylegan2 import STYLEGAN2_SIZES
from genlab.runs.checkpoints import load_checkpoint
from genlab.train import train

TINY = {
    "resnet_gan": ["model.generator.base_channels=4", "model.discriminator.base_channels=4"],
    "biggan": [
        "model.generator.base_channels=4",
        "model.discriminator.base_channels=4",
        "model.generator.class_embedding_dim=8",
    ],
    "stylegan2": [
        "model.generator.channel_base=128",
        "model.generator.channel_max=8",
        "model.generator.w_dim=8",
        "model.generator.mapping_layers=2",
        "model.discriminator.channel_base=128",
        "model.discriminator.channel_max=8",
        "model.discriminator.cmap_dim=8",
        "model.discriminator.class_mapping_layers=2",
        "model.pl_every=1",  # the path-length penalty in every G step of a short run
        "model.r1_every=2",
    ],
}
SIZES = {"resnet_gan": RESNET_SIZES, "biggan": RESNET_SIZES, "stylegan2": STYLEGAN2_SIZES[:4]}
RECIPES = {  # experiment: (model preset, data, metrics num_samples, num_real, real_split)
    "sngan_cifar10": ("resnet_gan", "cifar10", 50000, 50000, "train"),
    "wgan_gp_cifar10": ("resnet_gan", "cifar10", 50000, 50000, "train"),
    "dcgan_cifar10": ("gan", "cifar10", 50000, 50000, "train"),
    "biggan_cifar10": ("biggan", "cifar10", 10000, 10000, "test"),
    "biggan_diffaug_cifar10": ("biggan", "cifar10", 10000, 10000, "test"),
    "stylegan2_cifar10": ("stylegan2", "cifar10", 50000, 50000, "train"),
    "stylegan2_ada_cifar10": ("stylegan2", "cifar10", 50000, 50000, "train"),
    "stylegan2_ffhq256": ("stylegan2", "folder", 50000, None, "train"),
    "stylegan2_celeba64": ("stylegan2", "folder", 50000, None, "train"),
}


def tiny(preset: str, conditional: bool = False) -> list[str]:
    latent = 120 if preset == "biggan" else 16  # biggan: hierarchical z, 4 to 6 chunks
    conditioning = f"model.conditional={str(conditional).lower()}"
    return [f"model={preset}", f"model.latent_dim={latent}", *TINY[preset], conditioning]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """40 random 32x32 RGB PNGs (folder data: 36 train, 4 held out)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(40):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:02d}.png")
    return root


def folder(path: Path, size: int = 32) -> list[str]:
    return ["data=folder", f"data.path={path}", f"data.image_size={size}", "data.channels=3"]


@pytest.mark.parametrize("preset", list(SIZES))
def test_preset_builds_at_every_supported_size(tmp_path, preset):
    """The preset's settings (composed once, class-conditional) at each size its nets take."""
    cfg = compose_config(tmp_path, *tiny(preset, conditional=True), *folder(tmp_path))
    settings = OmegaConf.to_container(cfg.model, resolve=True)
    settings = {k: v for k, v in settings.items() if not k.startswith("_")}
    for size in SIZES[preset]:
        model = GAN(**{**settings, "image_size": size, "num_classes": 10})
        z = model.latents(2, torch.Generator().manual_seed(0))
        labels = torch.tensor([1, 2])
        images = model.generate_from_latents(z, labels=labels)
        assert images.shape == (2, 3, size, size)
        assert model.discriminator(images * 2 - 1, labels).shape == (2,)


@pytest.mark.parametrize("preset", list(SIZES))
def test_unsupported_image_size_is_refused_before_building(tmp_path, preset):
    cfg = compose_config(tmp_path, *tiny(preset))  # the bundled data: 28 px
    with pytest.raises(Exception) as info:
        hydra.utils.instantiate(cfg.model)
    error = find_config_error(info.value)
    assert str(error).startswith("data.image_size=28 is invalid: allowed one of [32, ")


def test_unknown_net_key_names_the_arch_and_its_keys(tmp_path):
    cfg = compose_config(tmp_path, *tiny("stylegan2"), *folder(tmp_path), "+model.generator.x=1")
    with pytest.raises(Exception) as info:
        hydra.utils.instantiate(cfg.model)
    assert "model.generator.x=1 is invalid: allowed a key of arch=stylegan2: [" in str(
        find_config_error(info.value)
    )


@pytest.mark.parametrize(
    "preset, augment, precision",
    [
        (preset, augment, precision)
        for preset, augment in (
            ("resnet_gan", "diffaugment"),
            ("biggan", "none"),
            ("stylegan2", "ada"),
        )
        for precision in ("32-true", "bf16-mixed")
    ],
)
def test_preset_trains_a_few_steps(make_cfg, image_folder, preset, augment, precision):
    metrics = train(
        make_cfg(
            *tiny(preset),
            *folder(image_folder),
            f"model.augment={augment}",
            "model.ada_p=0.5",
            "model.n_critic=1",
            "data.batch_size=8",
            f"trainer.precision={precision}",
        )
    )
    assert metrics["step"] == 3
    for name in ("train/loss_d", "train/loss_g", "val/d_real"):
        assert torch.isfinite(torch.tensor(metrics[name])), name
    if augment == "ada":
        assert 0.0 <= metrics["train/ada_p"] <= 1.0 and "train/ada_rt" in metrics
    if preset == "stylegan2":
        assert torch.isfinite(torch.tensor(metrics["train/pl"]))


def test_resume_with_ada_matches_the_uninterrupted_run(tmp_path, image_folder):
    """2 epochs straight == 1 epoch + resume: weights, EMA and ADA's p, sums and r_t (p moves
    every D step here, so a lost or reset ADA state shows)."""
    recipe = [
        *FAST,
        *tiny("resnet_gan"),
        *folder(image_folder),
        "data.batch_size=8",
        "trainer.deterministic=true",
        "model.n_critic=2",
        "model.augment=ada",
        "model.ada_interval=1",
        "model.ada_speed_kimg=0.1",  # p moves by 8 / 100 per D step
        "model.ema_decay=0.9",
    ]
    train(compose_config(tmp_path / "straight", *recipe, "trainer.max_epochs=2"))
    train(compose_config(tmp_path / "resumed", *recipe, "trainer.max_epochs=1"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    first_epoch = load_checkpoint(last)["state_dict"]
    train(
        compose_config(tmp_path / "resumed", *recipe, "trainer.max_epochs=2", f"ckpt_path={last}")
    )
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    b = load_checkpoint(last)
    assert a["genlab"]["counters"] == b["genlab"]["counters"]
    assert a["genlab"]["counters"]["d_steps"] == 6
    assert int(a["state_dict"]["augment.d_steps"]) == 6
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert not torch.equal(first_epoch["augment.pipe.p"], a["state_dict"]["augment.pipe.p"])


class LabelledImages32(ImageDataModule):
    """48 random labelled 32x32 RGB images, 10 classes (a stand-in for CIFAR-10)."""

    def __init__(self, batch_size: int = 8):
        super().__init__("unused", batch_size, 0, 32, 3, False, False, 0)
        self.name, self.image_size, self.channels, self.num_classes = "labelled32", 32, 3, 10

    def _load(self):
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (48, 3, 32, 32), generator=g, dtype=torch.uint8)
        labels = torch.arange(48) % 10
        return {"train": TensorImageDataset(images, labels), "test": TensorImageDataset(images)}


@pytest.mark.parametrize("arch", ["resnet", "stylegan2"])
def test_conditional_nets_train_on_labels_and_use_them(tmp_path, arch):
    """BigGAN (shared embedding, conditional BN, projection D) and conditional StyleGAN2
    (class mapping) train on labelled data; the labels change G's images."""
    preset = "biggan" if arch == "resnet" else "stylegan2"
    overrides = [*folder(tmp_path), "model.num_classes=10", "model.n_critic=1"]
    model = hydra.utils.instantiate(compose_config(tmp_path, *tiny(preset, True), *overrides).model)
    assert isinstance(model, GAN) and model.config.conditional
    trainer = bare_trainer(2)
    trainer.fit(model, datamodule=LabelledImages32())
    assert model.g_steps == 2
    z = model.latents(4, torch.Generator().manual_seed(0))
    a = model.generate_from_latents(z, labels=torch.full((4,), 1))
    b = model.generate_from_latents(z, labels=torch.full((4,), 7))
    assert not torch.allclose(a, b)


def test_stylegan2_truncation_pulls_samples_to_the_mean_w(tmp_path):
    """``generate(truncation=psi)`` on a stylegan2 G truncates w (not z): psi -> 0 gives the
    image of w_avg for every z; z is drawn untruncated."""
    cfg = compose_config(tmp_path, *tiny("stylegan2"), *folder(tmp_path), "model.ema_decay=null")
    model = hydra.utils.instantiate(cfg.model)
    model.generator.mapping.w_avg.normal_()
    gen = lambda psi: model.generate(  # noqa: E731
        8, generator=torch.Generator().manual_seed(1), truncation=psi
    )
    full, half, tiny_psi = gen(None), gen(0.5), gen(1e-6)
    spread = lambda x: x.std(dim=0).mean()  # noqa: E731
    assert spread(tiny_psi) < 1e-3 < spread(half) < spread(full)
    z = model.latents(2000, torch.Generator().manual_seed(0), truncation=0.5)
    assert z.abs().max() > 2  # z is not truncated for a style-based generator
    with pytest.raises(ConfigError, match="truncation"):
        model.generate(2, truncation=1.5)


@pytest.mark.parametrize("experiment", list(RECIPES))
def test_every_recipe_composes_with_its_protocol(tmp_path, experiment):
    cfg = compose_config(tmp_path, f"experiment={experiment}")
    preset, data, num_samples, num_real, split = RECIPES[experiment]
    text = (CONF_DIR / "experiment" / f"{experiment}.yaml").read_text()
    assert all(f"# {field}:" in text for field in ("Source", "Protocol", "Published", "Command"))
    expected = "CIFAR10DataModule" if data == "cifar10" else "FolderDataModule"
    assert cfg.data._target_.endswith(expected)
    assert cfg.metrics.features == "inception"
    assert (cfg.metrics.num_samples, cfg.metrics.num_real, cfg.metrics.real_split) == (
        num_samples,
        num_real,
        split,
    )
    expected_arch = {"resnet_gan": "resnet", "biggan": "resnet", "stylegan2": "stylegan2"}
    assert cfg.model.generator.arch == expected_arch.get(preset, "dcgan")


@pytest.mark.slow  # two processes through the CLI: ~40 s on 2 shared cores
def test_stylegan2_with_ada_under_ddp_cpu(tmp_path, image_folder):
    """trainer=ddp_cpu: StyleGAN2 (path length, lazy R1, EMA) with ADA on 2 processes ends
    with one model (weights, EMA, ADA's p) on both ranks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [*tiny("stylegan2"), *folder(image_folder), "model.augment=ada", "model.ada_p=0.3"]
    args += [
        "model.ada_interval=1",
        "model.ada_speed_kimg=0.01",
        "model.n_critic=1",
        "trainer=ddp_cpu",
        "logger=csv",
    ]
    args += ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "data.batch_size=4"]
    args += ["~callbacks.sample_quality", "~callbacks.rich_progress_bar", "hydra.run.dir=run"]
    out = subprocess.run(
        [sys.executable, "-m", "genlab.train", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    assert int(state["augment.d_steps"]) == 2
    assert float(state["augment.pipe.p"]) != 0.3  # moved on the all-reduced r_t


def test_cifar10_hflip_mirrors_training_batches_only():
    """data.hflip: each training image is either itself or its mirror, about half mirrored;
    evaluation batches are untouched."""
    from types import SimpleNamespace

    from genlab.data import CIFAR10DataModule

    datamodule = CIFAR10DataModule(data_dir="/nonexistent", hflip=True)
    datamodule.trainer = SimpleNamespace(training=True)
    images = torch.randint(0, 256, (400, 3, 4, 4), dtype=torch.uint8)
    reference = images.float() / 255
    out = datamodule.on_after_batch_transfer((images, torch.zeros(400)), 0)["image"]
    mirrored = (out == reference.flip(3)).flatten(1).all(1)
    same = (out == reference).flatten(1).all(1)
    assert bool((mirrored | same).all()) and 150 < int(mirrored.sum()) < 250
    datamodule.trainer = SimpleNamespace(training=False)
    out = datamodule.on_after_batch_transfer((images, torch.zeros(400)), 0)["image"]
    assert torch.equal(out, reference)
    with pytest.raises(ConfigError, match="data.hflip"):
        CIFAR10DataModule(data_dir="/nonexistent", hflip="yes")


def small_gan(**overrides) -> GAN:
    nets = {"arch": "resnet", "base_channels": 4}
    settings = dict(image_size=32, channels=3, latent_dim=8, generator=nets, discriminator=nets)
    return GAN(**{**settings, **overrides})


class RecordingAugment(torch.nn.Module):
    """Stands in for the augmentation: records what it is given, returns it mirrored."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, images):
        self.seen.append(images)
        return images.flip(3)


@pytest.mark.parametrize("penalty", [{}, {"r1_gamma": 1.0}, {"gp_weight": 1.0}])
def test_augmentation_sees_reals_and_fakes_in_d_and_g_steps(penalty):
    """D step: the reals and the fakes (and a penalty's inputs) go through the augmentation;
    G step: the fakes, with G's graph, so G's gradient flows through it."""
    torch.manual_seed(0)
    model = small_gan(augment="diffaugment", **penalty)
    model.augment = RecordingAugment()
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    model.discriminator_step(real, None)
    d_inputs = model.augment.seen
    assert len(d_inputs) == 2 + bool(penalty)
    assert torch.equal(d_inputs[0], real) and d_inputs[1].shape == real.shape
    assert not d_inputs[1].requires_grad  # fakes in the D step carry no G graph
    model.augment.seen = []
    loss = model.generator_step(real, None)
    assert len(model.augment.seen) == 1 and model.augment.seen[0].requires_grad
    loss.backward()
    assert all(p.grad is not None for p in model.generator.parameters() if p.requires_grad)


def test_ada_p_follows_the_real_logits_of_every_d_step():
    """ADA: each D step feeds r_t = E[sign(D(aug(real)))]; a D that calls every image real
    (r_t = 1 > 0.6) raises p every ada_interval steps; p and r_t are in the step's logs."""
    model = small_gan(augment="ada", ada_interval=2, ada_speed_kimg=0.1)
    model.discriminate = lambda images, labels: torch.ones(images.shape[0])  # noqa: E731
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    logs = [model.discriminator_step(real, None) for _ in range(4)]
    assert [float(out["ada_p"]) for out in logs] == pytest.approx([0.0, 0.08, 0.08, 0.16])
    assert float(logs[-1]["ada_rt"]) == 1.0
    assert float(model.state_dict()["augment.pipe.p"]) == pytest.approx(0.16)


def test_orthogonal_regularisation_is_added_to_the_generator_loss():
    from genlab.nets.layers import orthogonal_regularization

    real = torch.rand(4, 3, 32, 32) * 2 - 1
    plain, regularised = small_gan(), small_gan(ortho_reg=0.5)
    regularised.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    base = plain.generator_step(real, None)
    torch.manual_seed(1)
    total = regularised.generator_step(real, None)
    expected = base + orthogonal_regularization(plain.generator, 0.5)
    assert torch.allclose(total, expected, rtol=1e-4)


def test_path_length_regularisation_is_for_stylegan2_only():
    with pytest.raises(ConfigError, match="model.pl_weight=2.0 is invalid: allowed 0 unless"):
        small_gan(pl_weight=2.0)


def test_the_default_run_trains_cpu_gan_and_model_gan_is_the_plain_dcgan(tmp_path):
    """``python -m genlab.train`` trains cpu_gan (README: val/fid 10.5 against the DCGAN's 18.8
    on the bundled data in the default 25 epochs): G at 3x the DCGAN's rate with an EMA copy
    that samples use. ``model=gan`` (the five-minute baseline) stays the plain DCGAN."""
    default = hydra.utils.instantiate(compose_config(tmp_path).model)
    plain = hydra.utils.instantiate(compose_config(tmp_path, "model=gan").model)
    assert type(default) is type(plain)  # the same GAN family and DCGAN nets
    assert type(default.generator) is type(plain.generator)
    assert default.generator_ema is not None and plain.generator_ema is None
    lr = {
        name: [
            group["lr"]
            for opt in model.configure_optimizers()
            for group in opt["optimizer"].param_groups
        ]
        for name, model in (("default", default), ("gan", plain))
    }
    assert lr == {"default": [6e-4, 6e-4], "gan": [2e-4, 2e-4]}


def test_cpu_gan_experiment_is_the_readme_five_minute_recipe(tmp_path):
    """``experiment=cpu_gan_fashion_mnist`` is the README's measured 300 s recipe: cpu_gan's
    rates and EMA, its cheaper step (3/4-width G, 32-d z, channels_last, fused Adam), full
    Fashion-MNIST in batches of 32, bf16 autocast, a 5-minute budget."""
    cfg = compose_config(tmp_path, "experiment=cpu_gan_fashion_mnist")
    assert cfg.data._target_.endswith("FashionMNISTDataModule") and cfg.data.batch_size == 32
    assert (cfg.trainer.precision, str(cfg.trainer.max_time)) == ("bf16-mixed", "00:00:05:00")
    assert cfg.model.optimizer_g.lr == cfg.model.optimizer_d.lr == 6e-4
    assert cfg.model.optimizer_g.fused is cfg.model.optimizer_d.fused is True
    assert (cfg.model.ema_decay, cfg.model.ema_start) == (0.998, 1000)
    assert (cfg.model.latent_dim, cfg.model.generator.base_channels) == (32, 48)
    assert cfg.model.channels_last is True and cfg.model.discriminator.base_channels == 64
