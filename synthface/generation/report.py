"""The generation report: targets vs achieved per attribute and per joint stratum, the
shortfall, imbalance metrics before (pool) and after (dataset), skipped inputs, fit failures.

Written as report.json (for programs) and report.md (for people). Metric formulas are in
docs/balance-metrics.md.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd

from synthface.dataset import SKIPPED_PARQUET, TWIN_SUFFIX, atomic_write_bytes
from synthface.generation.balance import imbalance_metrics
from synthface.generation.plan import ATTRIBUTES, SPLITS, Plan
from synthface.generation.pool import PoolReport
from synthface.markdown import md_row
from synthface.scenario import Scenario, follows_pool

HEADLINE_METRICS = ("max_ratio", "min_ratio", "ratio_range", "coefficient_of_variation", "normalised_entropy", "gini_impurity")
SKIPPED_EXAMPLES = 10  # skipped inputs shown in the report; all of them are in skipped.parquet
SHORTFALL_TOLERANCE = 1.0  # a stratum is short when it has at least one sample fewer than its (fractional) target


def stratum_key(age_bin: str, gender: str, race: str, mask: object) -> str:
    return f"{age_bin}|{gender}|{race}|mask={mask}"


def target_kinds(scenario: Scenario) -> dict[str, str]:
    """How each demographic target was given: 'pool', 'uniform' or 'explicit'."""
    def kind(weights) -> str:
        return "pool" if follows_pool(weights) else weights if isinstance(weights, str) else "explicit"

    return {"age_bin": kind(scenario.age.target()), "gender": kind(scenario.gender.weights), "race": kind(scenario.race.weights)}


def build_report(scenario: Scenario, plan: Plan, pool: PoolReport, table: pd.DataFrame | None, failures: list[dict],
                 shard: tuple[int, int] | None = None) -> dict:
    """The whole report; without a table (dry run) the achieved columns show the plan."""
    planned = pd.DataFrame(
        [dict(age_bin=s.age_bin, gender=s.gender, race=s.race, mask=str(s.mask), mask_type=s.mask_type, wear_style=s.wear_style,
              split=s.split) for s in plan.samples]
    )
    pool_faces = pd.DataFrame([dict(age_bin=f.age_bin, gender=f.gender, race=f.race) for f in plan.faces])
    targets = dict(plan.targets)
    # Mask types and wear styles are shares among masked samples: no masked sample, no target for them.
    masked = plan.targets["mask"].get("1", 0) > 0
    masked_targets = {"mask_type": dict(scenario.mask.types), "wear_style": dict(scenario.mask.wear_styles)} if masked else {}
    report = {
        "scenario": scenario.name,
        "seed": plan.seed,
        "shard": list(shard) if shard else None,
        "requested": plan.requested,
        "planned": len(plan.samples),
        "pool": {
            "sources": [spec.model_dump(mode="json") for spec in scenario.sources],
            "inputs": pool.n_inputs,
            "faces_detected": pool.n_detected,
            "usable_faces": len(plan.faces),
            "images_with_several_faces": pool.n_multi_face,
            # Counts and a few examples only: a pool of a million files can skip a million, and the
            # whole list (path, source, reason) is a table beside the report.
            "skipped": len(pool.skipped),
            "skipped_by_reason": pool.reasons(),
            "skipped_examples": [{"path": s.path, "source": s.source, "reason": s.reason} for s in pool.skipped[:SKIPPED_EXAMPLES]],
            "skipped_table": SKIPPED_PARQUET,
            "identical_photos": list(pool.identical_photos),
        },
        "targets": targets | masked_targets,
        # The resolved targets: how each was given, and the joint (age bin, gender, race) shares the strata are
        # measured against (the pool's own joint mix when all three follow the pool, else the marginals' product).
        "target_kinds": target_kinds(scenario),
        "joint_targets": {"|".join(cell): share for cell, share in plan.cell_targets.items() if share > 0}
        if plan.cell_targets else None,
        "planned_counts": {
            attribute: planned[attribute].value_counts().to_dict() if not planned.empty else {}
            for attribute in (*ATTRIBUTES, "mask_type", "wear_style", "split")
        },
        "planned_strata": Counter(stratum_key(*row) for row in planned[list(ATTRIBUTES)].itertuples(index=False)) if not planned.empty else {},
        "pool_counts": {a: pool_faces[a].value_counts().to_dict() if not pool_faces.empty else {} for a in ("age_bin", "gender", "race")},
        "notes": list(plan.notes),
        "uses_demo_pool": any(spec.kind == "demo" for spec in scenario.sources),
    }
    return finish_report(report, table, failures)


# The keys finish_report adds. A merged report starts from a shard's whole report: dropping these first
# adds them back in the order of an unsharded run (tests/test_tidy.py checks the two are identical).
ACHIEVED_KEYS = ("written", "split_counts", "attributes", "strata", "shortfall", "imbalance", "fit_failures", "unmet_targets")


def finish_report(report: dict, table: pd.DataFrame | None, failures: list[dict]) -> dict:
    """Add the achieved side (from the written table, or from the plan for a dry run)."""
    report = {key: value for key, value in report.items() if key not in ACHIEVED_KEYS}
    targets, requested = report["targets"], report["requested"]
    if table is not None:
        primary = table[~table["sample_id"].str.endswith(TWIN_SUFFIX)]
        if "mask_worn" in primary.columns:  # targets count worn masks; `mask` is the label (scenario mask.binary_label)
            primary = primary.assign(mask=primary["mask_worn"])
        achieved = {a: primary[a].astype(str).value_counts().to_dict() for a in (*ATTRIBUTES, "mask_type", "wear_style", "split")}
        strata = Counter(stratum_key(*row) for row in primary[list(ATTRIBUTES)].astype(str).itertuples(index=False))
        report["written"] = {"samples": int(len(primary)), "images": int(len(table)), "unmasked_twins": int(len(table) - len(primary))}
    else:
        achieved, strata = report["planned_counts"], report["planned_strata"]
    report["split_counts"] = {split: int(achieved["split"].get(split, 0)) for split in SPLITS}
    n_achieved = sum(achieved["mask"].values()) or 1
    n_masked = achieved["mask"].get("1", 0) or 1

    report["attributes"] = {}
    for attribute, shares in targets.items():
        denominator = n_masked if attribute in ("mask_type", "wear_style") else n_achieved
        base = requested * (targets["mask"].get("1", 0) if attribute in ("mask_type", "wear_style") else 1)
        report["attributes"][attribute] = {
            label: {"target": share, "target_count": share * base, "achieved": achieved[attribute].get(label, 0) / denominator,
                    "count": int(achieved[attribute].get(label, 0))}
            for label, share in shares.items()
        }
    rows = []
    joint = report.get("joint_targets")
    for age_bin, p_age in targets["age_bin"].items():
        for gender, p_gender in targets["gender"].items():
            for race, p_race in targets["race"].items():
                p_cell = joint.get(f"{age_bin}|{gender}|{race}", 0.0) if joint is not None else p_age * p_gender * p_race
                for mask, p_mask in targets["mask"].items():
                    key = stratum_key(age_bin, gender, race, mask)
                    target = requested * p_cell * p_mask
                    if target > 0 or strata.get(key):
                        rows.append({"stratum": key, "target": target, "achieved": int(strata.get(key, 0))})
    report["strata"] = rows
    report["shortfall"] = sorted(
        (r for r in rows if r["achieved"] <= r["target"] - SHORTFALL_TOLERANCE), key=lambda r: r["achieved"] - r["target"]
    )
    report["imbalance"] = {
        attribute: {
            "pool": imbalance_metrics({l: report["pool_counts"].get(attribute, {}).get(l, 0) for l in targets[attribute]})
            if attribute in report["pool_counts"] else None,
            "target": imbalance_metrics(targets[attribute]),
            "dataset": imbalance_metrics({l: achieved[attribute].get(l, 0) for l in targets[attribute]}),
        }
        for attribute in ATTRIBUTES
    }
    report["fit_failures"] = {"count": len(failures), "items": failures}
    report["unmet_targets"] = unmet_targets(report)
    return report


def unmet_targets(report: dict) -> list[str]:
    """Plain sentences for every label whose achieved share misses its target by over 5 points."""
    lines = []
    for attribute, labels in report["attributes"].items():
        for label, row in labels.items():
            if abs(row["achieved"] - row["target"]) > 0.05:
                lines.append(f"{attribute}={label}: target {row['target']:.0%}, achieved {row['achieved']:.0%}")
    return lines


def merge_reports(reports: list[dict], table: pd.DataFrame) -> dict:
    """One report for merged shards: the plan side is shared; the achieved side is recomputed."""
    base = dict(reports[0], shard=None)
    failures = [item for report in reports for item in report["fit_failures"]["items"]]
    return finish_report(base, table, failures)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_skipped_table(out: Path, pool: PoolReport) -> None:
    """skipped.parquet: every skipped input of the pool, one row each (path, source, reason)."""
    data = io.BytesIO()
    pool.skipped_table().to_parquet(data, index=False)
    atomic_write_bytes(out / SKIPPED_PARQUET, data.getvalue())


def write_report(out: Path, report: dict) -> None:
    atomic_write_bytes(out / "report.json", json.dumps(_json_safe(report), indent=1).encode())
    atomic_write_bytes(out / "report.md", render_markdown(report).encode())


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.3f}"


def render_markdown(report: dict, max_rows: int = 40) -> str:
    """report.md: the same content as report.json, laid out for reading."""
    pool = report["pool"]
    written = report.get("written")
    lines = [f"# Generation report: {report['scenario']}", ""]
    lines.append(f"- seed {report['seed']}; requested {report['requested']} samples; planned {report['planned']}"
                 + (f"; written {written['samples']} samples ({written['images']} images incl. {written['unmasked_twins']} unmasked twins)" if written else " (dry run: nothing written)")
                 + (f"; shard {report['shard'][0]}/{report['shard'][1]}" if report.get("shard") else ""))
    lines.append(f"- pool: {pool['inputs']} inputs, {pool['faces_detected']} faces detected, {pool['usable_faces']} usable, "
                 f"{pool['skipped']} skipped, {pool['images_with_several_faces']} images with several faces (largest used)")
    lines.append(f"- fit failures: {report['fit_failures']['count']} (each replaced by another face of the same stratum where one exists)")
    kinds = report.get("target_kinds")
    if kinds:
        joint = ("the pool's own joint mix" if set(kinds.values()) == {"pool"} else "the product of these targets")
        lines.append("- targets: " + ", ".join(f"{attribute} {kind}" for attribute, kind in kinds.items())
                     + f"; joint strata are measured against {joint} (`joint_targets` in report.json)")
    lines.append("")
    if report.get("uses_demo_pool") or report["unmet_targets"] or report["notes"]:
        lines.append("## Targets this pool cannot meet")
        lines.append("")
        if report.get("uses_demo_pool"):
            lines.append(f"This run uses the bundled **demo pool** ({pool['usable_faces']} usable faces, reused without limit). "
                         "It exists to try synthface offline and cannot represent the scenario's demographic targets; "
                         "use `--source utkface:PATH` (or fairface/table) for a real dataset.")
            lines.append("")
        lines += [f"- {note}" for note in report["notes"]] + [f"- {line}" for line in report["unmet_targets"]]
        lines.append("")
    lines.append("## Target vs achieved per attribute")
    for attribute, labels in report["attributes"].items():
        lines += ["", f"### {attribute}", "", "| label | target | achieved | count |", "|---|---:|---:|---:|"]
        lines += [md_row([label, f"{row['target']:.1%}", f"{row['achieved']:.1%}", row["count"]]) for label, row in labels.items()]
    lines += ["", "## Imbalance metrics (before = usable pool faces, after = dataset)", "",
              "| attribute | metric | pool | target | dataset |", "|---|---|---:|---:|---:|"]
    for attribute, sides in report["imbalance"].items():
        for metric in HEADLINE_METRICS:
            pool_value = sides["pool"][metric] if sides["pool"] else None
            lines.append(md_row([attribute, metric, _fmt(pool_value), _fmt(sides["target"][metric]), _fmt(sides["dataset"][metric])]))
    lines += ["", f"## Shortfall: joint strata below target ({len(report['shortfall'])} of {len(report['strata'])})", ""]
    if report["shortfall"]:
        lines += ["| stratum (age bin, gender, race, mask) | target | achieved |", "|---|---:|---:|"]
        lines += [md_row([r["stratum"], f"{r['target']:.1f}", r["achieved"]]) for r in report["shortfall"][:max_rows]]
        if len(report["shortfall"]) > max_rows:
            lines.append(f"\n... {len(report['shortfall']) - max_rows} more in report.json")
    else:
        lines.append("Every joint stratum meets its target (within one sample).")
    identical = pool.get("identical_photos", [])
    conflicts = [group for group in identical if group["conflict"]]
    if identical:
        lines += ["", f"## Identical photos ({len(identical)} groups, {len(conflicts)} with different labels)", "",
                  "Byte-identical image files used as separate faces. With different labels they are label noise; "
                  "either way the copies count as different faces for balance and splits. Check the pool.", "",
                  "| files | labels | labels differ |", "|---|---|---|"]
        lines += [md_row([", ".join(g["files"]), "; ".join(g["labels"]), "yes" if g["conflict"] else "no"]) for g in identical[:max_rows]]
        if len(identical) > max_rows:
            lines.append(f"\n... {len(identical) - max_rows} more in report.json")
    lines += ["", f"## Skipped inputs ({pool['skipped']})", ""]
    if pool["skipped"]:
        lines += ["| reason | count |", "|---|---:|"] + [md_row([reason, n]) for reason, n in pool["skipped_by_reason"].items()]
        examples = pool["skipped_examples"]
        where = f"`{pool['skipped_table']}`" + (" (a dry run writes nothing)" if written is None else "")
        lines += ["", f"The first {len(examples)} of {pool['skipped']}; every one (path, source, reason) is in {where}.", "",
                  "| input | reason |", "|---|---|"] + [md_row([s["path"], s["reason"]]) for s in examples]
    else:
        lines.append("None.")
    if report["fit_failures"]["items"]:
        lines += ["", "## Fit failures", "", "| sample | source face | reason |", "|---|---|---|"]
        lines += [md_row([f["sample_id"], f["source_id"], f["reason"]]) for f in report["fit_failures"]["items"][:max_rows]]
    return "\n".join(lines) + "\n"
