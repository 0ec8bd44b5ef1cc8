"""The GAN's EMA by half-life in images (``model.ema_kimg``, ``model.ema_rampup``) and lazy
regularisation as its own optimizer step with the Adam correction (``model.lazy_reg``), both as
stylegan2-ada-pytorch's training/training_loop.py does them. Resume of both:
tests/test_gan_training.py::test_resumed_run_matches_uninterrupted_run."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader

from conftest import bare_trainer
from genlab.models import GAN

MLP = {"arch": "mlp", "hidden_dims": [16]}
STYLEGAN2_G = {
    "arch": "stylegan2",
    "channel_base": 128,
    "channel_max": 8,
    "w_dim": 8,
    "mapping_layers": 2,
    "style_mixing_prob": 0.0,
}
STYLEGAN2_D = {"arch": "stylegan2", "channel_base": 128, "channel_max": 8, "mbstd_group_size": 2}


def loader(batches: int, batch_size: int = 4, size: int = 28, channels: int = 1) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batches * batch_size, channels, size, size, generator=g)
    items = [{"image": image, "label": torch.tensor(-1)} for image in images]
    return DataLoader(items, batch_size=batch_size, shuffle=False)


def mlp_gan(**overrides) -> GAN:
    kwargs = dict(image_size=28, channels=1, latent_dim=8, generator=MLP, discriminator=MLP)
    return GAN(**{**kwargs, **overrides})


def fit(model: GAN, batches: int, batch_size: int = 4, plugins=(), **data) -> None:
    torch.manual_seed(0)
    max_steps = batches // model.config.n_critic
    trainer = bare_trainer(max_steps, plugins=list(plugins))
    trainer.fit(model, loader(batches, batch_size, **data))
    assert trainer.global_step == model.g_steps == max_steps  # extra steps are not counted


def reference_beta(ema_kimg, ema_rampup, cur_nimg, batch_size) -> float:
    """stylegan2-ada-pytorch training/training_loop.py, "Update G_ema", verbatim."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


def record_generator_steps(model: GAN) -> list[list[torch.Tensor]]:
    """G's weights at every applied generator step, before the EMA update."""
    seen: list[list[torch.Tensor]] = []
    original = model._after_generator_step

    def spy(applied, global_batch=1):
        seen.append([p.detach().clone() for p in model.generator.parameters()])
        original(applied, global_batch)

    model._after_generator_step = spy
    return seen


@pytest.mark.parametrize("n_critic, ema_rampup", [(1, None), (1, 0.5), (2, 0.5)])
def test_ema_kimg_beta_follows_the_reference_formula_at_every_step(n_critic, ema_rampup):
    """Replaying stylegan2-ada-pytorch's update on G's weights of every step gives the trained
    EMA: beta from the real images seen before the step (n_critic batches per G step)."""
    model = mlp_gan(ema_kimg=0.02, ema_rampup=ema_rampup, n_critic=n_critic)
    steps = record_generator_steps(model)
    fit(model, batches=6, batch_size=4)
    assert model.g_steps == len(steps) == 6 // n_critic
    images = 4 * n_critic  # real images per generator step (one process)
    expected = [p.clone() for p in steps[0]]  # the first update copies G (AveragedModel)
    betas = []
    for i, weights in enumerate(steps[1:], start=1):
        beta = reference_beta(0.02, ema_rampup, cur_nimg=i * images, batch_size=images)
        betas.append(beta)
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, weights)]
    for e, p in zip(expected, model.generator_ema.module.parameters()):
        torch.testing.assert_close(p, e, rtol=1e-5, atol=1e-6)
    if ema_rampup is None:  # 0.5 ** (4 / 20) every step
        assert betas == pytest.approx([0.5 ** (images / 20)] * len(betas))
    else:  # the half-life grows with the images seen until it reaches 20 images
        assert betas == sorted(betas) and len(set(betas)) == len(betas)


