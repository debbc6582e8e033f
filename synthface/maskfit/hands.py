"""Procedural hands held over the lower face (the `hand` confuser, `generator: hand`).

Every sample gets its own hand, drawn from a seed: pose (fingers up over the mouth, across it
from one side), which side of the hand faces the camera (back: nails,
knuckle creases; palm: lighter palm and its lines), left or right hand, size, angle, finger
spread, lengths, widths and curl, and whether the thumb shows. Its colour is the face's own
skin (sampled on the cheeks) shifted a little, as a hand's tone differs from the face's.

The hand is built as parts (forearm, palm, fingers, thumb) in face space (see
`canonical.py`: x = +-1 at the cheeks, y = 0 at the nose bridge, 1.7 at the chin), mapped to
the image with an affine fitted to the lower face (a hand in front of the face is nearly
flat: it follows the head's roll, scale and yaw compression, not the face's curvature). Each
part is a rounded solid: a height field from its distance transform gives normals for
shading, valleys between touching fingers darken, and the alpha edge is soft.

Pure functions: `sample_hand(rng)` -> `HandShape`; `render_hand(shape, points, ...)` ->
`HandLayer` (premultiplied colour and alpha over a box of the image).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthface.maskfit.canonical import canonical_face

POSES = ("up", "across")
POSE_WEIGHTS = (0.5, 0.5)
VIEWS = ("back", "palm")
# Highest face-space y any part of the hand may reach: below the nose tip's upper half, so a hand
# never hides an eye (the nose bridge is y = 0, the nose tip 0.58, the lower eyelid 0.12).
TOP_LIMIT = 0.5
# Landmarks the face -> image affine is fitted on: lower contour, nose, lips, chin (all move with
# the hand's plane, unlike the upper face).
AFFINE_POINTS = (2, 0, 17, 61, 291, 152, 199, 175, 148, 377, 172, 397, 132, 361, 58, 288, 205, 425, 1, 4)


@dataclass(frozen=True)
class HandShape:
    """Everything random about one hand (face units, degrees)."""

    pose: str  # up (fingers up over the mouth) / across (fingers across the mouth from one side)
    view: str  # back (back of the hand toward the camera) / palm
    mirror: bool  # a left hand instead of a right one
    size: float  # scale of the whole hand (1: an adult's hand on an adult's face)
    angle: float  # direction the fingers point, degrees from straight up, clockwise in the image
    spread: float  # degrees between neighbouring fingers
    curl: float  # 0 straight .. 1 strongly bent toward the palm (foreshortened)
    finger_length: float  # multiplier
    finger_width: float  # multiplier
    palm_width: float  # multiplier
    thumb: bool  # the thumb is visible (else tucked under the chin or behind the palm)
    thumb_angle: float  # degrees away from the fingers
    top: float  # face-space y of the hand's highest point
    across: float  # sideways placement of the hand's centre, face units
    tone: float  # brightness of the hand's skin relative to the face's
    redness: float  # how much redder than the face (0..1)
    texture_seed: int


def sample_hand(rng: np.random.Generator) -> HandShape:
    """Draw one hand's shape and pose."""
    pose = str(rng.choice(POSES, p=POSE_WEIGHTS))
    if pose == "up":
        angle = float(rng.uniform(-28, 28))
    else:
        angle = float(rng.choice([-1, 1]) * rng.uniform(62, 105))
    mirror = bool(rng.random() < 0.5)
    if pose == "across":  # the thumb hangs toward the chin (held up, it would poke at the eye)
        mirror = angle < 0
    return HandShape(
        pose=pose,
        view="palm" if rng.random() < 0.3 else "back",
        mirror=mirror,
        size=float(rng.uniform(0.82, 1.12)),
        angle=angle,
        spread=float(rng.choice([0.0, rng.uniform(0, 4), rng.uniform(4, 13)], p=[0.35, 0.35, 0.3])),
        curl=float(rng.uniform(0.0, 0.45)),
        finger_length=float(rng.uniform(0.88, 1.1)),
        finger_width=float(rng.uniform(0.88, 1.15)),
        palm_width=float(rng.uniform(0.9, 1.1)),
        thumb=bool(rng.random() < 0.7),
        thumb_angle=float(rng.uniform(25, 60)),
        top=float(rng.uniform(TOP_LIMIT, 0.78)),
        across=float(rng.uniform(-0.25, 0.25)),
        tone=float(rng.uniform(0.9, 1.05)),
        redness=float(rng.uniform(0.0, 1.0)),
        texture_seed=int(rng.integers(1 << 16)),
    )


