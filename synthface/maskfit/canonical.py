"""The canonical (frontal, symmetric) face that mask templates are drawn on.

Mask templates live in a frontal "face space": x = 0 on the face's midline, x = +-1 at the
cheek contour points at ear height (landmarks 234 / 454), y = 0 at the top of the nose
bridge (landmark 168), y grows downward in the same unit, z points toward the camera. A
fit maps image pixels to this space (thin-plate spline over lower-face landmarks), so one
template serves every face, pose and image size.

The canonical shape ships as `data/canonical_face.npz`. It is rebuilt from the two public
domain demo photos (and their mirror images) with ``python -m synthface.maskfit.canonical``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from synthface import facemesh

DATA_FILE = Path(__file__).resolve().parent / "data" / "canonical_face.npz"


def _procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`source` (N,3) moved onto `target` by the best rotation, scale and translation."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rotation = u @ fix @ vt
    scale = (s * np.diag(fix)).sum() / (a ** 2).sum()
    return a @ rotation * scale + mu_t


def mirror_index(shape: np.ndarray) -> np.ndarray:
    """For each landmark, the index of its mirror twin across the midline (itself on the midline)."""
    from scipy.optimize import linear_sum_assignment

    mirrored = shape * np.array([-1.0, 1.0, 1.0])
    cost = ((shape[:, None, :] - mirrored[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    index = np.empty(len(shape), np.int64)
    index[rows] = cols
    return index


def normalise(shape: np.ndarray) -> np.ndarray:
    """Put a frontal shape in face space: midline at x=0, cheeks at x=+-1, nose-bridge top at y=0, z toward camera."""
    shape = shape.copy()
    left, right = shape[facemesh.CHEEK_LEFT], shape[facemesh.CHEEK_RIGHT]
    half_width = np.linalg.norm(left - right) / 2
    shape = (shape - shape[facemesh.NOSE_BRIDGE_TOP]) / half_width
    return shape


def symmetrise(shape: np.ndarray, twins: np.ndarray) -> np.ndarray:
    """Rotate a face so its plane of symmetry is x = 0 and average it with its mirror image.

    The plane's normal is the main direction of the differences between twin landmarks; its
    position is the mean of the twins' midpoints.
    """
    differences = shape - shape[twins]
    _, _, vt = np.linalg.svd(differences, full_matrices=False)
    x_axis = vt[0] * np.sign(vt[0] @ (shape[facemesh.CHEEK_LEFT] - shape[facemesh.CHEEK_RIGHT]))
    down = shape[facemesh.CHIN] - shape[facemesh.NOSE_BRIDGE_TOP]
    y_axis = down - (down @ x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    origin = ((shape + shape[twins]) / 2).mean(0)
    local = (shape - origin) @ np.stack([x_axis, y_axis, z_axis], axis=1)
    if local[facemesh.NOSE_TIP, 2] < local[facemesh.CHEEK_LEFT, 2]:
        local[:, 2] *= -1  # z toward the camera: the nose tip is the closest point
    return (local + local[twins] * np.array([-1.0, 1.0, 1.0])) / 2


def build_canonical(shapes: list[np.ndarray], iterations: int = 3) -> np.ndarray:
    """A symmetric mean face (478, 3) in face space from several (478, 3) landmark sets.

    The shapes are aligned by generalised Procrustes, averaged, then made exactly symmetric
    about x = 0 (twin landmarks found by matching the face to its mirror image).
    """
    prepared = [np.asarray(points, np.float64) for points in shapes]
    mean = prepared[0]
    for _ in range(iterations):
        mean = np.mean([_procrustes(shape, mean) for shape in prepared], axis=0)
    # The photos are near frontal, so twins can be found in image axes about the cheeks' midpoint.
    mean = mean - (mean[facemesh.CHEEK_LEFT] + mean[facemesh.CHEEK_RIGHT]) / 2
    twins = mirror_index(mean)
    for _ in range(iterations):
        mean = symmetrise(mean, twins)
        twins = mirror_index(mean)
    return normalise(symmetrise(mean, twins)).astype(np.float32)


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """(478, 3) float32: the canonical face in face space (see module docstring)."""
    with np.load(DATA_FILE) as data:
        return data["points"].astype(np.float32)


def _rebuild() -> None:  # pragma: no cover - a maintenance script, run by hand
    from synthface.generation.sources.demo import demo_photo
    from synthface.landmarks import LandmarkDetector

    with LandmarkDetector() as detector:
        shapes = [detector.detect(demo_photo(name))[0].points for name in ("astronaut", "grace_hopper.jpg")]
    points = build_canonical(shapes)
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DATA_FILE, points=points)
    print(f"wrote {DATA_FILE}: chin y={points[facemesh.CHIN, 1]:.3f}, nose tip y={points[facemesh.NOSE_TIP, 1]:.3f}")


if __name__ == "__main__":  # pragma: no cover
    _rebuild()
