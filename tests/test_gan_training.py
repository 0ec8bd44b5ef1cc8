"""GAN schedules through real training runs: n_critic on distinct batches, what
``trainer.max_steps`` counts, EMA warm-up and sampling, LR schedulers (and skipped fp16 steps),
resume equal to an uninterrupted run, and a short bf16-mixed run of every preset."""

from __future__ import annotations

import csv

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from conftest import bare_trainer, compose_config
from genlab.checks.errors import ConfigError
from genlab.data import FashionMNISTMiniDataModule
from genlab.models import GAN
from genlab.runs.checkpoints import load_checkpoint
from genlab.train import train

TINY_DCGAN = ["model.generator.base_channels=8", "model.discriminator.base_channels=8"]
TINY_MLP = ["model.generator.hidden_dims=[32]", "model.discriminator.hidden_dims=[32]"]
PRESETS = ["gan", "wgan_gp", "sngan", "lsgan", "r1gan", "gan_mlp", "cgan", "cpu_gan"]


def tiny(preset: str) -> list[str]:
    return [
        f"model={preset}",
        "model.latent_dim=16",
        "data.batch_size=8",
        *(TINY_MLP if "mlp" in preset else TINY_DCGAN),
    ]


def tiny_module(**overrides) -> GAN:
    spec = {"arch": "mlp", "hidden_dims": [16]}
    kwargs = dict(image_size=28, channels=1, latent_dim=8, generator=spec, discriminator=spec)
    return GAN(**{**kwargs, **overrides})


