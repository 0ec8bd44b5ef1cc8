"""``python -m genlab.export``: a shareable checkpoint without hostname, paths or command line,
loadable by genlab.sample / genlab.eval (issue "trust, round 2")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from conftest import compose_config
from genlab.checks.errors import ConfigError
from genlab.eval import evaluate
from genlab.export import export
from genlab.models.registry import build_model_from_checkpoint
from test_file_trust import TINY_GAN, TINY_VAE, _train_tiny, tamper


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return {
        "vae": _train_tiny(tmp_path_factory.mktemp("vae"), TINY_VAE),
        "gan": _train_tiny(tmp_path_factory.mktemp("gan"), TINY_GAN),
    }


def _strings(value, out):
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _strings(k, out)
            _strings(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings(v, out)
    return out


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_the_export_holds_no_hostname_path_or_command_line(ckpts, tmp_path, family):
    src = ckpts[family]
    original = torch.load(src, weights_only=True)
    host = original["genlab"]["env"]["hostname"]
    assert host == socket.gethostname()
    out = export(src, tmp_path / "shared.ckpt")
    shared = torch.load(out, weights_only=True)
    text = _strings({k: v for k, v in shared.items() if k != "state_dict"}, [])
    assert not [s for s in text if s.startswith(("/", "~"))]
    assert host not in text and not any(host in s.split("/") for s in text)
    raw = out.read_bytes()
    for private in (str(src.parent.parent), str(tmp_path), "hostname", "argv", "platform"):
        assert private.encode() not in raw, private
    assert {"optimizer_states", "loops", "callbacks"}.isdisjoint(shared)
    assert "rng_states" not in shared["genlab"]
    data = shared["genlab"]["run_config"]["data"]
    assert not {"data_dir", "path", "num_workers", "download"} & set(data)

    # loads like the original, same weights, same samples
    a, b = build_model_from_checkpoint(src), build_model_from_checkpoint(out)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    g = torch.Generator().manual_seed(0)
    x = a.generate(4, generator=g)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(x, b.generate(4, generator=g))


def test_eval_and_sample_cli_load_the_export(ckpts, tmp_path):
    out = tmp_path / "pub" / "vae.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "genlab.export", f"ckpt_path={ckpts['vae']}", f"output={out}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert out.is_file()
    args = ["metrics.num_samples=0", "num_test_images=4", "k=2", "k_batch=2", "batch_size=4"]
    results = evaluate(compose_config(tmp_path / "e", f"ckpt_path={out}", *args,
                                      config_name="eval"))  # fmt: skip
    assert results["family"] == "vae"
    png = tmp_path / "grid.png"
    run = subprocess.run(
        [sys.executable, "-m", "genlab.sample", f"ckpt_path={out}", f"output={png}",
         "mode=reconstruct", "num_samples=4"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert png.is_file()


def test_export_refuses_its_input_as_output_and_a_path_it_cannot_drop(ckpts, tmp_path):
    src = tmp_path / "in.ckpt"
    src.write_bytes(ckpts["vae"].read_bytes())
    with pytest.raises(ConfigError) as e:
        export(src, src)
    assert e.value.key == "output"
    crafted = tamper(src, tmp_path / "c.ckpt", lambda c: c["genlab"]["run_config"]["model"].update(
        activation="/home/someone/secret"))  # fmt: skip
    with pytest.raises(ConfigError, match="model.activation") as e:
        export(crafted, tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()
