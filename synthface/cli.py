"""The `synthface` command line. Thin: parses options, calls the modules, prints.

Each area registers its own commands (heavy imports such as torch happen inside the
command functions, so `synthface --help` stays fast).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="synthface",
    help="Balanced synthetic masked-face datasets and occlusion-robust face-attribute models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)



@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", help="Show MediaPipe / TensorFlow Lite log lines (hidden by default)."),
) -> None:
    """Balanced synthetic masked-face datasets and occlusion-robust face-attribute models."""
    from synthface.cliutil import set_verbose

    set_verbose(verbose)


# Registration order = order in `synthface --help`.
from synthface.generation import cli as generate_cli  # noqa: E402

generate_cli.register(app)
from synthface import dataset_cli  # noqa: E402

dataset_cli.register(app)
from synthface.maskfit import cli as masks_cli  # noqa: E402

masks_cli.register(app)
from synthface.training import cli as training_cli  # noqa: E402

training_cli.register(app)
from synthface.evaluation import cli as evaluation_cli  # noqa: E402

evaluation_cli.register(app)
from synthface.app import cli as app_cli  # noqa: E402

app_cli.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
