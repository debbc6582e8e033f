"""Ear loops and head straps: smooth curves on a simple head model, posed with the head, hidden behind it.

A strap is laid out in face space (see canonical.py) on the side of the head, modelled at each
height y as the back half of an ellipse: half-width a(y) and centre depth z(y) from the canonical
face contour (the cheeks at ear height, narrowing along the jaw), half-depth HEAD_DEPTH. A point
is given by its angle round that ellipse (0 = straight ahead, 90 degrees = the face contour,
more = behind it) and its height. Each strand runs from its anchor on the mask (a corner, taken
from the outline and worn with the mask) to its end at a steady pace in angle and an eased pace
in height, so it is one smooth curve with no kink:

- ear loops: from the mask's upper corner to the top of the ear's root, and from the lower
  corner to just under the lobe; the ear is placed from landmarks 234 / 454 (the contour at the
  tragus), a little behind them, so on a turned head it moves with the head, not with the contour;
- head straps (respirators): from inside the cup's rim, the upper one over the temple above the
  ear and the lower one under the ear, both on round toward the back of the head and the neck;
- ties: one strand from the upper corner back above the ear.

Points are projected with the head's rotation (fitted to the 3-D landmarks) about the landmark
at the contour on that side; the small difference at the anchor between that rigid projection
and the fit's own spline is spread along the strand, so the strap leaves the mask exactly at its
corner. A point whose surface faces away from the camera is behind the head: the strand is cut
there, so the far loop of a turned head disappears behind the cheek. `strap_loose` hangs one ear
loop below its corners, or lets the lower head strap hang under the chin in front of the neck.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from synthface import facemesh
from synthface.maskfit.canonical import canonical_face

HEAD_DEPTH = 1.0  # half-depth of the head's section behind the contour, face units
EAR_ANGLE = 97.0  # degrees round the head where a loop hooks onto the ear (the contour is 90)
EAR_TOP = 0.08  # face-space height of the top of the ear's root (the eyes are at about 0.1)
EAR_LOBE = 0.82  # height just under the ear lobe
HIDDEN_FACING = 0.0  # a strap point whose surface normal points away from the camera is behind the head
SAMPLES = 28  # points per strand
STANDOFF = 0.03  # an elastic strap stands off the skin a little between its ends (face units)


@dataclass
class Strand:
    """One visible piece of a strap: its centre line in image pixels, and the subject's side it is on."""

    points: np.ndarray  # (N, 2) image pixels, N >= 2
    side: int  # +1 subject's left, -1 right, 0 hanging across the front
    lower: bool = False  # the strand from a lower anchor (it may pass under the mask's side)


@lru_cache(maxsize=1)
def _section_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, half-width, centre depth) of the head's horizontal section at each contour height, y sorted."""
    face = canonical_face()
    oval = face[list(facemesh.FACE_OVAL)].astype(np.float64)
    right = oval[oval[:, 0] > 0.05]
    right = right[np.argsort(right[:, 1])]
    cheek = face[facemesh.CHEEK_LEFT].astype(np.float64)
    # Above the tragus the side of the head stays as wide and as deep as at the cheek contour;
    # along the jaw it follows the contour; under the chin it is the neck, narrower and further back.
    keep = right[right[:, 1] > cheek[1]]
    ys = np.concatenate([[-2.0, cheek[1]], keep[:, 1], [2.2, 3.5]])
    widths = np.concatenate([[cheek[0], cheek[0]], keep[:, 0], [0.62, 0.62]])
    depths = np.concatenate([[cheek[2], cheek[2]], keep[:, 2], [-1.1, -1.1]])
    order = np.argsort(ys)
    return ys[order], widths[order], depths[order]


