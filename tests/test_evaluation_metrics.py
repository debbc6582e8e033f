"""Metric functions against values computed by hand on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthface.evaluation.grouping import grouped_report, metrics_by_group, occluded_fraction_bins
from synthface.evaluation.metrics import age_metrics, assign_age_bins, classification_metrics, head_metrics
from synthface.evaluation.robustness import paired_robustness
from synthface.evaluation.saliency import mass_on_region, summarise_shares

CLASSES = {"gender": ("male", "female"), "race": ("white", "black", "asian"), "mask": ("unmasked", "masked")}


def test_age_metrics_by_hand():
    result = age_metrics(np.array([10, 20, 30, 40]), np.array([12, 20, 25, 52]), ["10-19", "20-29", "30-39", "40-49"])
    # errors: +2, 0, -5, +12
    assert result["mae"] == pytest.approx(4.75)
    assert result["rmse"] == pytest.approx(math.sqrt(173 / 4))
    assert result["mean_error"] == pytest.approx(9 / 4)
    assert result["pearson_r"] == pytest.approx(625 / math.sqrt(500 * 902.75))
    assert result["within_5"] == pytest.approx(0.75)
    assert result["within_10"] == pytest.approx(0.75)
    # predicted bins: 10-19, 20-29, 20-29, 40-49 (52 is past the last bin -> nearest)
    assert result["bin_accuracy"] == pytest.approx(0.75)
    assert result["one_off_accuracy"] == pytest.approx(1.0)
    assert result["mae_by_bin"] == {"10-19": 2.0, "20-29": 0.0, "30-39": 5.0, "40-49": 12.0}


def test_age_bins_edges_and_gaps():
    bins = [(0, 2), (3, 9), (20, 29)]
    # 2.99 -> 0-2; 3 -> 3-9; 9.9 -> 3-9; 14 -> gap, nearer 3-9 (4 away) than 20-29 (6 away); 95 -> last
    assert assign_age_bins(np.array([2.99, 3.0, 9.9, 14.0, 95.0]), bins).tolist() == [0, 1, 1, 1, 2]


def test_constant_age_prediction_has_undefined_correlation():
    result = age_metrics(np.array([20, 30, 40]), np.array([30, 30, 30]))
    assert math.isnan(result["pearson_r"])
    assert result["mae"] == pytest.approx(20 / 3)
    assert math.isnan(result["bin_accuracy"])  # no bins given


def test_classification_three_classes_by_hand():
    result = classification_metrics(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 2, 2]), ("a", "b", "c"))
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert result["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert result["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert result["macro_precision"] == pytest.approx(2 / 3)
    assert result["macro_recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert result["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert math.isnan(result["roc_auc"])  # not a binary head


def test_classification_with_a_class_absent_from_the_truth():
    result = classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1]), ("a", "b", "c"))
    assert result["accuracy"] == pytest.approx(0.75)
    # Macro averages over present classes a, b only.
    assert result["macro_precision"] == pytest.approx(1.0)
    assert result["macro_recall"] == pytest.approx(0.75)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)
    absent = result["per_class"]["c"]
    assert absent["support"] == 0 and absent["precision"] == 0.0  # predicted once, never right
    assert math.isnan(absent["recall"]) and math.isnan(absent["f1"])


def test_constant_binary_prediction_and_auc():
    true = np.array([0, 1, 1, 0])
    result = classification_metrics(true, np.zeros(4, int), ("male", "female"), np.array([0.2, 0.8, 0.6, 0.4]))
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["per_class"]["female"]["precision"] == 0.0  # never predicted but present
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert result["roc_auc"] == pytest.approx(1.0)  # the scores still rank perfectly
    flat = classification_metrics(true, np.zeros(4, int), ("male", "female"), np.full(4, 0.3))
    assert flat["roc_auc"] == pytest.approx(0.5)
    one_class = classification_metrics(np.ones(3, int), np.ones(3, int), ("male", "female"), np.array([0.9, 0.8, 0.7]))
    assert math.isnan(one_class["roc_auc"]) and one_class["accuracy"] == 1.0


def _table(rows: list[dict]) -> pd.DataFrame:
    """A predictions table: true labels plus predicted labels and probabilities."""
    table = pd.DataFrame(rows)
    for head, classes in CLASSES.items():
        for name in classes:
            table[f"{head}_p_{name}"] = np.where(table[f"{head}_pred"] == name, 0.9, 0.1 / (len(classes) - 1))
    return table


def _row(age, age_pred, gender, gender_pred, race="white", race_pred="white", mask=0, mask_pred="unmasked", **extra):
    return {"age": age, "age_pred": age_pred, "age_bin": f"{age // 10 * 10}-{age // 10 * 10 + 9}",
            "gender": gender, "gender_pred": gender_pred, "race": race, "race_pred": race_pred,
            "mask": mask, "mask_pred": mask_pred, **extra}


def test_fairness_disparity_is_max_minus_min():
    table = _table([
        _row(20, 22, "male", "male"), _row(30, 30, "male", "male"),
        _row(40, 50, "female", "male"), _row(50, 50, "female", "female"),
        _row(60, 61, "female", "female"),
    ])
    report = metrics_by_group(table, "gender", CLASSES)
    assert report["groups"]["male"]["gender.accuracy"] == 1.0
    assert report["groups"]["female"]["gender.accuracy"] == pytest.approx(2 / 3)
    assert report["groups"]["female"]["age.mae"] == pytest.approx(11 / 3)
    assert report["disparity"]["gender.accuracy"] == {"max_minus_min": pytest.approx(1 / 3), "best": "male", "worst": "female"}
    # MAE: lower is better, so the best group is the one with the smaller error.
    assert report["disparity"]["age.mae"]["best"] == "male"
    assert report["disparity"]["age.mae"]["max_minus_min"] == pytest.approx(11 / 3 - 1)
    small = metrics_by_group(table, "gender", CLASSES, min_group_size=3)
    assert small["small_groups"] == ["male"]
    assert math.isnan(small["disparity"]["gender.accuracy"]["max_minus_min"])  # one group left


def test_occlusion_splits_and_fraction_bins():
    fractions = pd.Series([0.0, 0.1, 0.25, 0.45, 0.7, 1.0])
    assert occluded_fraction_bins(fractions).tolist() == ["none", "0-20%", "20-40%", "40-60%", "60-100%", "60-100%"]
    table = _table([
        _row(20, 20, "male", "male", mask=0, mask_pred="unmasked", mask_type="none", occluded_fraction=0.0),
        _row(20, 30, "male", "female", mask=1, mask_pred="masked", mask_type="cloth", occluded_fraction=0.3),
        _row(30, 36, "female", "female", mask=1, mask_pred="unmasked", mask_type="n95", occluded_fraction=0.5),
    ])
    report = grouped_report(table, ("mask", "mask_type", "wear_style", "occluded_fraction_bin"), CLASSES)
    assert set(report) == {"mask", "mask_type", "occluded_fraction_bin"}  # no wear_style column
    masked = report["mask"]["groups"]["masked"]
    assert masked["age.mae"] == pytest.approx(8.0) and masked["mask.accuracy"] == pytest.approx(0.5)
    # Within the masked group only one mask class is present: its ROC AUC is undefined.
    assert math.isnan(masked["mask.roc_auc"])
    assert set(report["occluded_fraction_bin"]["groups"]) == {"none", "20-40%", "40-60%"}


def test_head_metrics_reads_the_predictions_table():
    table = _table([_row(20, 25, "male", "male", race="asian", race_pred="black", mask=1, mask_pred="masked"),
                    _row(30, 30, "female", "male", race="black", race_pred="black", mask=0, mask_pred="masked")])
    result = head_metrics(table, CLASSES)
    assert result["age"]["mae"] == pytest.approx(2.5)
    assert result["gender"]["accuracy"] == 0.5 and result["race"]["accuracy"] == 0.5
    assert result["mask"]["confusion_matrix"] == [[0, 1], [0, 1]]
    assert result["mask"]["roc_auc"] == pytest.approx(0.5)  # both scored 0.9 for "masked"


def test_paired_drop_with_bootstrap_interval():
    rows = []
    for index, (masked_error, gender_ok) in enumerate([(2, True), (4, False), (6, True), (8, False)]):
        pair = f"p{index}"
        rows.append(_row(30, 30, "male", "male", mask=0, pair_id=pair))
        rows.append(_row(30, 30 + masked_error, "male", "male" if gender_ok else "female", mask=1,
                         mask_pred="masked", pair_id=pair))
    rows.append(_row(40, 40, "female", "female", mask=0, pair_id=""))  # unpaired: ignored
    rows.append(_row(40, 40, "female", "female", mask=1, pair_id="lonely"))  # no twin: ignored
    result = paired_robustness(_table(rows), CLASSES, n_bootstrap=500, seed=1)
    assert result["n_pairs"] == 4
    mae = result["metrics"]["age.mae"]
    assert (mae["unmasked"], mae["masked"], mae["drop"]) == (0.0, 5.0, 5.0)  # positive = worse masked
    assert 2.0 <= mae["ci_low"] < 5.0 < mae["ci_high"] <= 8.0 and mae["significant"]
    accuracy = result["metrics"]["gender.accuracy"]
    assert accuracy["drop"] == pytest.approx(0.5)
    assert 0.0 <= accuracy["ci_low"] <= 0.5 <= accuracy["ci_high"] <= 1.0
    assert result["metrics"]["race.accuracy"]["drop"] == 0.0
    assert result["consistency"]["gender_same_prediction"] == 0.5
    assert result["consistency"]["age_shift_mean_abs"] == pytest.approx(5.0)
    assert paired_robustness(_table(rows[-2:]), CLASSES) == {"n_pairs": 0}


def test_saliency_mass_on_occluded_pixels():
    top_half = np.zeros((8, 8)); top_half[:4] = 1.0
    bottom = np.zeros((8, 8), np.uint8); bottom[4:] = 255
    assert mass_on_region(top_half, bottom) == pytest.approx(0.0)
    assert mass_on_region(np.ones((2, 2)), bottom[:, :]) == pytest.approx(0.5)  # uniform map -> covered share
    assert math.isnan(mass_on_region(np.zeros((2, 2)), bottom))
    summary = summarise_shares(np.array([0.1, 0.3, np.nan, 0.2]), np.array([0.4, 0.4, 0.4, 0.0]))
    assert summary == {"n": 2, "mean_share": pytest.approx(0.2), "mean_covered_area": pytest.approx(0.4),
                       "ratio": pytest.approx(0.5)}


def test_gallery_shows_masked_faces_first_each_with_its_unmasked_twin():
    from synthface.evaluation.gallery import gradcam_positions, pick_examples

    table = pd.DataFrame({"mask": [0, 1, 0, 1, 0, 1], "pair_id": ["a", "a", "b", "b", "", ""]})
    assert gradcam_positions(table, np.arange(6), 4) == [1, 0, 3, 2]
    assert gradcam_positions(table, np.array([0, 2, 4, 5]), 3) == [3, 0, 1]  # no twin explained for row 5
    predictions = _table([_row(30, 31, "male", "male", mask=0), _row(30, 60, "male", "male", mask=1),
                          _row(30, 30, "male", "male", mask=1), _row(30, 30, "female", "male", mask=0)])
    # Two right (masked first), then two wrong (masked first).
    assert pick_examples(predictions, 4) == [2, 0, 1, 3]
