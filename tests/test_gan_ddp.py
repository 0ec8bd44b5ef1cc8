"""GAN training with 2 CPU processes (``trainer=ddp_cpu``, gloo), run through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Written next to the run and put on PYTHONPATH: every rank records the images it trained on
# and its final weights and buffers.
PROBE = """
import hashlib, torch, lightning.pytorch as pl

class ShardProbe(pl.Callback):
    def __init__(self, out):
        self.out, self.seen = out, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        images = (batch["image"] * 255).round().to(torch.uint8)
        self.seen += [hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in images]

    def on_train_end(self, trainer, module):
        # weights and buffers (batch-norm statistics), the EMA generator's (generator_ema.*) too
        params = {k: v.detach().clone() for k, v in module.state_dict().items()}
        steps = getattr(module, "g_steps", trainer.global_step)
        torch.save({"seen": self.seen, "params": params, "g_steps": steps},
                   f"{self.out}/rank{trainer.global_rank}.pt")
"""


def run_ddp(tmp_path: Path, *overrides: str) -> list[dict]:
    (tmp_path / "shard_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable,
        "-m",
        "genlab.train",
        "trainer=ddp_cpu",
        "hydra.run.dir=run",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=4",
        "+trainer.limit_val_batches=1",
        "trainer.enable_model_summary=false",
        "~callbacks.rich_progress_bar",
        "callbacks.sample_grid.num_samples=4",
        "data.batch_size=8",
        "model.latent_dim=8",
        "+callbacks.shard_probe._target_=shard_probe.ShardProbe",
        f"+callbacks.shard_probe.out={tmp_path}",
        *overrides,
    ]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def check_ranks(ranks: list[dict]) -> None:
    rank0, rank1 = ranks
    assert len(rank0["seen"]) == len(rank1["seen"]) == 4 * 8
    assert not set(rank0["seen"]) & set(rank1["seen"]), "each rank trains on its own shard"
    assert rank0["g_steps"] == rank1["g_steps"] == 4
    assert rank0["params"].keys() == rank1["params"].keys()
    for name, value in rank0["params"].items():
        assert torch.equal(value, rank1["params"][name]), name


def test_two_cpu_processes_end_with_identical_weights_on_distinct_shards(tmp_path):
    """trainer=ddp_cpu as shipped (GANDDPStrategy): batch norm in G and D (running stats
    made rank 0's after every step), EMA generator (whose buffers average G's)."""
    ranks = run_ddp(
        tmp_path,
        "model=gan",
        "model.ema_decay=0.9",
        "model.generator.base_channels=8",
        "model.discriminator.base_channels=8",
    )
    assert any(name.startswith("generator_ema.") for name in ranks[0]["params"])
    assert any(name.endswith("running_mean") for name in ranks[0]["params"])
    check_ranks(ranks)


def tiny(preset: str) -> list[str]:
    if preset == "vae":
        return []
    if preset == "gan_mlp":
        return ["model.generator.hidden_dims=[32]", "model.discriminator.hidden_dims=[32]"]
    return ["model.generator.base_channels=8", "model.discriminator.base_channels=8"]


FIND_UNUSED = [
    "trainer.strategy._target_=lightning.pytorch.strategies.DDPStrategy",
    "+trainer.strategy.find_unused_parameters=true",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, strategy",
    [(p, "gan_ddp") for p in ("gan", "wgan_gp", "sngan", "lsgan", "gan_mlp", "cgan", "r1gan")]
    + [(p, "find_unused") for p in ("gan", "wgan_gp", "cgan")]
    + [("vae", "gan_ddp")],  # GANDDPStrategy wraps other models in plain DDP
)
def test_presets_under_ddp_cpu(tmp_path, preset, strategy):
    """Every preset on 2 processes, with GANDDPStrategy (trainer=ddp_cpu as shipped) and with
    the alternative (DDP wrapper + find_unused_parameters), n_critic=1 to get 4 G steps."""
    extra = FIND_UNUSED if strategy == "find_unused" else []
    extra += ["model.r1_every=2"] if preset == "r1gan" else []  # lazy R1
    n_critic = [] if preset == "vae" else ["model.n_critic=1"]
    check_ranks(run_ddp(tmp_path, f"model={preset}", *n_critic, *tiny(preset), *extra))
