"""Multi-process training (``trainer=ddp_cpu``: 2 processes, gloo) is correct: every rank draws
its own noise from identical weights, ranks agree on every buffer whenever anything looks at
the model, and a crashed run resumes exactly.

Three CLI runs in the default suite: an uninterrupted reference (shared by the first tests), a
run that crashes mid-epoch, and its resume.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from genlab.data.samplers import ResumableDistributedSampler
from genlab.models.base import GenerativeModule
from genlab.runs.checkpoints import load_checkpoint
from genlab.runs.rng import get_rng_states, rank_seed, seed_global_streams, set_rng_states

# Put next to each run (on PYTHONPATH). Every rank writes rank<R>.pt: the latents it trained
# with, a hash of its global torch RNG state before each batch, and sha1 hashes of every
# parameter and buffer at train start, at every checkpoint, in every validation and at the end.
PROBE = """
import hashlib, torch, lightning.pytorch as pl
from genlab.callbacks.preemption import PreemptionCheckpoint

def digest(t):
    return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()

def state_hashes(module):
    return {k: digest(v) for k, v in module.state_dict().items()}

class TrustProbe(pl.Callback):
    def __init__(self, out, crash_at_batch=0, rank0_clock_jump_at_batch=0):
        self.out, self.crash_at, self.jump_at = out, crash_at_batch, rank0_clock_jump_at_batch
        self.batches, self.z, self.rng, self.states = 0, [], [], []
        self._val_recorded = False

    def on_train_start(self, trainer, module):
        self.states.append(("train_start", trainer.global_step, state_hashes(module)))
        draw = module.sample_latent

        def recording_sample_latent(n, generator=None):
            z = draw(n, generator=generator)
            if generator is None and trainer.training:
                self.z.append(z.detach().cpu().clone())
            return z

        module.sample_latent = recording_sample_latent

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.batches += 1
        if self.batches == self.crash_at:
            raise RuntimeError("simulated crash")
        if self.batches == self.jump_at and trainer.global_rank == 0:
            # rank 0's clock says a time-based checkpoint is due, rank 1's does not yet
            for cb in trainer.callbacks:
                if isinstance(cb, PreemptionCheckpoint):
                    cb._last_save -= 3600.0
        self.rng.append(digest(torch.get_rng_state()))

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        if not self._val_recorded:
            self._val_recorded = True
            self.states.append(("validation", trainer.global_step, state_hashes(module)))

    def on_validation_end(self, trainer, module):
        self._val_recorded = False

    def on_save_checkpoint(self, trainer, module, checkpoint):
        self.states.append(("checkpoint", trainer.global_step, state_hashes(module)))
        self._dump(trainer)  # also written by a run that crashes later

    def on_train_end(self, trainer, module):
        self.states.append(("train_end", trainer.global_step, state_hashes(module)))
        self._dump(trainer)

    def _dump(self, trainer):
        torch.save({"z": self.z, "rng": self.rng, "states": self.states},
                   f"{self.out}/rank{trainer.global_rank}.pt")
