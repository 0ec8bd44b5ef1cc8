"""A bad model value is refused before torch or Lightning is imported (issue 12).

``genlab.train`` builds a builtin family's typed config from the composed ``cfg.model``
(:func:`genlab.models.registry.check_model_config`) right after the run-config checks; the
configs read plain-data catalogs (:mod:`genlab.nets.catalog`, :mod:`genlab.losses.names`,
:mod:`genlab.augment.policy`), which the tests below pin against the torch classes.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import hydra.utils
import pytest
from omegaconf import OmegaConf

from conftest import CONF_DIR, compose_config
from genlab.checks.errors import ConfigError, find_config_error
from genlab.models import registry

# Runs `genlab.train.main()` once per case in ONE fresh interpreter and reports, per case, the
# exit code, stderr and the heavy modules imported so far (every case must fail before any).
DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from hydra.core.global_hydra import GlobalHydra
    from genlab.train import main
    results = []
    for i, args in enumerate(json.loads(sys.argv[1])):
        sys.argv = ["genlab-train", *args, f"hydra.run.dir=run{i}"]
        err, code = io.StringIO(), 0
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main()
            except SystemExit as e:
                code = e.code
        GlobalHydra.instance().clear()
        heavy = sorted(m for m in ("torch", "lightning") if m in sys.modules)
        results.append({"code": code, "stderr": err.getvalue(), "heavy": heavy})
    print("RESULTS" + json.dumps(results))
    """
)

# (overrides, the start of the one error line: the key and the bad value)
CASES = [
    (["model.latent_dim=-3"], "model.latent_dim=-3 is invalid: allowed an integer >= 1"),
    (["+model.discriminator.wide=true"], "model.discriminator.wide=True is invalid: allowed a key"),
    (["model.compile=maybe"], "model.compile='maybe' is invalid: allowed true or false"),
    (["model=vae", "model.likelihood=nope"], "model.likelihood='nope' is invalid"),
    (["model=topdown_vae", "model.width=0"], "model.width=0 is invalid"),
    (["model=vqvae_prior"], "model.vqvae_ckpt=None is invalid"),
    # a scalar where a config node is (was an AttributeError traceback in check_net_spec)
    (["model.generator=5"], "model.generator=5 is invalid: allowed a mapping"),
    (["model=vae", "model.optimizer=[1]"], "model.optimizer=[1] is invalid: allowed a mapping"),
    # keys added with + that nothing reads (were silently ignored)
    (["+foo=bar"], "foo='bar' is invalid: no such key"),
    (["+lr=0.1"], "lr=0.1 is invalid: no such key (did you mean model.optimizer_g.lr"),
    (["+model.lrr=0.1"], "model.lrr=0.1 is invalid: no such key (did you mean model.optimizer_g"),
    (["+metrics.num_sample=5"], "metrics.num_sample=5 is invalid: no such key (did you mean"),
    (["+callbacks.foo=1"], "callbacks.foo=1 is invalid: no such key"),
]


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps([args for args, _ in CASES])],
        cwd=tmp_path_factory.mktemp("early"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULTS")), None)
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(line[len("RESULTS") :])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[" ".join(a) for a, _ in CASES])
def test_bad_model_value_exits_2_in_one_line_before_torch_is_imported(cli_results, index):
    (args, expected), result = CASES[index], cli_results[index]
    lines = result["stderr"].strip().splitlines()
    assert result["code"] == 2, (args, result)
    assert lines == [lines[0]] and lines[0].startswith(f"genlab: error: {expected}"), lines
    assert result["heavy"] == [], (args, "imported before the error", result["heavy"])


