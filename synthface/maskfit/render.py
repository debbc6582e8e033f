"""Fit one mask to one face: warp its face-space template onto the image, add straps and a contact shadow.

Steps, all on the mask's bounding box only:
1. thin-plate spline image -> face space from ~64 lower-face landmarks (bends over the nose,
   wraps the jaw, compresses the far side under yaw);
2. wear style, size and vertical offset as one affine in face space;
3. the coloured template (see `template.py`) pulled through the map with one `cv2.remap`;
4. clipped to the face contour plus the type's margin, straps drawn toward the ears (the far
   one hidden behind a turned head), a soft contact shadow on the skin, then composited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from synthface import facemesh
from synthface.generation.capture import CaptureEstimate, add_capture_noise, match_layer
from synthface.maskfit.appearance import MaskParams
from synthface.maskfit.canonical import canonical_face
from synthface.maskfit.definitions import MaskDefinition, Valve
from synthface.maskfit.hands import render_hand, sample_hand
from synthface.maskfit.proportions import LOWER_EYELIDS, clear_the_eyes, reach_below_jaw, tuck_map
from synthface.maskfit.straps import Pose, Strand, out_from_under, strap_anchors, strap_strands
from synthface.maskfit.template import LEVELS, colourise, static_template
from synthface.maskfit.warp import (
    MaskFitError,
    ThinPlateSpline,
    clip_polygon,
    control_indices,
    face_scale,
    face_to_image,
    far_side,
    head_rotation,
)

GRID_STEP_UNITS = 0.12  # coarse map spacing in face units (about 7 px on a 224 px crop)
SPLINE_SMOOTHING = 0.1  # thin-plate regularisation: landmark jitter must not ripple the mask
SHADOW_STRENGTH = 0.35  # darkening of the skin right under a mask edge that faces away from the light
# Face units below the chin that a mask pulled onto the chin, or a strap hanging loose, may cover.
HANGING_BOTTOM_MARGIN = {"chin": 0.5, "strap_loose": 0.7}


@dataclass
class MaskRender:
    """The composited image, the pixels the mask covers, and their share of the face oval."""

    image: np.ndarray  # HxWx3 uint8 RGB
    occlusion: np.ndarray  # HxW bool
    occluded_fraction: float  # covered share of the FACE_OVAL area
    alpha: np.ndarray  # HxW float32 coverage (anti-aliased occlusion)


def _hex_rgb(text: str) -> tuple[int, int, int]:
    return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def effective_margins(definition: MaskDefinition, wear_style: str) -> tuple[float, float]:
    """(side, bottom) margins beyond the face contour, face units, for a type worn in a style."""
    return definition.margin.side, max(definition.margin.bottom, HANGING_BOTTOM_MARGIN.get(wear_style, 0.0))


def wear_transform(definition: MaskDefinition, params: MaskParams) -> np.ndarray:
    """2x3 affine from face space to the template's own space (its outline as defined = proper wear).

    nose_exposed slides the mask down until its top edge sits just under the nose;
    chin slides it under the lower lip and bunches it vertically; strap_loose tilts it toward the
    loose side. Size scales about the mask's centre; vertical_offset shifts it.
    """
    face = canonical_face()
    top = min(y for x, y in definition.outline if x == 0)
    bottom = max(y for x, y in definition.outline if x == 0)
    centre = np.array([0.0, (top + bottom) / 2])
    shift = params.vertical_offset
    squash = 1.0
    angle = 0.0
    if params.wear_style == "nose_exposed":
        target = face[SUBNASALE, 1] + 0.01
        shift += max(target - top, 0.0)
    elif params.wear_style == "chin":
        target = face[facemesh.LOWER_LIP_BOTTOM, 1] + 0.1
        squash = 0.85
        shift += max(target - (centre[1] + (top - centre[1]) * squash), 0.0)
    elif params.wear_style == "strap_loose":
        angle = 5.0 * params.loose_side  # the loose side drops
        shift += 0.05
    # face point p -> template point q:  p = R S (q - c) + c + shift  =>  q = S^-1 R^-1 (p - c - shift) + c
    theta = np.radians(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    scale = np.diag([params.size, params.size * squash])
    forward = rotation @ scale
    inverse = np.linalg.inv(forward)
    offset = centre - inverse @ (centre + np.array([0.0, shift]))
    return np.hstack([inverse, offset[:, None]])


SUBNASALE = 2  # landmark where the nose meets the upper lip
SKIN_SAMPLE_POINTS = (50, 280, 101, 330, 205, 425)  # cheek landmarks below the eyes, away from beard and lips


def _skin_colour(image_rgb: np.ndarray, points: np.ndarray, tint: tuple[int, int, int]) -> tuple[int, int, int]:
    """The face's skin colour (median around the cheek landmarks), nudged 15% toward `tint` (a hand's own tone)."""
    height, width = image_rgb.shape[:2]
    radius = max(int(face_scale(points) * 0.06), 1)
    samples = []
    for index in SKIN_SAMPLE_POINTS:
        x, y = np.round(points[index, :2]).astype(int)
        patch = image_rgb[max(y - radius, 0):min(y + radius + 1, height), max(x - radius, 0):min(x + radius + 1, width)]
        samples.append(patch.reshape(-1, 3))
    pixels = np.concatenate(samples) if samples else np.zeros((0, 3))
    skin = np.median(pixels, axis=0) if len(pixels) else np.asarray(tint, np.float64)
    mixed = 0.85 * skin + 0.15 * np.asarray(tint, np.float64)
    return tuple(int(round(c)) for c in np.clip(mixed, 0, 255))  # type: ignore[return-value]


def _check_points(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if points.shape != (facemesh.NUM_LANDMARKS, 3):
        raise MaskFitError(f"expected ({facemesh.NUM_LANDMARKS}, 3) landmarks, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise MaskFitError("landmarks contain NaN or infinite values")
    scale = face_scale(points)
    if scale < 4:
        raise MaskFitError(f"face too small or degenerate for a mask (cheek distance {2 * scale:.1f} px)")
    oval = points[list(facemesh.FACE_OVAL), :2]
    if cv2.contourArea(oval.astype(np.float32)) < 0.5 * scale ** 2:
        raise MaskFitError("face contour is collapsed (area near zero)")
    height, width = shape
    x0, y0 = oval.min(0)
    x1, y1 = oval.max(0)
    if x1 < 0 or y1 < 0 or x0 >= width or y0 >= height:
        raise MaskFitError("face lies outside the image")
    return points


def _far_outline(points: np.ndarray, polygon: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(far side, outline a strap on that side may not cross) for a turned head, else None."""
    side, turn = far_side(points)
    return (side, polygon) if turn > 0.05 else None


