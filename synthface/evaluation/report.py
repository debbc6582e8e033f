"""Writing an evaluation to disk: metrics.json, the predictions table, and report.md.

JSON has no NaN: undefined metrics (see metrics.py) are written as null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synthface.dataset import atomic_write_bytes
from synthface.evaluation.metrics import CLASSIFICATION_HEADS, HEADLINE_METRICS, metric_label
from synthface.markdown import md_row

METRICS_JSON = "metrics.json"
PREDICTIONS_CSV = "predictions.csv"
REPORT_MD = "report.md"
PLOTS_DIR = "plots"


def jsonable(value):
    """Plain-JSON copy of nested metrics: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(Path(path), (json.dumps(jsonable(data), indent=2) + "\n").encode())


def write_predictions(path: Path, table: pd.DataFrame) -> None:
    atomic_write_bytes(Path(path), table.to_csv(index=False, float_format="%.8g").encode())


def fmt(value, digits: int = 3) -> str:
    """A number for a markdown table: '-' for undefined values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if abs(value) < 0.5 * 10**-digits:
        value = 0.0  # no "-0.000"
    return f"{value:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured markdown table; cells that are numbers are formatted with `fmt`."""
    def cell(value) -> str:
        return fmt(value) if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) else str(value)

    lines = [md_row(headers), "|" + "|".join("---" for _ in headers) + "|"]
    lines += [md_row([cell(value) for value in row]) for row in rows]
    return "\n".join(lines)


def _group_section(title: str, report: dict, metrics: Sequence[str]) -> list[str]:
    """A table of the headline metrics per group, and the disparity row under it."""
    lines = [f"### {title}", ""]
    groups = report["groups"]
    rows = [[name, int(values["n"]), *(values.get(m) for m in metrics)] for name, values in groups.items()]
    rows.append(["**max - min**", "", *(report["disparity"].get(m, {}).get("max_minus_min") for m in metrics)])
    lines.append(markdown_table(["group", "n", *(metric_label(m) for m in metrics)], rows))
    if report.get("small_groups"):
        lines += ["", f"Groups under {report['min_group_size']} samples, left out of max - min: "
                  + ", ".join(report["small_groups"]) + "."]
    return lines + [""]


def seen_faces_lines(summary: dict) -> list[str]:
    """The report's warning line when the evaluated split holds faces the model trained on."""
    from synthface.evaluation.evaluate import overlap_warning

    warning = overlap_warning(summary)
    return ["", f"**Warning:** {warning}"] if warning else []


def write_markdown_report(path: Path, summary: dict, figures: dict[str, Path]) -> None:
    """report.md: headline numbers first, then per-head detail, fairness, occlusion, pairs, saliency."""
    path = Path(path)
    overall = summary["overall"]
    headline = list(HEADLINE_METRICS)
    lines = [
        f"# Evaluation: {summary['scenario']}",
        "",
        f"- checkpoint: `{summary['checkpoint']}`",
        f"- dataset: `{summary['dataset']}`, split `{summary['split']}`, {summary['n_samples']} samples "
        f"({summary['n_masked']} masked)",
        f"- model: {summary['model']['race_taxonomy']} races, {summary['model']['image_size']} px input, "
        f"attention {'on' if summary['model']['attention'] else 'off'}",
        *([f"- note: {summary['note']}"] if summary.get("note") else []),
        *seen_faces_lines(summary),
        "",
        "## Headline",
        "",
        markdown_table(["metric", "value"], [[metric_label(m), value] for m, value in summary["headline"].items()]),
        "",
        "## Age",
        "",
        markdown_table(
            ["MAE", "RMSE", "mean error", "Pearson r", "within 5 y", "within 10 y", "bin acc.", "one-off acc."],
            [[overall["age"].get(k) for k in ("mae", "rmse", "mean_error", "pearson_r", "within_5", "within_10",
                                              "bin_accuracy", "one_off_accuracy")]],
        ),
        "",
    ]
    if overall["age"].get("mae_by_bin"):
        lines += ["MAE per age bin:", "", markdown_table(
            ["age bin", "n", "MAE"],
            [[label, overall["age"]["n_by_bin"][label], mae] for label, mae in overall["age"]["mae_by_bin"].items()],
        ), ""]
    if "age" in figures:
        lines += [f"![age]({figures['age'].relative_to(path.parent)})", ""]
    lines += ["## Classification heads", ""]
    lines.append(markdown_table(
        ["head", "accuracy", "macro precision", "macro recall", "macro F1", "ROC AUC"],
        [[head, *(overall[head].get(k) for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "roc_auc"))]
         for head in CLASSIFICATION_HEADS],
    ))
    lines.append("")
    for head in CLASSIFICATION_HEADS:
        per_class = overall[head]["per_class"]
        lines += [f"**{head}** per class:", "", markdown_table(
            ["class", "support", "precision", "recall", "F1"],
            [[name, v["support"], v["precision"], v["recall"], v["f1"]] for name, v in per_class.items()],
        ), ""]
    if "confusion" in figures:
        lines += [f"![confusion matrices]({figures['confusion'].relative_to(path.parent)})", ""]

    for section, title in (("fairness", "Fairness"), ("occlusion", "By occlusion")):
        if not summary[section]:
            continue
        lines += [f"## {title}", "", "Disparity: max - min of each metric across groups, the gap between the best and the worst group.", ""]
        for column, report in summary[section].items():
            lines += _group_section(f"by {column}", report, headline)
            if f"groups_{column}" in figures:
                lines += [f"![by {column}]({figures[f'groups_{column}'].relative_to(path.parent)})", ""]

    paired = summary["paired"]
    lines += ["## Paired robustness (same faces, masked vs unmasked)", ""]
    if paired.get("n_pairs", 0) == 0:
        lines += ["The dataset has no masked/unmasked twins (`pair_id`); generate with `pair_unmasked: true`.", ""]
    else:
        confidence = f"{paired['confidence']:.0%}"
        lines += [f"{paired['n_pairs']} pairs; drop > 0 means worse with the mask; {confidence} percentile "
                  f"bootstrap interval over pairs ({paired['n_bootstrap']} resamples).", "", markdown_table(
                      ["metric", "unmasked", "masked", "drop", f"{confidence} CI", "CI excludes 0"],
                      [[metric_label(m), v["unmasked"], v["masked"], v["drop"],
                        f"[{fmt(v['ci_low'])}, {fmt(v['ci_high'])}]", "yes" if v["significant"] else "no"]
                       for m, v in paired["metrics"].items()]), "",
                  "Twin consistency (same prediction on both twins): "
                  + ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in paired["consistency"].items()) + ".", ""]
        if "paired" in figures:
            lines += [f"![paired drops]({figures['paired'].relative_to(path.parent)})", ""]

    lines += ["## Where the model looks", "",
              "Share of each saliency map's mass on the pixels the occluder covers (from the dataset's occlusion "
              "maps), against the covered share of the image. Ratio < 1: the model looks away from the mask.", ""]
    saliency = summary["saliency"]
    rows = [[name, s["n"], s["mean_share"], s["mean_covered_area"], s["ratio"]] for name, s in saliency.items()]
    if rows:
        lines += [markdown_table(["map", "samples", "share on occluder", "covered area", "ratio"], rows), ""]
    else:
        lines += ["No sample has an occlusion map with covered pixels, so this cannot be measured here.", ""]
    for key in ("attention_grid", "gradcam_grid"):
        if key in figures:
            lines += [f"![{key}]({figures[key].relative_to(path.parent)})", ""]
    atomic_write_bytes(path, "\n".join(lines).encode())
