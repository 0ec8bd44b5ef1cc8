"""Evaluate a checkpoint: ``python -m genlab.eval ckpt_path=... [k=1000] [num_test_images=N]``.

The model is rebuilt from the checkpoint alone (``torch.load(weights_only=True)``) and the
datamodule from the run config stored in it (``checkpoint["genlab"]["run_config"]["data"]``,
keys under ``data.*`` override it). Results (flat ``{name: value}``) are printed and written to
``output`` (default ``<checkpoint dir>/eval.json``):

* VAE, on ``split`` (test): ``<split>/elbo`` (one-sample recon + analytic KL), ``<split>/nll``
  (``-log p(x)`` estimated with ``k`` importance samples from q(z|x), Burda et al. 2015,
  log-sum-exp in fp64) with its standard error over images, ``<split>/kl``,
  ``<split>/recon_log_prob`` (E_q log p(x|z)), ``<split>/recon_mse`` (per pixel, posterior-mean
  reconstruction) -- all per image in nats -- and ``<split>/{elbo,nll}_bpd`` in bits/dim. For
  densities on [0, 1] (Gaussian likelihood) bits/dim include the 8-bit dequantisation term
  (``Likelihood.dequantization_nats_per_dim`` = log 255 per dim, pixels being ``i / 255``), i.e.
  they score the probability of the 256 pixel values.
* GAN and VAE: sample-quality metrics ``<split>/{fid,kid,is,precision,recall,...}`` from
  :class:`genlab.metrics.SampleQuality` with the ``metrics.*`` settings (``metrics.num_samples=0``
  skips them).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from genlab.utils.checkpoints import build_model_from_checkpoint, load_checkpoint
from genlab.utils.cli import run_hydra_cli
from genlab.utils.errors import ConfigError
from genlab.utils.run import configure_threads, exit_on_config_error

log = logging.getLogger(__name__)
DEVICES = ("cpu", "cuda", "auto")


def _positive_int(cfg: DictConfig, key: str, allow_none: bool = False) -> int | None:
    value = cfg.get(key)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, value, "an integer >= 1" + (" or null" if allow_none else ""))
    return value


def resolve_device(name: str) -> torch.device:
    """``cpu`` | ``cuda`` | ``auto`` (cuda when available) -> torch.device."""
    if name not in DEVICES:
        raise ConfigError("device", name, list(DEVICES))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "cpu or auto (no CUDA device is available)")
    return torch.device(name)


def build_datamodule(checkpoint: dict[str, Any], overrides: dict[str, Any] | None = None):
    """The datamodule the checkpoint was trained on, from its stored run config.

    ``overrides`` (e.g. ``{"data_dir": ...}``; ``None`` values are ignored) replace keys of it.
    """
    run_config = checkpoint["genlab"].get("run_config") or {}
    if "data" not in run_config:
        raise ConfigError("ckpt_path", "(no data config)", "a checkpoint written by genlab.train")
    data_cfg = dict(run_config["data"])
    data_cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return hydra.utils.instantiate(data_cfg)


def iterate_images(datamodule, split: str, num_images: int | None, batch_size: int):
    """Yield float batches (B, C, H, W) in [0, 1] of the first ``num_images`` of ``split``
    (eval splits of binarised data come with their fixed binarisation)."""
    dataset = datamodule.dataset(split)
    total = len(dataset) if num_images is None else min(num_images, len(dataset))
    for start in range(0, total, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, total))]
        images = torch.stack([torch.as_tensor(im) for im, _ in items])
        if images.dtype == torch.uint8:
            yield images.float() / 255.0
        else:
            yield images.float()


@torch.no_grad()
def vae_likelihood(
    model, batches, k: int, k_batch: int, device: torch.device, prefix: str = "test/"
) -> dict[str, float]:
    """ELBO, importance-sampled NLL, KL, reconstruction terms over ``batches`` (per image means).

    ``batches`` yields images (B, C, H, W) in [0, 1]; ``model`` is a :class:`genlab.models.VAE`.
    Sums run in fp64. Bits/dim: ``(nats + D * dequantization_nats_per_dim) / (D * ln 2)``.
    """
    sums = {"elbo": 0.0, "nll": 0.0, "nll_sq": 0.0, "kl": 0.0, "recon": 0.0, "mse": 0.0}
    count = 0
    for x in batches:
        x = x.to(device)
        terms = model.elbo_terms(x)
        log_px = model.iwae_bound(x, k, chunk_size=k_batch).double()
        recon_mean = model.likelihood.mean(model.decode(model.encode(x)[0])).float()
        sums["elbo"] += (terms["recon"] - terms["kl"]).double().sum().item()
        sums["nll"] += (-log_px).sum().item()
        sums["nll_sq"] += log_px.pow(2).sum().item()
        sums["kl"] += terms["kl"].double().sum().item()
        sums["recon"] += terms["recon"].double().sum().item()
        sums["mse"] += (recon_mean - x).pow(2).flatten(1).mean(1).double().sum().item()
        count += x.shape[0]
    if count == 0:
        raise ConfigError("num_test_images", 0, "an integer >= 1 (the split is empty)")
    mean = {name: value / count for name, value in sums.items()}
    nll_var = max(mean["nll_sq"] - mean["nll"] ** 2, 0.0)
    dims = model.data_dims
    deq = model.likelihood.dequantization_nats_per_dim

    def bpd(nats: float) -> float:
        return (nats + dims * deq) / (dims * math.log(2.0))

    return {
        f"{prefix}elbo": mean["elbo"],
        f"{prefix}nll": mean["nll"],
        f"{prefix}nll_stderr": math.sqrt(nll_var / max(count - 1, 1)),
        f"{prefix}kl": mean["kl"],
        f"{prefix}recon_log_prob": mean["recon"],
        f"{prefix}recon_mse": mean["mse"],
        f"{prefix}elbo_bpd": bpd(-mean["elbo"]),
        f"{prefix}nll_bpd": bpd(mean["nll"]),
        "num_images": count,
        "k": k,
        "data_dims": dims,
        "dequantization_nats_per_dim": deq,
    }


def sample_quality(model, datamodule, metrics_cfg: DictConfig, device, use_ema: bool, prefix: str):
    """FID/KID/IS/PR of ``metrics.num_samples`` generated images (``{}`` when it is 0/null)."""
    num_samples = metrics_cfg.get("num_samples")
    if not num_samples:
        return {}
    from genlab.metrics import SampleQuality

    names = (
        "features dataset metrics num_samples batch_size num_real real_split cache_dir "
        "kid_subsets kid_subset_size is_splits pr_k seed inception_net inception_weights"
    ).split()
    kwargs = {n: metrics_cfg[n] for n in names if n in metrics_cfg}
    kwargs = OmegaConf.to_container(OmegaConf.create(kwargs), resolve=True)
    evaluator = SampleQuality(**kwargs, device=device)
    extra = {"use_ema": use_ema} if model.family == "gan" else {}

    def generate(n: int) -> torch.Tensor:
        return model.generate(n, **extra)

    results = evaluator.evaluate(generate, datamodule, device=device)
    out = {f"{prefix}{name}": float(value) for name, value in results.items()}
    out["sample_quality_features"] = kwargs.get("features")
    # which network and weights (e.g. inception-fid-default_1-q8, classifier-mnist-<digest>)
    out["sample_quality_network"] = evaluator.feature_space_id(
        evaluator.resolve_dataset(datamodule)
    )
    out["sample_quality_num_samples"] = int(num_samples)
    return out


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run every evaluation that applies to the checkpoint; return and save the results."""
    configure_threads(cfg)
    device = resolve_device(cfg.get("device", "cpu"))
    k = _positive_int(cfg, "k")
    k_batch = _positive_int(cfg, "k_batch")
    batch_size = _positive_int(cfg, "batch_size")
    num_images = _positive_int(cfg, "num_test_images", allow_none=True)
    split = cfg.get("split", "test")
    if split not in ("train", "val", "test"):
        raise ConfigError("split", split, ["test", "val", "train"])
    prefix = f"{split}/"

    ckpt_path = Path(cfg.ckpt_path)
    checkpoint = load_checkpoint(ckpt_path)
    model = build_model_from_checkpoint(ckpt_path).to(device)
    meta = checkpoint["genlab"]
    data_overrides = OmegaConf.to_container(cfg.get("data") or OmegaConf.create({}), resolve=True)
    datamodule = build_datamodule(checkpoint, data_overrides)
    datamodule.setup("test")

    results: dict[str, Any] = {
        "ckpt_path": str(ckpt_path),
        "model_class": meta["model_class"],
        "family": meta["family"],
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        "data": type(datamodule).__name__,
        "binarize": bool(getattr(datamodule, "binarize", False)),
        "split": split,
        "seed": cfg.seed,
    }
    if meta["family"] == "vae":
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()
        batches = iterate_images(datamodule, split, num_images, batch_size)
        results.update(vae_likelihood(model, batches, k, k_batch, device, prefix))
        results["likelihood_seconds"] = round(time.perf_counter() - t0, 2)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    quality = sample_quality(model, datamodule, cfg.metrics, device, cfg.use_ema, prefix)
    if quality:
        results.update(quality)
        results["sample_quality_seconds"] = round(time.perf_counter() - t0, 2)

    output = Path(cfg.output) if cfg.get("output") else ckpt_path.parent / "eval.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    results["output"] = str(output)
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@exit_on_config_error
def hydra_main(cfg: DictConfig) -> None:
    """The evaluation task (Hydra-decorated); `main` is the command-line entry."""
    results = evaluate(cfg)
    width = max(len(name) for name in results)
    for name, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{name:<{width}}  {shown}")


def main() -> None:
    """``python -m genlab.eval`` / ``genlab-eval``: bad input (config values, unknown keys,
    group options) exits 2 with one line, as in ``genlab.train`` (genlab.utils.cli)."""
    run_hydra_cli(hydra_main, config_name="eval")


if __name__ == "__main__":
    main()
