"""The option tables in README.md and docs/*.md match the real commands, so docs and CLI cannot drift.

Each documented command's table is read (first column: the options, in backticks; a `default`
column, or "(default X)" in the text) and compared with the command's options as typer builds
them: every real option is documented, no documented option is missing from the command, and
every documented default is the real one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from synthface.cli import app

REPO = Path(__file__).resolve().parents[1]

# command -> (file, the line that the option table follows). Every command of the CLI is listed.
DOCUMENTED: dict[tuple[str, ...], tuple[str, str]] = {
    ("generate",): ("docs/scenarios.md", "## Command-line options of `synthface generate`"),
    ("merge",): ("docs/scenarios.md", "## Command-line options of `synthface merge`"),
    ("detect",): ("docs/scale.md", "## The landmark table: `synthface detect`"),
    ("train",): ("docs/training.md", "## Command-line options"),
    ("evaluate",): ("docs/evaluation.md", "## `synthface evaluate"),
    ("compare",): ("docs/evaluation.md", "## `synthface compare"),
    ("predict",): ("docs/evaluation.md", "## `synthface predict"),
    ("export",): ("docs/evaluation.md", "## `synthface export"),
    ("app",): ("README.md", "## Local web app"),
    ("masks", "list"): ("docs/masks.md", "## Commands"),
    ("scenarios", "list"): ("docs/scenarios.md", "## Command-line options of `synthface scenarios list`"),
    ("export-layout",): ("docs/dataset-format.md", "## Class folders for ImageFolder and Keras"),
    ("masks", "preview"): ("docs/masks.md", "## Commands"),
    ("masks", "import"): ("docs/custom-masks.md", "`masks import IMAGE` options:"),
}
GLOBAL = ("README.md", "## Global options")

OPTION_RE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?(?:e-?\d+)?")
DEFAULT_IN_TEXT = re.compile(r"\bdefault:?\s+(`[^`]+`|[^);,]+)")


def commands(group=None, path=()):
    """(path, command object) of every leaf command of the synthface app."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if getattr(command, "commands", None):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def real_options(command) -> dict[str, object]:
    """Every option name (long, short and --no- forms) -> its parameter; --help left out."""
    found = {}
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = param
    return found


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def documented_rows(path: tuple[str, ...], file: str, anchor: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the first table after `anchor`; for a table with a `command` column, only the rows of `path`."""
    lines = (REPO / file).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(anchor))
    first = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(cells(line))
    header, rows = [cell.lower() for cell in table[0]], table[2:]
    if header[0] == "command":
        current, kept = None, []
        for row in rows:
            current = row[0] or current
            if current and current.strip("`").split()[:len(path) + 1] == ["synthface", *path]:
                kept.append(row[1:])
        header, rows = header[1:], kept
    return header, rows


def doc_default(header: list[str], row: list[str]) -> str | None:
    if "default" in header:
        return row[header.index("default")]
    match = DEFAULT_IN_TEXT.search(row[-1])
    return match[1] if match else None


def default_matches(text: str, param) -> bool:
    text = text.strip().strip("`").strip()
    if param.required:
        return text == "required"
    default = param.default
    if isinstance(default, bool):
        words = {True: ("on", "yes", "true"), False: ("off", "no", "false")}
        return text.lower() in words[default]
    if default is None or default == [] or default == ():
        return not NUMBER_RE.match(text) and text.lower() not in ("on", "off", "required")  # prose: "none", "bundled", ...
    if isinstance(default, (int, float)):
        number = NUMBER_RE.match(text)
        return bool(number) and float(number[0]) == float(default)
    return text.rstrip("/") == str(default)


@pytest.mark.parametrize("path", sorted(DOCUMENTED), ids=" ".join)
def test_option_table_matches_the_command(path):
    command = dict(commands())[path]
    real = real_options(command)
    header, rows = documented_rows(path, *DOCUMENTED[path])
    documented: dict[str, list[str]] = {}
    for row in rows:
        for name in OPTION_RE.findall(" ".join(re.findall(r"`([^`]*)`", row[0]))):
            documented[name] = row
    assert sorted(set(real) - set(documented)) == [], f"options of `synthface {' '.join(path)}` missing from {DOCUMENTED[path][0]}"
    assert sorted(set(documented) - set(real)) == [], f"{DOCUMENTED[path][0]} documents options `synthface {' '.join(path)}` lacks"
    for name, row in documented.items():
        param = real[name]
        if name not in param.opts[:1]:
            continue  # check each option's default once, on its first name
        text = doc_default(header, row)
        if text is not None:
            assert default_matches(text, param), f"{name}: documented default {text!r}, real {param.default!r}"


def test_every_command_has_a_documented_option_table():
    assert sorted(path for path, _ in commands()) == sorted(DOCUMENTED)


def test_global_options_are_documented():
    root = typer.main.get_command(app)
    real = {name for param in root.params if param.param_type_name == "option"
            for name in (*param.opts, *param.secondary_opts)} - {"--install-completion", "--show-completion"}
    _, rows = documented_rows((), *GLOBAL)
    documented = {name for row in rows for name in OPTION_RE.findall(row[0])}
    assert real == documented


def test_a_drifted_default_is_caught():
    """The checker itself: a wrong default or a missing option must fail it."""
    real = real_options(dict(commands())[("evaluate",)])
    assert default_matches("64", real["--batch-size"]) and not default_matches("32", real["--batch-size"])
    assert default_matches("on", real["--plots"]) and not default_matches("off", real["--plots"])
    assert default_matches("required", real["--data"]) and not default_matches("none", real["--data"])
    assert default_matches("`test`", real["--split"]) and not default_matches("`val`", real["--split"])
