"""Typed configuration of the toy diffusion family (every key of ``conf/model/toy_diffusion.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.checks.errors import ConfigError

BETA_SCHEDULES = ("linear", "cosine")


def _int_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class ToyDiffusionConfig:
    """A small DDPM (Ho et al. 2020): epsilon prediction with a U-Net, ancestral sampling.

    Attributes:
        image_size: side of the square images (from ``${data.image_size}``); a multiple of 4
            (the U-Net halves the resolution twice).
        channels: image channels, 1 or 3 (from ``${data.channels}``).
        timesteps: T, the number of noising steps; training draws t uniformly from 0..T-1 and
            sampling runs all T steps back.
        beta_schedule: ``linear`` (Ho et al. 2020) or ``cosine`` (Nichol & Dhariwal 2021).
        beta_start: first beta of the linear schedule, given for T = 1000 and scaled by
            1000 / T (so a short schedule still ends near pure noise).
        beta_end: last beta of the linear schedule (for T = 1000, scaled the same way).
        cosine_s: offset s of the cosine schedule (keeps the first betas from being ~0).
        base_channels: width of the U-Net's full-resolution level (doubled at 1/2 and 1/4).
        time_dim: size of the sinusoidal timestep embedding fed to every residual block.
        optimizer: ``{_target_: torch.optim.X, lr: .., ...}``, built by the model.
    """

    image_size: int
    channels: int
    timesteps: int = 50
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    cosine_s: float = 0.008
    base_channels: int = 16
    time_dim: int = 32
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.Adam", "lr": 2e-3}
    )

    def __post_init__(self) -> None:
        size = self.image_size
        if not (_int_at_least(size, 4) and size % 4 == 0):
            raise ConfigError(
                "model.image_size", size, "a multiple of 4 (the U-Net halves it twice)"
            )
        if self.channels not in (1, 3):
            raise ConfigError("model.channels", self.channels, "1 or 3")
        if not _int_at_least(self.timesteps, 2):
            raise ConfigError("model.timesteps", self.timesteps, "an integer >= 2")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ConfigError("model.beta_schedule", self.beta_schedule, list(BETA_SCHEDULES))
        scale = 1000 / self.timesteps
        if not (_number(self.beta_start) and self.beta_start > 0):
            raise ConfigError("model.beta_start", self.beta_start, "a number > 0")
        ok = _number(self.beta_end) and self.beta_start <= self.beta_end
        if ok and self.beta_schedule == "linear":
            ok = self.beta_end < 1 / scale  # the scaled betas must stay below 1
        if not ok:
            raise ConfigError(
                "model.beta_end",
                self.beta_end,
                f"a number in [beta_start, T/1000 = {1 / scale:g}) for the linear schedule, "
                "whose betas are scaled by 1000/T (or model.beta_schedule=cosine)",
            )
        if not (_number(self.cosine_s) and self.cosine_s >= 0):
            raise ConfigError("model.cosine_s", self.cosine_s, "a number >= 0")
        for key in ("base_channels", "time_dim"):
            value = getattr(self, key)
            if not (_int_at_least(value, 2) and value % 2 == 0):
                raise ConfigError(f"model.{key}", value, "an even integer >= 2")
        spec = self.optimizer
        if not (isinstance(spec, dict) and "_target_" in spec):
            raise ConfigError("model.optimizer", spec, "a dict with _target_")
        lr = spec.get("lr")
        if not (_number(lr) and lr > 0):
            raise ConfigError("model.optimizer.lr", lr, "a number > 0")
