"""OAMNet: a CNN trunk (ResNet-50 as in the paper, or a light one: backbones.py), CBAM-style
spatial attention and four face-attribute heads.

The attention map A (one channel, values in [0, 1]) re-weights the trunk's last feature
map before pooling, so the model can learn to rely on the eyes and forehead when a mask
covers the mouth; evaluation draws A over the faces. With `attention=False` (the
ablation) the module does not exist at all and the features are pooled as they are.

Age is predicted as a bounded regression: `age = age_max * sigmoid(z)`, so the output is
always a valid age in years (0 .. age_max) and the gradient never explodes on outliers.
With `gender_aware_age` the age head also reads the gender head's probabilities.
"""

from __future__ import annotations

import torch
from torch import nn

from synthface.training.backbones import BackboneWeightsError, build_trunk, load_trunk_weights

__all__ = ["BackboneWeightsError", "HEAD_HIDDEN", "HEAD_NAMES", "OAMNet", "SpatialAttention"]

HEAD_HIDDEN = 512
HEAD_NAMES = ("age", "gender", "race", "mask")


class SpatialAttention(nn.Module):
    """CBAM spatial attention: channel-wise mean and max -> 7x7 conv -> sigmoid map."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


def _head(in_features: int, out_features: int, dropout: float) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU -> Dropout -> Linear, as every task head."""
    return nn.Sequential(
        nn.Linear(in_features, HEAD_HIDDEN),
        nn.BatchNorm1d(HEAD_HIDDEN),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(HEAD_HIDDEN, out_features),
    )


class OAMNet(nn.Module):
    """Occlusion-aware multi-task network: age (years), gender, race and mask from one face crop.

    `forward(x)` takes a normalised float batch B x 3 x H x W and returns a dict with
    "age" (B,), "gender" (B, 2), "race" (B, num_races), "mask" (B, mask_classes: 2 = unmasked/masked,
    3 = mask state none/correct/incorrect) logits, and
    "attention" (B, 1, h, w) in [0, 1] (None when attention is off).
    """

    def __init__(
        self,
        num_races: int,
        attention: bool = True,
        backbone_weights: str = "none",
        head_dropout: float = 0.3,
        age_max: float = 120.0,
        backbone: str = "resnet50",
        gender_aware_age: bool = False,
        mask_classes: int = 2,
    ) -> None:
        super().__init__()
        # Parameter names under `trunk.` are torchvision's, so plain torchvision/timm files load.
        self.trunk, channels = build_trunk(backbone)
        load_trunk_weights(self.trunk, backbone, backbone_weights)
        self.backbone = backbone
        self.attention = SpatialAttention() if attention else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.age_max = float(age_max)
        self.gender_aware_age = bool(gender_aware_age)
        # Gender-aware age: the gender head's two probabilities are appended to the age head's input.
        self.heads = nn.ModuleDict({
            "age": _head(channels + (2 if gender_aware_age else 0), 1, head_dropout),
            "gender": _head(channels, 2, head_dropout),
            "race": _head(channels, num_races, head_dropout),
            "mask": _head(channels, mask_classes, head_dropout),
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
        gender = self.heads["gender"](pooled)
        age_input = pooled
        if self.gender_aware_age:
            # Detached: the age loss must not bend the gender head to suit age; the injection only
            # tells the age head which gender the face looks like (men and women age differently in photos).
            age_input = torch.cat([pooled, torch.softmax(gender.detach().float(), dim=1).to(pooled.dtype)], dim=1)
        age = self.age_max * torch.sigmoid(self.heads["age"](age_input).squeeze(1))
        return {
            "age": age,
            "gender": gender,
            "race": self.heads["race"](pooled),
            "mask": self.heads["mask"](pooled),
            "attention": attention_map,
        }
