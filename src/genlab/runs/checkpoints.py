"""Find and safely read genlab checkpoints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from genlab.checks.errors import ConfigError


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Read a checkpoint without executing code from it (``torch.load(weights_only=True)``).

    Raises ConfigError when the file does not exist, needs arbitrary unpickling, or is not a
    genlab checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(key, str(path), "the path of an existing .ckpt file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: refuse the file
        text = str(err)
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
        reason = (
            f"it needs to unpickle {found.group(1)}, which could run arbitrary code"
            if found
            else f"{type(err).__name__}: {text.strip().splitlines()[0][:200] if text else ''}"
        )
        raise ConfigError(
            key,
            str(path),
            f"a genlab checkpoint loadable with torch.load(weights_only=True); refused: {reason}",
        ) from None
    if not isinstance(checkpoint, dict) or "genlab" not in checkpoint:
        raise ConfigError(key, str(path), "a checkpoint written by genlab (no 'genlab' metadata)")
    return checkpoint


def _torch_classes(module: Any, base: type) -> dict[str, type]:
    """``{"torch.optim.Adam": Adam, "torch.optim.adam.Adam": Adam, ...}``: the public subclasses
    of ``base`` in ``module.__all__`` under both their short and their defining-module name."""
    table = {}
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name, None)  # names from torch's own __all__, not from a file
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
            table[f"{module.__name__}.{name}"] = obj
            table[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return table


def optimizer_targets() -> dict[str, type]:
    """The ``_target_`` strings a checkpoint's optimizer / LR-scheduler specs may hold:
    torch.optim's optimizers and torch.optim.lr_scheduler's schedulers (a fixed table)."""
    return {
        **_torch_classes(torch.optim, torch.optim.Optimizer),
        **_torch_classes(torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler),
        "torch.optim.lr_scheduler.ReduceLROnPlateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
    }


# hyper_parameters that hold a ``{_target_: ..., ...}`` spec (instantiated by
# configure_optimizers, never while a checkpoint is rebuilt).
SPEC_HPARAMS = ("optimizer", "optimizer_g", "optimizer_d", "lr_scheduler", "scheduler_g",
                "scheduler_d")  # fmt: skip


def check_hyper_parameters(hparams: Any, key: str = "ckpt_path") -> None:
    """A checkpoint's ``hyper_parameters`` may name no callable but torch's optimizers and LR
    schedulers, and only at the top of :data:`SPEC_HPARAMS` specs: no ``_target_`` (or other
    Hydra ``_key_``) anywhere else, none nested inside a spec. Raises ConfigError otherwise."""
    if not isinstance(hparams, dict):
        raise ConfigError(
            key, type(hparams).__name__, "a checkpoint whose hyper_parameters are a dict"
        )
    allowed = optimizer_targets()

    def walk(node: Any, path: str, spec_root: bool) -> None:
        if isinstance(node, list | tuple):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]", False)
            return
        if not isinstance(node, dict):
            return
        for name, value in node.items():
            full = f"{path}.{name}"
            if name == "_target_" and spec_root:
                if not isinstance(value, str) or value not in allowed:
                    what = "a torch.optim optimizer or torch.optim.lr_scheduler class"
                    raise ConfigError(full, value, f"{what} (read from {key}; no other callable)")
            elif isinstance(name, str) and name.startswith("_") and name.endswith("_"):
                raise ConfigError(full, value, f"no Hydra key {name} (read from {key})")
            walk(value, full, False)

    for name, value in hparams.items():
        walk(value, f"model.{name}", name in SPEC_HPARAMS)


def check_counters(checkpoint: dict[str, Any], model: Any, key: str = "ckpt_path") -> None:
    """``checkpoint["genlab"]["counters"]`` may only set the model's own counters (ints)."""
    counters = checkpoint["genlab"].get("counters") or {}
    own = set(model.counters())
    for name, value in counters.items() if isinstance(counters, dict) else [("", counters)]:
        ok = name in own and isinstance(value, int | torch.Tensor) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(
                f"genlab.counters.{name}",
                value,
                f"integer counters among {sorted(own)} (read from {key})",
            )


# Overrides that do not change *which* experiment a run is: a resumed run may differ in them.
# ``logger.wandb.resume`` / ``logger.wandb.id`` only say which wandb run to log into.
RESUME_FREE_KEYS = (
    "ckpt_path", "trainer.max_epochs", "trainer.max_steps", "trainer.max_time",
    "trainer.min_epochs", "trainer.min_steps", "logger.wandb.resume", "logger.wandb.id",
)  # fmt: skip


def experiment_overrides(overrides: list[str]) -> list[str]:
    """The overrides that define an experiment: without ``hydra.*`` and :data:`RESUME_FREE_KEYS`.

    Two runs are "the same config" when their ``task_name`` and these lists (as sets) match.
    """
    kept = []
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith("hydra.") or key == "hydra" or key in RESUME_FREE_KEYS:
            continue
        kept.append(override)
    return sorted(set(kept))


def run_dirs(log_dir: str | Path, task_name: str) -> list[Path]:
    """Run directories of ``task_name``: ``<log_dir>/<task>/runs/*`` and ``multirun/*/*``."""
    root = Path(log_dir) / task_name
    return [p for p in (*root.glob("runs/*"), *root.glob("multirun/*/*")) if p.is_dir()]


def saved_overrides(path: str | Path) -> list[str] | None:
    """A run dir's ``.hydra/overrides.yaml`` as the list of strings it holds, or None when it is
    unreadable or holds anything else. Plain YAML (``yaml.safe_load``): no interpolation is
    resolved (``${oc.env:...}`` stays text), no tag builds an object."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, list) or not all(isinstance(o, str) for o in data):
        return None
    return data


def latest_run_checkpoint(log_dir: str | Path, task_name: str, overrides: list[str]) -> Path | None:
    """``last.ckpt`` of the most recently saved run of the same config (see
    :func:`experiment_overrides`), or None."""
    wanted = experiment_overrides(overrides)
    found = []
    for run_dir in run_dirs(log_dir, task_name):
        ckpt, saved = run_dir / "checkpoints" / "last.ckpt", run_dir / ".hydra" / "overrides.yaml"
        if not ckpt.is_file() or not saved.is_file():
            continue
        theirs = saved_overrides(saved)
        if theirs is not None and experiment_overrides(theirs) == wanted:
            found.append((ckpt.stat().st_mtime, ckpt))
    return max(found)[1] if found else None


def resolve_ckpt_path(
    value: str | None, log_dir: str | Path, task_name: str, overrides: list[str]
) -> str | None:
    """``ckpt_path`` as an absolute file path: ``last`` = the latest run of the same config, a
    run directory = its ``checkpoints/last.ckpt``, a file = itself (absolute, so Lightning never
    reads it as one of its own keywords such as ``best`` or ``registry``). Raises ConfigError
    when nothing fits."""
    if value is None:
        return None
    value = str(value)
    if value == "last":
        ckpt = latest_run_checkpoint(log_dir, task_name, overrides)
        if ckpt is None:
            n = len(run_dirs(log_dir, task_name))
            raise ConfigError(
                "ckpt_path",
                value,
                f"a checkpoint path or run dir: no run of this config (task_name={task_name}, "
                f"overrides {experiment_overrides(overrides)}) with checkpoints/last.ckpt under "
                f"{Path(log_dir) / task_name} ({n} run dir(s) of other configs there)",
            )
        return str(ckpt.absolute())
    path = Path(value)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return str(candidate.absolute())
        raise ConfigError("ckpt_path", value, "a run directory holding checkpoints/last.ckpt")
    return str(path.absolute())
