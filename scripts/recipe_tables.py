"""Recipe tables: each ``conf/experiment/*.yaml`` that cites a source (a ``# Source:`` line in
its header comment) maps the source's settings to genlab's in a markdown table in that header::

    # | source key | source value | where in the source | genlab key | genlab value | difference |
    # |---|---|---|---|---|---|
    # | n_dis | 5 | mimicry README, CIFAR-10 training parameters | model.n_critic | 5 | |

This module is the one parser of those headers: ``tests/test_recipe_tables.py`` checks every
row against the composed config, and ``python scripts/recipe_tables.py`` prints every recipe's
table as one markdown page for the docs (:func:`render_markdown`). The rules (checked by
:func:`parse_table`): one block of ``# |`` lines in the header, exactly the :data:`COLUMNS`,
then a ``|---|`` separator, then at least one row; no ``|`` inside a cell. ``genlab key`` is a
dotted key of the config ``python -m genlab.train experiment=<name>`` composes, ``genlab value``
a YAML flow value (``96``, ``2.0e-4``, ``[0.0, 0.999]``, ``true``, ``null``, ``orig``) that the
test compares with the resolved composed value (numbers to a relative 1e-6, lists element-wise).
An empty ``difference`` means genlab runs what the source ran; otherwise it says why genlab
differs and the expected effect, and ``genlab key``/``genlab value`` may both be ``-``.

    python scripts/recipe_tables.py                 # the page, on stdout
    python scripts/recipe_tables.py --out recipes.md
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: The table's header row, exactly.
COLUMNS = (
    "source key",
    "source value",
    "where in the source",
    "genlab key",
    "genlab value",
    "difference",
)
#: A genlab key/value cell meaning "genlab has no equivalent" (the row needs a difference).
NONE = "-"
EXPERIMENT_DIR = Path(__file__).resolve().parents[1] / "src" / "genlab" / "conf" / "experiment"

_FIELD = re.compile(r"^# ([A-Z][A-Za-z]*): ?(.*)$")  # "# Source: ..." opens a header field
_CONTINUATION = re.compile(r"^#\s{2,}(\S.*)$")  # "#   ..." continues the open field
_TABLE_LINE = re.compile(r"^#\s*\|")
_SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")


class TableError(ValueError):
    """A recipe header whose table breaks the format: ``str()`` is ``<path>[:<line>]: <reason>``
    (``line`` None: the whole header)."""

    def __init__(self, path: Path, line: int | None, reason: str):
        self.path, self.line, self.reason = Path(path), line, reason
        super().__init__(f"{path}{'' if line is None else f':{line}'}: {reason}")


@dataclass(frozen=True)
class Row:
    """One table row; ``line`` is its 1-based line number in the YAML file."""

    source_key: str
    source_value: str
    where: str
    genlab_key: str
    genlab_value: str
    difference: str
    line: int

    @property
    def checked(self) -> bool:
        """Whether the row names a genlab key whose composed value the test compares."""
        return self.genlab_key != NONE

    def label(self) -> str:
        return f"row '{self.source_key}' (line {self.line})"


@dataclass(frozen=True)
class Recipe:
    """A recipe header: its name (the ``experiment=`` option), header fields and table.

    ``fields`` maps a header field (``Source``, ``Command``, ``Published``, ...) to its lines
    (the first line's text, then each continuation line's)."""

    name: str
    path: Path
    fields: dict[str, list[str]] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def text(self, name: str) -> str:
        """A header field as one line of text ('' when the header has none)."""
        return " ".join(self.fields.get(name, []))


def header_lines(path: Path) -> list[str]:
    """The leading comment block of ``path``: its lines up to the first line that is neither a
    comment nor blank (the YAML itself), trailing newlines removed."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            break
        lines.append(line)
    return lines


def cites_source(path: Path) -> bool:
    """Whether the header of ``path`` has a ``# Source:`` line (then it needs a table)."""
    return any(line.startswith("# Source:") for line in header_lines(path))


def recipe_paths(experiment_dir: Path | None = None) -> list[Path]:
    """The experiment files (sorted by name) whose header cites a source."""
    directory = Path(experiment_dir or EXPERIMENT_DIR)
    return [p for p in sorted(directory.glob("*.yaml")) if cites_source(p)]


def _cells(text: str, path: Path, number: int) -> list[str]:
    """The cells of one table line ``# | a | b |`` (stripped), or a TableError."""
    body = text.lstrip("#").strip()
    if not (body.startswith("|") and body.endswith("|")):
        raise TableError(path, number, "a table line starts with '# |' and ends with '|'")
    cells = [cell.strip() for cell in body[1:-1].split("|")]
    if len(cells) != len(COLUMNS):
        raise TableError(
            path,
            number,
            f"{len(cells)} cells, the table has {len(COLUMNS)} columns "
            f"({' | '.join(COLUMNS)}); cells must not contain '|'",
        )
    return cells


