"""Safe and atomic checkpoints: nothing in a checkpoint runs on load, a kill never corrupts one."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import genlab.runs.atomic_io as checkpoint_io
from genlab.checks.errors import ConfigError
from genlab.runs.atomic_io import AtomicCheckpointIO, atomic_torch_save
from genlab.runs.checkpoints import load_checkpoint
from genlab.train import train

TINY = [
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
    "model.latent_dim=8",
    "~callbacks.sample_grid",
]


class Payload:
    """Unpickling this runs ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def malicious_ckpt(tmp_path) -> tuple[Path, Path]:
    """A file shaped like a genlab checkpoint plus an object whose unpickling writes a marker."""
    marker = tmp_path / "pwned"
    path = tmp_path / "downloaded.ckpt"
    genlab_meta = {"model_class": "GAN", "family": "gan", "counters": {}, "run_config": None}
    torch.save({"state_dict": {}, "genlab": genlab_meta, "x": Payload(marker)}, path)
    return path, marker


def test_malicious_checkpoint_is_refused_and_runs_nothing(malicious_ckpt):
    path, marker = malicious_ckpt
    with pytest.raises(
        ConfigError, match=r"ckpt_path=.*refused: it needs to unpickle posix.system"
    ):
        load_checkpoint(path)
    with pytest.raises(Exception, match="Weights only load failed"):  # Lightning's resume path
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)
    assert not marker.exists()


def test_malicious_checkpoint_refused_by_every_cli(malicious_ckpt, tmp_path):
    """genlab.sample, genlab.eval and genlab.train (resume) on the file: exit 2, no marker."""
    path, marker = malicious_ckpt
    driver = textwrap.dedent(
        """
        import contextlib, importlib, io, json, sys
        from hydra.core.global_hydra import GlobalHydra
        results = []
        for module, args in json.loads(sys.argv[1]):
            sys.argv = [module, *args]
            err, code = io.StringIO(), 0
            with contextlib.redirect_stderr(err):
                try:
                    importlib.import_module(module).main()
                except SystemExit as e:
                    code = e.code
            GlobalHydra.instance().clear()
            results.append({"module": module, "code": code, "stderr": err.getvalue()})
        print("RESULTS" + json.dumps(results))
        """
    )
    cases = [
        ("genlab.sample", [f"ckpt_path={path}", "num_samples=4", "output=out.png"]),
        ("genlab.train", [f"ckpt_path={path}", "trainer=cpu", "logger=csv", "hydra.run.dir=r"]),
    ]
    if (Path(checkpoint_io.__file__).parents[1] / "eval.py").exists():
        cases.append(("genlab.eval", [f"ckpt_path={path}"]))
    out = subprocess.run(
        [sys.executable, "-c", driver, json.dumps(cases)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULTS")), None)
    assert line, out.stderr[-3000:]
    for result in json.loads(line[len("RESULTS") :]):
        assert result["code"] == 2, result
        assert "refused: it needs to unpickle posix.system" in result["stderr"], result
    assert not marker.exists()
    assert not (tmp_path / "out.png").exists()


def test_real_checkpoint_loads_with_weights_only_and_every_save_is_atomic(
    make_cfg, tmp_path, monkeypatch
):
    written = []
    original = checkpoint_io.atomic_torch_save

    def recording_save(obj, path):
        written.append(Path(path))
        original(obj, path)

    monkeypatch.setattr(checkpoint_io, "atomic_torch_save", recording_save)
    overrides = [*TINY, "model.ema_decay=0.9", "callbacks.preemption.every_n_train_batches=1"]
    train(make_cfg(*overrides, "callbacks.model_checkpoint.every_n_epochs=1"))
    files = {p for p in (tmp_path / "checkpoints").iterdir()}
    assert files == {tmp_path / "checkpoints" / n for n in ("last.ckpt", "epoch_000.ckpt")}
    assert files <= set(written)  # no checkpoint bypassed the atomic writer (no copy/link)
    assert len(written) >= 4  # 3 batches + epoch end
    raw = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert {"state_dict", "optimizer_states", "loops", "genlab"} <= raw.keys()
    assert raw["genlab"]["rng_states"]["torch"].dtype == torch.uint8


def _save_forever(path: str) -> None:
    """Child process: rewrite ``path`` (a few MB) in a loop until killed."""
    payload = {"state_dict": {"w": torch.randn(1_000_000)}, "genlab": {"family": "gan"}}
    while True:
        payload["state_dict"]["w"].add_(1.0)
        atomic_torch_save(payload, path)


def test_kill9_during_checkpoint_writes_never_corrupts(tmp_path):
    """SIGKILL a process that saves checkpoints back to back, 8 times at random moments."""
    path = tmp_path / "last.ckpt"
    context = multiprocessing.get_context("fork")
    rng = random.Random(0)
    for _ in range(8):
        child = context.Process(target=_save_forever, args=(str(path),))
        child.start()
        while not path.exists():
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert load_checkpoint(path)["state_dict"]["w"].numel() == 1_000_000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "last.ckpt"]
    assert all(name.startswith(".last.ckpt.") for name in leftovers)  # only temp files
    json.dumps(leftovers)


@pytest.mark.parametrize("max_epochs", [5, 7])
def test_last_ckpt_holds_the_final_state_when_training_ends_between_periodic_checkpoints(
    make_cfg, tmp_path, max_epochs
):
    """With checkpoints every 5 epochs, Lightning's ModelCheckpoint writes last.ckpt only with
    a periodic one: a 7-epoch run used to end with epoch 5's weights in last.ckpt (a 60-epoch
    recipe run with checkpoints every 25: epoch 50's), and genlab.eval / genlab.sample /
    ckpt_path=last read those. The end of training now writes it."""
    cfg = make_cfg("model=vae", "model.latent_dim=4", "~callbacks.sample_grid",
                   f"trainer.max_epochs={max_epochs}", "callbacks.model_checkpoint.every_n_epochs=5")  # fmt: skip
    train(cfg)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 3 * max_epochs  # FAST: 3 batches per epoch
    assert (tmp_path / "checkpoints" / "epoch_004.ckpt").is_file()  # the periodic one stays
