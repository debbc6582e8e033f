"""Geometry of a fit: thin-plate splines between image pixels and face space, head rotation, clip region.

A fit evaluates an image -> face-space spline on a coarse grid over the mask's bounding box
and lets `cv2.resize` interpolate it to a per-pixel `cv2.remap` map: one small linear solve
and one remap per sample, whatever the template.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from synthface import facemesh
from synthface.maskfit.canonical import canonical_face

N_CONTROL = 64  # control points of the spline: enough to follow nose and jaw, few enough to solve in ~0.1 ms


class MaskFitError(ValueError):
    """The mask cannot be fitted to these landmarks (the generator counts and replaces the sample)."""


# Contour of the lower face, from the subject's left temple round the chin to the right temple.
LOWER_CONTOUR = facemesh.FACE_OVAL[5:32]


@lru_cache(maxsize=1)
def control_indices() -> np.ndarray:
    """Landmarks the spline is fitted on: the lower contour, the nose ridge, and an even spread
    (farthest-point sampling in face space) over the cheeks, mouth and chin.

    Points that stand out of the face (nostril wings, nose sides) are left out except the ridge:
    under yaw they slide over their neighbours and would fold the map.
    """
    face = canonical_face()
    chosen = list(dict.fromkeys([*LOWER_CONTOUR, *facemesh.NOSE_BRIDGE, facemesh.NOSE_TIP]))
    excluded = set(facemesh.LEFT_EYE) | set(facemesh.RIGHT_EYE) | set(range(468, 478))
    candidates = [
        i for i in range(468)
        if i not in excluded and i not in chosen and face[i, 1] > 0.2 and face[i, 2] < 0.05 and abs(face[i, 0]) < 0.97
    ]
    xy = face[:, :2]
    distance = np.min(np.linalg.norm(xy[candidates][:, None] - xy[chosen][None], axis=-1), axis=1)
    while len(chosen) < N_CONTROL:
        best = int(np.argmax(distance))
        chosen.append(candidates[best])
        distance = np.minimum(distance, np.linalg.norm(xy[candidates] - xy[candidates[best]], axis=-1))
    return np.array(chosen, np.int64)


def _kernel(r2: np.ndarray) -> np.ndarray:
    """Thin-plate radial basis U(r) = r^2 log r, written with r^2 (0 at r = 0)."""
    return 0.5 * r2 * np.log(np.maximum(r2, r2.dtype.type(1e-12)))


class ThinPlateSpline:
    """A 2-D thin-plate spline from `source` points to `target` points (both (N, 2)).

    `smoothing` > 0 relaxes exact interpolation, which keeps landmark jitter from rippling the mask.
    """

    def __init__(self, source: np.ndarray, target: np.ndarray, smoothing: float = 0.0):
        source = np.asarray(source, np.float64)
        n = len(source)
        r2 = ((source[:, None, :] - source[None, :, :]) ** 2).sum(-1)
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = _kernel(r2) + smoothing * np.eye(n)
        system[:n, n] = 1.0
        system[:n, n + 1:] = source
        system[n, :n] = 1.0
        system[n + 1:, :n] = source.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = target
        try:
            solution = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:
            raise MaskFitError("landmarks are degenerate (the spline system is singular)") from None
        if not np.all(np.isfinite(solution)):
            raise MaskFitError("landmarks are degenerate (the spline has no finite solution)")
        self.source = source
        self.weights = solution[:n]
        self.affine = solution[n:]
        self._source32 = source.astype(np.float32)
        self._weights32 = self.weights.astype(np.float32)
        self._affine32 = self.affine.astype(np.float32)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        # float32 and |p - s|^2 expanded into matrix products: several times faster than float64
        # broadcasting, and precise enough for coordinates of a few face units.
        points = np.asarray(points, np.float32)
        source = self._source32
        r2 = (points ** 2).sum(1)[:, None] + (source ** 2).sum(1)[None, :] - 2 * points @ source.T
        return _kernel(np.maximum(r2, np.float32(1e-12))) @ self._weights32 + self._affine32[0] + points @ self._affine32[1:]


@lru_cache(maxsize=1)
def _face_space_system() -> tuple[np.ndarray, np.ndarray]:
    """(source points, inverse of the spline system) for splines from face space: the source never changes."""
    source = canonical_face()[control_indices(), :2].astype(np.float64)
    n = len(source)
    r2 = ((source[:, None, :] - source[None, :, :]) ** 2).sum(-1)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = _kernel(r2)
    system[:n, n] = system[n, :n] = 1.0
    system[:n, n + 1:] = source
    system[n + 1:, :n] = source.T
    return source, np.linalg.inv(system)[:, :n]


def face_to_image(targets: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Map face-space `query` points (M, 2) to the image with the spline through the control points'
    image positions `targets` (N, 2). Cheap: the system's inverse is computed once."""
    source, inverse = _face_space_system()
    solution = inverse @ np.asarray(targets, np.float64)
    n = len(source)
    r2 = ((query[:, None, :] - source[None, :, :]) ** 2).sum(-1)
    return _kernel(r2) @ solution[:n] + solution[n] + query @ solution[n + 1:]


