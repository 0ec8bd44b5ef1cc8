"""MkDocs hook: the reference pages generated from the code at every build, so they cannot drift.

Generated (virtual files, never written to docs/):

- ``reference/config/<group>.md``: every option of every config group of ``src/genlab/conf``
  with its header comment and every key, value and trailing comment, plus the raw YAML; the
  model page adds the typed config dataclass of each family (its docstring, via mkdocstrings);
- ``reference/config/index.md``: the groups and their options;
- ``reference/cli.md``: the entry points (``genlab.train/sample/eval/export`` from their
  top-level YAML, ``genlab.compare`` from its ``--help``) and the exit codes, read from
  :mod:`genlab.checks.errors`;
- ``reference/recipes.md``: ``render_markdown()`` of ``scripts/recipe_tables.py``;
- ``results/benchmarks_details.md``: ``benchmarks/README.md`` as it is in the repo.

The same functions back ``tests/test_docs_reference.py`` (imported from this file).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "src" / "genlab" / "conf"
ENTRY_CONFIGS = {  # CLI module -> its top-level config
    "genlab.train": "train.yaml",
    "genlab.sample": "sample.yaml",
    "genlab.eval": "eval.yaml",
    "genlab.export": "export.yaml",
}
log = logging.getLogger("mkdocs.plugins.genlab_docs")


# -- YAML with its comments ----------------------------------------------------------------------
@dataclass
class Entry:
    key: str  # dotted path (with the file's package), or "defaults"
    value: str  # as written ("" for a mapping)
    comment: str  # the trailing comment, or the comment line(s) just above


@dataclass
class ConfigFile:
    group: str  # "model", "hydra/launcher", "" for the top-level configs
    option: str  # file name without .yaml
    path: Path
    package: str  # where its keys land: "model", "" (_global_), "hydra.launcher"
    header: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def target(self) -> str | None:
        top = [e for e in self.entries if e.key == _join(self.package, "_target_")]
        return top[0].value if top else None

    @property
    def parents(self) -> list[str]:
        """Options of the same group this one starts from (``defaults: [gan, _self_]``)."""
        return [
            e.value
            for e in self.entries
            if e.key == "defaults" and re.fullmatch(r"[\w.]+", e.value) and e.value != "_self_"
        ]


def split_comment(line: str) -> tuple[str, str]:
    """``code  # comment`` -> (code, comment); a ``#`` inside quotes or a word is kept."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def parse_config(path: Path, group: str) -> ConfigFile:
    """Header, package and every ``key: value  # comment`` of a Hydra YAML file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    package = group.replace("/", ".")
    header: list[str] = []
    body_start = 0
    for body_start, line in enumerate(lines):  # noqa: B007
        if not line.startswith("#"):
            break
        match = re.match(r"#\s*@package\s+(\S+)", line)
        if match:
            package = "" if match.group(1) == "_global_" else match.group(1)
        else:
            header.append(line[1:].removeprefix(" "))
    else:
        body_start = len(lines)
    config = ConfigFile(group, path.stem, path, package, header)
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    above: list[str] = []  # comment lines just above the next key
    in_defaults = False
    for line in lines[body_start:]:
        code, comment = split_comment(line)
        if not code.strip():
            above = [comment] if comment and not above else above + ([comment] if comment else [])
            if not line.strip():
                above = []
            continue
        indent = len(code) - len(code.lstrip())
        stripped = code.strip()
        if stripped.startswith("- "):  # a list item: defaults entries, else part of a value
            item = stripped[2:].strip()
            if in_defaults and indent <= 2:
                config.entries.append(Entry("defaults", item, comment or " ".join(above)))
            elif config.entries and comment:
                config.entries[-1].comment += ("; " if config.entries[-1].comment else "") + (
                    f"`{item}`: {comment}"
                )
            above = []
            continue
        match = re.match(r"([^:]+?):(\s+(.*))?$", stripped)
        if not match:
            above = []
            continue
        key, value = match.group(1).strip().strip("'\""), (match.group(3) or "").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        in_defaults = indent == 0 and key == "defaults"
        if not in_defaults:
            path_key = _join(package, *[k for _, k in stack], key)
            config.entries.append(Entry(path_key, value, comment or " ".join(above)))
        if not value:
            stack.append((indent, key))
        above = []
    return config


def group_files(conf: Path = CONF) -> dict[str, list[ConfigFile]]:
    """Every config group (``model``, ``hydra/launcher``, ...) -> its options, sorted."""
    groups: dict[str, list[ConfigFile]] = {}
    for path in sorted(conf.rglob("*.yaml")):
        group = path.parent.relative_to(conf).as_posix()
        if group == ".":
            continue
        groups.setdefault(group, []).append(parse_config(path, group))
    return groups


# -- markdown helpers ----------------------------------------------------------------------------
def md_text(text: str) -> str:
    """Plain text as markdown: code spans kept, markup characters outside them escaped."""
    parts = re.split(r"(`+[^`]*`+)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
        else:
            part = part.replace("\\", "\\\\")
            part = re.sub(r"([*_\[\]|])", r"\\\1", part)
            out.append(part.replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


def md_code(text: str) -> str:
    if not text:
        return ""
    ticks = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def header_markdown(lines: list[str]) -> str:
    """A config file's header comment: prose joined into paragraphs, ``|`` rows kept as tables."""
    blocks: list[str] = []
    prose: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if prose:
            blocks.append(" ".join(md_text(p.strip()) for p in prose))
            prose.clear()
        if table:
            blocks.append("\n".join(table))
            table.clear()

    for line in lines:
        if line.strip().startswith("|"):
            if prose:
                flush()
            cells = line.strip().strip("|").split("|")
            table.append("| " + " | ".join(md_text(c.strip()) for c in cells) + " |")
            if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
                table[-1] = line.strip()
        elif not line.strip():
            flush()
        else:
            if table or (prose and re.match(r"[A-Z][\w ()/-]{0,30}: ", line)):
                flush()  # a table ends; "Source: ...", "Protocol: ..." start paragraphs
            prose.append(line)
    flush()
    return "\n\n".join(blocks)


