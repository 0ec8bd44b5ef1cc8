"""Speed options users expect: ``model.channels_last``, ``model.compile`` and
``trainer.precision=bf16-mixed`` train the default GAN and VAE (a few CPU steps, finite)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

import genlab.cli.components as components
import genlab.models.base as base
from genlab.checks.errors import ConfigError
from genlab.models import GAN
from genlab.models.registry import build_model_from_checkpoint
from genlab.models.vae import VAE
from genlab.runs.checkpoints import load_checkpoint
from genlab.train import train

GAN_TINY = [
    "model=gan",
    "model.latent_dim=8",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
]
VAE_TINY = ["model=vae", "model.latent_dim=8", "model.base_channels=8"]
FEW = ["~callbacks.sample_grid", "data.batch_size=8", "trainer.limit_train_batches=2"]
NETS = {"gan": ("generator", "discriminator"), "vae": ("encoder", "decoder")}


class Record(pl.Callback):
    """Per training batch: whether every 4-D weight of the model's networks is channels_last,
    and whether each network's forward is compiled."""

    def __init__(self):
        self.channels_last, self.compiled = [], []

    def on_train_batch_end(self, trainer, pl_module, *args):
        nets = [getattr(pl_module, n) for n in pl_module.networks]
        weights = [p for net in nets for p in net.parameters() if p.ndim == 4]
        assert weights  # conv nets
        self.channels_last.append(
            all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
        )
        self.compiled.append(all(net._compiled_call_impl is not None for net in nets))


@pytest.fixture
def recorder(monkeypatch):
    record = Record()
    original = components.instantiate_callbacks
    monkeypatch.setattr(components, "instantiate_callbacks", lambda c: original(c) + [record])
    return record


def finite_weights(path) -> bool:
    state = load_checkpoint(path)["state_dict"]
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


@pytest.mark.parametrize("family, model", [("gan", GAN_TINY), ("vae", VAE_TINY)])
def test_channels_last_trains_and_checkpoints_load_without_it(
    make_cfg, tmp_path, recorder, family, model
):
    metrics = train(make_cfg(*model, *FEW, "model.channels_last=true"))
    assert recorder.channels_last == [True, True] and recorder.compiled == [False, False]
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert finite_weights(last)
    plain = build_model_from_checkpoint(last)  # what genlab.sample / genlab.eval load
    assert isinstance(plain, GAN if family == "gan" else VAE)
    assert plain.config.channels_last  # the option is kept, applied again only when fitting
    assert not any(
        p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for n in NETS[family]
        for p in getattr(plain, n).parameters()
        if p.ndim == 4
    )
    images = plain.generate(4, generator=torch.Generator().manual_seed(0))
    assert images.shape[0] == 4 and torch.isfinite(images).all()


@pytest.mark.parametrize("model", [GAN_TINY, VAE_TINY], ids=["gan", "vae"])
def test_bf16_mixed_on_cpu_trains_finite(make_cfg, tmp_path, model):
    metrics = train(make_cfg(*model, *FEW, "trainer.precision=bf16-mixed"))
    assert metrics and all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert finite_weights(tmp_path / "checkpoints" / "last.ckpt")


def test_compile_refuses_penalties_that_differentiate_twice():
    g = {"arch": "dcgan", "base_channels": 8}
    d = {**g, "norm": "none"}  # batch norm is refused with penalties anyway
    kwargs = dict(image_size=28, channels=1, latent_dim=8, generator=g, discriminator=d)
    with pytest.raises(ConfigError, match=r"model\.compile=True.*model\.gp_weight=10"):
        GAN(**kwargs, compile=True, gp_weight=10.0)
    with pytest.raises(ConfigError, match=r"model\.compile=True.*model\.r1_gamma"):
        GAN(**kwargs, compile=True, r1_gamma=1.0)
    assert GAN(**kwargs, compile=True).config.compile  # no penalty: accepted


def test_compile_without_a_cpp_compiler_is_a_config_error(make_cfg, monkeypatch):
    monkeypatch.setattr(base, "cpp_compiler", lambda: None)
    with pytest.raises(ConfigError, match=r"model\.compile=True.*C\+\+ compiler"):
        train(make_cfg(*VAE_TINY, *FEW, "model.compile=true"))


@pytest.mark.slow  # torch.compile of both networks: tens of seconds on a CPU
@pytest.mark.skipif(base.cpp_compiler() is None, reason="torch.compile on a CPU needs g++/clang++")
@pytest.mark.parametrize("model", [GAN_TINY, VAE_TINY], ids=["gan", "vae"])
def test_compile_trains(make_cfg, tmp_path, recorder, model):
    metrics = train(make_cfg(*model, *FEW, "model.compile=true", "model.channels_last=true"))
    assert recorder.compiled == [True, True] and recorder.channels_last == [True, True]
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    assert not any("_orig_mod" in k for k in state)  # same keys as an eager run


@pytest.mark.parametrize(
    "model",
    [
        ["model=topdown_vae", "model.width=8"],
        ["model=vqvae", "model.hidden_channels=8", "model.num_embeddings=16"],
    ],
    ids=["topdown_vae", "vqvae"],
)
def test_channels_last_covers_the_other_conv_families(make_cfg, recorder, model):
    """Every builtin conv family lists its networks, so the option reaches all their weights
    (not a ConfigError saying the family has none)."""
    metrics = train(make_cfg(*model, *FEW, "model.channels_last=true"))
    assert recorder.channels_last == [True, True]
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