def test_ema_rampup_makes_the_early_ema_track_g():
    """With a 10 kimg half-life the EMA stays at G's initial weights for the first steps; with
    the 0.05 ramp-up (stylegan2-ada-pytorch's cifar config) it follows G."""
    adam = {"_target_": "torch.optim.Adam", "lr": 1e-2, "betas": [0.0, 0.99]}

    def ema_gap(rampup):
        """max |EMA - G| relative to how far G moved from its initial weights"""
        model = mlp_gan(ema_kimg=10, ema_rampup=rampup, optimizer_g=adam)
        initial = [p.detach().clone() for p in model.generator.parameters()]
        fit(model, batches=5)
        now = [p.detach() for p in model.generator.parameters()]
        ema = model.generator_ema.module.parameters()
        gap = max(float((e - p).abs().max()) for e, p in zip(ema, now))
        return gap / max(float((p - q).abs().max()) for p, q in zip(now, initial))

    # step 5 after 16 images: half-life 0.05 x 16 = 0.8 images, beta = 0.5 ** (4 / 0.8)
    ramped, constant = ema_gap(0.05), ema_gap(None)
    assert ramped < 0.05 and constant > 0.5  # constant: the EMA stays near G after step 1


def test_ema_kimg_beta_counts_images_over_all_processes():
    """beta depends on the global batch (batch x world size), as the reference's batch_size;
    during the ramp-up the half-life is a fraction of the images seen, so both scale."""
    model = mlp_gan(ema_kimg=1, ema_rampup=0.05)
    for d_steps in (11, 1001):  # ramping up (32k x 0.05 < 1000 images), then 1 kimg
        model.d_steps = d_steps  # this batch is the d_steps-th
        for batch in (64, 128):
            seen = (d_steps - 1) * batch
            assert model.ema_beta(batch) == pytest.approx(reference_beta(1, 0.05, seen, batch))
    assert model.ema_beta(128) == pytest.approx(model.ema_beta(64) ** 2)


def count_optimizer_steps(model: GAN) -> list[tuple[str, int, int, float]]:
    """(network, d_steps, g_steps, loss) of every optimizer step."""
    steps = []
    original = model._optimize

    def spy(optimizer, loss, module, counted):
        name = "d" if module is model.discriminator else "g"
        steps.append((name, model.d_steps, model.g_steps, float(loss)))
        return original(optimizer, loss, module, counted)

    model._optimize = spy
    return steps


def adam_settings(model: GAN) -> dict[str, tuple[float, tuple[float, ...]]]:
    opt_d, opt_g = (o.optimizer for o in model.optimizers())
    return {
        name: (opt.param_groups[0]["lr"], tuple(opt.param_groups[0]["betas"]))
        for name, opt in (("d", opt_d), ("g", opt_g))
    }


@pytest.mark.parametrize("precision", ["32-true", "16-mixed"])
def test_separate_r1_is_its_own_d_step_every_k_batches_with_corrected_adam(precision):
    """r1_every=3: a main D step on every batch plus an R1-only D step on batches 0, 3, 6
    (stylegan2-ada-pytorch's Dmain/Dreg), weighted by k; D's Adam lr * 3/4, betas ** (3/4)
    as training_loop.py builds it; G (no regulariser) keeps its settings. Also under an fp16
    GradScaler (on the CPU here), which steps (or skips) each of the two D steps on its own."""
    plugins = []
    if precision == "16-mixed":
        plugins = [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))]
    model = mlp_gan(r1_gamma=2.0, r1_every=3, lazy_reg="separate")
    r1_values = []
    original = model.r1_loss

    def r1_spy(real, labels):
        loss, r1 = original(real, labels)
        r1_values.append(float(r1))
        return loss, r1

    model.r1_loss = r1_spy
    steps = count_optimizer_steps(model)
    fit(model, batches=7, plugins=plugins)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    d_steps = [(d, loss) for name, d, _, loss in steps if name == "d"]
    assert [d for d, _ in d_steps] == [0, 0, 1, 2, 3, 3, 4, 5, 6, 6]
    reg_losses = [d_steps[i][1] for i in (1, 5, 9)]  # the second step on batches 0, 3, 6
    assert reg_losses == pytest.approx([0.5 * 2.0 * 3 * r1 for r1 in r1_values], rel=1e-5)
    assert [name for name, *_ in steps].count("g") == 7  # one G step per batch
    ratio = 3 / 4
    assert adam_settings(model) == {
        "d": (pytest.approx(2e-4 * ratio), pytest.approx((0.5**ratio, 0.999**ratio))),
        "g": (2e-4, (0.5, 0.999)),
    }


