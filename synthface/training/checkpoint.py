"""Checkpoints: written atomically, loaded for resuming or for inference.

A checkpoint is one `torch.save` dict of tensors and plain Python values only (so it loads
with `weights_only=True`): model, optimizer, scheduler, grad-scaler and loss states, the
position in training (epoch, step, step within the epoch), per-process RNG states, the
resolved recipe, label maps, normalisation, image size and the dataset fingerprint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, TypedDict

import torch

from synthface.dataset import atomic_file
from synthface.errors import UserError
from synthface.paths import file_problem
from synthface.training.model import OAMNet

FORMAT_VERSION = 1


class InferenceInfo(TypedDict):
    """What evaluation and prediction need besides the weights."""

    image_size: int
    race_taxonomy: str
    classes: dict[str, list[str]]  # "gender" / "race" / "mask" -> class names in logit order
    mean: list[float]
    std: list[float]
    recipe: dict[str, Any]
    dataset_fingerprint: str
    attention: bool
    backbone: str
    gender_aware_age: bool
    mask_target: str  # "binary" (unmasked/masked) or "state" (none/correct/incorrect)
    validation: dict  # {"data", "split", "held_out", "faces"}: the faces the model was validated on
    epoch: int
    step: int
    metrics: dict[str, float]  # validation metrics of this checkpoint's epoch
    train_faces: list[str]  # source_id of every face in the training split ([] for older checkpoints)


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file is missing, unreadable or from an incompatible run."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save into a temporary file beside `path`, then rename: readers never see half a file."""
    with atomic_file(Path(path)) as handle:
        torch.save({"format_version": FORMAT_VERSION, **state}, handle)
        handle.flush()
        os.fsync(handle.fileno())


def link_checkpoint(source: Path, target: Path) -> None:
    """Make `target` hold the same bytes as `source` atomically, by a hard link when the disk allows.

    `save_checkpoint` always replaces a file with a new one, so a later save of `source`
    never changes what `target` holds.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(source, tmp)
        except OSError:  # no hard links here (some network or FAT disks): copy instead
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict; CheckpointError says what is wrong with the file."""
    path = Path(path)
    if problem := file_problem(path, "a checkpoint file (.pt) written by synthface train"):
        raise CheckpointError(problem)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable synthface checkpoint ({error})") from error
    if not isinstance(state, dict) or "model" not in state or "recipe" not in state:
        raise CheckpointError(f"{path}: not a synthface training checkpoint (no 'model'/'recipe' entries)")
    return state


def build_model(recipe: dict[str, Any], num_races: int, mask_classes: int = 2) -> OAMNet:
    """An OAMNet shaped as the recipe says, with no pretrained weights (they come from a checkpoint).

    Keys added after the first release (backbone, gender_aware_age) default to what older
    checkpoints were trained with."""
    model = recipe["model"]
    return OAMNet(
        num_races=num_races,
        attention=model["attention"],
        backbone_weights="none",
        head_dropout=model["head_dropout"],
        age_max=model["age_max"],
        backbone=model.get("backbone", "resnet50"),
        gender_aware_age=model.get("gender_aware_age", False),
        mask_classes=mask_classes,
    )


def load_for_inference(path: Path | str, device: str | torch.device = "cpu") -> tuple[OAMNet, InferenceInfo]:
    """The trained model (eval mode, on `device`) and what is needed to feed it and read its outputs."""
    state = load_checkpoint(path, device="cpu")
    classes = state["classes"]
    model = build_model(state["recipe"], num_races=len(classes["race"]), mask_classes=len(classes["mask"]))
    model.load_state_dict(state["model"])
    model.to(device).eval()
    info = InferenceInfo(
        image_size=int(state["image_size"]),
        race_taxonomy=state["race_taxonomy"],
        classes={k: list(v) for k, v in classes.items()},
        mean=list(state["mean"]),
        std=list(state["std"]),
        recipe=state["recipe"],
        dataset_fingerprint=state["dataset_fingerprint"],
        attention=bool(state["recipe"]["model"]["attention"]),
        backbone=state["recipe"]["model"].get("backbone", "resnet50"),
        gender_aware_age=bool(state["recipe"]["model"].get("gender_aware_age", False)),
        mask_target="state" if len(classes["mask"]) == 3 else "binary",
        validation=dict(state.get("validation") or {}),
        epoch=int(state["epoch"]),
        step=int(state["step"]),
        metrics=dict(state.get("metrics", {})),
        train_faces=list(state.get("train_faces", [])),
    )
    return model, info
