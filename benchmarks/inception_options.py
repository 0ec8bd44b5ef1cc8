"""Inception feature images/s per option (batch size, channels_last, oneDNN via TorchScript
freezing), with the max absolute feature difference to the fp32 baseline (an option counts
only when it is <= 1e-5). Used by ``benchmarks/run.py`` (section ``inception``)."""

from __future__ import annotations

import time

import numpy as np
import torch

TOLERANCE = 1e-5


def bundled_images(n: int) -> torch.Tensor:
    """``n`` bundled test images as float (n, 1, 28, 28) in [0, 1] (the nets take any size)."""
    from genlab.data.bundled import bundled_path

    with np.load(bundled_path()) as z:
        return torch.from_numpy(np.array(z["test_images"][:n])).unsqueeze(1).float() / 255.0


def features(fn, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, float]:
    """(features (N, 2048), images/s) of ``fn`` over ``images`` after one warm-up batch."""
    with torch.no_grad():
        fn(images[:batch_size])
        start, out = time.perf_counter(), []
        for i in range(0, len(images), batch_size):
            out.append(fn(images[i : i + batch_size]))
        return torch.cat(out), len(images) / (time.perf_counter() - start)


def fid_helper_options(net) -> dict:
    """Callables (images (B, C, H, W) in [0, 1] -> (B, 2048)) of genlab's FIDInceptionV3."""
    script = net.net

    def channels_last(x):
        x = net.preprocess(x).contiguous(memory_format=torch.channels_last)
        return script(x).reshape(len(x), -1)

    options = {"fp32": net, "channels_last": channels_last}
    try:
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(script.eval()))
        options["oneDNN (jit.freeze + optimize_for_inference)"] = lambda x: frozen(
            net.preprocess(x)
        ).reshape(len(x), -1)
    except Exception:  # noqa: BLE001 - an option this build cannot do is left out
        pass
    return options


def rows(quick: bool, row) -> list[dict]:
    from genlab.metrics.inception import (
        FIDInceptionV3,
        TorchFidelityInceptionV3,
        torch_fidelity_weights_path,
    )

    n = 8 if quick else 64
    batches = [8] if quick else [16, 32, 64]
    images = bundled_images(n)
    nets = {"fid_helper": FIDInceptionV3()}
    out = []
    if torch_fidelity_weights_path().is_file():
        nets["torch_fidelity"] = TorchFidelityInceptionV3()
    else:
        out.append(row("inception", "torch_fidelity", "skipped", "",
                       "weights file absent (never downloaded)"))  # fmt: skip
    for name, net in nets.items():
        reference, base_rate = features(net, images, batches[0])
        out.append(row("inception", f"{name} fp32 batch {batches[0]}", round(base_rate, 2),
                       "img/s", "baseline", f"inception_{name}_img_s"))  # fmt: skip
        options = fid_helper_options(net) if name == "fid_helper" else {"fp32": net}
        best = (base_rate, f"fp32 batch {batches[0]}")
        for label, fn in options.items():
            for batch in batches:
                if label == "fp32" and batch == batches[0]:
                    continue
                feats, rate = features(fn, images, batch)
                diff = float((feats - reference).abs().max())
                ok = diff <= TOLERANCE
                if ok and rate > best[0]:
                    best = (rate, f"{label} batch {batch}")
                out.append(row("inception", f"{name} {label} batch {batch}",
                               round(rate / base_rate, 2), "x fp32",
                               f"{rate:.2f} img/s, max |diff| {diff:.1e}"
                               + ("" if ok else " (> 1e-5: does not count)")))  # fmt: skip
        out.append(row("inception", f"{name} best", round(best[0] / base_rate, 2), "x fp32",
                       best[1], f"inception_{name}_best_speedup"))  # fmt: skip
    return out
