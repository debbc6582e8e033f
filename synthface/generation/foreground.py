"""Things in front of the lower face in the source photo (a coloured object, a microphone, a hand).

A mask drawn over such an object would put the mask in front of it; the generator instead keeps
the object on top (the mask goes behind it), or, when the object hides much of the lower face or
the mouth, skips the face with the reason "lower face occluded" (a fit failure, replaced by
another face of the same stratum).

The check is cheap (one pass over the lower face's box) and tuned to leave faces with nothing in
front alone (see benchmarks/foreground.py for its false-positive rate on real faces):

1. a skin model from the face's own cheeks, nose and forehead (median and spread of Y, Cr, Cb);
2. the lower face (the face oval below the middle of the nose) less what belongs there and is
   not skin: the lips and mouth, the nostrils;
3. a pixel is foreground when its colour is off the skin's hue axis: beards, stubble, shadows,
   grey or white hair and dark skin all lie between the skin's colour and grey, at any
   brightness, so only colours of another hue count (blue, green, purple, saturated red or
   yellow, a strongly tinted object), plus near-black objects darker than any shadow that are
   smooth inside (a microphone or phone, not a beard's texture);
4. pixels become objects only as connected regions of a real size; the fraction of the lower
   face they cover, and of the lips, decide: behind (small) or skip (large, or mouth hidden).

What it does not see: a foreground object of the skin's own hue (a hand of the same person,
brown hair across the mouth). Those are left as they are (the mask is drawn over them).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthface import facemesh

SKIN_POINTS = (50, 280, 101, 330, 205, 425, 6, 197, 151, 9, 108, 337)  # cheeks, nose ridge, forehead
NOSTRILS = (79, 309, 98, 327, 64, 294, 240, 460)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
REGION_TOP = 0.62  # face-space y where the checked region starts (the nose tip is 0.58, the chin 1.70)
CHROMA_FLOOR = 3.0  # smallest spread of the skin's Cr/Cb, levels (JPEG-flat faces have almost none)
OFF_AXIS = 6.0  # a pixel's chroma this many spreads (and at least MIN_OFF_AXIS levels) off the skin's hue axis is not skin
MIN_OFF_AXIS = 14.0
BEYOND_GREY = 14.0  # chroma past grey, away from the skin's hue, by this many levels (blue/green objects)
DARK = 0.18  # near-black: Y below this share of the skin's Y (and below DARK_LEVEL) ...
DARK_LEVEL = 36.0
NEUTRAL = 0.4  # ... and grey: its chroma along the skin's hue below this share of the skin's own
NO_PHOTO = 6.0  # Y at or below this is the photo's missing corner or padding, not an object
DARK_SMOOTHNESS = 6.0  # ... with a local Y spread below this many levels (an object's plain surface, not hair)
MIN_OBJECT = 0.03  # smallest object kept: its pixels on the lower face, as a share of it ...
MIN_CORE = 0.01  # ... of which this share of the core at least (background along the outline never reaches in)
CORE_HALF_WIDTH = 0.7  # and no farther from the midline than this, face units (the mouth's corners are at 0.43)
CHIN_LINE = 1.55  # face-space y below which an object found on the face is followed down (a microphone's handle)
CORE_INSET = 0.12  # the core is the lower face less this band along its outline, face units
SIDE_REACH, BOTTOM_REACH = 0.15, 0.6  # an object is followed this far past the face's sides and below the chin
GROW = 0.6  # following a found object, the colour tests are this much looser (darkness: 1 / this)
GROW_FLOOR = np.float32([10.0, 5.0, 5.0])  # least spread of an object's own Y, Cr, Cb when following it
GROW_SPREADS = 2.5
MAX_BEHIND = 0.3  # objects covering more of the region than this: the face is skipped
MAX_MOUTH_HIDDEN = 0.5  # or hiding more than this share of the lips


@dataclass(frozen=True)
class Foreground:
    """What lies in front of the lower face of one aligned photo."""

    mask: np.ndarray  # HxW float32 0..1: the object's coverage (soft edge), zero where nothing is in front
    fraction: float  # share of the checked lower-face region covered by objects
    mouth_hidden: float  # share of the lips covered by objects

    @property
    def occluded(self) -> bool:
        """Too much is in front: no mask can be drawn believably (the face is skipped)."""
        return self.fraction > MAX_BEHIND or self.mouth_hidden > MAX_MOUTH_HIDDEN

    @property
    def reason(self) -> str:
        return (f"lower face occluded: an object in front covers {self.fraction:.0%} of the lower face "
                f"and {self.mouth_hidden:.0%} of the lips")

    def keep_on_top(self, rendered: np.ndarray, original: np.ndarray) -> np.ndarray:
        """`rendered` with the photo's own pixels put back where the object is (the mask goes behind it)."""
        if self.fraction <= 0:
            return rendered
        weight = self.mask[..., None]
        return np.clip(rendered * (1 - weight) + original * weight + 0.5, 0, 255).astype(np.uint8)


