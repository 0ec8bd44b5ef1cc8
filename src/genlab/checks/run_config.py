"""Checks of the run-level config (trainer, seed, checkpoints) before anything slow starts.

This covers the keys that go straight to third-party classes (Lightning's Trainer,
ModelCheckpoint), whose own errors come late or as tracebacks. Model configs are typed
dataclasses: ``genlab.train`` builds a builtin family's right after these checks, also before
any heavy import (:func:`genlab.models.registry.check_model_config`); plugin families' and the
data configs validate at instantiation (their ``__init__``).
"""

from __future__ import annotations

import difflib
from typing import Any

from omegaconf import DictConfig

from genlab.checks.errors import ConfigError
from genlab.checks.trainer_schema import (
    MANAGED_BY_GENLAB,
    TRAINER_TARGET,
    trainer_arguments,
)
from genlab.checks.values import is_int
from genlab.compat import lightning_precision_values

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def allowed_precisions() -> list[Any]:
    """Every ``trainer.precision`` Lightning accepts (read from its source, no import)."""
    return list(lightning_precision_values())


def _cuda_available() -> bool:
    import torch  # only asked when a GPU accelerator is requested

    return torch.cuda.is_available()


def _mps_available() -> bool:
    import torch  # only asked when an accelerator this install may lack is requested

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _xla_installed() -> bool:
    """torch_xla (Lightning's TPU accelerator) is installed; found without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch_xla") is not None
    except (ImportError, ValueError):
        return False


def available_accelerators() -> list[str]:
    """The ``trainer.accelerator`` values this install can run: auto and cpu always; gpu/cuda
    with a visible CUDA device, mps with Apple's Metal backend, tpu with torch_xla."""
    available = ["auto", "cpu"]
    if _cuda_available():
        available += ["gpu", "cuda"]
    if _mps_available():
        available.append("mps")
    if _xla_installed():
        available.append("tpu")
    return available


def check_accelerator(accelerator: Any) -> None:
    """``trainer.accelerator`` is a Lightning name this install can run (else Lightning fails
    late, e.g. tpu with ``ModuleNotFoundError("Requirement 'torch_xla>=1.13' not met")``)."""
    if not isinstance(accelerator, str):
        return  # an Accelerator object (Python API): Lightning checks it
    if accelerator not in ACCELERATORS:
        raise ConfigError("trainer.accelerator", accelerator, ACCELERATORS)
    if accelerator in ("auto", "cpu"):
        return
    available = available_accelerators()
    if accelerator not in available:
        why = {
            "gpu": "no CUDA device is visible here",
            "cuda": "no CUDA device is visible here",
            "mps": "Apple's MPS backend is not available here",
            "tpu": "torch_xla is not installed",
        }[accelerator]
        raise ConfigError(
            "trainer.accelerator",
            accelerator,
            f"an accelerator this install supports: {', '.join(available)} ({why})",
        )


def check_trainer_keys(trainer: DictConfig | dict) -> None:
    """Every key of a ``lightning.pytorch.Trainer`` config is one of its arguments (a key added
    with ``+trainer.<typo>=`` would otherwise fail as a TypeError traceback inside Lightning)."""
    if trainer.get("_target_") != TRAINER_TARGET:
        return
    arguments = trainer_arguments()
    for key in trainer.keys():
        key = str(key)
        if key.startswith("_") or key in arguments:
            continue
        if key in MANAGED_BY_GENLAB:
            raise ConfigError(
                f"trainer.{key}",
                trainer.get(key),
                f"nothing: genlab builds the Trainer's {key} from the {key} config group ({key}=...)",
            )
        close = difflib.get_close_matches(key, list(arguments), n=3)
        hint = f" (did you mean {' or '.join(f'trainer.{c}' for c in close)}?)" if close else ""
        raise ConfigError(
            f"trainer.{key}",
            trainer.get(key),
            f"an argument of lightning.pytorch.Trainer{hint}: {', '.join(sorted(arguments))}",
        )


def check_trainer_config(trainer: DictConfig | dict | None) -> None:
    """``trainer.*`` values Lightning would reject (or accept and then fail on) late."""
    if not trainer:
        return
    check_trainer_keys(trainer)
    precision = trainer.get("precision", "32-true")
    allowed = allowed_precisions()
    if precision is not None and precision not in allowed:
        raise ConfigError(
            "trainer.precision", precision, [a for a in allowed if isinstance(a, str)]
        )
    check_accelerator(trainer.get("accelerator", "auto"))
    devices = trainer.get("devices", "auto")
    ok = devices == "auto" or (is_int(devices) and (devices >= 1 or devices == -1))
    ok = ok or (isinstance(devices, str) and devices.lstrip("-").isdigit())
    ok = ok or (hasattr(devices, "__len__") and not isinstance(devices, str) and len(devices) > 0)
    if not ok:
        raise ConfigError("trainer.devices", devices, "an integer >= 1, -1 (all), auto or a list")
    for key in ("max_epochs", "max_steps"):
        value = trainer.get(key)
        if value is not None and not (is_int(value) and value >= -1):
            raise ConfigError(f"trainer.{key}", value, "an integer >= -1 (-1 = no limit) or null")
    for key in ("min_epochs", "check_val_every_n_epoch", "log_every_n_steps"):
        value = trainer.get(key)
        if value is not None and not (is_int(value) and value >= (0 if "min" in key else 1)):
            raise ConfigError(f"trainer.{key}", value, "a non-negative integer or null")
    for key in ("limit_train_batches", "limit_val_batches"):
        value = trainer.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(
                f"trainer.{key}", value, "an integer (batches) or a fraction in [0, 1]"
            )
        if value is not None and (value < 0 or (isinstance(value, float) and value > 1)):
            raise ConfigError(
                f"trainer.{key}", value, "an integer (batches) or a fraction in [0, 1]"
            )


def check_run_config(cfg: DictConfig) -> None:
    """Top-level keys and the checkpoint callback, then :func:`check_trainer_config`."""
    seed = cfg.get("seed")
    if seed is not None and not (is_int(seed) and 0 <= seed < 2**32):
        raise ConfigError("seed", seed, "an integer in [0, 2**32) or null (random)")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not isinstance(ckpt_path, str):
        raise ConfigError("ckpt_path", ckpt_path, "null, last, a run directory or a .ckpt path")
    threads = cfg.get("num_threads")
    if threads is not None and not (is_int(threads) and threads >= 1):
        raise ConfigError("num_threads", threads, "an integer >= 1 or null")
    checkpoint = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    if checkpoint.get("save_last") == "link":
        raise ConfigError(
            "callbacks.model_checkpoint.save_last",
            "link",
            "true or false ('link' may copy last.ckpt non-atomically; a kill could corrupt it)",
        )
    check_trainer_config(cfg.get("trainer"))
