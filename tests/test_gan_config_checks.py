"""A gradient penalty (WGAN-GP, R1) on a batch-normalised discriminator is refused: batch norm
couples the per-sample gradients the penalty is defined on. Every shipped preset passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest

import genlab
from conftest import compose_config
from genlab.checks.errors import ConfigError
from genlab.models.gan import GANConfig

SHAPE = {"image_size": 28, "channels": 1}
MODEL_PRESETS = sorted(p.stem for p in (Path(genlab.__file__).parent / "conf" / "model").glob("*"))


@pytest.mark.parametrize(
    "penalty", [{"gp_weight": 10.0}, {"r1_gamma": 1.0}, {"gp_weight": 1.0, "r1_gamma": 0.5}]
)
def test_penalty_with_batch_norm_is_refused_naming_both_keys_and_the_fix(penalty):
    disc = {"arch": "dcgan", "base_channels": 8, "norm": "batch"}
    with pytest.raises(ConfigError) as info:
        GANConfig(**SHAPE, discriminator=disc, **penalty)
    message = str(info.value)
    assert "model.discriminator.norm='batch'" in message
    for key, value in penalty.items():
        assert f"model.{key}={value}" in message
    assert "model.discriminator.norm=layer|instance|none" in message


def test_dcgan_discriminator_without_norm_key_is_batch_norm_and_refused():
    """The DCGAN D defaults to batch norm when the key is absent: the check sees that too."""
    with pytest.raises(ConfigError, match="model.gp_weight=10.0"):
        GANConfig(**SHAPE, discriminator={"arch": "dcgan"}, gp_weight=10.0)


@pytest.mark.parametrize("norm", ["layer", "instance", "none"])
def test_penalty_with_other_norms_or_batch_norm_without_penalty_is_accepted(norm):
    disc = {"arch": "dcgan", "base_channels": 8, "norm": norm}
    assert GANConfig(**SHAPE, discriminator=disc, gp_weight=10.0, r1_gamma=1.0).gp_weight == 10.0
    plain = GANConfig(**SHAPE, discriminator={**disc, "norm": "batch"})
    assert plain.gp_weight == 0 and plain.r1_gamma == 0


@pytest.mark.parametrize("key", ["generator", "discriminator", "optimizer_g", "optimizer_d"])
@pytest.mark.parametrize("value", [5, "dcgan", None, [1]])
def test_a_net_or_optimizer_node_given_a_scalar_is_a_config_error(key, value):
    """``model.generator=5`` was an AttributeError traceback from check_net_spec."""
    with pytest.raises(ConfigError, match=rf"^model\.{key}=.* is invalid: allowed a mapping"):
        GANConfig(**SHAPE, **{key: value})


@pytest.mark.parametrize("preset", MODEL_PRESETS)
def test_every_shipped_gan_preset_builds(tmp_path, preset):
    """Presets with penalties (wgan_gp, r1gan) ship a D without batch norm. Presets whose nets
    do not take the bundled data's 28 px (resnet, stylegan2) are built at 32 px (folder data)."""
    cfg = compose_config(tmp_path, f"model={preset}")
    if cfg.model._target_ != "genlab.models.GAN":
        pytest.skip("not a GAN preset (other families test their own presets)")
    if cfg.model.generator.arch in ("resnet", "stylegan2"):
        folder = ["data=folder", f"data.path={tmp_path}", "data.image_size=32", "data.channels=3"]
        cfg = compose_config(tmp_path, f"model={preset}", *folder, "model.num_classes=10")
    model = hydra.utils.instantiate(cfg.model)
    if model.config.gp_weight > 0 or model.config.r1_gamma > 0:
        assert model.config.discriminator.get("norm") != "batch"


@pytest.mark.slow  # one interpreter start + Hydra composition: ~13 s on 2 shared cores
def test_cli_refuses_penalty_with_batch_norm_in_one_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["model=gan", "model.gp_weight=10", "trainer=cpu", "logger=csv"]
    out = subprocess.run(
        [sys.executable, "-m", "genlab.train", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("genlab: error:")]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "model.discriminator.norm='batch'" in lines[0] and "model.gp_weight=10" in lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_ema_kimg_and_ema_decay_together_are_refused_naming_both_keys():
    with pytest.raises(ConfigError) as info:
        GANConfig(**SHAPE, ema_decay=0.999, ema_kimg=10)
    message = str(info.value)
    assert "model.ema_kimg=10" in message and "model.ema_decay=0.999" in message
    assert "model.ema_decay=null" in message  # the fix
    assert GANConfig(**SHAPE, ema_kimg=10, ema_rampup=0.05).ema_kimg == 10


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"ema_rampup": 0.05}, "model.ema_rampup=0.05"),  # a ramp-up of which half-life?
        ({"ema_kimg": 0}, "model.ema_kimg=0"),
        ({"ema_kimg": 10, "ema_rampup": -1}, "model.ema_rampup=-1"),
        ({"lazy_reg": "lazy"}, "model.lazy_reg='lazy'"),
        ({"ema_buffers": "mean"}, "model.ema_buffers='mean'"),
    ],
)
def test_bad_ema_or_lazy_reg_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        GANConfig(**SHAPE, **settings)


def test_separate_lazy_reg_needs_the_betas_it_corrects():
    """lazy_reg=separate raises D's betas to k/(k+1) when R1 is lazy: an optimizer spec
    without betas is refused (fused needs none)."""
    sgd = {"_target_": "torch.optim.SGD", "lr": 0.01}
    disc = {"arch": "dcgan", "norm": "none"}
    lazy = dict(**SHAPE, discriminator=disc, optimizer_d=sgd, r1_gamma=1.0, r1_every=4)
    with pytest.raises(ConfigError, match=r"model\.optimizer_d\.betas=None .*lazy_reg=fused"):
        GANConfig(**lazy)
    assert GANConfig(**lazy, lazy_reg="fused").lazy_reg_intervals() == {}
    assert GANConfig(**{**lazy, "optimizer_d": _adam()}).lazy_reg_intervals() == {"d": 4}


def _adam():
    return {"_target_": "torch.optim.Adam", "lr": 2e-4, "betas": [0.0, 0.99]}


@pytest.mark.parametrize("antialias", [True, False])
def test_ada_antialias_reaches_the_augment_pipe(antialias):
    """model.ada_antialias picks ADA's warp: the reference's supersampled one or plain bilinear."""
    from genlab.models.gan.build import build_augment

    cfg = GANConfig(**SHAPE, augment="ada", ada_antialias=antialias)
    assert build_augment(cfg).pipe.antialias is antialias
    with pytest.raises(ConfigError, match=r"model\.ada_antialias='yes'"):
        GANConfig(**SHAPE, augment="ada", ada_antialias="yes")
