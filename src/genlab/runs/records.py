"""What a run records about itself: ``<run dir>/env.json`` and ``<run dir>/status.json``.

* ``env.json``: genlab version and git commit, python, platform, package versions, device, the
  seed, the command-line overrides, the wandb run id (``wandb_run_id``) and the resolved
  config. The same environment dict is stored in every checkpoint as
  ``checkpoint["genlab"]["env"]``.
* ``status.json``: ``{"status": "running" | "completed" | "diverged" | "interrupted" |
  "failed", ...}``, rewritten (atomically) when the run's state changes, so a sweep report can
  tell a diverged run from a finished one without parsing logs. It is the one status file of
  single runs and sweep jobs alike: in a multirun the job adds ``num``, ``swept``,
  ``overrides`` and ``value`` (:func:`update_status`, :mod:`genlab.sweeps.multirun`).
"""

from __future__ import annotations

import functools
import json
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import genlab
from genlab.runs.files import atomic_write_json

ENV_FILE = "env.json"
STATUS_FILE = "status.json"
PACKAGES = (
    "torch", "torchvision", "lightning", "hydra-core", "omegaconf", "numpy", "torchmetrics",
    "pillow", "wandb", "scipy",
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def git_commit() -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout genlab is imported from, or None
    (installed from a wheel, or git missing)."""
    source = Path(genlab.__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(dirty)}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.lru_cache(maxsize=1)
def environment_info() -> dict[str, Any]:
    """Plain data (str/bool/None only: loadable with ``torch.load(weights_only=True)``)."""
    import torch

    cuda = torch.version.cuda if torch.cuda.is_available() else None
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "genlab_version": genlab.__version__,
        "git": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "packages": {**package_versions(), "torch": str(torch.__version__)},  # +cuXXX build
        "cuda": cuda,
        "devices": devices,
    }


def write_env(
    run_dir: str | Path,
    run_config: dict[str, Any] | None,
    overrides: list[str],
    wandb_run_id: str | None = None,
) -> Path:
    """``<run dir>/env.json``: environment, overrides, the resolved config and the wandb run id
    (``wandb_run_id``: null without a wandb logger; a resumed run has its checkpoint's id)."""
    path = Path(run_dir) / ENV_FILE
    info = {**environment_info(), "argv": sys.argv, "overrides": overrides}
    info["seed"] = (run_config or {}).get("seed")
    info["wandb_run_id"] = wandb_run_id
    info["config"] = run_config
    atomic_write_json(path, info, default=str)
    return path


def write_status(run_dir: str | Path, status: str, /, **details: Any) -> Path:
    """``<run dir>/status.json`` = ``{"status": status, "time": ..., **details}``."""
    path = Path(run_dir) / STATUS_FILE
    atomic_write_json(
        path, {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **details}
    )
    return path


def update_status(run_dir: str | Path, status: str, /, **details: Any) -> Path:
    """Rewrite ``status.json`` with ``status``, keeping what the file already records (e.g. a
    sweep job's ``num`` and ``overrides`` added to the run's own ``resumed_from``)."""
    recorded = read_status(run_dir) or {}
    kept = {k: v for k, v in recorded.items() if k not in ("status", "time")}
    return write_status(run_dir, status, **{**kept, **details})


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``status.json`` as plain data (JSON: nothing in it is resolved or run), or
    None when it is missing or not a JSON object."""
    path = Path(run_dir) / STATUS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_job_statuses(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The ``status.json`` of every sweep job below ``sweep_dir`` (those with a job ``num``),
    by job number."""
    statuses = []
    for path in Path(sweep_dir).rglob(STATUS_FILE):
        status = read_status(path.parent)
        if status is not None and isinstance(status.get("num"), int):
            statuses.append(status)
    return sorted(statuses, key=lambda s: s["num"])