def head_rotation(points: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """3x3 rotation taking face-space directions to camera directions (x right, y down, z toward the camera).

    Kabsch fit of the canonical face onto the landmarks (MediaPipe z grows away from the camera).
    """
    canonical = canonical_face()[indices].astype(np.float64)
    observed = points[indices].astype(np.float64) * np.array([1.0, 1.0, -1.0])
    a = canonical - canonical.mean(0)
    b = observed - observed.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return (u @ np.diag([1.0, 1.0, d]) @ vt).T


def face_scale(points: np.ndarray) -> float:
    """Half the 3-D distance between the cheek contour points, in pixels: one face-space unit, whatever the yaw."""
    return float(np.linalg.norm(points[facemesh.CHEEK_LEFT] - points[facemesh.CHEEK_RIGHT]) / 2)


def far_side(points: np.ndarray) -> tuple[int, float]:
    """(+1 if the subject's left cheek is the far one, -1 if the right; how far turned, 0..1 for 0..90 degrees)."""
    left, right = points[facemesh.CHEEK_LEFT], points[facemesh.CHEEK_RIGHT]
    delta = left - right
    turn = float(np.arcsin(np.clip(abs(delta[2]) / (np.linalg.norm(delta) + 1e-9), 0, 1)) / (np.pi / 2))
    return (1 if delta[2] > 0 else -1), turn


# Midline and lip landmarks that stick out of the face outline in profile.
PROFILE_POINTS = (*facemesh.NOSE_BRIDGE, facemesh.NOSE_TIP, 2, *facemesh.LIPS_OUTER, 18, 200, 199, 175, facemesh.CHIN)


def clip_polygon(points: np.ndarray, side_margin: float, bottom_margin: float) -> np.ndarray:
    """The face oval pushed outward by the mask's allowed margins (pixels), as an (N, 2) convex polygon.

    Below the mouth the push blends from the side margin to the bottom margin; on the far side
    of a turned head it shrinks to nothing (the mask's edge and strap go behind the face).
    """
    oval = points[list(facemesh.FACE_OVAL), :2].astype(np.float64)
    canonical = canonical_face()[list(facemesh.FACE_OVAL)]
    scale = face_scale(points)
    side, turn = far_side(points)
    previous, following = np.roll(oval, 1, axis=0), np.roll(oval, -1, axis=0)
    tangent = following - previous
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    centre = oval.mean(0)
    flip = np.sign(((oval - centre) * normal).sum(1, keepdims=True))
    normal *= np.where(flip == 0, 1, flip)
    below = np.clip((canonical[:, 1] - 1.0) / 0.6, 0, 1)
    margin = (side_margin * (1 - below) + bottom_margin * below) * scale
    far = np.sign(canonical[:, 0]) == side
    margin = np.where(far, margin * np.clip(1 - 2.5 * turn, 0, 1), margin)
    pushed = oval + normal * margin[:, None]
    # On a turned head the nose, lips and chin stand out past the far cheek's contour; a mask
    # bridges them, so the region is the convex hull of the contour and those points.
    profile = points[list(PROFILE_POINTS), :2].astype(np.float64)
    hull = cv2.convexHull(np.concatenate([pushed, profile]).astype(np.float32))[:, 0, :]
    return hull.astype(np.float64)
