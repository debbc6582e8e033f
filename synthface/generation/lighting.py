"""Controlled lighting: a scenario's `lighting:` section -> per-sample parameters -> a relit image.

Three steps, so a plan can record what it will do before any pixel is touched:

1. :class:`LightingConfig` (pydantic) validates the YAML: named presets and/or `[low, high]` ranges.
2. :func:`sample_lighting` draws one :class:`LightingParams` per sample (flat numbers, stored as
   `lighting_*` metadata columns).
3. :func:`apply_lighting` relights an aligned face image with those numbers. The face's shape
   comes from its 478 landmarks: their depths are splatted onto a coarse grid and smoothed into a
   height field whose gradient gives a normal per pixel; a Lambert key light plus ambient fill
   shades it, relative to the photo's own lighting (the face's mean brightness is kept, only its
   distribution changes). Colour temperature is a white-balance cast; blur and sensor noise are
   albumentations' GaussianBlur and GaussNoise, made with OpenCV. JPEG quality is carried in the
   parameters for the writer.

Gains are applied in linear light (a 2.2 power law), so a doubling of light reads as one.
Everything is deterministic: the same parameters give the same bytes.
See docs/lighting.md for every key and the shading formulas.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from functools import lru_cache
from typing import Annotated, Any, Mapping

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationInfo, field_validator, model_validator

GAMMA = 2.2
NEUTRAL_KELVIN = 6500.0  # the colour temperature that leaves colours unchanged (D65 white)
METADATA_PREFIX = "lighting_"


# --- configuration ------------------------------------------------------------------------------


def _as_range(value: Any) -> Any:
    """A single number means a fixed value: 3 -> [3, 3]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (value, value)
    return value


Range = Annotated[tuple[float, float], BeforeValidator(_as_range)]
IntRange = Annotated[tuple[StrictInt, StrictInt], BeforeValidator(_as_range)]  # 90.0 or yes is not a quality

# Physical (or sensible) limits of each range field: (lowest allowed, highest allowed).
BOUNDS: dict[str, tuple[float, float]] = {
    "intensity": (0.05, 4.0),
    "azimuth": (-90.0, 90.0),
    "elevation": (-90.0, 90.0),
    "directional": (0.0, 2.0),
    "ambient": (0.0, 1.0),
    "shadow": (0.0, 1.0),
    "color_temperature": (2000.0, 12000.0),
    "noise_std": (0.0, 50.0),
    "blur_sigma": (0.0, 5.0),
    "jpeg_quality": (1, 100),
    "low_resolution_scale": (0.1, 1.0),
}


