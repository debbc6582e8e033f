"""End to end on CPU at 64 px: the loss goes down, resume is exact, checkpoints load for inference."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from synthface.dataset import read_metadata, write_metadata
from synthface.taxonomy import GENDERS, MASK_CLASSES, races
from synthface.testing import make_tiny_dataset
from synthface.training import cli as training_cli
from synthface.training.checkpoint import CheckpointError, load_checkpoint, load_for_inference
from synthface.training.loop import train
from synthface.training.recipe import Recipe, with_overrides
from synthface.training.transforms import MEAN, STD

TINY = {
    "model.backbone_weights": "none",
    "data.image_size": 64,
    "data.batch_size": 4,
    "data.workers": 0,
    "optim.warmup_epochs": 0,
    "runtime.log_every_steps": 1,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """4 training and 2 validation images: each ResNet-50 step costs about a second on a slow CPU."""
    root = make_tiny_dataset(tmp_path_factory.mktemp("data"), n_per_split=4, image_size=64)
    table = read_metadata(root)
    keep = (table["split"] == "train") | (table.groupby("split").cumcount() < 2)
    write_metadata(root, table[keep])
    return root


def test_a_few_steps_reduce_the_training_loss(dataset, tmp_path) -> None:
    # Full-batch steps on a fixed set (no augmentation, no dropout): the loss must fall.
    recipe = with_overrides(Recipe(), {
        **TINY, "optim.epochs": 4, "optim.lr": 3e-4, "model.head_dropout": 0.0,
        "augment.hflip": 0.0, "augment.affine.p": 0.0, "augment.color.p": 0.0,
    })
    result = train(recipe, dataset, tmp_path / "run", keep_step_losses=True)
    losses = result.step_losses
    assert len(losses) == 4
    assert losses[-1] < 0.8 * losses[0], losses
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert len(history) == 4 and history["step"].tolist() == [1, 2, 3, 4]
    for column in ("train_loss_age", "train_loss_race", "val_age_mae", "val_gender_acc", "val_mask_acc", "lr"):
        assert history[column].notna().all()
    assert any((tmp_path / "run" / "tb").iterdir())


def _cli(args: list[str]):
    app = typer.Typer()
    app.callback()(lambda: None)
    training_cli.register(app)
    return CliRunner().invoke(app, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    """An uninterrupted 2-step run, and the same run stopped after step 1 (mid-epoch) then resumed.

    The ablation recipe (attention off) also checks that recipe choices reach the checkpoint.
    """
    tmp = tmp_path_factory.mktemp("runs")
    recipe = with_overrides(Recipe(), {**TINY, "data.batch_size": 2, "optim.epochs": 2, "model.attention": False})
    straight = train(with_overrides(recipe, {"optim.max_steps": 2}), dataset, tmp / "straight", keep_step_losses=True)

    recipe_file = tmp / "recipe.yaml"
    recipe_file.write_text((tmp / "straight" / "recipe.yaml").read_text())
    out = tmp / "interrupted"
    first = _cli(["train", str(recipe_file), "--data", str(dataset), "--out", str(out), "--max-steps", "1"])
    assert first.exit_code == 0, first.output
    stopped = load_checkpoint(out / "last.pt")
    again = _cli(["train", str(recipe_file), "--data", str(dataset), "--out", str(out)])
    resumed = train(with_overrides(recipe, {"optim.max_steps": 2}), dataset, out, resume=True, keep_step_losses=True)
    return {"straight": straight, "stopped": stopped, "again": again, "resumed": resumed, "dir": tmp}


def test_resume_gives_the_same_next_step_as_an_uninterrupted_run(runs) -> None:
    # 4 images / batch 2 = 2 steps per epoch; max_steps never changes the schedule, so both
    # runs follow the same learning-rate curve.
    uninterrupted = runs["straight"].step_losses
    assert len(uninterrupted) == 2
    stopped = runs["stopped"]
    assert (stopped["step"], stopped["epoch"], stopped["step_in_epoch"]) == (1, 0, 1)
    assert runs["again"].exit_code == 2 and "--resume" in runs["again"].output  # never overwrite a run silently
    resumed = runs["resumed"].step_losses
    assert len(resumed) == 1
    assert resumed[0] == pytest.approx(uninterrupted[1], rel=1e-5, abs=1e-6)
    assert resumed[0] != pytest.approx(uninterrupted[0], rel=1e-3)  # a different batch: the check has teeth


def test_checkpoint_loads_for_inference_with_everything_evaluation_needs(runs) -> None:
    model, info = load_for_inference(runs["dir"] / "interrupted" / "best.pt")
    assert not model.training and model.attention is None
    assert info["image_size"] == 64 and info["race_taxonomy"] == "utkface5"
    assert info["classes"] == {"gender": list(GENDERS), "race": list(races("utkface5")), "mask": list(MASK_CLASSES)}
    assert info["mean"] == list(MEAN) and info["std"] == list(STD)
    assert info["recipe"]["model"]["attention"] is False and info["attention"] is False
    assert len(info["dataset_fingerprint"]) == 16 and "val_loss" in info["metrics"]
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
    assert out["race"].shape == (1, 5) and out["attention"] is None
    with pytest.raises(CheckpointError, match="not found"):
        load_for_inference(runs["dir"] / "nope.pt")


def test_command_line_reports_dataset_errors_clearly(dataset, tmp_path) -> None:
    result = _cli(["train", "oam_resnet50", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "no samples.parquet or metadata.csv" in result.output
    result = _cli(["train", "oam_resnet50", "--data", str(dataset), "--set", "optim.lerning_rate=1"])
    assert result.exit_code == 2 and "unknown key 'lerning_rate'" in result.output


@pytest.mark.slow
def test_the_same_command_runs_data_parallel_under_torchrun(dataset, tmp_path) -> None:
    """Two CPU processes (gloo): DDP, sharded sampling and validation, one set of files from rank 0."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "synthface.cli", "train", "oam_resnet50", "--data", str(dataset), "--out", str(out),
        "--backbone-weights", "none", "--image-size", "64", "--batch-size", "2", "--workers", "0",
        "--epochs", "1", "--device", "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    state = load_checkpoint(out / "last.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert state["step"] == 1  # 4 images / (2 processes x batch 2)
    assert done.stdout.count("done:") == 1  # only rank 0 reports
    assert len(pd.read_csv(out / "metrics.csv")) == 1
