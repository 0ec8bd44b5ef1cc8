"""Write PNG grids of samples from a fixed latent batch (and VAE reconstructions) during training."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from genlab.checks.errors import ConfigError
from genlab.images import to_uint8, to_unit
from genlab.tracking.images import log_image


class SampleGridCallback(pl.Callback):
    """Every ``every_n_epochs`` epochs, save ``samples/epoch=NNN.png`` (and ``samples/last.png``).

    Samples come from ``pl_module.generate`` with a generator seeded by ``seed`` every time, so
    grids are comparable across epochs. For a family that reconstructs (VAE), also
    ``samples/recon_epoch=NNN.png``: a fixed real validation batch (top rows) above its
    reconstructions. Every grid also goes, as a uint8 image at the step, to every logger that
    shows images (TensorBoard's Images tab as ``samples/samples`` and
    ``samples/reconstructions``, wandb).
    """

    def __init__(self, dirpath: str, num_samples: int = 64, every_n_epochs: int = 1, seed: int = 0):
        super().__init__()
        if num_samples < 1:
            raise ConfigError("callbacks.sample_grid.num_samples", num_samples, "an integer >= 1")
        if every_n_epochs < 1:
            raise ConfigError(
                "callbacks.sample_grid.every_n_epochs", every_n_epochs, "an integer >= 1"
            )
        self.dirpath = Path(dirpath)
        self.num_samples, self.every_n_epochs, self.seed = num_samples, every_n_epochs, seed

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs != 0 and not trainer.should_stop:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        fixed = torch.Generator().manual_seed(self.seed)  # the same draws every epoch
        images = pl_module.generate(self.num_samples, generator=fixed)
        self._save(trainer, images, f"epoch={epoch:03d}", "samples")
        if pl_module.supports_reconstruction and trainer.datamodule is not None:
            real = self._real_batch(trainer, pl_module)
            if real is not None:
                both = torch.cat([real, pl_module.reconstruct(real)])
                self._save(trainer, both, f"recon_epoch={epoch:03d}", "reconstructions")

    def _real_batch(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        if not hasattr(trainer.datamodule, "images"):
            return None
        images = trainer.datamodule.images("val", max_images=min(self.num_samples, 32))
        return to_unit(images).to(pl_module.device)

    def _save(self, trainer: pl.Trainer, images: torch.Tensor, stem: str, key: str) -> None:
        nrow = max(1, int(len(images) ** 0.5))
        grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2)
        save_image(grid, self.dirpath / f"{stem}.png")
        save_image(grid, self.dirpath / ("last.png" if key == "samples" else "recon_last.png"))
        grid_uint8 = to_uint8(grid).permute(1, 2, 0).numpy()
        log_image(trainer.loggers, f"samples/{key}", grid_uint8, step=trainer.global_step)
