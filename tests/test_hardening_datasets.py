"""Hardening of the datasets `generate` writes (issue 10, items 1-6, 11 and 13): scenarios that
round-trip, workers that fail loudly, splits that depend on the face only and follow their
shares, honest summaries, atomic metadata, hostile inputs skipped, no write outside the output,
files that respect the umask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
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


def resolved(scenario):
    """What scenario.yaml holds: the same scenario with every lighting value in force written out."""
    return scenario.model_copy(update={"lighting": scenario.lighting.filled()})


# --- 1. every scenario round-trips; a worker that cannot start stops the run ---------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenarios_round_trip_through_their_own_yaml(name):
    scenario, _ = load_scenario(name)
    again = round_trip(scenario)
    assert again == resolved(scenario) and scenario_to_yaml(again) == scenario_to_yaml(scenario)
    # The render workers get the scenario as JSON: the same must hold there.
    assert type(scenario).model_validate_json(scenario.model_dump_json()) == scenario


@pytest.mark.parametrize("label", sorted(SHORTHANDS))
def test_documented_shorthands_round_trip(label):
    scenario = parse_scenario({**BASE, **SHORTHANDS[label]}, check_paths=False)
    again = round_trip(scenario)
    assert again == resolved(scenario) and scenario_to_yaml(again) == scenario_to_yaml(scenario)
    assert type(scenario).model_validate_json(scenario.model_dump_json()) == scenario


def test_age_range_means_its_one_bin():
    scenario = parse_scenario({**BASE, "age": {"range": [60, 80]}}, check_paths=False)
    assert scenario.age.labels() == ["60-80"] and scenario.age.bin_of(59) is None and scenario.age.bin_of(80) == "60-80"


def test_a_worker_that_fails_to_start_stops_the_pool_with_its_error():
    """multiprocessing restarts a worker whose initializer raises forever; ours report it with the first task."""
    from synthface.generation.workers import WorkerStartError, guarded, worker_pool

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


# --- 2. a face's split depends on the face only; 3. splits follow their shares ---------------------------------


def synthetic_pool(scenario, n_faces: int = 600):
    """A pool of n_faces labelled faces over ages 1-90, both genders and the five races, seen through
    `scenario` (faces outside its age bins are left out, as the real pool does)."""
    from synthface.generation.plan import PoolFace
    from synthface.generation.sources.base import FaceRecord
    from synthface.taxonomy import GENDERS, RACE_TAXONOMIES

    faces = []
    for i in range(n_faces):
        age, gender, race = 1 + (i * 7) % 90, GENDERS[i % 2], RACE_TAXONOMIES["utkface5"][(i // 2) % 5]
        record = FaceRecord(f"utkface:{age}_{i % 2}_{(i // 2) % 5}_{i:06d}.jpg", Path(f"/pool/{i}.jpg"), "utkface",
                            float(age), None, gender, race, "utkface5")
        age_bin = scenario.age.bin_of(age)
        if age_bin is not None:
            faces.append(PoolFace(record, age_bin, gender, race))
    return faces


def test_a_face_keeps_its_split_across_every_bundled_scenario():
    """Issue 10.2: 31-43% of senior_mixed's / young_masked's test faces were in mixed_50's train split."""
    from synthface.generation.plan import build_plan

    split_of: dict[str, str] = {}
    checked = 0
    for name in BUNDLED:
        scenario, _ = load_scenario(name)
        plan = build_plan(scenario, synthetic_pool(scenario), n_samples=300)
        for face, split in plan.split_of_face.items():
            checked += face in split_of
            assert split_of.setdefault(face, split) == split, f"{face} is in {split} in {name}, {split_of[face]} before"
    assert checked > 1000  # the scenarios share most faces: the check has teeth


def test_the_split_seed_and_shares_decide_the_split_not_the_scenario_seed():
    from synthface.generation.plan import build_plan

    scenario = parse_scenario({**BASE, "n_samples": 300}, check_paths=False)
    faces = synthetic_pool(scenario)
    base = build_plan(scenario, faces).split_of_face
    other_seed = scenario.model_copy(update={"seed": 99})
    assert build_plan(other_seed, faces).split_of_face == base
    reshuffled = scenario.model_copy(update={"splits": scenario.splits.model_copy(update={"seed": 1})})
    moved = sum(a != b for a, b in zip(base.values(), build_plan(reshuffled, faces).split_of_face.values()))
    assert moved > len(faces) // 10


