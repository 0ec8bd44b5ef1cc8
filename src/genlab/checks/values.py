"""Small helpers for typed model configs (pythae style): build from kwargs, validate with names."""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from genlab.checks.errors import ConfigError


def to_plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists (checkpoints must hold only plain data)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def config_from_kwargs(config_class: type, kwargs: dict[str, Any], prefix: str = "model"):
    """Build ``config_class`` from keyword args; an unknown key names the allowed ones."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    for key in kwargs:
        if key not in fields:
            hint = close_keys(config_class, key, prefix)
            hint = f" (did you mean {' or '.join(hint)}?)" if hint else ""
            raise ConfigError(f"{prefix}.{key}", kwargs[key], f"keys {sorted(fields)}{hint}")
    return config_class(**{k: to_plain(v) for k, v in kwargs.items()})


def close_keys(config_class: type, key: str, prefix: str = "model") -> list[str]:
    """Fields spelled like ``key``, and nested dict keys named ``key`` (``lr`` ->
    ``model.optimizer_g.lr``)."""
    import difflib

    fields = dataclasses.fields(config_class)
    close = [f"{prefix}.{k}" for k in difflib.get_close_matches(key, [f.name for f in fields])]
    for f in fields:
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if isinstance(default, dict) and key in default:
            close.append(f"{prefix}.{f.name}.{key}")
    return close


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ``ConfigError(key, value, allowed)`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, value, allowed)


def positive_int(value: Any) -> bool:
    """``value`` is an int (not a bool) >= 1."""
    return is_int(value) and value > 0


def is_int(value: Any) -> bool:
    """``value`` is an int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(key: str, value: Any, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``value`` if it is an integer >= ``minimum`` (or None when ``allow_none``); else a
    ConfigError naming ``key``. The one integer validator of genlab's own config keys."""
    if value is None and allow_none:
        return None
    if not (is_int(value) and value >= minimum):
        raise ConfigError(
            key, value, f"an integer >= {minimum}" + (" or null" if allow_none else "")
        )
    return value


def check_bool(key: str, value: Any) -> bool:
    """``value`` if it is a bool (``true``/``false`` in YAML); else a ConfigError naming ``key``."""
    if not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")
    return value


def check_choice(key: str, value: Any, choices: Any) -> Any:
    """``value`` if it is one of ``choices``; else a ConfigError naming ``key`` and them."""
    if value not in tuple(choices):
        raise ConfigError(key, value, list(choices))
    return value


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_non_negative(key: str, value: Any) -> Any:
    """``value`` if it is a number (not a bool) >= 0; else a ConfigError naming ``key``."""
    require(number(value) and value >= 0, key, value, "a number >= 0")
    return value


#: The ``model.*`` bools every model config has (acted on by ``GenerativeModule``).
SPEED_OPTIONS = ("compile", "channels_last")


def check_speed_options(config: Any) -> None:
    """``model.compile`` and ``model.channels_last`` of a model config are bools."""
    for key in SPEED_OPTIONS:
        check_bool(f"model.{key}", getattr(config, key))


def check_scheduler(key: str, spec: Any) -> None:
    """An optional learning-rate scheduler spec is null or a dict with a ``_target_``."""
    ok = spec is None or (isinstance(spec, dict) and "_target_" in spec)
    require(ok, key, spec, "null or a dict with _target_")


def check_optimizer(key: str, spec: Any) -> None:
    """An optimizer spec is a dict with a ``_target_`` and a positive ``lr``."""
    require(isinstance(spec, dict) and "_target_" in spec, key, spec, "a dict with _target_")
    lr = spec.get("lr")
    require(number(lr) and lr > 0, f"{key}.lr", lr, "a number > 0")
