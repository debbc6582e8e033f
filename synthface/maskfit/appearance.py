"""Per-sample mask variation: the scenario's `mask.appearance:` ranges and the parameters drawn from them."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthface.maskfit.definitions import MaskDefinition

RGB = tuple[int, int, int]


def _check_range(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if low > high:
        raise ValueError(f"range [{low}, {high}] must have low <= high")
    return value


class MaskAppearance(BaseModel):
    """Ranges that mask colour, pattern and fit are drawn from (the scenario's `mask.appearance:` section)."""

    model_config = ConfigDict(extra="forbid")

    palettes: Optional[dict[str, float]] = Field(
        None,
        description="Palette name -> weight (palettes from masks/palettes.yaml or a --masks folder). "
                    "Unset: each type uses its own palettes, equally weighted.")
    hue_jitter: float = Field(8.0, ge=0, le=180, description="Hue shift drawn uniformly in +-this many degrees.")
    saturation_jitter: float = Field(0.15, ge=0, le=1, description="Saturation scaled by 1 +- up to this.")
    value_jitter: float = Field(0.12, ge=0, le=1, description="Brightness scaled by 1 +- up to this.")
    pattern_probability: Optional[float] = Field(
        None, ge=0, le=1,
        description="Chance of a printed pattern for types that list patterns (unset: the type's own pattern weights).")
    pattern_scale: tuple[float, float] = Field((0.7, 1.4), description="Pattern size multiplier range (stripe width, dot spacing...).")
    fabric_texture: tuple[float, float] = Field(
        (0.6, 1.4), description="Multiplier range of the material's fine texture strength (0 = smooth).")
    size: tuple[float, float] = Field((0.95, 1.06), description="Mask size relative to the face (1 = as defined).")
    vertical_offset: tuple[float, float] = Field(
        (-0.04, 0.05), description="Vertical shift in face units (half the face width); positive = down.")

    @field_validator("pattern_scale", "fabric_texture", "size", "vertical_offset")
    @classmethod
    def _ranges(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _check_range(value)

    @field_validator("palettes")
    @classmethod
    def _palettes(cls, palettes: Optional[dict[str, float]]) -> Optional[dict[str, float]]:
        if palettes is not None and (not palettes or any(w < 0 for w in palettes.values()) or sum(palettes.values()) <= 0):
            raise ValueError("palettes needs non-negative weights with a positive total")
        return palettes


@dataclass(frozen=True)
class MaskParams:
    """Everything random about one rendered mask; with the face and light it fixes the pixels."""

    mask_type: str
    wear_style: str
    color: RGB
    color2: RGB  # second colour of a pattern
    color3: RGB  # accents (flower centres)
    pattern: str
    pattern_scale: float
    pattern_angle: float  # degrees
    texture_strength: float
    size: float
    vertical_offset: float
    loose_side: int  # strap_loose: +1 subject's left strap hangs, -1 right, 0 none
    texture_seed: int  # picks the phase of the fabric noise
    recolor: bool = True  # False: a photo template keeps its own colours

    def as_metadata(self) -> dict:
        """Primitive `mask_*` columns for the dataset's metadata table."""
        return {
            "mask_color": _hex(self.color),
            "mask_color2": _hex(self.color2) if self.pattern != "plain" else "none",
            "mask_pattern": self.pattern,
            "mask_pattern_scale": round(self.pattern_scale, 4),
            "mask_texture": round(self.texture_strength, 4),
            "mask_size": round(self.size, 4),
            "mask_offset": round(self.vertical_offset, 4),
            "mask_loose_side": {1: "left", -1: "right"}.get(self.loose_side, "none"),
        }


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _weighted_choice(options: dict[str, float], rng: np.random.Generator) -> str:
    names = sorted(options)
    weights = np.array([options[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _jitter(rgb: RGB, appearance: MaskAppearance, rng: np.random.Generator) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    h = (h + rng.uniform(-1, 1) * appearance.hue_jitter / 360) % 1.0
    s = float(np.clip(s * (1 + rng.uniform(-1, 1) * appearance.saturation_jitter), 0, 1))
    v = float(np.clip(v * (1 + rng.uniform(-1, 1) * appearance.value_jitter), 0, 1))
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def _luma(rgb: RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _contrasting(palette: list[RGB], base: RGB, rng: np.random.Generator) -> RGB:
    """Another palette colour that stands out from `base`, else white or near-black."""
    others = [c for c in palette if abs(_luma(c) - _luma(base)) > 40 or max(abs(a - b) for a, b in zip(c, base)) > 90]
    if others:
        return others[int(rng.integers(len(others)))]
    return (238, 236, 230) if _luma(base) < 128 else (32, 32, 36)


def sample_mask_params(definition: MaskDefinition, appearance: MaskAppearance, wear_style: str,
                       rng: np.random.Generator) -> MaskParams:
    """Draw one mask's colour, pattern and fit from the scenario ranges and the type's own data."""
    if not definition.supports(wear_style):
        raise ValueError(f"mask type {definition.name!r} does not support wear style {wear_style!r}; "
                         f"it supports {definition.wear_styles}")
    palette_weights = appearance.palettes or {name: 1.0 for name in definition.palettes}
    unknown = [p for p in palette_weights if p not in definition.palette_colours]
    if unknown:
        raise ValueError(f"mask.appearance.palettes: unknown palette(s) {unknown}; known: {sorted(definition.palette_colours)}")
    palette = definition.palette_colours[_weighted_choice(palette_weights, rng)]
    base = palette[int(rng.integers(len(palette)))]

    patterns = dict(definition.patterns)
    if appearance.pattern_probability is not None and set(patterns) - {"plain"}:
        printed = {k: v for k, v in patterns.items() if k != "plain"}
        total = sum(printed.values()) or 1.0
        patterns = {"plain": 1 - appearance.pattern_probability,
                    **{k: appearance.pattern_probability * v / total for k, v in printed.items()}}
    pattern = _weighted_choice(patterns, rng)

    color = _jitter(base, appearance, rng) if definition.recolor else base
    if definition.image is not None and not definition.recolor:
        from synthface.maskfit.photo import template_colour

        color = template_colour(definition.image)
    color2 = _jitter(_contrasting(palette, base, rng), appearance, rng)
    color3 = _jitter(_contrasting(palette, color2, rng), appearance, rng)
    return MaskParams(
        mask_type=definition.name,
        wear_style=wear_style,
        color=color,
        color2=color2,
        color3=color3,
        pattern=pattern,
        pattern_scale=float(rng.uniform(*appearance.pattern_scale)),
        pattern_angle=float(rng.choice([0.0, 90.0, 45.0, -45.0])) if pattern == "stripes" else float(rng.uniform(-10, 10)),
        texture_strength=float(definition.material.texture * rng.uniform(*appearance.fabric_texture)),
        size=float(rng.uniform(*appearance.size)),
        vertical_offset=float(rng.uniform(*appearance.vertical_offset)),
        loose_side=int(rng.choice([-1, 1])) if wear_style == "strap_loose" else 0,
        texture_seed=int(rng.integers(1 << 16)),
        recolor=definition.recolor,
    )
