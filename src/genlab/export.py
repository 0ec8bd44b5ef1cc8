"""Export a shareable checkpoint: ``python -m genlab.export ckpt_path=... output=...``.

A checkpoint written by ``genlab.train`` is for its own run: it carries the hostname and the
platform, absolute paths (data, checkpoint and log directories), the whole run config, the
optimizer, loop and callback states and every RNG state. The exported file keeps only what
``genlab.sample`` and ``genlab.eval`` read:

* ``state_dict``, ``hyper_parameters`` (path hyperparameters, e.g. the VQ-VAE prior's
  ``vqvae_ckpt``, set to null: the first stage is stored inside), ``epoch``, ``global_step``;
* ``genlab``: ``model_class``, ``family``, ``version``, ``counters``, ``run_config`` reduced to
  ``model``, ``data`` (without ``data_dir``, ``path``, ``num_workers``, ``download``: the user
  gives them) and ``seed``, and ``env`` reduced to genlab/python/package versions and the git
  commit.

Before writing, every string in the result is checked: an absolute or home-relative path, or
the hostname of the training or this machine, is a ConfigError naming its key. The input is
read with ``torch.load(weights_only=True)`` and checked like every checkpoint genlab loads; the
output is written atomically and is never the input file.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from genlab.checks.errors import ConfigError
from genlab.cli.entry import run_hydra_cli, user_errors_exit

log = logging.getLogger(__name__)

#: The top-level keys of the exported checkpoint (everything else is dropped).
KEPT = ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "hyper_parameters")
#: The environment fields kept (versions only).
KEPT_ENV = ("genlab_version", "python", "packages")
_ABSOLUTE = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")


def _private_strings(value: Any, where: str, hostnames: set[str]) -> list[tuple[str, str]]:
    """(dotted key, value) of every string under ``value`` that is a path or a hostname."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        words = set(re.split(r"[^A-Za-z0-9_.-]+", value))
        if _ABSOLUTE.match(value) or words & hostnames:
            found.append((where, value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            found += _private_strings(v, f"{where}.{k}" if where else str(k), hostnames)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += _private_strings(v, f"{where}[{i}]", hostnames)
    return found


def shareable_checkpoint(checkpoint: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """The shareable form of a loaded genlab ``checkpoint`` (see the module docstring)."""
    from genlab.data.registry import USER_ONLY_KEYS
    from genlab.models.registry import check_family_name, model_class, without_stored_paths
    from genlab.runs.checkpoints import check_hyper_parameters

    key = "ckpt_path"
    meta = checkpoint["genlab"]
    meta = meta if isinstance(meta, Mapping) else {}
    name = check_family_name(meta.get("family"), key)
    hparams = checkpoint.get("hyper_parameters")
    check_hyper_parameters(hparams, key)
    cls = model_class(name, key)
    hparams = without_stored_paths(cls, hparams, source, key)
    run = meta.get("run_config") if isinstance(meta.get("run_config"), Mapping) else {}
    data = run.get("data") if isinstance(run.get("data"), Mapping) else None
    if data is not None:
        data = {k: v for k, v in data.items() if k not in (*USER_ONLY_KEYS, "download")}
    model = dict(run["model"]) if isinstance(run.get("model"), Mapping) else None
    if model is not None:
        for path_key in getattr(cls, "path_hparams", None) or {}:
            if path_key in model:
                model[path_key] = None
    env = meta.get("env") if isinstance(meta.get("env"), Mapping) else {}
    git = env.get("git") if isinstance(env.get("git"), Mapping) else {}
    out_env = {k: env[k] for k in KEPT_ENV if k in env}
    if git.get("commit"):
        out_env["git"] = {"commit": git.get("commit"), "dirty": git.get("dirty")}
    out: dict[str, Any] = {k: checkpoint[k] for k in KEPT if k in checkpoint}
    out["hyper_parameters"] = hparams
    out["genlab"] = {
        "model_class": meta.get("model_class"),
        "family": name,
        "version": meta.get("version"),
        "counters": meta.get("counters") or {},
        "run_config": {"model": model, "data": data, "seed": run.get("seed")},
        "env": out_env,
        "exported": True,
    }
    hostnames = {socket.gethostname()}
    if isinstance(env.get("hostname"), str):
        hostnames.add(env["hostname"])
    hostnames.discard("")
    private = _private_strings({k: v for k, v in out.items() if k != "state_dict"}, "", hostnames)
    if private:
        where, value = private[0]
        raise ConfigError(
            key,
            str(source),
            f"a checkpoint whose kept fields hold no path or hostname; {where}={value!r} is one "
            f"({len(private)} in all): it would be published with the checkpoint",
        )
    return out


def export(ckpt_path: str | Path, output: str | Path) -> Path:
    """Write the shareable form of ``ckpt_path`` to ``output`` (atomically); its path."""
    from genlab.runs.atomic_io import atomic_torch_save
    from genlab.runs.checkpoints import load_checkpoint

    source, output = Path(ckpt_path), Path(output)
    checkpoint = load_checkpoint(source)
    if output.exists() and output.resolve() == source.resolve():
        raise ConfigError("output", str(output), "a path other than ckpt_path (never overwritten)")
    out = shareable_checkpoint(checkpoint, source)
    atomic_torch_save(out, output)
    return output


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
@user_errors_exit("export")
def hydra_main(cfg: DictConfig) -> None:
    """The export task (Hydra-decorated); `main` is the command-line entry."""
    output = export(
        hydra.utils.to_absolute_path(cfg.ckpt_path), hydra.utils.to_absolute_path(cfg.output)
    )
    log.info(f"Wrote a shareable checkpoint (no hostname, paths or command line) to {output}")
    print(output)


def main() -> None:
    """``python -m genlab.export``: bad input exits 2 with one line (genlab.cli.entry)."""
    run_hydra_cli(hydra_main, config_name="export")


if __name__ == "__main__":
    main()
