"""ADA: adaptive discriminator augmentation (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data"; NVlabs/stylegan2-ada-pytorch, training/augment.py).

:class:`AugmentPipe` applies each of its operations to each sample independently with
probability ``p``; as every operation is differentiable, it goes in front of D for reals and
fakes, in D and G steps (like DiffAugment), and with ``p < ~0.8`` the augmentations do not
leak into the generated distribution. Operations (the paper's defaults for strength):

* pixel blitting ``blit``: ``xflip`` (x -> -x w.p. 1/2), ``rotate90`` (k * 90 degrees,
  k ~ U{0..3}), ``xint`` (integer translation, uniform in +-1/8 of the size);
* geometric ``geom``: ``scale`` (isotropic, 2^N(0, 0.2^2)), ``rotate`` (uniform in
  [-180, 180] degrees, drawn before and after anisotropic scaling, each w.p.
  ``1 - sqrt(1 - p)``), ``aniso`` (x by 2^N(0, 0.2^2), y by its inverse), ``xfrac``
  (fractional translation, N(0, 0.125^2) of the size);
* color ``color``: ``brightness`` (+N(0, 0.2^2)), ``contrast`` (x 2^N(0, 0.5^2)), ``lumaflip``
  (Householder reflection of the luma axis w.p. 1/2), ``hue`` (rotation about the luma axis,
  uniform in [-180, 180] degrees), ``saturation`` (x 2^N(0, 1) off the luma axis); hue and
  saturation only for RGB.

The blit and geometric operations compose into one inverse affine map per sample,
``G^{-1}`` (3x3, pixel units, origin at the image centre). With ``antialias=True`` (the
default) every sample whose map is not the identity is warped as the reference code does
(:func:`genlab.augment.warp.warp_antialiased`: reflection padding, 2x upsampling with the sym6
wavelet low-pass filter, bilinear resampling, the filter again and 2x downsampling); the
result equals the reference's for the same ``G^{-1}``. As in the reference, blits then go
through the filter too: on smooth images they match the exact pixel blit up to the filter's
phase (about 0.1 px). ``antialias=False`` is genlab's earlier warp (bilinear at the image's
resolution, reflection padding, exact blits), kept to reproduce runs made with it and for
``benchmarks/ada_antialias.py``. Color operations compose into one 4x4 matrix ``C`` acting on
(r, g, b, 1).

:class:`AdaptiveAugment` adds the p controller: with ``r_t = E[sign(D(aug(x_real)))]`` over the
last ``interval`` D steps (N = 4), ``p <- clip(p + sign(r_t - target) * n / (speed_kimg * 1000),
0, 1)`` where n is the number of reals in those steps, so p can go from 0 to 1 in
``speed_kimg`` = 500 thousand images; target 0.6. ``p``, the running sums and the last r_t are
buffers: they are saved and restored with the module's state dict.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from genlab.augment.policy import ADA_GROUPS, DEFAULT_OPS, parse_ops
from genlab.augment.warp import matrix as _matrix
from genlab.augment.warp import scale2d as _scale2d
from genlab.augment.warp import translate2d as _translate2d
from genlab.augment.warp import warp_antialiased, warp_bilinear
from genlab.checks.errors import ConfigError

XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0


def _rotate2d(theta, batch, device):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], batch, device)


def _rotate3d(axis: torch.Tensor, theta: torch.Tensor, batch, device):
    """Rodrigues rotation by ``theta`` (B,) about the unit ``axis`` (3,), homogeneous 4x4."""
    x, y, z = axis[0], axis[1], axis[2]
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    rows = [
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
        [0, 0, 0, 1],
    ]
    return _matrix(rows, batch, device)


class _Draws:
    """Random draws for one batch: made on the generator's device, moved to ``device``."""

    def __init__(self, batch: int, generator: torch.Generator | None, device):
        self.batch, self.generator, self.device = batch, generator, device
        self.draw_device = generator.device if generator is not None else device

    def rand(self, *shape) -> torch.Tensor:
        out = torch.rand(shape, generator=self.generator, device=self.draw_device)
        return out.to(self.device)

    def randn(self, *shape) -> torch.Tensor:
        out = torch.randn(shape, generator=self.generator, device=self.draw_device)
        return out.to(self.device)

    def fires(self, probability: torch.Tensor) -> torch.Tensor:
        """(B,) bool: which samples get the operation, each with ``probability``."""
        return self.rand(self.batch) < probability


