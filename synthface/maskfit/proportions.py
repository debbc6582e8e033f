"""Fit a mask to the proportions of the face it is on, not to the canonical adult face.

Templates are drawn on the canonical (adult) face. The fit's spline maps a face's lower half
onto it, but the eyes are not among its control points: on a child (eyes low in a wide face,
a short nose) or an unusual adult, a top edge drawn at the canonical height lands on the
lower eyelids. Two corrections, both in face space and both cheap (a few dozen points):

- `clear_the_eyes`: the top edge is kept below the face's own lower-eyelid landmarks (mapped
  into face space) by `EYELID_CLEARANCE`; where it would reach higher, the mask is compressed
  toward its bottom edge (the part under the chin stays where it was, as a smaller mask would).
- `tuck_under_chin`: fabric below the jaw line wraps under the chin and is seen foreshortened,
  so its silhouette follows the jaw instead of showing the flat template's pointed bottom as a
  "stem" hanging under the chin.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from synthface import facemesh
from synthface.maskfit.canonical import canonical_face

# Lower eyelid contours, outer corner to inner corner (right eye, then left eye).
LOWER_EYELIDS = (33, 7, 163, 144, 145, 153, 154, 155, 133, 263, 249, 390, 373, 374, 380, 381, 382, 362)
EYELID_CLEARANCE = 0.08  # face units between a lower eyelid and the mask's top edge (about 5 px on a 224 px crop)
MIN_SQUASH = 0.6  # a mask is never compressed to less than this share of its height
# How strongly fabric below the jaw is foreshortened (face-space distance below the jaw divided by this)
# per wear style: a mask worn properly wraps tightly under the chin; one pulled down onto the chin, or
# hanging from one strap, hangs in front of the neck and is left as it is.
TUCK = {"proper": 3.0, "nose_exposed": 3.0}
# Share of the clip region's margin below the jaw that tucked fabric may fill (the margin is pushed out in
# pixels, face units below the jaw are often larger: keep well inside it, so the clip never cuts it flat).
TUCK_REACH = 0.55


def top_edge_y(outline_face: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Face-space y of a closed outline's highest crossing at each x (+inf where the outline does not reach x)."""
    a, b = outline_face, np.roll(outline_face, -1, axis=0)
    x0, x1 = a[:, 0][:, None], b[:, 0][:, None]
    lo, hi = np.minimum(x0, x1), np.maximum(x0, x1)
    crosses = (xs[None, :] >= lo) & (xs[None, :] <= hi) & (hi > lo)
    t = np.where(crosses, (xs[None, :] - x0) / np.where(hi > lo, x1 - x0, 1.0), 0.0)
    y = a[:, 1][:, None] + t * (b[:, 1] - a[:, 1])[:, None]
    return np.where(crosses, y, np.inf).min(axis=0)


def clear_the_eyes(outline: np.ndarray, to_template: np.ndarray, eyelids_face: np.ndarray,
                   clearance: float = EYELID_CLEARANCE) -> np.ndarray:
    """The wear transform (face -> template, 2x3) with the mask compressed toward its bottom just enough
    that its top edge stays `clearance` below every lower-eyelid point (`eyelids_face`, (M, 2) face space).

    `outline` is the template's closed outline (template space). Unchanged when the edge is already clear.
    """
    forward = np.linalg.inv(np.vstack([to_template, [0, 0, 1]]))[:2]  # template -> face
    face_outline = outline @ forward[:, :2].T + forward[:, 2]
    bottom = float(face_outline[:, 1].max())
    top = top_edge_y(face_outline, eyelids_face[:, 0])
    reached = np.isfinite(top) & (top < eyelids_face[:, 1] + clearance)
    if not reached.any():
        return to_template
    wanted = (bottom - eyelids_face[reached, 1] - clearance) / np.maximum(bottom - top[reached], 1e-6)
    squash = float(np.clip(wanted.min(), MIN_SQUASH, 1.0))
    # face point p -> the point it had before the squash about the bottom edge: y0 = b + (y - b) / k.
    unsquash = np.array([[1.0, 0.0, 0.0], [0.0, 1 / squash, bottom - bottom / squash], [0.0, 0.0, 1.0]])
    return (np.vstack([to_template, [0, 0, 1]]) @ unsquash)[:2]


