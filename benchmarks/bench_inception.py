#!/usr/bin/env python
"""Throughput of the Inception feature networks of ``metrics.features=inception`` (images/s).

Feeds ``--images`` bundled 28x28 Fashion-MNIST images (grayscale -> 3 channels, resized to 299)
through the network in batches of ``--batch-size`` after one warm-up batch, and prints the
images per second and the resulting minutes for 10,000 samples plus 10,000 real images.

Usage (repository root)::

    .venv/bin/python benchmarks/bench_inception.py                      # fid_helper
    .venv/bin/python benchmarks/bench_inception.py --net torch_fidelity  # needs its weights file
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from genlab.data.bundled import bundled_path
from genlab.metrics.inception import FIDInceptionV3, TorchFidelityInceptionV3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", default="fid_helper", choices=["fid_helper", "torch_fidelity"])
    p.add_argument("--weights", default=None, help="torch-fidelity weights (default: hub cache)")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with np.load(bundled_path()) as z:
        images = torch.from_numpy(np.array(z["test_images"][: args.images])).unsqueeze(1)
    net = FIDInceptionV3() if args.net == "fid_helper" else TorchFidelityInceptionV3(args.weights)
    with torch.no_grad():
        net(images[: args.batch_size])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(images), args.batch_size):
            net(images[i : i + args.batch_size])
        seconds = time.perf_counter() - start
    rate = len(images) / seconds
    print(json.dumps({
        "net": args.net, "weights_sha256": net.digest, "threads": torch.get_num_threads(),
        "images": len(images),
        "images_per_s": round(rate, 2), "minutes_for_10k_fake_plus_10k_real": round(2e4 / rate / 60, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