def parse_table(path: Path) -> list[Row]:
    """The rows of the recipe table in the header of ``path``.

    Raises :class:`TableError` (naming the file and line) when the header has no table; when
    the table is not one block of consecutive ``# |`` lines; when its first line is not the
    header row :data:`COLUMNS` or its second not a ``|---|`` separator; when a line has another
    number of cells; when it has no row; when a row's ``genlab key`` and ``genlab value`` are
    not both ``-`` or both given, or a row with ``-`` has an empty ``difference``.
    """
    path = Path(path)
    lines = header_lines(path)
    numbers = [i + 1 for i, line in enumerate(lines) if _TABLE_LINE.match(line)]
    if not numbers:
        raise TableError(
            path,
            None,
            "no recipe table in the header (a header with '# Source:' needs one: "
            f"'# | {' | '.join(COLUMNS)} |', then '# |---|...|' and one line per row)",
        )
    gap = next((n for a, n in zip(numbers, numbers[1:]) if n != a + 1), None)
    if gap is not None:
        raise TableError(path, gap, "a second table (the table is one block of '# |' lines)")
    header = _cells(lines[numbers[0] - 1], path, numbers[0])
    if tuple(header) != COLUMNS:
        raise TableError(
            path,
            numbers[0],
            f"the header row is '| {' | '.join(header)} |', expected '| {' | '.join(COLUMNS)} |'",
        )
    if len(numbers) < 2 or not all(
        _SEPARATOR_CELL.match(c) for c in _cells(lines[numbers[1] - 1], path, numbers[1])
    ):
        raise TableError(path, numbers[0] + 1, "the header row is followed by '|---|...|'")
    rows = []
    for number in numbers[2:]:
        row = Row(*_cells(lines[number - 1], path, number), line=number)
        if (row.genlab_key == NONE) != (row.genlab_value == NONE):
            raise TableError(
                path,
                number,
                f"genlab key '{row.genlab_key}' and genlab value '{row.genlab_value}': "
                "both '-' (no equivalent) or both given",
            )
        if not row.checked and not row.difference:
            raise TableError(
                path, number, "a row without a genlab key ('-') says why in 'difference'"
            )
        if not row.genlab_key:
            raise TableError(path, number, "empty genlab key (a dotted key or '-')")
        rows.append(row)
    if not rows:
        raise TableError(path, numbers[1], "the table has no rows")
    return rows


def header_fields(path: Path) -> dict[str, list[str]]:
    """The header's ``# Name: text`` fields with their ``#   continuation`` lines."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in header_lines(path):
        opened = _FIELD.match(line)
        continued = _CONTINUATION.match(line)
        if opened:
            current = fields.setdefault(opened.group(1), [])
            if opened.group(2).strip():
                current.append(opened.group(2).strip())
        elif current is not None and continued and not _TABLE_LINE.match(line):
            current.append(continued.group(1).strip())
        else:
            current = None
    return fields


def parse_recipe(path: Path) -> Recipe:
    """Name, header fields and table rows of one experiment file (TableError: see parse_table)."""
    path = Path(path)
    return Recipe(path.stem, path, header_fields(path), parse_table(path))


def _text(text: str) -> str:
    """Header text for markdown prose: ``<`` and ``>`` escaped (``<run dir>`` is not HTML)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _markdown_table(rows: list[Row]) -> list[str]:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        key = f"`{r.genlab_key}`" if r.checked else NONE
        value = f"`{r.genlab_value}`" if r.checked else NONE
        prose = [_text(c) for c in (r.source_key, r.source_value, r.where, r.difference)]
        cells = [*prose[:3], key, value, prose[3]]
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_markdown(experiment_dir: Path | None = None) -> str:
    """One markdown page: per recipe (by name), its title, command, published number, source
    lines and table. A recipe whose table does not parse shows the parse error instead."""
    out = [
        "# Recipes and their sources",
        "",
        "Every `experiment=` that cites a source carries, in its config file's header, a table "
        "that maps the source's settings to genlab's, key by key. An empty *difference* means "
        "genlab runs what the source ran; otherwise the row says why genlab differs and the "
        "expected effect. `tests/test_recipe_tables.py` composes each recipe's config (as "
        "`python -m genlab.train experiment=<name>` does) and checks every genlab value, so a "
        "table cannot drift from its config. This page is generated by "
        "`python scripts/recipe_tables.py`.",
    ]
    for path in recipe_paths(experiment_dir):
        fields = header_fields(path)
        out += ["", f"## `{path.stem}`", ""]
        if fields.get("Command"):
            out += ["```bash", *fields["Command"], "```", ""]
        published = " ".join(fields.get("Published", [])) or "not stated"
        out += [f"**Published:** {_text(published)}", ""]
        out += [f"**Source:** {_text(' '.join(fields.get('Source', [])))}", ""]
        try:
            rows = parse_table(path)
        except TableError as error:
            at = "" if error.line is None else f" (line {error.line})"
            out.append(f"*No valid table yet{at}:* {_text(error.reason)}")
            continue
        changed = sum(1 for r in rows if r.difference)
        summary = (
            "mirrors the source: every row equal"
            if not changed
            else f"{changed} of {len(rows)} rows differ from the source, each saying why"
        )
        out += [f"*{summary}.*", "", *_markdown_table(rows)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the page here instead of stdout")
    parser.add_argument(
        "--experiment-dir", type=Path, default=EXPERIMENT_DIR, help="conf/experiment folder"
    )
    args = parser.parse_args(argv)
    page = render_markdown(args.experiment_dir)
    if args.out:
        args.out.write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