@lru_cache(maxsize=1)
def _jaw_line() -> tuple[np.ndarray, np.ndarray]:
    """(x, y) samples of the canonical jaw line below the cheeks, sorted by x."""
    face = canonical_face()
    oval = face[list(facemesh.FACE_OVAL), :2].astype(np.float64)
    jaw = oval[oval[:, 1] > 0.9]
    order = np.argsort(jaw[:, 0])
    return jaw[order, 0], jaw[order, 1]


def reach_below_jaw(outline: np.ndarray, to_template: np.ndarray) -> float:
    """How far (face units) the worn template's outline reaches below the canonical jaw line, at most."""
    forward = np.linalg.inv(np.vstack([to_template, [0, 0, 1]]))[:2]  # template -> face
    face_outline = outline @ forward[:, :2].T + forward[:, 2]
    jaw_x, jaw_y = _jaw_line()
    inner = np.abs(face_outline[:, 0]) < 0.8
    if not inner.any():
        return 0.0
    return float(max((face_outline[inner, 1] - np.interp(face_outline[inner, 0], jaw_x, jaw_y)).max(), 0.0))


def tuck_map(maps: np.ndarray, origin: np.ndarray, ppu: float, to_template: np.ndarray, wear_style: str,
             limit: float, reach: float) -> np.ndarray:
    """`tuck_under_chin` applied to a per-pixel template map (HxWx2 template pixels, from `cv2.resize`).

    Done per pixel, not on the fit's coarse grid: the fold at the jaw line would otherwise be
    interpolated across a grid cell and leave a flat-sided tab under the chin.
    """
    if wear_style not in TUCK:
        return maps
    affine, shift = to_template[:, :2], to_template[:, 2]
    flat = maps.reshape(-1, 2)
    face_xy = (flat.astype(np.float64) / ppu + origin - shift) @ np.linalg.inv(affine).T
    # Only pixels below the jaw line's highest point can move; the rest keep their map exactly.
    moving = np.flatnonzero(face_xy[:, 1] > _jaw_line()[1].min())
    tucked = tuck_under_chin(face_xy[moving], wear_style, limit, reach)
    out = flat.astype(np.float32, copy=True)
    out[moving] = (tucked @ affine.T + shift - origin) * ppu
    return out.reshape(maps.shape)


def tuck_under_chin(face_xy: np.ndarray, wear_style: str, limit: float, reach: float) -> np.ndarray:
    """Face-space points with the part below the jaw line foreshortened (see module docstring).

    A point `d` below the jaw shows the template `k d` below it: `k` is the wear style's TUCK, or more
    where the template `reach`es so far below the jaw that it would fill the clip region's `limit`
    (its margin below the jaw, face units; TUCK_REACH of it at most) and be cut flat there. The map stays linear (the fit
    interpolates it from a coarse grid). Beside the jaw (|x| near the cheeks) the effect fades out,
    so a mask's sides are not bent.
    """
    if wear_style not in TUCK:
        return face_xy
    factor = max(TUCK[wear_style], reach / (TUCK_REACH * limit))
    jaw_x, jaw_y = _jaw_line()
    x, y = face_xy[:, 0], face_xy[:, 1]
    line = np.interp(x, jaw_x, jaw_y)
    below = y - line
    fade = np.clip((0.95 - np.abs(x)) / 0.3, 0, 1)
    fade = fade * fade * (3 - 2 * fade)
    out = face_xy.copy()
    out[:, 1] = np.where(below > 0, line + below * (1 + (factor - 1) * fade), y)
    return out
