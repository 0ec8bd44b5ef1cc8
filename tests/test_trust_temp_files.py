"""Orphaned temp files of interrupted saves are removed at the next start of a run writing to
that directory, and never a file genlab did not create (issue "trust, round 2")."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from genlab.runs.atomic_io import atomic_torch_save
from genlab.runs.files import is_orphaned_temp_file, remove_orphaned_temp_files
from genlab.train import train

TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "data.batch_size=16"]

#: Files genlab did not create: they must survive every cleanup.
USERS = [
    "notes.tmp",
    ".last.ckpt.tmp",
    ".mydata.abcd1234.tmp",  # tempfile-like, but not a checkpoint and no genlab marker
    ".last.ckpt.genlab-x-abcd1234.tmp",
    "last.ckpt.abcd1234.tmp",
]


def _dead_pid() -> int:
    child = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    child.start()
    child.join()
    return child.pid


def _save_forever(path: str) -> None:
    payload = {"state_dict": {"w": __import__("torch").randn(300_000)}}
    while True:
        atomic_torch_save(payload, path)


def _orphans_of_kill9(directory, n: int = 3) -> list[str]:
    """Temp files left by SIGKILLs of a process saving ``directory/last.ckpt`` back to back."""
    path = directory / "last.ckpt"
    context = multiprocessing.get_context("fork")
    for _ in range(20):
        child = context.Process(target=_save_forever, args=(str(path),))
        child.start()
        while not path.exists():
            time.sleep(0.005)
        time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        if len(list(directory.glob(".last.ckpt.*.tmp"))) >= n:
            break
    return sorted(p.name for p in directory.glob(".last.ckpt.*.tmp"))


def _plant(directory) -> tuple[set[str], set[str]]:
    directory.mkdir(parents=True, exist_ok=True)
    dead = _dead_pid()
    ours = {
        ".last.ckpt.k2x_9a0b.tmp",  # genlab before the marker (legacy)
        ".epoch_000.ckpt.abcdefgh.tmp",
        f".last.ckpt.genlab-{dead}-abcd1234.tmp",
        f".best.ckpt.genlab-{dead}-zz_00099.tmp",
    }
    live = f".last.ckpt.genlab-{os.getpid()}-abcd1234.tmp"  # a save in progress: kept
    for name in [*ours, *USERS, live]:
        (directory / name).write_bytes(b"x" * 100)
    return ours, {*USERS, live}


def test_only_genlab_orphans_are_removed(tmp_path):
    ours, kept = _plant(tmp_path)
    removed = remove_orphaned_temp_files(tmp_path)
    assert {p.name for p in removed} == ours
    assert {p.name for p in tmp_path.iterdir()} == kept
    assert remove_orphaned_temp_files(tmp_path / "missing") == []
    os.symlink(tmp_path / "notes.tmp", tmp_path / ".x.ckpt.abcd1234.tmp")
    assert not is_orphaned_temp_file(tmp_path / ".x.ckpt.abcd1234.tmp")  # links: never


def test_kill9_orphans_are_named_as_genlabs_and_removed(tmp_path):
    orphans = _orphans_of_kill9(tmp_path)
    assert orphans, "no kill landed inside a save"
    assert all(".genlab-" in name for name in orphans)
    (tmp_path / "notes.tmp").write_text("mine")
    remove_orphaned_temp_files(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"last.ckpt", "notes.tmp"}


def test_the_next_run_removes_the_orphans_of_its_checkpoint_directory(make_cfg, tmp_path):
    ours, kept = _plant(tmp_path / "checkpoints")
    train(make_cfg(*TINY))
    names = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert not names & ours
    assert kept <= names
    assert "last.ckpt" in names


def test_the_checkpoint_io_cleans_a_directory_before_its_first_save(tmp_path):
    from genlab.runs.atomic_io import AtomicCheckpointIO

    ours, kept = _plant(tmp_path)
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": 1}, tmp_path / "a.ckpt")
    assert {p.name for p in tmp_path.iterdir()} == {*kept, "a.ckpt"}