@pytest.mark.parametrize("n, expected", [(100, (80, 10, 10)), (200, (160, 20, 20)), (1000, (800, 100, 100)), (7, (5, 1, 1)), (3, (3, 0, 0))])
def test_splits_follow_their_shares_within_rounding(n, expected):
    """Issue 10.3: -n 100 gave 100/0/0 and -n 200 gave 150/49/1 on a many-stratum scenario."""
    from collections import Counter

    from synthface.generation.plan import build_plan

    scenario = parse_scenario({**BASE, "race": {"weights": "uniform"}}, check_paths=False)  # 5 x 2 x 5 strata
    plan = build_plan(scenario, synthetic_pool(scenario, 2000), n_samples=n)
    counts = Counter(spec.split for spec in plan.samples)
    assert (counts["train"], counts["val"], counts["test"]) == expected
    if expected[2] == 0:
        for split in ("val", "test"):
            assert f"the {split} split is empty: n_samples 3 is too small for a 10% share" in plan.notes
    else:
        assert not [note for note in plan.notes if "split" in note]


def test_stratum_targets_stay_exact_when_splits_are_rounded_separately():
    from collections import Counter

    from synthface.generation.plan import build_plan

    scenario = parse_scenario({**BASE, "age": {"bins": [[0, 29], [30, 120]], "weights": [0.25, 0.75]}}, check_paths=False)
    plan = build_plan(scenario, synthetic_pool(scenario, 2000), n_samples=400)
    assert Counter(s.age_bin for s in plan.samples) == {"0-29": 100, "30-120": 300}
    assert Counter(s.split for s in plan.samples) == {"train": 320, "val": 40, "test": 40}


def test_a_pool_too_small_for_a_split_says_so_plainly():
    from synthface.generation.plan import build_plan

    scenario = parse_scenario({**BASE, "n_samples": 50}, check_paths=False)
    plan = build_plan(scenario, synthetic_pool(scenario, 1))
    empty = [s for s in ("train", "val", "test") if s not in set(plan.split_of_face.values())]
    assert len(empty) == 2  # one face is in one split
    for split in empty:
        assert any(note.startswith(f"the {split} split is empty: no source face of the pool (1 usable faces)")
                   for note in plan.notes), plan.notes


@pytest.mark.slow
def test_checkpoint_records_its_training_faces_and_evaluate_and_compare_warn_when_they_are_scored(cli, tmp_path):
    """Issue 10.2: `compare` scored models on faces they trained on, silently."""
    import pandas as pd

    from synthface.dataset import read_metadata
    from synthface.testing import make_tiny_dataset
    from synthface.training.checkpoint import load_for_inference
    from synthface.training.loop import train
    from synthface.training.recipe import Recipe, with_overrides

    data = make_tiny_dataset(tmp_path / "data", n_per_split=2, image_size=32)
    recipe = with_overrides(Recipe(), {"model.backbone_weights": "none", "data.image_size": 32, "data.batch_size": 2,
                                       "data.workers": 0, "optim.warmup_epochs": 0, "optim.epochs": 1, "optim.max_steps": 1})
    train(recipe, data, tmp_path / "run")
    checkpoint = tmp_path / "run" / "best.pt"
    table = read_metadata(data)
    _, info = load_for_inference(checkpoint)
    assert info["train_faces"] == sorted(table.loc[table["split"] == "train", "source_id"])

    common = ["--workers", "0", "--bootstrap", "100", "--min-group-size", "1", "--gradcam-samples", "0", "--quiet"]
    from synthface.evaluation.evaluate import trained_on

    assert trained_on(info, table[table["split"] == "test"])["faces"] == 0
    seen = cli(["evaluate", checkpoint, "--data", data, "--out", tmp_path / "seen", "--split", "train", "--no-plots", *common])
    assert seen.exit_code == 0, seen.output
    assert "warning:" in seen.output and "2 of its 2 faces (2 of 2 samples) are faces the model was trained on" in seen.output
    assert "**Warning:**" in (tmp_path / "seen" / "report.md").read_text()

    compared = cli(["compare", checkpoint, data, "--out", tmp_path / "cmp", "--split", "train", *common])
    assert compared.exit_code == 0, compared.output
    assert "2 evaluated faces (2 of 2 samples) were in its training split" in compared.output
    assert pd.read_csv(tmp_path / "cmp" / "comparison.csv")["trained_faces"].tolist() == [2]


