"""Find and safely read genlab checkpoints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from genlab.utils.errors import ConfigError


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


def build_model_from_checkpoint(path: str | Path, key: str = "ckpt_path"):
    """Rebuild the LightningModule stored in a checkpoint, weights loaded, in eval mode."""
    from genlab.models import MODEL_CLASSES

    checkpoint = load_checkpoint(path, key)
    name = checkpoint["genlab"]["model_class"]
    if name not in MODEL_CLASSES:
        raise ConfigError(
            key, str(path), f"a checkpoint of one of {list(MODEL_CLASSES)}, not {name}"
        )
    model = MODEL_CLASSES[name](**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model.eval()


# Overrides that do not change *which* experiment a run is: a resumed run may differ in them.
RESUME_FREE_KEYS = (
    "ckpt_path", "trainer.max_epochs", "trainer.max_steps", "trainer.max_time",
    "trainer.min_epochs", "trainer.min_steps",
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


def latest_run_checkpoint(log_dir: str | Path, task_name: str, overrides: list[str]) -> Path | None:
    """``last.ckpt`` of the most recently saved run of the same config (see
    :func:`experiment_overrides`), or None."""
    from omegaconf import OmegaConf

    wanted = experiment_overrides(overrides)
    found = []
    for run_dir in run_dirs(log_dir, task_name):
        ckpt, saved = run_dir / "checkpoints" / "last.ckpt", run_dir / ".hydra" / "overrides.yaml"
        if not ckpt.is_file() or not saved.is_file():
            continue
        try:
            theirs = [str(o) for o in OmegaConf.load(saved)]
        except Exception:  # noqa: BLE001 - an unreadable run dir is not a candidate
            continue
        if experiment_overrides(theirs) == wanted:
            found.append((ckpt.stat().st_mtime, ckpt))
    return max(found)[1] if found else None


def resolve_ckpt_path(
    value: str | None, log_dir: str | Path, task_name: str, overrides: list[str]
) -> str | None:
    """``ckpt_path`` as a file: ``last`` = the latest run of the same config, a run directory
    = its ``checkpoints/last.ckpt``, a file = itself. Raises ConfigError when nothing fits."""
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
        return str(ckpt)
    path = Path(value)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return str(candidate)
        raise ConfigError("ckpt_path", value, "a run directory holding checkpoints/last.ckpt")
    return value
