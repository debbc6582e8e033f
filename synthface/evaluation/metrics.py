"""Metric functions on plain arrays: age regression and the classification heads.

Conventions (stated once, used everywhere):
- Undefined values are NaN (JSON null in reports), never a silent 0: Pearson r of a constant,
  ROC AUC when one class is absent, recall of a class with no true samples.
- Macro averages run over the classes present in the ground truth. A present class the model
  never predicts has precision 0 (it is a real failure, not an undefined value).
- Age bins are the dataset's own bins ("20-29" labels); a predicted age falls in the bin that
  contains it, or the nearest bin when it lies outside or between bins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from synthface.dataset import DatasetError
from synthface.taxonomy import MASK_STATES, parse_age_bin

HEADS = ("age", "gender", "race", "mask")
CLASSIFICATION_HEADS = ("gender", "race", "mask")

# The per-group metric set: what fairness and occlusion splits report for every group.
AGE_GROUP_METRICS = ("mae", "rmse", "pearson_r", "within_5", "within_10", "bin_accuracy", "one_off_accuracy")
CLASS_GROUP_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "roc_auc")
# Metrics where a larger value is worse (used to orient "drop" figures).
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


# ----------------------------------------------------------------------------- predictions table

def pred_column(head: str) -> str:
    """Column of the predictions table holding a head's prediction (years or class label)."""
    return f"{head}_pred"


def prob_column(head: str, class_name: str) -> str:
    """Column of the predictions table holding a head's softmax probability for one class."""
    return f"{head}_p_{class_name}"


def true_indices(table: pd.DataFrame, head: str, classes: Sequence[str]) -> np.ndarray:
    """Ground-truth class indices of a head; the dataset's `mask` column is already 0/1. A
    three-class mask head (none / correct / incorrect) is scored against `mask_state`."""
    if head == "mask":
        if tuple(classes) == MASK_STATES:
            if "mask_state" not in table.columns:
                raise ValueError("the model predicts the mask state (none/correct/incorrect) but the dataset "
                                 "has no 'mask_state' column; regenerate it with a current synthface")
            return _label_indices(table["mask_state"], classes, "mask_state")
        return table["mask"].to_numpy(dtype=np.int64)
    return _label_indices(table[head], classes, head)


def predicted_indices(table: pd.DataFrame, head: str, classes: Sequence[str]) -> np.ndarray:
    return _label_indices(table[pred_column(head)], classes, pred_column(head))


def _label_indices(labels: pd.Series, classes: Sequence[str], column: str) -> np.ndarray:
    lookup = {name: index for index, name in enumerate(classes)}
    unknown = sorted(set(labels.astype(str)) - set(lookup))
    if unknown:
        raise DatasetError(f"column {column!r} has label(s) {unknown} that are not classes of the model {list(classes)}")
    return labels.astype(str).map(lookup).to_numpy(dtype=np.int64)


# ----------------------------------------------------------------------------- age

def parse_bins(labels: Sequence[str]) -> list[tuple[int, int]]:
    """The distinct age bins among `labels`, sorted by their lower edge."""
    return sorted({parse_age_bin(str(label)) for label in labels})


def assign_age_bins(ages: np.ndarray, bins: Sequence[tuple[int, int]]) -> np.ndarray:
    """Index of the bin holding each age (bin [low, high] holds ages in [low, high + 1)),
    or of the nearest bin for ages outside every bin."""
    ages = np.asarray(ages, dtype=np.float64)
    lows = np.array([low for low, _ in bins], dtype=np.float64)
    highs = np.array([high + 1 for _, high in bins], dtype=np.float64)
    # Distance to each bin: 0 inside, else the gap to its nearest edge (the upper edge is open,
    # hence the epsilon: age 30 belongs to 30-39, not to 20-29).
    below = np.clip(lows[None, :] - ages[:, None], 0, None)
    above = np.clip(ages[:, None] - highs[None, :] + 1e-9, 0, None)
    return np.argmin(below + above, axis=1)


def age_metrics(true_age: np.ndarray, pred_age: np.ndarray, true_bin: Sequence[str] | None = None) -> dict:
    """MAE, RMSE, Pearson r, share within +-5 / +-10 years; with bin labels also bin accuracy,
    one-off accuracy (right or adjacent bin) and MAE per bin."""
    true_age = np.asarray(true_age, dtype=np.float64)
    pred_age = np.asarray(pred_age, dtype=np.float64)
    error = pred_age - true_age
    result: dict = {"n": int(true_age.size)}
    if true_age.size == 0:
        return result | {name: float("nan") for name in AGE_GROUP_METRICS}
    result["mae"] = float(np.mean(np.abs(error)))
    result["rmse"] = float(np.sqrt(np.mean(error**2)))
    result["mean_error"] = float(np.mean(error))  # > 0: the model overestimates age
    result["pearson_r"] = pearson_r(true_age, pred_age)
    result["within_5"] = float(np.mean(np.abs(error) <= 5))
    result["within_10"] = float(np.mean(np.abs(error) <= 10))
    if true_bin is not None:
        labels = [str(label) for label in true_bin]
        bins = parse_bins(labels)
        bin_index = {bin_: index for index, bin_ in enumerate(bins)}
        true_index = np.array([bin_index[parse_age_bin(label)] for label in labels])
        pred_index = assign_age_bins(pred_age, bins)
        result["bin_accuracy"] = float(np.mean(pred_index == true_index))
        result["one_off_accuracy"] = float(np.mean(np.abs(pred_index - true_index) <= 1))
        result["mae_by_bin"] = {}
        result["n_by_bin"] = {}
        for index, (low, high) in enumerate(bins):
            chosen = true_index == index
            label = f"{low}-{high}"
            result["mae_by_bin"][label] = float(np.mean(np.abs(error[chosen])))
            result["n_by_bin"][label] = int(chosen.sum())
    else:
        result["bin_accuracy"] = result["one_off_accuracy"] = float("nan")
    return result


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (the correlation is undefined)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