# --- 4. the terminal summary names empty splits; 5. --overwrite and metadata are clean and atomic ---------------


def demo_scenario(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump({**BASE, "name": "demo_run", "n_samples": 3, "image_size": 64, "preview_samples": 0,
                                    "mask": {"probability": 0.5}, **extra}))
    return path


def test_generate_summary_reports_split_counts_and_empty_splits_and_overwrite_starts_clean(cli, tmp_path):
    """Issue 10.4: the demo dataset had no val/test split and only report.md said so.
    Issue 10.5: --overwrite kept the previous run's metadata."""
    from synthface.dataset import read_metadata

    scenario, out = demo_scenario(tmp_path), tmp_path / "out"
    first = cli(["generate", scenario, "--out", out, "--workers", "1", "--quiet"])
    assert first.exit_code == 0, first.output
    assert "splits: train 3, val 0, test 0" in first.output
    assert "the val split is empty: no source face of the pool (2 usable faces)" in first.output
    assert "the test split is empty" in first.output

    (out / "my_notes.txt").write_text("the user's own file")
    again = cli(["generate", scenario, "--out", out, "--workers", "1", "--quiet", "--overwrite", "-n", "2"])
    assert again.exit_code == 0, again.output
    assert len(read_metadata(out)) == 2 and len(list((out / "images").iterdir())) == 2
    assert (out / "my_notes.txt").read_text() == "the user's own file"


def test_overwrite_removes_the_previous_metadata_before_rendering(tmp_path):
    """A run started with --overwrite and stopped before it wrote its table must not leave the old
    table listing images that are gone."""
    from synthface.generation.plan import build_plan
    from synthface.generation.run import GenerateOptions, prepare_output
    from synthface.testing import make_tiny_dataset

    out = make_tiny_dataset(tmp_path / "old", n_per_split=2, image_size=32)
    for name in ("scenario.yaml", "report.json", "report.md", "preview.jpg"):
        (out / name).write_text("old")
    (out / "keep.txt").write_text("mine")
    scenario = parse_scenario({**BASE, "n_samples": 2}, check_paths=False)
    plan = build_plan(scenario, synthetic_pool(scenario, 10))
    prepare_output(GenerateOptions(out=out, overwrite=True), scenario, plan)
    left = sorted(p.name for p in out.iterdir())
    assert left == [".synthface-run", "images", "keep.txt"], left
    assert not any((out / "images").iterdir())


