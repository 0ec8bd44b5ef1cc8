"""Bad input on the command line: exit code 2 within seconds, one line naming the key, the bad
value and what is allowed, no traceback (HYDRA_FULL_ERROR=1 gives the traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

# Runs `genlab.train.main()` once per case inside ONE interpreter (imports paid once), each with
# its own sys.argv, and reports exit code, stderr, wall time and whether checkpoints appeared.
DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys, time, traceback
    from pathlib import Path
    from hydra.core.global_hydra import GlobalHydra
    from genlab.train import main
    results = []
    for i, (args, env) in enumerate(json.loads(sys.argv[1])):
        os.environ.update(env)
        run_dir = Path(f"run{i}")
        sys.argv = ["genlab-train", *args, f"hydra.run.dir={run_dir}"]
        err, code, start = io.StringIO(), 0, time.perf_counter()
        with contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code
            except BaseException as e:
                code = f"uncaught {type(e).__name__}: {e}"
                err.write(traceback.format_exc())
        for key in env:
            os.environ.pop(key)
        GlobalHydra.instance().clear()
        results.append({"args": args, "code": code, "stderr": err.getvalue(),
                        "seconds": time.perf_counter() - start,
                        "trained": (run_dir / "checkpoints").exists()})
    print("RESULTS" + json.dumps(results))
    """
)

FAST = ["trainer=cpu", "logger=csv", "trainer.max_epochs=1", "trainer.limit_train_batches=1"]
FAST += ["~callbacks.sample_quality"]  # metrics have their own tests


def run_cases(cases: list[tuple[list[str], dict]], cwd: Path) -> list[dict]:
    """Run ``(overrides, extra env)`` cases through the CLI entry point in one interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(cases)],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULTS")), None)
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(line[len("RESULTS") :])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of images, an empty folder, a folder of corrupt files, and bad checkpoints."""
    root = tmp_path_factory.mktemp("inputs")
    for name in ("images", "empty", "corrupt"):
        (root / name).mkdir()
    for i in range(4):
        Image.new("RGB", (40, 40), (i * 60, 0, 0)).save(root / "images" / f"{i}.png")
        (root / "corrupt" / f"bad{i}.png").write_bytes(b"not an image")
    (root / "images" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    torch.save({"state_dict": {}}, root / "foreign.ckpt")
    torch.save({"state_dict": {}, "genlab": {"family": "vae"}}, root / "vae.ckpt")
    return root


def case_table(d: Path) -> list[tuple[list[str], list[str]]]:
    """(overrides, substrings the error line must contain)."""
    img = f"data.path={d / 'images'}"
    return [
        (["model=nope"], ["model='nope'", "'gan'", "'vae'"]),
        (["model.latnt_dim=8"], ["model.latnt_dim=8", "no such key", "model.latent_dim"]),
        (["+model.latnt_dim=8"], ["model.latnt_dim=8", "latent_dim"]),
        (["model.latent_dim=-3"], ["model.latent_dim=-3", "integer >= 1"]),
        (["data.batch_size=0"], ["data.batch_size=0", ">= 1"]),
        (["model.lr=abc"], ["model.lr=abc", "model.optimizer_g.lr", "model.optimizer_d.lr"]),
        (["model=vae", "model.optimizer.lr=abc"], ["model.optimizer.lr='abc'", "number > 0"]),
        (["model.ema_decay=1.5"], ["model.ema_decay=1.5", "(0, 1)"]),
        (["trainer.precision=17"], ["trainer.precision=17", "'32-true'", "'bf16-mixed'"]),
        (["trainer.accelerator=gpu"], ["trainer.accelerator='gpu'", "cpu"]),
        (["data=folder", img, "data.image_size=30"], ["data.image_size=30", "model.generator"]),
        (["data=folder", f"data.path={d / 'missing'}"], ["data.path=", "missing"]),
        (["data=folder", f"data.path={d / 'empty'}"], ["data.path=", "empty"]),
        (["data=folder", f"data.path={d / 'corrupt'}"], ["data.path=", "bad0.png"]),
        (["data=folder", img, "data.image_size=32", "data.strict=true"], ["broken.jpg"]),
        ([f"ckpt_path={d / 'nope.ckpt'}"], ["ckpt_path=", "nope.ckpt", "existing"]),
        ([f"ckpt_path={d / 'foreign.ckpt'}"], ["ckpt_path=", "genlab"]),
        ([f"ckpt_path={d / 'vae.ckpt'}"], ["ckpt_path=", "a gan checkpoint", "vae"]),
        (["ckpt_path=last"], ["ckpt_path='last'", "no run of this config"]),
        (["callbacks.divergence.max_skips=-1"], ["callbacks.divergence.max_skips=-1"]),
        # every Trainer argument is a key (no +), so a misspelt one is an unknown key
        (
            ["trainer.limit_trian_batches=5"],
            ["trainer.limit_trian_batches=5", "did you mean trainer.limit_train_batches"],
        ),
        (["+trainer.limit_trian_batches=5"], ["did you mean trainer.limit_train_batches"]),
        (
            ["+trainer.accumulate_grad_batches=2"],
            ["in the config already", "trainer.accumulate_grad_batches=2 (without the +)"],
        ),
        (["callbacks.best_checkpoint.monitor=val/d_real"], ["callbacks.best_checkpoint.mode"]),
    ]


def corrupt_folder_run(d: Path) -> list[str]:
    """A short training run on a folder holding one corrupt file (skipped with a warning)."""
    args = ["data=folder", f"data.path={d / 'images'}", "data.image_size=32", "data.batch_size=2"]
    args += ["~callbacks.sample_grid", "model.generator.base_channels=8"]
    return args + ["model.discriminator.base_channels=8", "trainer.limit_val_batches=1"]


@pytest.fixture(scope="module")
def results(inputs, tmp_path_factory) -> list[dict]:
    """Every case of :func:`case_table`, then model=nope with HYDRA_FULL_ERROR=1, then the
    corrupt-folder training run: all in one interpreter, through ``genlab.train.main`` imported
    as the ``genlab-train`` console script does (not as ``__main__``)."""
    cases = [(FAST + args, {}) for args, _ in case_table(inputs)]
    cases.append((["model=nope"], {"HYDRA_FULL_ERROR": "1"}))
    cases.append((FAST + corrupt_folder_run(inputs), {}))
    return run_cases(cases, cwd=tmp_path_factory.mktemp("cli"))


def test_every_bad_input_is_one_clear_line_and_exit_2(inputs, results):
    if torch.cuda.is_available():
        pytest.skip("trainer.accelerator=gpu is valid here")
    table = case_table(inputs)
    for (args, expected), result in zip(table, results[: len(table)], strict=True):
        lines = result["stderr"].strip().splitlines()
        assert result["code"] == 2, (args, result)
        assert len(lines) == 1 and lines[0].startswith("genlab: error: "), (args, lines)
        assert "Traceback" not in result["stderr"]
        for text in expected:
            assert text in lines[0], (args, text, lines[0])
        assert not result["trained"], args
        assert result["seconds"] < 30, (args, result["seconds"])  # no training started


def test_full_traceback_with_hydra_full_error(results):
    full = results[-2]
    assert full["code"] != 0 and full["code"] != 2
    assert "Traceback" in full["stderr"] and "model/nope" in full["stderr"]


def test_corrupt_images_are_skipped_with_one_warning(results):
    run = results[-1]
    assert run["code"] in (0, None) and run["trained"], run
    warnings = [line for line in run["stderr"].splitlines() if "broken.jpg" in line]
    assert len(warnings) == 1, run["stderr"][-2000:]