def head_point(angle: np.ndarray, y: np.ndarray, side: int, standoff: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Face-space points (N, 3) on the head model at `angle` (radians round the head) and height `y`,
    and their outward surface normals (N, 3)."""
    ys, widths, depths = _section_table()
    a = np.interp(y, ys, widths) + standoff
    centre = np.interp(y, ys, depths)
    b = HEAD_DEPTH + standoff
    sin, cos = np.sin(angle), np.cos(angle)
    points = np.stack([side * a * sin, y, centre + b * cos], axis=-1)
    normals = np.stack([side * sin / a, np.zeros_like(sin), cos / b], axis=-1)
    return points, normals / np.linalg.norm(normals, axis=-1, keepdims=True)


def angle_of(x: float, y: float) -> float:
    """Angle round the head of a face-space point at (x, y) on the front of the head (at most 90 degrees)."""
    ys, widths, _ = _section_table()
    return float(np.arcsin(np.clip(abs(x) / np.interp(y, ys, widths), 0.0, 1.0)))


def strap_anchors(outline: np.ndarray, kind: str) -> np.ndarray:
    """Template-space (x, y) of the subject's-left strap attachments (upper, lower) on a closed outline.

    Ear loops are sewn at the mask's upper and lower corners (the highest and lowest outline points
    within 0.1 of its widest x); head straps are stapled inside a cup's rim, a little in from them.
    """
    right = outline[outline[:, 0] > 0]
    near = right[right[:, 0] >= right[:, 0].max() - 0.1]
    upper, lower = near[np.argmin(near[:, 1])], near[np.argmax(near[:, 1])]
    if kind == "head_straps":
        inset = np.array([[-0.08, 0.12], [-0.08, -0.14]])
    else:
        inset = np.array([[-0.02, 0.04], [-0.02, -0.04]])
    return np.stack([upper, lower]) + inset


def _ease(t: np.ndarray, power: float) -> np.ndarray:
    """0..1 -> 0..1, moving fast first when power > 1 (a strap climbs, then runs level)."""
    return 1 - (1 - t) ** power


@dataclass
class Pose:
    """How face space is seen in the image: the head's rotation, scale, and the contour landmarks' positions."""

    rotation: np.ndarray  # 3x3, face -> camera (x right, y down, z toward the camera)
    scale: float  # pixels per face unit
    cheeks: dict[int, np.ndarray]  # side -> image (x, y) of landmark 454 (+1) / 234 (-1)

    @classmethod
    def of(cls, points: np.ndarray, rotation: np.ndarray, scale: float) -> Pose:
        return cls(rotation, scale, {1: points[facemesh.CHEEK_LEFT, :2].astype(np.float64),
                                     -1: points[facemesh.CHEEK_RIGHT, :2].astype(np.float64)})

    def project(self, face_points: np.ndarray, side: int) -> np.ndarray:
        """Image pixels of face-space points, rigidly about the contour landmark on `side`."""
        index = facemesh.CHEEK_LEFT if side > 0 else facemesh.CHEEK_RIGHT
        origin = canonical_face()[index].astype(np.float64)
        return self.cheeks[side] + self.scale * ((face_points - origin) @ self.rotation.T)[:, :2]

    def facing(self, normals: np.ndarray) -> np.ndarray:
        """How much each normal points at the camera (-1..1)."""
        return normals @ self.rotation[2]


def _on_head(x: float, y: float, side: int) -> np.ndarray:
    """A face-space anchor (x, y) on the mask put on the head model: on the surface where the face is
    wider than |x|, at the contour's depth beside it (a mask wider than the face wraps round)."""
    ys, widths, depths = _section_table()
    a, centre = np.interp(y, ys, widths), np.interp(y, ys, depths)
    angle = np.arcsin(min(abs(x) / a, 1.0))
    return np.array([side * max(abs(x), a * np.sin(angle)), y, centre + HEAD_DEPTH * np.cos(angle)])


def _taut(start: np.ndarray, end: np.ndarray, standoff: float) -> tuple[np.ndarray, np.ndarray]:
    """A taut strap from `start` to `end` (face space, 3-D) over the head: the straight line between
    them, pushed out onto the head's surface wherever it would pass inside. Returns points and normals."""
    t = np.linspace(0.0, 1.0, SAMPLES)[:, None]
    line = start + (end - start) * t
    ys, widths, depths = _section_table()
    a = np.interp(line[:, 1], ys, widths)
    centre = np.interp(line[:, 1], ys, depths)
    u, v = line[:, 0] / a, (line[:, 2] - centre) / HEAD_DEPTH
    radius = np.hypot(u, v)
    lift = np.maximum(radius, 1.0 + standoff * np.sin(np.pi * t[:, 0])) / np.maximum(radius, 1e-6)
    u, v = u * lift, v * lift
    points = np.stack([u * a, line[:, 1], centre + v * HEAD_DEPTH], axis=-1)
    normals = np.stack([u / a, np.zeros_like(u), v / HEAD_DEPTH], axis=-1)
    return points, normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-9)


