"""The exponential moving average of G: a constant decay or stylegan2-ada's half-life in images."""

from __future__ import annotations

import torch


class LerpEMA:
    """``AveragedModel``'s ``multi_avg_fn``: ``ema <- beta * ema + (1 - beta) * model`` with the
    ``beta`` set before each update (a constant ``ema_decay`` or a per-step ``ema_kimg``
    beta). For a constant beta the same arithmetic as ``get_ema_multi_avg_fn(beta)``."""

    def __init__(self, beta: float = 0.0):
        self.beta = beta

    @torch.no_grad()
    def __call__(self, ema_params, model_params, _num_averaged) -> None:
        beta = self.beta
        if torch.is_floating_point(ema_params[0]) or torch.is_complex(ema_params[0]):
            torch._foreach_lerp_(ema_params, model_params, 1 - beta)
        else:
            for p_ema, p_model in zip(ema_params, model_params, strict=True):
                p_ema.copy_(p_ema * beta + p_model * (1 - beta))


def ema_beta(
    ema_kimg: float, ema_rampup: float | None, images_seen: int, step_images: int
) -> float:
    """stylegan2-ada-pytorch's EMA decay for a step of ``step_images`` images after
    ``images_seen`` (training/training_loop.py): ``ema_nimg = ema_kimg * 1000``, at most
    ``images_seen * ema_rampup`` with a ramp-up, ``beta = 0.5 ** (step_images / ema_nimg)``."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * ema_rampup)
    return 0.5 ** (step_images / max(ema_nimg, 1e-8))
