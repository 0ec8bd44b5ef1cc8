"""Weights & Biases logging that works with or without an account.

``GenlabWandbLogger`` (``logger=wandb``) is Lightning's WandbLogger plus:

- **offline fallback**: with ``offline: null`` it runs online only when credentials exist
  (``WANDB_API_KEY``, an identity token file, or a ``.netrc`` entry for the W&B host, checked
  without network); otherwise offline under ``<run dir>/wandb/`` and, at the end, prints the
  one ``wandb sync <dir>`` command that uploads the run later. It never prompts.
- **sweep-aware names**: in a Hydra multirun each job is named after its overrides
  (the overrides that vary in the sweep) and grouped by the sweep directory's name.
- **flattened config**: hyperparameters are logged as ``model.generator.base_channels``-style
  keys so the dashboard can filter on them.
- **resume**: the run id is chosen up front; ``resume: true`` with ``ckpt_path`` continues the
  wandb run stored in the checkpoint (or ``id: <run id>`` explicitly).
- ``finish()`` ends the wandb run (train.py calls it in a ``finally``: without it the next job
  of a multirun silently logs into the previous run).
"""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import string
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from genlab.utils.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.wandb.ai"


def has_wandb_credentials(environ: Mapping[str, str] | None = None) -> bool:
    """True when wandb could log in without prompting: an API key or identity token in the
    environment, or a ``.netrc`` entry for ``WANDB_BASE_URL``'s host. No network access."""
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_API_KEY") or environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(environ.get("WANDB_BASE_URL", DEFAULT_HOST)).netloc
    netrc_path = environ.get("NETRC") or str(Path(environ.get("HOME", "~")).expanduser() / ".netrc")
    try:
        entry = netrc.netrc(netrc_path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def resolve_mode(offline: bool | None, environ: Mapping[str, str] | None = None) -> str:
    """``online`` | ``offline`` | ``disabled``: explicit ``offline`` wins, then ``WANDB_MODE``,
    then online only with credentials."""
    environ = os.environ if environ is None else environ
    if offline is not None:
        return "offline" if offline else "online"
    env_mode = environ.get("WANDB_MODE", "").lower()
    if env_mode in ("offline", "dryrun"):
        return "offline"
    if env_mode == "disabled":
        return "disabled"
    return "online" if has_wandb_credentials(environ) else "offline"


def hydra_job_info() -> dict[str, Any]:
    """Multirun flag, swept overrides as a name, sweep dir name, run dir name ({} outside
    Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        from genlab.utils.sweep import swept_overrides

        multirun = hc.mode == RunMode.MULTIRUN
        return {
            "multirun": multirun,
            "swept": ",".join(swept_overrides(hc)) if multirun else "",
            "sweep_name": Path(str(hc.sweep.dir)).name,
            "run_name": Path(str(hc.runtime.output_dir)).name,
            "job_num": hc.job.get("num"),
        }
    except Exception:  # noqa: BLE001 - not under Hydra (or a partial HydraConfig in tests)
        return {}


def wandb_id_from_checkpoint(ckpt_path: str) -> str:
    """The wandb run id stored in a genlab checkpoint's run config."""
    from genlab.utils.checkpoints import load_checkpoint

    run_config = load_checkpoint(ckpt_path)["genlab"].get("run_config") or {}
    run_id = ((run_config.get("logger") or {}).get("wandb") or {}).get("id")
    if not run_id:
        raise ConfigError(
            "logger.wandb.resume",
            True,
            f"a ckpt_path whose run logged to wandb ({ckpt_path} has no wandb id);"
            " or pass logger.wandb.id=<run id>",
        )
    return run_id


def new_run_id(length: int = 8) -> str:
    """A random base-36 run id, wandb's format (chosen before ``wandb.init`` so it can be
    stored in checkpoints)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class GenlabWandbLogger(WandbLogger):
    """WandbLogger with the offline fallback, sweep names/groups, flat config and resume."""

    def __init__(
        self,
        save_dir: str,
        project: str = "genlab",
        entity: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        offline: bool | None = None,
        log_model: bool | str = False,
        id: str | None = None,  # noqa: A002 - wandb's name for it
        resume: bool = False,
        ckpt_path: str | None = None,
        job_type: str = "train",
        **kwargs: Any,
    ) -> None:
        import wandb

        self.mode = resolve_mode(offline)
        job = hydra_job_info()
        if name is None and job:
            name = job["swept"] or (f"job{job['job_num']}" if job["multirun"] else job["run_name"])
        if group is None and job.get("multirun"):
            group = job["sweep_name"]
        if id is None and resume:
            if not ckpt_path:
                raise ConfigError("logger.wandb.resume", True, "only together with ckpt_path=...")
            id = wandb_id_from_checkpoint(ckpt_path)  # noqa: A001
        self.run_id = id or new_run_id()
        self.group = group
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        settings = kwargs.pop("settings", None) or wandb.Settings(
            silent=self.mode == "offline", console="off" if self.mode == "offline" else "auto"
        )
        super().__init__(
            save_dir=save_dir,
            project=project,
            entity=entity,
            name=name,
            group=group,
            tags=list(tags) if tags else None,
            log_model=log_model,
            id=self.run_id,
            mode=self.mode,
            job_type=job_type,
            settings=settings,
            **kwargs,
        )
        self._wandb_init["resume"] = "allow"
        self._wandb_init.pop("anonymous", None)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Log ``params`` as flat dotted keys. Lightning passes the module's hyperparameters
        (an AttributeDict): those go under ``model.`` next to the full run config."""
        from lightning.fabric.utilities.logger import _convert_params, _sanitize_callable_params
        from lightning.pytorch.utilities.parsing import AttributeDict

        prefix = "model." if isinstance(params, AttributeDict) else ""
        params = _sanitize_callable_params(_convert_params(params))
        self.experiment.config.update(flatten(params, prefix), allow_val_change=True)

    def finish(self, failed: bool = False) -> None:
        """End the wandb run (exit code 1 when ``failed``); print the sync command if offline."""
        run = self._experiment
        if run is None or not hasattr(run, "finish"):
            return
        run_dir = Path(run.dir).parent if getattr(run, "dir", None) else None
        run.finish(exit_code=1 if failed else 0)
        self._experiment = None
        if self.mode == "offline" and run_dir is not None:
            log.info(f"wandb: offline run saved; upload it with: wandb sync {run_dir}")


def store_wandb_run_id(model: Any, loggers: list) -> None:
    """Put the wandb run id into the run config that checkpoints carry (for ``resume: true``)."""
    run_config = getattr(model, "run_config", None)
    for logger in loggers:
        if isinstance(logger, GenlabWandbLogger) and isinstance(run_config, dict):
            wandb_cfg = (run_config.get("logger") or {}).get("wandb")
            if isinstance(wandb_cfg, dict):
                wandb_cfg["id"] = logger.run_id


def finish_wandb(loggers: list, failed: bool = False) -> None:
    """Finish every wandb run of ``loggers`` and any run still open in this process."""
    for logger in loggers:
        if isinstance(logger, GenlabWandbLogger):
            logger.finish(failed=failed)
    import sys

    wandb = sys.modules.get("wandb")  # only if something imported it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


def read_offline_run(path: str | Path, timeout: float = 30.0) -> dict[str, Any]:
    """Read an offline run's ``run-<id>.wandb`` file (LevelDB-log framed protobuf records):
    ``{"id", "group", "name", "tags", "config": {key: json}, "history": [{key: json}],
    "exit_code"}``.

    For tests and inspection without ``wandb sync``; the format is wandb's internal one.
    wandb's service process may still be writing the file after ``finish()`` returns: wait up
    to ``timeout`` seconds for the exit record.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        out = _parse_offline_run(Path(path).read_bytes())
        if "exit_code" in out or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _parse_offline_run(data: bytes) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    out: dict[str, Any] = {"config": {}, "history": []}
    for raw in records:
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(
                id=run.run_id, group=run.run_group, name=run.display_name, tags=list(run.tags)
            )
        elif kind == "config":
            out["config"].update({i.key: i.value_json for i in record.config.update})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
        elif kind == "history":
            out["history"].append(
                {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            )
    return out
