"""Sample from a checkpoint: ``python -m genlab.sample ckpt_path=... num_samples=64 output=grid.png``.

Modes: ``sample`` (prior draws, optional truncation/temperature), ``interpolate`` (slerp paths
between latents, one per row), ``reconstruct`` (VAE: real test images above their
reconstructions), ``traverse`` (latent traversals: one grid per latent direction, see
:func:`traverse`). Output: a PNG grid or an ``.npz`` of uint8 images (N, H, W, C).
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
MODES = ("sample", "interpolate", "reconstruct", "traverse")


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
    options = sample_options(cfg, model)
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
    if cfg.mode == "traverse":
        raise ValueError("mode=traverse writes several grids: use traverse()")
    if not model.supports_reconstruction:
        raise ConfigError("mode", cfg.mode, f"sample or interpolate for the {model.family} family")
    real = real_images(cfg.ckpt_path, cfg.num_samples, cfg.get("data"))
    nrow = cfg.nrow or max(1, int(len(real) ** 0.5))
    return torch.cat([real, model.reconstruct(real).cpu()]), nrow


def sample_options(cfg: DictConfig, model) -> dict[str, Any]:
    """The sampling options (truncation, temperature, use_ema) of ``cfg`` this family takes."""
    temperature = None if cfg.temperature == 1.0 else cfg.temperature
    requested = {"truncation": cfg.truncation, "temperature": temperature}
    if not cfg.use_ema:  # the default (true) means "whatever the family does"
        requested["use_ema"] = False
    options = model.check_sample_options(requested)
    if "use_ema" in model.sample_options:
        options.setdefault("use_ema", True)
    return options


def traverse(cfg: DictConfig, model, output: Path) -> list[Path]:
    """``mode=traverse``: walk each latent direction the model offers
    (:meth:`~genlab.models.base.GenerativeModule.latent_traversal`) from ``-traverse.range`` to
    ``+traverse.range`` units in ``traverse.steps`` images around each centre.

    Writes one grid per direction, ``<output stem>_<direction><suffix>`` (rows: the centres,
    columns: the steps), and ``output`` itself, the overview: one row per direction from the
    first centre. ``.npz`` outputs hold uint8 ``images`` (rows * steps, H, W, C) and the walk
    (``offsets``, ``scale``, ``direction``). Returns the written paths, overview first."""
    import numpy as np
    import torch

    from genlab.images import to_uint8

    t = cfg.traverse
    for key, value, low in (("steps", t.steps, 2), ("rows", t.rows, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"traverse.{key}", value, f"an integer >= {low}")
    if isinstance(t.range, bool) or not isinstance(t.range, int | float) or t.range <= 0:
        raise ConfigError("traverse.range", t.range, "a number > 0")
    if output.suffix not in (".png", ".npz"):
        raise ConfigError("output", str(output), "a path ending in .png or .npz")
    options = sample_options(cfg, model)
    images = None
    if t.center == "data":
        images = real_images(cfg.ckpt_path, t.rows, cfg.get("data"))
    walk = model.latent_traversal(
        t.directions,
        center=t.center,
        num_centers=t.rows,
        images=images,
        generator=torch.Generator().manual_seed(cfg.seed),
        num_samples=t.num_samples,
        **options,
    )
    if walk is None:
        allowed = "sample or reconstruct" if model.supports_reconstruction else "sample"
        raise ConfigError(
            "mode", cfg.mode, f"{allowed} for the {model.family} family (no latents to traverse)"
        )
    grids = walk.images(float(t.range), t.steps)  # (K, R, S, C, H, W)
    offsets = torch.linspace(-float(t.range), float(t.range), t.steps)
    written = []
    for k, name in enumerate(walk.names):
        path = output.with_name(f"{output.stem}_{direction_slug(name)}{output.suffix}")
        grid = grids[k].flatten(0, 1)
        if output.suffix == ".npz":
            output.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(
                path,
                images=to_uint8(grid).permute(0, 2, 3, 1).numpy(),
                offsets=offsets.numpy(),
                scale=walk.scales[k].numpy(),
                direction=walk.directions[k].numpy(),
            )
        else:
            write_images(grid, path, t.steps)
        explained = "" if walk.explained is None else f", {walk.explained[k]:.1%} of the variance"
        log.info(f"{walk.space} {name} (step unit {walk.scales[k]:.3g}{explained}): {path}")
        written.append(path)
    write_images(grids[:, 0].flatten(0, 1), output, t.steps)
    return [output, *written]


def direction_slug(name: str) -> str:
    """File-name part of a direction's name: ``z[3]`` -> ``z3``, ``PC1`` -> ``pc1``."""
    return "".join(c for c in name.lower() if c.isalnum())


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
    if cfg.mode == "traverse":
        written = traverse(cfg, model, output)
        log.info(f"Wrote {len(written) - 1} traversal grids and the overview {output}")
        print(output)
        return
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
