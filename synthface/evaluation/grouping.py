"""Metrics per group and the disparity across groups: fairness (gender, race, age bin) and
occlusion splits (mask / no mask, mask type, wear style, occluder, occluded fraction).

Disparity follows the usual definition of the face-attribute fairness studies: for each metric,
the best group's value minus the worst group's (max - min), over groups with at least
`min_group_size` samples, so one tiny group cannot dominate the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from synthface.evaluation.metrics import group_scalars, head_metrics, lower_is_better

FAIRNESS_COLUMNS = ("gender", "race", "age_bin")
# Derived column holding the occluded-fraction bin of each sample.
FRACTION_BIN_COLUMN = "occluded_fraction_bin"
OCCLUSION_COLUMNS = ("mask", "mask_type", "wear_style", "occluder", FRACTION_BIN_COLUMN)
# Edges of the occluded-fraction bins (share of the face area covered).
FRACTION_EDGES = (0.0, 0.2, 0.4, 0.6, 1.0)


def occluded_fraction_bins(fraction: pd.Series) -> pd.Series:
    """'none' for uncovered faces, else the bin of the covered share, e.g. '20-40%'."""
    values = fraction.astype(float)
    labels = [f"{int(low * 100)}-{int(high * 100)}%" for low, high in zip(FRACTION_EDGES[:-1], FRACTION_EDGES[1:])]
    binned = pd.cut(values, bins=list(FRACTION_EDGES), labels=labels, include_lowest=True, right=False)
    binned = binned.astype(object)
    binned[values >= FRACTION_EDGES[-1]] = labels[-1]
    binned[values <= 0] = "none"
    binned[values.isna()] = np.nan
    return binned


def with_group_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The predictions table plus derived grouping columns (occluded-fraction bin)."""
    table = table.copy()
    if "occluded_fraction" in table.columns and table["occluded_fraction"].notna().any():
        table[FRACTION_BIN_COLUMN] = occluded_fraction_bins(table["occluded_fraction"])
    return table


def metrics_by_group(
    table: pd.DataFrame,
    column: str,
    classes: dict[str, Sequence[str]],
    min_group_size: int = 1,
) -> dict:
    """{groups: {value: flat metrics}, disparity: {metric: {max_minus_min, best, worst}}, small_groups}.

    Groups are the distinct non-null values of `column`; the `mask` column is shown as
    'masked' / 'unmasked'.
    """
    groups: dict[str, dict[str, float]] = {}
    values = table[column]
    if column == "mask":
        values = values.map({0: "unmasked", 1: "masked"})
    for value, subset in table.groupby(values.astype(object), dropna=True, sort=True):
        groups[str(value)] = group_scalars(head_metrics(subset, classes))
    large = {name: flat for name, flat in groups.items() if flat["n"] >= min_group_size}
    return {
        "column": column,
        "groups": groups,
        "disparity": disparity(large),
        "small_groups": sorted(set(groups) - set(large)),
        "min_group_size": min_group_size,
    }


def disparity(groups: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Per metric: max - min across groups (finite values only), and which groups are best and worst."""
    result: dict[str, dict] = {}
    if not groups:
        return result
    metric_names = [name for name in next(iter(groups.values())) if name != "n"]
    for name in metric_names:
        finite = {group: flat[name] for group, flat in groups.items() if np.isfinite(flat[name])}
        if len(finite) < 2:
            result[name] = {"max_minus_min": float("nan"), "best": None, "worst": None}
            continue
        highest = max(finite, key=finite.get)
        lowest = min(finite, key=finite.get)
        best, worst = (lowest, highest) if lower_is_better(name) else (highest, lowest)
        result[name] = {"max_minus_min": float(finite[highest] - finite[lowest]), "best": best, "worst": worst}
    return result


def grouped_report(
    table: pd.DataFrame,
    columns: Sequence[str],
    classes: dict[str, Sequence[str]],
    min_group_size: int = 1,
) -> dict[str, dict]:
    """`metrics_by_group` for each column that the table has and that holds at least one value."""
    table = with_group_columns(table)
    report = {}
    for column in columns:
        if column in table.columns and table[column].notna().any():
            report[column] = metrics_by_group(table, column, classes, min_group_size)
    return report
