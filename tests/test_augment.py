"""DiffAugment and ADA: shapes, identity, gradients, seeded draws, what each operation does,
and the ADA p controller (direction, speed, interval, resumable state)."""

from __future__ import annotations

import pytest
import torch

from genlab.augment import AdaptiveAugment, AugmentPipe, DiffAugment, diff_augment
from genlab.augment.diffaugment import cutout, translation
from genlab.checks.errors import ConfigError


def images(b=8, c=3, size=32, seed=0) -> torch.Tensor:
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- DiffAugment


POLICIES = ["color", "translation", "cutout", "color,translation,cutout", "translation,color"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_diffaugment_keeps_shape_and_changes_every_sample(policy, channels):
    x = images(c=channels)
    out = DiffAugment(policy)(x, seeded(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    changed = (out - x).abs().flatten(1).amax(dim=1) > 0
    assert changed.float().mean() >= 0.75  # a zero translation can leave a sample as it was


def test_diffaugment_empty_policy_is_the_identity():
    x = images()
    assert torch.equal(DiffAugment("")(x, seeded(0)), x)
    assert torch.equal(diff_augment(x, " , "), x)


@pytest.mark.parametrize("policy", POLICIES)
def test_diffaugment_is_differentiable(policy):
    x = images().requires_grad_(True)
    weights = torch.randn(x.shape, generator=seeded(1))
    (DiffAugment(policy)(x, seeded(0)) * weights).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_cutout_gradient_is_zero_exactly_inside_the_hole():
    x = images().requires_grad_(True)
    out = cutout(x, seeded(0))
    out.sum().backward()
    hole = out.detach() == 0
    assert hole.any()
    assert torch.equal(x.grad[hole], torch.zeros_like(x.grad[hole]))
    assert torch.equal(x.grad[~hole], torch.ones_like(x.grad[~hole]))


def test_diffaugment_seeded_draws_are_reproducible_and_per_sample():
    x = images(b=1).repeat(16, 1, 1, 1)  # sixteen copies of one image
    augment = DiffAugment("color,translation,cutout")
    a, b = augment(x, seeded(7)), augment(x, seeded(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(x, seeded(8)))
    distinct = {a[i].flatten().tolist().__repr__() for i in range(16)}
    assert len(distinct) == 16  # every sample draws its own parameters


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x (C, H, W) moved so that out[i, j] = x[i + dy, j + dx], zeros outside (|d| <= 2)."""
    _, h, w = x.shape
    padded = torch.nn.functional.pad(x, [2, 2, 2, 2])
    return padded[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]


def test_translation_is_an_integer_shift_of_at_most_an_eighth_with_zero_fill():
    x = images(b=6, size=16)
    out = translation(x, seeded(3))
    shifts = set()
    for i in range(6):
        found = [
            (dy, dx)
            for dy in range(-2, 3)  # 16 px * 1/8 = 2
            for dx in range(-2, 3)
            if torch.equal(out[i], _shift(x[i], dy, dx))
        ]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 1


def test_cutout_zeroes_one_rectangle_of_at_most_half_the_side():
    x = torch.ones(32, 1, 32, 32)
    out = cutout(x, seeded(0))
    for sample in out[:, 0]:
        rows, cols = (sample == 0).nonzero(as_tuple=True)
        height = int(rows.max() - rows.min()) + 1
        width = int(cols.max() - cols.min()) + 1
        assert rows.numel() == height * width  # one filled rectangle
        assert 8 <= height <= 16 and 8 <= width <= 16  # side 16, clipped to >= 8 at a border


def test_color_on_a_constant_gray_image_is_a_brightness_shift_in_half_a_unit():
    x = torch.full((64, 3, 4, 4), 0.1)
    out = DiffAugment("color")(x, seeded(0))
    shift = out - x
    per_sample = shift.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6)
    assert per_sample.abs().max() <= 0.5 + 1e-6
    assert per_sample[:, 0].std() > 0.2  # U(-0.5, 0.5) has std 0.29


def test_diffaugment_bad_policy_names_the_key_and_the_operations():
    with pytest.raises(ConfigError) as error:
        DiffAugment("color,flip")
    assert error.value.key == "model.augment.policy"
    assert "translation" in str(error.value) and "cutout" in str(error.value)


# ---------------------------------------------------------------------------- ADA pipe


def changed_samples(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> torch.Tensor:
    return (a - b).abs().flatten(1).amax(dim=1) > tol


def test_ada_p0_is_the_identity():
    x = images()
    assert torch.equal(AugmentPipe(p=0.0)(x, seeded(0)), x)
    assert torch.equal(AdaptiveAugment()(x, seeded(0)), x)  # p starts at 0


@pytest.mark.parametrize("ops", ["blit,geom,color", "geom", "color", "scale", "hue", "xfrac"])
def test_ada_p1_changes_every_image(ops):
    x = images()
    out = AugmentPipe(ops, p=1.0)(x, seeded(0))
    assert out.shape == x.shape
    assert changed_samples(out, x).all()


def test_ada_grayscale_images():
    x = images(c=1)
    out = AugmentPipe(p=1.0)(x, seeded(0))
    assert out.shape == x.shape and changed_samples(out, x).all()


def test_ada_xflip_and_rotate90_are_exact_pixel_blits():
    x = images(b=64, size=8)
    flipped = AugmentPipe("xflip", p=1.0)(x, seeded(0))
    for i in range(64):
        assert torch.allclose(flipped[i], x[i], atol=1e-5) or torch.allclose(
            flipped[i], x[i].flip(-1), atol=1e-5
        )
    assert 10 < changed_samples(flipped, x).sum() < 54  # flip w.p. 1/2
    rotated = AugmentPipe("rotate90", p=1.0)(x, seeded(0))
    turns = []
    for i in range(64):
        k = [k for k in range(4) if torch.allclose(rotated[i], x[i].rot90(k, (1, 2)), atol=1e-5)]
        assert len(k) == 1
        turns.append(k[0])
    assert set(turns) == {0, 1, 2, 3}


def test_ada_xint_is_an_integer_translation_of_at_most_an_eighth():
    x = images(b=16, size=16)
    out = AugmentPipe("xint", p=1.0)(x, seeded(0))
    for i in range(16):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.allclose(
                out[i, :, 2:-2, 2:-2], x[i, :, 2 + dy : 14 + dy, 2 + dx : 14 + dx], atol=1e-5
            )
        ]
        assert found  # the interior is the input moved by whole pixels


@pytest.mark.parametrize("op", ["brightness", "scale", "rotate"])
def test_ada_applies_each_operation_per_sample_with_probability_p(op):
    """``rotate`` is drawn twice with 1 - sqrt(1 - p) each: overall probability p too."""
    x = images(b=4000, c=3, size=4)
    out = AugmentPipe(op, p=0.3)(x, seeded(0))
    fraction = changed_samples(out, x).float().mean().item()
    assert fraction == pytest.approx(0.3, abs=0.03)


def test_ada_is_differentiable():
    x = images().requires_grad_(True)
    weights = torch.randn(x.shape, generator=seeded(1))
    (AugmentPipe(p=1.0)(x, seeded(0)) * weights).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_ada_seeded_draws_are_reproducible():
    x = images()
    pipe = AugmentPipe(p=0.7)
    assert torch.equal(pipe(x, seeded(4)), pipe(x, seeded(4)))
    assert not torch.equal(pipe(x, seeded(4)), pipe(x, seeded(5)))


# ---------------------------------------------------------------------------- ADA controller


def test_controller_raises_p_when_rt_above_target_and_lowers_it_below():
    ada = AdaptiveAugment(interval=4)
    for _ in range(3):
        assert not ada.observe(torch.ones(64))  # adjusts only every 4 D steps
    assert ada.p.item() == 0.0
    assert ada.observe(torch.ones(64))
    step = 64 * 4 / 500_000  # n images / (speed_kimg * 1000)
    assert ada.p.item() == pytest.approx(step)
    assert ada.rt.item() == 1.0

    ada = AdaptiveAugment(interval=4, p=0.5)
    logits = torch.tensor([1.0] * 16 + [-1.0] * 48)  # r_t = -0.5 < 0.6
    for _ in range(4):
        ada.observe(logits)
    assert ada.p.item() == pytest.approx(0.5 - step)
    assert ada.rt.item() == pytest.approx(-0.5)


def test_controller_keeps_p_when_rt_equals_the_target():
    ada = AdaptiveAugment(interval=1, p=0.25)
    ada.observe(torch.tensor([1.0] * 8 + [-1.0] * 2))  # r_t = 0.6
    assert ada.p.item() == 0.25


def test_controller_p_goes_from_0_to_1_in_500k_images_and_stays_in_range():
    ada = AdaptiveAugment()  # target 0.6, interval 4, 500 kimg
    overfit = torch.ones(256)  # r_t = 1: D is sure about every real
    adjustments = 0
    while ada.p.item() < 1.0:
        adjustments += ada.observe(overfit)
    images_seen = adjustments * 4 * 256
    assert 500_000 - 4 * 256 < images_seen <= 500_000 + 4 * 256
    for _ in range(8):
        ada.observe(overfit)
    assert ada.p.item() == 1.0
    ada = AdaptiveAugment(interval=1, p=0.0)
    ada.observe(-torch.ones(64))
    assert ada.p.item() == 0.0


def test_controller_state_resumes_mid_interval():
    torch.manual_seed(0)
    stream = [torch.randn(32) + 1.0 for _ in range(22)]  # r_t ~ 0.68
    original = AdaptiveAugment(interval=4, speed_kimg=1.0)
    for logits in stream[:10]:  # stops between two adjustments
        original.observe(logits)
    state = original.state_dict()
    assert {"pipe.p", "sign_sum", "sign_count", "d_steps", "rt"} <= set(state)
    resumed = AdaptiveAugment(interval=4, speed_kimg=1.0)
    resumed.load_state_dict(state)
    for logits in stream[10:]:
        original.observe(logits)
        resumed.observe(logits)
    assert original.p.item() > 0
    assert resumed.p.item() == original.p.item()
    assert resumed.rt.item() == original.rt.item()
    fresh = AdaptiveAugment(interval=4, speed_kimg=1.0)
    for logits in stream[10:]:
        fresh.observe(logits)
    assert fresh.p.item() != original.p.item()  # the restored state mattered


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: AdaptiveAugment(target=1.5), "model.augment.target"),
        (lambda: AdaptiveAugment(interval=0), "model.augment.interval"),
        (lambda: AdaptiveAugment(speed_kimg=0), "model.augment.speed_kimg"),
        (lambda: AdaptiveAugment(ops="blit,blur"), "model.augment.ops"),
        (lambda: AugmentPipe(p=1.5), "model.augment.p"),
    ],
)
def test_ada_bad_settings_name_the_key(make, key):
    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.key == key


def test_augmentations_keep_bf16_images_bf16():
    x = images().to(torch.bfloat16)
    out = DiffAugment()(x, seeded(0))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    out = AugmentPipe(p=1.0)(x, seeded(0))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
