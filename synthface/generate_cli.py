"""`synthface generate` and `synthface merge`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from synthface.cliutil import console, user_errors

# synthface.formats.DEFAULT_PACK_SIZE, spelled out: importing formats (pandas) would slow `synthface --help`.
DEFAULT_PACK_SIZE = "500MB"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise typer.BadParameter(f"expected i/n such as 1/4, got {text!r}") from None
    if not 1 <= index <= count:
        raise typer.BadParameter(f"shard {text}: need 1 <= i <= n")
    return index, count


def print_splits(report: dict, shares: dict[str, float]) -> None:
    """Samples per split, and in plain words any split that is empty or short: training needs a
    validation split and evaluation a test split, so this must not hide in report.md."""
    counts = report["split_counts"]
    console.print("splits: " + ", ".join(f"{split} {count}" for split, count in counts.items()))
    for note in report["notes"]:
        console.print(f"  [yellow]note[/] {escape(note)}")
    noted = " ".join(report["notes"])
    for split, count in counts.items():
        if count == 0 and shares.get(split, 0) > 0 and f"the {split} split" not in noted:
            console.print(f"  [yellow]note[/] the {split} split is empty")


def check_executor(name: str) -> None:
    """--executor is one of the registered executors (a usage error, before any work)."""
    from synthface.executors import EXECUTORS

    if name not in EXECUTORS:
        raise typer.BadParameter(f"expected one of {', '.join(EXECUTORS)}, got {name!r}", param_hint="--executor")


def generate(
    scenario: str = typer.Argument(..., help="Scenario YAML file, or the name of a bundled one (all_masked, no_mask, mixed_50, ...)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder, or an fsspec URL (s3://bucket/prefix, gs://...) written in --staging and uploaded when the run finishes. Default: out/<scenario name>."),
    n_samples: Optional[int] = typer.Option(None, "--n-samples", "-n", help="Number of samples; overrides the scenario's n_samples."),
    source: list[str] = typer.Option([], "--source", help="Face pool as KIND:PATH (utkface, fairface, table) or 'demo'; repeatable; replaces the scenario's sources."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed; overrides the scenario's seed."),
    workers: int = typer.Option(0, "--workers", "-w", min=0, max=256, help="Worker processes for detection and rendering; 0 = all cores."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Detect and plan, print the balance report, render nothing."),
    plan_only: bool = typer.Option(False, "--plan-only", help="Detect and plan, write the plan to OUT/.synthface-run/plan.parquet, render nothing; render it later with --resume."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out without redoing finished samples."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete what a previous run left in --out and start again."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Render only slice i of n of the plan (e.g. 2/4); join with `synthface merge`."),
    masks: list[Path] = typer.Option([], "--masks", help="Extra folder of mask definitions (YAML); repeatable."),
    landmarker: Optional[Path] = typer.Option(None, "--landmarker", help="Face landmarker .task bundle (default: bundled; env SYNTHFACE_LANDMARKER)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Landmark cache folder (default: ~/.cache/synthface/landmarks)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    output_format: str = typer.Option("folder", "--format", help="Output format: folder (one file per image), webdataset (tar shards) or parquet."),
    pack_size: str = typer.Option(DEFAULT_PACK_SIZE, "--pack-size", help="Per webdataset/parquet file: a number of samples (1000) or a size (500MB, 1GB)."),
    executor: str = typer.Option("local", "--executor", help="Where detection and rendering run: local (process pool) or ray (Ray actors; pip install -e '.[cluster]')."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="--executor ray: 'auto' or ray://HOST:PORT of a running cluster; default: a Ray instance of this run with --workers CPUs."),
    landmarks: Optional[Path] = typer.Option(None, "--landmarks", help="Shared landmark table folder (from `synthface detect`), keyed by image content; used instead of --cache-dir."),
    staging: Optional[Path] = typer.Option(None, "--staging", help="--out URL: local folder the run is written in before the upload (kept for --resume). Default: one per URL in the synthface cache."),
) -> None:
    """Build a balanced synthetic masked-face dataset from a scenario."""

    from synthface.generate import GenerateOptions, run_generate
    from synthface.maskfit import MaskLibrary
    from synthface.paths import inside, is_url
    from synthface.report import render_markdown
    from synthface.scenario import load_scenario
    from synthface.sources.base import parse_source_arg

    check_executor(executor)
    if plan_only and dry_run:
        raise typer.BadParameter("--dry-run writes nothing; --plan-only writes the plan: give one", param_hint="--plan-only")
    if ray_address and executor != "ray":
        raise typer.BadParameter("--ray-address is for --executor ray", param_hint="--ray-address")
    if staging is not None and not (out and is_url(out)):
        raise typer.BadParameter("--staging is the local folder of an --out URL (s3://...)", param_hint="--staging")
    target = out  # known once the scenario is loaded; a Ctrl-C before that has nothing to keep
    try:
        with user_errors():
            overrides = {"n_samples": n_samples, "seed": seed}
            if source:
                overrides["sources"] = [parse_source_arg(text).model_dump(mode="json", exclude_none=True) for text in source]
            library = MaskLibrary.load(masks)
            loaded, path = load_scenario(scenario, overrides, mask_library=library)
            target = out or inside(Path("out"), loaded.name)
            options = GenerateOptions(
                out=target, workers=workers, dry_run=dry_run, plan_only=plan_only, resume=resume, overwrite=overwrite,
                shard=parse_shard(shard), mask_dirs=tuple(masks), landmarker=landmarker, cache_dir=cache_dir, quiet=quiet,
                output_format=output_format, pack_size=pack_size,
                executor=executor, ray_address=ray_address, landmark_table=landmarks, staging=staging,
            )
            console.print(f"scenario [bold]{escape(loaded.name)}[/] from {escape(str(path))}")
            result = run_generate(loaded, options, library)
    except KeyboardInterrupt:
        from synthface.generate import staged_location

        kept = staged_location(target, staging)[1] if target is not None else None
        if kept is not None and kept.exists():
            console.print(f"[yellow]interrupted:[/] finished samples are kept in {escape(str(kept))}; "
                          "run the same command with --resume to continue")
        else:
            console.print("[yellow]interrupted[/] before anything was written")
        raise typer.Exit(130) from None
    if dry_run:
        from synthface.terminal import print_markdown

        print_markdown(console, render_markdown(result.report))  # prose wraps, tables and ids are never cut
        return
    report = result.report
    if plan_only:
        from synthface.generate import RUN_DIR
        from synthface.plan import PLAN_FILE

        console.print(f"[green]planned[/] {len(result.plan.samples)} samples (plan {result.plan.fingerprint()}) in "
                      f"{escape(result.location.rstrip('/'))}/{RUN_DIR}/{PLAN_FILE}; render them with the same command and --resume instead of --plan-only")
        print_splits(report, loaded.splits.shares())
        return
    console.print(
        f"[green]wrote[/] {report['written']['images']} images to {escape(result.location)} "
        f"({result.rendered} rendered, {result.reused} kept from an earlier run); "
        f"{report['fit_failures']['count']} fit failures; {len(report['shortfall'])} strata below target; "
        f"report: {escape(result.location.rstrip('/'))}/report.md"
    )
    print_splits(report, loaded.splits.shares())
    if report.get("uses_demo_pool"):
        console.print("[yellow]note:[/] the bundled demo pool has two faces and cannot meet demographic targets; "
                      "use --source utkface:PATH (or fairface/table) for a real dataset")
    for line in report["unmet_targets"][:8]:
        console.print(f"  [yellow]unmet[/] {escape(line)}")
    if len(report["unmet_targets"]) > 8:
        console.print(f"  ... {len(report['unmet_targets']) - 8} more in report.md")


def merge(
    shards: list[str] = typer.Argument(..., help="Output folders (or URLs) of `synthface generate --shard i/n` runs of one plan."),
    out: str = typer.Option(..., "--out", "-o", help="Folder (or fsspec URL, staged locally and uploaded) for the merged dataset."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
    output_format: str = typer.Option("folder", "--format", help="Format of the merged dataset: folder, webdataset or parquet (the shards may be in any)."),
    pack_size: str = typer.Option(DEFAULT_PACK_SIZE, "--pack-size", help="Per webdataset/parquet file: a number of samples (1000) or a size (500MB, 1GB)."),
) -> None:
    """Join shards of one generation plan into one dataset."""
    from synthface.generate import merge_shards

    with user_errors():
        table = merge_shards(list(shards), out, overwrite, output_format, pack_size, quiet=False)
    console.print(f"[green]merged[/] {len(shards)} shards: {len(table)} images in {out}")


def detect(
    pools: list[str] = typer.Argument(..., help="Face pools as KIND:PATH (utkface, fairface, table) or 'demo', as for --source."),
    cache: Path = typer.Option(..., "--cache", help="Folder of the landmark table (landmarks.parquet); created if missing."),
    workers: int = typer.Option(0, "--workers", "-w", min=0, max=256, help="Worker processes; 0 = all cores (all CPUs of the Ray cluster)."),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or ray (Ray actors)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="--executor ray: 'auto' or ray://HOST:PORT; default: a Ray instance of this run."),
    landmarker: Optional[Path] = typer.Option(None, "--landmarker", help="Face landmarker .task bundle (default: bundled; env SYNTHFACE_LANDMARKER)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Find the landmarks of every image of the pools, once, into a table keyed by image content."""
    from synthface.executors import make_executor
    from synthface.landmark_table import LandmarkTable
    from synthface.landmarks import resolve_model_path
    from synthface.pool import detect_pool
    from synthface.sources.base import parse_source_arg

    check_executor(executor)
    try:
        specs = [parse_source_arg(text) for text in pools]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="POOLS") from None
    with user_errors():
        model_path = resolve_model_path(landmarker)
        table = LandmarkTable(cache, model_path)
        runner = make_executor(executor, workers, ray_address)
        try:
            counts = detect_pool(specs, table, runner, model_path, quiet)
        finally:
            runner.close()
    console.print(f"[green]landmarks[/] of {counts['images']} images ({counts['faces']} with a face, {counts['detected']} detected now, "
                  f"{counts['skipped']} inputs skipped by the source): {counts['rows']} rows in {escape(str(cache / 'landmarks.parquet'))}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("detect")(detect)
    app.command("merge")(merge)
