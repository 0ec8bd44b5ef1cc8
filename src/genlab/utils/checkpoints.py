"""Find and safely read genlab checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlab.utils.errors import ConfigError


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Read a checkpoint without executing code from it (``torch.load(weights_only=True)``).

    Raises ConfigError when the file does not exist, needs arbitrary unpickling, or is not a
    genlab checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(key, str(path), "the path of an existing .ckpt file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: refuse the file
        raise ConfigError(
            key,
            str(path),
            f"a genlab checkpoint loadable with weights_only=True (refused: {type(err).__name__}:"
            f" {str(err).splitlines()[0][:200]})",
        ) from None
    if not isinstance(checkpoint, dict) or "genlab" not in checkpoint:
        raise ConfigError(key, str(path), "a checkpoint written by genlab (no 'genlab' metadata)")
    return checkpoint


def build_model_from_checkpoint(path: str | Path, key: str = "ckpt_path"):
    """Rebuild the LightningModule stored in a checkpoint, weights loaded, in eval mode."""
    from genlab.models import MODEL_CLASSES

    checkpoint = load_checkpoint(path, key)
    name = checkpoint["genlab"]["model_class"]
    if name not in MODEL_CLASSES:
        raise ConfigError(
            key, str(path), f"a checkpoint of one of {list(MODEL_CLASSES)}, not {name}"
        )
    model = MODEL_CLASSES[name](**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model.eval()
