"""One writer per output: a second `generate` or `merge` on a folder another process is writing
stops with the other run's name; the lock goes away with its holder, even after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthface.cli import app
from synthface.generate import RUN_DIR
from synthface.runlock import LOCK_FILE, OutputLockedError, output_lock

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _long_scenario(folder: Path, utk_folder: Path) -> Path:
    path = folder / "long.yaml"
    path.write_text(yaml.safe_dump({
        "name": "locked", "seed": 1, "n_samples": 4000, "image_size": 48, "preview_samples": 0,
        "sources": [{"kind": "utkface", "path": str(utk_folder)}], "age": {"bins": [[0, 120]]},
        "balance": {"max_reuse": 1000}, "mask": {"probability": 0.5},
    }))
    return path


def test_a_second_run_on_the_same_out_is_refused_naming_the_first(tmp_path, utk_folder, isolated_cache):
    scenario, out = _long_scenario(tmp_path, utk_folder), tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "synthface.cli", "generate", str(scenario), "--out", str(out),
                              "--workers", "1", "--quiet"],
                             env=dict(os.environ, PYTHONPATH=str(REPO), SYNTHFACE_CACHE=str(isolated_cache)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        journal, deadline = out / RUN_DIR / "rows.jsonl", time.time() + 120
        while time.time() < deadline and not (journal.exists() and journal.stat().st_size > 0):
            assert first.poll() is None, "the first run ended early"
            time.sleep(0.05)
        holder = json.loads((out / RUN_DIR / LOCK_FILE).read_text())
        assert holder["pid"] == first.pid and holder["action"] == "generate"
        run_info = (out / RUN_DIR / "run.json").read_bytes()

        for args in (["--resume"], ["--overwrite"], []):
            second = runner.invoke(app, ["generate", str(scenario), "--out", str(out), "--workers", "1", "--quiet", *args])
            assert second.exit_code == 2, second.output
            message = " ".join(second.output.split())
            assert "being written by another synthface run" in message and f"pid {first.pid}" in message, message
        merged = runner.invoke(app, ["merge", str(tmp_path / "shard"), "--out", str(out), "--overwrite"])
        assert merged.exit_code == 2 and f"pid {first.pid}" in " ".join(merged.output.split()), merged.output
        assert first.poll() is None  # the first run goes on, its folder untouched by the refused ones
        assert (out / RUN_DIR / "run.json").read_bytes() == run_info
        assert (out / "images").is_dir()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with output_lock(out, RUN_DIR, "test"):  # the kernel released the killed run's lock: no stale lock to remove
        pass


def test_an_out_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputLockedError, match="is not a folder"):
        with output_lock(tmp_path / "file", RUN_DIR, "generate"):
            pass


def test_a_non_empty_out_is_refused_before_detection_and_leaves_no_lock(tmp_path):
    out = tmp_path / "someone_elses"
    out.mkdir()
    (out / "thesis.pdf").write_bytes(b"%PDF")
    result = runner.invoke(app, ["generate", "all_masked", "--out", str(out), "-n", "4", "--quiet"])
    assert result.exit_code == 2 and "is not empty" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["thesis.pdf"]  # no .synthface-run/lock left in the user's folder


def test_temporaries_of_a_killed_writer_are_removed_when_the_run_resumes(tmp_path):
    out = tmp_path / "out"
    first = runner.invoke(app, ["generate", "all_masked", "--out", str(out), "-n", "4", "--workers", "1", "--quiet"])
    assert first.exit_code == 0, first.output
    # What a worker killed mid-write leaves (dataset.staged_file names its temporaries .NAME.XXXX.tmp).
    leftovers = [out / "images" / ".all_masked-000001.jpg.k2j4.tmp", out / "occlusion" / ".all_masked-000001.png.x9.tmp"]
    for leftover in leftovers:
        leftover.parent.mkdir(exist_ok=True)
        leftover.write_bytes(b"half a file")
    again = runner.invoke(app, ["generate", "all_masked", "--out", str(out), "-n", "4", "--workers", "1", "--quiet", "--resume"])
    assert again.exit_code == 0, again.output
    assert not any(leftover.exists() for leftover in leftovers)


@pytest.mark.parametrize("args", [
    ["generate", "all_masked", "--out", "/tmp/unused", "--landmarks", "s3://bucket/landmarks"],
    ["detect", "demo", "--cache", "s3://bucket/landmarks"],
])
def test_a_landmark_table_at_a_url_is_refused_not_written_as_a_local_folder(args, tmp_path, monkeypatch):
    # The table is appended to while a run goes on: it must be a folder (tests/test_object_storage.py covers URL pools and outputs).
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 2 and "must be a local path or a mounted folder, not a URL" in " ".join(result.output.split()), result.output
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "gs:").exists()


def test_merge_refuses_a_shard_that_a_run_is_still_writing(tmp_path):
    shard = tmp_path / "shard1"
    with output_lock(shard, RUN_DIR, "generate"):  # as a shard run (or its --resume) holds it
        result = runner.invoke(app, ["merge", str(shard), "--out", str(tmp_path / "merged")])
    assert result.exit_code == 2 and "is being written by a synthface run" in " ".join(result.output.split()), result.output
    assert not (tmp_path / "merged" / "metadata.csv").exists()
