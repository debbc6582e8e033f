"""The plan: quotas meet targets when the pool can, report shortfall when it cannot,
one split per source face, max_reuse respected, deterministic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from synthface.generation.plan import PoolFace, build_plan, largest_remainder, shard, water_fill
from synthface.generation.sources.base import FaceRecord
from synthface.scenario import parse_scenario


def make_pool(per_cell: int, cells: list[tuple[str, str, str]]) -> list[PoolFace]:
    faces = []
    for age_bin, gender, race in cells:
        for i in range(per_cell):
            record = FaceRecord(f"table:{age_bin}-{gender}-{race}-{i}.jpg", Path(f"/x/{age_bin}-{gender}-{race}-{i}.jpg"), "table",
                                float(age_bin.split("-")[0]), None, gender, race, "utkface5")
            faces.append(PoolFace(record, age_bin, gender, race))
    return faces


SCENARIO = {
    "name": "t",
    "n_samples": 400,
    "sources": [{"kind": "demo"}],
    "age": {"bins": [[0, 29], [30, 120]], "weights": [0.25, 0.75]},
    "gender": {"weights": "uniform"},
    "race": {"taxonomy": "utkface5", "weights": {"white": 0.5, "black": 0.5, "asian": 0, "indian": 0, "others": 0}},
    "mask": {"probability": 0.5, "types": {"surgical": 0.5, "n95": 0.5}, "wear_styles": {"proper": 0.8, "chin": 0.2}},
    "balance": {"max_reuse": 3},
}
ALL_CELLS = [(a, g, r) for a in ("0-29", "30-120") for g in ("male", "female") for r in ("white", "black", "asian")]


def test_largest_remainder_sums_and_respects_capacity():
    assert largest_remainder(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder(10, {"a": 0.5, "b": 0.5}, {"a": 2, "b": 100}) == {"a": 2, "b": 8}


def test_water_fill_moves_what_a_full_cell_cannot_take():
    counts = water_fill(100, {"a": 0.5, "b": 0.25, "c": 0.25}, {"a": 10, "b": 1000, "c": 1000})
    assert counts == {"a": 10, "b": 45, "c": 45}
    # Zero-weight cells are used only when positive-weight cells are full.
    assert water_fill(10, {"a": 1.0, "z": 0.0}, {"a": 4, "z": 100}) == {"a": 4, "z": 6}


def test_quotas_meet_targets_on_a_pool_that_can():
    scenario = parse_scenario(SCENARIO, check_paths=False)
    plan = build_plan(scenario, make_pool(60, ALL_CELLS))
    assert len(plan.samples) == 400
    n = Counter(s.age_bin for s in plan.samples)
    assert n == {"0-29": 100, "30-120": 300}
    assert Counter(s.gender for s in plan.samples) == {"male": 200, "female": 200}
    assert Counter(s.race for s in plan.samples) == {"white": 200, "black": 200}
    assert Counter(s.mask for s in plan.samples) == {0: 200, 1: 200}
    masked = [s for s in plan.samples if s.mask]
    assert Counter(s.mask_type for s in masked) == {"surgical": 100, "n95": 100}
    assert Counter(s.wear_style for s in masked) == {"proper": 160, "chin": 40}
    assert all(s.mask_type == "none" and s.wear_style == "none" for s in plan.samples if not s.mask)
    assert not plan.notes


def test_shortfall_still_yields_n_and_is_reported():
    scenario = parse_scenario(SCENARIO, check_paths=False)
    # No black faces at all, and few young ones: targets cannot be met.
    cells = [c for c in ALL_CELLS if c[2] != "black"]
    pool = make_pool(60, [c for c in cells if c[0] == "30-120"]) + make_pool(2, [c for c in cells if c[0] == "0-29"])
    plan = build_plan(scenario, pool)
    assert len(plan.samples) == 400
    assert Counter(s.race for s in plan.samples)["black"] == 0
    young_white = sum(s.age_bin == "0-29" and s.race == "white" for s in plan.samples)
    assert young_white == 2 * 2 * 3  # every young white face used max_reuse times, no more
    # White cells are full (400 > capacity), so the rest goes to the zero-target asian cells.
    assert Counter(s.race for s in plan.samples)["asian"] == 400 - 2 * (60 * 3) - young_white

    from synthface.generation.pool import PoolReport
    from synthface.generation.report import build_report

    report = build_report(scenario, plan, PoolReport(n_inputs=len(pool)), None, [])
    short = {row["stratum"] for row in report["shortfall"]}
    assert "0-29|male|black|mask=1" in short and "0-29|male|white|mask=0" in short
    assert any(line.startswith("race=black") for line in report["unmet_targets"])


def test_pool_too_small_for_n_makes_what_it_can_and_says_so():
    scenario = parse_scenario(SCENARIO, check_paths=False)
    plan = build_plan(scenario, make_pool(1, ALL_CELLS[:2]))
    assert len(plan.samples) == 2 * 3
    assert any("only 6 of the 400" in note for note in plan.notes)


def test_no_source_face_in_two_splits_and_reuse_capped():
    scenario = parse_scenario(SCENARIO, check_paths=False)
    plan = build_plan(scenario, make_pool(10, ALL_CELLS))
    splits_of_face = {}
    for spec in plan.samples:
        face = plan.faces[spec.face].record.source_id
        splits_of_face.setdefault(face, set()).add(spec.split)
    assert all(len(splits) == 1 for splits in splits_of_face.values())
    assert max(Counter(plan.faces[s.face].record.source_id for s in plan.samples).values()) <= 3
    split_counts = Counter(s.split for s in plan.samples)
    assert split_counts["train"] > split_counts["val"] > 0 and split_counts["test"] > 0


def test_plan_is_deterministic_and_seed_dependent():
    scenario = parse_scenario(SCENARIO, check_paths=False)
    pool = make_pool(20, ALL_CELLS)
    assert build_plan(scenario, pool).fingerprint() == build_plan(scenario, pool).fingerprint()
    assert build_plan(scenario, pool, seed=1).fingerprint() != build_plan(scenario, pool).fingerprint()


def test_shards_partition_the_plan():
    scenario = parse_scenario(SCENARIO, check_paths=False)
    samples = build_plan(scenario, make_pool(20, ALL_CELLS)).samples
    parts = [shard(samples, i, 3) for i in (1, 2, 3)]
    assert [s.index for part in parts for s in part] == list(range(len(samples)))
    with pytest.raises(ValueError):
        shard(samples, 4, 3)


def test_wear_styles_are_paired_only_with_types_that_support_them():
    data = {**SCENARIO, "mask": {"probability": 1.0, "types": {"surgical": 0.5, "n95": 0.5},
                                 "wear_styles": {"proper": 0.5, "strap_loose": 0.5}}}
    scenario = parse_scenario(data, check_paths=False)
    support = {"surgical": ["proper", "chin"], "n95": ["proper", "strap_loose"]}
    plan = build_plan(scenario, make_pool(60, ALL_CELLS), wear_styles_of=support)
    pairs = Counter((s.mask_type, s.wear_style) for s in plan.samples)
    assert pairs[("surgical", "strap_loose")] == 0
    # Swaps keep the quotas whenever some type can take the style.
    assert pairs[("n95", "strap_loose")] == 200 and pairs[("surgical", "proper")] == 200
