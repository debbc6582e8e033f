"""`synthface evaluate`, `compare`, `predict` and `export`.

Thin: parse options, call the evaluation modules, print. Heavy imports (torch, MediaPipe)
happen inside the commands so `synthface --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from synthface.cliutil import console, print_error, print_warning, user_errors
from synthface.terminal import print_markdown

DEVICE_HELP = "Device: auto (GPU when present), cpu, cuda or cuda:N."


def evaluate(
    checkpoint: Path = typer.Argument(..., help="Trained checkpoint (.pt) written by `synthface train`."),
    data: str = typer.Option(..., "--data", "-d", help="Dataset folder in synthface's format (metadata + images/, or webdataset/parquet data files), or its URL (s3://..., mirrored into the cache)."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder: metrics.json, predictions.csv, report.md, plots/."),
    split: str = typer.Option("test", "--split", help="Which split of the dataset to evaluate (train, val or test)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, max=4096, help="Images per forward pass."),
    workers: int = typer.Option(2, "--workers", "-w", min=0, max=256, help="Image-decoding worker processes (0 = in the main process)."),
    gradcam_samples: int = typer.Option(256, "--gradcam-samples", min=0, max=100_000,
                                        help="Faces explained with Grad-CAM (masked faces first); 0 skips Grad-CAM."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=100, max=10_000, help="Bootstrap resamples for the paired-drop confidence interval."),
    min_group_size: int = typer.Option(10, "--min-group-size", min=1,
                                       help="Groups smaller than this are shown but left out of the max - min disparity."),
    grid_size: int = typer.Option(12, "--grid-size", min=0, max=400, help="Faces in the attention-map grid (half correct, half wrong)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the PNG figures (off: metrics and report.md only)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score a model on one dataset split: accuracy, fairness, occlusion robustness, attention."""

    from synthface.evaluation.evaluate import evaluate as run_evaluate
    from synthface.evaluation.evaluate import overlap_warning
    from synthface.evaluation.report import REPORT_MD

    with user_errors():
        from synthface.storage import mirror

        summary = run_evaluate(checkpoint, mirror(data, "dataset", quiet), out, split=split, device=device, batch_size=batch_size, workers=workers,
                               gradcam_samples=gradcam_samples, n_bootstrap=bootstrap, min_group_size=min_group_size,
                               grid_size=grid_size, make_plots=plots, progress=not quiet)
    warning = overlap_warning(summary)
    if warning:
        print_warning(warning)
    if summary.get("note"):
        console.print(f"[yellow]note:[/yellow] {summary['note']}", highlight=False)
    if not quiet:
        text = (out / REPORT_MD).read_text()
        print_markdown(console, text.split("## Classification heads")[0])  # no stray symbol for the figure links
    console.print(f"report written to {out / REPORT_MD}")


