"""`synthface scenarios list` and `synthface export-layout`."""

from __future__ import annotations

from pathlib import Path

import typer

scenarios_app = typer.Typer(help="Bundled scenarios: list them.", no_args_is_help=True)

JSON_HELP = "Print JSON (a list of objects) on stdout instead of a table, for scripts."


@scenarios_app.command("list")
def list_scenarios(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every bundled scenario with its size, mask share and description (use the name with `synthface generate`)."""
    from rich.console import Console

    from synthface.cliutil import user_errors
    from synthface.paths import bundled_dir
    from synthface.scenario import load_scenario
    from synthface.terminal import print_json, print_table, rows_table

    rows = []
    with user_errors():
        for file in sorted(bundled_dir("scenarios").glob("*.yaml")):
            scenario, _ = load_scenario(file)
            rows.append({"name": file.stem, "n_samples": scenario.n_samples, "mask_probability": scenario.mask.probability,
                         "mask_types": sorted(scenario.mask.types), "description": scenario.description, "file": str(file)})
    if as_json:
        print_json(rows)
        return
    shown = [{**row, "mask_types": ", ".join(row["mask_types"]), "mask_probability": f"{row['mask_probability']:g}"}
             for row in rows]
    print_table(Console(soft_wrap=True), rows_table(shown, ("name", "n_samples", "mask_probability", "mask_types", "description"),
                                                    title="bundled scenarios"))


def export_layout_command(
    dataset: Path = typer.Argument(..., help="Dataset folder written by `synthface generate`."),
    by: str = typer.Option("mask", "--by", help="Label of the class folders: mask (mask / no_mask), mask_state, gender, race, "
                                                "age_bin or mask_type."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write <split>/<label>/<file> into."),
    copy: bool = typer.Option(False, "--copy", help="Copy the images instead of linking them (relative symlinks by default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the split folders of a non-empty --out."),
) -> None:
    """Lay a dataset out as split/label class folders for torchvision ImageFolder or Keras image_dataset_from_directory."""
    from synthface.cliutil import console, user_errors
    from synthface.export_layout import LayoutOptions, export_layout

    with user_errors():
        result = export_layout(dataset, out, LayoutOptions(by=by, copy=copy, overwrite=overwrite))
    for split, labels in result.counts.items():
        console.print(f"{split}: " + ", ".join(f"{label} {n}" for label, n in sorted(labels.items())), highlight=False)
    console.print(f"[green]wrote[/] {result.files} {'copies' if copy else 'links'} to {out} (map back to samples: "
                  f"{out / 'layout.csv'})", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(scenarios_app, name="scenarios")
    app.command("export-layout")(export_layout_command)
