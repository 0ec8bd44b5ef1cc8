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

:func:`check_model_config` builds a builtin family's typed config from the composed
``cfg.model`` before anything heavy is imported (this module imports neither torch nor
Lightning), so ``genlab.train`` refuses a bad model value in about a second.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from genlab.checks.errors import ConfigError
from genlab.checks.values import config_from_kwargs

ENTRY_POINT_GROUP = "genlab.models"
BUILTIN: dict[str, str] = {
    "gan": "genlab.models.gan:GAN",
    "vae": "genlab.models.vae:VAE",
    "hvae": "genlab.models.vae:HierarchicalVAE",
    "ladder_vae": "genlab.models.vae:LadderVAE",
    "topdown_vae": "genlab.models.vae:TopDownVAE",
    "beta_tcvae": "genlab.models.vae:BetaTCVAE",
    "factor_vae": "genlab.models.vae:FactorVAE",
    "vqvae": "genlab.models.vqvae:VQVAE",
    "vqvae_prior": "genlab.models.vqvae:VQVAEPrior",
}

# The typed config dataclass of each builtin family: torch-free modules (pinned against each
# class's ``config_class`` by tests/test_config_errors_early.py).
BUILTIN_CONFIGS: dict[str, str] = {
    "gan": "genlab.models.gan.config:GANConfig",
    "vae": "genlab.models.vae.config:VAEConfig",
    "hvae": "genlab.models.vae.config:HierarchicalVAEConfig",
    "ladder_vae": "genlab.models.vae.config:LadderVAEConfig",
    "topdown_vae": "genlab.models.vae.config:TopDownVAEConfig",
    "beta_tcvae": "genlab.models.vae.disentangle_config:BetaTCVAEConfig",
    "factor_vae": "genlab.models.vae.disentangle_config:FactorVAEConfig",
    "vqvae": "genlab.models.vqvae.config:VQVAEConfig",
    "vqvae_prior": "genlab.models.vqvae.config:VQVAEPriorConfig",
}
# ``model._target_`` paths of the builtin families (the shipped configs', each family package's
# and each defining module's) -> family name. Any other target (a plugin family) is checked by
# its own ``__init__`` when Hydra instantiates it.
BUILTIN_TARGETS: dict[str, str] = {
    "genlab.models.GAN": "gan",
    "genlab.models.gan.GAN": "gan",
    "genlab.models.gan.module.GAN": "gan",
    "genlab.models.VAE": "vae",
    "genlab.models.vae.VAE": "vae",
    "genlab.models.vae.module.VAE": "vae",
    "genlab.models.vae.HierarchicalVAE": "hvae",
    "genlab.models.vae.hierarchical.HierarchicalVAE": "hvae",
    "genlab.models.vae.LadderVAE": "ladder_vae",
    "genlab.models.vae.ladder.LadderVAE": "ladder_vae",
    "genlab.models.vae.TopDownVAE": "topdown_vae",
    "genlab.models.vae.topdown.TopDownVAE": "topdown_vae",
    "genlab.models.vae.BetaTCVAE": "beta_tcvae",
    "genlab.models.vae.disentangle.BetaTCVAE": "beta_tcvae",
    "genlab.models.vae.FactorVAE": "factor_vae",
    "genlab.models.vae.disentangle.FactorVAE": "factor_vae",
    "genlab.models.vqvae.VQVAE": "vqvae",
    "genlab.models.vqvae.module.VQVAE": "vqvae",
    "genlab.models.vqvae.VQVAEPrior": "vqvae_prior",
    "genlab.models.vqvae.prior.VQVAEPrior": "vqvae_prior",
}
# Registered names that meant another model before: name -> (hyperparameters only the former
# model had, the name it has now). A config or checkpoint holding any of them is refused with
# the new name (check_not_former_family) instead of loading as the model the name means today.
FORMER_FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "ladder_vae": (
        ("width", "num_resolutions", "blocks_per_resolution", "z_channels"),
        "topdown_vae",
    ),
}
# Hydra's own keys of an instantiated node (not keyword arguments of the class)
_HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")


def builtin_config_class(name: str) -> type:
    """The typed config dataclass of the builtin family ``name`` (imports no torch)."""
    module, _, attr = BUILTIN_CONFIGS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def check_not_former_family(name: Any, hparams: Any, key: str, value: Any) -> None:
    """ConfigError naming ``key``/``value`` and the model's name now when ``hparams`` (a
    config's keyword arguments or a checkpoint's ``hyper_parameters``) are those of the model
    the registered name ``name`` meant before (:data:`FORMER_FAMILIES`), e.g. a ``ladder_vae``
    checkpoint of the top-down VAE renamed ``topdown_vae``."""
    former = FORMER_FAMILIES.get(name) if isinstance(name, str) else None
    if former is None or not isinstance(hparams, dict):
        return
    keys, renamed = former
    found = [k for k in keys if k in hparams]
    if found:
        held = ", ".join(f"model.{k}" for k in found)
        raise ConfigError(
            key,
            value,
            f"a {name} of today; it holds {held} of the model genlab called {name} before and "
            f"names {renamed} now: use model={renamed} (a checkpoint of it loads as one once its "
            f"genlab.family reads {renamed})",
        )


