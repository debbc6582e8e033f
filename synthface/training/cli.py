"""`synthface train`: parse options, build the recipe, call `training.loop.train`, print a summary.

Heavy modules (torch, albumentations) are imported inside the command so `synthface --help`
stays fast. Multi-GPU: `torchrun --nproc_per_node=N -m synthface.cli train ...` (same options).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def train_command(
    recipe: str = typer.Argument(
        ..., help="Recipe YAML file, or the name of a bundled recipe (train/*.yaml): demo_cpu, oam_resnet50, "
                  "oam_resnet50_no_attention, gender_aware, curriculum, ..."
    ),
    data: Optional[str] = typer.Option(
        None, "--data", help="Dataset folder written by `synthface generate`, in any --format (folder, webdataset, parquet), "
                             "or its URL (s3://..., mirrored into the cache); not used with a curriculum recipe, whose phases name their datasets."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder for checkpoints and logs (default: runs/<recipe name>)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override optim.epochs."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override data.batch_size (per GPU/process)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Override data.image_size (pixels, square)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override optim.max_steps: stop after this many steps in total."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Override optim.lr (peak learning rate)."),
    device: Optional[str] = typer.Option(None, "--device", help="Override runtime.device: auto, cpu or cuda."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Override data.workers (loader processes per GPU)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Override runtime.precision: auto, bf16, fp16 or fp32."),
    compile_model: Optional[bool] = typer.Option(
        None, "--compile/--no-compile", help="Override runtime.compile (torch.compile the model and loss)."
    ),
    backbone: Optional[str] = typer.Option(
        None, "--backbone", help="Override model.backbone: resnet50, resnet18 or mobilenet_v3_small."
    ),
    backbone_weights: Optional[str] = typer.Option(
        None, "--backbone-weights", help="Override model.backbone_weights: imagenet, none, or a weights file."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the recipe's seed."),
    set_values: list[str] = typer.Option(
        [], "--set", help="Any recipe key as KEY=VALUE (repeatable), e.g. --set loss.weighting=uncertainty."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its last.pt, exactly where it stopped."
    ),
) -> None:
    """Train the occlusion-aware multi-task model (OAMNet) on a synthface dataset."""
    from rich.console import Console

    from synthface.cliutil import user_errors
    from synthface.training.loop import BEST, train
    from synthface.training.recipe import (
        RecipeError,
        load_recipe,
        parse_set_option,
        resolve_recipe_path,
        with_overrides,
    )

    console = Console(soft_wrap=True)
    with user_errors():
        resolved = load_recipe(resolve_recipe_path(recipe))
        overrides = dict(parse_set_option(text) for text in set_values)
        options = {
            "optim.epochs": epochs, "data.batch_size": batch_size, "data.image_size": image_size,
            "optim.max_steps": max_steps, "optim.lr": lr, "runtime.device": device, "data.workers": workers,
            "runtime.precision": precision, "runtime.compile": compile_model,
            "model.backbone_weights": backbone_weights, "model.backbone": backbone, "seed": seed,
        }
        overrides.update({key: value for key, value in options.items() if value is not None})
        resolved = with_overrides(resolved, overrides)
        if resolved.curriculum and data is not None:
            raise RecipeError(f"{recipe}: the recipe's curriculum names its datasets; drop --data "
                              "(set data.val_data to validate on another dataset)")
        if not resolved.curriculum and data is None:
            raise RecipeError("--data DIR is required: the dataset folder written by `synthface generate`")
        out_dir = out or Path("runs") / resolved.name
        if data is not None:
            from synthface.storage import mirror

            data = mirror(data, "dataset")  # a URL: fetched (only new or changed objects); a path: as it is
        result = train(resolved, data, out_dir, resume=resume, console=console)
    if result.history and result.is_main:
        last = result.history[-1]
        console.print(
            f"done: {out_dir}/{BEST} (val loss {min(h['val_loss'] for h in result.history):.3f}), "
            f"last epoch: age MAE {last['val_age_mae']:.2f}, gender {last['val_gender_acc']:.3f}, "
            f"race {last['val_race_acc']:.3f}, mask {last['val_mask_acc']:.3f}; metrics in {out_dir}/metrics.csv",
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add `train` to the synthface command line."""
    app.command("train", no_args_is_help=True)(train_command)


if __name__ == "__main__":  # pragma: no cover - lets torchrun run this file directly
    standalone = typer.Typer(pretty_exceptions_enable=False)
    standalone.callback()(lambda: None)  # keep `train` as a sub-command name
    register(standalone)
    standalone()