STRAP_SUPERSAMPLE = 4  # straps are drawn at 4x and averaged down: smooth edges at any (fractional) width


def _strand_anchors(definition: MaskDefinition, template, to_template: np.ndarray, image_xy: np.ndarray,
                    scale: float) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Each side's (upper, lower) strap anchors as worn: in face space and in image pixels (through the fit's spline)."""
    forward = np.linalg.inv(np.vstack([to_template, [0, 0, 1]]))[:2]  # template -> face: the wear transform undone
    left = strap_anchors(template.outline, definition.straps.kind)
    faces, images = {}, {}
    for side in (1, -1):
        face = (left * (side, 1.0)) @ forward[:, :2].T + forward[:, 2]
        faces[side] = face
        images[side] = face_to_image(image_xy, face) * scale
    return faces, images


def _strap_layer(strands: list[Strand], definition: MaskDefinition, params: MaskParams, scale: float,
                 light_face: np.ndarray, shape: tuple[int, int]):
    """(x0, y0, premultiplied RGB, alpha) of the straps in their own box, or None when none is in the image."""
    height, width = shape
    every = np.concatenate([s.points for s in strands])
    thickness = max(definition.straps.width * scale, 0.6)
    pad = thickness + 3
    x0, y0 = np.floor(np.maximum(every.min(0) - pad, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(every.max(0) + pad, [width, height])).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    k = STRAP_SUPERSAMPLE
    canvas = np.zeros(((y1 - y0) * k, (x1 - x0) * k), np.uint8)
    curves = [np.round(((s.points - [x0, y0]) * k + (k - 1) / 2) * 16).astype(np.int32) for s in strands]
    cv2.polylines(canvas, curves, False, 255, thickness=max(int(round(thickness * k)), 1), lineType=cv2.LINE_AA, shift=4)
    alpha = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) * (1 / 255)
    # A round cord is lit along its middle and darker at its rims; the scene light tints it a little.
    core = cv2.GaussianBlur(alpha, (0, 0), max(thickness * 0.3, 0.5))
    lit = 0.9 + 0.1 * float(np.clip(light_face[2], 0, 1))
    shade = np.clip(0.72 + 0.38 * core, 0.6, 1.05) * lit
    colour = (np.asarray(params.color, np.float32) * 0.85 + 28 if definition.straps.color == "body"
              else np.asarray(_hex_rgb(definition.straps.color), np.float32))
    premultiplied = cv2.merge([np.clip(shade * float(c), 0, 255) * alpha for c in colour])
    return x0, y0, premultiplied, alpha


def _highest_pixel(definition: MaskDefinition, to_template: np.ndarray, image_xy: np.ndarray) -> float:
    """Image y (in face-scale units) of the highest point the mask can reach (its straps have their own box)."""
    top = min(y for _, y in definition.outline) - 0.1
    if definition.image is not None:
        top = -1.0  # a photo template may reach above its outline
    forward = np.linalg.inv(np.vstack([to_template, [0, 0, 1]]))[:2]  # template -> face
    xs = np.linspace(-1.3, 1.3, 9)
    edge = np.stack([xs, np.full_like(xs, top)], axis=1) @ forward[:, :2].T + forward[:, 2]
    return float(face_to_image(image_xy, edge)[:, 1].min())


WINDOW_HAZE = 0.1  # clear plastic scatters a little light: the face behind it is lifted toward grey
WINDOW_SOFTNESS = 0.8  # and seen slightly out of focus (sigma in face-scale hundredths)


def _behind_plastic(box: np.ndarray, template, maps: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """The face as seen through a clear window: a little hazy and soft, so the window reads as plastic, not a hole."""
    through = cv2.remap(template.window * template.alpha, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT) * clip
    if not through.any():
        return box
    soft = cv2.GaussianBlur(box, (0, 0), WINDOW_SOFTNESS)
    haze = soft * (1 - WINDOW_HAZE) + WINDOW_HAZE * 200.0
    weight = cv2.merge([through] * 3)
    return box * (1 - weight) + haze * weight


def fit_mask(image_rgb: np.ndarray, points: np.ndarray, definition: MaskDefinition, params: MaskParams,
             light_direction: np.ndarray, *, capture: CaptureEstimate | None = None, noise_seed: int = 0) -> MaskRender:
    """Composite `definition` worn as `params` says onto the face whose 478 landmarks are `points` (pixels).

    `capture` (see synthface.generation.capture) gives the mask the photo's exposure, white balance, blur,
    sensor noise and JPEG quality, so it is seen through the same camera as the face.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8 RGB, got {image_rgb.shape} {image_rgb.dtype}")
    height, width = image_rgb.shape[:2]
    points = _check_points(points, (height, width))
    scale = face_scale(points)
    light = np.asarray(light_direction, np.float64)
    light = light / (np.linalg.norm(light) + 1e-12)

    # 1. Image -> face space spline, and where the mask may draw.
    indices = control_indices()
    canonical = canonical_face()
    image_xy = points[indices, :2] / scale
    to_face = ThinPlateSpline(image_xy, canonical[indices, :2], SPLINE_SMOOTHING)
    side_margin, bottom_margin = effective_margins(definition, params.wear_style)
    polygon = clip_polygon(points, side_margin, bottom_margin)
    if definition.generator == "hand":
        return _fit_hand(image_rgb, points, definition, params, light, polygon, capture, noise_seed)
    level = next((lv for lv in LEVELS if lv >= 0.75 * scale), LEVELS[-1])
    template = static_template(definition, level)
    # The face's own proportions: the top edge stays below its lower eyelids (children, short noses).
    eyelids = to_face(points[list(LOWER_EYELIDS), :2] / scale)
    to_template = clear_the_eyes(template.outline, wear_transform(definition, params), eyelids)
    x0, y0 = np.floor(np.maximum(polygon.min(0), 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(polygon.max(0) + 1, [width, height])).astype(int)
    # The clip region spans the whole face; nothing is drawn above the mask's top or its straps.
    y0 = max(y0, int(np.floor(_highest_pixel(definition, to_template, image_xy) * scale)) - 2)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise MaskFitError("the face's lower half is not inside the image")
    box_w, box_h = x1 - x0, y1 - y0

    # 2. Coarse grid, placed so that cv2.resize's pixel-centre sampling reproduces it exactly.
    step = max(GRID_STEP_UNITS * scale, 2.0)
    grid_w, grid_h = max(int(np.ceil(box_w / step)), 2), max(int(np.ceil(box_h / step)), 2)
    gx = x0 + (np.arange(grid_w) + 0.5) * box_w / grid_w - 0.5
    gy = y0 + (np.arange(grid_h) + 0.5) * box_h / grid_h - 0.5
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    face_xy = to_face(grid / scale)

    template_xy = face_xy @ to_template[:, :2].T + to_template[:, 2]
    template_px = (template_xy - template.origin) * template.ppu
    maps = template_px.reshape(grid_h, grid_w, 2).astype(np.float32)
    maps = cv2.resize(maps, (box_w, box_h), interpolation=cv2.INTER_LINEAR)
    maps = tuck_map(maps, template.origin, template.ppu, to_template, params.wear_style, bottom_margin,
                    reach_below_jaw(template.outline, to_template))

    if definition.skin_from_face:
        params = replace(params, color=_skin_colour(image_rgb, points, params.color))
    # 3. Colour the template for this sample and light (light in face space), then warp it.
    rotation = head_rotation(points, indices)
    light_face = rotation.T @ light
    valve_colour = None
    for feature in definition.relief:
        if isinstance(feature, Valve):
            valve_colour = params.color if feature.color == "body" else _hex_rgb(feature.color)
    rgba = colourise(template, params, light_face, definition.material.shading, valve_colour)
    warped = cv2.remap(rgba, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    clip = np.zeros((box_h, box_w), np.uint8)
    cv2.fillPoly(clip, [np.round((polygon - [x0, y0]) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    clip_f = clip.astype(np.float32) * (1 / 255)
    warped = warped * cv2.merge([clip_f] * 4)
    premultiplied = np.ascontiguousarray(warped[..., :3])
    alpha = np.ascontiguousarray(warped[..., 3])

    # 4. Contact shadow, camera match, composite.
    blended, alpha = _composite(image_rgb[y0:y1, x0:x1], premultiplied, alpha, alpha, clip_f, light, scale, capture,
                                noise_seed, (lambda box: _behind_plastic(box, template, maps, clip_f)) if template.window.any() else None)

    out = image_rgb.copy()
    out[y0:y1, x0:x1] = blended
    full_alpha = np.zeros((height, width), np.float32)
    full_alpha[y0:y1, x0:x1] = alpha
    if template.window.any():
        # A clear window still covers the face: count it in the occlusion map though it lets the face show.
        covered = cv2.remap(template.alpha, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        full_alpha[y0:y1, x0:x1] = np.maximum(alpha, covered * clip_f)

    # 5. Straps, from the mask's corners round the head (see straps.py), under the mask body.
    if definition.straps.kind != "none":
        corners_face, corners_image = _strand_anchors(definition, template, to_template, image_xy, scale)
        strands = strap_strands(definition.straps.kind, corners_face, corners_image, Pose.of(points, rotation, scale),
                                params.loose_side, side_margin, _far_outline(points, polygon))
        strands = out_from_under(strands, full_alpha, corners_image, scale)
        layer = _strap_layer(strands, definition, params, scale, light_face, (height, width)) if strands else None
        if layer is not None:
            sx, sy, strap_rgb, strap_alpha = layer
            sh, sw = strap_alpha.shape
            under = 1 - full_alpha[sy:sy + sh, sx:sx + sw]
            strap_alpha = strap_alpha * under
            strap_rgb = strap_rgb * cv2.merge([under] * 3)
            blended, strap_alpha = _composite(out[sy:sy + sh, sx:sx + sw], strap_rgb, strap_alpha, 0.5 * strap_alpha,
                                              np.ones_like(strap_alpha), light, 0.3 * scale, capture, noise_seed + 1)
            out[sy:sy + sh, sx:sx + sw] = blended
            full_alpha[sy:sy + sh, sx:sx + sw] += strap_alpha
    return _result(out, full_alpha, points)


def _result(out: np.ndarray, full_alpha: np.ndarray, points: np.ndarray) -> MaskRender:
    occlusion = full_alpha > 0.5
    oval = facemesh.polygon_mask(points, facemesh.FACE_OVAL, out.shape[:2])
    fraction = float((occlusion & oval).sum() / max(oval.sum(), 1))
    return MaskRender(out, occlusion, fraction, full_alpha)


def _composite(box_rgb: np.ndarray, premultiplied: np.ndarray, alpha: np.ndarray, body_alpha: np.ndarray,
               clip_f: np.ndarray, light: np.ndarray, scale: float, capture: CaptureEstimate | None, noise_seed: int,
               see_through=None) -> tuple[np.ndarray, np.ndarray]:
    """Blend a premultiplied layer over an image box: contact shadow on the skin, the photo's camera on the layer.

    Returns (blended uint8 box, the layer's final alpha). `see_through` alters the skin behind a clear window.
    """
    box_h, box_w = alpha.shape
    # The occluder stands off the skin, so its edge casts a soft shadow away from the light.
    offset = np.clip(-light[:2] / max(light[2], 0.3), -2, 2) * 0.025 * scale
    shift = np.float32([[1, 0, offset[0]], [0, 1, offset[1] + 0.01 * scale]])
    cast = cv2.warpAffine(body_alpha, shift, (box_w, box_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    cast = cv2.GaussianBlur(cast, (0, 0), max(0.03 * scale, 0.8))
    # Cut the blur's faint tail (it would tint eyes a level) and keep the shadow on the face.
    cast = np.maximum(cast - 0.03, 0) * (clip_f / 0.97)
    if capture is not None:  # the same camera as the face: exposure, white balance, softness
        premultiplied, alpha = match_layer(premultiplied, alpha, capture)
    uncovered = 1 - alpha
    skin_weight = uncovered * (1 - SHADOW_STRENGTH * cast * uncovered)
    box = box_rgb.astype(np.float32)
    if see_through is not None:
        box = see_through(box)
    blended = box * cv2.merge([skin_weight] * 3) + premultiplied
    blended = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    if capture is not None:  # and its grain and compression, on the layer only (the photo has its own)
        blended = add_capture_noise(blended, alpha, capture, noise_seed)
    return blended, alpha


def _fit_hand(image_rgb: np.ndarray, points: np.ndarray, definition: MaskDefinition, params: MaskParams,
              light: np.ndarray, polygon: np.ndarray, capture: CaptureEstimate | None, noise_seed: int) -> MaskRender:
    """A procedural hand (`generator: hand`): a new shape and pose per sample, drawn from its texture seed."""
    height, width = image_rgb.shape[:2]
    shape = sample_hand(np.random.default_rng(params.texture_seed))
    skin = _skin_colour(image_rgb, points, params.color)
    layer = render_hand(shape, points, (height, width), skin, light, definition.material.shading)
    if layer is None:
        raise MaskFitError("the hand falls outside the image")
    box_h, box_w = layer.alpha.shape
    x0, y0 = layer.x0, layer.y0
    clip = np.zeros((box_h, box_w), np.uint8)  # its shadow falls on the face only
    cv2.fillPoly(clip, [np.round((polygon - [x0, y0]) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    blended, alpha = _composite(image_rgb[y0:y0 + box_h, x0:x0 + box_w], layer.premultiplied, layer.alpha, layer.alpha,
                                clip.astype(np.float32) * (1 / 255), light, face_scale(points), capture, noise_seed)
    out = image_rgb.copy()
    out[y0:y0 + box_h, x0:x0 + box_w] = blended
    full_alpha = np.zeros((height, width), np.float32)
    full_alpha[y0:y0 + box_h, x0:x0 + box_w] = alpha
    return _result(out, full_alpha, points)
