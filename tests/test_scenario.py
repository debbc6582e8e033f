"""Scenario validation: every bundled scenario loads; each kind of mistake gets one clear error
naming the file, the key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from synthface.paths import bundled_dir
from synthface.scenario import ScenarioError, load_scenario, resolve_scenario_path

BUNDLED = sorted(p.stem for p in bundled_dir("scenarios").glob("*.yaml"))


def test_the_required_scenarios_ship():
    assert {"all_masked", "no_mask", "mixed_50", "senior_mixed", "young_masked", "balanced_race"} <= set(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenarios_validate_by_name(name, library):
    scenario, path = load_scenario(name, mask_library=library)
    assert scenario.name == name and path.name == f"{name}.yaml"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"name": "t", "sources": [{"kind": "demo"}]}


@pytest.mark.parametrize(
    "patch, key, expected",
    [
        ({"colour": 1}, "colour", "Extra inputs are not permitted"),
        ({"mask": {"probabilty": 0.5}}, "mask.probabilty", "Extra inputs are not permitted"),
        ({"gender": {"weights": {"male": -0.5, "female": 1.5}}}, "gender.weights", ">= 0"),
        ({"gender": {"weights": {"male": 0.5, "female": 0.6}}}, "gender.weights", "sum to 1"),
        ({"race": {"weights": {"white": 1.0, "green": 0.0}}}, "race", "unknown race label"),
        ({"age": {"bins": [[0, 30], [30, 60]], "weights": [0.5, 0.5]}}, "age", "overlap"),
        ({"age": {"bins": [[0, 30]], "weights": [0.5, 0.5]}}, "age", "2 weights for 1 bins"),
        ({"mask": {"types": {"surgical": 0.5, "spacesuit": 0.5}}}, "mask.types.spacesuit", "unknown mask type"),
        ({"mask": {"wear_styles": {"upside_down": 1.0}}}, "mask.wear_styles", "unknown wear style"),
        ({"sources": [{"kind": "utkface", "path": "/nonexistent/faces"}]}, "sources.0.path", "does not exist"),
        ({"splits": {"train": 0.9, "val": 0.2, "test": 0.1}}, "splits", "sum to 1"),
        ({"n_samples": 0}, "n_samples", "greater than or equal to 1"),
    ],
)
def test_invalid_scenarios_name_file_key_and_expectation(tmp_path, library, patch, key, expected):
    path = write(tmp_path, {**BASE, **patch})
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, mask_library=library)
    message = str(caught.value)
    assert str(path) in message
    assert any(loc.startswith(key) for loc, _ in caught.value.problems), caught.value.problems
    assert expected in message


def test_not_a_mapping_and_bad_yaml(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(path)


def test_unknown_scenario_name_lists_the_bundled_ones():
    with pytest.raises(FileNotFoundError, match="all_masked"):
        resolve_scenario_path("no_such_scenario")


def test_overrides_win_and_defaults_fill_in(library):
    scenario, _ = load_scenario("mixed_50", {"n_samples": 7, "seed": 3}, mask_library=library)
    assert (scenario.n_samples, scenario.seed) == (7, 3)
    assert scenario.splits.shares() == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert scenario.age.bin_of(29.9) == "18-29" and scenario.age.bin_of(200) is None


def test_every_scenario_key_is_documented_and_the_reference_is_current():
    from synthface.scenario import Scenario
    from synthface.schema_docs import update_doc

    doc = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"
    assert doc.read_text() == update_doc(doc, Scenario), "run `python -m synthface.schema_docs`"
    for key in ("mask.appearance.palettes", "lighting.preset", "balance.on_shortfall", "sources[].kind", "pair_unmasked"):
        assert f"| `{key}` |" in doc.read_text()
