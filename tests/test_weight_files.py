"""Weight files are verified data (issue 11): every file a feature network is built from has its
sha256 checked before anything parses it, a tampered copy is refused with a ConfigError naming
the key and the expected digest, and the real-feature cache key changes with the digest.

Tampered files are copies in tmp_path (the installed files are never modified); genlab is
pointed at them with monkeypatch.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import genlab.metrics.classifier as classifier
import genlab.metrics.inception as inception
from genlab.checks.errors import ConfigError
from genlab.metrics import SampleQuality


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FakeDataModule:
    name, image_size, channels = "fashion_mnist_mini", 28, 1

    def images(self, split="train", max_images=None):
        return torch.zeros(4, 1, 28, 28, dtype=torch.uint8)

    def fingerprint(self, split):
        return f"fp-{split}"


class Payload:
    """Pickled as a call of ``exec``: runs code when unpickled with weights_only=False."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


@pytest.fixture
def pinned(monkeypatch):
    """``pinned(path)``: make ``path``'s full sha256 the published torch-fidelity digest (for
    this test only), as if it were the published file."""

    def pin(path: Path) -> Path:
        monkeypatch.setattr(inception, "TORCH_FIDELITY_SHA256", sha256(path))
        return path

    return pin


# ------------------------------------------------------------------------------ classifier
@pytest.fixture
def assets_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped classifier assets that genlab reads instead of the installed ones."""
    copy = tmp_path / "assets"
    copy.mkdir()
    for path in classifier.ASSETS_DIR.glob("classifier_*.pt"):
        shutil.copy(path, copy / path.name)
    monkeypatch.setattr(classifier, "ASSETS_DIR", copy)
    return copy


def retrained_copy(assets: Path, dataset: str = "fashion_mnist_mini") -> Path:
    """Overwrite the copy of ``dataset``'s classifier with other (valid) weights."""
    path = assets / f"classifier_{dataset}.pt"
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"]["head.bias"] = ckpt["state_dict"]["head.bias"] + 1.0
    torch.save(ckpt, path)
    return path


def test_shipped_classifiers_match_the_table():
    for dataset in classifier.available_classifiers():
        path = classifier.classifier_weights_path(dataset)
        assert sha256(path) == classifier.CLASSIFIER_SHA256[dataset]
        assert classifier.weights_digest(dataset) == sha256(path)[:12]


def test_tampered_classifier_is_refused(assets_copy):
    classifier.load_classifier("fashion_mnist_mini")  # the untampered copy loads
    expected = sha256(assets_copy / "classifier_fashion_mnist_mini.pt")  # = the shipped file's
    path = retrained_copy(assets_copy)
    for build in (
        lambda: classifier.load_classifier("fashion_mnist_mini"),
        lambda: SampleQuality(dataset="fashion_mnist_mini"),
        lambda: SampleQuality().feature_space_id("fashion_mnist_mini"),
    ):
        with pytest.raises(ConfigError, match=f"sha256 is {expected}") as e:
            build()
        assert e.value.key == "metrics.dataset" and sha256(path) in str(e.value)


def test_classifier_without_a_known_digest_is_refused(assets_copy):
    shutil.copy(assets_copy / "classifier_mnist.pt", assets_copy / "classifier_kmnist.pt")
    with pytest.raises(ConfigError, match="CLASSIFIER_SHA256") as e:
        classifier.load_classifier("kmnist")
    assert e.value.key == "metrics.dataset"


def test_real_feature_cache_key_follows_the_classifier_digest(assets_copy, monkeypatch):
    dm = FakeDataModule()
    before = SampleQuality(dataset="fashion_mnist_mini").cache_key(dm)
    path = retrained_copy(assets_copy)
    monkeypatch.setitem(classifier.CLASSIFIER_SHA256, "fashion_mnist_mini", sha256(path))
    sq = SampleQuality(dataset="fashion_mnist_mini")  # retrained + table updated: accepted
    assert sq.feature_space_id("fashion_mnist_mini").endswith(sha256(path)[:12])
    assert sq.cache_key(dm) != before
    assert classifier.load_classifier("fashion_mnist_mini").head.bias.abs().sum() > 0


# ------------------------------------------------------------------- fid-helper TorchScript
@pytest.fixture
def jit_loads(monkeypatch) -> list:
    """Records every torch.jit.load call (then loads as usual)."""
    calls, original = [], torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: (calls.append(a), original(*a, **k))[1])
    return calls


def foreign_torchscript(path: Path) -> Path:
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path))
    return path


