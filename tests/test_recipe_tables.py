"""Every recipe that cites a source mirrors it key by key: the table in the header of each
``conf/experiment/*.yaml`` with a ``# Source:`` line (format: scripts/recipe_tables.py) is
checked row by row against the config ``python -m genlab.train experiment=<name>`` composes,
so a table and its config cannot drift apart. Composition only: no model is built."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from conftest import REPO_ROOT, compose_config


def _load_recipe_tables():
    """scripts/recipe_tables.py, the one parser of the tables (docs tooling, not in the package)."""
    name = "recipe_tables"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "recipe_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


recipe_tables = _load_recipe_tables()
RECIPES = recipe_tables.recipe_paths()
_MISSING = object()
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _number(value: Any) -> Any:
    """``value`` as a float when it is a number written as a string (YAML 1.1 reads ``2e-4``
    as a string), else unchanged."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


def values_equal(expected: Any, actual: Any) -> bool:
    """The table's value equals the composed one: numbers to a relative 1e-6 (an int equals the
    same float), lists element-wise, dicts key by key, booleans and strings exactly."""
    expected, actual = _number(expected), _number(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=1e-6, abs_tol=0.0)
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(map(values_equal, expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            values_equal(v, actual[k]) for k, v in expected.items()
        )
    return type(expected) is type(actual) and expected == actual


def composed_value(cfg: DictConfig, key: str) -> Any:
    """The resolved value at dotted ``key`` (plain Python), or ``_MISSING``."""
    value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def table_problems(recipe, cfg: DictConfig) -> list[str]:
    """One message per row of ``recipe`` whose genlab key is absent from ``cfg`` or whose
    genlab value differs from the composed one (naming recipe, row, key and both values)."""
    problems = []
    for row in recipe.rows:
        if not row.checked:
            continue
        where = f"{recipe.name}, {row.label()}: {row.genlab_key}"
        try:
            expected = yaml.safe_load(row.genlab_value)
        except yaml.YAMLError as error:
            problems.append(f"{where}: genlab value '{row.genlab_value}' is not YAML ({error})")
            continue
        try:
            actual = composed_value(cfg, row.genlab_key)
        except Exception as error:  # an interpolation that does not resolve, a ??? value
            problems.append(f"{where} does not resolve: {error}")
            continue
        if actual is _MISSING:
            problems.append(f"{where} is not a key of the composed config")
        elif not values_equal(expected, actual):
            problems.append(
                f"{where}: the table says {expected!r}, the composed config has {actual!r}"
            )
    return problems


# -- the shipped recipes -------------------------------------------------------------------------
def test_recipes_with_a_source_are_found():
    """The recipes this file checks: the GAN zoo at least (a glob gone wrong would pass vacuously)."""
    names = {p.stem for p in RECIPES}
    assert {"sngan_cifar10", "wgan_gp_cifar10", "dcgan_cifar10"} <= names, names


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_mirrors_its_table(tmp_path, path):
    """Every row's genlab key exists in the composed ``experiment=<name>`` config and has the
    table's genlab value; a row without a genlab key says why (parse_table)."""
    recipe = recipe_tables.parse_recipe(path)  # TableError: no table, bad row, ...
    cfg = compose_config(tmp_path, f"experiment={recipe.name}")
    problems = table_problems(recipe, cfg)
    assert not problems, "\n".join(problems)


def test_the_page_lists_every_recipe():
    page = recipe_tables.render_markdown()
    assert page.startswith("# Recipes and their sources\n")
    for path in RECIPES:
        assert f"\n## `{path.stem}`\n" in page


# -- the parser and the check on crafted headers --------------------------------------------------
TABLE_HEAD = (
    "# | source key | source value | where in the source | genlab key | genlab value | difference |\n"
    "# |---|---|---|---|---|---|\n"
)
GOOD = (
    "# @package _global_\n"
    "# A crafted recipe.\n"
    "# Source: Someone et al. 2020 (github.com/x/y,\n"
    "#   configs/cifar.yaml).\n"
    "# Published: FID 9.99.\n"
    "# Command: python -m genlab.train experiment=crafted trainer=gpu\n"
    "#   python -m genlab.eval ckpt_path=<run dir>/checkpoints/last.ckpt\n"
    "# Mirrors the source key by key:\n"
    + TABLE_HEAD
    + "# | batch | 64 | configs/cifar.yaml | data.batch_size | 64 | |\n"
    "# | lr | 2e-4 | configs/cifar.yaml | model.optimizer_g.lr | 2e-4 | |\n"
    "# | betas | [0.0, 0.9] | configs/cifar.yaml | model.optimizer_g.betas | [0.0, 0.9] | |\n"
    "# | size | 32 | configs/cifar.yaml | model.image_size | 32 | |\n"
    "# | blur | on | paper, 3.1 | - | - | genlab has no blur; effect: <1% |\n"
    "defaults:\n"
    "  - override /model: gan\n"
)
CFG = {
    "data": {"batch_size": 64, "image_size": 32},
    "model": {"image_size": "${data.image_size}", "optimizer_g": {"lr": 2e-4, "betas": [0, 0.9]}},
}


def _write(tmp_path: Path, text: str, name: str = "crafted") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_a_good_header_parses_into_fields_and_rows(tmp_path):
    recipe = recipe_tables.parse_recipe(_write(tmp_path, GOOD))
    assert recipe.name == "crafted"
    assert recipe.text("Source") == "Someone et al. 2020 (github.com/x/y, configs/cifar.yaml)."
    assert recipe.text("Published") == "FID 9.99."
    assert recipe.fields["Command"][1].startswith("python -m genlab.eval")
    assert [r.genlab_key for r in recipe.rows] == [
        "data.batch_size",
        "model.optimizer_g.lr",
        "model.optimizer_g.betas",
        "model.image_size",
        "-",
    ]
    assert recipe.rows[0].line == 11 and not recipe.rows[-1].checked
    assert table_problems(recipe, OmegaConf.create(CFG)) == []  # 2e-4, 0 == 0.0, ${...}


def test_a_row_that_differs_names_recipe_row_and_both_values(tmp_path):
    recipe = recipe_tables.parse_recipe(_write(tmp_path, GOOD))
    cfg = OmegaConf.create(CFG)
    cfg.model.optimizer_g.betas = [0.5, 0.999]
    del cfg.data.batch_size
    problems = table_problems(recipe, cfg)
    assert problems == [
        "crafted, row 'batch' (line 11): data.batch_size is not a key of the composed config",
        "crafted, row 'betas' (line 13): model.optimizer_g.betas: the table says [0.0, 0.9], "
        "the composed config has [0.5, 0.999]",
    ]


@pytest.mark.parametrize(
    "expected, actual, equal",
    [
        (2.0e-4, 0.0002, True),
        ("2e-4", 0.0002, True),  # YAML 1.1 reads 2e-4 as a string
        (0.0002, 0.00020001, False),
        (1, 1.0, True),
        (True, 1, False),
        (None, None, True),
        (None, 0, False),
        ([0.5, 0.999], [0.5, 0.999, 0.1], False),
        ("orig", "resnet", False),
        ({"a": [1, 2]}, {"a": [1, 2.0]}, True),
    ],
)
def test_value_comparison(expected, actual, equal):
    assert values_equal(expected, actual) is equal


@pytest.mark.parametrize(
    "table, message",
    [
        ("", "no recipe table in the header"),
        (
            TABLE_HEAD + "# | a | 1 | x | data.batch_size | 64 |\n",
            "5 cells, the table has 6 columns",
        ),
        (
            TABLE_HEAD + "# | a | 1 | x | data.batch_size | 6|4 | |\n",
            "cells must not contain '|'",
        ),
        (
            "# | key | value | where | genlab key | genlab value | difference |\n"
            "# |---|---|---|---|---|---|\n# | a | 1 | x | data.batch_size | 64 | |\n",
            "the header row is '| key | value | where",
        ),
        (
            TABLE_HEAD.splitlines(keepends=True)[0] + "# | a | 1 | x | data.batch_size | 64 | |\n",
            "the header row is followed by '|---|...|'",
        ),
        (TABLE_HEAD, "the table has no rows"),
        (TABLE_HEAD + "# | a | 1 | x | - | - | |\n", "says why in 'difference'"),
        (TABLE_HEAD + "# | a | 1 | x | data.batch_size | - | y |\n", "both '-'"),
        (
            TABLE_HEAD
            + "# | a | 1 | x | data.batch_size | 64 | |\n#\n# | b | 2 | x | - | - | y |\n",
            "a second table",
        ),
    ],
    ids=[
        "missing",
        "column-count",
        "pipe-in-cell",
        "header",
        "separator",
        "no-rows",
        "dash-without-reason",
        "half-dash",
        "two-tables",
    ],
)
def test_a_bad_table_is_refused_with_file_line_and_reason(tmp_path, table, message):
    path = _write(tmp_path, "# @package _global_\n# Source: x.\n" + table + "defaults: []\n")
    with pytest.raises(recipe_tables.TableError) as info:
        recipe_tables.parse_table(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


def test_only_headers_that_cite_a_source_are_recipes(tmp_path):
    _write(tmp_path, GOOD)
    _write(tmp_path, "# @package _global_\n# A plain preset.\ndefaults: []\n", name="plain")
    # a '# Source:' below the header (in the YAML body) does not count
    _write(tmp_path, "# @package _global_\nseed: 1\n# Source: x\n", name="body")
    assert [p.stem for p in recipe_tables.recipe_paths(tmp_path)] == ["crafted"]


def test_the_page_shows_command_published_source_and_table(tmp_path):
    _write(tmp_path, GOOD)
    _write(tmp_path, "# @package _global_\n# Source: y.\ndefaults: []\n", name="no_table")
    page = recipe_tables.render_markdown(tmp_path)
    crafted = page[page.index("## `crafted`") : page.index("## `no_table`")]
    assert "```bash\npython -m genlab.train experiment=crafted trainer=gpu\n" in crafted
    assert "**Published:** FID 9.99." in crafted
    assert "**Source:** Someone et al. 2020 (github.com/x/y, configs/cifar.yaml)." in crafted
    assert "| batch | 64 | configs/cifar.yaml | `data.batch_size` | `64` |  |" in crafted
    assert "*1 of 5 rows differ from the source, each saying why.*" in crafted
    assert "| blur | on | paper, 3.1 | - | - | genlab has no blur; effect: &lt;1% |" in crafted
    assert "*No valid table yet:*" in page[page.index("## `no_table`") :]
