"""`synthface masks ...`: list the mask library, render a preview gallery, import photo templates."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

masks_app = typer.Typer(help="Mask types: list them, preview them on demo faces, import photo templates.",
                        no_args_is_help=True)

MASKS_OPTION_HELP = "Extra folder of mask definitions (YAML); repeatable. Replaces bundled types of the same name."


def register(app: typer.Typer) -> None:
    """Add the `masks` command group to the main app."""
    app.add_typer(masks_app, name="masks")


@masks_app.command("list")
def list_command(
    masks: Optional[List[Path]] = typer.Option(None, "--masks", help=MASKS_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (a list of objects) on stdout instead of a table, for scripts."),
) -> None:
    """Print every mask and confuser type with its wear styles, material, straps, palettes and patterns."""
    from rich.console import Console

    from synthface.maskfit.definitions import MaskDefinitionError, MaskLibrary
    from synthface.terminal import print_json, print_table, rows_table

    try:
        library = MaskLibrary.load(masks or ())
    except MaskDefinitionError as error:
        raise typer.BadParameter(str(error)) from None
    rows = [{"type": d.name, "is_mask": d.is_mask, "label": "mask=1" if d.is_mask else f"mask=0, occluder={d.name}",
             "wear_styles": list(d.wear_styles), "material": d.material.kind, "straps": d.straps.kind,
             "palettes": list(d.palettes), "patterns": dict(d.patterns), "description": d.description, "source": str(d.source)}
            for d in library]
    if as_json:
        print_json(rows)
        return
    shown = [{**row, "wear styles": ", ".join(row["wear_styles"]), "material / straps": f"{row['material']} / {row['straps']}",
              "palettes": ", ".join(row["palettes"]), "patterns": ", ".join(f"{n} {w:g}" for n, w in row["patterns"].items())}
             for row in rows]
    console = Console(soft_wrap=True)
    print_table(console, rows_table(shown, ("type", "label", "wear styles", "material / straps", "palettes", "patterns"),
                                    title="synthface mask library"))
    for row in rows:
        console.print(f"[bold]{row['type']}[/bold]: {row['description']} [dim]({row['source']})[/dim]", highlight=False)


@masks_app.command("preview")
def preview_command(
    out: Path = typer.Option(Path("masks_preview.jpg"), "--out", "-o", help="Gallery image to write (.jpg or .png)."),
    masks: Optional[List[Path]] = typer.Option(None, "--masks", help=MASKS_OPTION_HELP),
    types: Optional[List[str]] = typer.Option(None, "--type", "-t", help="Only these types (repeatable); default: all."),
    size: int = typer.Option(160, min=64, max=512, help="Side of each face tile in pixels."),
    seed: int = typer.Option(0, help="Seed for colours and patterns."),
) -> None:
    """Render every type and wear style on the demo faces at three head poses, as one gallery image."""
    import cv2
    from rich.console import Console

    from synthface.maskfit.definitions import MaskDefinitionError, MaskLibrary
    from synthface.maskfit.preview import render_gallery

    try:
        library = MaskLibrary.load(masks or ())
        names = types or library.names()
        definitions = [library.get(name) for name in names]
    except (MaskDefinitionError, KeyError) as error:
        raise typer.BadParameter(str(error)) from None
    gallery = render_gallery(definitions, size=size, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(gallery, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise typer.BadParameter(f"could not write {out} (use a .jpg or .png name)")
    Console(soft_wrap=True).print(f"wrote {out} ({gallery.shape[1]}x{gallery.shape[0]} px, {len(definitions)} types)")


@masks_app.command("import")
def import_command(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, help="Photo of a mask: RGBA PNG, or any image on a uniform background."),
    name: Optional[str] = typer.Option(None, "--name", help="Type name (default: the image's file name)."),
    like: str = typer.Option("cloth", "--type", help="Bundled type whose outline, wear styles, straps and palettes the template takes (surgical, n95, kn95, cloth...)."),
    out: Path = typer.Option(Path("masks"), "--out", help="Folder to write <name>.png, <name>.yaml and <name>_preview.jpg into; use it with --masks."),
    recolor: bool = typer.Option(True, "--recolor/--no-recolor", help="Let scenarios recolour the template (hue shift), or keep its colours."),
    size: int = typer.Option(160, min=64, max=512, help="Side of each face tile of the preview, pixels."),
) -> None:
    """Turn a mask photo into a mask type: cut it out, estimate its anchors, write a definition and a preview."""
    import cv2
    from rich.console import Console

    from synthface.maskfit.definitions import MaskDefinitionError, MaskLibrary
    from synthface.maskfit.photo import PhotoTemplateError, import_template
    from synthface.maskfit.preview import render_gallery

    type_name = name or image.stem.replace(" ", "_").replace("-", "_").lower()
    try:
        reference = MaskLibrary.load().get(like)
        yaml_file, png = import_template(image, type_name, reference, out, recolor)
        definition = MaskLibrary.load([out]).get(type_name)
    except (PhotoTemplateError, MaskDefinitionError, KeyError) as error:
        raise typer.BadParameter(str(error)) from None
    preview = out / f"{type_name}_preview.jpg"
    gallery = render_gallery([definition], size=size)
    cv2.imwrite(str(preview), cv2.cvtColor(gallery, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    console = Console(soft_wrap=True)
    console.print(f"wrote {yaml_file}, {png} and the preview {preview}")
    console.print(f"use it with: synthface generate SCENARIO --masks {out}  (mask.types: {{{type_name}: 1.0}})")