def test_shipped_fid_helper_file_matches_the_table():
    assert sha256(inception.default_inception_path()) in inception.FID_HELPER_SHA256
    sq = SampleQuality(features="inception", inception_net="fid_helper")
    assert sq.feature_space_id() == f"inception-fid_helper-{inception.FID_HELPER_SHA256[0][:12]}-q8"


def test_tampered_fid_helper_torchscript_is_refused_before_jit_load(
    tmp_path, monkeypatch, jit_loads
):
    tampered = tmp_path / "default_1.pt"
    shutil.copy(inception.default_inception_path(), tampered)
    with tampered.open("r+b") as f:  # flip one byte in the middle of the archive
        f.seek(tampered.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    foreign = foreign_torchscript(tmp_path / "other.pt")
    expected = sha256(inception.default_inception_path())  # the installed, untampered file
    for path in (tampered, foreign):
        with pytest.raises(ConfigError, match=expected) as e:
            inception.FIDInceptionV3(path)
        assert e.value.key == "metrics.inception_net" and sha256(path) in str(e.value)
    monkeypatch.setattr(inception, "default_inception_path", lambda: foreign)
    with pytest.raises(ConfigError, match="metrics.inception_net"):
        SampleQuality(features="inception", inception_net="fid_helper")
    assert jit_loads == []  # TorchScript can carry code: never loaded unchecked


def test_real_feature_cache_key_follows_the_fid_helper_digest(tmp_path, monkeypatch, jit_loads):
    dm = FakeDataModule()
    genuine = SampleQuality(features="inception", inception_net="fid_helper").cache_key(dm)
    other = foreign_torchscript(tmp_path / "other.pt")
    monkeypatch.setattr(inception, "default_inception_path", lambda: other)
    monkeypatch.setattr(inception, "FID_HELPER_SHA256", (sha256(other),))
    sq = SampleQuality(features="inception", inception_net="fid_helper")
    assert sq.feature_space_id() == f"inception-fid_helper-{sha256(other)[:12]}-q8"
    assert sq.cache_key(dm) != genuine
    inception.FIDInceptionV3(other)  # in the (patched) table: loaded, from the checked bytes
    assert len(jit_loads) == 1


# -------------------------------------------------------------------------- torch-fidelity
def test_torch_fidelity_file_with_other_content_is_refused(tmp_path):
    path = tmp_path / inception.TORCH_FIDELITY_WEIGHTS
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, path)
    for build in (
        lambda: inception.TorchFidelityInceptionV3(path),
        lambda: SampleQuality(features="inception", inception_weights=path),  # auto
        lambda: SampleQuality(
            features="inception", inception_net="torch_fidelity", inception_weights=path
        ),
    ):
        with pytest.raises(ConfigError, match=f"sha256 is {inception.TORCH_FIDELITY_SHA256}") as e:
            build()
        assert e.value.key == "metrics.inception_weights" and sha256(path) in str(e.value)


def test_the_pinned_content_is_read_under_any_name(tmp_path, pinned):
    """The check is of the content against the digest pinned in the source; the name plays no
    part (a renamed copy of the published file is read, other content under it is not)."""
    path = tmp_path / "inception.pth"  # no digest in the name
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    pinned(path)
    assert inception.torch_fidelity_digest(path) == sha256(path)[:12]
    assert set(inception.load_torch_fidelity_state_dict(path)) == {"fc.weight"}
    torch.save({"fc.weight": torch.ones(2, 2)}, path)
    with pytest.raises(ConfigError, match=sha256(path)) as e:
        inception.load_torch_fidelity_state_dict(path)
    assert e.value.key == "metrics.inception_weights"


def test_torch_fidelity_file_is_never_unpickled(tmp_path, pinned):
    """A pickle that runs code whose digest is pinned: torch-fidelity's loader
    (weights_only=False) would run it; genlab's weights_only=True load refuses it."""
    marker = tmp_path / "marker"
    path = tmp_path / "payload.pth"
    torch.save({"fc.weight": Payload(marker)}, path)
    pinned(path)
    with pytest.raises(ConfigError, match="weights_only=True") as e:
        inception.TorchFidelityInceptionV3(path)
    assert e.value.key == "metrics.inception_weights"
    assert not marker.exists()


