"""Tables people copy: identifiers never wrapped or cut, whatever the width; --json for scripts;
markdown summaries without stray image symbols."""

from __future__ import annotations

import io
import json

from rich.console import Console
from typer.testing import CliRunner

from synthface.cli import app
from synthface.maskfit import MaskLibrary
from synthface.terminal import print_markdown, print_table, rows_table

runner = CliRunner()


def test_masks_list_keeps_every_type_name_whole_in_a_narrow_pipe():
    result = runner.invoke(app, ["masks", "list"], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    names = {line.split("│")[1].strip() for line in rows}
    assert set(MaskLibrary.load().names()) <= names  # each on one line, uncut
    assert "…" not in result.output


def test_masks_list_json_for_scripts():
    result = runner.invoke(app, ["masks", "list", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    library = MaskLibrary.load()
    assert [row["type"] for row in rows] == library.names()
    assert {row["type"]: row["is_mask"] for row in rows} == {n: library.get(n).is_mask for n in library.names()}


def test_scenarios_list_table_and_json():
    table = runner.invoke(app, ["scenarios", "list"], env={"COLUMNS": "30"})
    assert table.exit_code == 0, table.output
    assert "senior_mixed" in table.output and "balanced_race" in table.output and "…" not in table.output
    rows = json.loads(runner.invoke(app, ["scenarios", "list", "--json"]).stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["no_mask"]["mask_probability"] == 0 and by_name["all_masked"]["mask_probability"] == 1
    # Every listed name works as the scenario argument of `generate`.
    from synthface.scenario import load_scenario

    assert all(load_scenario(name)[0].n_samples == row["n_samples"] for name, row in by_name.items())


def test_a_table_wider_than_the_terminal_is_printed_whole():
    buffer = io.StringIO()
    console = Console(file=buffer, width=30, force_terminal=True, soft_wrap=True)
    long = "a_very_long_identifier_that_must_stay_whole_when_copied"
    print_table(console, rows_table([{"name": long, "value": "1"}], ("name", "value")))
    assert long in buffer.getvalue()


def test_markdown_summary_on_a_terminal_has_whole_tables_and_no_image_symbol():
    text = "# Report\n\n| scenario | accuracy |\n|---|---:|\n| senior_mixed_and_more | 0.912 |\n\n![age](plots/age.png)\n"
    buffer = io.StringIO()
    print_markdown(Console(file=buffer, width=20, force_terminal=True, color_system=None), text)
    out = buffer.getvalue()
    assert "senior_mixed_and_more" in out and "0.912" in out
    assert "🌆" not in out and "age.png" not in out
    piped = io.StringIO()
    print_markdown(Console(file=piped, width=20), text)
    assert "| senior_mixed_and_more | 0.912 |" in piped.getvalue() and "🌆" not in piped.getvalue()
