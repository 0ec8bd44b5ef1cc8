"""Multi-node training tested on one machine (issue "trust, round 2"): two processes started as
two nodes (``trainer.num_nodes=2``, one device each, ``NODE_RANK`` / ``MASTER_ADDR=127.0.0.1`` /
``MASTER_PORT``, gloo) train, write one checkpoint (rank 0's node only), draw different noise per
rank and, resumed from a crash, continue exactly as the uninterrupted run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.runs.checkpoints import load_checkpoint
from test_ddp_trust import GAN, PROBE, RUN

NODES = ["trainer.devices=1", "trainer.num_nodes=2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_nodes(workdir: Path, *overrides: str, expect_ok: bool = True, **probe: int) -> list[Path]:
    """Start node 0 and node 1 (each ``python -m genlab.train`` in ``workdir/node<i>``) and wait
    for both; their run dirs."""
    port = _free_port()
    probe_args = [f"+callbacks.trust_probe.{k}={v}" for k, v in probe.items()]
    procs = []
    for node in (0, 1):
        cwd = workdir / f"node{node}"
        cwd.mkdir(parents=True, exist_ok=True)
        (cwd / "trust_probe.py").write_text(PROBE)
        env = {**os.environ, "NODE_RANK": str(node), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": f"{cwd}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}  # fmt: skip
        env.pop("LOCAL_RANK", None)
        cmd = [sys.executable, "-m", "genlab.train", *RUN, *GAN, *NODES, "hydra.run.dir=run",
               "+callbacks.trust_probe._target_=trust_probe.TrustProbe",
               f"+callbacks.trust_probe.out={workdir}", *probe_args, *overrides]  # fmt: skip
        procs.append(
            subprocess.Popen(
                cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )  # fmt: skip
        )
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=300))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        if expect_ok:
            assert p.returncode == 0, err[-3000:]
        else:
            assert p.returncode != 0 and "simulated crash" in err, err[-3000:]
    return [workdir / f"node{n}" / "run" for n in (0, 1)]


def probes(workdir: Path) -> list[dict]:
    return [torch.load(workdir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("two_nodes")
    run_nodes(workdir, "callbacks.preemption.every_n_train_batches=2")
    return workdir


def test_two_nodes_train_write_one_checkpoint_and_draw_their_own_noise(reference):
    node0, node1 = reference / "node0" / "run", reference / "node1" / "run"
    assert (node0 / "checkpoints" / "last.ckpt").is_file()
    assert not list(node1.rglob("*.ckpt")), "the second node wrote a checkpoint"
    ckpt = load_checkpoint(node0 / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 8 and len(ckpt["genlab"]["rng_states_by_rank"]) == 2
    rank0, rank1 = probes(reference)
    assert len(rank0["z"]) == len(rank1["z"]) == 16
    assert not any(torch.equal(a, b) for a, b in zip(rank0["z"], rank1["z"]))
    (start0,) = [h for tag, _, h in rank0["states"] if tag == "train_start"]
    (start1,) = [h for tag, _, h in rank1["states"] if tag == "train_start"]
    assert start0 == start1  # one initialisation on both nodes
    end0, end1 = rank0["states"][-1][2], rank1["states"][-1][2]
    assert end0 == end1  # same weights and buffers at the end


@pytest.mark.slow  # two more two-node runs (~25 s on a quiet 2-core machine)
def test_two_nodes_resumed_after_a_crash_continue_exactly(reference, tmp_path):
    crashed, _ = run_nodes(
        tmp_path / "crashed",
        "callbacks.preemption.every_n_train_batches=1",
        expect_ok=False,
        crash_at_batch=6,
    )
    last = crashed / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 5
    resumed, _ = run_nodes(tmp_path / "resumed", f"ckpt_path={last}")
    expected = load_checkpoint(reference / "node0" / "run" / "checkpoints" / "last.ckpt")
    got = load_checkpoint(resumed / "checkpoints" / "last.ckpt")
    differ = [k for k in expected["state_dict"]
              if not torch.equal(got["state_dict"][k], expected["state_dict"][k])]  # fmt: skip
    assert not differ, f"the resumed run differs in {differ[:5]}"
    for ref, res in zip(probes(reference), probes(tmp_path / "resumed")):
        assert len(res["z"]) == 6
        assert all(torch.equal(a, b) for a, b in zip(ref["z"][-6:], res["z"]))
