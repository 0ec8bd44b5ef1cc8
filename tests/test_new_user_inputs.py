"""What a new user types, wrongly: every bad input to genlab.train/sample/eval/compare is one
``genlab: error:`` line naming the key, exit 2, before any training starts; a clean start prints
only what the user can act on (no litlogger tip, no LeafSpec warning, each Lightning line once).

All the bad inputs run through each module's ``main()`` inside ONE interpreter (imports paid
once), each with its own ``sys.argv``, stderr captured."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from conftest import compose_config
from genlab.checks.errors import ConfigError
from genlab.checks.known_keys import check_config_keys
from genlab.checks.values import config_from_kwargs, field_shapes
from genlab.cli.entry import PrintedOnceFilter, quiet_start
from genlab.models import registry

DRIVER = textwrap.dedent(
    """
    import contextlib, importlib, io, json, sys, time, traceback
    from pathlib import Path
    from hydra.core.global_hydra import GlobalHydra
    results, table, prefix = [], json.loads(sys.argv[1]), sys.argv[2]
    for i, (module, args) in enumerate(table):
        run_dir = Path(f"{prefix}{i}")
        err, out, code, start = io.StringIO(), io.StringIO(), 0, time.perf_counter()
        main = importlib.import_module(module).main
        if module == "genlab.compare":  # argparse: takes its arguments
            call = lambda: main(args)
        else:
            extra = [f"hydra.run.dir={run_dir}"] if module == "genlab.train" else []
            sys.argv = [module, *args, *extra]
            call = main
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                call()
            except SystemExit as e:
                code = e.code
            except BaseException as e:
                code = f"uncaught {type(e).__name__}: {e}"
                err.write(traceback.format_exc())
        GlobalHydra.instance().clear()
        results.append({"code": code, "stderr": err.getvalue(), "stdout": out.getvalue(),
                        "seconds": time.perf_counter() - start,
                        "trained": (run_dir / "checkpoints").exists()})
    print("RESULTS" + json.dumps(results))
    """
)

# a case that wrongly passes ends fast instead of training 25 epochs
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1"]


def cases(d: Path) -> list[tuple[str, list[str], list[str]]]:
    """(module, arguments, texts the one error line must contain: the key first)."""
    ckpt = d / "not_a_checkpoint.ckpt"
    train = [
        # bad group options
        (["model=nope"], ["model='nope'", "'gan'"]),
        (["data=nope"], ["data='nope'", "'mnist'"]),
        (["trainer=nope"], ["trainer='nope'", "'cpu'"]),
        (["logger=nope"], ["logger='nope'", "'csv'"]),
        (["experiment=nope"], ["experiment='nope'"]),
        (["debug=nope"], ["debug='nope'", "'fdr'"]),
        # misspelt keys and bad values
        (["model.latnt_dim=8"], ["model.latnt_dim=8", "did you mean model.latent_dim"]),
        (["model.latent_dim=-3"], ["model.latent_dim=-3", "integer >= 1"]),
        (["model.latent_dim=abc"], ["model.latent_dim='abc'"]),
        (["model.loss=hinj"], ["model.loss='hinj'", "'hinge'"]),
        (["model.lr=0.1"], ["model.lr=0.1", "model.optimizer_g.lr"]),
        (["data.batch_size=0"], ["data.batch_size=0"]),
        (["data.batch_sise=32"], ["data.batch_sise=32", "data.batch_size"]),
        (["metrics.num_samples=abc"], ["metrics.num_samples='abc'"]),
        (["seed=-1"], ["seed=-1"]),
        (["num_threads=0"], ["num_threads=0"]),
        ([f"ckpt_path={d / 'nope.ckpt'}"], ["ckpt_path=", "nope.ckpt"]),
        # a scalar where a config node is, and the reverse
        (["model.generator=5"], ["model.generator=5", "mapping", "model.generator.arch="]),
        (["model.discriminator=null"], ["model.discriminator=None", "mapping"]),
        (["model.optimizer_g=0.001"], ["model.optimizer_g=0.001", "mapping"]),
        (["model=vae", "model.optimizer=adam"], ["model.optimizer='adam'", "mapping"]),
        (["model=vae", "model.hidden_dims=5"], ["model.hidden_dims=5", "a list"]),
        (["model=vqvae", "model.lr_scheduler=5"], ["model.lr_scheduler=5", "mapping or null"]),
        (["model.generator=[1]"], ["model.generator=[1]", "mapping"]),
        (["model.latent_dim={a:1}"], ["model.latent_dim={'a': 1}", "an integer"]),
        (["callbacks.model_checkpoint=5"], ["callbacks.model_checkpoint=5", "callback node"]),
        (["tags=5"], ["tags=5", "a list"]),
        (["labels=5"], ["labels=5", "mapping"]),
        (["seed={a:1}"], ["seed="]),
        # keys added with + that nothing reads, at every level
        (["+foo=bar"], ["foo='bar'", "no such key", "+labels.foo=bar"]),
        (["+lr=0.1"], ["lr=0.1", "did you mean model.optimizer_g.lr"]),
        (["+model.lrr=0.1"], ["model.lrr=0.1", "did you mean model.optimizer_g.lr"]),
        (["+metrics.num_sample=50"], ["metrics.num_sample=50", "did you mean metrics.num_samples"]),
        (["+paths.data_dirr=/tmp"], ["paths.data_dirr='/tmp'", "did you mean paths.data_dir"]),
        (["+callbacks.foo=1"], ["callbacks.foo=1", "no such key", "_target_"]),
        (
            ["+callbacks.sampl_grid.every_n_epochs=2"],
            ["callbacks.sampl_grid=", "did you mean callbacks.sample_grid.every_n_epochs"],
        ),
        (
            ["+callbacks.sample_grid.every_n_epoch=2"],
            ["callbacks.sample_grid.every_n_epoch=2", "callbacks.sample_grid.every_n_epochs"],
        ),
        (["+logger.wandb.projct=x"], ["logger.wandb.projct='x'", "logger.wandb.project"]),
        (["+data.batch_sise=32"], ["data.batch_sise=32", "did you mean data.batch_size"]),
        (["+trainer.limit_trian_batches=5"], ["trainer.limit_trian_batches=5", "did you mean"]),
        (["+trainer.accumulate_grad_batches=2"], ["+trainer.accumulate_grad_batches=2"]),
        # accelerator, precision, devices, epochs
        (["trainer.accelerator=tpu"], ["trainer.accelerator='tpu'", "auto, cpu", "torch_xla"]),
        (["trainer.accelerator=mps"], ["trainer.accelerator='mps'", "auto, cpu"]),
        (["trainer.accelerator=foo"], ["trainer.accelerator='foo'", "'cpu'"]),
        (["trainer.precision=17"], ["trainer.precision=17", "'32-true'"]),
        (["trainer.devices=0"], ["trainer.devices=0"]),
        (["trainer.max_epochs=-5"], ["trainer.max_epochs=-5"]),
    ]
    if not torch.cuda.is_available():
        train.append((["trainer.accelerator=gpu"], ["trainer.accelerator='gpu'", "auto, cpu"]))
    sample = [
        ([], ["ckpt_path"]),
        ([f"ckpt_path={d / 'nope.ckpt'}"], ["ckpt_path=", "nope.ckpt"]),
        ([f"ckpt_path={ckpt}"], ["ckpt_path=", "not_a_checkpoint.ckpt"]),
        ([f"ckpt_path={ckpt}", "mode=foo"], ["mode='foo'", "'interpolate'"]),
        ([f"ckpt_path={ckpt}", "num_sample=3"], ["num_sample=3", "did you mean num_samples"]),
        ([f"ckpt_path={ckpt}", "+foo=bar"], ["foo='bar'", "no such key"]),
        ([f"ckpt_path={ckpt}", "+num_sample=3"], ["num_sample=3", "did you mean num_samples"]),
        ([f"ckpt_path={ckpt}", "seed={a:1}"], ["seed={'a': 1}", "an integer"]),
    ]
    evaluate = [
        ([], ["ckpt_path"]),
        ([f"ckpt_path={d / 'nope.ckpt'}"], ["ckpt_path=", "nope.ckpt"]),
        ([f"ckpt_path={ckpt}", "k=0"], ["k=0"]),
        ([f"ckpt_path={ckpt}", "split=foo"], ["split='foo'"]),
        ([f"ckpt_path={ckpt}", "device=tpu"], ["device='tpu'"]),
        ([f"ckpt_path={ckpt}", "metrics=nope"], ["metrics='nope'"]),
        ([f"ckpt_path={ckpt}", "+foo=1"], ["foo=1", "no such key"]),
        ([f"ckpt_path={ckpt}", "+metrics.num_sample=5"], ["metrics.num_sample=5", "num_samples"]),
        ([f"ckpt_path={ckpt}", "+paths.cache=x"], ["paths.cache='x'", "paths.cache_dir"]),
    ]
    compare = [
        ([str(d / "missing_dir")], ["missing_dir"]),
        ([str(d / "empty_dir")], ["empty_dir"]),
        ([], ["paths", "usage: genlab-compare"]),  # no directory given
        ([str(d / "empty_dir"), "--metrc", "val/fid"], ["--metrc"]),  # a misspelt flag
    ]
    return (
        [("genlab.train", [*SHORT, *args], texts) for args, texts in train]
        + [("genlab.sample", args, texts) for args, texts in sample]
        + [("genlab.eval", args, texts) for args, texts in evaluate]
        + [("genlab.compare", args, texts) for args, texts in compare]
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("new_user")
    (d / "not_a_checkpoint.ckpt").write_text("hello")
    (d / "empty_dir").mkdir()
    return d


CLEAN_START = ["trainer.max_epochs=1", "trainer.limit_train_batches=2"]
CLEAN_START += ["trainer.limit_val_batches=1", "logger=csv", "~callbacks.sample_quality"]
CLEAN_START += ["~callbacks.rich_progress_bar"]


@pytest.fixture(scope="module")
def runs(workdir) -> dict:
    """The bad inputs (two interpreters, half the cases each) and a clean start of a short
    training run, all three processes at once."""
    table = [(module, args) for module, args, _ in cases(workdir)]
    halves = [table[0::2], table[1::2]]
    run_dir = workdir / "clean_start"
    start = [sys.executable, "-m", "genlab.train", *CLEAN_START, f"hydra.run.dir={run_dir}"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(half), f"half{n}_run"], cwd=workdir, **pipes
        )
        for n, half in enumerate(halves)
    ]
    procs.append(subprocess.Popen(start, cwd=workdir, **pipes))
    outputs = [proc.communicate(timeout=600) for proc in procs]
    halves_results = []
    for out, err in outputs[:2]:
        line = next((x for x in out.splitlines() if x.startswith("RESULTS")), None)
        assert line, out[-2000:] + err[-3000:]
        halves_results.append(json.loads(line[len("RESULTS") :]))
    results = [None] * len(table)
    results[0::2], results[1::2] = halves_results
    out, err = outputs[2]
    clean = {"code": procs[2].returncode, "stdout": out, "stderr": err, "run_dir": run_dir}
    return {"results": results, "clean_start": clean}


@pytest.fixture(scope="module")
def results(runs) -> list[dict]:
    return runs["results"]


def test_the_list_is_long_enough(workdir):
    table = cases(workdir)
    assert len(table) >= 41
    assert {module for module, _, _ in table} == {
        "genlab.train", "genlab.sample", "genlab.eval", "genlab.compare"
    }  # fmt: skip


@pytest.mark.parametrize("index", range(len(cases(Path("/d")))))
def test_bad_input_is_one_line_naming_the_key_and_exit_2(workdir, results, index):
    module, args, texts = cases(workdir)[index]
    result = results[index]
    lines = result["stderr"].strip().splitlines()
    assert result["code"] == 2, (module, args, result)
    assert len(lines) == 1 and lines[0].startswith("genlab: error: "), (module, args, lines)
    for text in texts:
        assert text in lines[0], (module, args, text, lines[0])
    assert not result["trained"] and "Starting training" not in result["stdout"], args


# -- the scalar/node check, over every node and value of every builtin family's config ------
def _base(name: str) -> dict:
    fields = {f.name for f in dataclasses.fields(registry.builtin_config_class(name))}
    base = {"image_size": 32, "channels": 1, "vqvae_ckpt": "x.ckpt", "arch": "mlp"}
    if name != "hvae":
        base.pop("arch")
    return {k: v for k, v in base.items() if k in fields}


FIELDS = [
    (name, key, shape)
    for name in sorted(registry.BUILTIN_CONFIGS)
    for key, (shape, _, _) in field_shapes(registry.builtin_config_class(name)).items()
    if shape is not None
]


@pytest.mark.parametrize(("name", "key", "shape"), FIELDS, ids=[f"{n}.{k}" for n, k, _ in FIELDS])
def test_a_node_given_a_scalar_or_a_scalar_given_a_node_names_the_key(name, key, shape):
    """Every dict/list field refuses a scalar (and null unless optional), every scalar field a
    mapping and a list: one ConfigError naming model.<key>, through the CLI's path
    (check_model_config) and the dataclass itself."""
    from omegaconf import OmegaConf

    config_class = registry.builtin_config_class(name)
    bad = [5, "abc"] if shape in ("mapping", "list") else [{"a": 1}, [1, 2]]
    if shape in ("mapping", "list") and not field_shapes(config_class)[key][1]:
        bad.append(None)
    if shape == "mapping":
        bad.append([1])
    if shape == "list":
        bad.append({"a": 1})
    target = next(t for t, n in registry.BUILTIN_TARGETS.items() if n == name)
    for value in bad:
        kwargs = {**_base(name), key: value}
        with pytest.raises(ConfigError, match=rf"^model\.{key}=") as info:
            config_from_kwargs(config_class, kwargs)
        expected = {"mapping": "allowed a mapping", "list": "allowed a list"}
        assert expected.get(shape, "is a single value, not a config node") in str(info.value)
        with pytest.raises(ConfigError, match=rf"^model\.{key}="):
            config_class(**kwargs)
        node = OmegaConf.create({"_target_": target, "_recursive_": False, **kwargs})
        with pytest.raises(ConfigError, match=rf"^model\.{key}="):
            registry.check_model_config(node)


def test_every_builtin_family_has_node_fields_checked():
    for name in registry.BUILTIN_CONFIGS:
        shapes = field_shapes(registry.builtin_config_class(name))
        assert [k for k, (s, _, _) in shapes.items() if s == "mapping"], name


# -- what must keep working ---------------------------------------------------------------
VALID = [
    ["+labels.owner=me", "+labels.project.phase=2"],
    ["+trainer.max_time=00:00:05:00", "+trainer.limit_train_batches=20"],
    ["+callbacks.my_cb._target_=genlab.callbacks.elapsed_time.ElapsedTimeCallback"],
    ["+callbacks.model_checkpoint.every_n_train_steps=1"],
    ["logger=wandb", "+logger.wandb.notes=hi"],  # a wandb.init argument
    ["+paths.my_data=/data", "data.data_dir=${paths.my_data}"],  # read by an interpolation
    ["callbacks.sample_grid=null", "logger.csv=null"],  # turned off
    ["hydra.job.chdir=false", "+hydra.job.env_set.GENLAB_X=1"],
    ["tags=[a,b]", "+labels.team=vision"],
]


@pytest.mark.parametrize("overrides", VALID, ids=" ".join)
def test_valid_additions_pass_the_key_checks(tmp_path, overrides):
    cfg = compose_config(tmp_path, *overrides)
    check_config_keys(cfg, "train")


def test_eval_data_overrides_are_left_to_eval(tmp_path):
    """genlab.eval's data.* overrides are checked against the checkpoint's data config."""
    cfg = compose_config(tmp_path, "ckpt_path=x.ckpt", "+data.batch_size=3", config_name="eval")
    check_config_keys(cfg, "eval")


def test_labels_are_documented_in_the_config():
    import genlab

    text = (Path(genlab.__file__).parent / "conf" / "train.yaml").read_text()
    line = next(x for x in text.splitlines() if x.startswith("labels:"))
    assert "+labels.<name>=<value>" in line and "never read" in line


# -- a clean start -------------------------------------------------------------------------
def test_quiet_start_keeps_warnings_about_the_users_code():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_start()
        warnings.warn("model.latent_dim is large for this data", UserWarning, stacklevel=1)
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1)
    messages = [str(w.message) for w in caught]
    assert "model.latent_dim is large for this data" in messages
    assert any("LeafSpec" in m for m in messages)  # raised here, not by Lightning: shown


def test_a_line_printed_by_its_own_logger_is_not_printed_again_by_the_root():
    import io

    own, root_out, file_out = io.StringIO(), io.StringIO(), io.StringIO()
    child = logging.getLogger("genlab_test_lib.sub")
    parent = logging.getLogger("genlab_test_lib")
    root = logging.getLogger()
    handlers = [logging.StreamHandler(root_out), logging.StreamHandler(file_out)]
    handlers[0].addFilter(PrintedOnceFilter())
    parent.addHandler(logging.StreamHandler(own))
    for h in handlers:
        root.addHandler(h)
    level = child.level
    child.setLevel(logging.INFO)
    try:
        child.info("GPU available: False")
        logging.getLogger("genlab_test_other").warning("your data is small")
    finally:
        child.setLevel(level)
        parent.handlers.clear()
        for h in handlers:
            root.removeHandler(h)
    assert own.getvalue() == "GPU available: False\n"
    assert root_out.getvalue() == "your data is small\n"  # printed once, by its own handler
    assert "GPU available" in file_out.getvalue()  # a handler without the filter: every line


def test_a_clean_start_prints_no_tip_no_leafspec_and_each_lightning_line_once(runs):
    done = runs["clean_start"]
    assert done["code"] == 0, done["stderr"][-3000:]
    both = done["stdout"] + done["stderr"]
    assert "litlogger" not in both and "💡" not in both
    assert "LeafSpec" not in both
    assert both.count("GPU available:") == 1, both[-3000:]
    assert "GPU available:" in (done["run_dir"] / "train.log").read_text()  # the log keeps it
