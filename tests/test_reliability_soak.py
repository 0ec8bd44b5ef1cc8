"""Soak: random bad override strings never crash with a traceback or hang (marked slow)."""

from __future__ import annotations

import signal
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = [
    "model.latent_dim", "model.ema_decay", "model.loss", "model.n_critic", "model.gp_weight",
    "model.optimizer_g.lr", "model.generator.arch", "model.discriminator.norm", "data.batch_size",
    "data.image_size", "data.channels", "data.binarize", "trainer.precision",
    "trainer.max_epochs", "trainer.accelerator", "trainer.devices", "seed", "ckpt_path",
    "num_threads", "callbacks.divergence.max_skips", "callbacks.preemption.every_n_minutes",
    "model", "data", "trainer", "logger", "model.latnt_dim", "model.lr", "+model.foo", "~seed",
]  # fmt: skip
VALUES = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.sampled_from(["nan", "inf", "-inf", "-0.5", "1.5", "null", "true", "[]", "[1,2]", "{}",
                     "abc", "''", "${oops}", "gan", "vae", "nope", "32-true", "last", "/nope"]),
    st.text(alphabet="abc019-_.,/[]{}'\" ", min_size=0, max_size=8),
)  # fmt: skip
OVERRIDES = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3)
FAST = [
    "trainer=cpu", "logger=csv", "trainer.max_epochs=1", "+trainer.limit_train_batches=1",
    "+trainer.limit_val_batches=1", "~callbacks.rich_progress_bar", "~callbacks.sample_grid",
    "~callbacks.sample_quality",
    "model.generator.base_channels=8", "model.discriminator.base_channels=8",
    "+trainer.max_time=00:00:00:20",  # a valid fuzzed config (max_epochs=10**9) still ends
]  # fmt: skip


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


@pytest.mark.slow
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(pairs=OVERRIDES)
def test_random_bad_overrides_fail_cleanly(pairs, tmp_path_factory, monkeypatch, capsys):
    from hydra.core.global_hydra import GlobalHydra

    from genlab.train import main

    run_dir = tmp_path_factory.mktemp("soak")
    monkeypatch.chdir(run_dir)
    overrides = [k if k.startswith("~") else f"{k}={v}" for k, v in pairs]
    monkeypatch.setattr(
        sys, "argv", ["genlab-train", *FAST, *overrides, f"hydra.run.dir={run_dir}"]
    )
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(120)
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    except Hang:
        pytest.fail(f"hung: {overrides}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        GlobalHydra.instance().clear()
    err = capsys.readouterr().err
    with capsys.disabled():
        print(f"exit {code}: {overrides} -> {err.strip().splitlines()[-1:] if err.strip() else ''}")
    assert code in (0, None, 2, 3), (overrides, code, err[-2000:])
    assert "Traceback" not in err, (overrides, err[-3000:])
    if code == 2:
        assert err.strip().splitlines()[-1].startswith("genlab: error: "), (overrides, err)
