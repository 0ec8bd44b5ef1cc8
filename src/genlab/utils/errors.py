"""User-facing errors: one message naming the key, the bad value and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """A configuration value that genlab cannot use.

    The message always names the config key, the offending value and what is allowed,
    e.g. ``model.latent_dim=-3 is invalid: must be a positive integer``.
    """

    def __init__(self, key: str, value: Any, allowed: str | Iterable[Any]):
        if not isinstance(allowed, str):
            allowed = "one of " + ", ".join(repr(a) for a in allowed)
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is invalid: allowed {allowed}")
