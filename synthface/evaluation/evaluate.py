"""`synthface evaluate`: score one checkpoint on one dataset split and write a full report.

    evaluate(ckpt, data, out) -> summary dict, and under `out`:
        metrics.json  predictions.csv  report.md  plots/*.png
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthface.dataset import face_ids
from synthface.evaluation import gallery, plots
from synthface.evaluation.grouping import FAIRNESS_COLUMNS, OCCLUSION_COLUMNS, grouped_report
from synthface.evaluation.inference import ATTENTION_SHARE, COVERED_AREA, Predictions, gradcam_share_column
from synthface.evaluation.metrics import HEADLINE_METRICS, HEADS, head_metrics
from synthface.evaluation.report import (
    METRICS_JSON,
    PLOTS_DIR,
    PREDICTIONS_CSV,
    REPORT_MD,
    write_json,
    write_markdown_report,
    write_predictions,
)
from synthface.evaluation.robustness import paired_robustness
from synthface.evaluation.saliency import summarise_shares
from synthface.yamlio import YamlError, load_yaml_file

# One panel per head in the per-group bar charts (the tables in report.md have every headline metric).
GROUP_PLOT_METRICS = ("age.mae", "gender.accuracy", "race.accuracy", "mask.accuracy")


def scenario_name(data: Path) -> str:
    """The dataset's scenario name (its scenario.yaml `name`), else the folder name."""
    scenario_file = Path(data) / "scenario.yaml"
    if scenario_file.is_file():
        try:
            document = load_yaml_file(scenario_file, "scenario YAML file")
        except YamlError:
            document = None
        name = document.get("name") if isinstance(document, dict) else None
        if name:
            return str(name)
    return Path(data).resolve().name


def summarise(
    table: pd.DataFrame,
    classes: dict,
    n_bootstrap: int = 1000,
    min_group_size: int = 10,
    seed: int = 0,
) -> dict:
    """All metrics of a predictions table: overall, fairness, by occlusion, paired, saliency."""
    overall = head_metrics(table, classes)
    headline = {key: overall[key.split(".")[0]].get(key.split(".")[1]) for key in HEADLINE_METRICS}
    saliency: dict[str, dict] = {}
    if ATTENTION_SHARE in table.columns and COVERED_AREA in table.columns:
        saliency["attention"] = summarise_shares(table[ATTENTION_SHARE].to_numpy(float), table[COVERED_AREA].to_numpy(float))
    for head in HEADS:
        column = gradcam_share_column(head)
        if column in table.columns:
            saliency[f"gradcam_{head}"] = summarise_shares(table[column].to_numpy(float), table[COVERED_AREA].to_numpy(float))
    saliency = {name: values for name, values in saliency.items() if values["n"] > 0}
    if "attention" in saliency:
        headline["attention_on_occlusion"] = saliency["attention"]["mean_share"]
    return {
        "n_samples": int(len(table)),
        "n_masked": int(table["mask"].sum()),
        "headline": headline,
        "overall": overall,
        "fairness": grouped_report(table, FAIRNESS_COLUMNS, classes, min_group_size),
        "occlusion": grouped_report(table, OCCLUSION_COLUMNS, classes, min_group_size),
        "paired": paired_robustness(table, classes, n_bootstrap=n_bootstrap, seed=seed),
        "saliency": saliency,
    }


def trained_on(info: dict, table: pd.DataFrame) -> dict:
    """How many of the evaluated faces (and samples) the model was trained on, by `source_id`.

    Datasets built from one pool share each face's split (plan.face_split), so this is 0 unless
    the datasets used different pools, `splits` shares or `splits.seed`; scores on seen faces
    overstate how well a model generalises."""
    seen = set(info.get("train_faces") or ())
    faces = set(face_ids(table))
    overlap = faces & seen
    samples = int(table["source_id"].astype(str).isin(overlap).sum()) if overlap else 0
    return {"faces": len(overlap), "of_faces": len(faces), "samples": samples, "of_samples": int(len(table)),
            "known": bool(seen)}