def compare(
    paths: list[Path] = typer.Argument(..., help="Checkpoints and scenario dataset folders, in any order: files are checkpoints, folders are datasets."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for comparison.md, comparison.csv, charts and per-scenario metrics."),
    baseline: Optional[str] = typer.Option(None, "--baseline",
                                           help="Scenario name or dataset folder name to measure drops against "
                                                "(default: the dataset with no masked rows)."),
    split: str = typer.Option("test", "--split", help="Which split of each dataset to evaluate."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, max=4096, help="Images per forward pass."),
    workers: int = typer.Option(2, "--workers", "-w", min=0, max=256, help="Image-decoding worker processes (0 = in the main process)."),
    gradcam_samples: int = typer.Option(0, "--gradcam-samples", min=0, max=100_000,
                                        help="Faces explained with Grad-CAM per scenario (0 = off; attention share is always measured)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=100, max=10_000, help="Bootstrap resamples for paired-drop intervals."),
    min_group_size: int = typer.Option(10, "--min-group-size", min=1, help="Smallest group counted in disparities."),
    full_reports: bool = typer.Option(False, "--full-reports/--no-full-reports",
                                      help="Also write each scenario's report.md and plots (as `evaluate` does)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Evaluate one or more models on several scenarios; one table with drops vs the no-mask scenario."""

    from synthface.evaluation.compare import COMPARISON_MD, seen_face_warnings, split_paths
    from synthface.evaluation.compare import compare as run_compare

    with user_errors():
        checkpoints, datasets = split_paths(paths)
        table = run_compare(checkpoints, datasets, out, baseline=baseline, split=split, device=device, batch_size=batch_size,
                    workers=workers, gradcam_samples=gradcam_samples, n_bootstrap=bootstrap,
                    min_group_size=min_group_size, full_reports=full_reports, progress=not quiet)
    for warning in seen_face_warnings(table):
        print_warning(warning)
    for note in dict.fromkeys(table["note"][table["note"].astype(bool)]):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if not quiet:
        print_markdown(console, (out / COMPARISON_MD).read_text().split("![")[0].split("## Metrics")[-1])
    console.print(f"comparison written to {out / COMPARISON_MD}")


def predict(
    checkpoint: Path = typer.Argument(..., help="Trained checkpoint (.pt)."),
    images: list[Path] = typer.Argument(..., help="Image files and/or folders of images."),
    annotate: Optional[Path] = typer.Option(None, "--annotate", "-a", help="Write <name>.annotated.jpg with boxes and labels here."),
    largest_only: bool = typer.Option(False, "--largest-only", help="Only the largest face of each image."),
    margin: float = typer.Option(0.2, "--margin", min=0.0, max=1.0,
                                 help="Crop margin around the face oval; use the training dataset's faces.crop_margin (scenario default 0.2)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    landmarker: Optional[Path] = typer.Option(None, "--landmarker", help="Face landmarker .task bundle (default: bundled)."),
) -> None:
    """Detect, align and classify faces; print one JSON object per face (or per failed image)."""
    from synthface.evaluation.inference import resolve_device
    from synthface.evaluation.predict import FacePredictor, predict_images

    with user_errors():
        predictor = FacePredictor(checkpoint, device=resolve_device(device), margin=margin, landmarker=landmarker)
    failures = 0
    try:
        for entry in predict_images(predictor, images, annotate_dir=annotate, all_faces=not largest_only):
            failures += "error" in entry
            typer.echo(json.dumps(entry))
    finally:
        predictor.close()
    if failures:
        console.print(f"{failures} image(s) could not be used (see the 'error' entries)")


def export(
    checkpoint: Path = typer.Argument(..., help="Trained checkpoint (.pt)."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Export to ONNX (the only format so far)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output .onnx file (default: the checkpoint path with .onnx)."),
    opset: int = typer.Option(17, "--opset", min=13, help="ONNX opset version."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare ONNX Runtime with PyTorch outputs on a random batch."),
    atol: float = typer.Option(1e-3, "--atol", min=0.0, help="Parity: absolute tolerance per output value."),
    rtol: float = typer.Option(1e-3, "--rtol", min=0.0, help="Parity: tolerance relative to the PyTorch value."),
) -> None:
    """Export a checkpoint for deployment (ONNX) and check ONNX Runtime parity."""
    if not onnx:
        print_error("nothing to do: --onnx is the only export format")
        raise typer.Exit(2)
    try:
        import onnx as _onnx  # noqa: F401
        import onnxruntime as _onnxruntime  # noqa: F401
    except ImportError:
        print_error("ONNX export needs the optional extra: pip install 'synthface[onnx]'")
        raise typer.Exit(2) from None
    from synthface.evaluation.export import ExportError, export_onnx

    try:
        with user_errors():
            report = export_onnx(checkpoint, out, opset=opset, check=check, atol=atol, rtol=rtol)
    except ExportError as error:
        print_error(error, "parity check failed")
        raise typer.Exit(1) from None
    console.print(f"wrote {report['onnx']} ({report['size_bytes'] / 1e6:.1f} MB), outputs {', '.join(report['outputs'])}")
    if check:
        parity = report["parity"]
        worst = max(item["max_abs_diff"] for item in parity["outputs"].values())
        console.print(f"ONNX Runtime parity: passed (max |diff| {worst:.2e}; atol {parity['atol']}, rtol {parity['rtol']})")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("compare")(compare)
    app.command("predict")(predict)
    app.command("export")(export)
