"""Weights & Biases logging that works with or without an account.

``GenlabWandbLogger`` (``logger=wandb``) is Lightning's WandbLogger plus:

- **offline fallback**: with ``offline: null`` it runs online only when credentials exist
  (``WANDB_API_KEY``, an identity token file, or a ``.netrc`` entry for the W&B host, checked
  without network); otherwise offline under ``<run dir>/wandb/`` and, at the end, prints the
  one ``wandb sync <dir>`` command that uploads the run later. It never prompts.
- **one name, one place per sweep**: the run is named like in every logger (its overrides,
  :mod:`genlab.tracking.run_identity`); in a Hydra multirun the jobs are grouped by the sweep
  directory's name and (``side_by_side``) all write to ``<sweep dir>/wandb/``, so one
  ``wandb sync <sweep dir>/wandb/offline-run-*`` uploads the sweep.
- **flattened config**: hyperparameters are logged as ``model.generator.base_channels``-style
  keys so the dashboard can filter on them.
- **resume**: the run id is chosen up front (and recorded in ``env.json`` and every
  checkpoint); ``resume: true`` with ``ckpt_path`` (a file, a run dir or ``last``) continues
  the wandb run stored in the checkpoint it resolves to (or ``id: <run id>`` explicitly).
- ``WANDB_MODE`` must be unset or a value wandb accepts: anything else is a ConfigError naming
  it, before wandb fails with a pydantic traceback.
- ``finish()`` ends the wandb run (:class:`genlab.tracking.run.RunTracking` calls it, also
  after a failure: without it the next job of a multirun silently logs into the previous run).
"""

from __future__ import annotations

import logging
import netrc
import os
import re
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from genlab.checks.errors import ConfigError
from genlab.compat import (
    forget_wandb_logger_run,
    lightning_hparams_to_flat_dict,
    wandb_logger_init_kwargs,
    wandb_logger_run,
)
from genlab.tracking.hparams import flatten
from genlab.tracking.run_identity import current_run

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


def wandb_modes() -> tuple[str, ...]:
    """The values the installed wandb accepts for ``WANDB_MODE`` (its ``Settings.mode``)."""
    try:
        import typing

        import wandb

        modes = typing.get_args(wandb.Settings.model_fields["mode"].annotation)
    except Exception:  # noqa: BLE001 - another wandb version: fall back to the known ones
        modes = ()
    return tuple(modes) or ("online", "offline", "shared", "disabled", "dryrun", "run")


def check_wandb_mode(environ: Mapping[str, str] | None = None) -> None:
    """``WANDB_MODE``, when set, must be a value wandb accepts (wandb itself reads it at
    ``wandb.init`` and fails with a pydantic traceback on ``WANDB_MODE=`` or a typo)."""
    environ = os.environ if environ is None else environ
    modes = wandb_modes()
    if "WANDB_MODE" in environ and environ["WANDB_MODE"] not in modes:
        allowed = ", ".join(repr(m) for m in modes)
        raise ConfigError("WANDB_MODE", environ["WANDB_MODE"], f"one of {allowed} (or unset)")


def uses_wandb(logger_cfg: Mapping[str, Any] | None) -> bool:
    """True when a node of the ``logger`` config group instantiates a wandb logger."""
    return any(
        isinstance(node, Mapping) and "wandb" in str(node.get("_target_", "")).lower()
        for node in (logger_cfg or {}).values()
    )


def resolve_mode(offline: bool | None, environ: Mapping[str, str] | None = None) -> str:
    """``online`` | ``offline`` | ``disabled``: explicit ``offline`` wins, then ``WANDB_MODE``,
    then online only with credentials. Raises ConfigError for a ``WANDB_MODE`` wandb refuses."""
    environ = os.environ if environ is None else environ
    check_wandb_mode(environ)
    if offline is not None:
        return "offline" if offline else "online"
    env_mode = environ.get("WANDB_MODE", "")
    if env_mode in ("offline", "dryrun"):
        return "offline"
    if env_mode == "disabled":
        return "disabled"
    return "online" if has_wandb_credentials(environ) else "offline"


RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def wandb_id_from_checkpoint(ckpt_path: str) -> str:
    """The wandb run id stored in a genlab checkpoint's run config (``logger.wandb.id``).

    It names files under the run dir (``wandb/offline-run-*-<id>/run-<id>.wandb``), so an id
    read from a file must be a plain id: letters, digits, ``_``, ``-`` (at most 64).
    """
    from genlab.runs.checkpoints import load_checkpoint

    run_config = load_checkpoint(ckpt_path)["genlab"].get("run_config") or {}
    logger_cfg = run_config.get("logger") if isinstance(run_config, dict) else None
    wandb_cfg = logger_cfg.get("wandb") if isinstance(logger_cfg, dict) else None
    run_id = wandb_cfg.get("id") if isinstance(wandb_cfg, dict) else None
    if not run_id:
        raise ConfigError(
            "logger.wandb.resume",
            True,
            f"a ckpt_path whose run logged to wandb ({ckpt_path} has no wandb id);"
            " or pass logger.wandb.id=<run id>",
        )
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise ConfigError(
            "logger.wandb.id",
            run_id,
            f"a wandb run id of letters, digits, _ and - (read from {ckpt_path})",
        )
    return run_id


def new_run_id(length: int = 8) -> str:
    """A random base-36 run id, wandb's format (chosen before ``wandb.init`` so it can be
    stored in checkpoints)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class GenlabWandbLogger(WandbLogger):
    """WandbLogger with the offline fallback, sweep names/groups, flat config and resume."""

    def __init__(
        self,
        save_dir: str,
        side_by_side: bool = True,
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
        identity = current_run()
        if name is None and (identity.multirun or identity.run_dir):
            name = identity.name
        if identity.multirun and identity.sweep_dir:
            group = group or Path(identity.sweep_dir).name
            save_dir = identity.sweep_dir if side_by_side else save_dir
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
        init_kwargs = wandb_logger_init_kwargs(self)
        init_kwargs["resume"] = "allow"
        init_kwargs.pop("anonymous", None)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Log ``params`` as flat dotted keys. Lightning passes the module's hyperparameters
        (an AttributeDict): those go under ``model.`` next to the full run config."""
        from lightning.pytorch.utilities.parsing import AttributeDict

        prefix = "model." if isinstance(params, AttributeDict) else ""
        params = lightning_hparams_to_flat_dict(params)
        self.experiment.config.update(flatten(params, prefix), allow_val_change=True)

    def finish(self, failed: bool = False) -> None:
        """End the wandb run (exit code 1 when ``failed``); print the sync command if offline."""
        run = wandb_logger_run(self)
        if run is None or not hasattr(run, "finish"):
            return
        run_dir = Path(run.dir).parent if getattr(run, "dir", None) else None
        run.finish(exit_code=1 if failed else 0)
        forget_wandb_logger_run(self)
        if self.mode == "offline" and run_dir is not None:
            log.info(f"wandb: offline run saved; upload it with: wandb sync {run_dir}")