def _face_space(points: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Face-space (x, y) (x = +-1 at the cheeks, y = 0 at the nose bridge, 1.7 at the chin) of every pixel of
    `box`, by an affine fit to the lower face."""
    from synthface.maskfit.hands import face_to_image_affine

    inverse = cv2.invertAffineTransform(face_to_image_affine(points).astype(np.float64))
    x0, y0, x1, y1 = box
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    return (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]).astype(np.float32), \
        (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]).astype(np.float32)


def _skin_model(ycrcb: np.ndarray, points: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(median Y, Cr, Cb; robust spread of each) over patches around the skin landmarks."""
    height, width = ycrcb.shape[:2]
    patches = []
    for index in SKIN_POINTS:
        x, y = np.round(points[index, :2]).astype(int)
        patch = ycrcb[max(y - radius, 0):min(y + radius + 1, height), max(x - radius, 0):min(x + radius + 1, width)]
        patches.append(patch.reshape(-1, 3))
    pixels = np.concatenate(patches).astype(np.float32)
    if len(pixels) == 0:
        return np.float32([128, 150, 115]), np.float32([30, CHROMA_FLOOR, CHROMA_FLOOR])
    centre = np.median(pixels, axis=0)
    spread = 1.4826 * np.median(np.abs(pixels - centre), axis=0)
    return centre, spread


def _grow(objects: np.ndarray, box: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The objects extended to the connected pixels of their own colour (an object over the lips, a handle
    below the chin), within `allowed` (pixels that are not plainly skin)."""
    pixels = box[objects]
    centre = np.median(pixels, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(pixels - centre), axis=0), GROW_FLOOR)
    like = (np.abs(box - centre) < GROW_SPREADS * spread).all(axis=-1) & allowed
    count, labels = cv2.connectedComponents((like | objects).astype(np.uint8), connectivity=8)
    touching = np.zeros(count, bool)
    touching[np.unique(labels[objects])] = True
    touching[0] = False
    return touching[labels] | objects


def detect_foreground(image_rgb: np.ndarray, points: np.ndarray) -> Foreground:
    """Find objects in front of the lower face of `image_rgb` (its 478 landmarks `points`, pixels)."""
    height, width = image_rgb.shape[:2]
    nothing = Foreground(np.zeros((height, width), np.float32), 0.0, 0.0)
    unit = float(np.linalg.norm(points[facemesh.CHEEK_LEFT, :2] - points[facemesh.CHEEK_RIGHT, :2]) / 2)
    oval = points[list(facemesh.FACE_OVAL), :2]
    # The box reaches past the face's sides and below the chin, as far as a mask may be drawn.
    x0, y0 = np.floor(np.maximum(oval.min(0) - [SIDE_REACH * unit, 0], 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(oval.max(0) + [SIDE_REACH * unit, BOTTOM_REACH * unit] + 1, [width, height])).astype(int)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return nothing
    face_x, face_y = _face_space(points, (x0, y0, x1, y1))
    rows = np.nonzero((face_y > REGION_TOP).any(axis=1))[0]
    if len(rows) == 0:
        return nothing
    y0, face_x, face_y = y0 + int(rows[0]), face_x[rows[0]:], face_y[rows[0]:]
    local = points[:, :2] - [x0, y0]
    box_shape = (y1 - y0, x1 - x0)
    below = face_y > REGION_TOP
    region = facemesh.polygon_mask(local, facemesh.FACE_OVAL, box_shape) & below
    area = int(region.sum())
    # The core: the lower face away from its outline, where background or hair at the face's edge cannot be.
    inset = max(int(CORE_INSET * unit), 1)
    core = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=inset) > 0
    core &= np.abs(face_x) < CORE_HALF_WIDTH  # on a turned head the far contour's landmarks can lie on the background
    core_area = int(core.sum())
    if area < 50 or core_area < 20:
        return nothing
    # What belongs on a lower face and is not skin: the lips and the mouth, the nostrils.
    lips = facemesh.polygon_mask(local, facemesh.LIPS_OUTER, box_shape)
    lip_zone = cv2.dilate(lips.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(int(0.04 * unit), 1)) > 0
    # Dark by nature (a near-black object is not told apart there): the open mouth and the nostrils.
    dark_parts = facemesh.polygon_mask(local, LIPS_INNER, box_shape).astype(np.uint8)
    for index in NOSTRILS:
        cx, cy = np.round(local[index]).astype(int)
        cv2.circle(dark_parts, (int(cx), int(cy)), max(int(0.07 * unit), 1), 1, -1)
    dark_parts = dark_parts > 0
    expected = lip_zone | dark_parts

    ycrcb = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2YCrCb)
    centre, spread = _skin_model(ycrcb, points, max(int(0.05 * unit), 1))
    box = cv2.GaussianBlur(ycrcb[y0:y1, x0:x1], (0, 0), max(0.015 * unit, 0.6)).astype(np.float32)
    # Chroma relative to grey; the skin's hue axis runs from grey (beards, shadows) through the skin's colour.
    axis = centre[1:] - 128
    axis_len = float(np.linalg.norm(axis))
    chroma = box[..., 1:] - 128
    limit = max(OFF_AXIS * max(float(np.hypot(*spread[1:])), CHROMA_FLOOR), MIN_OFF_AXIS)
    if axis_len < 2:  # grey skin (a black-and-white photo): any colour at all is off
        off = np.linalg.norm(chroma, axis=-1)
        coloured = off > limit
        coloured_on_lips = np.zeros(box_shape, bool)
    else:
        direction = axis / axis_len
        along = chroma @ direction
        # Signed distance off the axis: negative toward magenta (where lips lie), positive toward yellow-green.
        side = chroma[..., 0] * direction[1] - chroma[..., 1] * direction[0]
        beyond_grey = along < -BEYOND_GREY
        coloured = (np.abs(side) > limit) | beyond_grey
        coloured_on_lips = (side > limit) | beyond_grey  # lips are redder than skin, never green or blue
    luma = box[..., 0]
    mean = cv2.blur(luma, (5, 5))
    local_std = np.sqrt(np.maximum(cv2.blur(luma * luma, (5, 5)) - mean * mean, 0))
    # Near-black, smooth and grey: a shadow on skin keeps the skin's hue, a photo's missing corner is pure black.
    grey = (along < NEUTRAL * axis_len) if axis_len >= 2 else np.ones(box_shape, bool)
    black = (luma < min(DARK * centre[0], DARK_LEVEL)) & (luma > NO_PHOTO) & (local_std < DARK_SMOOTHNESS) & grey
    candidate = np.where(dark_parts, coloured_on_lips, np.where(lip_zone, coloured_on_lips | black, coloured | black)) & below
    # Looser versions of the same tests: where an object, once found, may be followed (over the lips too).
    if axis_len < 2:
        loose = off > GROW * limit
    else:
        loose = (np.abs(side) > GROW * limit) | (along < -GROW * BEYOND_GREY)
    loose |= luma < min(DARK * centre[0], DARK_LEVEL) * 1.3
    # Objects, not specks: open away single pixels; keep connected regions that reach well into the core.
    candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels = cv2.connectedComponents(candidate, connectivity=8)
    if count <= 1:
        return nothing
    in_region = np.bincount(labels[region], minlength=count)
    in_core = np.bincount(labels[core], minlength=count)
    keep = (in_region >= MIN_OBJECT * area) & (in_core >= MIN_CORE * core_area)
    keep[0] = False
    if not keep.any():
        return nothing
    # An object is followed over the lower face and below the chin (a handle), not out into the background.
    near = (cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(int(0.05 * unit), 1)) > 0) \
        | ((face_y > CHIN_LINE) & (np.abs(face_x) < CORE_HALF_WIDTH))
    objects = _grow(keep[labels], box, loose & near)
    # Lips under an object: an object over the mouth hides the lip pixels it surrounds too.
    filled = cv2.morphologyEx(objects.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8),
                              iterations=max(int(0.03 * unit), 1)) > 0
    mouth_hidden = float((filled & lips).sum() / max(lips.sum(), 1))
    objects = objects | (filled & expected)
    fraction = float((objects & region).sum() / area)
    soft = cv2.GaussianBlur(objects.astype(np.float32), (0, 0), 0.7)
    soft = np.maximum(soft, objects.astype(np.float32))  # the object's own pixels stay exactly the photo's
    mask = np.zeros((height, width), np.float32)
    mask[y0:y1, x0:x1] = soft
    return Foreground(mask, fraction, mouth_hidden)
