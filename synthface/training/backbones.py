"""Backbones: the convolutional trunk under OAMNet's attention and heads, and their pretrained weights.

`build_trunk(name)` returns a torchvision network cut before its pooling and classifier, as an
`nn.Sequential` whose parameter names are torchvision's (ResNets: `conv1`, `layer1`...;
MobileNetV3: the indices of `features`), so a torchvision or timm state dict loads by name.

`load_trunk_weights(trunk, name, weights)` fills it from `imagenet` (torchvision's download,
cached under ~/.cache/torch) or a local file; any failure is a `BackboneWeightsError` that says
how to proceed. There is no silent fallback to random weights.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision import models

from synthface.errors import UserError

RESNET_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
# Wrappers that training scripts commonly put around a state dict's keys.
_KEY_PREFIXES = ("module.", "model.", "backbone.", "encoder.")


class BackboneWeightsError(UserError, RuntimeError):
    """The requested backbone weights could not be loaded; the message says how to fix it."""


@dataclass(frozen=True)
class Backbone:
    """One trunk choice: its torchvision constructor, output channels and ImageNet weights."""

    name: str
    channels: int  # channels of the last feature map (what attention and the heads see)
    build: Callable[..., nn.Module]
    weights: models.WeightsEnum
    note: str

    @property
    def url(self) -> str:
        return self.weights.url

    @property
    def file_name(self) -> str:
        return self.weights.url.rsplit("/", 1)[-1]


BACKBONES: dict[str, Backbone] = {
    "resnet50": Backbone("resnet50", 2048, models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2,
                         "the paper's trunk (25.6 M parameters with the heads; a GPU model)"),
    "resnet18": Backbone("resnet18", 512, models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1,
                         "light ResNet for CPUs and quick experiments (about 4x fewer operations)"),
    "mobilenet_v3_small": Backbone("mobilenet_v3_small", 576, models.mobilenet_v3_small,
                                   models.MobileNet_V3_Small_Weights.IMAGENET1K_V1,
                                   "the lightest: for CPU training and phones"),
}


def backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneWeightsError(f"unknown backbone {name!r}; expected one of {list(BACKBONES)}") from None


def build_trunk(name: str) -> tuple[nn.Sequential, int]:
    """The randomly initialised trunk of `name` and its output channels."""
    spec = backbone(name)
    network = spec.build(weights=None)
    if name.startswith("resnet"):
        trunk = nn.Sequential(OrderedDict((part, getattr(network, part)) for part in RESNET_PARTS))
    else:  # MobileNetV3: `features` ends with the 1x1 conv to 576 channels, before pooling
        trunk = network.features
    return trunk, spec.channels


def _strip_common_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _KEY_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            return {key[len(prefix):]: value for key, value in state.items()}
    return state


def trunk_state(state: dict, name: str) -> dict[str, torch.Tensor]:
    """Keys of a torchvision / timm / synthface state dict renamed to the trunk's own names."""
    if isinstance(state.get("model"), dict) and "recipe" in state:  # a synthface checkpoint: reuse its trunk
        return {k.removeprefix("trunk."): v for k, v in state["model"].items() if k.startswith("trunk.")}
    if isinstance(state.get("state_dict"), dict):  # Lightning / many training scripts
        state = state["state_dict"]
    state = _strip_common_prefix(dict(state))
    if name.startswith("resnet"):
        # torchvision and timm ResNets share these names; drop the classifier.
        return {k: v for k, v in state.items() if k.split(".", 1)[0] in RESNET_PARTS}
    return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}


def fetch_hint(name: str) -> str:
    """How to get a local weights file for `name` while online, for error messages and docs."""
    spec = backbone(name)
    return (f"while online, download {spec.url} (e.g. `curl -LO {spec.url}`) and set "
            f"`model.backbone_weights: /path/to/{spec.file_name}`, or train from scratch with "
            "`model.backbone_weights: none`")


def imagenet_state(name: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for `name` (from ~/.cache/torch, else downloaded)."""
    spec = backbone(name)
    try:
        return spec.weights.get_state_dict(progress=True)
    except Exception as error:  # no network, a proxy, or a truncated cached file
        raise BackboneWeightsError(
            f"could not fetch torchvision's ImageNet {name} weights ({spec.url}): {error}. "
            f"Either run once with network access (they are cached under ~/.cache/torch/hub/checkpoints), "
            f"or {fetch_hint(name)}."
        ) from error


def read_state_file(path: Path) -> dict:
    if not path.is_file():
        raise BackboneWeightsError(
            f"model.backbone_weights={str(path)!r}: not 'none', not 'imagenet' and no such file"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise BackboneWeightsError(f"could not read backbone weights from {path}: {error}") from error
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"{path}: expected a state dict (a mapping of tensors), found {type(state).__name__}")
    return state


def load_trunk_weights(trunk: nn.Sequential, name: str, weights: str) -> None:
    """Fill `trunk` from `weights` ('none', 'imagenet' or a file); every trunk tensor must be found."""
    if weights == "none":
        return
    source = weights if weights == "imagenet" else str(Path(weights).expanduser())
    raw = imagenet_state(name) if weights == "imagenet" else read_state_file(Path(source))
    state = trunk_state(raw, name)
    expected = trunk.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong_shape:
        hint = ""
        if any(k.startswith(("conv_stem.", "blocks.")) for k in raw):
            hint = (" This looks like a timm MobileNet/EfficientNet file, whose layer layout differs from "
                    "torchvision's; for mobilenet_v3_small use torchvision's file, for timm weights use a timm ResNet.")
        raise BackboneWeightsError(
            f"backbone weights {source!r} do not fit torchvision's {name}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(wrong_shape)} of another shape (e.g. {wrong_shape[:3]}).{hint} Expected {fetch_hint(name)}."
        )
    trunk.load_state_dict(state)
