"""Printing tables and markdown so that identifiers are never wrapped or cut.

People copy type names, scenario names and paths out of synthface's tables, and scripts read
them from a pipe. Rich fits a table to the terminal (80 columns when the output is not a
terminal), which folds `black_cloth` into `black_clot/h` or crops `scenario` to `scena…`. Here
every table column is no-wrap and a table is printed at its natural width, however wide the
terminal: a long line is the terminal's to wrap on screen, the text itself stays whole.
Markdown prose (reports) still wraps to the terminal; only its tables are kept whole.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markdown import Markdown
from rich.measure import Measurement
from rich.table import Table

UNLIMITED = 1_000_000  # "as wide as the content": rich needs a number
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|(\s*:?-+:?\s*\|)+\s*$")
_IMAGE_LINE = re.compile(r"^\s*!\[[^\]]*\]\([^)]*\)\s*$")


def table(*columns: str, title: str | None = None, right: Sequence[str] = ()) -> Table:
    """A table whose cells never wrap or get cut (see print_table)."""
    result = Table(title=title)
    for name in columns:
        result.add_column(name, no_wrap=True, overflow="ignore", justify="right" if name in right else "left")
    return result


@contextmanager
def _width(console: Console, width: int):
    saved = console._width  # rich has no public way to widen a console for one print
    console.width = width
    try:
        yield
    finally:
        console._width = saved


def print_table(console: Console, rich_table: Table) -> None:
    """Print at the table's natural width (at least the console's): nothing wrapped or cut."""
    for column in rich_table.columns:
        column.no_wrap, column.overflow = True, "ignore"
    needed = Measurement.get(console, console.options.update(width=UNLIMITED), rich_table).maximum
    with _width(console, max(console.width, needed)):
        console.print(rich_table, crop=False, soft_wrap=False)


def _markdown_table(lines: list[str]) -> Table:
    """A rich table from markdown table lines (header, rule, rows)."""
    def cells(line: str) -> list[str]:
        parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        return [part.strip().replace("\\|", "|").strip("`") for part in parts]

    header = cells(lines[0])
    aligns = cells(lines[1]) if len(lines) > 1 and _TABLE_RULE.match(lines[1]) else []
    right = [name for name, rule in zip(header, aligns) if rule.endswith(":")]
    result = table(*header, right=right)
    for line in lines[2 if aligns else 1:]:
        row = cells(line)
        result.add_row(*(row + [""] * (len(header) - len(row)))[: len(header)])
    return result


def print_markdown(console: Console, text: str) -> None:
    """Markdown for people: prose wraps to the terminal, tables are printed whole, image links
    (meaningless in a terminal; rich would show them as a stray picture symbol) are left out.
    When the output is not a terminal, the markdown source is printed as it is: already plain
    text, copyable, and never cut."""
    lines = [line for line in text.splitlines() if not _IMAGE_LINE.match(line)]
    if not console.is_terminal:
        console.print("\n".join(lines).strip("\n"), markup=False, highlight=False, crop=False, soft_wrap=True)
        return
    block: list[str] = []
    in_table = False

    def flush() -> None:
        if not block:
            return
        if in_table:
            print_table(console, _markdown_table(block))
        elif "\n".join(block).strip():
            console.print(Markdown("\n".join(block)), soft_wrap=False)
        block.clear()

    for line in lines:
        is_row = bool(_TABLE_ROW.match(line))
        if is_row != in_table:
            flush()
            in_table = is_row
        block.append(line)
    flush()


def print_json(data: object, stream=None) -> None:
    """JSON for scripts on stdout (plain, no colour, no wrapping)."""
    (stream or sys.stdout).write(json.dumps(data, indent=1, default=str) + "\n")


def rows_table(rows: Iterable[dict], columns: Sequence[str], title: str | None = None) -> Table:
    """A no-wrap table of dict rows (missing keys blank)."""
    result = table(*columns, title=title)
    for row in rows:
        result.add_row(*(str(row.get(name, "")) for name in columns))
    return result
