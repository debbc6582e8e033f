"""`synthface compare`: one or more models on several scenario datasets, in one table.

Rows are (model, scenario); columns are the headline metrics and, for each, the drop against
the model's no-mask scenario (the dataset whose evaluated split has no masked rows, or the
one named by `--baseline`). A drop > 0 always means "worse than the baseline" (accuracy
down, MAE up). Writes comparison.md, comparison.csv and grouped bar charts; each scenario's
own metrics.json and predictions.csv go to <out>/<model>/<scenario>/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthface.dataset import atomic_write_bytes
from synthface.errors import UserError
from synthface.evaluation import plots
from synthface.evaluation.metrics import HEADLINE_METRICS, lower_is_better, metric_label
from synthface.evaluation.report import fmt, markdown_table
from synthface.paths import inside, safe_component

COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
TABLE_METRICS = (*HEADLINE_METRICS, "attention_on_occlusion")
PAIRED_DROPS = ("age.mae", "gender.accuracy", "race.accuracy")


def drop_column(metric: str) -> str:
    return f"drop_{metric}"


def model_names(checkpoints: list[Path]) -> list[str]:
    """Short distinct names: the run folder and file stem (runs/oam/best.pt -> oam/best)."""
    names = [f"{Path(c).parent.name}/{Path(c).stem}" if Path(c).parent.name else Path(c).stem for c in checkpoints]
    if len(set(names)) < len(names):
        names = [f"{index}:{name}" for index, name in enumerate(names)]
    return names


def scenario_names(datasets: list[Path]) -> list[str]:
    """Each dataset's scenario name; when two share one, the folder name is added to tell them apart."""
    from synthface.evaluation.evaluate import scenario_name

    names = [scenario_name(data) for data in datasets]
    return [f"{name} ({Path(data).name})" if names.count(name) > 1 else name for name, data in zip(names, datasets)]