@dataclass
class Part:
    """One rounded solid of the hand: its outline (face units), its half thickness and the layer it lies on."""

    kind: str  # forearm / palm / finger / thumb
    outline: np.ndarray  # (N, 2)
    radius: float  # half width of the rounded profile, face units
    lift: float  # added height (a thumb lies over the fingers)
    joints: list[np.ndarray]  # (2,) face points of creases (finger joints), with `axes`
    axis: np.ndarray  # (2,) unit direction from base to tip
    tip: np.ndarray | None = None  # (2,) the finger's tip (nails)
    base: np.ndarray | None = None  # (2,) the finger's knuckle on the palm


def _capsule(points: np.ndarray, widths: np.ndarray, samples: int = 6) -> np.ndarray:
    """A tapered tube along a polyline with a round tip: (N, 2) outline."""
    direction = np.gradient(points, axis=0)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    left = points + normal * widths[:, None]
    right = points - normal * widths[:, None]
    end, radius, forward = points[-1], widths[-1], direction[-1]
    angles = np.linspace(0, np.pi, samples * 2 + 1)[1:-1]
    cap = end + radius * (np.cos(angles)[:, None] * normal[-1] + np.sin(angles)[:, None] * forward)
    return np.concatenate([left, cap, right[::-1]])


def _finger(base: np.ndarray, direction: float, length: float, width: float, curl: float, bend_side: float) -> Part:
    """A finger from its knuckle: three phalanges, bending toward the palm (shortened) and slightly sideways."""
    proportions = np.array([0.45, 0.3, 0.25])
    foreshorten = np.array([1.0, np.cos(curl * 1.0), np.cos(curl * 1.5)])
    heading = np.radians(direction)
    points = [base]
    for segment, (share, shrink) in enumerate(zip(proportions, foreshorten)):
        heading += np.radians(bend_side * 4.0 * (segment + 1) * curl)
        step = np.array([np.sin(heading), -np.cos(heading)]) * length * share * shrink
        points.append(points[-1] + step)
    points = np.array(points)
    widths = width * np.array([1.0, 0.95, 0.88, 0.8])
    axis = points[-1] - points[0]
    axis /= np.linalg.norm(axis) + 1e-9
    return Part("finger", _capsule(points, widths), width, 0.0, [points[1], points[2]], axis, tip=points[-1], base=points[0])


def hand_parts(shape: HandShape) -> list[Part]:
    """The hand's parts in face space, drawing order (forearm first, thumb last)."""
    s = shape.size
    palm_w = 0.6 * s * shape.palm_width  # half width at the knuckles
    palm_len = 1.3 * s
    finger_lengths = np.array([0.95, 1.05, 0.98, 0.78]) * s * shape.finger_length
    finger_widths = np.array([0.125, 0.13, 0.122, 0.105]) * s * shape.finger_width
    knuckle_x = np.array([0.36, 0.12, -0.12, -0.36]) * 2 * palm_w * 0.95
    knuckle_y = -palm_len + np.array([0.03, 0.0, 0.04, 0.12]) * s
    parts: list[Part] = []
    # Hand-local frame: wrist centre at the origin, fingers toward -y, thumb toward +x.
    wrist_w = 0.78 * palm_w
    forearm = np.array([[-wrist_w, 0.05], [wrist_w, 0.05], [wrist_w * 1.15, 3.2 * s], [-wrist_w * 1.15, 3.2 * s]])
    parts.append(Part("forearm", forearm, 0.4 * s, -0.05, [], np.array([0.0, -1.0])))
    palm = np.array([
        [-wrist_w, 0.1 * s], [wrist_w, 0.1 * s], [palm_w * 1.02, -0.45 * palm_len], [palm_w * 0.98, knuckle_y[0] + 0.02],
        [knuckle_x[1], knuckle_y[1] - 0.04 * s], [knuckle_x[2], knuckle_y[2] - 0.04 * s],
        [-palm_w * 0.98, knuckle_y[3] + 0.02], [-palm_w * 1.0, -0.45 * palm_len],
    ])
    parts.append(Part("palm", palm, 0.45 * s, 0.0, [], np.array([0.0, -1.0])))
    for i in range(4):
        direction = shape.spread * (1.5 - i) * 0.9
        parts.append(_finger(np.array([knuckle_x[i], knuckle_y[i]]), direction, finger_lengths[i], finger_widths[i],
                             shape.curl, bend_side=(1.5 - i) * 0.5))
    if shape.thumb:
        base = np.array([palm_w * 0.85, -0.22 * palm_len])
        thumb = _finger(base, shape.thumb_angle, 0.85 * s * shape.finger_length, 0.14 * s, 0.2, 1.0)
        thumb.kind, thumb.lift = "thumb", 0.04 * s
        parts.append(thumb)
    return parts


