"""Every command of the README and of the documentation pages runs as written, so the
documented workflow cannot drift.

The commands are read from README.md and docs/**/*.md at collection time: each line of a
```bash block and each ``$ `` line of the other code blocks. They run in order, one scratch
directory (the "workspace") per document, with the venv's ``python`` and console scripts first
on PATH, the repository's ``tests/plugins`` linked into it and ``../shared/data`` beside it (as
beside the repository), with these changes:

- training commands (``genlab.train`` / ``genlab-train``) get :data:`SHORT` appended (one epoch
  of two batches; :data:`RESUMED` after ``ckpt_path=``), replacing the command's own values of
  those keys; evaluation commands get :data:`SMALL_EVAL` where they ask for more;
- placeholders are filled from earlier commands' outputs (:data:`PLACEHOLDERS`); a run they
  need that no earlier command made is trained first with :data:`SHORT`;
- a relative ``data.path=<folder>`` that does not exist gets generated images (80: one batch);
- leading ``NAME=value`` words are the command's environment.

An output block's ``genlab: error: ...`` line is the expected result of the ``$`` command
above it: exit code 2 and that line on stderr (``...`` matches anything); a training command
with a documented error keeps its loggers and its sample-quality callback (shortened). Everything else must exit
0. Commands that need what this machine lacks are skipped with the reason, by the rules of
:data:`SKIPS`. The default suite runs the quick commands (``--cfg``/``--help``, documented
errors, and in the README the first training command and what only reads its outputs); the rest
are ``slow``, as is every command of a block preceded by the line ``<!-- test: slow -->``.
A placeholder the test cannot fill fails the test: give it a rule or make the page runnable.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    DEBIAN_FASHION,
    REPO_ROOT,
    debian_fashion_mnist_available,
    unpack_debian_fashion_mnist,
)

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
SLOW_BLOCK = "<!-- test: slow -->"  # the line before a code block: its commands run with -m slow
VENV_BIN = Path(sys.executable).parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # MNIST IDX files: $GENLAB_MNIST_DIR
TRAIN_PROGRAMS = {("python", "genlab.train"), ("genlab-train", None)}
EVAL_PROGRAMS = {("python", "genlab.eval"), ("genlab-eval", None)}

# Appended to every training command (the README's own values of these keys are dropped).
SHORT = {
    "trainer.max_epochs": "1",
    "trainer.limit_train_batches": "2",
    "trainer.limit_val_batches": "1",
}
RESUMED = {**SHORT, "trainer.max_epochs": "2"}  # the runs resumed from end after 1 epoch
NO_WANDB = {"logger": "csv"}  # unless the command sets logger keys itself
NO_SAMPLE_QUALITY = "~callbacks.sample_quality"  # unless the command needs val/fid & co.
SMALL_SAMPLE_QUALITY = {"metrics.num_samples": "64", "metrics.num_real": "256"}
SWEEPER = {"hydra.sweeper.n_trials": "2"}  # with hparams_search=...
QUALITY_METRIC = r"val/(fid|kid|is|precision|recall)\b"
# genlab.eval: at most this many (the README's 10,000 Inception samples take 30 min here).
SMALL_EVAL = {"metrics.num_samples": 64, "metrics.num_real": 256, "num_test_images": 32, "k": 4}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _mnist() -> bool:
    return (SHARED_DATA / "MNIST" / "raw").is_dir()


# (what the command contains, why it cannot run here, a check that it can run after all or None)
SKIPS = [
    (r"scripts/setup\.sh", "installs torch and genlab with pip: needs the network", None),
    (r"^(pytest|\S*/pytest)\b", "runs the test suite itself", None),
    (r"^ruff\b", "lints the repository (CI does)", None),
    (
        r"^tensorboard\b",
        "starts TensorBoard's server (tests/test_tensorboard.py reads its files)",
        None,
    ),
    (r"^wandb sync\b", "uploads to wandb: needs an account and the network", None),
    (r"data\.download=true", "downloads a dataset: needs the network", None),
    (
        r"^(\w+=\S*\s+)*(bash\s+)?scripts/\S+\.sh\b",
        "a script of full-length runs (its commands are run one by one)",
        None,
    ),
    (
        r"^python3?\s+benchmarks/|^(bash\s+)?benchmarks/\S+\.sh\b",
        "a benchmark: minutes of measurement (tests/test_benchmarks_smoke.py runs them small)",
        None,
    ),
    (r"\bmkdocs serve\b", "starts the documentation server (CI builds the site)", None),
    (r"hydra/launcher=(slurm|submitit_slurm)\b", "submits to a SLURM cluster", None),
    (r"\btrainer\.num_nodes=([2-9]|\d\d)", "needs several GPU nodes (one launch per node)", None),
    (r"\btrainer=(ddp|gpu)(\s|$)", "needs CUDA GPUs", _cuda),
    (r"\btrainer\.accelerator=(gpu|cuda)\b|\bdevice=cuda\b", "needs a CUDA GPU", _cuda),
    (r"\bexperiment=vae_mnist_nll\b", f"needs the MNIST IDX files under {SHARED_DATA}", _mnist),
    (
        r"\bdata=fashion_mnist\b|\bexperiment=cpu_gan_fashion_mnist\b",
        f"needs the full Fashion-MNIST (Debian's dataset-fashion-mnist, {DEBIAN_FASHION})",
        debian_fashion_mnist_available,
    ),
]


@dataclasses.dataclass
class Command:
    line: int  # line number in its document
    text: str  # as written, without its comment
    error: str | None = None  # the documented `genlab: error: ...` line, if any
    slow: bool = False  # in a block marked SLOW_BLOCK
    doc: str = "README.md"  # the document, relative to the repository

    @property
    def id(self) -> str:
        prefix = "" if self.doc == "README.md" else f"{self.doc}:"
        return f"{prefix}L{self.line}:{self.text[:70]}"


def strip_comment(line: str) -> str:
    """``cmd args  # comment`` -> ``cmd args`` (a ``#`` inside quotes is kept)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands(text: str, doc: str = "README.md") -> list[Command]:
    """Each line of a ```bash block, and each ``$ `` line of other blocks with the error line
    that follows it (if any), in document order."""
    commands: list[Command] = []
    fence, pending, block_start, slow, previous = None, "", 0, False, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            if fence is None:
                slow = previous.strip() == SLOW_BLOCK
            fence = None if fence is not None else (line[3:].strip() or "text")
            block_start = number
            continue
        if fence is None:
            if line.strip():
                previous = line
            continue
        if fence == "bash":
            body = strip_comment(pending + line.strip())
            if body.endswith("\\"):
                pending = body[:-1] + " "
                continue
            pending = ""
            if body:
                commands.append(Command(number, body, slow=slow, doc=doc))
        elif line.startswith("$ "):
            commands.append(Command(number, strip_comment(line[2:].strip()), slow=slow, doc=doc))
        elif line.startswith("genlab: error: ") and commands and commands[-1].line > block_start:
            if commands[-1].error is None:  # the first error line after a `$` command
                commands[-1].error = line.strip()
    return commands