"""

# num_threads pinned: runs compared bit for bit need one torch thread count (num_threads=null
# picks it from the machine's load: two nodes of one device on 2 cores got 2 threads when the
# machine was quiet, 1 when busy, and weights that differed by rounding).
RUN = [
    "trainer=ddp_cpu", "seed=3", "trainer.deterministic=true", "trainer.max_epochs=2",
    "num_threads=1",
    "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=1",
    "trainer.enable_model_summary=false", "~callbacks.rich_progress_bar",
    "~callbacks.sample_quality", "~callbacks.sample_grid", "logger=csv", "data.batch_size=8",
    "model.latent_dim=8", "callbacks.model_checkpoint.every_n_epochs=1",
]  # fmt: skip
# A DCGAN with batch norm in G and D and an EMA generator (whose buffers average G's).
GAN = [
    "model=gan", "model.generator.base_channels=8", "model.discriminator.base_channels=8",
    "model.ema_decay=0.9",
]  # fmt: skip


def run_ddp(workdir: Path, *overrides: str, expect_ok: bool = True, **probe: int) -> Path:
    """Train the tiny GAN (unless ``overrides`` name another model) through the CLI in
    ``workdir/run``; returns the run dir."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "trust_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": f"{workdir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    probe_args = [f"+callbacks.trust_probe.{k}={v}" for k, v in probe.items()]
    model = [] if any(o.startswith("model=") for o in overrides) else GAN
    cmd = [
        sys.executable, "-m", "genlab.train", *RUN, *model, "hydra.run.dir=run",
        "+callbacks.trust_probe._target_=trust_probe.TrustProbe",
        f"+callbacks.trust_probe.out={workdir}", *probe_args, *overrides,
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    if expect_ok:
        assert result.returncode == 0, result.stderr[-3000:]
    else:
        assert result.returncode != 0 and "simulated crash" in result.stderr, result.stderr[-3000:]
    return workdir / "run"


def probes(workdir: Path) -> list[dict]:
    return [torch.load(workdir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run. Periodic checkpoints every 2 batches, plus one more when rank 0's
    clock (only) says 30 minutes have passed, at the 3rd batch."""
    workdir = tmp_path_factory.mktemp("reference")
    run_ddp(
        workdir,
        "callbacks.preemption.every_n_train_batches=2",
        "callbacks.preemption.every_n_minutes=30",
        rank0_clock_jump_at_batch=3,
    )
    return workdir


def test_each_rank_draws_its_own_noise_from_identical_initial_weights(reference):
    rank0, rank1 = probes(reference)
    (start0,) = [h for tag, _, h in rank0["states"] if tag == "train_start"]
    (start1,) = [h for tag, _, h in rank1["states"] if tag == "train_start"]
    assert start0 == start1, "initialisation differs across ranks"
    # 8 batches, each: fakes for D and for G
    assert len(rank0["z"]) == len(rank1["z"]) == 16
    same = [i for i, (a, b) in enumerate(zip(rank0["z"], rank1["z"])) if torch.equal(a, b)]
    assert not same, f"both ranks drew the same latents at draws {same}"
    # gradient-penalty weights, VAE noise and binarisation draw from the global stream
    assert len(rank0["rng"]) == 8
    assert all(a != b for a, b in zip(rank0["rng"], rank1["rng"]))


def test_ranks_hold_identical_weights_and_buffers_whenever_the_model_is_looked_at(reference):
    rank0, rank1 = probes(reference)
    tags = [(tag, step) for tag, step, _ in rank0["states"]]
    assert tags == [(tag, step) for tag, step, _ in rank1["states"]], "ranks saved differently"
    assert ("checkpoint", 3) in tags, "the save rank 0's clock asked for is missing"
    assert {"checkpoint", "validation", "train_end"} <= {tag for tag, _ in tags}
    names = rank0["states"][-1][2].keys()
    assert any(n.endswith("running_mean") and n.startswith("discriminator.") for n in names)
    assert any(n.endswith("running_var") and n.startswith("generator_ema.") for n in names)
    for (tag, step, h0), (_, _, h1) in zip(rank0["states"], rank1["states"]):
        differ = [name for name in h0 if h0[name] != h1[name]]
        assert not differ, f"{tag} at step {step}: ranks differ in {differ[:4]}"

    ckpt = load_checkpoint(reference / "run" / "checkpoints" / "last.ckpt")
    by_rank = ckpt["genlab"]["rng_states_by_rank"]
    assert len(by_rank) == 2
    assert not torch.equal(by_rank[0]["torch"], by_rank[1]["torch"])
    assert torch.equal(ckpt["genlab"]["rng_states"]["torch"], by_rank[0]["torch"])


@pytest.mark.slow
def test_ddp_run_resumed_mid_epoch_after_a_crash_continues_exactly(reference, tmp_path):
    # crash at the 2nd batch of epoch 1 (last.ckpt after every batch); resume from it
    crashed = run_ddp(
        tmp_path / "crashed",
        "callbacks.preemption.every_n_train_batches=1",
        expect_ok=False,
        crash_at_batch=6,
    )
    ckpt = load_checkpoint(crashed / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 5 and ckpt["epoch"] == 1
    resumed = run_ddp(tmp_path / "resumed", f"ckpt_path={crashed}/checkpoints/last.ckpt")

    expected = load_checkpoint(reference / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    got = load_checkpoint(resumed / "checkpoints" / "last.ckpt")["state_dict"]
    assert got.keys() == expected.keys()
    differ = [k for k in expected if not torch.equal(got[k], expected[k])]
    assert not differ, f"resumed run differs from the uninterrupted one in {differ[:5]}"
    # each rank continued its own noise stream: the last 3 batches' latents
    for ref, res in zip(probes(reference), probes(tmp_path / "resumed")):
        assert len(res["z"]) == 6
        assert all(torch.equal(a, b) for a, b in zip(ref["z"][-6:], res["z"]))


@pytest.mark.slow
def test_vae_ranks_draw_their_own_reparameterisation_noise(tmp_path):
    run_ddp(tmp_path, "model=vae", "callbacks.preemption.every_n_train_batches=2")
    rank0, rank1 = probes(tmp_path)
    assert len(rank0["rng"]) == len(rank1["rng"]) == 8
    assert all(a != b for a, b in zip(rank0["rng"], rank1["rng"]))
    assert [s[:2] for s in rank0["states"]] == [s[:2] for s in rank1["states"]]
    assert all(s0[2] == s1[2] for s0, s1 in zip(rank0["states"], rank1["states"]))


# -- no processes needed --------------------------------------------------------------------
def test_resumable_distributed_sampler_is_the_distributed_sampler_and_can_start_mid_epoch():
    data = list(range(23))
    for rank in (0, 1):
        plain = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=5)
        ours = ResumableDistributedSampler(data, num_replicas=2, rank=rank, seed=5)
        for epoch in (0, 1):
            plain.set_epoch(epoch)
            ours.set_epoch(epoch)
            assert list(ours) == list(plain) and len(ours) == len(plain) == 12
        resumed = ResumableDistributedSampler(data, num_replicas=2, rank=rank, seed=5, start=4)
        resumed.set_epoch(1)
        assert list(resumed) == list(plain)[4:]  # continues where the crashed run was
        assert list(resumed) == list(plain)  # only the first iteration skips
        assert len(resumed) == 12


def test_rank_seeds_are_distinct_and_reproducible_and_leave_the_data_seed_alone(monkeypatch):
    seeds = [rank_seed(42, r) for r in range(64)]
    assert len(set(seeds)) == 64 and seeds == [rank_seed(42, r) for r in range(64)]
    assert rank_seed(43, 0) != rank_seed(42, 0)
    assert all(0 <= s < 2**32 for s in seeds)
    monkeypatch.setenv("PL_GLOBAL_SEED", "42")  # what the distributed sampler's seed comes from
    saved = get_rng_states()
    try:
        draws = []
        for _ in range(2):
            seed_global_streams(seeds[1])
            draws.append((random.random(), float(np.random.rand()), torch.rand(3)))
        assert draws[0][:2] == draws[1][:2] and torch.equal(draws[0][2], draws[1][2])
        assert os.environ["PL_GLOBAL_SEED"] == "42"
    finally:
        set_rng_states(saved)


@dataclasses.dataclass
class _NoConfig:
    """No fields."""


class _Resumable(GenerativeModule):
    config_class = _NoConfig
    family = "test_resumable"


@pytest.fixture
def torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _resumed_with(threads: int, checkpoint: dict) -> list[str]:
    """The warnings a model resumed from ``checkpoint`` with ``threads`` torch threads gives
    when training starts."""
    torch.set_num_threads(threads)
    model = _Resumable()
    model._trainer = SimpleNamespace(global_rank=0, world_size=1)  # what on_train_start reads
    model.on_load_checkpoint(checkpoint)
    saved = get_rng_states()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.on_train_start()
    finally:
        set_rng_states(saved)
    return [str(w.message) for w in caught]


def test_a_resume_with_another_torch_thread_count_warns_that_it_is_not_exact(torch_threads):
    # num_threads=null picks the thread count from the machine's load, and CPU kernels round
    # differently with another count: a resume then drifts from the uninterrupted run
    torch.set_num_threads(2)
    checkpoint: dict = {}
    _Resumable().on_save_checkpoint(checkpoint)
    assert checkpoint["genlab"]["torch_threads_by_rank"] == [2]
    (message,) = _resumed_with(1, checkpoint)
    assert "resumes with 1 torch CPU thread(s); the checkpoint was written with 2" in message
    assert "num_threads=2" in message
    assert _resumed_with(2, checkpoint) == []
    del checkpoint["genlab"]["torch_threads_by_rank"]  # older checkpoints: nothing to compare
    assert _resumed_with(1, checkpoint) == []
