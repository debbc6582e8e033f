"""Hostile and mistaken inputs: every one gives a clear error (or a reported skip), never a hang, a crash or a wrong dataset.

Issue 10, items 7-10 and 14-16: bounded counts, strict YAML, limited parsing, user errors vs bugs,
honest reports, errors that name the file, quiet native logs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from synthface.errors import UserError
from synthface.maskfit.definitions import MaskDefinitionError, load_definition
from synthface.scenario import MAX_SAMPLES, ScenarioError, load_scenario
from synthface.training.recipe import RecipeError, load_recipe, parse_set_option
from synthface.yamlio import MAX_YAML_BYTES, YamlError, load_yaml_file, load_yaml_text

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- item 8: duplicate keys and non-integer counts ------------------------------------------------


def test_duplicate_scenario_key_is_rejected_with_both_lines(tmp_path):
    path = write(tmp_path / "dup.yaml", "name: dup\nn_samples: 8\nseed: 1\nn_samples: 20000\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message and "duplicate key 'n_samples'" in message
    assert "line 4" in message and "line 2" in message


def test_duplicate_keys_rejected_by_every_loader(tmp_path):
    nested = "name: x\nmask:\n  types: {surgical: 0.5, surgical: 0.5}\n"
    with pytest.raises(ScenarioError, match="duplicate key 'surgical'"):
        load_scenario(write(tmp_path / "nested.yaml", nested))
    recipe = write(tmp_path / "recipe.yaml", "optim:\n  lr: 0.1\n  lr: 0.001\n")
    with pytest.raises(RecipeError, match="duplicate key 'lr'"):
        load_recipe(recipe)
    mask = (REPO / "masks" / "surgical.yaml").read_text() + "\ndescription: twice\n"
    with pytest.raises(MaskDefinitionError, match="duplicate key 'description'"):
        load_definition(write(tmp_path / "surgical.yaml", mask))
    with pytest.raises(YamlError, match="duplicate key"):
        load_yaml_text("{a: 1, a: 2}", "--set")


def test_merge_keys_may_still_override():
    assert load_yaml_text("base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3}")["other"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("value", ["yes", "true", "1.5", "1.0e+15", "'200'", "200.0"])
def test_counts_must_be_whole_numbers(tmp_path, value):
    path = write(tmp_path / "s.yaml", f"name: x\nn_samples: {value}\n")
    with pytest.raises(ScenarioError, match="n_samples: Input should be a valid integer"):
        load_scenario(path)


@pytest.mark.parametrize("text, key", [
    ("age: {bins: [[0, 17.5], [18, 120]]}", "age.bins.0.1"),
    ("age: {range: [yes, 30]}", "age.range.0"),
    ("preview_samples: 2.0", "preview_samples"),
    ("balance: {max_reuse: on}", "balance.max_reuse"),
    ("faces: {min_face_px: 32.5}", "faces.min_face_px"),
    ("lighting: {jpeg_quality: [80.5, 90]}", "lighting.jpeg_quality.0"),
    ("seed: 1.5", "seed"),
])
def test_every_scenario_count_is_a_strict_integer(tmp_path, text, key):
    with pytest.raises(ScenarioError, match=rf"{key}: Input should be a valid integer"):
        load_scenario(write(tmp_path / "s.yaml", f"name: x\n{text}\n"))


def test_yes_is_explained_as_a_yaml_boolean(tmp_path):
    with pytest.raises(ScenarioError, match="got True \\(YAML reads yes/no"):
        load_scenario(write(tmp_path / "s.yaml", "name: x\nn_samples: yes\n"))


def test_recipe_counts_are_strict_integers(tmp_path):
    with pytest.raises(RecipeError, match="optim.epochs: Input should be a valid integer"):
        load_recipe(write(tmp_path / "r.yaml", "optim: {epochs: yes}\n"))
    with pytest.raises(RecipeError, match="data.batch_size: Input should be a valid integer"):
        load_recipe(write(tmp_path / "r.yaml", "data: {batch_size: 32.5}\n"))


# --- item 7: bounded counts, plan size checked before allocating ------------------------------------


def test_n_samples_is_bounded(tmp_path):
    with pytest.raises(ScenarioError, match="n_samples: Input should be less than or equal to 1000000"):
        load_scenario(write(tmp_path / "s.yaml", f"name: x\nn_samples: {MAX_SAMPLES + 1}\n"))
    with pytest.raises(ScenarioError, match="balance.max_reuse: Input should be less than or equal to"):
        load_scenario(write(tmp_path / "s.yaml", "name: x\nbalance: {max_reuse: 100000000}\n"))
    with pytest.raises(RecipeError, match="optim.epochs: Input should be less than or equal to"):
        load_recipe(write(tmp_path / "r.yaml", "optim: {epochs: 1000000000000000}\n"))


def test_plan_size_is_checked_before_allocating(monkeypatch):
    from synthface.generation import plan as plan_module
    from synthface.generation.sources.base import FaceRecord
    from synthface.scenario import Scenario

    scenario = Scenario(name="big")
    record = FaceRecord(source_id="demo:a", path=Path("a.jpg"), source_dataset="demo", age=30.0, age_range=None, gender="male",
                        race="white", race_taxonomy="utkface5")
    faces = [plan_module.PoolFace(record, "30-44", "male", "white", reuse_unlimited=True)]
    with pytest.raises(plan_module.PlanError, match="expected 1 to 1,000,000"):
        plan_module.build_plan(scenario, faces, n_samples=10**15)
    monkeypatch.setattr(plan_module, "available_memory", lambda: 8 * 2**20)  # 8 MiB free
    started = time.perf_counter()
    with pytest.raises(plan_module.PlanError, match="needs about 10 MiB of memory and only 8 MiB is available"):
        plan_module.build_plan(scenario, faces, n_samples=5000)
    assert time.perf_counter() - started < 1


# --- item 9: size and depth limits, capped error lists ---------------------------------------------


def test_deep_nesting_is_an_error_not_a_recursion_error(tmp_path):
    depth = 20000
    path = write(tmp_path / "deep.yaml", "name: x\nmask: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ScenarioError, match="nested deeper than 32 levels"):
        load_scenario(path)
    with pytest.raises(YamlError, match="nested deeper"):
        load_yaml_text("a: " + "{b: " * 100 + "1" + "}" * 100)


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("name: x\nmask:\n  types:\n" + "".join(f"    t{i}: 0.0001\n" for i in range(MAX_YAML_BYTES // 12)))
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match="larger than 1024 KiB"):
        load_scenario(path)
    assert time.perf_counter() - started < 1


def test_error_list_is_capped(tmp_path):
    path = write(tmp_path / "many.yaml", "name: x\n" + "".join(f"unknown_{i}: 1\n" for i in range(500)))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 22  # header, 20 problems, the count of the rest
    assert lines[-1].strip() == "... and 480 more problems (fix these first)"
    assert len(caught.value.problems) == 500  # the full list stays available to code


# --- item 10: --set, Ctrl-C, user errors vs bugs ------------------------------------------------------


@pytest.mark.parametrize("value", ["loss.weighting=[", "name={a: 1, a: 2}", "seed=: :"])
def test_set_with_invalid_yaml_is_a_one_line_error(cli, value):
    with pytest.raises(RecipeError, match="--set"):
        parse_set_option(value)
    result = cli(["train", "oam_resnet50", "--data", "nowhere", "--set", value])
    assert result.exit_code == 2
    assert "error:" in result.output and "not valid YAML" in result.output and "Traceback" not in result.output


def test_ctrl_c_before_the_run_starts_exits_cleanly(cli, monkeypatch, tmp_path):
    from synthface.maskfit import MaskLibrary

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MaskLibrary, "load", interrupted)
    result = cli(["generate", "all_masked", "--out", tmp_path / "never"])
    assert result.exit_code == 130
    assert "interrupted" in result.output and "before anything was written" in result.output


def test_internal_errors_keep_their_traceback(cli, monkeypatch):
    import synthface.generation.run

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(synthface.generation.run, "run_generate", broken)
    with pytest.raises(ValueError, match="an internal bug"):  # not turned into "error: ..." and exit 2
        cli(["generate", "all_masked", "--dry-run"])


def test_user_errors_are_one_line_with_brackets_kept(cli, tmp_path):
    path = write(tmp_path / "overlap.yaml", "name: x\nage: {bins: [[0, 20], [18, 29]]}\n")
    result = cli(["generate", path, "--dry-run"])
    assert result.exit_code == 2
    assert "age bins [0, 20] and [18, 29] overlap" in result.output  # rich markup did not eat the brackets


def test_every_area_error_is_a_user_error():
    from synthface.dataset import DatasetError
    from synthface.generation.plan import PlanError
    from synthface.generation.run import GenerateError
    from synthface.generation.sources.base import SourceError
    from synthface.landmarks import LandmarkerError
    from synthface.training.checkpoint import CheckpointError

    for kind in (ScenarioError, RecipeError, MaskDefinitionError, DatasetError, GenerateError, LandmarkerError, SourceError,
                 CheckpointError, PlanError, YamlError):
        assert issubclass(kind, UserError), kind


# --- item 15: errors name the file and say what was expected -------------------------------------------


def test_binary_scenario_file_is_named(tmp_path):
    path = tmp_path / "photo.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ScenarioError, match=r"photo.yaml: invalid scenario\n  \(top level\): binary content .* expected a scenario YAML file"):
        load_scenario(path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(latin)


def test_folder_or_device_given_as_a_file(tmp_path):
    folder = tmp_path / "scenario.yaml"
    folder.mkdir()
    with pytest.raises(ScenarioError, match="is a folder; expected a scenario YAML file"):
        load_scenario(folder)
    with pytest.raises(RecipeError, match="is a folder; expected a training recipe"):
        load_recipe(folder)
    if Path("/dev/zero").exists():
        started = time.perf_counter()
        with pytest.raises(ScenarioError, match="(?s)/dev/zero: .*not a regular file"):
            load_scenario("/dev/zero")
        with pytest.raises(YamlError, match="not a regular file"):
            load_yaml_file("/dev/zero")
        assert time.perf_counter() - started < 1


def test_bad_source_option_is_not_blamed_on_the_bundled_scenario(cli, tmp_path):
    result = cli(["generate", "all_masked", "--source", f"utkface:{tmp_path / 'missing'}", "--dry-run"])
    assert result.exit_code == 2
    assert "all_masked.yaml" not in result.output
    assert "command line: invalid scenario" in result.output and "option --source #1" in result.output
    result = cli(["generate", "all_masked", "-n", "0", "--dry-run"])
    assert result.exit_code == 2 and "option -n/--n-samples" in result.output and "all_masked.yaml" not in result.output


# --- item 16: native log lines are hidden unless --verbose -----------------------------------------------

DETECT = (
    "from synthface.landmarks import LandmarkDetector\n"
    "from synthface.generation.sources.demo import demo_photo\n"
    "with LandmarkDetector() as detector:\n"
    "    print(len(detector.detect(demo_photo('astronaut'))))\n"
)


@pytest.mark.slow
def test_mediapipe_log_lines_hidden_by_default_and_shown_with_verbose(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path), "SYNTHFACE_CACHE": str(tmp_path)}
    quiet = subprocess.run([sys.executable, "-c", DETECT], env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "1"
    assert quiet.stderr.strip() == "", quiet.stderr
    loud = subprocess.run([sys.executable, "-c", DETECT], env={**env, "SYNTHFACE_VERBOSE": "1"},
                          capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr


def test_verbose_is_a_global_option(cli, monkeypatch):
    import os

    monkeypatch.delenv("SYNTHFACE_VERBOSE", raising=False)
    result = cli(["--verbose", "masks", "list"])
    assert result.exit_code == 0
    assert os.environ.get("SYNTHFACE_VERBOSE") == "1"
    monkeypatch.delenv("SYNTHFACE_VERBOSE")


def test_yaml_helper_is_the_only_yaml_reader():
    offenders = [str(path.relative_to(REPO)) for path in (REPO / "synthface").rglob("*.py")
                 if path.name != "yamlio.py" and ("yaml.safe_load" in path.read_text() or "yaml.load(" in path.read_text())]
    assert offenders == []
    assert yaml.safe_load("a: 1") == {"a": 1}  # the library itself is untouched


# --- item 12: dependency floors -------------------------------------------------------------------------


def test_dependency_floors_exclude_vulnerable_releases():
    import tomllib
    from packaging.requirements import Requirement
    from packaging.version import Version

    requirements = {Requirement(text).name: Requirement(text) for text in
                    tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    # torch < 2.6: torch.load(weights_only=True) runs code (CVE-2025-32434); pyarrow < 14.0.1: CVE-2023-47248.
    for name, vulnerable, first_fixed in (("torch", "2.5.1", "2.6.0"), ("pyarrow", "14.0.0", "14.0.1"),
                                          ("torchvision", "0.20.1", "0.21.0")):
        assert Version(vulnerable) not in requirements[name].specifier, name
        assert Version(first_fixed) in requirements[name].specifier, name


# --- item 14: honest reports ---------------------------------------------------------------------------


def _report_for(scenario_text: str, pool_report=None):
    from synthface.generation.plan import PoolFace, build_plan
    from synthface.generation.pool import PoolReport
    from synthface.generation.report import build_report, render_markdown
    from synthface.generation.sources.base import FaceRecord
    from synthface.scenario import parse_scenario

    scenario = parse_scenario(yaml.safe_load(scenario_text), check_paths=False)
    faces = []
    for i, (age_bin, age) in enumerate([("0-29", 20.0), ("30-120", 50.0)] * 6):
        for gender in ("male", "female"):
            record = FaceRecord(source_id=f"t:{i}{gender}", path=Path(f"{i}{gender}.jpg"), source_dataset="table", age=age,
                                age_range=None, gender=gender, race="white", race_taxonomy="utkface5")
            faces.append(PoolFace(record, age_bin, gender, "white"))
    plan = build_plan(scenario, faces)
    report = build_report(scenario, plan, pool_report or PoolReport(n_inputs=len(faces)), None, [])
    return report, render_markdown(report)


SIMPLE = ("name: t\nn_samples: 40\nage: {bins: [[0, 29], [30, 120]]}\nrace: {weights: {white: 1.0}}\n"
          "balance: {max_reuse: 10}\n")


def test_no_mask_report_claims_no_mask_type_targets():
    report, markdown = _report_for(SIMPLE + "mask: {probability: 0.0}\n")
    assert not [line for line in report["unmet_targets"] if line.startswith(("mask_type", "wear_style"))]
    assert "mask_type" not in report["attributes"] and "### mask_type" not in markdown


def test_markdown_cells_escape_pipes():
    from synthface.generation.pool import PoolReport
    from synthface.generation.sources.base import SkippedInput
    from synthface.markdown import md_cell

    assert md_cell("0-29|male|white|mask=1") == "0-29\\|male\\|white\\|mask=1"
    pool = PoolReport(n_inputs=1, skipped=[SkippedInput("odd|name.jpg", "bad label: x|y")])
    _, markdown = _report_for(SIMPLE.replace("n_samples: 40", "n_samples: 400"), pool)
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert "| odd\\|name.jpg | bad label: x\\|y |" in table_lines
    shortfall = [line for line in table_lines if "mask=" in line]
    assert shortfall and all(line.count(" | ") == 2 for line in shortfall)  # three cells, the stratum's | escaped


def _fairface(root: Path, astronaut, rows: str) -> Path:
    from PIL import Image

    (root / "train").mkdir(parents=True)
    for name in ("1.jpg", "2.jpg", "3.jpg"):
        Image.fromarray(astronaut).save(root / "train" / name)
    (root / "fairface_label_train.csv").write_text("file,age,gender,race,service_test\n" + rows)
    return root


def test_fairface_only_real_bins_and_bad_rows_skipped_with_their_line(tmp_path, astronaut):
    from synthface.generation.sources.base import SourceSpec, load_source

    rows = ('train/1.jpg,20-29,Male,White,True\n'
            'train/2.jpg,20-30,Male,White,True\n'           # line 3: not a FairFace bin
            '\n'                                              # line 4: blank
            'train/3.jpg,30-39,Female,"East\nAsian",x,extra\n'  # lines 5-6: one field too many, quoted newline
            'train/3.jpg,more than 70,Female,Indian,False\n')  # line 7
    root = _fairface(tmp_path, astronaut, rows)
    scan = load_source(SourceSpec(kind="fairface", path=root))
    assert sorted(r.source_id for r in scan.records) == ["fairface:train/1.jpg", "fairface:train/3.jpg"]
    label_file = root / "fairface_label_train.csv"
    skipped = {s.path: s.reason for s in scan.skipped}
    assert skipped[f"{label_file}:3"].startswith("bad label: age '20-30' is not a FairFace age bin")
    assert skipped[f"{label_file}:5"] == "bad row: 6 fields, the header has 5"
    assert len(skipped) == 2


def test_table_rows_are_named_by_their_file_line(tmp_path, astronaut):
    from PIL import Image

    from synthface.generation.sources.base import SourceSpec, load_source

    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    (tmp_path / "faces").mkdir()
    (tmp_path / "b.jpg").mkdir()
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    path = write(tmp_path / "t.csv", 'file,age,gender,race\n\na.jpg,30,m,0\nb.jpg,30,"f\n",0\ngone.jpg,3,f,1\n')
    scan = load_source(SourceSpec(kind="table", path=path))
    assert [r.source_id for r in scan.records] == ["table:a.jpg"]
    assert {s.path: s.reason for s in scan.skipped} == {
        f"{path}:4": f"not an image file: {tmp_path / 'b.jpg'} is a folder",
        f"{path}:6": f"broken link: {tmp_path / 'gone.jpg'} points to a missing file",
    }


def test_utkface_dangling_links_and_image_named_folders_are_reported(tmp_path, astronaut):
    from PIL import Image

    from synthface.generation.sources.base import SourceSpec, load_source

    Image.fromarray(astronaut).save(tmp_path / "30_1_0_20170101000001.jpg")
    (tmp_path / "31_1_0_20170101000002.jpg").symlink_to(tmp_path / "deleted.jpg")
    (tmp_path / "32_0_0_20170101000003.jpg").mkdir()
    scan = load_source(SourceSpec(kind="utkface", path=tmp_path))
    assert [r.source_id for r in scan.records] == ["utkface:30_1_0_20170101000001.jpg"]
    assert {Path(s.path).name: s.reason.split(":")[0] for s in scan.skipped} == {
        "31_1_0_20170101000002.jpg": "broken link", "32_0_0_20170101000003.jpg": "not an image file"}


def test_identical_photos_with_different_labels_are_flagged(tmp_path, astronaut, grace_hopper):
    from PIL import Image

    from synthface.generation.plan import PoolFace
    from synthface.generation.pool import PoolReport, find_identical
    from synthface.generation.sources.base import FaceRecord

    Image.fromarray(astronaut).save(tmp_path / "a.png")
    (tmp_path / "copy.png").write_bytes((tmp_path / "a.png").read_bytes())
    Image.fromarray(grace_hopper).save(tmp_path / "g.png")

    def face(name, age, gender):
        record = FaceRecord(source_id=f"t:{name}", path=tmp_path / name, source_dataset="table", age=age, age_range=None,
                            gender=gender, race="white", race_taxonomy="utkface5")
        return PoolFace(record, "30-120", gender, "white")

    groups = find_identical([face("a.png", 36, "female"), face("copy.png", 58, "male"), face("g.png", 77, "female")])
    assert len(groups) == 1 and groups[0]["conflict"]
    assert groups[0]["files"] == [str(tmp_path / "a.png"), str(tmp_path / "copy.png")]
    _, markdown = _report_for(SIMPLE, PoolReport(n_inputs=3, identical_photos=groups))
    assert "## Identical photos (1 groups, 1 with different labels)" in markdown
    assert "age 36, female, white; age 58, male, white | yes |" in markdown


def test_age_bins_given_as_a_mapping_say_what_is_expected(tmp_path):
    path = write(tmp_path / "s.yaml", "name: x\nage:\n  bins: {0-17: 0.5, 18-120: 0.5}\n")
    with pytest.raises(ScenarioError, match=r"age.bins: expected a list of \[low, high\] pairs .* got a mapping"):
        load_scenario(path)


def test_checkpoint_and_label_paths_that_are_folders_are_named_as_folders(tmp_path):
    from synthface.generation.sources.base import SourceError, SourceSpec, load_source
    from synthface.training.checkpoint import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match="is a folder; expected a checkpoint file"):
        load_checkpoint(tmp_path)
    (tmp_path / "labels.csv").mkdir()
    with pytest.raises(SourceError, match="labels: .*labels.csv: is a folder; expected FairFace's label CSV"):
        load_source(SourceSpec(kind="fairface", path=tmp_path, labels=tmp_path / "labels.csv"))


@pytest.mark.parametrize("args", [
    ["evaluate", "x.pt", "--data", "d", "--out", "o", "--bootstrap", "1000000000"],
    ["compare", "x.pt", "d", "--out", "o", "--batch-size", "100000000"],
    ["evaluate", "x.pt", "--data", "d", "--out", "o", "--grid-size", "1000000"],
    ["generate", "all_masked", "--workers", "100000"],
])
def test_command_line_counts_are_bounded(cli, args):
    result = cli(args)
    assert result.exit_code == 2 and "Invalid value" in result.output
