"""Imbalance metrics of a class distribution (one attribute, or a joint stratum).

Every formula is written out in docs/balance-metrics.md. In short, with K classes, counts
n_i, total N and shares p_i = n_i / N (the uniform share is 1/K):

* max_ratio  = max p_i / (1/K)   (1 when balanced; K when one class holds everything)
* min_ratio  = min p_i / (1/K)   (1 when balanced; 0 when a class is empty)
* ratio_range = max_ratio - min_ratio                       (0 when balanced)
* imbalance_ratio = max n_i / min n_i                       (1 when balanced; inf with an empty class)
* coefficient_of_variation = std(n_i) / mean(n_i)           (population std; 0 when balanced)
* normalised_entropy = -sum p_i ln p_i / ln K               (1 when balanced, 0 for one class only)
* gini_impurity = 1 - sum p_i^2                             (LARGEST, 1 - 1/K, when balanced)
* gini_impurity_normalised = gini_impurity / (1 - 1/K)      (1 when balanced)

The caller lists every class that should be present (with 0 for an empty one), because an
absent class is exactly the imbalance these metrics must show.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

METRIC_NAMES: tuple[str, ...] = (
    "n_classes",
    "n_empty_classes",
    "total",
    "max_ratio",
    "min_ratio",
    "ratio_range",
    "imbalance_ratio",
    "coefficient_of_variation",
    "normalised_entropy",
    "gini_impurity",
    "gini_impurity_normalised",
)


def imbalance_metrics(counts: Mapping[str, float]) -> dict[str, float]:
    """Imbalance metrics of one distribution given as class -> count (or weight).

    Edge cases (documented in docs/balance-metrics.md):
    * a single class is balanced by definition: ratios 1, spreads 0, normalised metrics 1;
    * all counts zero: there is no distribution, so every shape metric is NaN;
    * an empty class among others gives min_ratio 0 and imbalance_ratio inf.
    Raises ValueError for no classes, negative or non-finite counts.
    """
    if not counts:
        raise ValueError("imbalance_metrics needs at least one class (pass empty classes with count 0)")
    values = np.array([float(v) for v in counts.values()], dtype=np.float64)
    bad = [name for name, value in zip(counts, values) if not math.isfinite(value) or value < 0]
    if bad:
        raise ValueError(f"class counts must be finite and >= 0; bad classes: {bad}")

    k = len(values)
    total = float(values.sum())
    summary = {"n_classes": float(k), "n_empty_classes": float(np.sum(values == 0)), "total": total}
    if total == 0:
        return summary | {name: math.nan for name in METRIC_NAMES if name not in summary}

    shares = values / total
    uniform = 1.0 / k
    max_ratio = float(shares.max() / uniform)
    min_ratio = float(shares.min() / uniform)
    smallest = float(values.min())
    nonzero = shares[shares > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum())
    gini = float(1.0 - np.sum(shares**2))
    if k == 1:  # one class: nothing to be unbalanced against
        normalised_entropy = gini_normalised = 1.0
    else:
        normalised_entropy = entropy / math.log(k)
        gini_normalised = gini / (1.0 - uniform)
    return summary | {
        "max_ratio": max_ratio,
        "min_ratio": min_ratio,
        "ratio_range": max_ratio - min_ratio,
        "imbalance_ratio": float(values.max()) / smallest if smallest > 0 else math.inf,
        "coefficient_of_variation": float(values.std() / values.mean()),
        "normalised_entropy": _clip_unit(normalised_entropy),
        "gini_impurity": gini,
        "gini_impurity_normalised": _clip_unit(gini_normalised),
    }


def count_classes(labels: Iterable[object], classes: Sequence[str] | None = None) -> dict[str, int]:
    """Count labels, listing every expected class (0 when absent) in the given order.

    Labels outside `classes` raise ValueError, since silently dropping them would hide exactly
    the problem a balance report exists to show.
    """
    counter = Counter(str(label) for label in labels)
    if classes is None:
        return dict(sorted(counter.items()))
    unknown = sorted(set(counter) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the expected classes {list(classes)}")
    return {name: counter.get(name, 0) for name in classes}


def _clip_unit(value: float) -> float:
    """Remove float round-off that would put a normalised metric a hair above 1."""
    return min(1.0, max(0.0, value))
