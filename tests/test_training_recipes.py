"""Recipe options, each trained for a few full-batch steps on tiny inputs: the loss must fall,
and what the option changes must show in the log and the checkpoint. Plus: every bundled
recipe validates, and a dataset without a val split is validated on held-out source faces."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from synthface.dataset import read_metadata, write_metadata
from synthface.paths import bundled_dir
from synthface.testing import make_tiny_dataset
from synthface.training.checkpoint import load_checkpoint, load_for_inference
from synthface.training.data import build_data
from synthface.training.loop import train
from synthface.training.recipe import Recipe, load_recipe, with_overrides

# Full-batch steps on 4 fixed images, no augmentation or dropout: a light trunk at 32 px.
TINY = {
    "model.backbone": "resnet18", "model.backbone_weights": "none", "model.head_dropout": 0.0,
    "data.image_size": 32, "data.batch_size": 4, "data.workers": 0,
    "augment.hflip": 0.0, "augment.affine.p": 0.0, "augment.color.p": 0.0,
    "optim.epochs": 5, "optim.lr": 1e-3, "optim.warmup_epochs": 0, "runtime.log_every_steps": 1,
}


def _tiny(root, seed: int = 0):
    """4 train / 2 val rows with a mask_state column as generated datasets have it."""
    root = make_tiny_dataset(root, n_per_split=4, image_size=32, seed=seed)
    table = read_metadata(root)
    table = table[(table["split"] == "train") | (table.groupby("split").cumcount() < 2)].reset_index(drop=True)
    states = np.where(table["mask"] == 1, "correct", "none").astype(object)
    states[1] = "incorrect"
    table["mask_state"] = states
    write_metadata(root, table)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _tiny(tmp_path_factory.mktemp("data"))


def _run(recipe: Recipe, data, out):
    log = io.StringIO()
    result = train(recipe, data, out, console=Console(file=log, width=200), keep_step_losses=True)
    return result, log.getvalue()


def _falls(losses: list[float]) -> bool:
    return float(np.mean(losses[-2:])) < 0.9 * float(np.mean(losses[:2]))


@pytest.mark.parametrize("recipe_file", sorted(bundled_dir("train").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_recipe_validates(recipe_file) -> None:
    recipe = load_recipe(recipe_file)
    assert recipe.name == recipe_file.stem


@pytest.mark.parametrize("name, overrides", [
    ("label_smoothing", {"loss.label_smoothing": 0.1}),
    ("mixup", {"augment.mix.kind": "mixup", "augment.mix.alpha": 0.4}),
    ("cutmix", {"augment.mix.kind": "cutmix", "augment.mix.alpha": 1.0}),
    ("balanced", {"data.balance_by": ["age_bin", "gender", "race", "mask_state"]}),
    ("mobilenet", {"model.backbone": "mobilenet_v3_small"}),
])
def test_recipe_option_trains_and_reduces_the_loss(dataset, tmp_path, name, overrides) -> None:
    result, log = _run(with_overrides(Recipe(), {**TINY, **overrides}), dataset, tmp_path / name)
    assert _falls(result.step_losses), result.step_losses
    if name == "balanced":
        assert "balanced sampling over" in log


def test_gender_aware_age_is_in_the_log_and_the_checkpoint(dataset, tmp_path) -> None:
    result, log = _run(with_overrides(Recipe(), {**TINY, "model.gender_aware_age": True}), dataset, tmp_path / "ga")
    assert _falls(result.step_losses), result.step_losses
    assert "age head gender-aware (gender probabilities injected)" in log
    state = load_checkpoint(tmp_path / "ga" / "best.pt")
    assert state["architecture"]["gender_aware_age"] is True
    assert state["model"]["heads.age.0.weight"].shape[1] == 512 + 2
    model, info = load_for_inference(tmp_path / "ga" / "best.pt")
    assert model.gender_aware_age and info["gender_aware_age"]


def test_mask_state_is_the_target_when_the_dataset_has_it(dataset, tmp_path) -> None:
    result, log = _run(with_overrides(Recipe(), TINY), dataset, tmp_path / "auto")
    assert "mask head target state (none/correct/incorrect)" in log
    assert load_checkpoint(tmp_path / "auto" / "best.pt")["classes"]["mask"] == ["none", "correct", "incorrect"]
    assert _falls(result.step_losses)
    _run(with_overrides(Recipe(), {**TINY, "optim.epochs": 1, "model.mask_target": "binary"}), dataset, tmp_path / "bin")
    assert load_checkpoint(tmp_path / "bin" / "best.pt")["classes"]["mask"] == ["unmasked", "masked"]


def test_curriculum_runs_its_phases_in_order_and_logs_them(tmp_path) -> None:
    first, second = _tiny(tmp_path / "no_mask", seed=1), _tiny(tmp_path / "masked", seed=2)
    recipe = with_overrides(Recipe(), TINY).model_dump(mode="json")
    recipe["optim"].pop("epochs")
    recipe["curriculum"] = [{"name": "clean", "data": str(first), "epochs": 3}, {"data": str(second), "epochs": 3}]
    recipe = Recipe.model_validate(recipe)
    assert recipe.optim.epochs == 6
    result, log = _run(recipe, None, tmp_path / "run")
    assert "phase 1/2 'clean'" in log and "phase 2/2 'masked'" in log and log.index("phase 1/2") < log.index("phase 2/2")
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert history["phase"].tolist() == [1, 1, 1, 2, 2, 2]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["phase"] == 2
    # Each phase is learned: the loss falls within it.
    assert _falls(result.step_losses[:3]) and _falls(result.step_losses[3:]), result.step_losses


def test_no_val_split_holds_out_whole_source_faces(tmp_path) -> None:
    root = make_tiny_dataset(tmp_path / "data", n_per_split=6, image_size=32, paired=True)
    table = read_metadata(root)
    write_metadata(root, table.assign(split="train"))  # like the demo dataset: one split only
    recipe = with_overrides(Recipe(), {**TINY, "data.val_holdout": 0.3})
    data = build_data(recipe, root)
    val_faces = set(data.validation["faces"])
    assert data.validation["held_out"] and len(val_faces) == round(0.3 * table["source_id"].nunique())
    assert not val_faces & set(data.train_table["source_id"])  # twins go together: no face on both sides
    assert len(data.train_table) + len(data.val_loader.dataset) == len(table)
    assert any("holding out" in note for note in data.notes)
    with pytest.raises(Exception, match="val_holdout is 0"):
        build_data(with_overrides(recipe, {"data.val_holdout": 0.0}), root)
