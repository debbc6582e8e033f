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
) -> None:
    """Print every mask and confuser type with its wear styles, material, straps, palettes and patterns."""
    from rich.console import Console
    from rich.table import Table

    from synthface.maskfit.definitions import MaskDefinitionError, MaskLibrary

    try:
        library = MaskLibrary.load(masks or ())
    except MaskDefinitionError as error:
        raise typer.BadParameter(str(error)) from None
    table = Table(title="synthface mask library")
    for column in ("type", "label", "wear styles", "material / straps", "palettes", "patterns"):
        table.add_column(column, overflow="fold")
    for definition in library:
        label = "mask=1" if definition.is_mask else f"mask=0, occluder={definition.name}"
        patterns = ", ".join(f"{name} {weight:g}" for name, weight in definition.patterns.items())
        table.add_row(definition.name, label, ", ".join(definition.wear_styles),
                      f"{definition.material.kind} / {definition.straps.kind}", ", ".join(definition.palettes), patterns)
    console = Console(soft_wrap=True)
    console.print(table)
    for definition in library:
        console.print(f"[bold]{definition.name}[/bold]: {definition.description} [dim]({definition.source})[/dim]")


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