def test_config_modules_import_neither_torch_nor_lightning():
    modules = ["genlab.models.registry"]
    modules += sorted({path.partition(":")[0] for path in registry.BUILTIN_CONFIGS.values()})
    modules += ["genlab.nets.catalog", "genlab.losses.names", "genlab.augment.policy"]
    code = f"""if True:
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        print("HEAVY", sorted(m for m in ("torch", "lightning") if m in sys.modules))
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout


# -- pre-validation and instantiation agree -------------------------------------------------
SAME_ERROR = [
    ["model.latent_dim=0"],
    ["model.loss=nope"],
    ["model.generator.arch=x"],
    ["model.generator.arch=resnet"],  # 28 px data: the image size names data.image_size
    ["model.discriminator.base_channels=8", "model.channels_last=1"],
    ["model=vae", "model.prior=nope"],
    ["model=iwae_2layer", "model.arch=conv"],
    ["model=iwae_2layer", "model.latent_dims=[0]"],
    ["model.augment=ada", "model.ada_ops=foo"],
    ["model=topdown_vae", "model.num_resolutions=9"],
    ["model=vqvae", "model.ema_decay=1.0"],
    ["model=vqvae", "model.num_embeddings=0"],
    ["model=vqvae_prior"],
    ["+model.latnt_dim=8"],  # an unknown key (added with +): the allowed keys, did-you-mean
]


@pytest.mark.parametrize("overrides", SAME_ERROR, ids=" ".join)
def test_prevalidation_raises_the_error_instantiation_raises(tmp_path, overrides):
    cfg = compose_config(tmp_path, *overrides)
    with pytest.raises(ConfigError) as early:
        registry.check_model_config(cfg.model)
    with pytest.raises(Exception) as late:
        hydra.utils.instantiate(cfg.model)
    assert str(find_config_error(late.value)) == str(early.value)


@pytest.mark.parametrize("model", ["gan", "vae", "vqvae"])
def test_a_valid_builtin_config_passes_and_builds(tmp_path, model):
    cfg = compose_config(tmp_path, f"model={model}")
    registry.check_model_config(cfg.model)
    built = hydra.utils.instantiate(cfg.model)
    assert (built.config.compile, built.config.channels_last) == (False, False)


def test_plugin_and_unknown_targets_are_left_to_instantiation():
    """Only genlab's fixed table is consulted: nothing a config names is imported here."""
    toy = {"_target_": "genlab_toy.model.ToyDiffusion", "_recursive_": False, "channels": 7}
    registry.check_model_config(OmegaConf.create(toy))
    registry.check_model_config(OmegaConf.create({"_target_": "no_such_pkg.Model", "x": 1}))
    assert "no_such_pkg" not in sys.modules


def test_unresolvable_or_non_keyword_nodes_are_left_to_instantiation(tmp_path):
    cfg = compose_config(tmp_path, "model.latent_dim=-3")
    for key, value in (("_recursive_", True), ("_partial_", True), ("image_size", "???")):
        node = OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True))
        node[key] = value
        registry.check_model_config(node)  # skipped: Hydra would not pass these kwargs as-is


# -- the compile / channels_last fields ------------------------------------------------------
@pytest.mark.parametrize("name", sorted(registry.BUILTIN_CONFIGS))
@pytest.mark.parametrize("key", ["compile", "channels_last"])
def test_speed_flags_are_booleans(name, key):
    config_class = registry.builtin_config_class(name)
    base = {"image_size": 32, "channels": 1, "vqvae_ckpt": "x.ckpt"}
    base = {
        k: v for k, v in base.items() if k in {f.name for f in dataclasses.fields(config_class)}
    }
    if name == "hvae":
        base["arch"] = "mlp"
    assert getattr(config_class(**base), key) is False
    assert getattr(config_class(**base, **{key: True}), key) is True
    with pytest.raises(ConfigError, match=f"model.{key}='yes' is invalid: allowed true or false"):
        config_class(**base, **{key: "yes"})


@pytest.mark.parametrize(
    "model",
    ["gan", "gan_mlp", "resnet_gan", "stylegan2", "vae", "topdown_vae", "ladder_vae", "vqvae"],
)
def test_shipped_model_configs_set_the_speed_flags(tmp_path, model):
    cfg = compose_config(tmp_path, f"model={model}", "data.image_size=32")
    assert (cfg.model.compile, cfg.model.channels_last) == (False, False)