def test_write_metadata_never_leaves_the_new_csv_beside_an_old_parquet(tmp_path, monkeypatch):
    """Readers prefer samples.parquet: a failure between the two files must not leave it stale."""
    import pandas as pd

    from synthface import dataset
    from synthface.dataset import METADATA_PARQUET, read_metadata, write_metadata

    write_metadata(tmp_path, pd.DataFrame({"sample_id": ["old"], "split": ["train"]}))
    real_replace = os.replace

    def fail_on_parquet(source, target):
        if str(target).endswith(METADATA_PARQUET):
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(dataset.os, "replace", fail_on_parquet)
    with pytest.raises(OSError, match="disk full"):
        write_metadata(tmp_path, pd.DataFrame({"sample_id": ["new"], "split": ["train"]}))
    monkeypatch.undo()
    assert read_metadata(tmp_path)["sample_id"].tolist() == ["new"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporaries left behind


# --- 13. written files respect the umask --------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomically_written_files_follow_the_umask(tmp_path, umask, mode):
    """Issue 10.13: tempfile-based writes left every dataset file and checkpoint at 0600."""
    import pandas as pd
    import torch

    from synthface.dataset import METADATA_CSV, METADATA_PARQUET, atomic_write_bytes, write_metadata
    from synthface.training.checkpoint import save_checkpoint

    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "report.json", b"{}")
        write_metadata(tmp_path, pd.DataFrame({"sample_id": ["a"]}))
        save_checkpoint(tmp_path / "best.pt", {"model": {"w": torch.zeros(1)}})
    finally:
        os.umask(previous)
    for name in ("report.json", METADATA_CSV, METADATA_PARQUET, "best.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


# --- 6. hostile pools: link loops, huge headers, decompression bombs are skipped and reported ---------------------


def png_bytes(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A 1-bit greyscale PNG of width x height; `rows` (the raw scanlines) default to all black.
    With rows=b"" the header claims the size but no pixel data follows."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    if rows is None:
        line = b"\0" * (1 + (width + 7) // 8)
        packer = zlib.compressobj(9)
        rows = b"".join(packer.compress(line) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_the_image_reader_refuses_huge_headers_and_bombs_before_decoding(tmp_path):
    """Issue 10.6: a PNG claiming 60000x60000 raised an uncaught cv2.error; big images decoded to gigabytes."""
    from synthface.images import MAX_IMAGE_PIXELS, read_image_rgb

    huge = tmp_path / "huge.png"
    huge.write_bytes(png_bytes(60000, 60000, rows=b""))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(9000, 9000))  # a small file that would decode to 81 megapixels
    assert bomb.stat().st_size < 200_000 and 9000 * 9000 > MAX_IMAGE_PIXELS
    for path in (huge, bomb):
        with pytest.raises(ValueError, match="image too large"):
            read_image_rgb(path)
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="unreadable image"):
        read_image_rgb(tmp_path / "text.jpg")
    fine = tmp_path / "fine.png"
    fine.write_bytes(png_bytes(40, 30))
    assert read_image_rgb(fine).shape == (30, 40, 3)


def hostile_pool(root: Path, face: Path) -> Path:
    """A UTKFace folder with one real face and every kind of trap."""
    import shutil

    root.mkdir()
    shutil.copy(face, root / "35_1_0_20170101000001.jpg")
    (root / "nested").mkdir()
    shutil.copy(face, root / "nested" / "36_1_0_20170101000002.jpg")
    os.symlink(root, root / "self")  # a folder link to itself
    os.symlink(root, root / "nested" / "parent")  # a link to a folder above
    os.symlink(root / "loop_b", root / "loop_a")  # a loop of links
    os.symlink(root / "loop_a", root / "loop_b")
    os.symlink(root / "nowhere", root / "40_0_0_20170101000003.jpg")  # a broken link
    (root / "50_0_1_20170101000004.png").write_bytes(png_bytes(60000, 60000, rows=b""))
    (root / "51_0_1_20170101000005.png").write_bytes(png_bytes(9000, 9000))
    return root


def test_a_utkface_scan_skips_and_reports_link_loops(tmp_path):
    from synthface.generation.sources.base import SourceSpec
    from synthface.generation.sources.utkface import load_utkface

    root = hostile_pool(tmp_path / "pool", Path(__file__).parent.parent / "synthface" / "generation" / "sources" / "demo.py")
    scan = load_utkface(SourceSpec(kind="utkface", path=root))
    assert sorted(r.source_id for r in scan.records) == [
        "utkface:35_1_0_20170101000001.jpg", "utkface:50_0_1_20170101000004.png",
        "utkface:51_0_1_20170101000005.png", "utkface:nested/36_1_0_20170101000002.jpg"]
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert reasons["self"].startswith("folder link loop") and reasons["parent"].startswith("folder link loop")
    for name in ("loop_a", "loop_b"):
        assert reasons[name].startswith("looping link"), reasons
    assert reasons["40_0_0_20170101000003.jpg"] == "broken link: points to a missing file"


@pytest.mark.slow
def test_generate_on_a_hostile_pool_skips_each_trap_and_reports_it(cli, tmp_path, astronaut):
    from PIL import Image

    photo = tmp_path / "face.jpg"
    Image.fromarray(astronaut).save(photo)
    root = hostile_pool(tmp_path / "pool", photo)
    scenario = demo_scenario(tmp_path, sources=[{"kind": "utkface", "path": str(root)}], n_samples=2)
    result = cli(["generate", scenario, "--out", tmp_path / "out", "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    skipped = pd.read_parquet(tmp_path / "out" / "skipped.parquet")
    reasons = {Path(path).name: reason for path, reason in zip(skipped["path"], skipped["reason"])}
    assert reasons["50_0_1_20170101000004.png"].startswith("unreadable image: image too large: over 179 megapixels, the limit is 50")
    assert reasons["51_0_1_20170101000005.png"].startswith("unreadable image: image too large: 9000x9000 px is 81 megapixels, the limit is 50")
    assert reasons["self"].startswith("folder link loop") and reasons["loop_a"].startswith("looping link")
    assert report["pool"]["usable_faces"] == 2


# --- 11. nothing derived from data is written outside its folder ------------------------------------------------


@pytest.mark.parametrize("name", ["../../../tmp/escaped", "/abs/name", "a/b", "..", ".hidden", "with space", ""])
def test_scenario_names_that_are_not_plain_names_are_refused(name):
    """Issue 10.11: `name: ../../../tmp/escaped` named the output folder and every sample file."""
    from synthface.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="name"):
        parse_scenario({**BASE, "name": name}, check_paths=False)


def test_bundled_scenario_names_stay_valid():
    for name in BUNDLED:
        assert load_scenario(name)[0].name == name


def test_inside_refuses_dotdot_absolute_and_symlinks_out(tmp_path):
    from synthface.paths import UnsafePathError, inside

    root = tmp_path / "out"
    (root / "images").mkdir(parents=True)
    assert inside(root, "images/a.jpg") == root / "images" / "a.jpg"
    assert inside(root, "images/../b.jpg") == root / "images/../b.jpg"  # stays inside: allowed
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "link")
    for bad in ("../escaped.jpg", "images/../../escaped.jpg", "/etc/passwd", str(tmp_path / "x.jpg"), "link/x.jpg"):
        with pytest.raises(UnsafePathError):
            inside(root, bad)


def test_merge_does_not_trust_paths_in_shard_metadata(tmp_path):
    """A shard whose metadata lists ../ or absolute paths must not copy files from or to outside."""
    import json as jsonlib

    from synthface.dataset import read_metadata, write_metadata
    from synthface.generation.run import RUN_DIR, RUN_INFO, GenerateError, merge_shards
    from synthface.testing import make_tiny_dataset

    shard = make_tiny_dataset(tmp_path / "shard", n_per_split=1, image_size=32)
    (shard / RUN_DIR).mkdir()
    (shard / RUN_DIR / RUN_INFO).write_text(jsonlib.dumps({"scenario": "t", "plan": "p", "shard": [1, 1]}))
    (tmp_path / "secret.jpg").write_text("outside the shard")
    for hostile in ("../secret.jpg", str(tmp_path / "secret.jpg")):
        table = read_metadata(shard)
        table.loc[0, "file_name"] = hostile
        write_metadata(shard, table)
        with pytest.raises(GenerateError, match="outside the shard"):
            merge_shards([shard], tmp_path / "merged", overwrite=True)
        assert not (tmp_path / "merged" / "secret.jpg").exists()


def test_training_and_evaluation_refuse_metadata_pointing_outside_the_dataset(tmp_path):
    from synthface.dataset import DatasetError, read_metadata, read_split, write_metadata
    from synthface.testing import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data", n_per_split=2, image_size=32)
    table = read_metadata(root)
    table.loc[table["split"] == "test", "file_name"] = "../../etc/passwd"
    write_metadata(root, table)
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        read_split(root, "test")


def test_compare_report_folders_are_plain_names_inside_out():
    from synthface.paths import safe_component

    assert safe_component("../../../tmp/escaped") == "_.._.._tmp_escaped"
    assert safe_component("oam/best") == "oam_best" and safe_component("..") == "_"
