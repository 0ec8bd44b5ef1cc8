"""User-facing errors and the exit codes the command-line tools give them.

ConfigError: one message naming the key, the bad value and what is allowed (exit 2).
DivergenceError: training produced a NaN/Inf (exit 3). SIGTERM/SIGINT after saving last.ckpt:
128 + the signal number."""

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


class UnknownKeyError(ConfigError):
    """A key nothing in genlab reads: ``key=value is invalid: no such key (did you mean ...?);
    allowed ...``, the "did you mean" listing the ``close`` keys (full dotted names)."""

    def __init__(self, key: str, value: Any, allowed: str, close: Iterable[str] = ()):
        super().__init__(key, value, allowed)
        close = list(dict.fromkeys(c for c in close if c != key))[:4]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        self.close = close
        self.args = (f"{key}={value!r} is invalid: no such key{hint}; allowed {allowed}",)


class DivergenceError(RuntimeError):
    """Training produced a NaN/Inf loss, gradient norm or weight (raised by
    :class:`genlab.callbacks.divergence.DivergenceGuard`)."""

    def __init__(self, message: str, step: int | None = None, what: str | None = None):
        super().__init__(message)
        self.step, self.what = step, what


class RunInterrupted(SystemExit):
    """Training stopped by SIGTERM/SIGINT after saving ``last.ckpt``; exit code 128 + signum."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + int(signum))
        self.signum, self.message = int(signum), message


EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def find_config_error(err: BaseException | None) -> ConfigError | None:
    """The ConfigError behind ``err`` (Hydra's instantiate wraps it), or None."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
