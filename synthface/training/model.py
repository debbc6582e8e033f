"""OAMNet: a ResNet-50 trunk, CBAM-style spatial attention and four face-attribute heads.

The attention map A (one channel, values in [0, 1]) re-weights the trunk's last feature
map before pooling, so the model can learn to rely on the eyes and forehead when a mask
covers the mouth; evaluation draws A over the faces. With `attention=False` (the
ablation) the module does not exist at all and the features are pooled as they are.

Age is predicted as a bounded regression: `age = age_max * sigmoid(z)`, so the output is
always a valid age in years (0 .. age_max) and the gradient never explodes on outliers.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from synthface.errors import UserError

FEATURE_CHANNELS = 2048  # channels of ResNet-50's layer4
HEAD_HIDDEN = 512
HEAD_NAMES = ("age", "gender", "race", "mask")


class BackboneWeightsError(UserError, RuntimeError):
    """The requested backbone weights could not be loaded; the message says how to fix it."""


class SpatialAttention(nn.Module):
    """CBAM spatial attention: channel-wise mean and max -> 7x7 conv -> sigmoid map."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


def _head(out_features: int, dropout: float) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU -> Dropout -> Linear, as every task head."""
    return nn.Sequential(
        nn.Linear(FEATURE_CHANNELS, HEAD_HIDDEN),
        nn.BatchNorm1d(HEAD_HIDDEN),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(HEAD_HIDDEN, out_features),
    )


def _resnet50_state_dict(backbone_weights: str) -> dict[str, torch.Tensor] | None:
    """The torchvision-format ResNet-50 weights for `backbone_weights` ("none" -> None)."""
    if backbone_weights == "none":
        return None
    if backbone_weights == "imagenet":
        try:
            return ResNet50_Weights.IMAGENET1K_V2.get_state_dict(progress=True)
        except Exception as error:  # network, proxy, or a truncated cached file
            raise BackboneWeightsError(
                "could not fetch torchvision's ImageNet ResNet-50 weights "
                f"({ResNet50_Weights.IMAGENET1K_V2.url}): {error}. Either run once with network access "
                "(they are cached under ~/.cache/torch), download that file and set "
                "`model.backbone_weights: /path/to/resnet50.pth`, or train from scratch with "
                "`model.backbone_weights: none`."
            ) from error
    path = Path(backbone_weights).expanduser()
    if not path.is_file():
        raise BackboneWeightsError(
            f"model.backbone_weights={backbone_weights!r}: not 'none', not 'imagenet' and no such file"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise BackboneWeightsError(f"could not read backbone weights from {path}: {error}") from error
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        # A synthface checkpoint: reuse its trunk.
        state = {k.removeprefix("trunk."): v for k, v in state["model"].items() if k.startswith("trunk.")}
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"{path}: expected a ResNet-50 state dict, found {type(state).__name__}")
    return state


class OAMNet(nn.Module):
    """Occlusion-aware multi-task network: age (years), gender, race and mask from one face crop.

    `forward(x)` takes a normalised float batch B x 3 x H x W and returns a dict with
    "age" (B,), "gender" (B, 2), "race" (B, num_races), "mask" (B, 2) logits, and
    "attention" (B, 1, h, w) in [0, 1] (None when attention is off).
    """

    def __init__(
        self,
        num_races: int,
        attention: bool = True,
        backbone_weights: str = "none",
        head_dropout: float = 0.3,
        age_max: float = 120.0,
    ) -> None:
        super().__init__()
        backbone = resnet50(weights=None)
        state = _resnet50_state_dict(backbone_weights)
        if state is not None:
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            try:
                missing, unexpected = backbone.load_state_dict(state, strict=False)
            except RuntimeError as error:  # shape mismatches
                raise BackboneWeightsError(
                    f"backbone weights {backbone_weights!r} do not fit torchvision's ResNet-50: {error}"
                ) from error
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing or unexpected:
                raise BackboneWeightsError(
                    f"backbone weights {backbone_weights!r} do not fit torchvision's ResNet-50: "
                    f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                    f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
                )
        # Keep torchvision's parameter names under `trunk.` so plain ResNet-50 files load.
        self.trunk = nn.Sequential(OrderedDict(
            (name, getattr(backbone, name))
            for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        ))
        self.attention = SpatialAttention() if attention else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.age_max = float(age_max)
        self.heads = nn.ModuleDict({
            "age": _head(1, head_dropout),
            "gender": _head(2, head_dropout),
            "race": _head(num_races, head_dropout),
            "mask": _head(2, head_dropout),
        })

    def init_age_bias(self, mean_age: float) -> None:
        """Start the age head at the training set's mean age, so early steps learn faces, not the offset."""
        share = min(max(mean_age / self.age_max, 1e-3), 1 - 1e-3)
        with torch.no_grad():
            self.heads["age"][-1].bias.fill_(float(torch.logit(torch.tensor(share))))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        features = self.trunk(x)
        attention_map = None
        if self.attention is not None:
            attention_map = self.attention(features)
            features = features * attention_map
        pooled = self.pool(features).flatten(1)
        age = self.age_max * torch.sigmoid(self.heads["age"](pooled).squeeze(1))
        return {
            "age": age,
            "gender": self.heads["gender"](pooled),
            "race": self.heads["race"](pooled),
            "mask": self.heads["mask"](pooled),
            "attention": attention_map,
        }