class LightingRanges(BaseModel):
    """The ranges a sample's lighting is drawn from (uniformly). Unset = taken from the preset or default."""

    model_config = ConfigDict(extra="forbid")

    intensity: Range | None = Field(
        None, description="Overall light gain in linear light (1 = as photographed, 0.5 = one stop darker). Bounds 0.05..4."
    )
    azimuth: Range | None = Field(
        None,
        description="Horizontal direction of the key light in degrees: 0 = from the camera, -90 = from the image's left, "
        "+90 = from the image's right. Bounds -90..90 (lights behind the head are not modelled).",
    )
    elevation: Range | None = Field(
        None, description="Vertical direction of the key light in degrees: 0 = level with the face, +90 = from straight above, -90 = from below."
    )
    mirror_azimuth: bool | None = Field(
        None, description="Flip the drawn azimuth's sign with probability 1/2, so e.g. azimuth [60, 85] lights either side."
    )
    directional: Range | None = Field(
        None, description="Strength of the directional key light relative to `ambient` (0 = flat light). Bounds 0..2."
    )
    ambient: Range | None = Field(
        None, description="Non-directional fill light; with `directional` it sets the contrast between lit and unlit sides. Bounds 0..1."
    )
    shadow: Range | None = Field(
        None, description="Darkening of the face's far side, where it turns away from the key light (0 = none, 1 = black). Bounds 0..1."
    )
    color_temperature: Range | None = Field(
        None, description="Colour temperature of the light in kelvin: 6500 = neutral, lower = warmer (redder), higher = cooler (bluer). Bounds 2000..12000."
    )
    noise_std: Range | None = Field(
        None, description="Standard deviation of Gaussian sensor noise in 8-bit levels (0..255 scale). Bounds 0..50."
    )
    noise_per_channel: bool | None = Field(
        None,
        description="true: independent noise per colour channel (colour speckle of raw low-light captures); "
        "false: the same noise on R, G and B (grain as left by phone pipelines that suppress colour noise; 3x cheaper).",
    )
    blur_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="Probability that a sample is blurred (Gaussian, out of focus)."
    )
    blur_sigma: Range | None = Field(None, description="Gaussian blur sigma in pixels when a sample is blurred. Bounds 0..5.")
    jpeg_quality: IntRange | None = Field(
        None, description="JPEG quality the writer encodes the image with. Bounds 1..100."
    )
    low_resolution_probability: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Probability that a sample is captured at low resolution (a small or distant face in a wide shot): "
        "rendered at `low_resolution_scale` of the image size, noise added there, then upscaled back.",
    )
    low_resolution_scale: Range | None = Field(
        None, description="Share of the image size a low-resolution sample is captured at (0.3 = a 224 px crop from 67 px). Bounds 0.1..1.",
    )

    @field_validator(
        "intensity", "azimuth", "elevation", "directional", "ambient", "shadow",
        "color_temperature", "noise_std", "blur_sigma", "jpeg_quality", "low_resolution_scale",
    )
    @classmethod
    def _check_range(cls, value: tuple[float, float] | None, info: ValidationInfo) -> tuple[float, float] | None:
        if value is None:
            return None
        low, high = value
        lowest, highest = BOUNDS[info.field_name]
        if low > high:
            raise ValueError(f"expected [low, high] with low <= high, got [{low}, {high}]")
        if low < lowest or high > highest:
            raise ValueError(f"expected values within [{lowest}, {highest}], got [{low}, {high}]")
        return value


# Values used where neither the scenario nor its preset sets a key: mild, realistic variation.
DEFAULTS: dict[str, Any] = {
    "intensity": (0.85, 1.15),
    "azimuth": (-45.0, 45.0),
    "elevation": (0.0, 40.0),
    "mirror_azimuth": False,
    "directional": (0.3, 0.6),
    "ambient": (0.4, 0.7),
    "shadow": (0.0, 0.3),
    "color_temperature": (4500.0, 7500.0),
    "noise_std": (0.0, 4.0),
    "noise_per_channel": False,
    "blur_probability": 0.15,
    "blur_sigma": (0.4, 1.2),
    "jpeg_quality": (80, 95),
    "low_resolution_probability": 0.1,
    "low_resolution_scale": (0.3, 0.7),
}

