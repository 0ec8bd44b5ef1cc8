"""DiffAugment and ADA: shapes, identity, gradients, seeded draws, what each operation does,
ADA's anti-aliased geometric warp (against the reference's numbers, the exact transform and
the plain bilinear warp), and the ADA p controller (direction, speed, interval, resumable
state)."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.augment import AdaptiveAugment, AugmentPipe, DiffAugment, diff_augment, warp
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


def test_ada_xflip_and_rotate90_are_exact_pixel_blits_without_antialiasing():
    x = images(b=64, size=8)
    flipped = AugmentPipe("xflip", p=1.0, antialias=False)(x, seeded(0))
    for i in range(64):
        assert torch.allclose(flipped[i], x[i], atol=1e-5) or torch.allclose(
            flipped[i], x[i].flip(-1), atol=1e-5
        )
    assert 10 < changed_samples(flipped, x).sum() < 54  # flip w.p. 1/2
    rotated = AugmentPipe("rotate90", p=1.0, antialias=False)(x, seeded(0))
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


# ---------------------------------------------------------------------------- ADA warp


def smooth_images(b=8, size=32, cutoff=0.4, seed=0) -> torch.Tensor:
    """Random images with no content above ``cutoff`` cycles per pixel (Nyquist: 0.5)."""
    fy, fx = torch.fft.fftfreq(size)[:, None], torch.fft.rfftfreq(size)[None]
    noise = torch.randn(b, 3, size, size, generator=seeded(seed))
    x = torch.fft.irfft2(torch.fft.rfft2(noise) * ((fx**2 + fy**2).sqrt() < cutoff), s=(size, size))
    return x / x.std() * 0.4


def g_inv(*rows) -> torch.Tensor:
    return torch.tensor([list(rows[:3]), list(rows[3:6]), [0.0, 0.0, 1.0]])[None]


def test_sym6_is_an_orthogonal_wavelet_filter_so_the_warp_round_trip_is_the_identity():
    """sum sqrt(2), unit energy, orthogonal to its even shifts: upsampling then downsampling
    with it gives back the image, so an identity map changes nothing."""
    h = torch.tensor(warp.SYM6, dtype=torch.float64)
    assert h.sum().item() == pytest.approx(math.sqrt(2), abs=1e-12)
    for shift in range(6):
        assert torch.dot(h[: 12 - 2 * shift], h[2 * shift :]).item() == pytest.approx(
            float(shift == 0), abs=1e-9
        )
    x = images(b=2, size=16)
    assert torch.allclose(warp.warp_antialiased(x, torch.eye(3).expand(2, 3, 3)), x, atol=1e-5)


@pytest.mark.parametrize(
    ("matrix", "total", "row", "column"),
    [
        (  # rotation, anisotropic scaling and a fractional translation
            g_inv(0.6878, -0.6274, -1.2970, 0.4705, 0.9170, 0.8628),
            -38.371189,
            [0.943394, 0.777767, 0.299140, -0.281659, -0.771273, -0.977860, -0.850305, -0.437310],
            [-0.723698, -0.401448, -0.029269, 0.349980, 0.675586, 0.896169, 0.844301, 0.126080],
        ),
        (  # x-flip and a 2 px shift
            g_inv(-1.0, 0.0, 2.0, 0.0, 1.0, 0.0),
            -10.514985,
            [-0.836711, -0.990069, -0.983382, -0.961564, -0.800181, -0.498011, -0.122590, 0.279454],
            [-0.409272, -0.898845, -0.965677, -0.578336, 0.081006, 0.702249, 0.993214, 0.817055],
        ),
    ],
)
def test_antialiased_warp_gives_the_reference_pipelines_output(matrix, total, row, column):
    """The numbers are stylegan2-ada-pytorch's (training/augment.py, "Execute geometric
    transformations", with its upfirdn2d and this G_inv) on the image below: sum, row 3 of
    channel 0 and column 5 of channel 2."""
    i = torch.arange(8.0)
    x = torch.stack([torch.sin(0.7 * i[:, None] + 0.4 * i[None] + c) for c in range(3)])[None]
    out = warp.warp_antialiased(x, matrix)
    assert out.sum().item() == pytest.approx(total, abs=1e-4)
    assert torch.allclose(out[0, 0, 3], torch.tensor(row), atol=1e-5)
    assert torch.allclose(out[0, 2, :, 5], torch.tensor(column), atol=1e-5)


def test_dense_and_convolution_filters_agree(monkeypatch):
    """Sides up to 256 px are filtered by a matrix product, longer ones by convolutions."""
    x = images(b=2, size=12)

    def up_down():
        up = warp.upsample2x(x)
        return up, warp.downsample2x(up, crop=1)

    dense = up_down()
    monkeypatch.setattr(warp, "_DENSE_MAX", 0)
    conv = up_down()
    assert dense[0].shape == (2, 3, 24, 24) and dense[1].shape == (2, 3, 6, 6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(dense, conv))


def test_antialiased_rotation_of_a_smooth_image_is_closer_to_the_exact_rotation():
    """Gaussian blobs (sigma 1.8 to 3 px) rotated by 30 degrees: the exact answer is the blobs
    function at the rotated coordinates; away from the borders the anti-aliased warp is
    several times closer to it than bilinear resampling."""
    centred = torch.arange(32.0) - 15.5
    yy, xx = torch.meshgrid(centred, centred, indexing="ij")

    def blobs(x, y):
        spots = [(-5, -3, 2.5, 1.0), (4, 2, 2.0, -0.8), (0, 6, 3.0, 0.6), (6, -6, 1.8, 0.7)]
        return sum(
            a * torch.exp(-((x - u) ** 2 + (y - v) ** 2) / (2 * s * s)) for u, v, s, a in spots
        )

    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    matrix = g_inv(c, s, 0.0, -s, c, 0.0)
    exact = blobs(c * xx + s * yy, -s * xx + c * yy)
    image = blobs(xx, yy)[None, None].expand(1, 3, 32, 32)
    errors = {
        name: (fn(image, matrix)[0, 0] - exact)[8:-8, 8:-8].abs().max().item()
        for name, fn in (("antialiased", warp.warp_antialiased), ("bilinear", warp.warp_bilinear))
    }
    assert errors["antialiased"] < 0.02 and errors["antialiased"] < errors["bilinear"] / 2.5


def test_antialiased_fractional_translation_keeps_fine_detail():
    """A half-pixel shift keeps the power of 0.25 to 0.4 cycles/px (bilinear halves it: its
    response there is cos(pi f) per axis)."""
    x = smooth_images(b=4)
    matrix = g_inv(1.0, 0.0, 0.5, 0.0, 1.0, 0.5).expand(4, 3, 3)
    fy, fx = torch.fft.fftfreq(24)[:, None], torch.fft.rfftfreq(24)[None]
    band = ((fx**2 + fy**2).sqrt() > 0.25) & ((fx**2 + fy**2).sqrt() < 0.4)

    def fine(z):
        return (torch.fft.rfft2(z[:, :, 4:-4, 4:-4]).abs() ** 2)[..., band].mean().item()

    kept_aa = fine(warp.warp_antialiased(x, matrix)) / fine(x)
    kept_bilinear = fine(warp.warp_bilinear(x, matrix)) / fine(x)
    assert kept_aa > 0.85 and kept_bilinear < 0.6


def test_antialiased_zoom_out_does_not_fold_detail_above_nyquist_back():
    """cos(2 pi 0.45 x) zoomed out by 1.3 has 0.585 cycles/px, above Nyquist: a perfect
    low-pass would return zero. The anti-aliased warp leaves about half what bilinear does."""
    x = torch.cos(2 * math.pi * 0.45 * (torch.arange(32.0) - 15.5)).expand(1, 1, 32, 32)
    matrix = g_inv(1.3, 0.0, 0.0, 0.0, 1.3, 0.0)
    aa = warp.warp_antialiased(x, matrix)[..., 8:-8, 8:-8].square().mean().sqrt()
    bilinear = warp.warp_bilinear(x, matrix)[..., 8:-8, 8:-8].square().mean().sqrt()
    assert aa < 0.6 * bilinear


def test_ada_geometric_augmentation_keeps_the_image_statistics():
    """What D sees of augmented reals should differ from reals by the transforms, not by a
    blur or a shift of the mean it could learn to detect (and G then reproduce): with
    geom at p = 0.8 the mean stays and the per-image std keeps > 0.9 of its value (bilinear:
    about 0.8)."""
    x = smooth_images(b=48) + 0.1
    std = x.std(dim=(1, 2, 3)).mean()
    ratio = {}
    for antialias in (True, False):
        out = AugmentPipe("geom", p=0.8, antialias=antialias)(x, seeded(1))
        assert out.mean().item() == pytest.approx(x.mean().item(), abs=0.01)
        ratio[antialias] = (out.std(dim=(1, 2, 3)).mean() / std).item()
    assert ratio[True] > 0.9 and ratio[True] > ratio[False] + 0.05


def test_ada_antialiased_blits_are_the_pixel_blits_up_to_the_filter_phase():
    """As in the reference code, blits go through the filter: on smooth images each x-flipped
    / rotated sample is the exact blit up to the sym6 filter's phase (about 0.1 px)."""
    x = smooth_images(b=32, size=16, cutoff=0.25)
    out = AugmentPipe("xflip,rotate90", p=1.0)(x, seeded(0))
    for i in range(32):
        candidates = [x[i].rot90(k, (1, 2)) for k in range(4)]
        candidates += [c.flip(-1) for c in candidates]
        errors = sorted((out[i] - c).square().mean().sqrt().item() for c in candidates)
        assert errors[0] < 0.05 < errors[1]  # one blit, and only one, matches