class AugmentPipe(nn.Module):
    """images (B, C, H, W) in [-1, 1] -> augmented images, same shape; C is 1 or 3 for color.

    Each operation in ``ops`` fires per sample with probability ``p`` (buffer ``self.p``).
    ``antialias``: warp as the reference code (2x supersampled, sym6 low-pass; default) or
    with plain bilinear resampling (genlab before; exact blits, about 4x less work).
    """

    def __init__(
        self,
        ops: str = DEFAULT_OPS,
        p: float = 0.0,
        key: str = "model.augment",
        antialias: bool = True,
    ):
        super().__init__()
        if not (isinstance(p, int | float) and not isinstance(p, bool) and 0.0 <= p <= 1.0):
            raise ConfigError(f"{key}.p", p, "a number in [0, 1]")
        if not isinstance(antialias, bool):
            raise ConfigError(f"{key}.antialias", antialias, "true or false")
        self.ops = parse_ops(ops, f"{key}.ops")
        self.antialias = antialias
        self.register_buffer("p", torch.tensor(float(p)))

    def _geometric(self, images: torch.Tensor, generator) -> torch.Tensor:
        batch, _, height, width = images.shape
        dev, p = images.device, self.p.to(images.device)
        draws = _Draws(batch, generator, dev)
        rand, randn, fires = draws.rand, draws.randn, draws.fires
        zero, one = torch.zeros(batch, device=dev), torch.ones(batch, device=dev)
        g_inv = torch.eye(3, device=dev).expand(batch, 3, 3)
        if "xflip" in self.ops:
            flip = torch.where(fires(p), torch.floor(rand(batch) * 2), zero)
            g_inv = g_inv @ _scale2d(1 - 2 * flip, 1, batch, dev)
        if "rotate90" in self.ops:
            quarter = torch.where(fires(p), torch.floor(rand(batch) * 4), zero)
            g_inv = g_inv @ _rotate2d(-math.pi / 2 * quarter, batch, dev)
        if "xint" in self.ops:
            t = (rand(batch, 2) * 2 - 1) * XINT_MAX
            t = torch.where(fires(p)[:, None], t, torch.zeros_like(t))
            tx, ty = torch.round(t[:, 0] * width), torch.round(t[:, 1] * height)
            g_inv = g_inv @ _translate2d(-tx, -ty, batch, dev)
        if "scale" in self.ops:
            s = torch.where(fires(p), torch.exp2(randn(batch) * SCALE_STD), one)
            g_inv = g_inv @ _scale2d(1 / s, 1 / s, batch, dev)
        p_rot = 1 - torch.sqrt((1 - p).clamp(0, 1))  # two draws: overall probability p
        if "rotate" in self.ops:
            theta = torch.where(fires(p_rot), (rand(batch) * 2 - 1) * math.pi * ROTATE_MAX, zero)
            g_inv = g_inv @ _rotate2d(-theta, batch, dev)  # before anisotropic scaling
        if "aniso" in self.ops:
            s = torch.where(fires(p), torch.exp2(randn(batch) * ANISO_STD), one)
            g_inv = g_inv @ _scale2d(1 / s, s, batch, dev)
        if "rotate" in self.ops:
            theta = torch.where(fires(p_rot), (rand(batch) * 2 - 1) * math.pi * ROTATE_MAX, zero)
            g_inv = g_inv @ _rotate2d(-theta, batch, dev)  # after anisotropic scaling
        if "xfrac" in self.ops:
            t = randn(batch, 2) * XFRAC_STD
            t = torch.where(fires(p)[:, None], t, torch.zeros_like(t))
            g_inv = g_inv @ _translate2d(-t[:, 0] * width, -t[:, 1] * height, batch, dev)
        identity = (g_inv - torch.eye(3, device=dev)).abs().flatten(1).amax(dim=1) < 1e-6
        if bool(identity.all()):
            return images
        warped = (warp_antialiased if self.antialias else warp_bilinear)(images, g_inv)
        # the filter's round trip is the identity up to rounding: keep those samples exact
        return torch.where(identity[:, None, None, None], images, warped)

    def _color(self, images: torch.Tensor, generator) -> torch.Tensor:
        batch, channels = images.shape[:2]
        dev, p = images.device, self.p.to(images.device)
        if channels not in (1, 3):
            raise ValueError(f"ADA color augmentations need 1 or 3 channels, got {channels}")
        draws = _Draws(batch, generator, dev)
        rand, randn, fires = draws.rand, draws.randn, draws.fires
        zero, one = torch.zeros(batch, device=dev), torch.ones(batch, device=dev)
        eye4 = torch.eye(4, device=dev)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)
        luma_outer = torch.outer(luma, luma)
        c = eye4.expand(batch, 4, 4)
        if "brightness" in self.ops:
            b = torch.where(fires(p), randn(batch) * BRIGHTNESS_STD, zero)
            c = _matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], batch, dev) @ c
        if "contrast" in self.ops:
            k = torch.where(fires(p), torch.exp2(randn(batch) * CONTRAST_STD), one)
            c = _matrix([[k, 0, 0, 0], [0, k, 0, 0], [0, 0, k, 0], [0, 0, 0, 1]], batch, dev) @ c
        if "lumaflip" in self.ops:
            flip = torch.where(fires(p), torch.floor(rand(batch) * 2), zero)
            c = (eye4 - 2 * luma_outer * flip[:, None, None]) @ c
        if "hue" in self.ops and channels == 3:
            theta = torch.where(fires(p), (rand(batch) * 2 - 1) * math.pi * HUE_MAX, zero)
            c = _rotate3d(luma, theta, batch, dev) @ c
        if "saturation" in self.ops and channels == 3:
            s = torch.where(fires(p), torch.exp2(randn(batch) * SATURATION_STD), one)
            c = (luma_outer + (eye4 - luma_outer) * s[:, None, None]) @ c
        if bool(((c - eye4).abs().flatten(1).amax(dim=1) < 1e-6).all()):
            return images
        flat = images.float().reshape(batch, channels, -1)  # (B, C, H W)
        if channels == 3:  # C[:3, :3] @ flat as (H W, 3) @ (3, 3): a (3, 3) @ (3, H W) bmm
            # is about ten times slower on CPUs
            flat = (flat.transpose(1, 2) @ c[:, :3, :3].transpose(1, 2)).transpose(1, 2)
            flat = flat + c[:, :3, 3:]
        else:  # grayscale: average the rows of C (as the reference code)
            c = c[:, :3, :].mean(dim=1, keepdim=True)  # (B, 1, 4)
            flat = flat * c[:, :, :3].sum(dim=2, keepdim=True) + c[:, :, 3:]
        return flat.reshape(images.shape).to(images.dtype)

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if not bool(self.p > 0):
            return images
        # float32 under mixed-precision autocast too: the transforms' matrix products and the
        # warp's filters in bf16/fp16 would shift pixels by their rounding
        with torch.autocast(images.device.type, enabled=False):
            if self.ops & set(ADA_GROUPS["blit"] + ADA_GROUPS["geom"]):
                images = self._geometric(images, generator)
            if self.ops & set(ADA_GROUPS["color"]):
                images = self._color(images, generator)
        return images

    def extra_repr(self) -> str:
        return f"ops={sorted(self.ops)}, p={float(self.p):.4f}, antialias={self.antialias}"


