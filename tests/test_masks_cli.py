"""`synthface masks list / preview` end to end through the real typer app."""

from __future__ import annotations

import cv2
from typer.testing import CliRunner

from synthface.cli import app
from synthface.maskfit import MaskLibrary

runner = CliRunner()


def test_masks_list_shows_every_type_and_its_label():
    result = runner.invoke(app, ["masks", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in MaskLibrary.load().names():
        assert name in result.output
    assert "occluder=scarf" in result.output


def test_masks_preview_renders_each_wear_style_on_each_demo_face(tmp_path):
    out = tmp_path / "gallery.png"
    result = runner.invoke(app, ["masks", "preview", "--out", str(out), "--type", "n95", "--type", "scarf", "--size", "96"])
    assert result.exit_code == 0, result.output
    gallery = cv2.imread(str(out))
    library = MaskLibrary.load()
    rows = len(library.get("n95").wear_styles) + len(library.get("scarf").wear_styles)
    assert gallery.shape[0] == 40 + rows * 96  # header + one row per (type, wear style)
    assert gallery.shape[1] > 6 * 96  # label column + 2 photos x 3 poses


def test_masks_commands_report_bad_input(tmp_path):
    result = runner.invoke(app, ["masks", "preview", "--out", str(tmp_path / "g.png"), "--type", "nope"])
    assert result.exit_code != 0
    assert "unknown mask type 'nope'" in result.output
    (tmp_path / "bad.yaml").write_text("name: bad\nwear_styles: [proper]\n")
    result = runner.invoke(app, ["masks", "list", "--masks", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code != 0
    assert "bad.yaml" in result.output and "outline" in result.output
