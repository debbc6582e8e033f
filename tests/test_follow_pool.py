"""`weights: pool` (demographics as the pool has them) and the `uniform` / list shorthands of mask.types,
wear_styles and confusers; the report measures strata against the targets the plan resolved."""

from __future__ import annotations

from collections import Counter

import pytest

from synthface.generation.plan import build_plan
from synthface.generation.pool import PoolReport
from synthface.generation.report import build_report
from synthface.maskfit import WEAR_STYLES, MaskLibrary
from synthface.scenario import ScenarioError, parse_scenario, scenario_to_yaml
from tests.test_plan import make_pool

# An uneven pool: 50 joint strata are possible, the faces fill some of them unevenly.
UNEVEN = (make_pool(7, [("0-17", "male", "white"), ("18-29", "female", "asian")])
          + make_pool(3, [("18-29", "male", "black"), ("60-120", "female", "white"), ("30-44", "female", "indian")])
          + make_pool(1, [("45-59", "male", "others"), ("0-17", "female", "black"), ("60-120", "male", "asian")]))
BINS = [[0, 17], [18, 29], [30, 44], [45, 59], [60, 120]]


def pool_scenario(**mask) -> dict:
    return {"name": "t", "n_samples": len(UNEVEN), "sources": [{"kind": "demo"}], "balance": {"max_reuse": 1},
            "age": {"bins": BINS, "weights": "pool"}, "gender": {"weights": "pool"},
            "race": {"weights": "pool"}, "mask": {"probability": 0.5, **mask}}


def test_pool_weights_use_every_face_once_with_its_own_labels_and_the_report_agrees():
    scenario = parse_scenario(pool_scenario(probability=1.0), check_paths=False)
    plan = build_plan(scenario, UNEVEN)
    assert len(plan.samples) == len(UNEVEN)
    used = Counter(spec.face for spec in plan.samples)
    assert set(used) == set(range(len(UNEVEN))) and set(used.values()) == {1}
    assert all((s.age_bin, s.gender, s.race) == UNEVEN[s.face].cell for s in plan.samples)

    report = build_report(scenario, plan, PoolReport(n_inputs=len(UNEVEN)), None, [])
    # Every marginal is met exactly, so no joint stratum may be called short.
    for attribute in ("age_bin", "gender", "race"):
        assert all(row["count"] == pytest.approx(row["target_count"]) for row in report["attributes"][attribute].values())
    assert report["shortfall"] == []
    assert report["target_kinds"] == {"age_bin": "pool", "gender": "pool", "race": "pool"}
    assert report["joint_targets"]["0-17|male|white"] == pytest.approx(7 / len(UNEVEN))
    assert "0-17|male|asian" not in report["joint_targets"]  # no such face: no target
    assert report["targets"]["race"]["white"] == pytest.approx(10 / len(UNEVEN))
    from synthface.generation.report import render_markdown

    text = render_markdown(report)
    assert "age_bin pool, gender pool, race pool; joint strata are measured against the pool's own joint mix" in text
    assert "Every joint stratum meets its target" in text


def test_product_of_pool_marginals_would_have_called_strata_short():
    """The old reading of 'source' (product of marginals) misses the joint mix: the reason for joint targets."""
    scenario = parse_scenario(pool_scenario(probability=1.0), check_paths=False)
    plan = build_plan(scenario, UNEVEN)
    report = build_report(scenario, plan, PoolReport(n_inputs=len(UNEVEN)), None, [])
    report["joint_targets"] = None  # fall back to the product of the marginals
    from synthface.generation.report import finish_report

    assert finish_report(report, None, [])["shortfall"]


def test_source_is_an_alias_of_pool():
    data = pool_scenario()
    data["age"]["weights"] = data["gender"]["weights"] = data["race"]["weights"] = "source"
    plan = build_plan(parse_scenario(data, check_paths=False), UNEVEN)
    assert set(Counter(spec.face for spec in plan.samples).values()) == {1}


def test_pool_on_one_attribute_follows_its_marginal_only():
    data = pool_scenario()
    data["age"]["weights"] = "uniform"
    data["n_samples"] = 100
    data["balance"]["max_reuse"] = 100
    scenario = parse_scenario(data, check_paths=False)
    plan = build_plan(scenario, UNEVEN)
    report = build_report(scenario, plan, PoolReport(n_inputs=len(UNEVEN)), None, [])
    assert report["target_kinds"]["age_bin"] == "uniform"
    assert report["targets"]["gender"]["male"] == pytest.approx(12 / len(UNEVEN))
    assert report["joint_targets"]["0-17|male|white"] == pytest.approx(0.2 * 12 / 26 * 10 / 26)


def test_uniform_and_lists_for_types_wear_styles_and_confusers():
    library = MaskLibrary.load()
    masks = sorted(n for n in library.names() if library.get(n).is_mask)
    confusers = sorted(n for n in library.names() if not library.get(n).is_mask)
    scenario = parse_scenario(pool_scenario(types="uniform", wear_styles="uniform", confusers="uniform"), check_paths=False)
    assert scenario.mask.types == {name: pytest.approx(1 / len(masks)) for name in masks}
    assert scenario.mask.wear_styles == {name: pytest.approx(1 / len(WEAR_STYLES)) for name in WEAR_STYLES}
    assert scenario.mask.confusers == {name: pytest.approx(1 / len(confusers)) for name in confusers}
    # The resolved scenario holds the probabilities, so it reloads to the same thing.
    import yaml

    again = parse_scenario(yaml.safe_load(scenario_to_yaml(scenario)), check_paths=False)
    assert again.mask == scenario.mask

    listed = parse_scenario(pool_scenario(types=["surgical", "n95", "cloth"], wear_styles=["proper", "chin"],
                                          confusers=[confusers[0]]), check_paths=False)
    assert listed.mask.types == {"surgical": pytest.approx(1 / 3), "n95": pytest.approx(1 / 3), "cloth": pytest.approx(1 / 3)}
    assert listed.mask.wear_styles == {"proper": 0.5, "chin": 0.5}
    assert listed.mask.confusers == {confusers[0]: 1.0}


def test_uniform_types_take_the_run_library_with_user_masks(tmp_path):
    names = {"surgical", "my_mask"}
    scenario = parse_scenario(pool_scenario(types="uniform"), check_paths=False, mask_names=names, confuser_names=set())
    assert scenario.mask.types == {"my_mask": 0.5, "surgical": 0.5}


@pytest.mark.parametrize("mask, message", [
    ({"types": ["surgical", "surgical"]}, "names repeat"),
    ({"types": []}, "list of names is empty"),
    ({"wear_styles": ["proper", "sideways"]}, "unknown wear style"),
    ({"types": ["surgical", "nope"]}, "unknown mask type"),
])
def test_bad_shorthands_are_clear_errors(mask, message):
    with pytest.raises(ScenarioError, match=message):
        library = MaskLibrary.load()
        parse_scenario(pool_scenario(**mask), check_paths=False,
                       mask_names={n for n in library.names() if library.get(n).is_mask},
                       confuser_names={n for n in library.names() if not library.get(n).is_mask})
