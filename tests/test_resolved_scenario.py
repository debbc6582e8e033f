"""The scenario.yaml written with a dataset is the resolved scenario: every value in force written out
(lighting included), so generating from that file alone reproduces the run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from synthface.dataset import read_metadata
from synthface.generation.lighting import DEFAULTS, PRESETS, LightingConfig, sample_lighting
from synthface.scenario import load_scenario, parse_scenario, scenario_to_yaml


def _nulls(node, path=""):
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _nulls(value, f"{path}.{key}")]
    return [path] if node is None else []


@pytest.mark.parametrize("name", ["mixed_50", "no_mask", "all_masked"])
def test_written_lighting_has_every_value_and_draws_the_same(name):
    scenario, _ = load_scenario(name)
    written = yaml.safe_load(scenario_to_yaml(scenario))
    assert not _nulls(written["lighting"])
    for preset in scenario.lighting.preset_weights():
        assert set(written["lighting"]["presets"][preset]) == set(DEFAULTS)
    again = parse_scenario(written, check_paths=False)
    rngs = lambda: [np.random.default_rng(i) for i in range(40)]  # noqa: E731
    assert [sample_lighting(again.lighting, r) for r in rngs()] == [sample_lighting(scenario.lighting, r) for r in rngs()]
    assert scenario_to_yaml(again) == scenario_to_yaml(scenario)  # a fixed point


def test_no_preset_writes_the_defaults_as_the_section_own_keys():
    written = yaml.safe_load(scenario_to_yaml(parse_scenario({"name": "t", "lighting": {"shadow": [0.1, 0.2]}}, check_paths=False)))
    lighting = written["lighting"]
    assert lighting["shadow"] == [0.1, 0.2] and lighting["intensity"] == list(DEFAULTS["intensity"])
    assert lighting["presets"] == {}


def test_presets_can_be_changed_or_defined():
    config = LightingConfig(preset={"studio": 1, "night": 1}, presets={"studio": {"shadow": (0.5, 0.6)},
                                                                       "night": {"intensity": (0.1, 0.2)}})
    assert config.resolved("studio")["shadow"] == (0.5, 0.6)
    assert config.resolved("studio")["intensity"] == PRESETS["studio"]["intensity"]
    assert config.resolved("night")["intensity"] == (0.1, 0.2) and config.resolved("night")["ambient"] == DEFAULTS["ambient"]
    with pytest.raises(ValueError, match="unknown preset"):
        LightingConfig(preset="moonlight")


@pytest.mark.slow
def test_generating_from_the_written_scenario_reproduces_the_dataset(cli, utk_folder, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "resolved", "seed": 3, "n_samples": 6, "image_size": 64, "preview_samples": 0,
        "sources": [{"kind": "utkface", "path": str(utk_folder)}],
        "age": {"bins": [[0, 29], [30, 59], [60, 120]]}, "mask": {"probability": 0.5, "types": "uniform"},
        "lighting": {"preset": {"studio": 1, "dim": 1, "harsh_side": 1}},
    }))
    first, second = tmp_path / "first", tmp_path / "second"
    assert cli(["generate", scenario, "--out", first, "--workers", "1", "--quiet"]).exit_code == 0
    result = cli(["generate", first / "scenario.yaml", "--out", second, "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(read_metadata(first), read_metadata(second))
    for name in read_metadata(first)["file_name"]:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "scenario.yaml").read_text() == (second / "scenario.yaml").read_text()