def _place(shape: HandShape, parts: list[Part]) -> np.ndarray:
    """2x3 affine hand-local -> face space: mirror, rotate by the pose's angle, move over the mouth."""
    theta = np.radians(shape.angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    if shape.mirror:
        rotation = rotation @ np.diag([-1.0, 1.0])
    body = np.concatenate([p.outline for p in parts if p.kind != "forearm"])
    moved = body @ rotation.T
    if shape.pose == "up":  # fingertips at `top`, centred under the nose
        shift = np.array([shape.across - np.mean(moved[:, 0]), shape.top - moved[:, 1].min()])
    else:  # the fingers' band centred on the mouth, the fingertips past the far mouth corner
        centre = np.array([shape.across, 0.92 + 0.6 * (shape.top - TOP_LIMIT)])
        tips = np.array([p.tip for p in parts if p.kind == "finger"]) @ rotation.T
        knuckles = np.array([p.joints[0] for p in parts if p.kind == "finger"]) @ rotation.T
        band = (tips.mean(0) + knuckles.mean(0)) / 2
        shift = centre - band
    top = (moved + shift)[:, 1].min()
    shift[1] += max(TOP_LIMIT - top, 0.0)  # never above the limit, whatever the rotation
    return np.hstack([rotation, shift[:, None]])


def face_to_image_affine(points: np.ndarray) -> np.ndarray:
    """2x3 least-squares affine from face space to image pixels over the lower face's landmarks."""
    face = canonical_face()[list(AFFINE_POINTS), :2].astype(np.float64)
    image = np.asarray(points, np.float64)[list(AFFINE_POINTS), :2]
    design = np.hstack([face, np.ones((len(face), 1))])
    solution, *_ = np.linalg.lstsq(design, image, rcond=None)
    return solution.T


@dataclass
class HandLayer:
    """A rendered hand over the image box [y0:y1, x0:x1]."""

    x0: int
    y0: int
    premultiplied: np.ndarray  # hxwx3 float32, colour 0..255 times alpha
    alpha: np.ndarray  # hxw float32 0..1
    colour: tuple[int, int, int]  # the hand's base skin colour


def hand_colour(face_skin: tuple[int, int, int], shape: HandShape) -> np.ndarray:
    """The hand's base colour: the face's skin, a little brighter or darker and redder (hands are)."""
    skin = np.asarray(face_skin, np.float32) * shape.tone
    skin = skin + shape.redness * np.float32([6.0, -2.0, -3.0])
    return np.clip(skin, 0, 255)


def palm_colour(skin: np.ndarray) -> np.ndarray:
    """Palms are lighter and pinker than the back of the hand, much more so on dark skin."""
    luma = float(skin @ np.float32([0.299, 0.587, 0.114]))
    lift = 0.12 + 0.25 * np.clip((170 - luma) / 120, 0, 1)
    return skin + lift * (np.maximum(np.float32([228, 178, 160]), skin) - skin)


def _to_px(poly: np.ndarray, affine: np.ndarray, origin: np.ndarray) -> np.ndarray:
    return poly @ affine[:, :2].T + affine[:, 2] - origin


def _fill(poly_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    layer = np.zeros(shape, np.uint8)
    cv2.fillPoly(layer, [np.round(poly_px * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    return layer


def _lines(layer: np.ndarray, segments: list[np.ndarray], value: float, thickness: int) -> None:
    curves = [np.round(s * 16).astype(np.int32) for s in segments]
    cv2.polylines(layer, curves, False, float(value), thickness=thickness, lineType=cv2.LINE_AA, shift=4)


def render_hand(shape: HandShape, points: np.ndarray, image_shape: tuple[int, int], face_skin: tuple[int, int, int],
                light: np.ndarray, shading: float = 0.6) -> HandLayer | None:
    """Draw `shape` over the face whose 478 landmarks are `points` (pixels); None if it falls outside the image.

    `light` is the unit direction toward the key light in image axes (x right, y down, z to the camera).
    """
    parts = hand_parts(shape)
    place = _place(shape, parts)
    to_image = face_to_image_affine(points)
    affine = np.hstack([to_image[:, :2] @ place[:, :2], (to_image[:, :2] @ place[:, 2] + to_image[:, 2])[:, None]])
    unit_px = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))  # pixels per face unit (geometric mean)
    height, width = image_shape
    everything = np.concatenate([p.outline for p in parts]) @ affine[:, :2].T + affine[:, 2]
    x0, y0 = np.floor(np.maximum(everything.min(0) - 2, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(everything.max(0) + 2, [width, height])).astype(int)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    box = (y1 - y0, x1 - x0)
    origin = np.array([x0, y0], np.float64)
    rng = np.random.default_rng(shape.texture_seed)

    # Coverage and a height field: each part a rounded solid, the union a z-buffer (max).
    alpha = np.zeros(box, np.float32)
    height_map = np.zeros(box, np.float32)
    kinds = np.zeros(box, np.uint8)  # 1 forearm, 2 palm, 3 finger, 4 thumb: where each part is on top
    for part in parts:
        poly = _to_px(part.outline, affine, origin)
        layer = _fill(poly, box)
        inside = layer > 127
        if not inside.any():
            continue
        distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
        radius = max(float(part.radius) * unit_px, 1.0)
        profile = 1 - np.minimum(distance / radius, 1.0)
        bump = radius * np.sqrt(np.clip(1 - profile ** 2, 0, 1)) + float(part.lift) * unit_px
        top = inside & (bump >= height_map)
        height_map = np.where(top, bump, height_map).astype(np.float32)
        kinds[top] = {"forearm": 1, "palm": 2, "finger": 3, "thumb": 4}[part.kind]
        alpha = np.maximum(alpha, layer.astype(np.float32) * (1 / 255))

    if shape.view == "back":  # knuckles stand out of the back of the hand
        bumps = np.zeros(box, np.float32)
        for part in parts:
            if part.kind == "finger":
                kx, ky = _to_px(part.base[None] + part.axis * 0.04 * shape.size, affine, origin)[0]
                if 0 <= kx < box[1] and 0 <= ky < box[0]:
                    bumps[int(ky), int(kx)] = 1.0
        spread = max(0.07 * unit_px, 1.0)
        bumps = cv2.GaussianBlur(bumps, (0, 0), spread) * (2 * np.pi * spread ** 2) * 0.06 * unit_px
        height_map = height_map + bumps * (kinds == 2)

    # Shading from the height field's normals; valleys (between fingers, under the thumb) darken.
    smooth = cv2.GaussianBlur(height_map, (0, 0), max(0.025 * unit_px, 0.7))
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8
    norm = np.sqrt(gx * gx + gy * gy + 1)
    light32 = np.asarray(light, np.float32)
    lambert = (-gx * light32[0] - gy * light32[1] + light32[2]) / norm
    valley = np.clip(cv2.GaussianBlur(height_map, (0, 0), max(0.06 * unit_px, 1.0)) - height_map, 0, None)
    occlusion = np.clip(1 - 1.6 * valley / max(0.12 * unit_px, 1.0), 0.55, 1)
    factor = (1 + shading * (lambert - light32[2])) * occlusion

    # Albedo: skin; creases at the joints, redder knuckles and fingertips, nails or palm lines.
    skin = hand_colour(face_skin, shape)
    base = palm_colour(skin) if shape.view == "palm" else skin
    albedo = [np.full(box, float(c), np.float32) for c in base]
    crease = np.zeros(box, np.float32)
    blush = np.zeros(box, np.float32)
    nails = np.zeros(box, np.float32)
    thin = max(int(round(0.018 * unit_px)), 1)
    for part in parts:
        if part.kind not in ("finger", "thumb"):
            continue
        width = part.radius
        across = np.array([-part.axis[1], part.axis[0]])
        for k, joint in enumerate(part.joints):
            # A knuckle crease: two or three short arcs across the finger.
            for offset in (-0.035, 0.0, 0.035)[: 2 + (k == 0 or shape.view == "palm")]:
                centre = joint + part.axis * offset * shape.size
                arc = np.stack([centre + across * width * t * 0.75 + part.axis * 0.02 * (t * t) * shape.size
                                for t in np.linspace(-1, 1, 5)])
                _lines(crease, [_to_px(arc, affine, origin)], 0.5 + 0.5 * rng.random(), thin)
            cx, cy = _to_px(joint[None], affine, origin)[0]
            if 0 <= cx < box[1] and 0 <= cy < box[0]:
                cv2.circle(blush, (int(cx), int(cy)), max(int(width * unit_px * 0.8), 1), 1.0, -1)
        if part.tip is not None:
            tip = _to_px(part.tip[None], affine, origin)[0]
            if 0 <= tip[0] < box[1] and 0 <= tip[1] < box[0]:
                cv2.circle(blush, (int(tip[0]), int(tip[1])), max(int(width * unit_px * 0.9), 1), 0.7, -1)
            if shape.view == "back":
                length = 0.17 * shape.size
                centre = part.tip - part.axis * (length * 0.55)
                half_w = 0.72 * width * 0.8
                nail = np.stack([centre + across * half_w * np.cos(a) + part.axis * length * 0.5 * np.sin(a)
                                 for a in np.linspace(0, 2 * np.pi, 14, endpoint=False)])
                _fill_into(nails, _to_px(nail, affine, origin))
    if shape.view == "palm":  # the palm's three main lines
        palm = parts[1].outline
        w = np.ptp(palm[:, 0]) / 2
        y_top = palm[:, 1].min()
        for line in (
            [(-w * 0.9, y_top + 0.3), (-w * 0.1, y_top + 0.25), (w * 0.6, y_top + 0.42)],
            [(w * 0.85, y_top + 0.42), (w * 0.1, y_top + 0.55), (-w * 0.6, y_top + 0.62)],
            [(w * 0.8, y_top + 0.5), (w * 0.35, y_top + 0.85), (w * 0.3, y_top + 1.15)],
        ):
            curve = np.asarray(line) * np.array([1.0, shape.size]) + np.array([0.0, y_top * (1 - shape.size)])
            _lines(crease, [_to_px(curve, affine, origin)], 0.8, thin)
    crease = cv2.GaussianBlur(crease, (0, 0), 0.6) * (kinds >= 2)
    blush = cv2.GaussianBlur(blush, (0, 0), max(0.05 * unit_px, 1.0)) * (kinds >= 3)
    nails = cv2.GaussianBlur(nails, (0, 0), 0.5) * (kinds >= 3)
    noise = cv2.GaussianBlur(rng.standard_normal(box).astype(np.float32), (0, 0), 0.8) * 0.025
    blotch = cv2.GaussianBlur(rng.standard_normal(box).astype(np.float32), (0, 0), max(0.12 * unit_px, 1.5)) * 0.6
    nail_colour = np.clip(base * 1.05 + np.float32([10, 4, 6]), 0, 255)
    half = light32 + np.float32([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    spec_dot = np.clip((-gx * half[0] - gy * half[1] + half[2]) / norm, 0, 1)
    spec = 255 * (0.04 + 0.12 * nails) * spec_dot ** 12
    red = np.float32([1.0, -0.35, -0.4]) * (6 + 10 * shape.redness)
    premultiplied = []
    for c in range(3):
        channel = albedo[c] * (1 - 0.22 * crease) * (1 + noise + 0.04 * blotch) + red[c] * blush
        channel += (nail_colour[c] - channel) * nails * 0.85
        channel = channel * factor + spec
        premultiplied.append(np.clip(channel, 0, 255))
    # Soft silhouette: a real edge is a fraction of a pixel wide and a little out of focus.
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.55)
    premultiplied = cv2.merge([channel * alpha for channel in premultiplied])
    return HandLayer(int(x0), int(y0), premultiplied.astype(np.float32), alpha.astype(np.float32),
                     tuple(int(round(c)) for c in skin))


def _fill_into(layer: np.ndarray, poly_px: np.ndarray) -> None:
    cv2.fillPoly(layer, [np.round(poly_px * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
