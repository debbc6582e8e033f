"""`synthface app`: thin; the server is started by `synthface.app.launch`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def app_command(
    port: Optional[int] = typer.Option(None, "--port", "-p", min=1, max=65535, help="Port on 127.0.0.1 (default: a free one)."),
    masks: list[Path] = typer.Option([], "--masks", help="Extra folder of mask definitions (YAML) for the studio; repeatable."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Checkpoint (.pt) the Predict page starts with."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Dataset folder the Dataset browser starts with."),
    device: str = typer.Option("cpu", "--device", help="Device for the Predict model: cpu, auto, cuda or cuda:N."),
    open_browser: bool = typer.Option(False, "--open/--no-open", help="Also open the address in the default web browser."),
) -> None:
    """Local web app: try masks on a photo, run a model on photos, browse a generated dataset."""
    from synthface.app.launch import LaunchError, launch
    from synthface.cliutil import print_error

    try:
        code = launch(port=port, masks=tuple(masks), checkpoint=checkpoint, data=data, device=device, open_browser=open_browser)
    except LaunchError as error:
        print_error(error)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("app")(app_command)