def _wrap(start: np.ndarray, end_angle: float, end_y: float, side: int, climb: float) -> tuple[np.ndarray, np.ndarray]:
    """A strap round the head from `start` (face space) to `end_angle` degrees round it at height `end_y`:
    steady in angle, eased in height (it climbs or drops first, then runs level round the back)."""
    t = np.linspace(0.0, 1.0, SAMPLES)
    ys, widths, _ = _section_table()
    start_angle = float(np.arcsin(np.clip(abs(start[0]) / np.interp(start[1], ys, widths), 0.0, 1.0)))
    angle = start_angle + (np.radians(end_angle) - start_angle) * t
    y = start[1] + (end_y - start[1]) * _ease(t, climb)
    return head_point(angle, y, side, STANDOFF * np.sin(np.pi * t))


def _visible(pose: Pose, image: np.ndarray, normals: np.ndarray, start_image: np.ndarray) -> np.ndarray:
    """Image points of a strand, moved to leave the mask exactly at `start_image` and cut where it goes
    behind the head (empty if it starts there)."""
    t = np.linspace(0.0, 1.0, len(image))
    # Spread the rigid model's error at the anchor along the strand.
    u = t  # eased at both ends: no hook where it leaves the mask
    image = image + (start_image - image[0]) * (1 - u * u * (3 - 2 * u))[:, None]
    facing = pose.facing(normals)
    hidden = np.nonzero(facing < HIDDEN_FACING)[0]
    if len(hidden) == 0:
        return image
    cut = int(hidden[0])
    if cut == 0:
        return image[:0]
    f0, f1 = facing[cut - 1], facing[cut]  # end at the exact point where it turns out of sight
    w = (f0 - HIDDEN_FACING) / max(f0 - f1, 1e-9)
    return np.vstack([image[:cut], image[cut - 1] + w * (image[cut] - image[cut - 1])])


