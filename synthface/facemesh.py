"""Named groups of MediaPipe's 478 face-mesh landmarks, used by alignment, masks and lighting.

Indices follow MediaPipe's canonical face mesh (468 mesh points + 10 iris points).
"Left"/"right" are the subject's own sides (the subject's left eye is on the image's right
in a frontal photo).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

NUM_LANDMARKS = 478

NOSE_TIP = 1
NOSE_BRIDGE_TOP = 168  # between the eyes
NOSE_BRIDGE = (168, 6, 197, 195, 5, 4)
CHIN = 152
FOREHEAD_TOP = 10
UPPER_LIP_TOP = 0
LOWER_LIP_BOTTOM = 17
MOUTH_LEFT = 291  # subject's left mouth corner
MOUTH_RIGHT = 61
CHEEK_LEFT = 454  # outermost face-oval points at eye height (ear side)
CHEEK_RIGHT = 234

# Closed contours, in order.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LEFT_IRIS = (473, 474, 475, 476, 477)
RIGHT_IRIS = (468, 469, 470, 471, 472)


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject's left eye centre, right eye centre) in the points' x, y coordinates."""
    return points[list(LEFT_EYE), :2].mean(axis=0), points[list(RIGHT_EYE), :2].mean(axis=0)


def polygon_mask(points: np.ndarray, contour: tuple[int, ...], shape: tuple[int, int]) -> np.ndarray:
    """A boolean HxW mask of the filled contour (e.g. FACE_OVAL) drawn from the landmarks."""
    import cv2

    canvas = np.zeros(shape[:2], np.uint8)
    polygon = np.round(points[list(contour), :2]).astype(np.int32)
    cv2.fillPoly(canvas, [polygon], 1, lineType=cv2.LINE_8)
    return canvas.astype(bool)


@lru_cache(maxsize=1)
def triangles() -> np.ndarray:
    """(T, 3) int array: the triangles of MediaPipe's face-mesh tesselation (468 mesh points)."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections

    edges = {(c.start, c.end) for c in FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION}
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    found = set()
    for a, b in edges:
        for c in neighbours[a] & neighbours[b]:
            found.add(tuple(sorted((a, b, c))))
    return np.array(sorted(found), dtype=np.int32)
