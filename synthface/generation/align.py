"""Crop and align a face from its landmarks: eyes level, face centred, fixed output size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthface import facemesh
from synthface.landmarks import FaceLandmarks


@dataclass
class AlignedFace:
    image: np.ndarray  # size x size x 3 uint8 RGB
    points: np.ndarray  # (478, 3) landmarks in the crop's pixels (z scaled like x, y)
    matrix: np.ndarray  # 2x3 affine map from source pixels to crop pixels
    margin: float  # the context actually kept around the face oval, per side


def _rotation(points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
    """(angle that levels the eyes, face-oval centre, oval in the levelled frame, its extent)."""
    left_eye, right_eye = facemesh.eye_centres(points)
    dx, dy = left_eye - right_eye
    angle = float(np.degrees(np.arctan2(dy, dx)))
    oval = points[list(facemesh.FACE_OVAL), :2]
    centre = (oval.min(axis=0) + oval.max(axis=0)) / 2
    theta = np.radians(angle)
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    levelled = (oval - centre) @ rot.T
    return angle, centre, rot, float(np.ptp(levelled, axis=0).max())


def fitting_margin(points: np.ndarray, image_shape: tuple[int, ...], wanted: float, floor: float) -> float:
    """The largest margin <= `wanted` (and >= `floor`) whose crop stays inside the photo.

    Tightly cropped pools (UTKFace chips) have little context around the face: padding their
    crop out to the full margin would fill it with invented pixels.
    """
    _, centre, rot, extent = _rotation(points)
    size = np.array([image_shape[1], image_shape[0]], np.float64)
    # The crop is the square |u|, |v| <= h in the levelled frame; image point = centre + (u, v) @ rot.
    # A square fits inside the photo exactly when its four corners do.
    half_side = np.inf
    for corner in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        step = np.array(corner, np.float64) @ rot
        for axis in (0, 1):
            if step[axis] > 1e-9:
                half_side = min(half_side, (size[axis] - centre[axis]) / step[axis])
            elif step[axis] < -1e-9:
                half_side = min(half_side, -centre[axis] / step[axis])
    return float(np.clip(half_side / extent - 0.5, floor, wanted))


def alignment_matrix(points: np.ndarray, size: int, margin: float = 0.35) -> np.ndarray:
    """2x3 similarity transform: rotate about the face centre so the eyes are level, scale the
    face oval (plus `margin` of its size on each side) to `size` pixels, centre it."""
    angle, centre, _, extent = _rotation(points)
    scale = size / (extent * (1 + 2 * margin))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, float(scale))
    matrix[:, 2] += size / 2 - centre
    return matrix


def align_face(image_rgb: np.ndarray, face: FaceLandmarks | np.ndarray, size: int, margin: float = 0.2,
               min_margin: float = 0.0, max_padding: float = 0.0) -> AlignedFace:
    """The aligned crop of one face and its landmarks in crop coordinates.

    `margin` is the context wanted around the face oval per side (the face fills 1 / (1 + 2 margin)
    of the crop). Where the photo has less context (tightly cropped pools such as UTKFace chips),
    the crop pads by up to `max_padding` beyond the photo's edge and zooms in (a smaller margin) for
    the rest, never below `min_margin`, so the chin stays inside the frame. Padded pixels are a
    strongly blurred extension of the photo's edge, which reads as out-of-focus background.
    """
    points = face.points if isinstance(face, FaceLandmarks) else np.asarray(face, np.float32)
    context = fitting_margin(points, image_rgb.shape, margin, 0.0)
    used = float(np.clip(context + max_padding, min(min_margin, margin), margin))
    matrix = alignment_matrix(points, size, used)
    shrinking = matrix[0, 0] ** 2 + matrix[0, 1] ** 2 < 1
    flags = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    crop = cv2.warpAffine(image_rgb, matrix, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.full(image_rgb.shape[:2], 255, np.uint8), matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if inside.min() < 255:
        crop = _soften_outside(crop, inside, size)
    moved = points.copy()
    moved[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    moved[:, 2] = points[:, 2] * float(np.hypot(matrix[0, 0], matrix[0, 1]))
    return AlignedFace(crop, moved, matrix, used)


def _soften_outside(crop: np.ndarray, inside: np.ndarray, size: int) -> np.ndarray:
    """Blend the pixels outside the photo (inside == 0) into a blurred copy, with a soft seam.

    The blur runs at an eighth of the resolution: a wide blur is all it needs, and it costs
    a fraction of a millisecond there instead of ten at full size.
    """
    small = max(8, size // 8)
    blurred = cv2.resize(cv2.GaussianBlur(cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA), (0, 0), 1.5),
                         (size, size), interpolation=cv2.INTER_LINEAR)
    fade = cv2.resize(cv2.resize(inside, (small, small), interpolation=cv2.INTER_AREA), (size, size), interpolation=cv2.INTER_LINEAR)
    # Photo pixels stay as they are; outside, the replicated edge fades into the blur.
    weight = np.where(inside == 255, np.float32(1), fade.astype(np.float32) / 255)
    return cv2.blendLinear(crop, blurred, weight, 1 - weight)  # one pass, rounded and saturated