def _until_it_turns_back(path: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """A strap round the head up to where, in the image, it turns round the head's silhouette: where it
    stops moving outward, or bends sharply (seen edge-on). The model's sections are cut level, so near the
    jaw and neck its normals lag the true surface; the turn in the image is exact."""
    if len(path) < 3:
        return path
    steps = np.diff(path, axis=0)
    moves = steps @ (outward / max(np.linalg.norm(outward), 1e-9))
    angles = np.arctan2(steps[:, 1], steps[:, 0])
    bend = np.abs((np.diff(angles) + np.pi) % (2 * np.pi) - np.pi)
    stop = [int(i) for i in np.nonzero(moves < 0)[0]] + [int(i) + 1 for i in np.nonzero(bend > np.radians(12))[0]]
    return path if not stop else path[:min(stop) + 1]


def _hanging_loop(start: np.ndarray, end: np.ndarray, drop: float, out: float) -> np.ndarray:
    """A slack loop (image pixels) hanging from `start` to `end`: a cubic Bezier that sags `drop` below the
    lower end and bows `out` sideways (image pixels, signed)."""
    t = np.linspace(0.0, 1.0, SAMPLES)[:, None]
    low = max(start[1], end[1]) + drop
    c1 = np.array([start[0] + out, low])
    c2 = np.array([end[0] + out, low])
    return ((1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t ** 2 * c2 + t ** 3 * end)


def _inside(path: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """The start of an image path up to where it first leaves a closed outline (image pixels)."""
    import cv2

    contour = outline.astype(np.float32).reshape(-1, 1, 2)
    outside = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) < 0 for x, y in path]
    if not any(outside):
        return path
    return path[:outside.index(True)]


def strap_strands(kind: str, corners_face: dict[int, np.ndarray], corners_image: dict[int, np.ndarray], pose: Pose,
                  loose_side: int = 0, reach: float = 0.05, far: tuple[int, np.ndarray] | None = None) -> list[Strand]:
    """The visible strands of a mask's straps.

    `corners_face[side]` / `corners_image[side]`: (upper, lower) anchors of the straps on that side, in
    face space (as worn) and in image pixels. `loose_side` (+1 / -1) is the side whose strap hangs
    (`strap_loose`), 0 for none. `reach`: how far (face units) the visible mask may extend beyond the
    face contour; anchors further out are pulled in to it, so no strap starts in mid-air. `far`:
    (the far side of a turned head, the face's outline in the image): on that side a strand ends where
    it crosses the outline, behind the cheek.
    """
    strands: list[Strand] = []
    if kind == "none":
        return strands
    ys, widths, _ = _section_table()
    for side in (1, -1):
        face, image = corners_face[side], corners_image[side]
        limit = np.interp(face[:, 1], ys, widths) + reach
        inside = np.minimum(np.abs(face[:, 0]), limit)
        if not np.allclose(inside, np.abs(face[:, 0])):  # move the image anchor by the same amount, toward the face
            image = image + (pose.project(np.c_[inside * side, face[:, 1], np.zeros(2)], side)
                             - pose.project(np.c_[face[:, 0], face[:, 1], np.zeros(2)], side))
        face = np.c_[inside * side, face[:, 1]]
        if kind == "ear_loops":
            if loose_side == side:  # off the ear: the loop hangs from its two corners
                drop = 0.45 * pose.scale
                strands.append(Strand(_hanging_loop(image[0], image[1], drop, 0.12 * pose.scale * _outward(pose, side)),
                                      side))
                continue
            ends = [head_point(np.radians([EAR_ANGLE]), np.array([EAR_TOP]), side)[0][0],
                    head_point(np.radians([EAR_ANGLE]), np.array([EAR_LOBE]), side)[0][0]]
            shapes = [_taut(_on_head(*face[k], side), ends[k], STANDOFF) for k in range(2)]
        elif kind == "head_straps":
            shapes = [_wrap(face[0], 165.0, -0.75, side, 1.0)]
            if not loose_side:
                shapes.append(_wrap(face[1], 165.0, 1.45, side, 1.2))
        else:  # ties: knotted behind the head above the ears
            shapes = [_wrap(face[0], 170.0, -0.2, side, 2.0)]
        for k, (points, normals) in enumerate(shapes):
            path = _visible(pose, pose.project(points, side), normals, image[k])
            if kind != "ear_loops":
                path = _until_it_turns_back(path, pose.rotation[0, :2] * side)
            if far is not None and far[0] == side:
                path = _inside(path, far[1])
            if len(path) >= 2:
                strands.append(Strand(path, side, lower=k == 1))
    if kind == "head_straps" and loose_side:
        # The lower strap, slipped off the neck, hangs in a U under the chin between the cup's lower anchors.
        left, right = corners_image[1][1], corners_image[-1][1]
        strands.append(Strand(_hanging_loop(left, right, 1.0 * pose.scale, 0.0), 0))
    return strands


def out_from_under(strands: list[Strand], body_alpha: np.ndarray, corners_image: dict[int, np.ndarray],
                   scale: float) -> list[Strand]:
    """Strands as seen past the mask body (`body_alpha`, HxW, image pixels): each is kept from where it leaves
    the body; one that would pass back under it runs along behind the mask's edge and is hidden. A lower
    strand that would come out over the mask's upper corner (a mask worn low: it runs up under the mask's
    side) is hidden, not drawn as a fork beside the upper one."""
    height, width = body_alpha.shape
    kept = []
    for strand in strands:
        if strand.side == 0:
            kept.append(strand)
            continue
        xy = np.round(strand.points).astype(int)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
        covered = np.zeros(len(xy), bool)
        covered[inside] = body_alpha[xy[inside, 1], xy[inside, 0]] > 0.5
        free = np.nonzero(~covered)[0]
        if len(free) == 0:
            continue
        start = max(int(free[0]) - 1, 0)  # one point under the body, so the strand meets the mask's edge
        if covered[free[0]:].any():  # it would pass back under the mask: it runs behind the mask's edge
            continue
        end = len(xy)
        if strand.lower and strand.points[start, 1] < corners_image[strand.side][0][1] + 0.1 * scale:
            continue
        points = strand.points[start:end]
        if start == 0:
            nearest = _nearest_covered(body_alpha, points[0], 0.3 * scale)
            if nearest is None:
                continue
            points = np.vstack([nearest, points])
        if len(points) >= 2:
            kept.append(Strand(points, strand.side, strand.lower))
    return kept


def _nearest_covered(body_alpha: np.ndarray, point: np.ndarray, radius: float) -> np.ndarray | None:
    """The body pixel (alpha > 0.5) nearest to `point` within `radius` pixels, or None."""
    height, width = body_alpha.shape
    r = int(np.ceil(radius))
    x, y = int(round(point[0])), int(round(point[1]))
    x0, y0, x1, y1 = max(x - r, 0), max(y - r, 0), min(x + r + 1, width), min(y + r + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    ys, xs = np.nonzero(body_alpha[y0:y1, x0:x1] > 0.5)
    if len(xs) == 0:
        return None
    distance = np.hypot(xs + x0 - point[0], ys + y0 - point[1])
    best = int(np.argmin(distance))
    if distance[best] > radius:
        return None
    return np.array([xs[best] + x0, ys[best] + y0], np.float64)


def _outward(pose: Pose, side: int) -> float:
    """+1 if the subject's `side` is toward image right, else -1 (a hanging loop bows outward)."""
    return 1.0 if (pose.rotation[0] @ np.array([side, 0.0, 0.0])) > 0 else -1.0