# Named lighting conditions. A preset sets some keys; the scenario's own keys override it.
PRESETS: dict[str, dict[str, Any]] = {
    "studio": {  # soft, even, near-frontal key; clean capture
        "intensity": (0.95, 1.05), "azimuth": (-20.0, 20.0), "elevation": (10.0, 30.0), "directional": (0.2, 0.4),
        "ambient": (0.6, 0.8), "shadow": (0.0, 0.1), "color_temperature": (5200.0, 5800.0), "noise_std": (0.0, 1.5),
        "blur_probability": 0.0, "jpeg_quality": (90, 95), "low_resolution_probability": 0.0,
    },
    "daylight": {  # sun or sky from above and to a side, cool-neutral
        "intensity": (0.9, 1.2), "azimuth": (-60.0, 60.0), "elevation": (20.0, 60.0), "directional": (0.5, 0.9),
        "ambient": (0.3, 0.5), "shadow": (0.1, 0.35), "color_temperature": (5500.0, 7500.0), "noise_std": (0.0, 3.0),
        "blur_probability": 0.1, "blur_sigma": (0.3, 0.8), "jpeg_quality": (80, 95),
    },
    "indoor_warm": {  # tungsten/warm LED room light, a little dim and noisy
        "intensity": (0.7, 0.95), "azimuth": (-45.0, 45.0), "elevation": (0.0, 40.0), "directional": (0.3, 0.6),
        "ambient": (0.4, 0.6), "shadow": (0.1, 0.3), "color_temperature": (3000.0, 4000.0), "noise_std": (2.0, 6.0),
        "blur_probability": 0.2, "blur_sigma": (0.4, 1.0), "jpeg_quality": (70, 90),
    },
    "dim": {  # low light: dark, noisy, often soft
        "intensity": (0.4, 0.65), "azimuth": (-60.0, 60.0), "elevation": (-10.0, 40.0), "directional": (0.2, 0.5),
        "ambient": (0.3, 0.5), "shadow": (0.1, 0.4), "color_temperature": (3000.0, 4500.0), "noise_std": (5.0, 12.0), "noise_per_channel": True,
        "blur_probability": 0.3, "blur_sigma": (0.5, 1.2), "jpeg_quality": (60, 85),
    },
    "harsh_side": {  # one hard light from the far left or right, deep shadow on the other side
        "intensity": (0.8, 1.0), "azimuth": (55.0, 85.0), "mirror_azimuth": True, "elevation": (0.0, 30.0),
        "directional": (0.8, 1.2), "ambient": (0.05, 0.2), "shadow": (0.5, 0.8), "color_temperature": (4500.0, 6000.0),
        "noise_std": (0.0, 3.0), "blur_probability": 0.0, "jpeg_quality": (80, 95),
    },
    "mixed": {  # wide ranges covering all of the above
        "intensity": (0.45, 1.25), "azimuth": (-85.0, 85.0), "elevation": (-15.0, 60.0), "directional": (0.1, 1.2),
        "ambient": (0.1, 0.8), "shadow": (0.0, 0.7), "color_temperature": (2700.0, 8000.0), "noise_std": (0.0, 10.0),
        "blur_probability": 0.25, "blur_sigma": (0.3, 1.5), "jpeg_quality": (60, 95),
        "low_resolution_probability": 0.2, "low_resolution_scale": (0.25, 0.7),
    },
}
for _name, _values in {"defaults": DEFAULTS, **PRESETS}.items():
    LightingRanges(**_values)  # a typo in the tables above fails at import, not mid-run


class LightingConfig(LightingRanges):
    """The scenario's `lighting:` section. Keys left unset come from the preset, else from DEFAULTS."""

    enabled: bool = Field(
        True, description="false turns the lighting model off (images keep their lighting; jpeg_quality still applies)."
    )
    preset: str | dict[str, float] | None = Field(
        None,
        description=f"A named condition ({', '.join(PRESETS)}, or one defined under `presets`) or a mapping name -> weight "
        "to draw one per sample.",
    )
    presets: dict[str, LightingRanges] = Field(
        default_factory=dict,
        description="Preset definitions, name -> keys of this section: a built-in name changes only the keys given, a new "
        "name defines a condition from the defaults. The scenario.yaml written with a dataset lists every preset it drew "
        "from here with all its keys, so the file alone reproduces the run.",
    )

    @model_validator(mode="after")
    def _check_preset(self) -> "LightingConfig":
        value = self.preset
        names = [value] if isinstance(value, str) else list(value or {})
        known = [*PRESETS, *(name for name in self.presets if name not in PRESETS)]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"unknown preset(s) {unknown}; expected one of {known}")
        if isinstance(value, dict):
            if any(not math.isfinite(w) or w < 0 for w in value.values()) or sum(value.values()) <= 0:
                raise ValueError(f"preset weights must be >= 0 with a positive sum, got {value}")
        return self

    def preset_weights(self) -> dict[str, float]:
        """Preset name -> probability ({"custom": 1} when no preset is named)."""
        if self.preset is None:
            return {"custom": 1.0}
        if isinstance(self.preset, str):
            return {self.preset: 1.0}
        total = sum(self.preset.values())
        return {name: weight / total for name, weight in self.preset.items() if weight > 0}

    def resolved(self, preset: str) -> dict[str, Any]:
        """The ranges in force for one preset: defaults, then the preset, then this section's own keys."""
        own = {name: getattr(self, name) for name in LightingRanges.model_fields if getattr(self, name) is not None}
        defined = self.presets[preset].model_dump(exclude_none=True) if preset in self.presets else {}
        return DEFAULTS | PRESETS.get(preset, {}) | defined | own

    def filled(self) -> "LightingConfig":
        """The same lighting with every value written out: with no preset, each key holds the value in force
        (the default where unset); with presets, `presets` holds every key of each preset drawn from. Loading
        the result gives the same draws, whatever later versions change in DEFAULTS or PRESETS."""
        weights = self.preset_weights()
        if self.preset is None:
            return self.model_copy(update=self.resolved("custom"))
        return self.model_copy(update={"presets": {**self.presets, **{
            name: LightingRanges(**self.resolved(name)) for name in weights}}})


