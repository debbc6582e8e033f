"""Figures of an evaluation (PNG, matplotlib's Agg backend: no display needed).

Each function takes already-computed numbers (or images) and a path, draws one figure and
returns the path, so the report writer decides what to draw and the plots stay testable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from synthface.evaluation.metrics import CLASSIFICATION_HEADS, lower_is_better, metric_label  # noqa: E402

DPI = 120
CORRECT_COLOUR = "#2e7d32"
WRONG_COLOUR = "#c62828"


def _save(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _number(value) -> float:
    """A metric value for plotting: None (undefined, from JSON) becomes NaN."""
    return float("nan") if value is None else float(value)


def confusion_matrices(head_results: dict, path: Path) -> Path:
    """One panel per classification head: colour = share of the true class, text = count and share."""
    heads = [head for head in CLASSIFICATION_HEADS if head in head_results and "confusion_matrix" in head_results[head]]
    widths = [max(len(head_results[head]["classes"]), 2) for head in heads]
    figure, axes = plt.subplots(1, len(heads), figsize=(sum(widths) * 1.25 + 1.5, 4.4),
                                gridspec_kw={"width_ratios": widths}, squeeze=False)
    for axis, head in zip(axes[0], heads):
        counts = np.asarray(head_results[head]["confusion_matrix"], dtype=float)
        classes = head_results[head]["classes"]
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(classes)):
            for j in range(len(classes)):
                colour = "white" if shares[i, j] > 0.6 else "black"
                axis.text(j, i, f"{int(counts[i, j])}\n{shares[i, j]:.0%}", ha="center", va="center",
                          fontsize=8, color=colour)
        axis.set_xticks(range(len(classes)), classes, rotation=35, ha="right", fontsize=8)
        axis.set_yticks(range(len(classes)), classes, fontsize=8)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        accuracy = head_results[head].get("accuracy", float("nan"))
        axis.set_title(f"{head} (accuracy {accuracy:.1%})", fontsize=10)
    figure.suptitle("Confusion matrices (rows: true class; colour: share of the row)", fontsize=11)
    figure.tight_layout()
    return _save(figure, path)


def age_scatter(table: pd.DataFrame, path: Path, colour_by: str = "mask") -> Path:
    """Predicted vs true age (with the identity line) and residuals vs true age (with a +-5 band)."""
    true = table["age"].to_numpy(float)
    predicted = table["age_pred"].to_numpy(float)
    residual = predicted - true
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    groups = table[colour_by].map({0: "unmasked", 1: "masked"}) if colour_by == "mask" else table[colour_by].astype(str)
    for (name, chosen), colour in zip(groups.groupby(groups).groups.items(), plt.cm.tab10.colors):
        index = table.index.get_indexer(chosen)
        left.scatter(true[index], predicted[index], s=10, alpha=0.6, color=colour, label=f"{name} (n={len(index)})")
        right.scatter(true[index], residual[index], s=10, alpha=0.6, color=colour)
    top = max(float(np.nanmax(true)), float(np.nanmax(predicted)), 1.0) * 1.05
    left.plot([0, top], [0, top], color="black", linewidth=1, linestyle="--", label="perfect")
    left.set(xlim=(0, top), ylim=(0, top), xlabel="true age (years)", ylabel="predicted age (years)",
             title=f"Predicted vs true age (MAE {np.mean(np.abs(residual)):.1f} years)")
    left.legend(fontsize=8, loc="upper left")
    right.axhspan(-5, 5, color="grey", alpha=0.15, label="within 5 years")
    right.axhline(0, color="black", linewidth=1)
    right.set(xlim=(0, top), xlabel="true age (years)", ylabel="predicted - true (years)",
              title=f"Residuals (mean {np.mean(residual):+.1f} years)")
    right.legend(fontsize=8, loc="upper right")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def group_bars(group_report: dict, metrics: Sequence[str], path: Path, title: str | None = None) -> Path:
    """One panel per metric, one bar per group (sample count under each bar); disparity in the title."""
    groups = group_report["groups"]
    names = list(groups)
    columns = min(len(metrics), 4)
    rows = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(max(3.6, 0.5 * len(names) + 1.5) * columns, 3.4 * rows),
                                squeeze=False)
    for axis, metric in zip(axes.flat, metrics):
        values = [_number(groups[name].get(metric)) for name in names]
        colours = ["#9e9e9e" if name in group_report.get("small_groups", []) else "#1f77b4" for name in names]
        axis.bar(range(len(names)), values, color=colours)
        labels = [f"{name}\nn={int(groups[name]['n'])}" for name in names]
        axis.set_xticks(range(len(names)), labels, fontsize=7, rotation=30 if len(names) > 4 else 0,
                        ha="right" if len(names) > 4 else "center")
        spread = group_report["disparity"].get(metric, {}).get("max_minus_min")
        spread_text = f"{spread:.3g}" if spread is not None and np.isfinite(spread) else "-"
        axis.set_title(f"{metric_label(metric)}\nmax - min {spread_text}", fontsize=9)
        if not lower_is_better(metric):
            axis.set_ylim(0, 1.05)
        axis.grid(axis="y", alpha=0.3)
        for position, value in enumerate(values):
            if np.isfinite(value):
                axis.text(position, value, f"{value:.2f}", ha="center", va="bottom", fontsize=7)
    for axis in list(axes.flat)[len(metrics):]:
        axis.set_visible(False)
    title = title or f"Metrics by {group_report['column']}"
    if group_report.get("small_groups"):
        title += f" (grey: under {group_report['min_group_size']} samples, left out of max - min)"
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return _save(figure, path)


def paired_drops(paired: dict, path: Path) -> Path:
    """The masked-vs-unmasked drop per metric on twin pairs, with its bootstrap interval."""
    metrics = list(paired["metrics"])
    drops = np.array([paired["metrics"][m]["drop"] for m in metrics])
    low = np.array([paired["metrics"][m]["ci_low"] for m in metrics])
    high = np.array([paired["metrics"][m]["ci_high"] for m in metrics])
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, len(metrics) - 1]})
    # Age MAE is in years, the others are shares: separate panels keep both readable.
    for axis, chosen in zip(axes, ([0], list(range(1, len(metrics))))):
        positions = np.arange(len(chosen))
        errors = np.vstack([drops[chosen] - low[chosen], high[chosen] - drops[chosen]])
        colours = [WRONG_COLOUR if d > 0 else CORRECT_COLOUR for d in drops[chosen]]
        axis.bar(positions, drops[chosen], yerr=errors, capsize=5, color=colours, alpha=0.85)
        years = chosen == [0]
        for x, value, top in zip(positions, drops[chosen], high[chosen]):
            text = f"{value:+.2f}" if years else f"{value:+.3f}"
            axis.annotate(text, (x, top), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
        axis.axhline(0, color="black", linewidth=1)
        axis.set_xticks(positions, [metric_label(metrics[i]) for i in chosen], fontsize=8, rotation=20, ha="right")
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("MAE increase (years)")
    axes[1].set_ylabel("drop (share)")
    confidence = paired.get("confidence", 0.95)
    figure.suptitle(f"Same faces, masked vs unmasked: drop (> 0 = worse with the mask), "
                    f"{confidence:.0%} bootstrap interval, {paired['n_pairs']} pairs", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def saliency_grid(
    tiles: Sequence[np.ndarray],
    captions: Sequence[str],
    correct: Sequence[bool],
    path: Path,
    title: str,
    columns: int = 6,
    outlines: Sequence[np.ndarray | None] | None = None,
) -> Path:
    """Faces with a saliency map over them; a green frame for a correct prediction, red for a
    wrong one; the occluder's outline in white when known."""
    count = max(len(tiles), 1)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.95 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        if index >= len(tiles):
            axis.set_visible(False)
            continue
        axis.imshow(tiles[index])
        if outlines is not None and outlines[index] is not None:
            axis.contour(outlines[index] > 0, levels=[0.5], colors="white", linewidths=1.0)
        for spine in axis.spines.values():
            spine.set_edgecolor(CORRECT_COLOUR if correct[index] else WRONG_COLOUR)
            spine.set_linewidth(4)
        axis.set_title(captions[index], fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def compare_bars(table: pd.DataFrame, metrics: Sequence[str], path: Path, series: str = "model",
                 title: str = "Scenarios compared", unit_range: bool = True) -> Path:
    """Grouped bars: scenarios along x, one bar per `series` value (model), one panel per metric.

    `unit_range` fixes the y axis of share metrics to [0, 1]; turn it off for signed values (drops).
    """
    scenarios = list(dict.fromkeys(table["scenario"]))
    labels = list(dict.fromkeys(table[series])) if series in table.columns else ["model"]
    columns = min(len(metrics), 3)
    rows = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(max(4.5, 1.1 * len(scenarios) * max(len(labels), 1) ** 0.5 + 2) * columns,
                                                        3.5 * rows), squeeze=False)
    width = 0.8 / max(len(labels), 1)
    for axis, metric in zip(axes.flat, metrics):
        for offset, (label, colour) in enumerate(zip(labels, plt.cm.tab10.colors)):
            part = table[table[series] == label] if series in table.columns else table
            values = [part.loc[part["scenario"] == s, metric].mean() for s in scenarios]
            positions = np.arange(len(scenarios)) + (offset - (len(labels) - 1) / 2) * width
            axis.bar(positions, values, width=width, color=colour, label=label)
            for x, value in zip(positions, values):
                if np.isfinite(value):
                    axis.text(x, value, f"{value:.2f}", ha="center", va="bottom" if value >= 0 else "top", fontsize=6)
        axis.set_xticks(range(len(scenarios)), scenarios, fontsize=8, rotation=20, ha="right")
        axis.set_title(metric_label(metric), fontsize=9)
        if unit_range and not lower_is_better(metric):
            axis.set_ylim(0, 1.08)
        if not unit_range:
            axis.axhline(0, color="black", linewidth=1)
            axis.margins(y=0.15)
        axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(metrics):]:
        axis.set_visible(False)
    if len(labels) > 1:
        handles, names = axes.flat[0].get_legend_handles_labels()
        figure.legend(handles, names, loc="upper right", ncol=len(labels), fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return _save(figure, path)
