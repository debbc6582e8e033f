"""Markdown tables for reports: one cell-escaping rule for every table synthface writes.

A stratum such as `18-29|male|white|mask=1`, a file name or a label with a `|` would otherwise
split its cell and shift every column after it.
"""

from __future__ import annotations

from collections.abc import Sequence


def md_cell(value: object) -> str:
    """Text safe inside one markdown table cell: `|` escaped, line breaks as spaces."""
    return " ".join(str(value).replace("\\", "\\\\").replace("|", "\\|").split("\n")).replace("\r", " ")


def md_row(cells: Sequence[object]) -> str:
    """One table row; every cell escaped with md_cell."""
    return "| " + " | ".join(md_cell(cell) for cell in cells) + " |"
