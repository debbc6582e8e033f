"""Demo faces for previews and tests: the two public-domain photos, also turned left and right.

A turn is made by rotating the face's 3-D landmarks about the vertical axis and warping the
photo with a thin-plate spline from the rotated to the original landmark positions (the image
border is pinned so the background stays put). The fit is then run on landmarks detected
afresh on the warped photo, as it would be on a real turned head.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from synthface import facemesh
from synthface.generation.sources.demo import demo_photo
from synthface.maskfit.warp import ThinPlateSpline

DEMO_PHOTOS = ("astronaut", "grace_hopper.jpg")
DEMO_YAWS = (0.0, -30.0, 30.0)


@dataclass
class DemoFace:
    name: str  # "astronaut, turned 30 degrees"
    image: np.ndarray  # aligned crop, RGB uint8
    points: np.ndarray  # (478, 3) landmarks in the crop
    yaw: float  # detected yaw (degrees)


def turn_face(image_rgb: np.ndarray, points: np.ndarray, degrees: float) -> np.ndarray:
    """The photo warped so the face looks turned by `degrees` about the vertical axis (positive: to image right)."""
    if degrees == 0:
        return image_rgb.copy()
    height, width = image_rgb.shape[:2]
    theta = np.radians(degrees)
    face = points[: facemesh.NUM_LANDMARKS - 10].astype(np.float64)
    centre = face.mean(0)
    # Rotate about a vertical axis behind the face (z grows away from the camera).
    dx, dz = face[:, 0] - centre[0], face[:, 2] - centre[2] + 0.35 * np.ptp(face[:, 0])
    turned = face[:, :2].copy()
    turned[:, 0] = centre[0] + dx * np.cos(theta) + dz * np.sin(theta) - 0.35 * np.ptp(face[:, 0]) * np.sin(theta)
    picks = np.linspace(0, len(face) - 1, 120).astype(int)
    border = np.array([[x, y] for x in np.linspace(0, width - 1, 5) for y in np.linspace(0, height - 1, 5)
                       if x in (0, width - 1) or y in (0, height - 1)])
    source = np.concatenate([turned[picks], border])
    target = np.concatenate([face[picks, :2], border])
    unit = max(height, width)
    spline = ThinPlateSpline(source / unit, target / unit, smoothing=0.001)
    step = 8
    gx, gy = np.meshgrid(np.arange(0, width + step, step, dtype=np.float64), np.arange(0, height + step, step, dtype=np.float64))
    coarse = spline(np.stack([gx.ravel(), gy.ravel()], 1) / unit) * unit
    coarse = coarse.reshape(gx.shape + (2,)).astype(np.float32)
    maps = cv2.resize(coarse, (gx.shape[1] * step, gx.shape[0] * step), interpolation=cv2.INTER_LINEAR)[:height, :width]
    return cv2.remap(image_rgb, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


@lru_cache(maxsize=4)
def demo_faces(size: int = 224, yaws: tuple[float, ...] = DEMO_YAWS) -> tuple[DemoFace, ...]:
    """Aligned demo faces at each yaw, landmarks detected by MediaPipe on the (warped) photos."""
    from synthface.generation.align import align_face
    from synthface.landmarks import LandmarkDetector

    faces = []
    with LandmarkDetector() as detector:
        for photo in DEMO_PHOTOS:
            image = demo_photo(photo)
            found = detector.detect(image)
            if not found:
                raise RuntimeError(f"no face found on the demo photo {photo}")
            for yaw in yaws:
                turned = turn_face(image, found[0].points, yaw)
                detected = detector.detect(turned)
                if not detected:
                    continue
                aligned = align_face(turned, detected[0], size)
                label = photo.split("_")[0].split(".")[0] + (f", turned {yaw:+.0f}" if yaw else ", frontal")
                faces.append(DemoFace(label, aligned.image, aligned.points, detected[0].yaw))
    return tuple(faces)
