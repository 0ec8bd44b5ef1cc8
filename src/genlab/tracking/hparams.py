"""A run's hyperparameters and results as the loggers' HParams/config views show them.

The hyperparameters are the keys a comparison needs, not the whole config tree: the run's
overrides (a config group by its chosen option, ``model=gan``; any other key by its resolved
value), the seed, the model's own hyperparameters (``model.latent_dim``, ...) and the user's
``labels.*``. The results are the HParams metrics: the final value of each sample-quality and
likelihood metric (its scalar, as logged) and its best value (``best/<metric>``, logged at the
end).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

#: Metrics offered as HParams columns (those a run logged), with the direction of "best".
HPARAM_METRICS: dict[str, str] = {
    "val/fid": "min",
    "val/kid": "min",
    "val/is": "max",
    "val/precision": "max",
    "val/recall": "max",
    "val/loss": "min",
    "val/elbo": "max",
    "val/nll": "min",
    "val/bpd": "min",
}
BEST_PREFIX = "best/"


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


def _select(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=str)


def run_hparams(
    run_config: Mapping[str, Any],
    overrides: list[str],
    choices: Mapping[str, Any],
    model_hparams: Mapping[str, Any],
) -> dict[str, Any]:
    """Flat ``{name: value}``: each override's key (``hydra.*`` left out) with the value the
    run used, ``seed``, ``model.*`` and ``labels.*``."""
    out: dict[str, Any] = {}
    for override in overrides:
        key = str(override).split("=", 1)[0].lstrip("+~")
        if not key or key.startswith("hydra.") or key == "hydra":
            continue
        if key in choices:  # a config group: model=gan
            out[key] = choices[key]
        else:
            out[key] = _select(run_config, key)
    out["seed"] = run_config.get("seed")
    out.update(flatten(dict(model_hparams), "model."))
    out.update(flatten(dict(run_config.get("labels") or {}), "labels."))
    return {key: _plain(value) for key, value in out.items()}


class BestMetrics:
    """The best value so far of each :data:`HPARAM_METRICS` metric (finite values only)."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}
        self.seen: list[str] = []

    def update(self, metrics: Mapping[str, Any]) -> None:
        for name, direction in HPARAM_METRICS.items():
            if name not in metrics:
                continue
            value = float(metrics[name])
            if name not in self.seen:
                self.seen.append(name)
            if not math.isfinite(value):
                continue
            old = self.best.get(name)
            better = old is None or (value < old if direction == "min" else value > old)
            if better:
                self.best[name] = value

    def as_metrics(self) -> dict[str, float]:
        """``{"best/val/fid": ..., ...}``."""
        return {BEST_PREFIX + name: value for name, value in self.best.items()}

    def metric_names(self) -> list[str]:
        """The HParams metric columns: each metric seen and its ``best/`` twin."""
        return self.seen + [BEST_PREFIX + name for name in self.seen]
