"""Latent traversals (``genlab.sample mode=traverse``): what one direction of a latent space does.

A family describes its traversable space with a :class:`LatentTraversal` (returned by
:meth:`genlab.models.base.GenerativeModule.latent_traversal`): start points (``centers``),
orthonormal ``directions``, the length of one unit step along each (``scales``) and a
``decode`` function. The CLI walks every direction from every centre through
``span * scale`` on either side and decodes, with no family names in it.

Two kinds of directions:

* :func:`coordinate_traversal` (VAEs): the coordinate axes of z, unit = the prior's standard
  deviation (1); centres are the prior mean, prior draws, or posterior means of real images.
* :func:`principal_directions` (GANs; the base class's default for any family with
  ``latents``): GANSpace (Härkönen et al. 2020): the principal components of many sampled
  latents (z, or StyleGAN2's w = mapping(z)), ordered by variance, unit = the component's
  standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from genlab.checks.errors import ConfigError

CENTERS = ("prior", "samples", "data")  # sample.yaml's traverse.center

#: codes (M, D), the centre index of each code (M,) -> images (M, C, H, W) in [0, 1]
Decode = Callable[[Tensor, Tensor], Tensor]


@dataclass
class LatentTraversal:
    """A latent space to walk: ``centers + t * scales[k] * directions[k]``.

    Attributes:
        space: name of the space (``"z"``, ``"w"``), shown in labels.
        centers: (R, D) start points, one grid row each.
        directions: (K, D) orthonormal rows, the walked directions.
        scales: (K,) length of one unit step along each direction (its standard deviation
            under the prior or the sampled latents).
        names: K labels (``"z[3]"``, ``"PC1"``).
        explained: (K,) fraction of the sampled latents' variance along each direction, or
            None (coordinate axes).
        decode: :data:`Decode`, codes -> images.
    """

    space: str
    centers: Tensor
    directions: Tensor
    scales: Tensor
    names: list[str]
    explained: Tensor | None
    decode: Decode

    def codes(self, span: float, steps: int) -> Tensor:
        """The walk (K, R, S, D): for direction k, centre r and t_s = linspace(-span, span,
        steps), ``centers[r] + t_s * scales[k] * directions[k]``."""
        t = torch.linspace(-span, span, steps, dtype=self.centers.dtype)
        offsets = t[None, :, None] * (self.scales[:, None, None] * self.directions[:, None, :])
        return self.centers[None, :, None, :] + offsets[:, None]  # (K, R, S, D)

    @torch.no_grad()
    def images(self, span: float, steps: int, batch_size: int = 256) -> Tensor:
        """Decoded walk (K, R, S, C, H, W) in [0, 1], on the CPU."""
        codes = self.codes(span, steps)
        k, r, s, d = codes.shape
        flat = codes.reshape(-1, d)
        rows = torch.arange(r)[None, :, None].expand(k, r, s).reshape(-1)
        out = [
            self.decode(flat[i : i + batch_size], rows[i : i + batch_size]).cpu()
            for i in range(0, len(flat), batch_size)
        ]
        images = torch.cat(out)
        return images.view(k, r, s, *images.shape[1:])


def principal_directions(samples: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """PCA of ``samples`` (N, D): ``(mean (D,), directions (k, D), stds (k,), explained (k,))``.

    Directions are orthonormal, ordered by decreasing variance (``stds``: the standard
    deviation of the samples along each; ``explained``: its fraction of the total variance),
    each signed so that its largest-magnitude entry is positive (the same samples give the same
    directions). Computed in float64; returned in ``samples``' dtype."""
    x = samples.double().reshape(samples.shape[0], -1)
    n, d = x.shape
    if not 1 <= k <= min(n - 1, d):
        raise ConfigError("traverse.directions", k, f"an integer in [1, {min(n - 1, d)}]")
    mean = x.mean(0)
    _, sv, vh = torch.linalg.svd(x - mean, full_matrices=False)
    variance = sv**2 / (n - 1)
    directions = vh[:k]
    signs = directions.gather(1, directions.abs().argmax(1, keepdim=True)).sign()
    directions = directions * signs
    dtype = samples.dtype
    return (
        mean.to(dtype),
        directions.to(dtype),
        variance[:k].sqrt().to(dtype),
        (variance[:k] / variance.sum()).to(dtype),
    )