class AdaptiveAugment(nn.Module):
    """ADA: an :class:`AugmentPipe` whose p follows the overfitting heuristic r_t.

    Use: ``aug = AdaptiveAugment()``; in every D step ``logits = D(aug(reals))`` (and
    ``D(aug(fakes))``), then ``aug.observe(logits_real)``; in G steps ``D(aug(fakes))``. Log
    ``aug.p`` and ``aug.rt``. Under DDP each step's sign sums are all-reduced (identical on every rank).
    """

    def __init__(
        self,
        ops: str = DEFAULT_OPS,
        target: float = 0.6,
        interval: int = 4,
        speed_kimg: float = 500.0,
        p: float = 0.0,
        key: str = "model.augment",
        antialias: bool = True,
    ):
        super().__init__()
        number = isinstance(target, int | float) and not isinstance(target, bool)
        if not (number and 0.0 < target < 1.0):
            raise ConfigError(f"{key}.target", target, "a number in (0, 1) (the paper: 0.6)")
        if not (isinstance(interval, int) and not isinstance(interval, bool) and interval > 0):
            raise ConfigError(f"{key}.interval", interval, "an integer >= 1 (the paper: 4)")
        ok = isinstance(speed_kimg, int | float) and not isinstance(speed_kimg, bool)
        if not (ok and speed_kimg > 0):
            raise ConfigError(f"{key}.speed_kimg", speed_kimg, "a number > 0 (the paper: 500)")
        self.pipe = AugmentPipe(ops, p, key, antialias)
        self.target, self.interval, self.speed_kimg = float(target), interval, float(speed_kimg)
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("d_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("rt", torch.zeros(()))  # r_t of the last adjustment

    @property
    def p(self) -> torch.Tensor:
        return self.pipe.p

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.pipe(images, generator)

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> bool:
        """Record D's logits (B,) on augmented reals of one D step; every ``interval`` steps
        adjust p. Returns whether p was adjusted in this call."""
        signs = torch.sign(real_logits.detach().float())
        stats = torch.stack([signs.sum().double(), torch.tensor(signs.numel()).to(signs).double()])
        if dist.is_available() and dist.is_initialized():
            # every step, so the running sums are the same on every rank (a trainer may copy
            # rank 0's buffers to all ranks at any step)
            dist.all_reduce(stats)
        self.sign_sum += stats[0].to(self.sign_sum)
        self.sign_count += stats[1].to(self.sign_count)
        self.d_steps += 1
        if int(self.d_steps) % self.interval:
            return False
        self.adjust()
        return True

    @torch.no_grad()
    def adjust(self) -> None:
        """p <- clip(p + sign(r_t - target) * n / (speed_kimg * 1000), 0, 1); reset the sums
        (already summed over processes by :meth:`observe`)."""
        total, count = self.sign_sum, self.sign_count
        if count > 0:
            rt = total / count
            step = torch.sign(rt - self.target) * count / (self.speed_kimg * 1000.0)
            self.pipe.p.copy_((self.pipe.p.double() + step).clamp(0.0, 1.0))
            self.rt.copy_(rt)
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def extra_repr(self) -> str:
        return f"target={self.target}, interval={self.interval}, speed_kimg={self.speed_kimg}"