def overlap_warning(summary: dict) -> str | None:
    """A plain warning when the evaluated split holds faces the model trained on, else None."""
    seen = summary.get("trained_on") or {}
    if not seen.get("faces"):
        return None
    return (f"{summary['scenario']} ({summary['dataset']}, split {summary['split']}): {seen['faces']} of its "
            f"{seen['of_faces']} faces ({seen['samples']} of {seen['of_samples']} samples) are faces the model was "
            "trained on; its scores there overstate generalisation. Build datasets from one pool with the same "
            "`splits` (shares and seed) to keep training faces out of evaluated splits.")


def run_scenario(
    model,
    info: dict,
    checkpoint: Path,
    data: Path,
    split: str,
    device: str = "cpu",
    batch_size: int = 64,
    workers: int = 2,
    gradcam_samples: int = 256,
    n_bootstrap: int = 1000,
    min_group_size: int = 10,
    progress: bool = True,
) -> tuple[dict, Predictions]:
    """Predict one dataset split with a loaded model and summarise it (no files written)."""
    from synthface.evaluation.inference import load_rows_for_model, predict_dataset

    table, split, note = load_rows_for_model(data, split, info)
    found = predict_dataset(model, info, data, table, device=device, batch_size=batch_size, workers=workers,
                            gradcam_samples=gradcam_samples, progress=progress)
    summary = {
        "checkpoint": str(checkpoint),
        "dataset": str(data),
        "scenario": scenario_name(data),
        "split": split,
        "note": note,
        "trained_on": trained_on(info, table),
        "model": {key: info[key] for key in ("race_taxonomy", "image_size", "attention", "epoch", "step", "classes")},
        **summarise(found.table, info["classes"], n_bootstrap=n_bootstrap, min_group_size=min_group_size),
    }
    return summary, found


def evaluate(
    checkpoint: Path,
    data: Path,
    out: Path,
    split: str = "test",
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 2,
    gradcam_samples: int = 256,
    n_bootstrap: int = 1000,
    min_group_size: int = 10,
    grid_size: int = 12,
    make_plots: bool = True,
    progress: bool = True,
) -> dict:
    """Run the model on the split, compute every metric, write the report; return the summary."""
    from synthface.evaluation.inference import resolve_device
    from synthface.training.checkpoint import load_for_inference

    device = resolve_device(device)
    data, out = Path(data), Path(out)
    model, info = load_for_inference(checkpoint, device=device)
    summary, found = run_scenario(model, info, checkpoint, data, split, device=device, batch_size=batch_size,
                                  workers=workers, gradcam_samples=gradcam_samples, n_bootstrap=n_bootstrap,
                                  min_group_size=min_group_size, progress=progress)
    write_outputs(out, summary, found, data, grid_size if make_plots else 0, make_plots)
    return summary


def write_outputs(out: Path, summary: dict, found: Predictions, data: Path, grid_size: int, make_plots: bool) -> dict[str, Path]:
    """metrics.json, predictions.csv, plots and report.md under `out`; returns the figure paths."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / METRICS_JSON, summary)
    write_predictions(out / PREDICTIONS_CSV, found.table)
    figures = draw_figures(out / PLOTS_DIR, summary, found, data, grid_size) if make_plots else {}
    write_markdown_report(out / REPORT_MD, summary, figures)
    return figures


def draw_figures(folder: Path, summary: dict, found: Predictions, data: Path, grid_size: int) -> dict[str, Path]:
    """Every figure the report shows, keyed by the name report.md refers to."""
    table = found.table
    figures = {
        "confusion": plots.confusion_matrices(summary["overall"], folder / "confusion_matrices.png"),
        "age": plots.age_scatter(table, folder / "age_scatter.png"),
    }
    for section in ("fairness", "occlusion"):
        for column, report in summary[section].items():
            figures[f"groups_{column}"] = plots.group_bars(report, GROUP_PLOT_METRICS, folder / f"by_{column}.png")
    if summary["paired"].get("n_pairs", 0) > 0:
        figures["paired"] = plots.paired_drops(summary["paired"], folder / "paired_drops.png")
    if grid_size > 0 and found.attention is not None:
        figures["attention_grid"] = gallery.attention_grid(found, data, folder / "attention_grid.png", grid_size)
    if grid_size > 0 and len(found.gradcam_rows):
        figures["gradcam_grid"] = gallery.gradcam_grid(found, data, folder / "gradcam_grid.png",
                                                       rows=max(grid_size // 3, 1))
    return figures