def split_env(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """``NAME=value ... cmd args`` -> ({NAME: value}, [cmd, args])."""
    env: dict[str, str] = {}
    while tokens and re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[0]):
        name, value = tokens[0].split("=", 1)
        env[name] = value
        tokens = tokens[1:]
    return env, tokens


def program(tokens: list[str]) -> tuple[str, str | None]:
    """(``python`` | console script | other, module run with ``-m`` or None)."""
    name = Path(tokens[0]).name
    if name.startswith("python") and len(tokens) > 2 and tokens[1] == "-m":
        return "python", tokens[2]
    return name, None


def is_training(tokens: list[str]) -> bool:
    return program(tokens) in TRAIN_PROGRAMS and not any(
        t.startswith(("--cfg", "--help", "-h", "--info", "--hydra-help")) for t in tokens
    )


def key_of(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def overrides_of(tokens: list[str]) -> list[str]:
    """The Hydra overrides of a genlab command (``key=value``, ``~key``; no flags)."""
    start = 3 if program(tokens)[1] else 1
    return [t for t in tokens[start:] if not t.startswith("-")]


def shortened(tokens: list[str], documented_error: bool = False) -> list[str]:
    """A training command with SHORT (RESUMED) & co. appended in place of its own values;
    for a ``documented_error`` only the length and sample counts change (its loggers and its
    sample-quality callback stay: they may be what raises the error)."""
    keys = {key_of(t) for t in overrides_of(tokens)}
    extra = dict(RESUMED if "ckpt_path" in keys else SHORT)
    if not documented_error and not any(k == "logger" or k.startswith("logger.") for k in keys):
        extra.update(NO_WANDB)
    if "hparams_search" in keys:
        extra.update(SWEEPER)
    # a sweeper optimising val/fid, or best.ckpt of val/fid, needs the sample-quality callback
    needs_quality = (
        documented_error or "hparams_search" in keys or re.search(QUALITY_METRIC, " ".join(tokens))
    )
    if needs_quality:
        extra.update(SMALL_SAMPLE_QUALITY)
    dropped = [t for t in overrides_of(tokens) if key_of(t) in extra]
    kept = [t for t in tokens if t not in dropped]
    appended = [f"{k}={v}" for k, v in extra.items()]
    if not needs_quality and not any(k.startswith("callbacks.sample_quality") for k in keys):
        appended.append(NO_SAMPLE_QUALITY)
    return kept + appended


def smaller_eval(tokens: list[str]) -> list[str]:
    """genlab.eval with at most SMALL_EVAL samples, real images, test images and k."""
    kept, given, overrides = [], set(), overrides_of(tokens)
    for t in tokens:
        if t in overrides and "=" in t:
            key, value = key_of(t), t.split("=", 1)[1]
            if key in SMALL_EVAL and value.isdigit() and int(value) > SMALL_EVAL[key]:
                continue  # replaced by the small value below
            given.add(key)
        kept.append(t)
    return kept + [f"{k}={v}" for k, v in SMALL_EVAL.items() if k not in given]


class Workspace:
    """The scratch directory all README commands share, and what they left in it."""

    def __init__(self, root: Path):
        self.root = root
        self.ready = False
        home = root.parent / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "GENLAB_"))}
        env.update(HOME=str(home), WANDB_CONFIG_DIR=str(home / "wandb"), OMP_NUM_THREADS="1")
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        if _mnist():
            env["GENLAB_MNIST_DIR"] = str(SHARED_DATA)
        self.env = env

    def prepare(self) -> None:
        """Create the directory, the full Fashion-MNIST where Debian has it, tests/plugins."""
        if self.ready:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if debian_fashion_mnist_available():
            unpack_debian_fashion_mnist(self.root / "data")
        (self.root / "tests").mkdir(exist_ok=True)
        (self.root / "tests" / "plugins").symlink_to(REPO_ROOT / "tests" / "plugins")
        if SHARED_DATA.is_dir():  # ../shared/data beside the workspace, as beside the repo
            (self.root.parent / "shared").mkdir(exist_ok=True)
            (self.root.parent / "shared" / "data").symlink_to(SHARED_DATA)
        self.ready = True

    def run(
        self, tokens: list[str], timeout: float = 1200, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        executable = shutil.which(tokens[0], path=self.env["PATH"]) or tokens[0]
        return subprocess.run(
            [executable, *tokens[1:]],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    # -- what earlier commands left -------------------------------------------------------------
    def runs(self, family: str | None = None) -> list[Path]:
        """Run dirs with a last.ckpt (of ``family``), oldest first."""
        from genlab.runs.checkpoints import load_checkpoint

        found = []
        for ckpt in self.root.glob("outputs/*/runs/*/checkpoints/last.ckpt"):
            if family is None or load_checkpoint(ckpt)["genlab"]["family"] == family:
                found.append((ckpt.stat().st_mtime, ckpt.parent.parent))
        return [run for _, run in sorted(found)]

    def sweeps(self) -> list[Path]:
        found = [p for p in self.root.glob("outputs/*/multirun/*") if p.is_dir()]
        return sorted(found, key=lambda p: p.stat().st_mtime)

    def run_dir(self, family: str | None = "gan") -> Path:
        """The latest run of ``family``, trained here first (SHORT) when there is none."""
        if not self.runs(family):
            model = ["model=vae"] if family == "vae" else []
            self.check(self.run(shortened(["python", "-m", "genlab.train", *model])), 0)
        return self.runs(family)[-1].relative_to(self.root)

    def sweep_dir(self) -> Path:
        if not self.sweeps():
            self.check(self.run(shortened(["python", "-m", "genlab.train", "-m", "seed=1,2"])), 0)
        return self.sweeps()[-1].relative_to(self.root)

    def same_config_run(self, tokens: list[str]) -> None:
        """A run that the training command ``tokens`` (as written, with ``ckpt_path=last``)
        resumes: trained first (SHORT) when there is none."""
        from genlab.runs.checkpoints import latest_run_checkpoint

        overrides = overrides_of(shortened(tokens))
        if latest_run_checkpoint(self.root / "outputs", "train", overrides) is None:
            # the resumed command's overrides less those ckpt_path=last does not match on
            resuming = ("ckpt_path", "logger.wandb.resume", "logger.wandb.id")
            first = [t for t in shortened(tokens) if key_of(t) not in resuming]
            length = f"trainer.max_epochs={SHORT['trainer.max_epochs']}"
            first = [length if key_of(t) == "trainer.max_epochs" else t for t in first]
            self.check(self.run(first), 0)

    def image_folder(self, relative: str) -> None:
        """A folder of a few RGB images where the README names one that is not there."""
        from PIL import Image

        folder = self.root / relative
        folder.mkdir(parents=True)
        for i in range(80):  # ~72 training images: one batch of the default 64
            Image.new("RGB", (64, 64), (3 * i, 255 - 3 * i, 90)).save(folder / f"{i}.png")

    @staticmethod
    def check(done: subprocess.CompletedProcess, code: int, error: str | None = None) -> None:
        output = f"\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"
        assert done.returncode == code, f"{done.args} exited {done.returncode}{output}"
        if error is not None:
            lines = [x for x in done.stderr.splitlines() if x.startswith("genlab: error: ")]
            assert lines and matches(error, lines[-1]), f"expected {error!r}{output}"


def matches(documented: str, actual: str) -> bool:
    """``documented`` equals ``actual``, a ``...`` / ``…`` in it standing for anything."""
    pattern = ".*".join(re.escape(part) for part in re.split(r"\.\.\.|…", documented))
    return re.fullmatch(pattern, actual) is not None


def family_of(text: str) -> str:
    return "vae" if re.search(r"\bmodel=(vae|beta_vae|iwae|vae_mlp)\b|<a VAE>", text) else "gan"


TIMESTAMP = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d"
# (pattern, what fills it): filled in this order from the workspace (see Workspace.*_dir).
PLACEHOLDERS = [
    (r"outputs/train/runs/(<run>|" + TIMESTAMP + ")", lambda ws, t: ws.run_dir(family_of(t))),
    (r"outputs/train/multirun/(<date>_<time>|" + TIMESTAMP + ")", lambda ws, t: ws.sweep_dir()),
    (r"<a VAE>", lambda ws, t: ws.run_dir("vae") / "checkpoints"),
    (r"(?<=ckpt_path=)\.\.\.(?=/last\.ckpt)", lambda ws, t: ws.run_dir("gan") / "checkpoints"),
    (r"(?<=ckpt_path=)\.\.\.(?=\s|$)", lambda ws, t: ws.run_dir("gan") / "checkpoints/last.ckpt"),
    (r"<run(?: dir)?>", lambda ws, t: ws.run_dir(family_of(t))),  # a run dir of the family
]


def fill(text: str, ws: Workspace) -> str:
    for pattern, value in PLACEHOLDERS:
        if re.search(pattern, text):
            text = re.sub(pattern, str(value(ws, text)).replace("\\", "/"), text)
    left = re.findall(r"<[^<>\s]+(?: [^<>\s]+)*>", text)
    if left:
        pytest.fail(
            f"a documented command has a placeholder this test cannot fill: {left} in {text!r}"
        )
    return text


def skip_reason(text: str) -> str | None:
    for pattern, reason, available in SKIPS:
        if re.search(pattern, text) and not (available and available()):
            return reason
    match = re.search(r"\bdata\.path=(/\S+)", text)
    if match and not Path(match.group(1)).exists():
        return f"needs a dataset at {match.group(1)}"
    return None


def is_quick(command: Command, first_training_line: int | None) -> bool:
    tokens = split_env(shlex.split(command.text))[1]
    quick_flags = ("--cfg", "--help", "-h", "--info")
    if command.slow:
        return False
    if command.error or any(t.startswith(quick_flags) for t in tokens):
        return True
    if command.line == first_training_line:
        return True
    return program(tokens)[0] in ("ls", "cat") and first_training_line is not None


def doc_pages() -> list[Path]:
    """The documentation pages with commands (docs/**/*.md), in path order."""
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.relative_to(DOCS).parts)


def doc_commands(path: Path) -> list[Command]:
    return readme_commands(path.read_text(encoding="utf-8"), path.relative_to(REPO_ROOT).as_posix())


def collect() -> list:
    """README commands (its first training command and what reads its outputs quick), then
    every docs page's (only --cfg/--help and documented errors quick: the default suite has
    no room for their training runs)."""
    params = collect_doc(readme_commands(README.read_text(encoding="utf-8")), readme=True)
    for page in doc_pages():
        params += collect_doc(doc_commands(page), readme=False)
    return params


def collect_doc(commands: list[Command], readme: bool) -> list:
    runnable = [c for c in commands if skip_reason(c.text) is None]
    first_training = next(
        (
            c.line
            for c in runnable
            if not c.error and is_training(split_env(shlex.split(c.text))[1])
        ),
        None,
    )
    if not readme:
        first_training = None
    params = []
    for command in commands:
        reason = skip_reason(command.text)
        if reason:
            marks = [pytest.mark.skip(reason=f"{reason}: {command.text}")]
        elif is_quick(command, first_training):
            marks = []
        else:
            marks = [pytest.mark.slow]
        params.append(pytest.param(command, id=command.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> dict[str, Workspace]:
    """One workspace per document, made when its first command runs."""
    base = tmp_path_factory.mktemp("readme")

    class PerDocument(dict):
        def __missing__(self, doc: str) -> Workspace:
            name = re.sub(r"\W+", "_", doc)
            workspace = self[doc] = Workspace(base / name / "work")
            workspace.prepare()
            return workspace

    return PerDocument()


@pytest.mark.parametrize("command", collect())
def test_readme_command_runs_as_written(command: Command, workspaces):
    workspace = workspaces[command.doc]
    text = fill(command.text, workspace)
    if re.search(r"[|;&<>`$]", text):  # a compound shell line: run it as it is
        workspace.check(workspace.run(["bash", "-c", text]), 0)
        return
    env, tokens = split_env(shlex.split(text))
    for path in re.findall(r"\bdata\.path=([^/\s]\S*)", text):
        if not (workspace.root / path).exists():
            workspace.image_folder(path)
    if is_training(tokens):
        if "ckpt_path=last" in tokens:  # needs an earlier run of the same config
            workspace.same_config_run(tokens)
        tokens = shortened(tokens, documented_error=command.error is not None)
    elif program(tokens) in EVAL_PROGRAMS:
        tokens = smaller_eval(tokens)
    done = workspace.run(tokens, env=env)
    workspace.check(done, 2 if command.error else 0, command.error)


def test_the_readme_has_commands_in_every_workflow_section():
    """The parser still finds the commands (a changed README format must not skip them all)."""
    commands = readme_commands(README.read_text(encoding="utf-8"))
    texts = [c.text for c in commands]
    for module in ("genlab.train", "genlab.sample", "genlab.eval", "genlab.compare"):
        assert any(f"-m {module}" in t for t in texts), module
    assert any(" -m " in t and "genlab.train -m" in t for t in texts)  # a sweep
    assert any(c.error for c in commands)  # a documented error
    assert not [t for t in texts if t.startswith("$") or " #" in t]  # prompts, comments gone


def test_every_docs_page_with_a_workflow_has_its_commands_found():
    """The parser finds the commands of the tutorials and how-to guides (a changed format of
    the pages must not silently skip them), and every error in them is attached to a command."""
    for page in doc_pages():
        rel = page.relative_to(DOCS).as_posix()
        if not rel.startswith(("tutorials/", "how-to/")):
            continue
        commands = doc_commands(page)
        assert commands, f"{rel}: no command found"
        assert not [c.text for c in commands if c.text.startswith("$") or " #" in c.text], rel
    troubleshooting = doc_commands(DOCS / "how-to" / "troubleshooting.md")
    assert sum(1 for c in troubleshooting if c.error) >= 10
