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


def alignment_matrix(points: np.ndarray, size: int, margin: float = 0.35) -> np.ndarray:
    """2x3 similarity transform: rotate about the face centre so the eyes are level, scale the
    face oval (plus `margin` of its size on each side) to `size` pixels, centre it."""
    left_eye, right_eye = facemesh.eye_centres(points)
    dx, dy = left_eye - right_eye
    angle = np.degrees(np.arctan2(dy, dx))
    oval = points[list(facemesh.FACE_OVAL), :2]
    centre = (oval.min(axis=0) + oval.max(axis=0)) / 2
    # Measure the oval in the rotated frame so a tilted head is not cropped too loose.
    theta = np.radians(angle)
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    extent = np.ptp((oval - centre) @ rot.T, axis=0).max()
    scale = size / (extent * (1 + 2 * margin))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), float(scale))
    matrix[:, 2] += size / 2 - centre
    return matrix


def align_face(image_rgb: np.ndarray, face: FaceLandmarks | np.ndarray, size: int, margin: float = 0.35) -> AlignedFace:
    """The aligned crop of one face and its landmarks in crop coordinates.

    Pixels outside the source photo are filled by replicating its border, which keeps
    tightly cropped pools (UTKFace chips) free of black corners.
    """
    points = face.points if isinstance(face, FaceLandmarks) else np.asarray(face, np.float32)
    matrix = alignment_matrix(points, size, margin)
    crop = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_AREA if matrix[0, 0] ** 2 + matrix[0, 1] ** 2 < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = points.copy()
    moved[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    moved[:, 2] = points[:, 2] * float(np.hypot(matrix[0, 0], matrix[0, 1]))
    return AlignedFace(crop, moved, matrix)