def test_fused_r1_adds_to_the_main_d_step_without_correction():
    model = mlp_gan(r1_gamma=2.0, r1_every=3, lazy_reg="fused")
    steps = count_optimizer_steps(model)
    fit(model, batches=7)
    assert [d for name, d, *_ in steps if name == "d"] == list(range(7))
    assert adam_settings(model) == {"d": (2e-4, (0.5, 0.999)), "g": (2e-4, (0.5, 0.999))}


def test_r1_every_step_is_never_a_separate_step():
    """k = 1 is not lazy (the reference's reg_interval=None, 'Dboth'): R1 in the main step."""
    model = mlp_gan(r1_gamma=2.0, r1_every=1, lazy_reg="separate")
    steps = count_optimizer_steps(model)
    fit(model, batches=3)
    assert [d for name, d, *_ in steps if name == "d"] == [0, 1, 2]
    assert adam_settings(model)["d"] == (2e-4, (0.5, 0.999))


def test_separate_path_length_is_its_own_g_step_every_k_generator_steps():
    """pl_every=2: an extra G step (the weighted path-length penalty only) on generator steps
    0 and 2 (Gmain/Greg); G's Adam lr * 2/3, betas ** (2/3); D (no R1) unchanged."""
    model = GAN(
        image_size=32,
        channels=3,
        latent_dim=8,
        generator=STYLEGAN2_G,
        discriminator=STYLEGAN2_D,
        optimizer_g={"_target_": "torch.optim.Adam", "lr": 2.5e-3, "betas": [0.0, 0.99]},
        optimizer_d={"_target_": "torch.optim.Adam", "lr": 2.5e-3, "betas": [0.0, 0.99]},
        pl_weight=2.0,
        pl_every=2,
        lazy_reg="separate",
    )
    steps = count_optimizer_steps(model)
    fit(model, batches=4, size=32, channels=3)
    assert [g for name, _, g, _ in steps if name == "g"] == [0, 0, 1, 2, 2, 3]
    assert [name for name, *_ in steps].count("d") == 4
    assert adam_settings(model) == {
        "d": (2.5e-3, (0.0, 0.99)),
        "g": (pytest.approx(2.5e-3 * 2 / 3), pytest.approx((0.0, 0.99 ** (2 / 3)))),
    }


@pytest.mark.parametrize("ema_buffers", ["copy", "average"])
def test_ema_buffers_are_copied_from_g_or_averaged(ema_buffers):
    """copy (stylegan2-ada-pytorch's G_ema, mmagic): the EMA's buffers are G's after every
    update; average: they are averaged like the weights (here batch-norm statistics)."""
    dcgan = {"arch": "dcgan", "base_channels": 8}
    model = mlp_gan(generator=dcgan, ema_decay=0.5, ema_buffers=ema_buffers)
    fit(model, batches=3)
    pairs = [
        (e, b)
        for (name, e), b in zip(
            model.generator_ema.module.named_buffers(), model.generator.buffers()
        )
        if name.endswith("running_mean")
    ]
    assert pairs and all(torch.equal(e, b) for e, b in pairs) == (ema_buffers == "copy")
