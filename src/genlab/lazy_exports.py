"""Package attributes that import their module on first use (PEP 562 ``__getattr__``).

genlab's packages export their classes this way so that importing a torch-free part (a
family's config, the model registry) does not import torch and Lightning with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that returns ``name`` from the module
    ``modules[name]`` (imported on first access); other names raise AttributeError."""

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(modules[name]), name)

    return __getattr__
