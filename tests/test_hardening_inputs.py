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
    from synthface import plan as plan_module
    from synthface.scenario import Scenario
    from synthface.sources.base import FaceRecord

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
    import synthface.generate

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(synthface.generate, "run_generate", broken)
    with pytest.raises(ValueError, match="an internal bug"):  # not turned into "error: ..." and exit 2
        cli(["generate", "all_masked", "--dry-run"])


def test_user_errors_are_one_line_with_brackets_kept(cli, tmp_path):
    path = write(tmp_path / "overlap.yaml", "name: x\nage: {bins: [[0, 20], [18, 29]]}\n")
    result = cli(["generate", path, "--dry-run"])
    assert result.exit_code == 2
    assert "age bins [0, 20] and [18, 29] overlap" in result.output  # rich markup did not eat the brackets


def test_every_area_error_is_a_user_error():
    from synthface.dataset import DatasetError
    from synthface.generate import GenerateError
    from synthface.landmarks import LandmarkerError
    from synthface.plan import PlanError
    from synthface.sources.base import SourceError
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
    "from synthface.sources.demo import demo_photo\n"
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