# ----------------------------------------------------------------------------- classification

def classification_metrics(
    true: np.ndarray,
    pred: np.ndarray,
    classes: Sequence[str],
    positive_scores: np.ndarray | None = None,
) -> dict:
    """Accuracy, per-class and macro precision / recall / F1, confusion matrix, and for binary
    heads the ROC AUC of `positive_scores` (probability of classes[1])."""
    true = np.asarray(true, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    all_labels = list(range(len(classes)))
    result: dict = {"n": int(true.size), "classes": list(classes)}
    if true.size == 0:
        return result | {name: float("nan") for name in CLASS_GROUP_METRICS}
    result["accuracy"] = float(np.mean(true == pred))

    present = sorted(set(true.tolist()))
    macro_p, macro_r, macro_f1, _ = precision_recall_fscore_support(
        true, pred, labels=present, average="macro", zero_division=0
    )
    result["macro_precision"] = float(macro_p)
    result["macro_recall"] = float(macro_r)  # = balanced accuracy
    result["macro_f1"] = float(macro_f1)

    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=all_labels, average=None, zero_division=np.nan
    )
    predicted_counts = np.bincount(pred, minlength=len(classes))
    per_class = {}
    for index, name in enumerate(classes):
        if support[index] == 0:
            # No true samples: recall and F1 are undefined; precision is 0 if the model predicted it.
            class_precision = 0.0 if predicted_counts[index] else float("nan")
            per_class[name] = {"precision": class_precision, "recall": float("nan"), "f1": float("nan"), "support": 0}
            continue
        class_precision = 0.0 if predicted_counts[index] == 0 else float(precision[index])
        class_f1 = float(f1[index]) if not np.isnan(f1[index]) else 0.0
        per_class[name] = {
            "precision": class_precision,
            "recall": float(recall[index]),
            "f1": class_f1,
            "support": int(support[index]),
        }
    result["per_class"] = per_class
    result["confusion_matrix"] = confusion_matrix(true, pred, labels=all_labels).tolist()

    result["roc_auc"] = float("nan")
    if len(classes) == 2 and positive_scores is not None and len(present) == 2:
        result["roc_auc"] = float(roc_auc_score(true, np.asarray(positive_scores, dtype=np.float64)))
    return result


# ----------------------------------------------------------------------------- all heads

def head_metrics(table: pd.DataFrame, classes: dict[str, Sequence[str]]) -> dict:
    """Every metric of every head on a predictions table (see `inference.predict_dataset`)."""
    result = {
        "age": age_metrics(
            table["age"].to_numpy(),
            table[pred_column("age")].to_numpy(),
            table["age_bin"].tolist() if has_parsable_age_bins(table) else None,
        )
    }
    for head in CLASSIFICATION_HEADS:
        head_classes = classes[head]
        scores = None
        if len(head_classes) == 2 and prob_column(head, head_classes[1]) in table.columns:
            scores = table[prob_column(head, head_classes[1])].to_numpy()
        result[head] = classification_metrics(
            true_indices(table, head, head_classes),
            predicted_indices(table, head, head_classes),
            head_classes,
            scores,
        )
    return result


def has_parsable_age_bins(table: pd.DataFrame) -> bool:
    """Whether every row has an age bin written as 'low-high' (bin metrics need them)."""
    if "age_bin" not in table.columns or table["age_bin"].isna().any():
        return False
    try:
        parse_bins(table["age_bin"].astype(str).unique())
    except ValueError:
        return False
    return True


def group_scalars(metrics: dict) -> dict[str, float]:
    """The per-group metric set of `head_metrics` output as flat 'head.metric' -> value."""
    flat = {"n": float(metrics["age"]["n"])}
    for name in AGE_GROUP_METRICS:
        flat[f"age.{name}"] = metrics["age"].get(name, float("nan"))
    for head in CLASSIFICATION_HEADS:
        for name in CLASS_GROUP_METRICS:
            flat[f"{head}.{name}"] = metrics[head].get(name, float("nan"))
    return flat


def lower_is_better(metric_key: str) -> bool:
    """Whether a 'head.metric' key is an error (larger = worse), e.g. 'age.mae'."""
    return metric_key.rsplit(".", 1)[-1] in LOWER_IS_BETTER


# The figures a table or chart shows first, with their display names.
HEADLINE_METRICS: dict[str, str] = {
    "age.mae": "age MAE (years)",
    "age.one_off_accuracy": "age one-off acc.",
    "gender.accuracy": "gender acc.",
    "race.accuracy": "race acc.",
    "race.macro_f1": "race macro F1",
    "mask.accuracy": "mask acc.",
}
_OTHER_LABELS: dict[str, str] = {
    "age.within_5": "age within 5 y",
    "age.within_10": "age within 10 y",
    "age.rmse": "age RMSE (years)",
    "gender.macro_f1": "gender macro F1",
    "mask.macro_f1": "mask macro F1",
    "attention_on_occlusion": "attention on occluder",
}


def metric_label(metric_key: str) -> str:
    """Display name of a 'head.metric' key, e.g. 'age.mae' -> 'age MAE (years)'."""
    known = HEADLINE_METRICS.get(metric_key) or _OTHER_LABELS.get(metric_key)
    return known or metric_key.replace(".", " ").replace("_", " ")
