"""Tidy processes and files: no child process outlives `generate`, a killed writer leaves no temporary
in the landmark cache, progress bars never end on a stale ETA, a merged report orders keys like an
unsharded one."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console
from rich.progress import Progress

from synthface.landmarks import TMP_DIR, CachedDetection, FaceLandmarks, LandmarkCache
from synthface.progress import EtaColumn

REPO = Path(__file__).resolve().parent.parent


# --- landmark cache ------------------------------------------------------------------------------
def _writer_script(root: Path, image: Path) -> str:
    return f"""
import numpy as np
from synthface.landmarks import CachedDetection, FaceLandmarks, LandmarkCache
cache = LandmarkCache({str(root)!r})
face = FaceLandmarks(np.zeros((3_000_000, 3), np.float32), 0.0, 0.0, 0.0)  # 36 MB: a long write to kill
print("ready", flush=True)
while True:
    cache.put({str(image)!r}, CachedDetection(face, "", (10, 10)))
"""


def test_a_killed_writer_leaves_no_temporary_once_the_cache_is_opened_again(tmp_path):
    image = tmp_path / "face.jpg"
    image.write_bytes(b"not really an image; the cache keys on the path")
    root = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    writer = subprocess.Popen([sys.executable, "-c", _writer_script(root, image)], env=env, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    deadline = time.time() + 20
    while not any((root / TMP_DIR).glob("*.npz")) and time.time() < deadline:
        time.sleep(0.005)
    os.kill(writer.pid, signal.SIGKILL)  # kill -9 mid-write, as a crash or OOM kill would
    writer.wait()
    left = list((root / TMP_DIR).glob("*.npz"))
    assert left, "the writer was not caught mid-write; the test proves nothing"
    LandmarkCache(root)  # the next run opens the cache
    assert not list((root / TMP_DIR).glob("*.npz"))
    assert not list(root.rglob("*.tmp.npz"))


def test_a_live_writer_keeps_its_temporary_and_a_failed_write_leaves_none(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    (root / TMP_DIR).mkdir(parents=True)
    mine = root / TMP_DIR / f"abc.{os.getpid()}.npz"
    mine.write_bytes(b"in progress")
    LandmarkCache(root)
    assert mine.exists()

    image = tmp_path / "face.jpg"
    image.write_bytes(b"x")
    cache = LandmarkCache(root)
    mine.unlink()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C between the write and the rename

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        cache.put(image, CachedDetection(FaceLandmarks(np.zeros((478, 3), np.float32), 0, 0, 0), "", (10, 10)))
    assert not list((root / TMP_DIR).glob("*"))


# --- generate's worker processes -----------------------------------------------------------------
def _processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if f"SYNTHFACE_TEST_MARKER={marker}".encode() in Path(f"/proc/{pid}/environ").read_bytes():
                    found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
            except OSError:
                continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc to find the run's processes")
def test_generate_leaves_no_child_process_after_it_ends_or_is_interrupted(utk_folder, tmp_path, isolated_cache):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "tidy", "n_samples": 400, "image_size": 48, "preview_samples": 0,
        "sources": [{"kind": "utkface", "path": str(utk_folder)}], "age": {"bins": [[0, 120]]},
        "balance": {"max_reuse": 400}, "mask": {"probability": 0.5},
    }))
    for interrupt in (False, True):
        marker = uuid.uuid4().hex  # inherited by every process the run starts (pool workers, trackers)
        env = dict(os.environ, PYTHONPATH=str(REPO), SYNTHFACE_TEST_MARKER=marker, SYNTHFACE_CACHE=str(isolated_cache))
        out = tmp_path / f"out-{interrupt}"
        run = subprocess.Popen([sys.executable, "-m", "synthface.cli", "generate", str(scenario), "--out", str(out),
                                "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if interrupt:
            deadline = time.time() + 60
            while not (out / ".synthface-run" / "rows.jsonl").exists() and time.time() < deadline:
                time.sleep(0.05)
            run.send_signal(signal.SIGINT)  # Ctrl-C while the render pool runs
        output, _ = run.communicate(timeout=120)
        assert run.returncode == (130 if interrupt else 0), output
        time.sleep(0.5)
        assert _processes_with(marker) == [], output


# --- progress bars -------------------------------------------------------------------------------
def test_a_finished_or_stopped_bar_says_the_time_taken_not_an_eta():
    buffer = io.StringIO()
    with Progress(EtaColumn(), console=Console(file=buffer, width=80)) as progress:
        done = progress.add_task("done", total=2)
        progress.advance(done, 2)
        cut = progress.add_task("cut", total=10)
        progress.advance(cut, 3)
        progress.stop_task(cut)
    lines = buffer.getvalue().strip().splitlines()
    assert lines and all(line.startswith("took ") for line in lines), lines


@pytest.mark.slow
def test_train_prints_each_bar_before_its_summary_and_nothing_after_done(tmp_path):
    from typer.testing import CliRunner

    from synthface.cli import app
    from synthface.dataset import read_metadata, write_metadata
    from synthface.testing import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data", n_per_split=4, image_size=32)
    table = read_metadata(root)
    write_metadata(root, table[(table["split"] == "train") | (table.groupby("split").cumcount() < 2)])
    result = CliRunner().invoke(app, [
        "train", "oam_resnet50", "--data", str(root), "--out", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "2",
        "--image-size", "32", "--backbone-weights", "none", "--workers", "0", "--max-steps", "3",
        "--set", "runtime.log_every_steps=1", "--set", "optim.warmup_epochs=0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    bars = [i for i, line in enumerate(lines) if line.startswith("epoch ") and "/2" in line.split()[1]]
    summaries = [i for i, line in enumerate(lines) if line.startswith("epoch ") and " step " in line]
    assert len(bars) == len(summaries) == 2  # epoch 1 whole, epoch 2 cut short by --max-steps
    assert all(bar < summary for bar, summary in zip(bars, summaries)) and bars[1] > summaries[0]
    assert lines[-1].startswith("done:")
    assert "ETA" not in result.output and all("took" in lines[i] for i in bars)


# --- merged report -------------------------------------------------------------------------------
def test_a_merged_report_has_the_keys_of_an_unsharded_one_in_the_same_order():
    from synthface.generation.plan import build_plan, shard
    from synthface.generation.pool import PoolReport
    from synthface.generation.report import build_report, merge_reports
    from synthface.scenario import parse_scenario
    from tests.test_plan import ALL_CELLS, SCENARIO, make_pool

    scenario = parse_scenario(SCENARIO, check_paths=False)
    plan = build_plan(scenario, make_pool(20, ALL_CELLS))

    def table_of(samples):
        return pd.DataFrame([dict(sample_id=s.sample_id, age_bin=s.age_bin, gender=s.gender, race=s.race, mask=s.mask,
                                  mask_worn=s.mask, mask_type=s.mask_type, wear_style=s.wear_style, split=s.split)
                             for s in samples])

    def as_written(report):
        return json.loads(json.dumps(report, default=dict))

    pool = PoolReport(n_inputs=len(plan.faces))
    whole = as_written(build_report(scenario, plan, pool, table_of(plan.samples), []))
    shards = [as_written(build_report(scenario, plan, pool, table_of(shard(plan.samples, i, 2)), [], shard=(i, 2)))
              for i in (1, 2)]
    merged = as_written(merge_reports(shards, table_of(plan.samples)))
    assert list(merged) == list(whole)
    assert merged == whole