def entries_table(entries: list[Entry]) -> str:
    rows = ["| key | value | what |", "|---|---|---|"]
    for e in entries:
        rows.append(f"| {md_code(e.key)} | {md_code(e.value)} | {md_text(e.comment)} |")
    return "\n".join(rows)


def yaml_block(config: ConfigFile) -> str:
    rel = config.path.relative_to(REPO).as_posix()
    body = "\n".join("    " + line for line in config.text.rstrip().splitlines())
    return f'??? note "{rel}"\n\n    ```yaml\n{body}\n    ```\n'


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not "et al. 2017", "e.g. x")."""
    parts = re.split(
        r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)\.\s+(?=[A-Z(])", text.strip(), maxsplit=1
    )
    return parts[0].rstrip(".")


def anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")


# -- pages ---------------------------------------------------------------------------------------
def family_of(config: ConfigFile, by_option: dict[str, ConfigFile]) -> str | None:
    """The builtin family a model option instantiates (following ``defaults: [parent]``)."""
    from genlab.models.registry import BUILTIN_TARGETS

    seen: set[str] = set()
    while config is not None and config.option not in seen:
        seen.add(config.option)
        if config.target:
            return BUILTIN_TARGETS.get(config.target)
        config = next((by_option[p] for p in config.parents if p in by_option), None)
    return None


def group_page(group: str, options: list[ConfigFile]) -> str:
    package = options[0].package if len({o.package for o in options}) == 1 else None
    lines = [f"# Config group `{group}`", ""]
    lines.append(
        "Generated at build time from `src/genlab/conf/"
        f"{group}/*.yaml` (the comments are the files' own). Pick an option with "
        f"`{group}=<option>`; override a key with its dotted name as shown."
    )
    if package is not None:
        where = f"`{package}.*`" if package else "the top level (`@package _global_`)"
        lines.append(f"Its keys land under {where}.")
    lines += ["", "| option | what |", "|---|---|"]
    for o in options:
        first = first_sentence(" ".join(o.header))
        lines.append(f"| [`{o.option}`](#{anchor(o.option)}) | {md_text(first)} |")
    lines.append("")
    families: dict[str, list[str]] = {}
    by_option = {o.option: o for o in options}
    for o in options:
        lines += [f"## `{o.option}` {{#{anchor(o.option)}}}", ""]
        if o.header:
            lines += [header_markdown(o.header), ""]
        if group == "model":
            family = family_of(o, by_option)
            if family:
                families.setdefault(family, []).append(o.option)
                lines += [
                    f"Family `{family}`: every field is documented in "
                    f"[its config class](#family-{anchor(family)}).",
                    "",
                ]
        if o.entries:
            lines += [entries_table(o.entries), ""]
        lines += [yaml_block(o), ""]
    if group == "model" and families:
        from genlab.models.registry import BUILTIN_CONFIGS

        lines += ["## Config classes of the families", ""]
        lines.append(
            "Each model option is checked against its family's typed config before anything "
            "is built (a bad key or value is one `genlab: error:` line, exit 2). The fields, "
            "from the dataclasses' docstrings:"
        )
        lines.append("")
        for family, opts in families.items():
            module, _, cls = BUILTIN_CONFIGS[family].partition(":")
            used = ", ".join(f"[`{o}`](#{anchor(o)})" for o in opts)
            lines += [
                f"### `{family}` {{#family-{anchor(family)}}}",
                "",
                f"Options: {used}.",
                "",
                f"::: {module}.{cls}",
                "    options:",
                "      heading_level: 4",
                "      show_root_heading: true",
                "      members: false",
                "      show_signature: false",
                "",
            ]
    return "\n".join(lines) + "\n"


def config_index(groups: dict[str, list[ConfigFile]]) -> str:
    lines = [
        "# Configuration",
        "",
        "Every run is composed by Hydra from `src/genlab/conf` (`conf/` in the repo is a link to "
        "it; it ships inside the package). `python -m genlab.train` reads `train.yaml`, whose "
        "`defaults` pick one option per group; `group=option` picks another, "
        "`group.key=value` overrides a key. Print the composed config without running anything: "
        "`python -m genlab.train --cfg job`. These pages are generated from the YAML files at "
        "every build.",
        "",
        "| group | options |",
        "|---|---|",
    ]
    for group, options in groups.items():
        names = ", ".join(
            f"[`{o.option}`]({_group_file(group)}#{anchor(o.option)})" for o in options
        )
        lines.append(f"| [`{group}`]({_group_file(group)}) | {names} |")
    lines += [
        "",
        "The entry points' own keys (`seed`, `ckpt_path`, `num_samples`, ...) are on the "
        "[CLI page](../cli.md).",
    ]
    return "\n".join(lines) + "\n"


def _group_file(group: str) -> str:
    return group.replace("/", "_") + ".md"


def help_text(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} --help exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout.strip()


def console_scripts() -> dict[str, str]:
    """genlab's console scripts (``pyproject.toml``'s ``[project.scripts]``, as installed)."""
    from importlib.metadata import distribution

    points = distribution("genlab").entry_points
    return {p.name: p.value for p in points if p.group == "console_scripts"}


def cli_page() -> str:
    from genlab.checks import errors

    scripts = console_scripts()
    module_to_script = {v.split(":")[0]: k for k, v in scripts.items()}
    lines = [
        "# Command-line tools",
        "",
        "Generated at build time from genlab's console scripts (`pyproject.toml`, as installed), the entry points' "
        "configs (`src/genlab/conf/*.yaml`) and `genlab.compare --help`. Each tool runs as "
        "`python -m <module>` or as its console script.",
        "",
        "| module | console script |",
        "|---|---|",
    ]
    for module, script in sorted(module_to_script.items()):
        lines.append(f"| [`{module}`](#{anchor(module)}) | `{script}` |")
    lines.append("")
    for module, name in ENTRY_CONFIGS.items():
        config = parse_config(CONF / name, "")
        lines += [f"## `{module}` {{#{anchor(module)}}}", ""]
        if config.header:
            lines += [header_markdown(config.header), ""]
        lines += [
            f"Keys of `src/genlab/conf/{name}` (Hydra overrides: `key=value`; "
            f"`python -m {module} --help` lists them too):",
            "",
            entries_table(config.entries),
            "",
            yaml_block(config),
            "",
        ]
        if module == "genlab.train":
            lines += [
                "The groups in `defaults` are documented on the "
                "[configuration pages](config/index.md).",
                "",
            ]
    lines += [
        f"## `genlab.compare` {{#{anchor('genlab.compare')}}}",
        "",
        "Plain arguments (argparse), not Hydra overrides:",
        "",
        "```text",
        help_text("genlab.compare"),
        "```",
        "",
    ]
    lines += exit_codes(errors)
    return "\n".join(lines) + "\n"


def exit_codes(errors) -> list[str]:
    import signal

    return [
        "## Exit codes {#exit-codes}",
        "",
        "Every tool turns user errors into one `genlab: error: <key>=<value> is invalid: "
        "allowed ...` line on stderr (`HYDRA_FULL_ERROR=1` shows the traceback). Values read "
        "from `genlab.checks.errors` at build time:",
        "",
        "| code | meaning |",
        "|---|---|",
        "| 0 | done |",
        "| 1 | a sweep (`-m`) in which at least one job failed (the others ran; see "
        "`sweep_summary.yaml`); anything else exiting 1 with a traceback is a bug |",
        f"| {errors.EXIT_BAD_INPUT} | bad input: a key, value, file or checkpoint genlab cannot "
        "use (`ConfigError`), before training starts |",
        f"| {errors.EXIT_DIVERGED} | training diverged (NaN/Inf loss or gradient norm; "
        "`DivergenceError`); the last good checkpoint is kept |",
        f"| {128 + signal.SIGINT} / {128 + signal.SIGTERM} | stopped by SIGINT (Ctrl-C) / "
        "SIGTERM (pre-emption) after saving a resumable `last.ckpt` (`RunInterrupted`: 128 + "
        "the signal number) |",
        "",
        "Details: [Reliability](../reliability.md).",
    ]


def recipes_page() -> str:
    script = REPO / "scripts" / "recipe_tables.py"
    if not script.exists():
        log.warning("scripts/recipe_tables.py is missing: the recipes page is a placeholder")
        return "# Recipes\n\n`scripts/recipe_tables.py` is missing.\n"
    spec = importlib.util.spec_from_file_location("recipe_tables", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("recipe_tables", module)
    spec.loader.exec_module(module)
    text = module.render_markdown()
    if not text.lstrip().startswith("# "):
        text = "# Recipes\n\n" + text
    return text


def benchmarks_page() -> str:
    text = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    # links relative to benchmarks/ point outside the docs: show them as paths instead
    text = re.sub(
        r"\[([^\]]+)\]\((?!https?:)([^)#]+)\)",
        lambda m: f"{m.group(1)} (`benchmarks/{m.group(2)}`)",
        text,
    )
    note = "\n\n*This page is `benchmarks/README.md` of the repository, included at build time.*\n"
    first, _, rest = text.partition("\n")
    return f"{first}{note}\n{rest}"


def generated_pages() -> dict[str, str]:
    groups = group_files()
    pages = {"reference/config/index.md": config_index(groups)}
    for group, options in groups.items():
        pages[f"reference/config/{_group_file(group)}"] = group_page(group, options)
    pages["reference/cli.md"] = cli_page()
    pages["reference/recipes.md"] = recipes_page()
    pages["results/benchmarks_details.md"] = benchmarks_page()
    if not (REPO / "docs" / "results" / "gan_short_runs.md").exists():  # written by its own task
        pages["results/gan_short_runs.md"] = (
            "# GAN short runs\n\nThis page is not written yet; the per-epoch curves of the "
            "GAN presets are on [GAN presets, short CPU runs](gan-presets-cpu.md).\n"
        )
    return pages


# -- MkDocs events -------------------------------------------------------------------------------
def page_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("_", " ").replace("-", " ").capitalize()


NAV_SECTIONS = {  # nav section -> the folder whose pages it lists
    "Tutorials": "tutorials",
    "How-to guides": "how-to",
    "Results": "results",
}


def on_config(config):
    """Every page of a section's folder is in the nav: a page under docs/tutorials, docs/how-to
    or docs/results that mkdocs.yml does not list yet (pages written by other tasks) is
    appended to its section, titled by its first heading."""
    nav = config["nav"] or []
    for title, folder in NAV_SECTIONS.items():
        section = next((e[title] for e in nav if isinstance(e, dict) and title in e), None)
        if section is None:
            continue
        listed = set(re.findall(rf"{folder}/[\w.-]+\.md", str(section)))
        for path in sorted((REPO / "docs" / folder).glob("*.md")):
            rel = f"{folder}/{path.name}"
            if rel not in listed:
                section.append({page_title(path): rel})
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for path, content in generated_pages().items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files