def test_ada_r1_gradient_flows_through_the_antialiased_warp():
    """R1 on augmented reals differentiates D's input gradient once more (double backward)."""
    x = smooth_images(b=4, size=16).requires_grad_(True)
    weight = torch.randn(2, 3, 3, 3, generator=seeded(2), requires_grad=True)
    logits = torch.nn.functional.conv2d(AugmentPipe("geom", p=1.0)(x, seeded(0)), weight)
    (grad,) = torch.autograd.grad(logits.square().sum(), x, create_graph=True)
    grad.square().sum().backward()
    assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_ada_antialias_must_be_a_bool():
    with pytest.raises(ConfigError) as error:
        AugmentPipe(antialias="yes")
    assert error.value.key == "model.augment.antialias"


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


def test_ada_under_bf16_autocast_runs_and_warps_as_in_float32():
    """Mixed precision (trainer.precision=bf16-mixed / 16-mixed) autocasts D's forward pass,
    augmentation included: the anti-aliased warp must run there (its filter matrices were once
    cached in bf16 and then refused float32 images) and give the float32 result."""
    warp._dense.cache_clear()
    pipe = AugmentPipe("geom", p=1.0)
    x = torch.rand(4, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = pipe(x, generator=torch.Generator().manual_seed(0))
    warp._dense.cache_clear()
    full = pipe(x, generator=torch.Generator().manual_seed(0))
    assert mixed.dtype == x.dtype
    assert torch.allclose(mixed, full, atol=1e-5)