def test_every_config_field_is_documented():
    for name in registry.BUILTIN_CONFIGS:
        config_class = registry.builtin_config_class(name)
        doc = "".join(k.__doc__ or "" for k in config_class.__mro__)
        missing = [f.name for f in dataclasses.fields(config_class) if f.name not in doc]
        assert missing == [], (name, missing)


# -- the plain-data catalogs match the torch classes ------------------------------------------
def test_builtin_targets_name_each_family_class_and_its_config():
    assert set(registry.BUILTIN_CONFIGS) == set(registry.BUILTIN)
    assert set(registry.BUILTIN_TARGETS.values()) == set(registry.BUILTIN)
    for name, path in registry.BUILTIN.items():
        assert registry.BUILTIN_TARGETS[path.replace(":", ".")] == name
    for target, name in registry.BUILTIN_TARGETS.items():
        cls = hydra.utils.get_class(target)
        assert cls is registry.model_class(name), target
        assert cls.config_class is registry.builtin_config_class(name), target


def test_every_shipped_model_target_is_prevalidated():
    for path in sorted((Path(CONF_DIR) / "model").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        assert target is None or target in registry.BUILTIN_TARGETS, (path.name, target)


def test_gan_net_catalog_matches_the_net_classes():
    from genlab.nets import catalog, zoo

    assert tuple(zoo.GENERATORS) == tuple(zoo.DISCRIMINATORS) == catalog.GAN_ARCHS
    for arch in catalog.GAN_ARCHS:
        assert catalog.GENERATOR_OPTIONS[arch] == zoo.net_options(zoo.GENERATORS[arch]), arch
        assert catalog.DISCRIMINATOR_OPTIONS[arch] == zoo.net_options(zoo.DISCRIMINATORS[arch])
    from genlab.nets.resnet import D_LAYOUTS, G_LAYOUTS

    assert catalog.RESNET_SIZES == tuple(sorted(G_LAYOUTS)) == tuple(sorted(D_LAYOUTS))


def test_name_tables_match_the_objects_they_name():
    import torch

    from genlab.augment import diffaugment, policy
    from genlab.losses import names
    from genlab.losses.gan import GAN_LOSSES
    from genlab.losses.likelihoods import LIKELIHOODS
    from genlab.models.vae.config import PRIORS
    from genlab.models.vae.priors import build_prior
    from genlab.models.vqvae.config import DOWNSAMPLING
    from genlab.models.vqvae.nets import VQEncoder
    from genlab.nets.catalog import MLP_ACTIVATION_NAMES
    from genlab.nets.vae import MLP_ACTIVATIONS

    assert names.GAN_LOSS_NAMES == tuple(GAN_LOSSES)
    assert names.LIKELIHOOD_NAMES == tuple(LIKELIHOODS)
    assert MLP_ACTIVATION_NAMES == tuple(MLP_ACTIVATIONS)
    assert policy.DIFFAUGMENT_OPERATIONS == tuple(diffaugment.OPERATIONS)
    built = {type(build_prior(name, 2, (1, 4, 4))).__name__ for name in PRIORS}
    assert built == {"StandardNormalPrior", "VampPrior"}
    codes = VQEncoder(1, 8, 0, 4)(torch.zeros(1, 1, 32, 32))
    assert codes.shape[-1] == 32 // DOWNSAMPLING


def test_help_lists_the_groups_without_importing_torch(tmp_path):
    """``genlab.train --help`` shows the config groups and presets, and imports neither torch
    nor Lightning (it must answer in well under 2 s)."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['genlab.train', '--help']\n"
        "try:\n"
        "    runpy.run_module('genlab.train', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "model: " in out.stdout and "resnet_gan" in out.stdout, out.stdout[-2000:]
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]
