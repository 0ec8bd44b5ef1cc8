"""A family name read from a checkpoint is checked against the registered names, and the file
against its checks, before any plugin module is imported (issue "trust, round 2")."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest
import torch

import genlab.models.registry as registry
from genlab.checks.errors import ConfigError

MODULE = "genlab_trust_recorder_plugin"


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    """An installed plugin ``recorder`` whose module leaves a marker when imported."""
    marker = tmp_path / "imported"
    (tmp_path / f"{MODULE}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Model:\n    family = 'recorder'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    ep = EntryPoint(name="recorder", value=f"{MODULE}:Model", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == ep.group else [])
    yield marker
    sys.modules.pop(MODULE, None)


def _ckpt(tmp_path, family, hparams) -> str:
    path = tmp_path / "crafted.ckpt"
    torch.save({"genlab": {"family": family}, "hyper_parameters": hparams, "state_dict": {}}, path)
    return str(path)


def test_the_fake_plugin_is_registered(recorder):
    assert "recorder" in registry.registered_names()
    registry.check_family_name("recorder")
    assert not recorder.exists()  # looking names up imports nothing


@pytest.mark.parametrize("family", ["toy", "genlab.models.gan", "recorder ", ["recorder"], 3])
def test_an_unregistered_name_imports_nothing(recorder, tmp_path, family):
    with pytest.raises(ConfigError, match="registered family") as e:
        registry.build_model_from_checkpoint(_ckpt(tmp_path, family, {}))
    assert e.value.key == "ckpt_path" and "recorder" in str(e.value)
    assert not recorder.exists()


def test_a_crafted_checkpoint_of_a_registered_plugin_is_refused_before_its_module_loads(
    recorder, tmp_path
):
    path = _ckpt(tmp_path, "recorder", {"net": {"_target_": "os.system", "command": "true"}})
    with pytest.raises(ConfigError, match="_target_") as e:
        registry.build_model_from_checkpoint(path)
    assert "_target_" in e.value.key
    assert not recorder.exists() and MODULE not in sys.modules


def test_a_registered_plugin_that_is_no_family_is_refused_after_import(recorder, tmp_path):
    with pytest.raises(ConfigError, match="GenerativeModule"):
        registry.build_model_from_checkpoint(_ckpt(tmp_path, "recorder", {}))
    assert recorder.exists()  # the file passed every check: only then the plugin loads
