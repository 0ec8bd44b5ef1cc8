"""ADA's geometric warp: the reference's anti-aliased pipeline (genlab's default) against the
plain bilinear warp genlab used before, on one fixed batch at p = 0.2, 0.5, 0.8.

Usage: python benchmarks/ada_antialias.py [--batch 64] [--size 32] [--device cpu] [--repeats 3]

The batch: ``--batch`` random images with no content above 0.4 cycles/px (seed 0, per-image std
0.4, mean 0.1), augmented with ``blit,geom`` by the same seeded draws in both warps (the draws
do not depend on the warp). Per p it prints, for each warp, over the whole batch:

* ``std``: mean per-image std after / before (a blur lowers it; the rotations, scalings and
  translations themselves keep it);
* ``fine``: power in 0.25..0.4 cycles/px after / before (15 % border cropped);
* ``mean``: mean pixel value after minus before;
* ``ms``: forward time of one call;
and ``|aa - bilinear|``: the mean absolute difference between the two warps' outputs over the
samples that were augmented, relative to the images' std.
"""

from __future__ import annotations

import argparse
import time

import torch

from genlab.augment import AugmentPipe


def smooth_batch(batch: int, size: int) -> torch.Tensor:
    fy, fx = torch.fft.fftfreq(size)[:, None], torch.fft.rfftfreq(size)[None]
    noise = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = torch.fft.irfft2(torch.fft.rfft2(noise) * ((fx**2 + fy**2).sqrt() < 0.4), s=(size, size))
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    return x / x.std(dim=(1, 2, 3), keepdim=True) * 0.4 + 0.1


def fine_power(x: torch.Tensor) -> float:
    border = x.shape[-1] * 15 // 100
    x = x[..., border : x.shape[-2] - border, border : x.shape[-1] - border]
    fy = torch.fft.fftfreq(x.shape[-2], device=x.device)[:, None]
    fx = torch.fft.rfftfreq(x.shape[-1], device=x.device)[None]
    radius = (fx**2 + fy**2).sqrt()
    band = (radius > 0.25) & (radius < 0.4)
    return (torch.fft.rfft2(x).abs() ** 2)[..., band].mean().item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x = smooth_batch(args.batch, args.size).to(args.device)
    std0, fine0 = x.std(dim=(1, 2, 3)).mean().item(), fine_power(x)
    print(f"batch {tuple(x.shape)} on {args.device}, ops blit,geom")
    for p in (0.2, 0.5, 0.8):
        outs = {}
        line = [f"p={p}:"]
        for antialias in (True, False):
            pipe = AugmentPipe("blit,geom", p=p, antialias=antialias)
            out = pipe(x, torch.Generator().manual_seed(1))
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.repeats):
                pipe(x, torch.Generator().manual_seed(1))
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            ms = (time.perf_counter() - start) / args.repeats * 1000
            outs[antialias] = out
            name = "antialiased" if antialias else "bilinear"
            line.append(
                f"{name}: std {out.std(dim=(1, 2, 3)).mean().item() / std0:.3f}"
                f" fine {fine_power(out) / fine0:.3f}"
                f" mean {out.mean().item() - x.mean().item():+.4f} ms {ms:.0f};"
            )
        moved = (outs[False] - x).flatten(1).abs().amax(dim=1) > 1e-5
        diff = (outs[True] - outs[False])[moved].abs().mean().item() / std0
        line.append(f"|aa - bilinear| {diff:.3f} of the std ({int(moved.sum())} augmented)")
        print(" ".join(line))


if __name__ == "__main__":
    main()
