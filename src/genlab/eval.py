"""Evaluate a checkpoint: ``python -m genlab.eval ckpt_path=... [k=1000] [num_test_images=N]``.

The model is rebuilt from the checkpoint alone (``torch.load(weights_only=True)``) and the
datamodule from the run config stored in it (``checkpoint["genlab"]["run_config"]["data"]``,
keys under ``data.*`` override it) through genlab's own table of datamodules
(:func:`genlab.data.datamodule_from_checkpoint`: nothing named in the file is imported).
Results (flat ``{name: value}``) are printed and written to ``output`` (default
``<checkpoint dir>/eval.json``):

* The family's own held-out evaluation, ``model.evaluation_terms(datamodule, settings)``
  (the model protocol, :class:`genlab.models.base.GenerativeModule`): for VAEs on ``split``
  (test) ``<split>/elbo``, the importance-sampled ``<split>/nll`` (``k`` samples, Burda et al.
  2015) with its standard error, ``<split>/kl``, ``<split>/recon_log_prob``,
  ``<split>/recon_mse`` and bits/dim, the NLL and bits/dim only when p(x|z) is a pmf of the
  evaluated pixels (else ``nll_unavailable_reason``); nothing for GANs.
* Sample-quality metrics ``<split>/{fid,kid,is,precision,recall,...}`` from
  :class:`genlab.metrics.SampleQuality` with the ``metrics.*`` settings (``metrics.num_samples=0``
  skips them), with the protocol they used (``sample_quality_reference_split``,
  ``sample_quality_num_real``, ``sample_quality_num_fake``, ``sample_quality_network``, ...).
* Disentanglement (``disentanglement.metrics=[mig,dci,factor_vae]``, data with factor labels
  such as ``shapes2d``): ``<split>/mig``, ``<split>/dci_*``, ``<split>/factor_vae_score`` of
  the posterior means (:mod:`genlab.metrics.disentanglement`) and their protocol.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from genlab.checks.errors import ConfigError
from genlab.checks.values import check_choice, check_int
from genlab.cli.entry import run_hydra_cli, user_errors_exit
from genlab.cli.task import configure_threads

if TYPE_CHECKING:  # torch loads inside the functions: config errors answer fast
    import torch

log = logging.getLogger(__name__)
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """``cpu`` | ``cuda`` | ``auto`` (cuda when available) -> torch.device."""
    import torch

    if name not in DEVICES:
        raise ConfigError("device", name, list(DEVICES))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "cpu or auto (no CUDA device is available)")
    return torch.device(name)


def sample_quality(model, datamodule, metrics_cfg: DictConfig, device, use_ema: bool, prefix: str):
    """FID/KID/IS/PR of ``metrics.num_samples`` generated images (``{}`` when it is 0/null)."""
    num_samples = metrics_cfg.get("num_samples")
    if not num_samples:
        return {}
    from genlab.metrics import SampleQuality

    names = (
        "features dataset metrics num_samples batch_size num_real real_split cache_dir "
        "kid_subsets kid_subset_size is_splits pr_k seed inception_net inception_weights "
        "coverage_threshold"
    ).split()
    kwargs = {n: metrics_cfg[n] for n in names if n in metrics_cfg}
    kwargs = OmegaConf.to_container(OmegaConf.create(kwargs), resolve=True)
    evaluator = SampleQuality(**kwargs, device=device)
    options = {"use_ema": use_ema} if "use_ema" in model.sample_options else {}

    def generate(n: int) -> torch.Tensor:
        return model.generate(n, **options)

    results = evaluator.evaluate(generate, datamodule, device=device)
    out = {f"{prefix}{name}": float(value) for name, value in results.items()}
    out["sample_quality_features"] = kwargs.get("features")
    out.update({f"sample_quality_{k}": v for k, v in evaluator.protocol(datamodule).items()})
    out["sample_quality_num_samples"] = int(num_samples)
    return out


def disentanglement_metrics(dcfg: DictConfig | None, model, datamodule) -> list[str]:
    """The checked ``disentanglement.metrics`` (before any slow work): known names, a model
    with an encoder and data with factor labels; ``[]`` = none asked for."""
    names = list(dcfg.get("metrics") or []) if dcfg is not None else []
    if names:
        from genlab.metrics.disentanglement import METRIC_NAMES, check_factor_data

        for name in names:
            check_choice("disentanglement.metrics", name, list(METRIC_NAMES))
        check_factor_data(model, datamodule)
    return names


def disentanglement(model, datamodule, dcfg: DictConfig | None, device, seed: int) -> dict:
    """MIG / DCI / FactorVAE score (``disentanglement.metrics``) of the posterior means of a
    pool of ``disentanglement.num_images`` images with factor labels
    (:mod:`genlab.metrics.disentanglement`); ``{}`` when no metric is asked for."""
    names = disentanglement_metrics(dcfg, model, datamodule)
    if not names:
        return {}
    from genlab.metrics.disentanglement import disentanglement_scores, encode_factors

    split = dcfg.get("split", "train")
    check_choice("disentanglement.split", split, ["test", "val", "train"])
    n = check_int("disentanglement.num_images", dcfg.get("num_images"), allow_none=True)
    t0 = time.perf_counter()
    codes, factors = encode_factors(model, datamodule, split, n, 256, device, seed)
    keys = ("num_points num_test_points num_bins dci_classifier factor_vae_batch_size "
            "factor_vae_num_train factor_vae_num_eval").split()  # fmt: skip
    kwargs = {k: dcfg[k] for k in keys if dcfg.get(k) is not None}
    out = disentanglement_scores(codes, factors, names, seed=seed, prefix=f"{split}/", **kwargs)
    out["disentanglement_split"] = split
    out["disentanglement_seconds"] = round(time.perf_counter() - t0, 2)
    return out


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run every evaluation that applies to the checkpoint; return and save the results."""
    import torch

    from genlab.data.registry import datamodule_from_checkpoint
    from genlab.models.registry import build_model_from_checkpoint
    from genlab.runs.checkpoints import load_checkpoint

    configure_threads(cfg)
    device = resolve_device(cfg.get("device", "cpu"))
    k = check_int("k", cfg.get("k"))
    k_batch = check_int("k_batch", cfg.get("k_batch"))
    batch_size = check_int("batch_size", cfg.get("batch_size"))
    num_images = check_int("num_test_images", cfg.get("num_test_images"), allow_none=True)
    split = cfg.get("split", "test")
    check_choice("split", split, ["test", "val", "train"])
    prefix = f"{split}/"

    ckpt_path = Path(cfg.ckpt_path)
    checkpoint = load_checkpoint(ckpt_path)
    model = build_model_from_checkpoint(ckpt_path).to(device)
    meta = checkpoint["genlab"]
    data_overrides = OmegaConf.to_container(cfg.get("data") or OmegaConf.create({}), resolve=True)
    datamodule = datamodule_from_checkpoint(checkpoint, data_overrides)
    datamodule.setup("test")
    disentanglement_metrics(cfg.get("disentanglement"), model, datamodule)  # refused up front

    results: dict[str, Any] = {
        "ckpt_path": str(ckpt_path),
        "model_class": meta.get("model_class"),
        "family": meta["family"],
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        "data": type(datamodule).__name__,
        "binarize": bool(getattr(datamodule, "binarize", False)),
        "split": split,
        "seed": cfg.seed,
    }
    settings = {"split": split, "num_images": num_images, "batch_size": batch_size, "k": k,
                "k_batch": k_batch, "device": device, "prefix": prefix, "seed": cfg.seed}  # fmt: skip
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    terms = model.evaluation_terms(datamodule, settings)  # the family's own (VAE: likelihoods)
    if terms:
        results.update(terms)
        results["evaluation_terms_seconds"] = round(time.perf_counter() - t0, 2)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    quality = sample_quality(model, datamodule, cfg.metrics, device, cfg.use_ema, prefix)
    if quality:
        results.update(quality)
        results["sample_quality_seconds"] = round(time.perf_counter() - t0, 2)

    results.update(disentanglement(model, datamodule, cfg.get("disentanglement"), device, cfg.seed))

    output = Path(cfg.output) if cfg.get("output") else ckpt_path.parent / "eval.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    results["output"] = str(output)
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@user_errors_exit("eval")
def hydra_main(cfg: DictConfig) -> None:
    """The evaluation task (Hydra-decorated); `main` is the command-line entry."""
    results = evaluate(cfg)
    width = max(len(name) for name in results)
    for name, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{name:<{width}}  {shown}")


def main() -> None:
    """``python -m genlab.eval`` / ``genlab-eval``: bad input (config values, unknown keys,
    group options) exits 2 with one line, as in ``genlab.train`` (genlab.cli.entry)."""
    run_hydra_cli(hydra_main, config_name="eval")


if __name__ == "__main__":
    main()
