"""Sample from a checkpoint: ``python -m genlab.sample ckpt_path=... num_samples=64 output=grid.png``.

Modes: ``sample`` (prior draws, optional truncation/temperature), ``interpolate`` (slerp paths
between latents, one per row), ``reconstruct`` (VAE: real test images above their
reconstructions). Output: a PNG grid or an ``.npz`` of uint8 images (N, H, W, C).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torchvision.utils import save_image

from genlab.utils.checkpoints import build_model_from_checkpoint, load_checkpoint
from genlab.utils.cli import run_hydra_cli
from genlab.utils.errors import ConfigError
from genlab.utils.run import exit_on_config_error

log = logging.getLogger(__name__)
MODES = ("sample", "interpolate", "reconstruct")


def truncated_normal(n: int, dim: int, truncation: float | None, generator: torch.Generator):
    """z (n, dim) ~ N(0, I), entries with |z| > truncation resampled until inside."""
    z = torch.randn(n, dim, generator=generator)
    if truncation is None:
        return z
    if truncation <= 0:
        raise ConfigError("truncation", truncation, "null or a number > 0")
    while (outside := z.abs() > truncation).any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
    return z


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows a, b (R, D) at fractions t (S,) -> (R, S, D)."""
    a_n, b_n = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
    t = t[None, :, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]


def real_images(ckpt_path: str, num_images: int) -> torch.Tensor:
    """The first test images of the dataset the checkpoint was trained on, in [0, 1]."""
    run_config = load_checkpoint(ckpt_path)["genlab"].get("run_config") or {}
    if "data" not in run_config:
        raise ConfigError("mode", "reconstruct", "a checkpoint that records its data config")
    datamodule = hydra.utils.instantiate(run_config["data"])
    return datamodule.images("test", max_images=num_images).float() / 255.0


def make_images(cfg: DictConfig, model) -> tuple[torch.Tensor, int]:
    """The images (N, C, H, W) in [0, 1] that ``cfg.mode`` asks for, and the grid row length."""
    gen = torch.Generator().manual_seed(cfg.seed)
    dim = model.config.latent_dim
    ema = {"use_ema": cfg.use_ema} if model.family == "gan" else {}
    if cfg.mode == "sample":
        z = truncated_normal(cfg.num_samples, dim, cfg.truncation, gen) * cfg.temperature
        return model.generate(len(z), z=z, **ema), cfg.nrow or max(1, int(len(z) ** 0.5))
    if cfg.mode == "interpolate":
        ends = truncated_normal(2 * cfg.rows, dim, cfg.truncation, gen) * cfg.temperature
        z = slerp(ends[: cfg.rows], ends[cfg.rows :], torch.linspace(0, 1, cfg.steps))
        return model.generate(cfg.rows * cfg.steps, z=z.flatten(0, 1), **ema), cfg.steps
    if not hasattr(model, "reconstruct"):
        raise ConfigError(
            "mode", cfg.mode, f"sample or interpolate for a {model.family} checkpoint"
        )
    real = real_images(cfg.ckpt_path, cfg.num_samples)
    nrow = cfg.nrow or max(1, int(len(real) ** 0.5))
    return torch.cat([real, model.reconstruct(real).cpu()]), nrow


def write_images(images: torch.Tensor, output: Path, nrow: int) -> None:
    """PNG grid, or npz of uint8 (N, H, W, C) under ``images``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npz":
        uint8 = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        np.savez_compressed(output, images=uint8)
    elif output.suffix == ".png":
        save_image(images, output, nrow=nrow, padding=2)
    else:
        raise ConfigError("output", str(output), "a path ending in .png or .npz")


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
@exit_on_config_error
def hydra_main(cfg: DictConfig) -> None:
    """The sampling task (Hydra-decorated); `main` is the command-line entry."""
    if cfg.mode not in MODES:
        raise ConfigError("mode", cfg.mode, MODES)
    output = Path(hydra.utils.to_absolute_path(cfg.output))
    model = build_model_from_checkpoint(hydra.utils.to_absolute_path(cfg.ckpt_path))
    model = model.to(cfg.device)
    images, nrow = make_images(cfg, model)
    write_images(images.cpu(), output, nrow)
    log.info(f"Wrote {len(images)} images ({cfg.mode}) to {output}")
    print(output)


def main() -> None:
    """``python -m genlab.sample`` / ``genlab-sample``: bad input (config values, unknown keys,
    group options) exits 2 with one line, as in ``genlab.train`` (genlab.utils.cli)."""
    run_hydra_cli(hydra_main, config_name="sample")


if __name__ == "__main__":
    main()