# --- per-sample parameters ----------------------------------------------------------------------


@dataclass(frozen=True)
class LightingParams:
    """The lighting of one sample: flat numbers, recorded as `lighting_*` metadata columns."""

    preset: str
    intensity: float
    azimuth: float  # degrees, see LightingRanges.azimuth
    elevation: float  # degrees
    directional: float
    ambient: float
    shadow: float
    color_temperature: float  # kelvin
    noise_std: float  # 8-bit levels
    noise_per_channel: bool
    blur_sigma: float  # pixels; 0 = not blurred
    jpeg_quality: int
    noise_seed: int
    resolution_scale: float = 1.0  # < 1: captured at this share of the size, then upscaled

    @classmethod
    def neutral(cls, jpeg_quality: int = 95) -> LightingParams:
        """Parameters that leave the image unchanged."""
        return cls("none", 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, NEUTRAL_KELVIN, 0.0, False, 0.0, jpeg_quality, 0)

    def direction(self) -> np.ndarray:
        """Unit vector from the face toward the key light, in image axes: x right, y down, z toward the camera."""
        azimuth, elevation = math.radians(self.azimuth), math.radians(self.elevation)
        return np.array(
            [math.sin(azimuth) * math.cos(elevation), -math.sin(elevation), math.cos(azimuth) * math.cos(elevation)]
        )

    def as_metadata(self) -> dict[str, float | int | str | bool]:
        """{'lighting_intensity': 1.02, ...}: one primitive column per parameter."""
        return {f"{METADATA_PREFIX}{name}": value for name, value in asdict(self).items()}

    @classmethod
    def from_metadata(cls, row: Mapping[str, Any]) -> LightingParams:
        """Rebuild the parameters from a metadata row (to re-render a sample exactly)."""
        values = {}
        for field in fields(cls):
            key = f"{METADATA_PREFIX}{field.name}"
            if key not in row and field.default is not MISSING:  # a column added later: datasets written before lack it
                continue
            value = row[key]
            if field.type == "bool":
                values[field.name] = str(value).strip().lower() in ("true", "1")  # bool, or its CSV spelling
            else:
                values[field.name] = {"str": str, "int": int, "float": float}[field.type](value)
        return cls(**values)


def sample_lighting(cfg: LightingConfig, rng: np.random.Generator) -> LightingParams:
    """Draw one sample's lighting. The draw sequence is fixed (every value is always drawn), so
    changing one range never shifts the values drawn for the others."""
    weights = cfg.preset_weights()
    names = list(weights)
    preset = names[min(int(np.searchsorted(np.cumsum(list(weights.values())), rng.random(), side="right")), len(names) - 1)]
    r = cfg.resolved(preset)

    def uniform(key: str, digits: int) -> float:
        low, high = r[key]
        return round(float(rng.uniform(low, high)), digits)

    intensity = uniform("intensity", 3)
    azimuth = uniform("azimuth", 1)
    if rng.random() < 0.5 and r["mirror_azimuth"]:
        azimuth = -azimuth
    elevation = uniform("elevation", 1)
    directional = uniform("directional", 3)
    ambient = uniform("ambient", 3)
    shadow = uniform("shadow", 3)
    kelvin = float(round(rng.uniform(*r["color_temperature"]) / 10) * 10)
    noise_std = uniform("noise_std", 2)
    blurred = rng.random() < r["blur_probability"]
    blur_sigma = uniform("blur_sigma", 2)
    jpeg_low, jpeg_high = r["jpeg_quality"]
    jpeg_quality = int(rng.integers(jpeg_low, jpeg_high + 1))
    noise_seed = int(rng.integers(0, 2**31 - 1))
    low_resolution = rng.random() < r["low_resolution_probability"]
    resolution_scale = uniform("low_resolution_scale", 3)
    if not cfg.enabled:
        return LightingParams.neutral(jpeg_quality)
    return LightingParams(
        preset=preset,
        intensity=intensity,
        azimuth=azimuth + 0.0,  # no "-0.0" in the metadata
        elevation=elevation,
        directional=directional,
        ambient=ambient,
        shadow=shadow,
        color_temperature=kelvin,
        noise_std=noise_std,
        noise_per_channel=bool(r["noise_per_channel"]),
        blur_sigma=blur_sigma if blurred else 0.0,
        jpeg_quality=jpeg_quality,
        noise_seed=noise_seed,
        resolution_scale=resolution_scale if low_resolution else 1.0,
    )


