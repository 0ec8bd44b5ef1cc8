"""Cost of the divergence guard's per-step check vs one GAN training step (CPU).

Usage: python benchmarks/bench_divergence_guard.py [--repeats 20]
Times (1) the guard's gradient-norm check over the default DCGAN's D and G gradients and
(2) one full manual-optimisation GAN training step on a 64-image batch, both on one CPU thread.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from genlab.callbacks.divergence import DivergenceGuard
from genlab.models import GAN


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = GAN(image_size=28, channels=1, num_classes=10)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=2e-4)
    real = torch.rand(64, 1, 28, 28) * 2 - 1

    def step():
        fake = model.generator(torch.randn(64, 100), None).detach()
        loss_d = model.loss_fns.d_loss(
            model.discriminator(real, None), model.discriminator(fake, None)
        )
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = model.loss_fns.g_loss(
            model.discriminator(model.generator(torch.randn(64, 100), None), None)
        )
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    step()
    start = time.perf_counter()
    for _ in range(args.repeats):
        step()
    step_s = (time.perf_counter() - start) / args.repeats

    guard = DivergenceGuard()
    trainer = SimpleNamespace(
        precision_plugin=SimpleNamespace(scaler=None), optimizers=[opt_d, opt_g]
    )
    start = time.perf_counter()
    for _ in range(args.repeats):
        guard.on_before_optimizer_step(trainer, model, opt_d)
        guard.on_before_optimizer_step(trainer, model, opt_g)
    check_s = (time.perf_counter() - start) / args.repeats
    params = sum(p.numel() for p in model.parameters())
    print(f"GAN step (batch 64, {params / 1e6:.2f}M params, 1 thread): {step_s * 1e3:.1f} ms")
    print(
        f"guard checks per step (D + G):                   {check_s * 1e3:.2f} ms "
        f"({100 * check_s / step_s:.1f}%)"
    )


if __name__ == "__main__":
    main()