def check_directions(num_directions: int, dim: int, family: str) -> int:
    """``num_directions`` if in [1, dim], else a ConfigError naming ``traverse.directions``."""
    if isinstance(num_directions, bool) or not isinstance(num_directions, int):
        raise ConfigError("traverse.directions", num_directions, "an integer >= 1")
    if not 1 <= num_directions <= dim:
        raise ConfigError(
            "traverse.directions",
            num_directions,
            f"an integer in [1, {dim}] (the {family} family's latent has {dim} dimensions)",
        )
    return num_directions


def check_center(center: str) -> None:
    if center not in CENTERS:
        raise ConfigError("traverse.center", center, list(CENTERS))


def coordinate_traversal(
    model,
    num_directions: int,
    center: str,
    num_centers: int,
    images: Tensor | None,
    generator: torch.Generator | None,
    options: dict,
) -> LatentTraversal | None:
    """The first ``num_directions`` coordinates of a VAE's z (``model.latents`` space), unit
    step 1 (the N(0, I) prior's std). Centres: ``prior`` = ``model.prior_latent_mean()`` (one
    row), ``samples`` = ``num_centers`` prior draws (``options``: truncation, temperature),
    ``data`` = ``model.posterior_latents(images)`` (refused when the model offers none).
    None when ``model.latents`` is None (nothing to traverse)."""
    check_center(center)
    draws = model.latents(max(1, num_centers), generator, **options)
    if draws is None:  # no latent vector (e.g. a stack of noise grids)
        return None
    dim = draws.flatten(1).shape[1]
    num_directions = check_directions(num_directions, dim, model.family)
    if center == "prior":
        centers = model.prior_latent_mean().reshape(1, dim)
    elif center == "samples":
        centers = draws.flatten(1)
    else:
        centers = None if images is None else model.posterior_latents(images)
        if centers is None:
            raise ConfigError(
                "traverse.center",
                "data",
                f"prior or samples (the {model.family} family gives no posterior mean in the "
                "traversed latent space)",
            )
        centers = centers.flatten(1).cpu()
    centers = centers.float()
    shape = draws.shape[1:]

    def decode(codes: Tensor, rows: Tensor) -> Tensor:
        return model.generate_from_latents(codes.view(-1, *shape), **options)

    return LatentTraversal(
        space="z",
        centers=centers,
        directions=torch.eye(dim)[:num_directions],
        scales=torch.ones(num_directions),
        names=[f"z[{i}]" for i in range(num_directions)],
        explained=None,
        decode=decode,
    )


