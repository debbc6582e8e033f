"""Hardening of the datasets `generate` writes (issue 10, items 1-6, 11 and 13): scenarios that
round-trip, workers that fail loudly, splits that depend on the face only and follow their
shares, honest summaries, atomic metadata, hostile inputs skipped, no write outside the output,
files that respect the umask."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synthface.paths import bundled_dir
from synthface.scenario import load_scenario, parse_scenario, scenario_to_yaml

BUNDLED = sorted(p.stem for p in bundled_dir("scenarios").glob("*.yaml"))
BASE = {"name": "t", "sources": [{"kind": "demo"}]}

# Every shorthand docs/scenarios.md documents, each as the user would write it.
SHORTHANDS = {
    "age range": {"age": {"range": [60, 80]}},
    "age range, source weights": {"age": {"range": [18, 35], "weights": "source"}},
    "age bins uniform": {"age": {"bins": [[0, 29], [30, 120]], "weights": "uniform"}},
    "gender source": {"gender": {"weights": "source"}},
    "race uniform fairface7": {"race": {"taxonomy": "fairface7", "weights": "uniform"}},
    "lighting preset name": {"lighting": {"preset": "dim"}},
    "lighting preset mix": {"lighting": {"preset": {"dim": 1, "harsh_side": 2}}},
    "lighting fixed number": {"lighting": {"intensity": 0.8, "jpeg_quality": 90}},
    "partial min_occluded_fraction": {"mask": {"min_occluded_fraction": {"chin": 0.01}}},
    "source with home path": {"sources": [{"kind": "utkface", "path": "~/faces"}]},
}


def round_trip(scenario):
    """The scenario as written to scenario.yaml, loaded again."""
    return parse_scenario(yaml.safe_load(scenario_to_yaml(scenario)), "scenario.yaml", check_paths=False)


# --- 1. every scenario round-trips; a worker that cannot start stops the run ---------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenarios_round_trip_through_their_own_yaml(name):
    scenario, _ = load_scenario(name)
    again = round_trip(scenario)
    assert again == scenario
    # The render workers get the scenario as JSON: the same must hold there.
    assert type(scenario).model_validate_json(scenario.model_dump_json()) == scenario


@pytest.mark.parametrize("label", sorted(SHORTHANDS))
def test_documented_shorthands_round_trip(label):
    scenario = parse_scenario({**BASE, **SHORTHANDS[label]}, check_paths=False)
    again = round_trip(scenario)
    assert again == scenario
    assert type(scenario).model_validate_json(scenario.model_dump_json()) == scenario


def test_age_range_means_its_one_bin():
    scenario = parse_scenario({**BASE, "age": {"range": [60, 80]}}, check_paths=False)
    assert scenario.age.labels() == ["60-80"] and scenario.age.bin_of(59) is None and scenario.age.bin_of(80) == "60-80"


def test_a_worker_that_fails_to_start_stops_the_pool_with_its_error():
    """multiprocessing restarts a worker whose initializer raises forever; ours report it with the first task."""
    from synthface.workers import WorkerStartError, guarded, worker_pool

    pool = worker_pool(2, int, ("not a number",))  # int("not a number") raises in each worker's set-up
    try:
        with pytest.raises(WorkerStartError, match="invalid literal for int"):
            list(pool.imap_unordered(guarded(abs), [-1, -2, -3]))
    finally:
        pool.terminate()
        pool.join()


@pytest.mark.slow
def test_generate_with_age_range_and_workers_finishes_and_its_scenario_loads_again(tmp_path):
    """Issue 10.1: `age: {range: ...}` hung `generate` with workers; the written scenario.yaml did not load."""
    scenario = tmp_path / "ranged.yaml"
    scenario.write_text(yaml.safe_dump({**BASE, "name": "ranged", "n_samples": 4, "image_size": 64, "preview_samples": 0,
                                        "age": {"range": [30, 80]}, "mask": {"probability": 0.5}}))
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from synthface.cli import app; app()", "generate", str(scenario), "--out", str(out), "--workers", "2", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert done.returncode == 0, done.stderr[-2000:]
    reloaded, _ = load_scenario(out / "scenario.yaml", check_paths=False)
    assert reloaded.age.labels() == ["30-80"]
