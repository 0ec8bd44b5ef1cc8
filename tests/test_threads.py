"""Thread choice (genlab.cli.task): each process gets the cores that are actually free."""

from __future__ import annotations

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from genlab.cli import task
from genlab.cli.task import choose_threads, configure_threads


@pytest.mark.parametrize(
    ("cores", "processes", "busy", "expected"),
    [
        (2, 1, None, 2),  # nothing known: all cores
        (2, 1, 0.1, 2),  # quiet machine
        (2, 1, 1.0, 1),  # one of two cores busy with another program
        (2, 1, 0.6, 1),  # a core at least half busy counts as taken
        (2, 1, 6.9, 1),  # overloaded: never 0 threads
        (16, 1, 3.0, 13),
        (2, 2, 1.0, 1),  # DDP: the sibling rank is one of the busy cores, not another program
        (16, 2, 1.0, 8),
        (16, 4, 5.0, 3),  # 2 cores busy with others -> 14 free among 4 processes
    ],
)
def test_choose_threads_uses_free_cores(cores, processes, busy, expected):
    assert choose_threads(cores, processes, busy) == expected


@pytest.fixture
def machine(monkeypatch):
    """Mocked cores / load / threads: returns the dict configure_threads' inputs come from."""
    state = {"cores": 2, "busy": 0.0, "set": []}
    monkeypatch.setattr(task, "available_cores", lambda: state["cores"])
    monkeypatch.setattr(task, "busy_cores", lambda *a, **k: state["busy"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: state["set"].append(n))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return state


def test_configure_threads_quiet_and_contended(machine):
    cfg = OmegaConf.create({"num_threads": None, "trainer": {"accelerator": "cpu", "devices": 1}})
    assert configure_threads(cfg) == 2
    machine["busy"] = 1.0  # another program keeps one core busy
    assert configure_threads(cfg) == 1
    assert machine["set"] == [2, 1]


def test_deterministic_runs_take_their_share_whatever_the_load(machine):
    """A deterministic CPU run and its resume must use the same thread count: the load of the
    machine at start-up must not change it (another count rounds differently)."""
    cfg = OmegaConf.create(
        {
            "num_threads": None,
            "trainer": {"accelerator": "cpu", "devices": 1, "deterministic": True},
        }
    )
    machine["busy"] = 1.0  # another program keeps one core busy at start-up
    assert configure_threads(cfg) == 2
    machine["busy"] = 0.0
    assert configure_threads(cfg) == 2


def test_configure_threads_ddp_ranks_and_explicit_choice(machine):
    machine["cores"] = 8
    ddp = OmegaConf.create({"num_threads": None, "trainer": {"accelerator": "cpu", "devices": 2}})
    assert configure_threads(ddp) == 4
    fixed = OmegaConf.create({"num_threads": 3, "trainer": {"devices": 2}})
    machine["busy"] = 7.0
    assert configure_threads(fixed) == 3  # the config wins, whatever the load
    assert machine["set"] == [4, 3]


def test_parallel_joblib_sweep_jobs_share_the_cores(machine):
    machine["cores"] = 8
    hydra = OmegaConf.create({"hydra": {"mode": "MULTIRUN", "launcher": {"n_jobs": 4}}})
    previous, HydraConfig.instance().cfg = HydraConfig.instance().cfg, hydra  # as in a multirun
    try:
        assert task.sweep_parallel_jobs() == 4
        cfg = OmegaConf.create({"num_threads": None, "trainer": {"accelerator": "cpu"}})
        assert configure_threads(cfg) == 2
    finally:
        HydraConfig.instance().cfg = previous


def test_available_cores_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(task.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert task.available_cores() == 1
