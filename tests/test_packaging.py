"""A non-editable install (a built wheel) carries its configs and the bundled dataset."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO_ROOT


def test_wheel_ships_configs_and_data_and_trains(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO_ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("genlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "genlab/conf/train.yaml",
        "genlab/conf/model/gan.yaml",
        "genlab/conf/data/fashion_mnist_mini.yaml",
        "genlab/assets/fashion_mnist_mini.npz",
    ):
        assert required in names, required
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c", "import genlab, sys; print(genlab.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(run.stdout.strip()).is_relative_to(site)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "genlab.train",
            "debug=fdr",
            "trainer=cpu",
            "hydra.run.dir=run",
            "model.generator.base_channels=8",
            "model.discriminator.base_channels=8",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file()