def principal_traversal(
    model,
    num_directions: int,
    center: str,
    num_centers: int,
    images: Tensor | None,
    generator: torch.Generator | None,
    options: dict,
    num_samples: int,
    *,
    sample_codes: Callable[[int, Tensor | None], Tensor] | None = None,
    decode: Decode | None = None,
    labels: Callable[[int], Tensor | None] | None = None,
    space: str = "z",
) -> LatentTraversal:
    """GANSpace directions: the top ``num_directions`` principal components of
    ``num_samples`` sampled codes, unit step = the component's std. Centres: ``prior`` = the
    mean of the sampled codes (one row), ``samples`` = ``num_centers`` fresh sampled codes;
    ``data`` is refused (no encoder).

    Defaults (any family with ``latents``): codes are ``model.latents`` draws, decoded by
    ``model.generate_from_latents``. A family overrides ``sample_codes(n, labels)`` (e.g.
    StyleGAN2's w = mapping(z, labels)), ``decode`` and ``labels(n)`` (class labels of the
    centres of a conditional model, or None)."""
    check_center(center)
    if center == "data":
        raise ConfigError(
            "traverse.center",
            "data",
            f"prior or samples (the {model.family} family has no encoder)",
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
        raise ConfigError("traverse.num_samples", num_samples, "an integer >= 2")
    row_labels = labels(max(1, num_centers)) if labels is not None else None
    if sample_codes is None or decode is None:
        shape = model.latents(1, generator, **options).shape[1:]
    if sample_codes is None:

        def sample_codes(n: int, lab: Tensor | None) -> Tensor:
            return model.latents(n, generator, **options).flatten(1)

    if decode is None:

        def decode(codes: Tensor, rows: Tensor) -> Tensor:
            return model.generate_from_latents(codes.view(-1, *shape), **options)

    sample_labels = labels(num_samples) if labels is not None else None
    samples = sample_codes(num_samples, sample_labels).cpu().float()
    num_directions = check_directions(
        num_directions, min(samples.shape[1], num_samples - 1), model.family
    )
    mean, directions, stds, explained = principal_directions(samples, num_directions)
    if center == "prior":
        centers = mean[None]
        if row_labels is not None:
            row_labels = row_labels[:1]
    else:
        centers = sample_codes(max(1, num_centers), row_labels).cpu().float()

    def decode_rows(codes: Tensor, rows: Tensor) -> Tensor:
        return decode(codes, rows if row_labels is None else row_labels[rows])

    return LatentTraversal(
        space=space,
        centers=centers,
        directions=directions,
        scales=stds,
        names=[f"PC{i + 1}" for i in range(num_directions)],
        explained=explained,
        decode=decode_rows,
    )


def gan_traversal(
    gan,
    num_directions: int,
    center: str,
    num_centers: int,
    images: Tensor | None,
    generator: torch.Generator | None,
    options: dict,
    num_samples: int,
) -> LatentTraversal:
    """GANSpace for :class:`genlab.models.gan.GAN`: PCA of sampled z, or of w = mapping(z)
    for a stylegan2 generator (decoded by its synthesis network with w repeated over every
    layer, constant noise, truncation ``psi`` towards ``w_avg`` when given). A conditional
    GAN's centres each keep one class label (drawn as ``generate`` draws them) along the walk."""
    from genlab.images import signed_to_unit

    use_ema = options.get("use_ema", True)
    net = gan.generator_ema.module if (use_ema and gan.generator_ema) else gan.generator
    labels = None
    if gan.config.conditional:

        def labels(n: int) -> Tensor:
            return gan.random_labels(n, generator).cpu()

    if not gan.style_based:
        z_options = {k: v for k, v in options.items() if k in ("truncation", "temperature")}

        def sample_z(n: int, lab: Tensor | None) -> Tensor:
            return gan.latents(n, generator, **z_options)

        def decode_z(codes: Tensor, lab: Tensor | None) -> Tensor:
            return gan.generate_from_latents(codes, labels=lab, use_ema=use_ema)

        return principal_traversal(
            gan, num_directions, center, num_centers, images, generator, options,
            num_samples, sample_codes=sample_z, decode=decode_z, labels=labels,
        )  # fmt: skip

    psi = options.get("truncation")
    if psi is not None and (not isinstance(psi, int | float) or not 0 < psi <= 1):
        raise ConfigError("truncation", psi, "null or psi in (0, 1] (stylegan2)")

    @torch.no_grad()
    def sample_w(n: int, lab: Tensor | None) -> Tensor:
        z = gan.latents(n, generator, temperature=options.get("temperature")).to(gan.device)
        was_training = net.training
        net.eval()
        w = net.mapping(z, None if lab is None else lab.to(gan.device))
        net.train(was_training)
        return w.float()

    @torch.no_grad()
    def decode_w(codes: Tensor, lab: Tensor | None) -> Tensor:
        w = codes.to(gan.device)
        if psi is not None:
            w = net.mapping.w_avg.to(w.dtype).lerp(w, float(psi))
        was_training = net.training
        net.eval()
        images = net.synthesis(w[:, None].repeat(1, net.num_ws, 1), noise_mode="const")
        net.train(was_training)
        return signed_to_unit(images.clamp(-1, 1)).float()

    return principal_traversal(
        gan, num_directions, center, num_centers, images, generator, options, num_samples,
        sample_codes=sample_w, decode=decode_w, labels=labels, space="w",
    )  # fmt: skip
