"""Training inputs: the tiny-dataset fixture, dataset validation, recipes, sampler, loss masking."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from synthface.dataset import DatasetError, read_metadata, validate_for_training, write_metadata
from synthface.testing import make_tiny_dataset
from synthface.training.data import (
    MISSING_CLASS,
    FaceDataset,
    ResumableSampler,
    balance_weights,
    encode_targets,
    load_split,
)
from synthface.training.losses import MultiTaskLoss
from synthface.training.recipe import (
    LossSection,
    Recipe,
    RecipeError,
    load_recipe,
    parse_recipe,
    parse_set_option,
    resolve_recipe_path,
    with_overrides,
)
from synthface.training.transforms import MEAN, STD, eval_transform, normalize_on_device, train_transform


@pytest.fixture(scope="module")
def paired_dataset(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("paired"), n_per_split=4, image_size=64,
                             paired=True, with_occlusion=True)


# ------------------------------------------------------------------ fixture dataset
def test_tiny_dataset_is_valid_and_paired(paired_dataset) -> None:
    table = read_metadata(paired_dataset)
    assert validate_for_training(table, paired_dataset) == "utkface5"
    assert set(table["split"]) == {"train", "val", "test"}
    for _, twins in table.groupby("pair_id"):
        assert sorted(twins["mask"]) == [0, 1]
        assert twins["source_id"].nunique() == 1
        assert twins[["age", "gender", "race"]].drop_duplicates().shape[0] == 1


def test_tiny_dataset_occluder_matches_its_occlusion_map(paired_dataset) -> None:
    table = read_metadata(paired_dataset)
    for _, twins in table.groupby("pair_id"):
        masked = twins[twins["mask"] == 1].iloc[0]
        bare = twins[twins["mask"] == 0].iloc[0]
        occlusion = cv2.imread(str(paired_dataset / masked["occlusion_file"]), cv2.IMREAD_GRAYSCALE)
        covered = cv2.erode((occlusion > 127).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert covered.sum() > 0.05 * covered.size
        assert np.isclose(masked["occluded_fraction"], (occlusion > 127).mean(), atol=0.01)
        rgb = cv2.cvtColor(cv2.imread(str(paired_dataset / masked["file_name"])), cv2.COLOR_BGR2RGB)
        twin = cv2.cvtColor(cv2.imread(str(paired_dataset / bare["file_name"])), cv2.COLOR_BGR2RGB)
        colour = np.array([int(masked["mask_color"][i:i + 2], 16) for i in (1, 3, 5)])
        # Inside the map: the occluder's flat colour (JPEG error aside); the twin there shows the face.
        assert np.abs(rgb[covered].mean(axis=0) - colour).max() < 12
        assert np.abs(rgb[covered].astype(int) - twin[covered]).mean() > 10
        # Outside the map the twins are the same crop.
        outside = occlusion == 0
        assert np.abs(rgb[outside].astype(int) - twin[outside]).mean() < 4


# ------------------------------------------------------------------ dataset validation
def test_missing_column_fails_with_a_clear_message(tmp_path) -> None:
    root = make_tiny_dataset(tmp_path, n_per_split=2)
    write_metadata(root, read_metadata(root).drop(columns=["race"]))
    with pytest.raises(DatasetError, match=r"lacks required column\(s\) \['race'\]"):
        load_split(root, "train")


def test_unknown_race_label_fails_with_a_clear_message(tmp_path) -> None:
    root = make_tiny_dataset(tmp_path, n_per_split=2)
    table = read_metadata(root)
    table.loc[0, "race"] = "martian"
    write_metadata(root, table)
    with pytest.raises(DatasetError, match=r"unknown race label\(s\) \['martian'\] for taxonomy utkface5"):
        load_split(root, "train")


def test_missing_split_and_missing_images_are_reported(tmp_path) -> None:
    root = make_tiny_dataset(tmp_path, n_per_split=2)
    with pytest.raises(DatasetError, match="split 'holdout' has no rows"):
        load_split(root, "holdout")
    (root / read_metadata(root, "train")["file_name"][0]).unlink()
    with pytest.raises(DatasetError, match="do not exist"):
        load_split(root, "train")


def test_labels_become_taxonomy_indices_and_missing_labels_are_marked(tmp_path) -> None:
    root = make_tiny_dataset(tmp_path, n_per_split=3, race_taxonomy="fairface7")
    table, labels = load_split(root, "train")
    assert labels.race[0] == "white" and len(labels.race) == 7
    table.loc[0, "gender"] = None
    table.loc[1, "age"] = np.nan
    targets = encode_targets(table, labels)
    assert targets.gender[0] == MISSING_CLASS
    assert np.isnan(targets.age[1])
    assert targets.race[2] == labels.race.index(table.loc[2, "race"])


# ------------------------------------------------------------------ recipes
def test_bundled_recipes_load_and_differ_only_in_attention() -> None:
    default = load_recipe(resolve_recipe_path("oam_resnet50"))
    ablation = load_recipe(resolve_recipe_path("train/oam_resnet50_no_attention.yaml"))
    assert default.model.attention and not ablation.model.attention
    a, b = default.model_dump(), ablation.model_dump()
    for recipe in (a, b):
        recipe.pop("name"), recipe["model"].pop("attention")
    assert a == b


def test_recipe_schema_rejects_unknown_keys(tmp_path) -> None:
    with pytest.raises(RecipeError, match=r"optim\.lerning_rate: Extra inputs are not permitted"):
        parse_recipe({"optim": {"lerning_rate": 0.1}})
    with pytest.raises(RecipeError, match=r"augmentation: Extra inputs"):
        parse_recipe({"augmentation": {}})
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  attention: maybe\n")
    with pytest.raises(RecipeError, match=rf"{path}.*\n  model\.attention"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="unknown key 'epoch'"):
        with_overrides(Recipe(), {"optim.epoch": 3})
    with pytest.raises(RecipeError, match=r"early_stopping\.metric"):
        parse_recipe({"early_stopping": {"metric": "val_f1"}})


def test_overrides_and_set_values_are_validated() -> None:
    recipe = with_overrides(Recipe(), dict([parse_set_option("loss.lambdas={age: 2.0}"),
                                            parse_set_option("optim.grad_clip=null"), ("optim.lr", 3e-4)]))
    assert recipe.optim.lr == 3e-4
    assert recipe.loss.lambdas == {"age": 2.0, "gender": 1.0, "race": 1.0, "mask": 1.0}
    assert recipe.optim.grad_clip is None
    with pytest.raises(RecipeError, match="greater than or equal to 2"):
        with_overrides(Recipe(), {"data.batch_size": 1})
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        parse_set_option("loss.age")


# ------------------------------------------------------------------ sampler, transforms, loss
def test_sampler_is_epoch_seeded_shards_like_ddp_and_skips_on_resume() -> None:
    sampler = ResumableSampler(10, seed=3)
    sampler.set_position(1)
    epoch1 = [key.index for key in sampler]
    assert sorted(epoch1) == list(range(10))
    sampler.set_position(1, skip=4)
    assert [key.index for key in sampler] == epoch1[4:] and len(sampler) == 6
    sampler.set_position(2)
    assert [key.index for key in sampler] != epoch1
    # Several epochs in one pass, resumed mid-way: epoch 1's rest, then all of epoch 2.
    sampler.set_position(1, skip=7, end_epoch=3)
    assert [key.index for key in sampler] == epoch1[7:] + sampler.epoch_order(2).tolist()
    shards = [ResumableSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    for shard in shards:
        shard.set_position(1)
    seen = [key.index for shard in shards for key in shard]
    assert all(len(shard) == 4 for shard in shards) and set(seen) == set(range(10))
    whole_batches = ResumableSampler(10, seed=3, batch_size=4)
    whole_batches.set_position(0, end_epoch=2)
    assert len(list(whole_batches)) == len(whole_batches) == 16  # 2 batches of 4 per epoch


def test_balanced_sampler_equalises_groups() -> None:
    table = pd.DataFrame({"race": ["white"] * 90 + ["black"] * 10})
    weights = balance_weights(table, ["race"])
    sampler = ResumableSampler(100, seed=0, weights=weights)
    drawn = []
    for epoch in range(20):
        sampler.set_position(epoch)
        drawn += [key.index for key in sampler]
    drawn = np.array(drawn)
    share_black = (drawn >= 90).mean()
    assert 0.4 < share_black < 0.6


def test_augmentation_is_a_function_of_the_sample_key(paired_dataset) -> None:
    from synthface.training.recipe import AugmentSection

    table, labels = load_split(paired_dataset, "train")
    dataset = FaceDataset(paired_dataset, table, labels, train_transform(AugmentSection(), 64))
    key = next(iter(ResumableSampler(len(dataset), seed=5)))
    first, again = dataset[key][0], dataset[key][0]
    assert first.dtype == torch.uint8 and first.shape == (64, 64, 3)
    assert torch.equal(first, again)


def test_device_normalisation_matches_eval_transform(paired_dataset) -> None:
    table, labels = load_split(paired_dataset, "val")
    image = cv2.cvtColor(cv2.imread(str(paired_dataset / table["file_name"][0])), cv2.COLOR_BGR2RGB)
    reference = eval_transform(64)(image=image)["image"]
    on_device = normalize_on_device(torch.from_numpy(image)[None], torch.device("cpu"), channels_last=True)[0]
    assert torch.allclose(reference, on_device, atol=1e-5)
    assert np.allclose(MEAN, (0.485, 0.456, 0.406)) and np.allclose(STD, (0.229, 0.224, 0.225))


def test_loss_ignores_missing_labels_and_weights_tasks() -> None:
    outputs = {"age": torch.tensor([30.0, 50.0]), "gender": torch.tensor([[2.0, 0.0], [0.0, 2.0]]),
               "race": torch.zeros(2, 5), "mask": torch.zeros(2, 2)}
    targets = {"age": torch.tensor([40.0, float("nan")]), "gender": torch.tensor([0, MISSING_CLASS]),
               "race": torch.tensor([MISSING_CLASS, MISSING_CLASS]), "mask": torch.tensor([1, 0])}
    loss = MultiTaskLoss(LossSection(age="l1", age_scale=10.0, lambdas={"age": 2.0, "race": 0.5}))
    terms = loss(outputs, targets)
    assert terms["age"].item() == pytest.approx(1.0)  # |30 - 40| / 10, NaN row ignored
    assert terms["gender"].item() == pytest.approx(torch.log(1 + torch.exp(torch.tensor(-2.0))).item())
    assert terms["race"].item() == 0.0
    assert terms["mask"].item() == pytest.approx(np.log(2))
    expected = 2.0 * terms["age"] + terms["gender"] + 0.5 * terms["race"] + terms["mask"]
    assert terms["total"].item() == pytest.approx(expected.item())
    uncertainty = MultiTaskLoss(LossSection(weighting="uncertainty"))
    assert uncertainty(outputs, targets)["total"].requires_grad
    assert uncertainty.log_vars.shape == (4,)
