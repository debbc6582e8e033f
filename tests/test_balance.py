"""Imbalance metrics checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from synthface.generation.balance import METRIC_NAMES, count_classes, imbalance_metrics


def test_balanced_distribution() -> None:
    m = imbalance_metrics({"a": 10, "b": 10, "c": 10, "d": 10})
    assert m["max_ratio"] == pytest.approx(1.0)
    assert m["min_ratio"] == pytest.approx(1.0)
    assert m["ratio_range"] == pytest.approx(0.0)
    assert m["imbalance_ratio"] == pytest.approx(1.0)
    assert m["coefficient_of_variation"] == pytest.approx(0.0)
    assert m["normalised_entropy"] == pytest.approx(1.0)
    assert m["gini_impurity"] == pytest.approx(0.75)  # 1 - 4 * (1/4)^2: the maximum for K = 4
    assert m["gini_impurity_normalised"] == pytest.approx(1.0)
    assert (m["n_classes"], m["n_empty_classes"], m["total"]) == (4, 0, 40)


def test_skewed_distribution_by_hand() -> None:
    # counts 60, 30, 10: shares 0.6, 0.3, 0.1; uniform share 1/3
    m = imbalance_metrics({"white": 60, "black": 30, "asian": 10})
    assert m["max_ratio"] == pytest.approx(1.8)  # 0.6 * 3
    assert m["min_ratio"] == pytest.approx(0.3)  # 0.1 * 3
    assert m["ratio_range"] == pytest.approx(1.5)
    assert m["imbalance_ratio"] == pytest.approx(6.0)  # 60 / 10
    # mean 100/3; population variance ((80/3)^2 + (10/3)^2 + (70/3)^2) / 3 = 11400/27
    assert m["coefficient_of_variation"] == pytest.approx(math.sqrt(11400 / 27) / (100 / 3))
    entropy = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    assert m["normalised_entropy"] == pytest.approx(entropy / math.log(3))
    assert m["gini_impurity"] == pytest.approx(1 - (0.36 + 0.09 + 0.01))  # 0.54
    assert m["gini_impurity_normalised"] == pytest.approx(0.54 / (2 / 3))  # 0.81


def test_weights_give_the_same_shape_as_counts() -> None:
    assert imbalance_metrics({"a": 0.6, "b": 0.3, "c": 0.1})["gini_impurity"] == pytest.approx(0.54)


def test_empty_class_among_others() -> None:
    m = imbalance_metrics({"male": 50, "female": 0})
    assert m["min_ratio"] == 0.0
    assert m["max_ratio"] == pytest.approx(2.0)
    assert m["imbalance_ratio"] == math.inf
    assert m["normalised_entropy"] == pytest.approx(0.0)
    assert m["gini_impurity"] == pytest.approx(0.0)
    assert m["coefficient_of_variation"] == pytest.approx(1.0)  # std 25 / mean 25
    assert m["n_empty_classes"] == 1


def test_single_class_is_balanced_by_definition() -> None:
    m = imbalance_metrics({"white": 12})
    assert (m["max_ratio"], m["min_ratio"], m["ratio_range"], m["imbalance_ratio"]) == (1.0, 1.0, 0.0, 1.0)
    assert m["coefficient_of_variation"] == 0.0
    assert m["normalised_entropy"] == 1.0 and m["gini_impurity_normalised"] == 1.0
    assert m["gini_impurity"] == 0.0


def test_all_zero_counts_give_nan_shape_metrics() -> None:
    m = imbalance_metrics({"a": 0, "b": 0})
    assert m["total"] == 0 and m["n_empty_classes"] == 2
    assert set(m) == set(METRIC_NAMES)
    for name in METRIC_NAMES[3:]:
        assert math.isnan(m[name]), name


@pytest.mark.parametrize("counts", [{}, {"a": -1, "b": 2}, {"a": math.nan}, {"a": math.inf}])
def test_invalid_counts_are_rejected(counts) -> None:
    with pytest.raises(ValueError):
        imbalance_metrics(counts)


def test_gini_impurity_is_largest_when_balanced() -> None:
    balanced = imbalance_metrics({"a": 1, "b": 1, "c": 1})["gini_impurity"]
    for skewed in ({"a": 2, "b": 1, "c": 1}, {"a": 5, "b": 0, "c": 1}, {"a": 1, "b": 0, "c": 0}):
        assert imbalance_metrics(skewed)["gini_impurity"] < balanced


def test_count_classes_lists_absent_classes_and_rejects_unknown() -> None:
    assert count_classes(["male", "male", "female"], ["male", "female"]) == {"male": 2, "female": 1}
    assert count_classes(["white"], ["white", "black"]) == {"white": 1, "black": 0}
    assert count_classes(["b", "a", "b"]) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="other"):
        count_classes(["other"], ["male", "female"])
