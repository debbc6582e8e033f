"""`synthface detect POOL --cache DIR`: one parquet landmark table keyed by the sha256 of each
image's bytes, which `generate --landmarks DIR` uses from any path or mount of the same images."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
from typer.testing import CliRunner

from synthface.cli import app
from synthface.generation.landmark_table import TABLE, LandmarkTable

runner = CliRunner()


def test_detect_writes_a_content_keyed_table_that_generate_uses_from_another_path(tmp_path, utk_folder):
    table_dir = tmp_path / "landmarks"
    result = runner.invoke(app, ["detect", f"utkface:{utk_folder}", "--cache", str(table_dir), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(table_dir / TABLE)
    images = [p for p in sorted(utk_folder.glob("*.jpg")) if p.name != "not_a_utkface_name.jpg"]  # the source skips that name
    assert sorted(table["sha256"]) == sorted({hashlib.sha256(p.read_bytes()).hexdigest() for p in images})
    assert table["has_face"].sum() == 8 and set(table.loc[~table["has_face"], "reason"]) == {"no face found"}
    assert {len(points) for points in table.loc[table["has_face"], "points"]} == {478 * 3 * 4}
    assert not list(table_dir.glob("part-*"))  # parts are folded into the one table

    # The same images at another path (another mount, a copy: new paths, new mtimes) need no detection.
    copy = shutil.copytree(utk_folder, tmp_path / "elsewhere" / "utk")
    stamp = (table_dir / TABLE).stat().st_mtime_ns
    scenario = ["generate", "all_masked", "-n", "6", "--source", f"utkface:{copy}", "--workers", "1", "--quiet"]
    shared = runner.invoke(app, [*scenario, "--landmarks", str(table_dir), "--out", str(tmp_path / "shared")])
    assert shared.exit_code == 0, shared.output
    assert (table_dir / TABLE).stat().st_mtime_ns == stamp and not list(table_dir.glob("part-*"))  # nothing detected, nothing added
    assert len(LandmarkTable(table_dir)) == len(table)

    # Same dataset as a run that detects with the per-user cache.
    own = runner.invoke(app, [*scenario, "--out", str(tmp_path / "own"), "--cache-dir", str(tmp_path / "own-cache")])
    assert own.exit_code == 0, own.output
    assert (tmp_path / "shared" / "metadata.csv").read_bytes() == (tmp_path / "own" / "metadata.csv").read_bytes()


def test_a_new_image_is_detected_once_and_added(tmp_path, utk_folder):
    table_dir = tmp_path / "landmarks"
    first = sorted(utk_folder.glob("*_2017*.jpg"))[:2]
    pool = tmp_path / "pool"
    pool.mkdir()
    for path in first:
        shutil.copy2(path, pool / path.name)
    assert runner.invoke(app, ["detect", f"utkface:{pool}", "--cache", str(table_dir), "-w", "1", "-q"]).exit_code == 0
    assert len(LandmarkTable(table_dir)) == 2
    extra = sorted(utk_folder.glob("*_2017*.jpg"))[2]
    shutil.copy2(extra, pool / extra.name)
    result = runner.invoke(app, ["detect", f"utkface:{pool}", "--cache", str(table_dir), "-w", "1", "-q"])
    assert result.exit_code == 0 and "1 detected now" in " ".join(result.output.split()), result.output
    assert len(LandmarkTable(table_dir)) == 3


def test_bad_table_folders_and_unreadable_images_are_reported_not_raised(tmp_path, utk_folder):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = runner.invoke(app, ["detect", f"utkface:{utk_folder}", "--cache", str(not_a_folder), "--quiet"])
    assert result.exit_code == 2 and "not a folder" in result.output and "Traceback" not in result.output

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / TABLE).write_bytes(b"not parquet")
    result = runner.invoke(app, ["detect", f"utkface:{utk_folder}", "--cache", str(damaged), "--quiet"])
    assert result.exit_code == 2 and "not a readable landmark table" in result.output

    # An image that cannot be read has no content key: the table skips it (detection reports it) instead of stopping.
    table = LandmarkTable(tmp_path / "table")
    missing = tmp_path / "gone.jpg"
    assert table.get(missing) is None
    from synthface.landmarks import CachedDetection

    table.put(missing, CachedDetection(None, "unreadable image", (0, 0)))
    assert len(table) == 0