# --- colour temperature -------------------------------------------------------------------------

# CIE XYZ -> linear sRGB (IEC 61966-2-1).
_XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
_LUMA = np.array([0.2126, 0.7152, 0.0722])


def _planckian_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a black body at `kelvin` (Y = 1), via Kim et al.'s (2002) cubic fit of the
    Planckian locus in CIE 1931 xy, valid for 1667..25000 K."""
    t = float(kelvin)
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    xyz = np.array([x / y, 1.0, (1.0 - x - y) / y])
    return np.clip(_XYZ_TO_SRGB @ xyz, 1e-3, None)


@lru_cache(maxsize=4096)
def white_balance_gains(kelvin: float) -> tuple[float, float, float]:
    """Linear-light RGB gains of a light at `kelvin` seen by a camera balanced for 6500 K.

    Normalised to unit luminance, so colour temperature changes the hue, not the brightness.
    """
    if kelvin == NEUTRAL_KELVIN:
        return (1.0, 1.0, 1.0)
    gains = _planckian_rgb(kelvin) / _planckian_rgb(NEUTRAL_KELVIN)
    gains /= float(_LUMA @ gains)
    return tuple(float(g) for g in gains)


# --- shading ------------------------------------------------------------------------------------

GRID_CELLS = 56  # resolution of the shading grid across the padded face box; lighting is low-frequency
BOX_PADDING = 0.35  # the grid covers the landmark box plus this share of the face size on each side
RIM_OUT, RIM_SLOPE = 0.15, 2.0  # silhouette points: pushed 15% outward, falling back twice as far as they move out
SURFACE_DEGREE = 4  # the face's large-scale shape: a polynomial height field of this degree fitted to the landmarks
BLEND_CELLS = 2.0  # sigma of the seam between the landmark surface and the head ellipsoid around it
# The head around the face (hair, ears, neck) as an ellipsoid, in units of the landmark box's width
# and height: centre shifted up (the skull extends above the hairline), semi-axes.
HEAD_SHIFT_UP, HEAD_HALF_WIDTH, HEAD_HALF_HEIGHT = 0.12, 0.58, 0.66
HEAD_FADE = (0.7, 1.05)  # relighting fades out between these ellipse radii (background beyond)
HEAD_STRENGTH = 0.6  # beyond the face only part of the effect: that area mixes hair, ears and background
WRAP = 0.35  # wrap lighting: skin scatters light past the terminator, softening it
TERMINATOR = (0.1, 0.6)  # the self-shadow fades in where n.l drops below 0.1, fully below -0.5
# Light bounced from the room, the body and the mask never lets a lit face fall below this share of
# its mean (linear light): a hard side light darkens the far side by about two stops, never to black.
FILL_FLOOR = 0.22


@lru_cache(maxsize=1)
def _local_relief_points() -> np.ndarray:
    """Landmarks of the nose (bridge to nostrils), left out of the large-scale face shape.

    The nose is a local relief already shaded in the photo; in a smooth fit it would tilt the
    upper lip steeply downward and paint a dark band ("moustache") under any light from above.
    """
    from synthface.maskfit.canonical import canonical_face

    face = canonical_face()
    return np.flatnonzero((np.abs(face[:, 0]) < 0.36) & (face[:, 1] > 0.03) & (face[:, 1] < 0.74))


_EXPONENTS = [(i, j) for i in range(SURFACE_DEGREE + 1) for j in range(SURFACE_DEGREE + 1 - i)]  # u**i * v**j


def _powers(x: np.ndarray) -> list[np.ndarray]:
    """x**0 .. x**SURFACE_DEGREE by repeated products (numpy's general `**` is far slower)."""
    powers = [np.ones_like(x), x]
    for _ in range(SURFACE_DEGREE - 1):
        powers.append(powers[-1] * x)
    return powers


def _poly_terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The polynomial's terms (N, len(_EXPONENTS)) at scattered points."""
    u_pow, v_pow = _powers(u), _powers(v)
    return np.stack([u_pow[i] * v_pow[j] for i, j in _EXPONENTS], axis=-1)


def _surface_normals(grid_xy: np.ndarray, grid_h: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Unit normals (3, G, G) of a smooth polynomial height field fitted (weighted least squares) to
    scattered heights, evaluated on the GRID_CELLS x GRID_CELLS grid."""
    centre = grid_xy.mean(axis=0)
    half = max(float(np.abs(grid_xy - centre).max()), 1.0)
    terms = _poly_terms(*((grid_xy - centre) / half).T)
    root = np.sqrt(weights)[:, None]
    coefficients, *_ = np.linalg.lstsq(terms * root, grid_h * root[:, 0], rcond=1e-6)
    cells = (np.arange(GRID_CELLS, dtype=np.float64) - centre[None, :].T) / half  # (2, G): x and y of each cell
    # On the grid the polynomial separates: surface[row, col] = sum c_ij u[col]**i v[row]**j = V C U^T.
    by_power = np.zeros((SURFACE_DEGREE + 1, SURFACE_DEGREE + 1))
    for (i, j), c in zip(_EXPONENTS, coefficients):
        by_power[j, i] = c
    surface = np.stack(_powers(cells[1]), axis=1) @ by_power @ np.stack(_powers(cells[0]), axis=0)
    dh_dy, dh_dx = np.gradient(surface)
    normal = np.stack([-dh_dx, -dh_dy, np.ones_like(surface)])
    return normal / np.linalg.norm(normal, axis=0)


def face_shading(points: np.ndarray, params: LightingParams) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Linear-light gain of the directional light over the face and head, on a coarse grid.

    Returns (gain grid, (x0, y0, x1, y1) of the image box the grid spans). The gain is 1 on the
    background and averages 1 over the face before the self-shadow (relighting moves brightness
    across the face; `intensity` sets the overall level). The face's shape is its large-scale
    surface (a smooth fit without the nose), so the field has no patches; anything worn on the
    face (a mask) follows the same surface and takes the same gain. Expects an upright face.
    """
    import cv2

    xy = points[:, :2].astype(np.float64)
    height = -points[:, 2].astype(np.float64)  # toward the camera (MediaPipe z grows away from it)
    low, high = xy.min(axis=0), xy.max(axis=0)
    face_size = float(max(high - low))
    if not face_size >= 2.0:  # degenerate landmarks (or NaN): nothing to shade
        return np.ones((GRID_CELLS, GRID_CELLS), np.float32), (0.0, 0.0, 1.0, 1.0)
    side = face_size * (1 + 2 * BOX_PADDING)
    origin = (low + high) / 2 - side / 2
    cell = side / GRID_CELLS
    grid_xy = (xy - origin) / cell
    grid_h = height / cell

    # Face surface from the landmarks, with the silhouette extended outward and back so the
    # shading turns at the face's edges.
    hull_index = cv2.convexHull(grid_xy.astype(np.float32), returnPoints=False).ravel()
    hull, hull_height = grid_xy[hull_index], grid_h[hull_index]
    mid = grid_xy.mean(axis=0)
    radius = np.linalg.norm(hull - mid, axis=1)
    rim_xy = mid + (hull - mid) * (1 + RIM_OUT)
    rim_h = hull_height - RIM_SLOPE * RIM_OUT * radius
    weights = np.ones(len(grid_xy))
    weights[_local_relief_points()[_local_relief_points() < len(weights)]] = 0.0
    face_normal = _surface_normals(np.concatenate([grid_xy, rim_xy]), np.concatenate([grid_h, rim_h]),
                                   np.concatenate([weights, np.full(len(rim_xy), 2.0)]))

    # Head ellipsoid around it: a sphere in coordinates scaled to the ellipse.
    box_w, box_h = (high - low) / cell
    cols = np.arange(GRID_CELLS, dtype=np.float64)  # cell i sits at grid coordinate i (as in _splat)
    u = (cols[None, :] - ((low[0] + high[0]) / 2 - origin[0]) / cell) / (HEAD_HALF_WIDTH * box_w)
    v = (cols[:, None] - ((low[1] + high[1]) / 2 - origin[1]) / cell + HEAD_SHIFT_UP * box_h) / (HEAD_HALF_HEIGHT * box_h)
    u, v = np.broadcast_arrays(u, v)
    r2 = u**2 + v**2
    head_normal = np.stack([u, v, np.sqrt(np.maximum(1.0 - r2, 0.02))])
    head_normal /= np.linalg.norm(head_normal, axis=0)

    inside = np.zeros((GRID_CELLS, GRID_CELLS), np.float32)
    cv2.fillConvexPoly(inside, np.round(hull).astype(np.int32), 1.0)
    # 1 well inside the hull, 1/3 on its edge, fading out just beyond it.
    face_weight = np.clip(3.0 * cv2.GaussianBlur(inside, (0, 0), BLEND_CELLS) - 1.0, 0.0, 1.0)
    normal = face_weight * face_normal + (1.0 - face_weight) * head_normal
    n_dot_l = np.tensordot(params.direction(), normal, axes=1) / np.linalg.norm(normal, axis=0)

    key = np.clip((n_dot_l + WRAP) / (1.0 + WRAP), 0.0, None)
    shade = params.ambient + params.directional * key
    mean_shade = float((shade * inside).sum() / max(float(inside.sum()), 1.0))
    shade = shade / mean_shade if mean_shade > 1e-6 else np.ones_like(shade)
    # Self-shadow on the face's far side only: beyond the face we cannot tell hair from background.
    far_side = np.clip((TERMINATOR[0] - n_dot_l) / TERMINATOR[1], 0.0, 1.0)
    shade *= 1.0 - params.shadow * far_side * face_weight
    shade = shade + FILL_FLOOR * np.exp(-shade / FILL_FLOOR)  # soft floor: ~FILL_FLOOR at 0, unchanged above ~1

    head_weight = np.clip((HEAD_FADE[1] - np.sqrt(r2)) / (HEAD_FADE[1] - HEAD_FADE[0]), 0.0, 1.0)
    relight = np.maximum(HEAD_STRENGTH * head_weight, face_weight)
    gain = 1.0 + relight * (shade - 1.0)
    x0, y0 = origin
    return gain.astype(np.float32), (float(x0), float(y0), float(x0 + side), float(y0 + side))


def _splat(xy: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear splat of scattered values onto a size x size grid: (sum of weights, sum of weight*value)."""
    base = np.floor(xy).astype(np.int64)
    frac = xy - base
    weight = np.zeros(size * size)
    weighted = np.zeros(size * size)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cx, cy = base[:, 0] + dx, base[:, 1] + dy
        w = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
        ok = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
        index = cy[ok] * size + cx[ok]
        weight += np.bincount(index, w[ok], size * size)
        weighted += np.bincount(index, w[ok] * values[ok], size * size)
    return weight.reshape(size, size).astype(np.float32), weighted.reshape(size, size).astype(np.float32)


# --- applying it --------------------------------------------------------------------------------


def apply_lighting(image_rgb: np.ndarray, points: np.ndarray, params: LightingParams) -> np.ndarray:
    """Relight an RGB uint8 image whose face has the given (478, 3) landmarks (pixels; z like MediaPipe).

    Order: directional shading and intensity and colour temperature (one multiplicative gain in
    linear light), then lens blur, then the sensor's resolution (low-resolution samples), then sensor
    noise, then the upscale back to size. JPEG encoding is left to the writer.
    """
    import cv2

    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"apply_lighting expects an HxWx3 uint8 RGB image, got {image_rgb.dtype} {image_rgb.shape}")
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 468:
        raise ValueError(f"apply_lighting expects (478, 3) face-mesh landmarks, got shape {points.shape}")

    height, width = image_rgb.shape[:2]
    colour = np.array(white_balance_gains(params.color_temperature), np.float32) ** (1 / GAMMA)
    relit = params.directional > 0 or params.shadow > 0
    image = image_rgb
    if relit or params.intensity != 1.0 or params.color_temperature != NEUTRAL_KELVIN:
        # One gamma-encoded RGB gain per pixel: intensity x face shading x colour cast.
        gain_rgb = np.empty((height, width, 3), np.float32)
        gain_rgb[:] = colour * params.intensity ** (1 / GAMMA)
        if relit:
            grid, box = face_shading(points, params)
            grid_rgb = (params.intensity * grid)[:, :, None] ** (1 / GAMMA) * colour
            _paste_face_gain(gain_rgb, grid_rgb, box)
        scaled = cv2.multiply(image_rgb.astype(np.float32), gain_rgb)
        image = cv2.convertScaleAbs(scaled)  # rounds to nearest and saturates to 0..255

    if params.blur_sigma > 0:
        kernel = _blur_kernel(params.blur_sigma)
        image = cv2.sepFilter2D(image, -1, kernel, kernel)
    small = params.resolution_scale < 1.0
    if small:  # a small face in a wide shot: the sensor sees few pixels, and its noise is that coarse
        low = max(int(round(min(height, width) * params.resolution_scale)), 8)
        image = cv2.resize(image, (max(int(round(width * low / min(height, width))), 8), low), interpolation=cv2.INTER_AREA)
    if params.noise_std > 0:
        image = add_noise(image, params.noise_std, params.noise_per_channel, params.noise_seed)
    if small:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    return image if image is not image_rgb else image_rgb.copy()


def _paste_face_gain(gain: np.ndarray, grid: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Resample a gain grid spanning `box` into the image-sized gain where they overlap.

    Outside the box the gain keeps its value (the grid's border already equals it)."""
    import cv2

    height, width = gain.shape[:2]
    x0, y0, x1, _ = box
    size = max(int(round(x1 - x0)), 1)
    cell = (x1 - x0) / GRID_CELLS
    # cv2.resize puts cell i's centre at output pixel (i + 0.5) * cell - 0.5; cell i belongs at x0 + i * cell.
    ox, oy = int(round(x0 + 0.5 - 0.5 * cell)), int(round(y0 + 0.5 - 0.5 * cell))
    left, top = max(ox, 0), max(oy, 0)
    right, bottom = min(ox + size, width), min(oy + size, height)
    if right <= left or bottom <= top:
        return
    local = cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR)  # much faster than cv2.remap here
    gain[top:bottom, left:right] = local[top - oy : bottom - oy, left - ox : right - ox]


# Blur and noise make the same bytes as albumentations' GaussianBlur and GaussNoise did here before
# (tests/test_lighting.py compares them), without importing it (~0.6 s and ~40 MB per worker) and,
# for the noise, at a third of its cost per image (its generic path converts and checks the noise
# map several times).


@lru_cache(maxsize=512)
def _blur_kernel(sigma: float) -> np.ndarray:
    """1-D Gaussian kernel of `sigma`, PIL's size (int(3.5 sigma) each side), as albumentations' GaussianBlur makes it."""
    size = int(sigma * 3.5) * 2 + 1
    x = np.arange(-(size // 2), size // 2 + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def add_noise(image: np.ndarray, std: float, per_channel: bool, seed: int) -> np.ndarray:
    """Gaussian sensor noise of `std` 8-bit levels drawn from `seed`, the same on R, G and B unless `per_channel`.

    As albumentations' GaussNoise(std_range=(std / 255,) * 2) seeded with `seed`: OpenCV's generator,
    seeded from numpy's, draws the noise; it is truncated toward zero to whole levels and added."""
    import cv2

    rng = np.random.default_rng(seed)
    cv2.setRNGSeed(int(rng.integers(0, 2**16)))
    channels = image.shape[2] if per_channel else 1
    drawn = np.zeros(image.shape if per_channel else image.shape[:2])  # float64: the generator draws doubles
    cv2.randn(drawn, np.zeros(channels, np.float32), np.full(channels, std / 255.0, np.float32))
    noise = drawn.astype(np.float32)
    noise *= 255
    if not per_channel:
        noise = cv2.merge([noise] * image.shape[2])
    if noise.min() >= 0:  # (never at a useful size) albumentations then adds the noise as uint8
        return cv2.add(image, np.clip(noise, 0, 255).astype(np.uint8))
    np.trunc(noise, out=noise)
    return cv2.add(image, noise, dtype=cv2.CV_8U)  # whole numbers: the sum is exact, saturated to 0..255