def test_torch_fidelity_module_gets_verified_weights_and_loads_nothing(tmp_path, monkeypatch):
    from test_inception_backends import convert_fid_helper_to_torch_fidelity

    path = convert_fid_helper_to_torch_fidelity(tmp_path)  # pins its full sha256
    loads, original = [], torch.load

    def spy(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    def no_download(*args, **kwargs):
        raise AssertionError("torch-fidelity tried to download its weights")

    monkeypatch.setattr(torch, "load", spy)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    net = inception.TorchFidelityInceptionV3(path)
    assert loads == [True]  # one load, genlab's, of tensors only
    state = original(path, weights_only=True)
    assert torch.equal(net.net.fc.weight, state["fc.weight"])
    assert torch.equal(
        net.net.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"]
    )
    assert net.digest == sha256(path)[:12]


# --------------------------------------------------------------- full sha256, pinned in source
def test_every_digest_pinned_in_the_source_is_a_full_sha256():
    full = "[0-9a-f]{64}"
    import re

    assert re.fullmatch(full, inception.TORCH_FIDELITY_SHA256)
    assert inception.TORCH_FIDELITY_SHA256.startswith(inception.TORCH_FIDELITY_SHA256_PREFIX)
    assert all(re.fullmatch(full, d) for d in inception.FID_HELPER_SHA256)
    assert all(re.fullmatch(full, d) for d in classifier.CLASSIFIER_SHA256.values())


def test_a_file_matching_only_the_8_digit_prefix_of_the_published_name_is_refused(
    tmp_path, monkeypatch
):
    """Stands in for a forged file whose sha256 shares the 32-bit prefix in the published name
    (``6726825d``): the prefix matches, the full pinned digest does not, so it is refused."""
    path = tmp_path / "forged.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    actual = sha256(path)
    path = path.rename(tmp_path / f"weights-inception-2015-12-05-{actual[:8]}.pth")
    forged_full = actual[:8] + ("0" if actual[8] != "0" else "1") + actual[9:]
    monkeypatch.setattr(inception, "TORCH_FIDELITY_SHA256_PREFIX", actual[:8])
    monkeypatch.setattr(inception, "TORCH_FIDELITY_SHA256", forged_full, raising=False)
    for check in (inception.torch_fidelity_digest, inception.load_torch_fidelity_state_dict):
        with pytest.raises(ConfigError, match=f"sha256 is {forged_full}") as e:
            check(path)
        assert e.value.key == "metrics.inception_weights" and actual in str(e.value)


@pytest.mark.parametrize("digits", [8, 64])
def test_a_digest_in_the_file_name_is_no_pin(tmp_path, digits):
    """Weights converted by hand, named with their own correct sha256 (its first 8 hex digits,
    as torch.hub names files, or all 64): the name is the file's own claim, not a digest pinned
    in the source, so the file is refused like any other unpinned one (genlab used to read such
    a file after checking it against the 8 digits of its name)."""
    path = tmp_path / "converted.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    actual = sha256(path)
    path = path.rename(tmp_path / f"weights-inception-2015-12-05-{actual[:digits]}.pth")
    for build in (
        lambda: inception.torch_fidelity_digest(path),
        lambda: inception.load_torch_fidelity_state_dict(path),
        lambda: SampleQuality(features="inception", inception_weights=path),
    ):
        with pytest.raises(ConfigError, match="trust_torch_fidelity_weights") as e:
            build()
        assert e.value.key == "metrics.inception_weights" and actual in str(e.value)


def test_weights_pinned_in_the_callers_source_are_read_with_a_warning(
    tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(inception, "_trusted_converted", [])  # this test's pins only
    path = tmp_path / "converted.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ConfigError):
        inception.load_torch_fidelity_state_dict(path)
    for short in (sha256(path)[:8], sha256(path).upper(), sha256(path) + "0"):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            inception.trust_torch_fidelity_weights(short)
    inception.trust_torch_fidelity_weights(sha256(path))
    with caplog.at_level("WARNING", logger="genlab.metrics.inception"):
        assert inception.torch_fidelity_digest(path) == sha256(path)[:12]
    assert "not comparable to published ones" in caplog.text
    assert set(inception.load_torch_fidelity_state_dict(path)) == {"fc.weight"}


def test_weights_checks_take_only_full_digests():
    from genlab.metrics.weights import check_file, read_verified

    path = classifier.classifier_weights_path("fashion_mnist_mini")
    full = classifier.CLASSIFIER_SHA256["fashion_mnist_mini"]
    assert check_file(path, full, "k", "v") == full
    assert read_verified(path, [full], "k", "v") == path.read_bytes()
    for verify in (check_file, read_verified):
        for prefix in (full[:8], full[:63]):
            with pytest.raises(ValueError, match="64"):
                verify(path, prefix, "k", "v")
