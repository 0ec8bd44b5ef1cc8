"""Model families by registered name: genlab's own, and those of installed packages.

A family is a :class:`genlab.models.base.GenerativeModule` subclass whose class attribute
``family`` is its registered name. genlab's own families are listed in :data:`BUILTIN`; a
third-party package adds one without editing genlab by declaring an entry point in the group
``genlab.models`` (its ``pyproject.toml``)::

    [project.entry-points."genlab.models"]
    toy_diffusion = "toy_pkg.model:ToyDiffusion"   # name = ToyDiffusion.family

A checkpoint records the name (``checkpoint["genlab"]["family"]``); loading looks the name up
here and refuses anything unregistered. Nothing read from a file is ever imported: the
registry maps names to classes that installed code declared.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from genlab.checks.errors import ConfigError

ENTRY_POINT_GROUP = "genlab.models"
BUILTIN: dict[str, str] = {
    "gan": "genlab.models.gan:GAN",
    "vae": "genlab.models.vae:VAE",
    "hvae": "genlab.models.vae:HierarchicalVAE",
    "ladder_vae": "genlab.models.vae:LadderVAE",
    "vqvae": "genlab.models.vqvae:VQVAE",
    "vqvae_prior": "genlab.models.vqvae:VQVAEPrior",
}


def _declared() -> dict[str, Any]:
    """name -> ``"module:Class"`` (genlab's) or an EntryPoint (installed packages')."""
    found: dict[str, Any] = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # genlab's own names cannot be taken over
    return found


def registered_names() -> list[str]:
    """Every registered family name, sorted."""
    return sorted(_declared())


def model_class(name: Any, key: str = "ckpt_path") -> type:
    """The class registered as ``name``; a ConfigError naming ``key`` and the registered
    names when there is none."""
    declared = _declared()
    if not isinstance(name, str) or name not in declared:
        raise ConfigError(key, name, f"a checkpoint of a registered family {sorted(declared)}")
    target = declared[name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
    else:
        cls = target.load()
    from genlab.models.base import GenerativeModule

    if not (isinstance(cls, type) and issubclass(cls, GenerativeModule)):
        raise ConfigError(key, name, "a family whose entry point is a GenerativeModule subclass")
    if getattr(cls, "family", None) != name:
        raise ConfigError(
            key, name, f"a family whose class declares family = {name!r} (got {cls.family!r})"
        )
    return cls


def check_registered(cls: type, key: str = "model._target_") -> str:
    """The registered name of ``cls`` (a model about to be trained), so that its checkpoints
    can be loaded by ``genlab.sample``/``genlab.eval`` later; ConfigError otherwise."""
    name = getattr(cls, "family", None)
    declared = _declared()
    if name not in declared or model_class(name, key) is not cls:
        raise ConfigError(
            key,
            f"{cls.__module__}.{cls.__qualname__}",
            f"a registered model family {sorted(declared)} (register yours under the entry-point "
            f"group {ENTRY_POINT_GROUP!r}, README 'Add a model family')",
        )
    return name


def build_model_from_checkpoint(path: str | Path, key: str = "ckpt_path"):
    """Rebuild the LightningModule stored in a checkpoint, weights loaded, in eval mode.

    The class is the one registered under the checkpoint's ``family`` name
    (:func:`genlab.models.registry.model_class`), its keyword arguments come from
    ``hyper_parameters`` (checked by :func:`check_hyper_parameters` and the model's typed
    config); nothing the file names is imported or called.
    """
    from genlab.runs.checkpoints import check_counters, check_hyper_parameters, load_checkpoint

    checkpoint = load_checkpoint(path, key)
    name = checkpoint["genlab"].get("family")
    cls = model_class(name, key)
    hparams = checkpoint.get("hyper_parameters")
    check_hyper_parameters(hparams, key)
    try:
        model = cls(**hparams)
    except TypeError as err:  # e.g. a net given a keyword it does not take
        raise ConfigError(key, str(path), f"hyper_parameters that build a {name}: {err}") from None
    check_counters(checkpoint, model, key)
    try:
        model.load_state_dict(checkpoint.get("state_dict") or {})
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:300]
        raise ConfigError(
            key, str(path), f"weights matching its hyper_parameters: {first}"
        ) from None
    model.on_load_checkpoint(checkpoint)
    return model.eval()
