"""Sample from a checkpoint: ``python -m genlab.sample ckpt_path=... num_samples=64 output=grid.png``.

Modes: ``sample`` (prior draws, optional truncation/temperature), ``interpolate`` (slerp paths
between latents, one per row), ``reconstruct`` (VAE: real test images above their
reconstructions). Output: a PNG grid or an ``.npz`` of uint8 images (N, H, W, C).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from genlab.checks.errors import ConfigError
from genlab.cli.entry import run_hydra_cli, user_errors_exit

if TYPE_CHECKING:  # torch loads inside the functions: config errors answer fast
    import torch

log = logging.getLogger(__name__)
MODES = ("sample", "interpolate", "reconstruct")


def real_images(ckpt_path: str, num_images: int, data: Any = None) -> torch.Tensor:
    """The first test images (N, C, H, W) in [0, 1] of the dataset the checkpoint was trained
    on (rebuilt by :func:`genlab.data.datamodule_from_checkpoint`: nothing in the file runs).
    Where the data lives and the worker count come from ``data`` (the user's ``data.*``: ``path``,
    ``data_dir``, ``num_workers``), never from the checkpoint."""
    from genlab.data.registry import datamodule_from_checkpoint
    from genlab.images import to_unit
    from genlab.runs.checkpoints import load_checkpoint

    if isinstance(data, DictConfig):
        data = OmegaConf.to_container(data, resolve=True)
    datamodule = datamodule_from_checkpoint(load_checkpoint(ckpt_path), data or {})
    return to_unit(datamodule.images("test", max_images=num_images))


def make_images(cfg: DictConfig, model) -> tuple[torch.Tensor, int]:
    """The images (N, C, H, W) in [0, 1] that ``cfg.mode`` asks for, and the grid row length.

    Uses only the model protocol (:class:`genlab.models.base.GenerativeModule`): options the
    family does not take (``model.sample_options``) are refused when set."""
    import torch

    from genlab.models.latents import slerp

    gen = torch.Generator().manual_seed(cfg.seed)
    temperature = None if cfg.temperature == 1.0 else cfg.temperature
    requested = {"truncation": cfg.truncation, "temperature": temperature}
    if not cfg.use_ema:  # the default (true) means "whatever the family does"
        requested["use_ema"] = False
    options = model.check_sample_options(requested)
    if "use_ema" in model.sample_options:
        options.setdefault("use_ema", True)
    if cfg.mode == "sample":
        images = model.generate(cfg.num_samples, generator=gen, **options)
        return images, cfg.nrow or max(1, int(cfg.num_samples**0.5))
    if cfg.mode == "interpolate":
        ends = model.latents(2 * cfg.rows, gen, **options)
        if ends is None:
            raise ConfigError(
                "mode", cfg.mode, f"sample for the {model.family} family (no latents)"
            )
        path = slerp(
            ends[: cfg.rows].flatten(1),
            ends[cfg.rows :].flatten(1),
            torch.linspace(0, 1, cfg.steps),
        )
        z = path.flatten(0, 1).view(cfg.rows * cfg.steps, *ends.shape[1:])
        return model.generate_from_latents(z, **options), cfg.steps
    if not model.supports_reconstruction:
        raise ConfigError("mode", cfg.mode, f"sample or interpolate for the {model.family} family")
    real = real_images(cfg.ckpt_path, cfg.num_samples, cfg.get("data"))
    nrow = cfg.nrow or max(1, int(len(real) ** 0.5))
    return torch.cat([real, model.reconstruct(real).cpu()]), nrow


def write_images(images: torch.Tensor, output: Path, nrow: int) -> None:
    """PNG grid, or npz of uint8 (N, H, W, C) under ``images``."""
    import numpy as np
    from torchvision.utils import save_image

    from genlab.images import to_uint8

    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npz":
        uint8 = to_uint8(images).permute(0, 2, 3, 1).numpy()
        np.savez_compressed(output, images=uint8)
    elif output.suffix == ".png":
        save_image(images, output, nrow=nrow, padding=2)
    else:
        raise ConfigError("output", str(output), "a path ending in .png or .npz")


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
@user_errors_exit("sample")
def hydra_main(cfg: DictConfig) -> None:
    """The sampling task (Hydra-decorated); `main` is the command-line entry."""
    from genlab.models.registry import build_model_from_checkpoint

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
    group options) exits 2 with one line, as in ``genlab.train`` (genlab.cli.entry)."""
    run_hydra_cli(hydra_main, config_name="sample")


if __name__ == "__main__":
    main()