def check_model_config(model: Any) -> None:
    """Build the typed config of a builtin family from ``model`` (the composed ``cfg.model``)
    the way :class:`genlab.models.base.GenerativeModule` does at instantiation (the resolved
    keyword arguments through :func:`genlab.checks.values.config_from_kwargs`), so a bad value
    raises the same ConfigError, before torch or Lightning are imported.

    Skipped, and so left to instantiation as before: a ``_target_`` not in
    :data:`BUILTIN_TARGETS` (plugin families), a node Hydra would not pass as plain keyword
    arguments (``_args_``, ``_partial_``, recursive instantiation) and one that does not resolve
    (e.g. a missing ``???`` value: Hydra reports it)."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(model, DictConfig):
        return
    target = model.get("_target_")
    name = BUILTIN_TARGETS.get(target) if isinstance(target, str) else None
    plain_kwargs = model.get("_recursive_", True) is False and not model.get("_partial_", False)
    if name is None or not plain_kwargs or "_args_" in model:
        return
    try:
        resolved = OmegaConf.to_container(model, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException:
        return
    kwargs = {str(k): v for k, v in resolved.items() if k not in _HYDRA_KEYS}
    check_not_former_family(name, kwargs, "model._target_", target)
    config_from_kwargs(builtin_config_class(name), kwargs)


def _declared() -> dict[str, Any]:
    """name -> ``"module:Class"`` (genlab's) or an EntryPoint (installed packages')."""
    found: dict[str, Any] = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # genlab's own names cannot be taken over
    return found


def registered_names() -> list[str]:
    """Every registered family name, sorted."""
    return sorted(_declared())


def check_family_name(name: Any, key: str = "ckpt_path") -> str:
    """``name`` when it is a registered family name (:data:`BUILTIN` or an entry-point name of
    the group ``genlab.models``, read from installed metadata); ConfigError naming ``key`` and
    the registered names otherwise. Imports nothing."""
    declared = _declared()
    if not isinstance(name, str) or name not in declared:
        shown = name if isinstance(name, str) else type(name).__name__
        raise ConfigError(key, shown, f"a checkpoint of a registered family {sorted(declared)}")
    return name


def model_class(name: Any, key: str = "ckpt_path") -> type:
    """The class registered as ``name``; a ConfigError naming ``key`` and the registered
    names when there is none. The name is checked against the registered names
    (:func:`check_family_name`) before any module is imported."""
    check_family_name(name, key)
    target = _declared()[name]
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


def without_stored_paths(cls: type, hparams: dict, path: str | Path, key: str) -> dict:
    """``hparams`` with every path hyperparameter of ``cls`` (its ``path_hparams``: path key ->
    the key that stores what the file held) set to None: a checkpoint never chooses a file that
    is read. ConfigError when the stored replacement is missing."""
    paths = getattr(cls, "path_hparams", None) or {}
    out = dict(hparams)
    for path_key, stored_key in paths.items():
        if out.get(stored_key) is None:
            raise ConfigError(
                key,
                str(path),
                f"a {cls.family} checkpoint that holds its {stored_key} (genlab never reads the "
                f"file named by a checkpoint's {path_key})",
            )
        if path_key in out:
            out[path_key] = None
    return out


def build_model_from_checkpoint(path: str | Path, key: str = "ckpt_path"):
    """Rebuild the LightningModule stored in a checkpoint, weights loaded, in eval mode.

    The class is the one registered under the checkpoint's ``family`` name
    (:func:`genlab.models.registry.model_class`), its keyword arguments come from
    ``hyper_parameters`` (checked by :func:`check_hyper_parameters` and the model's typed
    config); nothing the file names is imported or called, and no file it names is read
    (:func:`without_stored_paths`).
    """
    from genlab.runs.checkpoints import check_counters, check_hyper_parameters, load_checkpoint

    checkpoint = load_checkpoint(path, key)
    meta = checkpoint["genlab"]
    name = meta.get("family") if isinstance(meta, dict) else None
    check_family_name(name, key)  # a registered name, before anything is imported
    hparams = checkpoint.get("hyper_parameters")
    check_hyper_parameters(hparams, key)  # the file is checked before the family's module loads
    check_not_former_family(name, hparams, key, str(path))
    cls = model_class(name, key)
    hparams = without_stored_paths(cls, hparams, path, key)
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