def split_paths(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(checkpoints, datasets): files are checkpoints, folders are datasets."""
    checkpoints, datasets = [], []
    for path in paths:
        path = Path(path)
        if path.is_file():
            checkpoints.append(path)
        elif path.is_dir():
            datasets.append(path)
        else:
            raise FileNotFoundError(f"{path}: neither a checkpoint file nor a dataset folder")
    if not checkpoints:
        raise UserError("compare needs at least one checkpoint file (e.g. runs/oam/best.pt)")
    if not datasets:
        raise UserError("compare needs at least one dataset folder (a synthface dataset with metadata.csv)")
    return checkpoints, datasets


def scenario_row(model: str, summary: dict) -> dict:
    """The comparison row of one evaluation summary (see evaluate.summarise)."""
    row = {"model": model, "scenario": summary["scenario"], "dataset": summary["dataset"],
           "n": summary["n_samples"], "n_masked": summary["n_masked"], "note": summary.get("note") or "",
           "trained_faces": summary["trained_on"]["faces"], "trained_samples": summary["trained_on"]["samples"]}
    for metric in TABLE_METRICS:
        row[metric] = summary["headline"].get(metric, np.nan)
    for name, values in summary["saliency"].items():
        row[f"{name}_share_on_occlusion"] = values["mean_share"]
        row[f"{name}_ratio_to_area"] = values["ratio"]
    paired = summary["paired"]
    for metric in PAIRED_DROPS:
        entry = paired.get("metrics", {}).get(metric)
        row[f"paired_drop_{metric}"] = entry["drop"] if entry else np.nan
    return row


def add_drops(table: pd.DataFrame, baseline: str | None = None) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """Drop columns against each model's baseline scenario; returns the table and the baseline per model."""
    table = table.copy()
    chosen: dict[str, str | None] = {}
    for model, rows in table.groupby("model", sort=False):
        if baseline is not None:
            matches = rows[(rows["scenario"] == baseline) | rows["dataset"].map(lambda d: Path(d).name == baseline)]
            if matches.empty:
                raise UserError(f"--baseline {baseline!r} matches no scenario name or dataset folder "
                                 f"(have: {', '.join(rows['scenario'])})")
        else:
            matches = rows[rows["n_masked"] == 0]
        if matches.empty:
            chosen[model] = None
            continue
        base = matches.iloc[0]
        chosen[model] = base["scenario"]
        for metric in TABLE_METRICS:
            sign = -1.0 if lower_is_better(metric) else 1.0
            table.loc[rows.index, drop_column(metric)] = sign * (base[metric] - rows[metric])
    for metric in TABLE_METRICS:
        if drop_column(metric) not in table.columns:
            table[drop_column(metric)] = np.nan
    return table, chosen


def seen_face_warnings(table: pd.DataFrame) -> list[str]:
    """One line per (model, scenario) whose evaluated split holds faces the model trained on."""
    if "trained_faces" not in table.columns:
        return []
    return [f"{row['model']} on {row['scenario']}: {int(row['trained_faces'])} evaluated faces "
            f"({int(row['trained_samples'])} of {int(row['n'])} samples) were in its training split; those scores "
            "overstate generalisation (build every dataset from one pool with the same `splits` shares and seed)"
            for _, row in table.iterrows() if row["trained_faces"] > 0]


def write_comparison(out: Path, table: pd.DataFrame, baselines: dict[str, str | None]) -> dict[str, Path]:
    """comparison.csv, comparison.md and the bar charts; returns the figure paths."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / COMPARISON_CSV, table.to_csv(index=False, float_format="%.8g").encode())
    figures = {
        "metrics": plots.compare_bars(table, list(HEADLINE_METRICS), out / "comparison_metrics.png"),
    }
    if table[[drop_column(m) for m in HEADLINE_METRICS]].notna().any().any() and len(table) > table["model"].nunique():
        is_baseline = table["scenario"].isin([name for name in baselines.values() if name])
        drop_table = table.loc[~is_baseline, ["model", "scenario"]].assign(
            **{m: table.loc[~is_baseline, drop_column(m)] for m in HEADLINE_METRICS})
        figures["drops"] = plots.compare_bars(drop_table, list(HEADLINE_METRICS), out / "comparison_drops.png",
                                              title="Drop vs the baseline scenario (> 0 = worse)", unit_range=False)
    several = table["model"].nunique() > 1
    keys = (["model"] if several else []) + ["scenario"]
    lines = ["# Scenario comparison", "", *(f"**Warning:** {w}\n" for w in seen_face_warnings(table))]
    for model, base in baselines.items():
        lines.append(f"- {model}: baseline "
                     + (f"`{base}`" if base else "none (no scenario without masks; pass --baseline)"))
    for _, row in table[table["note"].astype(bool)].iterrows() if "note" in table.columns else []:
        lines.append(f"- note ({row['model']}, {row['scenario']}): {row['note']}")
    lines += ["", "## Metrics", "", markdown_table(
        [*keys, "n", "masked", *(metric_label(m) for m in TABLE_METRICS)],
        [[*(row[k] for k in keys), int(row["n"]), int(row["n_masked"]), *(row[m] for m in TABLE_METRICS)]
         for _, row in table.iterrows()],
    ), "", "## Drop vs the baseline", "",
        "Baseline minus scenario, oriented so that > 0 is worse (accuracy lower, MAE higher).", "",
        markdown_table(
            [*keys, *(metric_label(m) for m in HEADLINE_METRICS)],
            [[*(row[k] for k in keys), *(row[drop_column(m)] for m in HEADLINE_METRICS)] for _, row in table.iterrows()],
        ), ""]
    paired_columns = [f"paired_drop_{m}" for m in PAIRED_DROPS]
    if table[paired_columns].notna().any().any():
        lines += ["## Paired drop on the same faces", "",
                  "Masked twin vs its unmasked twin (`pair_id`); intervals in each scenario's metrics.json.", "",
                  markdown_table([*keys, *(metric_label(m) for m in PAIRED_DROPS)],
                                 [[*(row[k] for k in keys), *(row[c] for c in paired_columns)]
                                  for _, row in table.iterrows()]), ""]
    maps = [c.removesuffix("_share_on_occlusion") for c in table.columns if c.endswith("_share_on_occlusion")]
    if maps:
        lines += ["## Where the models look", "",
                  "Share of each saliency map's mass on the occluder's pixels / that share divided by the covered "
                  "area (< 1: looks away from the mask).", "",
                  markdown_table([*keys, *maps],
                                 [[*(row[k] for k in keys),
                                   *(f"{fmt(row[f'{m}_share_on_occlusion'])} / {fmt(row[f'{m}_ratio_to_area'], 2)}"
                                     for m in maps)] for _, row in table.iterrows()]), ""]
    for name, figure in figures.items():
        lines += [f"![{name}]({figure.name})", ""]
    atomic_write_bytes(out / COMPARISON_MD, "\n".join(lines).encode())
    return figures


def compare(
    checkpoints: list[Path],
    datasets: list[Path],
    out: Path,
    baseline: str | None = None,
    split: str = "test",
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 2,
    gradcam_samples: int = 0,
    n_bootstrap: int = 1000,
    min_group_size: int = 10,
    full_reports: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate every checkpoint on every dataset; write the comparison; return its table."""
    from synthface.evaluation.evaluate import run_scenario, write_outputs
    from synthface.evaluation.inference import resolve_device
    from synthface.training.checkpoint import load_for_inference

    device = resolve_device(device)
    out = Path(out)
    scenarios = scenario_names(datasets)
    rows = []
    for checkpoint, name in zip(checkpoints, model_names(checkpoints)):
        model, info = load_for_inference(checkpoint, device=device)
        for data, scenario in zip(datasets, scenarios):
            summary, found = run_scenario(
                model, info, checkpoint, Path(data), split, device=device, batch_size=batch_size, workers=workers,
                gradcam_samples=gradcam_samples, n_bootstrap=n_bootstrap, min_group_size=min_group_size,
                progress=progress,
            )
            summary["scenario"] = scenario
            # The scenario name comes from the dataset's scenario.yaml: a folder name, never a path.
            folder = inside(out, safe_component(name), safe_component(scenario))
            write_outputs(folder, summary, found, Path(data), grid_size=12 if full_reports else 0, make_plots=full_reports)
            rows.append(scenario_row(name, summary))
        del model
    table, baselines = add_drops(pd.DataFrame(rows), baseline)
    write_comparison(out, table, baselines)
    return table
