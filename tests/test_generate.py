"""`synthface generate` end to end on a tiny UTKFace-style pool made from the real photos:
files and report, masks that really cover the mouth and nose and spare the eyes (pixels),
determinism across runs and worker counts, resume after a real kill, shards + merge, dry run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from synthface import facemesh
from synthface.cli import app
from synthface.dataset import read_metadata

runner = CliRunner()


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory, utk_folder) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny",
        "seed": 7,
        "n_samples": 24,
        "image_size": 128,
        "sources": [{"kind": "utkface", "path": str(utk_folder)}],
        "age": {"bins": [[0, 29], [30, 59], [60, 120]], "weights": "uniform"},
        "gender": {"weights": "uniform"},
        "race": {"taxonomy": "utkface5", "weights": "source"},
        "mask": {"probability": 0.5, "types": {"surgical": 0.4, "n95": 0.3, "cloth": 0.3}, "wear_styles": {"proper": 1.0}},
        "pair_unmasked": True,
        "balance": {"max_reuse": 6},
        "preview_samples": 12,
    }))
    return path


def generate(*args: object):
    result = runner.invoke(app, ["generate", *map(str, args), "--quiet"])
    return result


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, scenario_file) -> Path:
    out = tmp_path_factory.mktemp("runs") / "full"
    result = generate(scenario_file, "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    return out


def test_writes_the_dataset_layout(dataset):
    for name in ("metadata.csv", "samples.parquet", "scenario.yaml", "report.json", "report.md", "preview.jpg"):
        assert (dataset / name).stat().st_size > 0, name
    table = read_metadata(dataset)
    primary = table[~table["sample_id"].str.endswith("-unmasked")]
    assert len(primary) == 24
    assert all((dataset / f).is_file() for f in table["file_name"])
    assert set(primary["mask"]) == {0, 1} and (primary["mask"] == 1).sum() == 12
    masked = table[table["mask"] == 1]
    assert set(masked["mask_type"]) <= {"surgical", "n95", "cloth"}
    assert (masked["occluded_fraction"] >= 0.30).all()  # all proper wear
    assert all((dataset / f).is_file() for f in masked["occlusion_file"])
    # Every masked sample has an unmasked twin with the same pair_id, face and lighting.
    twins = table[table["sample_id"].str.endswith("-unmasked")]
    assert sorted(twins["pair_id"]) == sorted(masked["pair_id"])
    merged = masked.merge(twins, on="pair_id", suffixes=("", "_twin"))
    assert (merged["source_id"] == merged["source_id_twin"]).all() and (merged["mask_twin"] == 0).all()
    assert (merged["lighting_intensity"] == merged["lighting_intensity_twin"]).all()
    # One split per source face.
    assert (table.groupby("source_id")["split"].nunique() == 1).all()
    # Nothing stands in front of the test faces: the foreground check leaves every one alone.
    assert (table["foreground_fraction"] == 0).all()
    with Image.open(dataset / table["file_name"][0]) as image:
        assert image.size == (128, 128)


def test_hugging_face_imagefolder_reads_the_dataset(dataset, monkeypatch, tmp_path):
    import datasets  # from the dev extra
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    loaded = datasets.load_dataset("imagefolder", data_dir=str(dataset), cache_dir=str(tmp_path / "hf-cache"))["train"]
    table = read_metadata(dataset)
    assert len(loaded) == len(table)  # occlusion maps and the preview are not taken for samples
    assert sorted(loaded["sample_id"]) == sorted(table["sample_id"])
    first = loaded[0]
    assert first["image"].size == (128, 128) and first["gender"] in ("male", "female")


def test_report_lists_skipped_inputs_with_reasons(dataset):
    report = json.loads((dataset / "report.json").read_text())
    skipped = pd.read_parquet(dataset / report["pool"]["skipped_table"])
    reasons = {Path(path).name: reason for path, reason in zip(skipped["path"], skipped["reason"])}
    assert "not_a_utkface_name.jpg" in reasons
    assert reasons["30_0_0_20170101000009.jpg"] == "no face found"
    assert report["pool"]["usable_faces"] == 8
    assert set(report["imbalance"]["gender"]) == {"pool", "target", "dataset"}
    assert report["attributes"]["mask"]["1"]["achieved"] == pytest.approx(0.5)
    assert "Target vs achieved" in (dataset / "report.md").read_text()


def test_masks_cover_mouth_and_nose_and_spare_the_eyes(dataset):
    """Pixels, not files: compare each masked image with its unmasked twin and its occlusion map."""
    from synthface.landmarks import LandmarkDetector

    table = read_metadata(dataset)
    masked = table[table["mask"] == 1]
    load = lambda name: np.asarray(Image.open(dataset / name).convert("RGB"), dtype=np.float32)
    with LandmarkDetector() as detector:
        for _, row in masked.iterrows():
            twin = load(f"images/{row['sample_id']}-unmasked.jpg")
            image = load(row["file_name"])
            occlusion = np.asarray(Image.open(dataset / row["occlusion_file"])) > 127
            points = detector.detect(twin.astype(np.uint8))[0].points
            at = lambda idx: occlusion[int(round(points[idx, 1])), int(round(points[idx, 0]))]
            assert at(facemesh.NOSE_TIP), row["sample_id"]
            assert all(at(i) for i in (facemesh.UPPER_LIP_TOP, facemesh.LOWER_LIP_BOTTOM, facemesh.MOUTH_LEFT, facemesh.MOUTH_RIGHT))
            eyes = facemesh.polygon_mask(points, facemesh.LEFT_EYE, occlusion.shape) | facemesh.polygon_mask(points, facemesh.RIGHT_EYE, occlusion.shape)
            assert not (occlusion & eyes).any()
            difference = np.abs(image - twin).mean(axis=2)
            # Away from the mask the twins are the same pixels; JPEG blocks that straddle the
            # mask's top edge may ring a little onto the eyes, nothing more.
            far = ndimage.distance_transform_edt(~occlusion) > 12
            assert difference[far].mean() < 0.5
            assert difference[eyes].mean() < 6
            mouth = facemesh.polygon_mask(points, facemesh.LIPS_OUTER, occlusion.shape)
            assert difference[mouth].mean() > 25  # the mouth is really covered


def test_skipped_inputs_go_to_a_table_and_the_report_summarises_them(tmp_path, utk_folder, scenario_file):
    from synthface.generation.run import clear_outputs, has_outputs

    pool = tmp_path / "pool"
    pool.mkdir()
    for photo in utk_folder.iterdir():
        (pool / photo.name).write_bytes(photo.read_bytes())
    broken = [f"{20 + i}_1_2_201701010001{i:02d}.jpg" for i in range(14)]  # more than the report's examples
    for name in broken:
        (pool / name).write_bytes(b"not a jpeg")
    scenario = yaml.safe_load(scenario_file.read_text()) | {"n_samples": 4, "pair_unmasked": False, "preview_samples": 0,
                                                             "sources": [{"kind": "utkface", "path": str(pool)}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    result = generate(tmp_path / "s.yaml", "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output

    table = pd.read_parquet(out / "skipped.parquet")
    assert list(table.columns) == ["path", "source", "reason"]
    rows = {Path(path).name: reason for path, reason in zip(table["path"], table["reason"])}
    assert set(rows) == {*broken, "not_a_utkface_name.jpg", "30_0_0_20170101000009.jpg"} and len(table) == len(rows)
    assert all(rows[name].startswith("unreadable image") for name in broken)
    assert rows["30_0_0_20170101000009.jpg"] == "no face found"
    assert set(table["source"]) == {f"utkface:{pool}"}

    report = json.loads((out / "report.json").read_text())["pool"]
    assert report["skipped"] == len(table) and sum(report["skipped_by_reason"].values()) == len(table)
    assert report["skipped_by_reason"]["unreadable image"] == len(broken)
    assert len(report["skipped_examples"]) == 10
    markdown = (out / "report.md").read_text()
    assert f"| unreadable image | {len(broken)} |" in markdown and "skipped.parquet" in markdown
    assert sum(name in markdown for name in rows) == 10  # examples only, the rest is in the table

    clear_outputs(out)  # what --overwrite does first
    assert not (out / "skipped.parquet").exists() and not has_outputs(out)


def test_same_scenario_and_seed_give_the_same_bytes_with_any_worker_count(tmp_path, dataset, scenario_file):
    result = generate(scenario_file, "--out", tmp_path / "again", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again" / "metadata.csv").read_bytes() == (dataset / "metadata.csv").read_bytes()
    for name in read_metadata(dataset)["file_name"]:
        assert (tmp_path / "again" / name).read_bytes() == (dataset / name).read_bytes(), name
    other = generate(scenario_file, "--out", tmp_path / "seed8", "--workers", "1", "--seed", "8")
    assert other.exit_code == 0
    assert (tmp_path / "seed8" / "metadata.csv").read_bytes() != (dataset / "metadata.csv").read_bytes()


def test_resume_after_a_real_kill(tmp_path, scenario_file, isolated_cache):
    out = tmp_path / "killed"
    n = 300  # long enough (a few seconds) to be killed mid-run
    data = yaml.safe_load(scenario_file.read_text())
    data["balance"]["max_reuse"] = 100  # let 8 faces make 300 samples
    scenario_file = tmp_path / "long.yaml"
    scenario_file.write_text(yaml.safe_dump(data))
    command = [sys.executable, "-m", "synthface.cli", "generate", str(scenario_file), "--out", str(out), "-n", str(n),
               "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, env=dict(os.environ, SYNTHFACE_CACHE=str(isolated_cache)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / ".synthface-run" / "rows.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 10):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "metadata.csv").exists()  # no table claiming images that are not there
    finished = {json.loads(line)["sample_id"] for line in journal.read_text().splitlines() if line.endswith("}")}
    assert 10 <= len(finished) < n
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "images").glob("*.jpg")}

    refused = generate(scenario_file, "--out", out, "-n", n, "--workers", "1")
    assert refused.exit_code == 2 and "--resume" in refused.output
    other_plan = generate(scenario_file, "--out", out, "-n", n, "--seed", 1, "--workers", "1", "--resume")
    assert other_plan.exit_code == 2 and "another plan" in other_plan.output
    resumed = generate(scenario_file, "--out", out, "-n", n, "--workers", "1", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"{n - len(finished)} rendered" in " ".join(resumed.output.split())
    table = read_metadata(out)
    primary = table[~table["sample_id"].str.endswith("-unmasked")]
    assert len(primary) == n and table["sample_id"].is_unique
    assert all((out / f).is_file() for f in table["file_name"])
    for sample_id in finished:  # finished samples were kept, not redone
        name = f"{sample_id}.jpg"
        assert (out / "images" / name).stat().st_mtime_ns == stamps[name]


def test_shards_merge_into_the_full_dataset(tmp_path, dataset, scenario_file):
    for index in (1, 2):
        result = generate(scenario_file, "--out", tmp_path / f"shard{index}", "--workers", "1", "--shard", f"{index}/2")
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    merged, full = read_metadata(tmp_path / "merged"), read_metadata(dataset)
    pd.testing.assert_frame_equal(merged, full)
    assert all((tmp_path / "merged" / f).is_file() for f in merged["file_name"])
    report = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert report["written"]["samples"] == 24
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "merged" / "skipped.parquet"), pd.read_parquet(dataset / "skipped.parquet"))
    incomplete = runner.invoke(app, ["merge", str(tmp_path / "shard1"), "--out", str(tmp_path / "merged1")])
    assert incomplete.exit_code == 2 and "every shard" in incomplete.output


def test_plan_only_writes_the_plan_that_a_run_renders(tmp_path, dataset, scenario_file):
    from synthface.generation.plan import read_plan_fingerprint

    out = tmp_path / "planned"
    result = generate(scenario_file, "--out", out, "--workers", "1", "--plan-only")
    assert result.exit_code == 0, result.output
    plan_file = out / ".synthface-run" / "plan.parquet"
    assert not (out / "metadata.csv").exists() and not any((out / "images").iterdir())  # nothing rendered

    plan = pd.read_parquet(plan_file)
    table = read_metadata(dataset)
    rendered = table[~table["sample_id"].str.endswith("-unmasked")].reset_index(drop=True)
    assert list(plan["sample_id"]) == list(rendered["sample_id"]) and list(plan["index"]) == list(range(len(plan)))
    for column in ("split", "seed", "age_bin", "gender", "race", "mask_type", "wear_style"):
        assert list(plan[column]) == list(rendered[column]), column
    assert list(plan["mask"]) == list(rendered["mask_worn"])
    # The face is the planned one, or one of its alternates where the mask could not be fitted.
    assert all(used == face or used in list(others) for used, face, others in zip(rendered["source_id"], plan["source_id"], plan["alternates"]))
    fingerprint = json.loads((dataset / ".synthface-run" / "run.json").read_text())["plan"]
    assert read_plan_fingerprint(plan_file) == fingerprint and fingerprint in result.output
    # Deterministic: the full run wrote the same artifact, byte for byte.
    assert plan_file.read_bytes() == (dataset / ".synthface-run" / "plan.parquet").read_bytes()

    # The render stage on its own: --resume renders the planned folder into the same dataset.
    result = generate(scenario_file, "--out", out, "--workers", "1", "--resume")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(read_metadata(out), table)


def test_dry_run_reports_and_writes_nothing(tmp_path, scenario_file):
    result = generate(scenario_file, "--out", tmp_path / "dry", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Target vs achieved" in result.output
    assert not (tmp_path / "dry").exists()


def test_invalid_scenario_fails_clearly_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "gender": {"weights": {"male": 0.7, "female": 0.7}}}))
    result = generate(bad, "--out", tmp_path / "never")
    assert result.exit_code == 2
    assert "gender.weights" in result.output and "sum to 1" in result.output
    assert not (tmp_path / "never").exists()


def test_demo_pool_runs_offline_and_says_what_it_cannot_meet(tmp_path):
    result = generate("all_masked", "-n", "6", "--out", tmp_path / "demo", "--workers", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["uses_demo_pool"] and report["written"]["samples"] == 6
    assert any(line.startswith("gender=male") for line in report["unmet_targets"])
    assert "demo pool" in (tmp_path / "demo" / "report.md").read_text()