def read_csv(path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_n_critic_steps_on_distinct_batches_and_max_steps_counts_generator_steps(
    make_cfg, tmp_path
):
    """n_critic=3, max_steps=2: 6 batches, each one D step; G steps on batches 3 and 6 only;
    training stops after 2 generator steps (trainer.max_steps counts generator steps), and
    ModelCheckpoint(every_n_train_steps=1) saves once per generator step."""
    metrics = train(
        make_cfg(
            *tiny("gan_mlp"),
            "model.n_critic=3",
            "trainer.max_steps=2",
            "trainer.max_epochs=5",
            "trainer.limit_train_batches=20",
            "callbacks.model_checkpoint.every_n_epochs=null",
            "+callbacks.model_checkpoint.every_n_train_steps=1",
            "callbacks.model_checkpoint.filename='step_{step}'",
        )
    )
    assert metrics["step"] == 2 and metrics["train/d_step"] == 6
    rows = [r for r in read_csv(tmp_path / "csv" / "metrics.csv") if r.get("train/d_step")]
    steps = [(int(float(r["train/d_step"])), int(float(r["train/g_step"]))) for r in rows]
    assert steps == [(1, 0), (2, 0), (3, 1), (4, 1), (5, 1), (6, 2)]  # one row per batch
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 2  # Lightning's step == generator steps
    periodic = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.ckpt"))
    assert periodic == ["step_1.ckpt", "step_2.ckpt"]  # every_n_train_steps: generator steps
    assert checkpoint["genlab"]["counters"] == {"d_steps": 6, "g_steps": 2, "skipped_g_steps": 0}


def test_schedulers_step_per_generator_step_with_separate_optimizers(make_cfg, tmp_path):
    """TTUR: G and D keep their own lr/betas; each StepLR halves its lr once per G step."""
    train(
        make_cfg(
            *tiny("gan_mlp"),
            "model.n_critic=2",
            "trainer.limit_train_batches=6",
            "model.optimizer_g.lr=1e-4",
            "model.optimizer_d.lr=4e-4",
            "model.optimizer_d.betas=[0.0,0.9]",
            "model.scheduler_g={_target_: torch.optim.lr_scheduler.StepLR, step_size: 1, gamma: 0.5}",
            "model.scheduler_d={_target_: torch.optim.lr_scheduler.StepLR, step_size: 1, gamma: 0.5}",
        )
    )
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["genlab"]["counters"]["g_steps"] == 3
    opt_d, opt_g = (s["param_groups"][0] for s in checkpoint["optimizer_states"])
    assert opt_g["lr"] == pytest.approx(1e-4 / 8) and opt_d["lr"] == pytest.approx(4e-4 / 8)
    assert tuple(opt_d["betas"]) == (0.0, 0.9) and tuple(opt_g["betas"]) == (0.5, 0.999)
    assert [s["last_epoch"] for s in checkpoint["lr_schedulers"]] == [3, 3]


def test_skipped_fp16_scaler_step_does_not_advance_schedulers():
    """fp16 GradScaler (run on CPU here): an inf generator loss makes the scaler skip that step;
    the LR schedule and EMA wait, the skip is counted; WGAN-GP penalty stays finite."""
    model = tiny_module(
        loss="wasserstein",
        gp_weight=10.0,
        ema_decay=0.9,
        scheduler_g={"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1, "gamma": 0.5},
    )
    generator_step = model.generator_step

    def inf_on_second_step(real, labels, fake=None):
        loss = generator_step(real, labels, fake)
        return loss * float("inf") if model.g_steps == 1 else loss

    model.generator_step = inf_on_second_step
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    trainer = bare_trainer(4, plugins=[plugin])
    trainer.fit(model, datamodule=FashionMNISTMiniDataModule(data_dir=".", batch_size=8))
    assert (model.g_steps, model.skipped_g_steps, trainer.global_step) == (4, 1, 4)
    assert model.lr_schedulers().last_epoch == 3  # 4 generator steps, one skipped
    assert model.generator_ema.n_averaged.item() == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("reuse", [False, True])
def test_reuse_fakes_scores_the_discriminator_steps_fakes_in_the_generator_step(reuse):
    """model.reuse_fakes: one generator forward per batch, whose images D trains on and the G
    step then scores (and trains G through); off: a fresh draw for each step."""
    model = tiny_module(reuse_fakes=reuse)
    forwards, scored = [], []
    model.generator.register_forward_hook(lambda m, i, out: forwards.append(out.detach().clone()))

    class ScoredFakes:  # the preset's loss, recording the fakes each G step scores
        def __init__(self, loss):
            self.loss = loss

        def __getattr__(self, name):
            return getattr(self.loss, name)

        def generator_terms(self, discriminate, real, fake, labels, fake_labels=None):
            scored.append(fake.detach().clone())
            return self.loss.generator_terms(discriminate, real, fake, labels, fake_labels)

    model.loss_fns = ScoredFakes(model.loss_fns)
    before = [p.detach().clone() for p in model.generator.parameters()]
    trainer = bare_trainer(3)
    trainer.fit(model, datamodule=FashionMNISTMiniDataModule(data_dir=".", batch_size=8))
    assert len(scored) == 3 and len(forwards) == (3 if reuse else 6)
    d_step_fakes = forwards if reuse else forwards[0::2]
    assert all(torch.equal(a, b) for a, b in zip(scored, d_step_fakes)) == reuse
    after = list(model.generator.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after))  # G trained via reused fakes


def test_ema_copies_during_warm_up_then_averages_and_is_used_for_sampling():
    torch.manual_seed(0)  # the outputs compared below must not depend on earlier tests' draws
    model = tiny_module(ema_decay=0.75, ema_start=2)
    model.lr_schedulers = lambda: None  # no trainer attached: no schedulers
    ema, generator = model.generator_ema.module, model.generator
    weight = lambda net: next(net.parameters()).detach().clone()  # noqa: E731
    for step in (1, 2):  # warm-up: the EMA is a copy of G
        with torch.no_grad():
            for p in generator.parameters():
                p.add_(0.01)  # small: a saturated tanh would make EMA and G agree
        model.g_steps = step
        model._after_generator_step(applied=True)
        assert torch.equal(weight(ema), weight(generator))
    before = weight(ema)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.01)
    model.g_steps = 3
    model._after_generator_step(applied=True)
    assert torch.allclose(weight(ema), 0.75 * before + 0.25 * weight(generator))
    z = torch.randn(4, 8)
    expected = ((ema.eval()(z) + 1) / 2).clamp(0, 1)
    assert torch.allclose(model.generate_from_latents(z), expected)
    assert not torch.allclose(model.generate_from_latents(z, use_ema=False), expected)


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    """2 epochs straight == 1 epoch + resume from last.ckpt to 2 epochs: weights, EMA,
    optimizer and scheduler state and counters. n_critic=2 over 3-batch epochs puts a generator
    step across the epoch boundary; lazy R1 (its own D step with the corrected Adam, r1gan's
    lazy_reg=separate) and the ramped-up EMA by half-life in images span it too (beta 0.25 and
    0.5 at generator steps 2 and 3, from the images seen, i.e. the restored d_steps)."""
    from conftest import FAST

    recipe = [
        *FAST,
        *tiny("r1gan"),
        "trainer.deterministic=true",
        "model.n_critic=2",
        "model.r1_every=2",
        "model.ema_start=1",
        "model.ema_decay=null",
        "model.ema_kimg=0.05",  # 50 images: the ramp-up (0.5 x 16, 0.5 x 32) sets beta here
        "model.ema_rampup=0.5",
        "model.discriminator.norm=layer",  # batch norm + R1 is refused; G's batch norm stays
        "model.scheduler_g={_target_: torch.optim.lr_scheduler.StepLR, step_size: 1, gamma: 0.9}",
    ]
    straight = compose_config(tmp_path / "straight", *recipe, "trainer.max_epochs=2")
    train(straight)
    train(compose_config(tmp_path / "resumed", *recipe, "trainer.max_epochs=1"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    train(
        compose_config(tmp_path / "resumed", *recipe, "trainer.max_epochs=2", f"ckpt_path={last}")
    )
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    b = load_checkpoint(last)
    assert (
        a["genlab"]["counters"]
        == b["genlab"]["counters"]
        == {
            "d_steps": 6,
            "g_steps": 3,
            "skipped_g_steps": 0,
        }
    )
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert any(k.startswith("generator_ema.") for k in a["state_dict"])
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(opt_a["state"].values(), opt_b["state"].values()):
            assert all(torch.equal(pa[k], pb[k]) for k in ("exp_avg", "exp_avg_sq")), "adam"
    assert a["lr_schedulers"] == b["lr_schedulers"]


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_finite_in_bf16(make_cfg, preset):
    batches = 5 if preset == "wgan_gp" else 3  # n_critic=5: one generator step
    overrides = [
        *tiny(preset),
        "trainer.precision=bf16-mixed",
        f"trainer.limit_train_batches={batches}",
    ]
    metrics = train(make_cfg(*overrides))
    assert metrics["step"] >= 1
    for name in ("train/loss_d", "train/loss_g", "val/d_real"):
        assert torch.isfinite(torch.tensor(metrics[name])), name


@pytest.mark.gpu
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_finite_in_fp16_on_gpu(make_cfg, preset):
    """16-mixed (GradScaler; penalties in fp32) on a CUDA device."""
    overrides = [*tiny(preset), "trainer.accelerator=gpu", "trainer.precision=16-mixed"]
    metrics = train(make_cfg(*overrides, "trainer.limit_train_batches=10"))
    assert metrics["step"] >= 2
    for name in ("train/loss_d", "train/loss_g", "val/d_real"):
        assert torch.isfinite(torch.tensor(metrics[name])), name


@pytest.mark.parametrize("norm", ["batch", "instance", "layer", "none"])
def test_discriminator_norm_choice_with_conditional_projection(norm):
    model = GAN(
        image_size=28,
        channels=1,
        latent_dim=8,
        num_classes=10,
        conditional=True,
        generator={"arch": "dcgan", "base_channels": 4},
        discriminator={"arch": "dcgan", "base_channels": 4, "norm": norm},
    )
    kinds = {type(m).__name__ for m in model.discriminator.modules()}
    expected = {"batch": "BatchNorm2d", "instance": "InstanceNorm2d", "layer": "GroupNorm"}
    assert expected.get(norm, "Identity") in kinds
    images = torch.rand(4, 1, 28, 28)
    same, other = torch.full((4,), 3), torch.full((4,), 7)
    model.eval()
    d_same, d_other = model.discriminator(images, same), model.discriminator(images, other)
    assert not torch.allclose(d_same, d_other)  # projection D reads the label
    z = torch.randn(4, 8)
    assert not torch.allclose(
        model.generate_from_latents(z, labels=same), model.generate_from_latents(z, labels=other)
    )


def test_conditional_gan_refuses_unlabelled_batches():
    model = tiny_module(conditional=True, num_classes=10)
    with pytest.raises(ConfigError, match="model.conditional"):
        model._labels({"image": torch.rand(2, 1, 28, 28), "label": torch.tensor([-1, -1])})


def test_mlp_discriminator_rejects_instance_norm():
    with pytest.raises(ConfigError, match="model.discriminator.norm='instance'"):
        tiny_module(discriminator={"arch": "mlp", "hidden_dims": [8, 8], "norm": "instance"})
