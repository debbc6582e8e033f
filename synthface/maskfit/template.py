"""Mask templates drawn in face space: static layers cached per type, coloured per sample.

`StaticTemplate` holds what never changes for a type at a given resolution (outline alpha,
relief normals, creases, seams, region layers, fabric noise). `colourise` turns it into an
RGBA image for one sample's colours, pattern, texture strength and light; the fit then warps
that image onto the face.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from synthface.maskfit.appearance import MaskParams
from synthface.maskfit.definitions import Dome, Fold, Hem, MaskDefinition, Pleats, Ribs, Valve, Window, Wire

# Template resolutions in pixels per face unit; a fit picks the smallest one that is at least
# 0.75x the face's own pixels per unit (bilinear warping hides the difference), so a 224 px crop
# (55-64 px per unit) uses 48.
LEVELS = (32, 48, 64, 80, 96, 128, 160, 192, 256)
NOISE_PAD = 32  # extra noise border so each sample can take a shifted window
# The face seen from the front is roughly a cylinder of this radius (face units): fabric drawn
# evenly on the surface looks compressed toward the cheeks, as printed patterns on a real mask do.
FACE_RADIUS = 1.2


def surface_u(x: np.ndarray) -> np.ndarray:
    """Arc length from the midline over the face cylinder for a frontal x (face units)."""
    return FACE_RADIUS * np.arcsin(np.clip(x / FACE_RADIUS, -0.995, 0.995))


@dataclass
class StaticTemplate:
    """Per-type, per-resolution layers in face space (all HxW float32 unless noted)."""

    ppu: float  # template pixels per face unit
    origin: np.ndarray  # face-space (x, y) of template pixel (0, 0)
    x: np.ndarray  # face-space coordinates of each template pixel
    y: np.ndarray
    u: np.ndarray  # distance along the face's surface from the midline (patterns and texture follow it)
    alpha: np.ndarray  # body coverage, anti-aliased
    normals: np.ndarray  # HxWx3 relief normals in face space (z toward the camera)
    crease: np.ndarray  # multiplicative darkening of folds, seams and stitches (1 = none)
    valve: np.ndarray  # valve coverage
    window: np.ndarray  # clear-window coverage (see-through)
    gloss: np.ndarray  # specular strength
    noise: np.ndarray  # (H + 2 pad) x (W + 2 pad) fabric texture, zero mean, unit-ish std
    outline: np.ndarray  # (K, 2) closed outline polygon in face space
    albedo: np.ndarray | None = None  # HxWx3 float32 colours of a photo template (None: procedural)
    glint: np.ndarray | None = None  # reflection streak of clear plastic (added light, 0..1), or None
    _visible: np.ndarray | None = None
    _albedo_hsv: tuple | None = None

    def albedo_hsv(self) -> tuple[np.ndarray, tuple[float, float, float]]:
        """(HxWx3 HSV of the photo albedo, its dominant colour's HSV), cached."""
        if self._albedo_hsv is None:
            from synthface.maskfit.photo import dominant_colour

            hsv = cv2.cvtColor(self.albedo / 255, cv2.COLOR_RGB2HSV)
            dominant = np.float32([[dominant_colour(self.albedo, self.alpha)]]) / 255
            self._albedo_hsv = (hsv, tuple(float(v) for v in cv2.cvtColor(dominant, cv2.COLOR_RGB2HSV)[0, 0]))
        return self._albedo_hsv

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape

    @property
    def visible(self) -> np.ndarray:
        """Opacity: the body's coverage less what a clear window lets through (cached)."""
        if self._visible is None:
            self._visible = (self.alpha * (1 - self.window)).astype(np.float32)
        return self._visible


def outline_polygon(definition: MaskDefinition, samples_per_segment: int = 12) -> np.ndarray:
    """The closed outline in face space: the right half mirrored, rounded by a Catmull-Rom spline if `smooth`."""
    half = np.asarray(definition.outline, np.float64)
    # Right side runs top -> bottom; the left side is its mirror, bottom -> top, without repeating the midline ends.
    ring = np.concatenate([half, (half[-2:0:-1] * np.array([-1.0, 1.0]))])
    if not definition.smooth:
        return ring
    n = len(ring)
    t = np.linspace(0, 1, samples_per_segment, endpoint=False)[:, None]
    pieces = []
    for i in range(n):
        p0, p1, p2, p3 = ring[(i - 1) % n], ring[i], ring[(i + 1) % n], ring[(i + 2) % n]
        pieces.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                             + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    return np.concatenate(pieces)


def _fill_aa(polygon_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Anti-aliased coverage of a polygon (template pixels), by 4x supersampling."""
    factor = 4
    canvas = np.zeros((shape[0] * factor, shape[1] * factor), np.uint8)
    cv2.fillPoly(canvas, [np.round((polygon_px + 0.5) * factor - 0.5).astype(np.int32)], 255, lineType=cv2.LINE_8)
    return cv2.resize(canvas, (shape[1], shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0, 1)
    return t * t * (3 - 2 * t)


def _noise_tile(kind: str, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Fine fabric texture of a material family, zero mean (values about -1..1)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    white = rng.standard_normal((h, w)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blotch = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 5)
    blotch /= blotch.std() + 1e-6
    if kind == "nonwoven":  # pressed fibres: fine speckle and soft mottling
        tile = 0.55 * cv2.GaussianBlur(white, (0, 0), 0.7) / 0.45 + 0.18 * blotch
    elif kind == "woven":  # over-under threads plus irregular yarn
        weave = np.sin(xx * 2 * np.pi / 3.2) * np.sin(yy * 2 * np.pi / 3.2)
        tile = 0.5 * weave + 0.35 * cv2.GaussianBlur(white, (0, 0), 0.6) / 0.5 + 0.3 * blotch
    elif kind == "knit":  # vertical wales of V-shaped stitches
        stitch = np.abs(np.sin(xx * 2 * np.pi / 5.0 + 0.8 * np.abs(np.sin(yy * 2 * np.pi / 6.0))))
        tile = 0.8 * (stitch - 0.64) / 0.3 + 0.3 * cv2.GaussianBlur(white, (0, 0), 0.8) / 0.4 + 0.25 * blotch
    elif kind == "plastic":
        tile = 0.15 * blotch
    else:  # skin
        tile = 0.2 * cv2.GaussianBlur(white, (0, 0), 1.0) / 0.3 + 0.3 * blotch
    return (tile - tile.mean()).astype(np.float32)


def _hash(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A repeatable pseudo-random value in [0, 1) per integer cell."""
    value = np.sin(i * 12.9898 + j * 78.233) * 43758.5453
    return value - np.floor(value)


_CACHE: dict[tuple[str, str, int], tuple[MaskDefinition, StaticTemplate]] = {}


def static_template(definition: MaskDefinition, level: int) -> StaticTemplate:
    """The static layers of a mask template, built once per definition and resolution.

    Keyed by name, source file and level (so reloading the library does not grow the cache);
    an edited definition under the same name is rebuilt.
    """
    key = (definition.name, definition.source, level)
    cached = _CACHE.get(key)
    if cached is not None and (cached[0] is definition or cached[0] == definition):
        if cached[0] is not definition:
            _CACHE[key] = (definition, cached[1])  # identity check next time
        return cached[1]
    template = build_static_template(definition, level)
    _CACHE[key] = (definition, template)
    return template


def build_static_template(definition: MaskDefinition, level: int) -> StaticTemplate:
    """Draw the static layers of a mask template at `level` pixels per face unit."""
    ppu = float(level)
    outline = outline_polygon(definition)
    albedo = None
    if definition.image is not None:
        from synthface.maskfit.photo import face_space_layers

        lo, albedo, alpha = face_space_layers(definition.image, definition.anchors, outline, ppu)
        height, width = alpha.shape
    else:
        lo = outline.min(0) - 0.08
        width, height = (np.ceil((outline.max(0) + 0.08 - lo) * ppu)).astype(int) + 1
        alpha = _fill_aa((outline - lo) * ppu, (height, width))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    x = (lo[0] + xs / ppu).astype(np.float32)
    y = (lo[1] + ys / ppu).astype(np.float32)

    # Distance from the outline inward (face units), for hems and edge effects.
    inside = (alpha > 0.5).astype(np.uint8)
    edge_distance = cv2.distanceTransform(inside, cv2.DIST_L2, 3).astype(np.float32) / ppu

    h = np.zeros((height, width), np.float32)
    crease = np.ones((height, width), np.float32)
    valve = np.zeros((height, width), np.float32)
    window = np.zeros((height, width), np.float32)
    gloss = np.full((height, width), definition.material.gloss, np.float32)
    glint = np.zeros((height, width), np.float32)
    pixel = 1.0 / ppu

    for feature in definition.relief:
        if isinstance(feature, Pleats):
            middle = (feature.top + feature.bottom) / 2
            spread = x / max(np.abs(outline[:, 0]).max(), 1e-3)
            gather = feature.gather * spread ** 2
            lines = [feature.top + i * (feature.bottom - feature.top) / max(feature.count - 1, 1) for i in range(feature.count)]
            band = (feature.bottom - feature.top) / max(feature.count - 1, 1)
            for k, line in enumerate(lines):
                # Real pleats are pressed, not ruled: each fold line wanders a little.
                wander = 0.012 * np.sin(x * (3.1 + 0.7 * k) + 1.7 * k) + 0.006 * np.sin(x * 9.3 + 0.4 * k)
                fold = line * (1 - gather) + middle * gather + wander
                lap = band * (1 - gather) * 0.9
                below = y - fold  # > 0 under the fold line
                # Each pleat is a layer of fabric lapping over the next: its surface bulges out and
                # rises toward its lower edge (the fold), then drops onto the layer beneath.
                t = np.clip((below + lap) / np.maximum(lap, 1e-3), 0, 1) * (below < 0)
                # Worn, a pleat opens over the nose and chin and stays pressed shut toward the sides:
                # its fold is faint in the middle and crisp near the bindings.
                pressed = (0.3 + 0.7 * np.clip(np.abs(spread), 0, 1) ** 1.5) * (0.85 + 0.3 * _hash(np.float32(k), np.round(x * 12)))
                h += (0.03 * feature.depth * np.sin(np.pi * 0.5 * t) ** 1.2 * (0.6 + 0.4 * pressed)).astype(np.float32)
                # The rolled edge of the fold catches the light; the layer beneath sits in its shadow,
                # darkest right under the edge and fading as the gap opens.
                edge = np.exp(-((below + 0.016) / 0.014) ** 2)
                shadow = np.exp(-np.maximum(below, 0) / 0.045) * _smoothstep(-0.008, 0.008, below)
                crease *= (1 + 0.07 * feature.depth * edge - 0.16 * feature.depth * pressed * shadow).astype(np.float32)
                gloss = np.maximum(gloss, (0.12 * feature.depth * edge).astype(np.float32))
        elif isinstance(feature, Dome):
            # A moulded cup: a rounded shell that rises steeply from a flat rim band (the edge band) and
            # is nearly flat on top, with a faint moulding seam where the shell meets the rim.
            r2 = ((x - feature.centre[0]) / feature.radius[0]) ** 2 + ((y - feature.centre[1]) / feature.radius[1]) ** 2
            rim = 0.06
            shell = _smoothstep(0.0, 0.4, edge_distance - rim) * np.clip(1 - r2, 0, 1) ** 0.9
            h += (0.22 * feature.height * shell).astype(np.float32)
            seam = np.exp(-((edge_distance - rim) / 0.008) ** 2)
            crease *= (1 - 0.12 * seam).astype(np.float32)
            crease *= (1 - 0.05 * _smoothstep(rim, rim - 0.02, edge_distance)).astype(np.float32)
        elif isinstance(feature, Fold):
            h += -0.22 * feature.sharpness * np.sqrt(x ** 2 + 0.0004).astype(np.float32)
            if feature.seam:
                crease *= 1 - 0.35 * np.exp(-(x / 0.012) ** 2).astype(np.float32)
                stitches = 0.5 + 0.5 * np.sin(y * 2 * np.pi / 0.05)
                crease *= 1 - 0.2 * (np.exp(-((np.abs(x) - 0.03) / 0.008) ** 2) * stitches).astype(np.float32)
        elif isinstance(feature, Hem):
            band = _smoothstep(feature.width, feature.width - 2 * pixel, edge_distance)
            if feature.sides_only:
                band *= _smoothstep(0.45, 0.6, np.abs(x) / max(np.abs(outline[:, 0]).max(), 1e-3))
            crease *= 1 - (1 - feature.shade) * band
            h += 0.02 * band
            stitch_line = np.exp(-((edge_distance - feature.width) / 0.008) ** 2) * (0.5 + 0.5 * np.sin((x + y) * 2 * np.pi / 0.045))
            if feature.sides_only:
                stitch_line *= band > 0.01
            crease *= 1 - 0.25 * stitch_line.astype(np.float32)
        elif isinstance(feature, Wire):
            top_edge = edge_distance
            ridge = np.exp(-((top_edge - feature.offset) / 0.02) ** 2) * _smoothstep(feature.width, feature.width - 0.08, np.abs(x))
            ridge *= y < 0.9
            h += 0.03 * ridge.astype(np.float32)
        elif isinstance(feature, Ribs):
            angle = np.radians(feature.angle)
            across = -x * np.sin(angle) + y * np.cos(angle) + feature.offset
            along = x * np.cos(angle) + y * np.sin(angle)
            phase = (across + feature.wobble * np.sin(along * 2 * np.pi / 0.9)) * 2 * np.pi / feature.period
            # Where along their direction the ridges exist (fingers end at the palm).
            reach = np.ones_like(x) if feature.span is None else (
                _smoothstep(feature.span[0] - 0.05, feature.span[0] + 0.05, along)
                * _smoothstep(feature.span[1] + 0.08, feature.span[1] - 0.08, along))
            if feature.profile == "cylinders":  # side-by-side rounded bands (fingers, rolled folds) with dark seams
                t = ((phase / (2 * np.pi)) % 1.0) * 2 - 1  # -1..1 across each band; seams where `across` is a multiple of period
                bands = np.sqrt(np.clip(1 - t ** 2, 0, 1))
                h += (0.05 * feature.depth * feature.period / 0.25 * bands * reach).astype(np.float32)
                crease *= (1 - 0.35 * feature.depth * np.exp(-((np.abs(t) - 1) / 0.08) ** 2) * reach).astype(np.float32)
            else:  # soft fabric folds: rounded ridges of uneven height, not a regular zig-zag
                fold_index = np.floor(phase / (2 * np.pi))
                fold_height = 0.35 + 0.65 * _hash(fold_index, np.float32(feature.period * 100))
                ridge = (0.5 - 0.5 * np.cos(phase)) ** 1.5 * fold_height
                h += (0.045 * feature.depth * feature.period / 0.25 * ridge * reach).astype(np.float32)
                valley = (0.5 + 0.5 * np.cos(phase)) ** 4 * fold_height
                crease *= (1 - 0.1 * feature.depth * valley * reach).astype(np.float32)
        elif isinstance(feature, Valve):
            r = np.sqrt((x - feature.centre[0]) ** 2 + (y - feature.centre[1]) ** 2) / feature.radius
            disc = _smoothstep(1.0, 1.0 - 2 * pixel / feature.radius, r)
            valve = np.maximum(valve, disc)
            h += 0.12 * (np.sqrt(np.clip(1 - r ** 2, 0, 1)) * disc).astype(np.float32)
            rings = 1 - 0.35 * np.exp(-((r - 0.62) / 0.05) ** 2) - 0.25 * np.exp(-((r - 0.95) / 0.04) ** 2)
            slots = 1 - 0.3 * (np.abs(np.sin((y - feature.centre[1]) * 2 * np.pi / (feature.radius * 0.28))) < 0.35) * (r < 0.5)
            crease *= np.where(disc > 0, rings * slots, 1).astype(np.float32)
            gloss = np.maximum(gloss, 0.35 * disc)
        elif isinstance(feature, Window):
            r = np.sqrt(((x - feature.centre[0]) / feature.size[0]) ** 2 + ((y - feature.centre[1]) / feature.size[1]) ** 2)
            scale = min(feature.size)
            clear = _smoothstep(1.0, 1.0 - 1.5 * pixel / scale, r)
            window = np.maximum(window, clear * (1 - feature.opacity))
            frame = np.exp(-((r - 1.0) * scale / max(feature.frame, pixel)) ** 2)
            stitches = 0.5 + 0.5 * np.sin(np.arctan2(y - feature.centre[1], x - feature.centre[0]) * 60)
            crease *= 1 - (0.25 * frame + 0.2 * np.exp(-((r - 1.0) * scale / 0.012 - 2.2) ** 2) * stitches).astype(np.float32)
            h += 0.02 * frame.astype(np.float32)
            # The plastic bows out a little: a broad reflection streak across its upper part.
            streak = np.exp(-(((y - feature.centre[1]) + 0.35 * feature.size[1] + 0.25 * (x - feature.centre[0]))
                              / (0.18 * feature.size[1])) ** 2)
            fade = np.clip(1 - 0.6 * np.abs(x - feature.centre[0]) / feature.size[0], 0, 1)
            glint = np.maximum(glint, (clear * streak * fade).astype(np.float32))
            gloss = np.maximum(gloss, 0.6 * clear)

    # A slight roll-off at the outline: fabric edges turn away from the camera and sit in the
    # face's shadow (ambient occlusion where the mask meets the skin).
    h -= 0.015 * np.exp(-edge_distance / 0.03).astype(np.float32)
    crease *= (1 - 0.1 * np.exp(-edge_distance / 0.04)).astype(np.float32)
    # Soften the relief by about a pixel so sharp steps (fold edges) shade as narrow bands, not aliased lines.
    h = cv2.GaussianBlur(h, (0, 0), max(0.02 * ppu, 0.7))
    gy, gx = np.gradient(h * ppu)
    normals = np.stack([-gx, -gy, np.ones_like(h)], axis=-1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)

    u = surface_u(x).astype(np.float32)
    # Texture drawn on the surface, then resampled to frontal columns (compressed toward the cheeks).
    padded_x = lo[0] + (np.arange(width + 2 * NOISE_PAD) - NOISE_PAD) / ppu
    columns = (surface_u(padded_x) - surface_u(padded_x[0])) * ppu
    surface = _noise_tile(definition.material.kind, (height + 2 * NOISE_PAD, int(np.ceil(columns[-1])) + 2), seed=level)
    map_x = np.broadcast_to(columns.astype(np.float32), (height + 2 * NOISE_PAD, len(columns)))
    map_y = np.broadcast_to(np.arange(height + 2 * NOISE_PAD, dtype=np.float32)[:, None], map_x.shape)
    noise = cv2.remap(surface, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_LINEAR)
    return StaticTemplate(ppu, np.asarray(lo, np.float32), x, y, u, alpha, normals.astype(np.float32), crease, valve,
                          window, gloss, noise, outline, albedo, glint=np.clip(glint, 0, 1))


# Base period of each pattern in face units (times the sample's pattern_scale), and the tile that
# repeats it: (periods across, periods down). Florals repeat every 8 jittered cells.
PATTERN_PERIODS = {"stripes": 0.16, "dots": 0.15, "checks": 0.13, "floral": 0.32}
PATTERN_TILES = {"stripes": (1, 1), "dots": (1, 2), "checks": (1, 1), "floral": (8, 8)}
TILE_MIPS = (4, 8, 16, 32, 64)  # tile pixels per period; a sample uses the one nearest its own resolution
FLORAL_CELLS = 8


def _pattern_draw(pattern: str, u: np.ndarray, v: np.ndarray, pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """(second-colour weight, accent weight) of a pattern at period 1, anti-aliased for `pixel` (in periods)."""
    zero = np.zeros_like(u)
    if pattern == "stripes":
        return _smoothstep(0.5 - pixel, 0.5 + pixel, np.abs(v % 1.0 - 0.5) * 2), zero
    if pattern == "dots":
        row = np.floor(v)
        shifted = u + 0.5 * (row % 2)
        distance = np.sqrt((shifted - np.round(shifted)) ** 2 + (v - row - 0.5) ** 2)
        return np.clip((0.3 - distance) / pixel + 0.5, 0, 1), zero
    if pattern == "checks":  # gingham: two crossing sets of bands; where both cross the colour is full
        a = _smoothstep(0.5 - pixel, 0.5 + pixel, np.abs(u % 1.0 - 0.5) * 2)
        b = _smoothstep(0.5 - pixel, 0.5 + pixel, np.abs(v % 1.0 - 0.5) * 2)
        return (a + b) * 0.5, zero
    # floral: jittered five-petal flowers with accent centres, one per cell; the cell hash
    # repeats every FLORAL_CELLS cells so the tile wraps seamlessly.
    ci, cj = np.floor(u) % FLORAL_CELLS, np.floor(v) % FLORAL_CELLS
    cx = np.floor(u) + 0.25 + 0.5 * _hash(ci, cj)
    cy = np.floor(v) + 0.25 + 0.5 * _hash(cj + 7.0, ci)
    dx, dy = u - cx, v - cy
    r = np.sqrt(dx ** 2 + dy ** 2)
    theta = np.arctan2(dy, dx) + 6.283 * _hash(ci + 3.0, cj + 5.0)
    petal = 0.3 * (0.62 + 0.38 * np.cos(5 * theta))
    return np.clip((petal - r) / pixel + 0.5, 0, 1), np.clip((0.08 - r) / pixel + 0.5, 0, 1)


@lru_cache(maxsize=32)
def pattern_tile(pattern: str, per_period: int) -> np.ndarray:
    """A seamless HxWx2 float32 tile (second-colour weight, accent weight) at `per_period` pixels per period."""
    across, down = PATTERN_TILES[pattern]
    v, u = np.mgrid[0:down * per_period, 0:across * per_period].astype(np.float64) / per_period
    second, accent = _pattern_draw(pattern, u, v, 1.0 / per_period)
    return cv2.merge([second.astype(np.float32), accent.astype(np.float32)])


def pattern_weights(params: MaskParams, x: np.ndarray, y: np.ndarray, pixel: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(weight of the second colour, weight of the accent colour) over the template, or None for plain.

    Patterns are cached periodic tiles pulled through one `cv2.remap` (wrapping), rotated by the
    sample's angle and scaled by its pattern_scale; the tile's resolution is picked to match
    the template's, so stripes and dots stay anti-aliased.
    """
    if params.pattern == "plain":
        return None
    period = PATTERN_PERIODS[params.pattern] * params.pattern_scale
    wanted = period / pixel  # template pixels per period
    per_period = next((m for m in TILE_MIPS if m >= wanted), TILE_MIPS[-1])
    tile = pattern_tile(params.pattern, per_period)
    angle = np.radians(params.pattern_angle)
    factor = np.float32(per_period / period)
    cos, sin = np.float32(np.cos(angle)) * factor, np.float32(np.sin(angle)) * factor
    map_x = (x * cos + y * sin).astype(np.float32, copy=False)
    map_y = (y * cos - x * sin).astype(np.float32, copy=False)
    sampled = cv2.remap(tile, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    second, accent = cv2.split(sampled)
    return second, (accent if params.pattern == "floral" else None)


def _photo_albedo(template: StaticTemplate, params: MaskParams) -> list[np.ndarray]:
    """The photo's colours, recoloured toward `params.color` (unless `params.recolor` is off).

    Hue turns by the difference between the target's hue and the photo's dominant hue, and
    saturation and brightness scale by their ratios, so prints and seams keep their contrast.
    A near-grey photo (white N95, grey fabric) is tinted instead: its brightness times the target.
    """
    if not params.recolor:
        return [np.ascontiguousarray(template.albedo[..., c]) for c in range(3)]
    hsv, (hue, saturation, value) = template.albedo_hsv()
    target = cv2.cvtColor(np.float32([[params.color]]) / 255, cv2.COLOR_RGB2HSV)[0, 0]
    if saturation < 0.15:
        rgb_target = np.asarray(params.color, np.float32) / max(value * 255, 1.0)
        return [template.albedo[..., c] * rgb_target[c] for c in range(3)]
    turned = hsv.copy()
    turned[..., 0] = (hsv[..., 0] + (target[0] - hue)) % 360
    turned[..., 1] = np.clip(hsv[..., 1] * np.clip(target[1] / max(saturation, 1e-3), 0.3, 3.0), 0, 1)
    turned[..., 2] = np.clip(hsv[..., 2] * np.clip(target[2] / max(value, 1e-3), 0.6, 1.5), 0, 1)
    rgb = cv2.cvtColor(turned, cv2.COLOR_HSV2RGB) * 255
    return [np.ascontiguousarray(rgb[..., c]) for c in range(3)]


def colourise(template: StaticTemplate, params: MaskParams, light_face: np.ndarray, shading: float,
              valve_colour: tuple[int, int, int] | None) -> np.ndarray:
    """HxWx4 float32 premultiplied RGBA (colour 0..255 times alpha, alpha 0..1) of one sample's mask in face space.

    Premultiplied colour filters correctly when warped and composites with one multiply-add.

    `light_face` is the unit light direction in face space; shading adds only the relief's
    departure from a flat surface (the scene light itself is applied to the whole image later).
    Works channel by channel on 2-D arrays: numpy broadcasting over a trailing axis of 3 is slow.
    """
    h, w = template.shape
    weights = pattern_weights(params, template.u, template.y, 1.0 / template.ppu) if template.albedo is None else None
    # Fabric texture: a window of the noise tile picked by the sample's seed.
    span = 2 * NOISE_PAD + 1
    oy, ox = (params.texture_seed // span) % span, params.texture_seed % span
    noise = template.noise[oy:oy + h, ox:ox + w]
    light32 = light_face.astype(np.float32)
    lambert = template.normals @ light32
    relief = 1 + shading * (lambert - light32[2])
    factor = np.clip(relief * template.crease * (1 + 0.09 * params.texture_strength * noise), 0.25, 1.6)
    spec = None
    if template.gloss.any():  # specular glint (plastic window, valve): Blinn-Phong, viewer on the z axis
        half = light32 + np.float32([0.0, 0.0, 1.0])
        half /= np.linalg.norm(half)
        spec = 255 * np.clip(template.normals @ half, 0, 1) ** 40 * template.gloss
        if template.glint is not None and template.glint.any():
            spec = spec + 150 * template.glint
    base = _photo_albedo(template, params) if template.albedo is not None else None
    channels = []
    for c in range(3):
        channel = base[c].copy() if base is not None else np.full((h, w), float(params.color[c]), np.float32)
        if weights is not None:
            second, accent = weights
            channel += (params.color2[c] - params.color[c]) * second
            if accent is not None:
                channel += (params.color3[c] - channel) * accent
        if valve_colour is not None and template.valve.any():
            channel += (valve_colour[c] - channel) * template.valve
        channel *= factor
        if spec is not None:
            channel += spec
        channels.append(np.clip(channel, 0, 255) * template.visible)
    return cv2.merge([*channels, template.visible])
