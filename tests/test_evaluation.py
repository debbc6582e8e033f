"""`synthface evaluate` and `compare` end to end on a tiny paired dataset and a 64 px model."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from synthface.dataset import DatasetError, read_metadata, write_metadata
from synthface.evaluation.efficiency import write_inference_checkpoint
from synthface.evaluation.evaluate import evaluate
from synthface.evaluation.inference import load_split_for_model
from synthface.evaluation.saliency import GradCam, gradcam_layer
from synthface.testing import make_tiny_dataset
from synthface.training.model import OAMNet

FAST = {"workers": 0, "n_bootstrap": 200, "min_group_size": 1, "progress": False}


@pytest.fixture(scope="module")
def paired_data(tmp_path_factory):
    root = make_tiny_dataset(tmp_path_factory.mktemp("paired"), n_per_split=8, image_size=64, paired=True,
                             with_occlusion=True)
    (root / "scenario.yaml").write_text("name: paired_masks\nseed: 0\n")
    return root


@pytest.fixture(scope="module")
def no_mask_data(paired_data, tmp_path_factory):
    """The unmasked twins alone: a scenario without masks (the compare baseline)."""
    root = tmp_path_factory.mktemp("no_mask") / "no_mask"
    shutil.copytree(paired_data, root)
    table = read_metadata(root)
    write_metadata(root, table[table["mask"] == 0])
    (root / "scenario.yaml").unlink()
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    with_attention = write_inference_checkpoint(folder / "oam" / "best.pt", OAMNet(num_races=5), image_size=64)
    without = write_inference_checkpoint(folder / "no_attention" / "best.pt", OAMNet(num_races=5, attention=False),
                                         image_size=64)
    return with_attention, without


def _is_png_image(path) -> bool:
    image = cv2.imread(str(path))
    return path.stat().st_size > 1000 and image is not None and min(image.shape[:2]) > 100


def test_evaluate_writes_metrics_predictions_report_and_plots(checkpoints, paired_data, tmp_path):
    out = tmp_path / "report"
    summary = evaluate(checkpoints[0], paired_data, out, gradcam_samples=4, **FAST)

    assert summary["scenario"] == "paired_masks" and summary["n_samples"] == 8 and summary["n_masked"] == 4
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= {"overall", "fairness", "occlusion", "paired", "saliency", "headline"}
    assert set(saved["fairness"]) == {"gender", "race", "age_bin"}
    assert {"mask", "mask_type", "wear_style", "occluded_fraction_bin"} <= set(saved["occlusion"])
    assert saved["paired"]["n_pairs"] == 4
    interval = saved["paired"]["metrics"]["age.mae"]
    assert interval["ci_low"] <= interval["drop"] <= interval["ci_high"]
    # Every masked test row has an occlusion map: attention and Grad-CAM shares are measured on them.
    attention = saved["saliency"]["attention"]
    assert attention["n"] == 4 and 0.0 <= attention["mean_share"] <= 1.0 and attention["mean_covered_area"] > 0
    assert any(name.startswith("gradcam_") for name in saved["saliency"])

    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False, na_values=[""])
    assert len(predictions) == 8
    assert {"age_pred", "gender_pred", "race_p_white", "mask_p_masked", "attention_on_occlusion"} <= set(predictions.columns)
    probabilities = predictions[[f"race_p_{name}" for name in ("white", "black", "asian", "indian", "others")]]
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)

    plots = {path.name for path in (out / "plots").glob("*.png")}
    assert {"confusion_matrices.png", "age_scatter.png", "by_gender.png", "by_mask.png", "paired_drops.png",
            "attention_grid.png", "gradcam_grid.png"} <= plots
    assert all(_is_png_image(path) for path in (out / "plots").glob("*.png"))
    report = (out / "report.md").read_text()
    for heading in ("## Headline", "## Fairness", "## By occlusion", "## Paired robustness", "## Where the model looks"):
        assert heading in report
    assert "plots/attention_grid.png" in report



def test_compare_two_models_on_scenarios_with_drop_against_the_unmasked_one(cli, checkpoints, paired_data, no_mask_data,
                                                                            tmp_path):
    out = tmp_path / "comparison"
    result = cli(["compare", str(checkpoints[0]), str(checkpoints[1]), str(no_mask_data), str(paired_data),
                   "--out", str(out), "--workers", "0", "--bootstrap", "200", "--min-group-size", "1", "--quiet"])
    assert result.exit_code == 0, result.output

    table = pd.read_csv(out / "comparison.csv")
    assert table[["model", "scenario"]].values.tolist() == [
        ["oam/best", "no_mask"], ["oam/best", "paired_masks"],
        ["no_attention/best", "no_mask"], ["no_attention/best", "paired_masks"],
    ]
    for model, rows in table.groupby("model"):
        base, masked = rows.iloc[0], rows.iloc[1]
        assert base["drop_age.mae"] == 0.0
        # Drops are oriented so that > 0 = worse: MAE up, accuracy down.
        assert masked["drop_age.mae"] == pytest.approx(masked["age.mae"] - base["age.mae"], abs=1e-5)
        assert masked["drop_gender.accuracy"] == pytest.approx(base["gender.accuracy"] - masked["gender.accuracy"])
    with_attention = table[table["model"] == "oam/best"].iloc[1]
    assert 0.0 <= with_attention["attention_on_occlusion"] <= 1.0
    assert np.isnan(table[table["model"] == "no_attention/best"].iloc[1]["attention_on_occlusion"])
    assert np.isfinite(with_attention["paired_drop_age.mae"])
    markdown = (out / "comparison.md").read_text()
    assert "baseline `no_mask`" in markdown and "| no_attention/best | paired_masks |" in markdown
    assert _is_png_image(out / "comparison_metrics.png") and _is_png_image(out / "comparison_drops.png")
    assert (out / "oam_best" / "paired_masks" / "metrics.json").is_file()

    missing = cli(["compare", str(checkpoints[0]), str(tmp_path / "nowhere"), "--out", str(out)])
    assert missing.exit_code == 2 and "neither a checkpoint file nor a dataset folder" in missing.output
    bad_baseline = cli(["compare", str(checkpoints[0]), str(no_mask_data), "--out", str(out), "--workers", "0",
                         "--baseline", "winter", "--quiet"])
    assert bad_baseline.exit_code == 2 and "--baseline 'winter'" in bad_baseline.output


def test_race_labels_are_mapped_to_the_model_taxonomy_or_refused(tmp_path):
    fairface = make_tiny_dataset(tmp_path / "fairface", n_per_split=6, race_taxonomy="fairface7", seed=3)
    table = load_split_for_model(fairface, "test", "utkface5")
    assert set(table["race"]) <= {"white", "black", "asian", "indian", "others"}
    assert (table["race_taxonomy"] == "utkface5").all()
    utk = make_tiny_dataset(tmp_path / "utk", n_per_split=2)
    with pytest.raises(DatasetError, match="utkface5"):
        load_split_for_model(utk, "test", "fairface7")
    with pytest.raises(DatasetError, match="splits present"):
        load_split_for_model(utk, "holdout", "utkface5")


def test_gradcam_maps_per_head_match_the_model_outputs():
    torch.manual_seed(1)
    model = OAMNet(num_races=5).eval()
    images = torch.randn(3, 3, 64, 64)
    outputs, maps = GradCam(model, gradcam_layer(model))(images, ["age", "gender", "race", "mask"])
    with torch.no_grad():
        expected = model(images)
    assert torch.allclose(outputs["race"], expected["race"], atol=1e-5)
    for head in ("age", "gender", "race", "mask"):
        assert maps[head].shape == (3, 2, 2)  # layer4 of a 64 px input
        assert (maps[head] >= 0).all()
    # The explained target changes the map: gender and age gradients are not the same.
    assert not np.allclose(maps["age"], maps["gender"])


def test_evaluate_command_reports_a_wrong_dataset_folder_clearly(cli, checkpoints, paired_data, tmp_path):
    result = cli(["evaluate", str(checkpoints[0]), "--data", str(tmp_path), "--out", str(tmp_path / "report")])
    assert result.exit_code == 2 and "is this a synthface dataset?" in result.output
    wrong_split = cli(["evaluate", str(checkpoints[0]), "--data", str(paired_data), "--out", str(tmp_path / "r"),
                        "--split", "holdout", "--workers", "0", "--quiet"])
    assert wrong_split.exit_code == 2 and "splits present: ['test', 'train', 'val']" in wrong_split.output


def test_evaluate_without_pairs_occlusion_maps_or_attention(checkpoints, tmp_path):
    plain = make_tiny_dataset(tmp_path / "plain", n_per_split=6, image_size=64)  # no pairs, no occlusion maps
    out = tmp_path / "report"
    summary = evaluate(checkpoints[1], plain, out, gradcam_samples=2, grid_size=4, **FAST)
    assert summary["paired"] == {"n_pairs": 0}
    assert summary["saliency"] == {}  # nothing covered is recorded, so no share can be measured
    assert "attention_on_occlusion" not in summary["headline"]
    report = (out / "report.md").read_text()
    assert "no masked/unmasked twins" in report and "cannot be measured here" in report
    plots = {path.name for path in (out / "plots").glob("*.png")}
    assert "attention_grid.png" not in plots and "paired_drops.png" not in plots  # model without attention
    assert "gradcam_grid.png" in plots and "confusion_matrices.png" in plots


def test_evaluate_summary_ends_cleanly_without_a_picture_symbol(cli, checkpoints, paired_data, tmp_path):
    """The terminal summary left rich to draw the report's figure link as a stray 🌆 symbol."""
    result = cli(["evaluate", checkpoints[0], "--data", paired_data, "--out", tmp_path / "r", "--workers", "0",
                  "--gradcam-samples", "0", "--bootstrap", "100", "--grid-size", "0"])
    assert result.exit_code == 0, result.output
    assert "## Headline" in result.output or "Headline" in result.output
    assert "🌆" not in result.output and "](plots/" not in result.output
    assert result.output.rstrip().endswith(f"report written to {tmp_path / 'r' / 'report.md'}")
