"""Paired robustness: how much worse the model does on the *same* faces once they wear a mask.

A generated dataset with `pair_unmasked` holds twins: a masked sample and its unmasked copy
share `pair_id`. Comparing twins removes the identity, pose and lighting differences that a
plain masked-vs-unmasked split mixes in. The drop is oriented so that positive means "worse
with the mask" (accuracy down, MAE up); its 95% interval comes from a percentile bootstrap
over pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from synthface.evaluation.metrics import lower_is_better, pred_column, predicted_indices, true_indices

PAIRED_METRICS = (
    "age.mae",
    "age.within_5",
    "gender.accuracy",
    "gender.macro_f1",
    "race.accuracy",
    "race.macro_f1",
)


def paired_twins(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(unmasked, masked) rows aligned pair by pair. A pair with several masked variants
    contributes one twin pair per masked variant; pairs lacking either side are dropped."""
    if "pair_id" not in table.columns:
        return table.iloc[:0], table.iloc[:0]
    paired = table[table["pair_id"].fillna("").astype(str) != ""]
    unmasked = paired[paired["mask"] == 0].drop_duplicates("pair_id").set_index("pair_id")
    masked = paired[paired["mask"] == 1]
    masked = masked[masked["pair_id"].isin(unmasked.index)]
    twins = unmasked.loc[masked["pair_id"]].reset_index()
    return twins, masked.reset_index(drop=True)


def _macro_f1(true: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro F1 over the classes present in `true` (same convention as metrics.classification_metrics)."""
    cm = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = support > 0
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1[present].mean())


def _per_side_statistic(
    metric: str, table: pd.DataFrame, classes: dict[str, Sequence[str]]
) -> Callable[[np.ndarray], np.ndarray]:
    """A function from bootstrap index rows (B, n) to the metric on those rows, for one side."""
    head, name = metric.split(".")
    if head == "age":
        error = np.abs(table[pred_column("age")].to_numpy(float) - table["age"].to_numpy(float))
        per_sample = error if name == "mae" else (error <= 5).astype(float)
        return lambda rows: per_sample[rows].mean(axis=1)
    true = true_indices(table, head, classes[head])
    pred = predicted_indices(table, head, classes[head])
    if name == "accuracy":
        correct = (true == pred).astype(float)
        return lambda rows: correct[rows].mean(axis=1)
    n_classes = len(classes[head])
    return lambda rows: np.array([_macro_f1(true[r], pred[r], n_classes) for r in rows])


def paired_robustness(
    table: pd.DataFrame,
    classes: dict[str, Sequence[str]],
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Unmasked vs masked metrics on twin pairs, the drop and its bootstrap interval.

    Returns {"n_pairs": 0} when the table has no complete pairs.
    """
    unmasked, masked = paired_twins(table)
    n_pairs = len(masked)
    if n_pairs == 0:
        return {"n_pairs": 0}
    rng = np.random.default_rng(seed)
    everything = np.arange(n_pairs)[None, :]
    resampled = rng.integers(0, n_pairs, size=(n_bootstrap, n_pairs))
    tail = (1 - confidence) / 2
    result: dict = {"n_pairs": n_pairs, "n_bootstrap": n_bootstrap, "confidence": confidence, "metrics": {}}
    for metric in PAIRED_METRICS:
        on_unmasked = _per_side_statistic(metric, unmasked, classes)
        on_masked = _per_side_statistic(metric, masked, classes)
        sign = -1.0 if lower_is_better(metric) else 1.0  # positive drop = worse with the mask
        value_unmasked = float(on_unmasked(everything)[0])
        value_masked = float(on_masked(everything)[0])
        # Same resampled pairs on both sides: the interval reflects the paired design.
        drops = sign * (on_unmasked(resampled) - on_masked(resampled))
        low, high = np.quantile(drops, [tail, 1 - tail])
        result["metrics"][metric] = {
            "unmasked": value_unmasked,
            "masked": value_masked,
            "drop": sign * (value_unmasked - value_masked),
            "ci_low": float(low),
            "ci_high": float(high),
            "significant": bool(low > 0 or high < 0),
        }
    result["consistency"] = _twin_consistency(unmasked, masked)
    return result


def _twin_consistency(unmasked: pd.DataFrame, masked: pd.DataFrame) -> dict[str, float]:
    """How often the model says the same thing about both twins (independent of the labels)."""
    consistency = {
        "age_shift_mean_abs": float(np.mean(np.abs(masked[pred_column("age")].to_numpy(float)
                                                   - unmasked[pred_column("age")].to_numpy(float)))),
    }
    for head in ("gender", "race"):
        same = masked[pred_column(head)].to_numpy() == unmasked[pred_column(head)].to_numpy()
        consistency[f"{head}_same_prediction"] = float(np.mean(same))
    return consistency
