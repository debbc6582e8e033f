"""Photo mask templates: an RGBA picture of a real mask, placed in face space and fitted like any type.

A definition with `image:` is resampled into face space once (per resolution): its pixels are
mapped to face points either by explicit `anchors` (template pixel -> named face point) or,
when they are absent, by matching the template's alpha outline to the definition's `outline`
(top centre, bottom centre, left/right extremes and points in between). From there the dense
fit, shading, straps, wear styles and occlusion map are those of procedural masks.

Edges are cleaned so no background or white fringe shows: the alpha is eroded and
feathered, and edge colours are replaced by colours pulled out from the opaque interior.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from synthface.errors import UserError

# Named face points (face space, see canonical.py) that explicit anchors may refer to.
# "left"/"right" are the subject's sides: the subject's left cheek is on the image's right.
FACE_POINTS: dict[str, tuple[float, float]] = {
    "nose_bridge": (0.0, 0.22),  # where a mask's top edge crosses the nose
    "nose_tip": (0.0, 0.58),
    "chin": (0.0, 1.80),  # the mask's bottom centre, under the chin
    "left_cheek": (1.03, 0.55),  # strap attachment, subject's left (image right)
    "right_cheek": (-1.03, 0.55),
    "left_jaw": (0.90, 1.30),
    "right_jaw": (-0.90, 1.30),
    "mouth_left": (0.43, 0.98),
    "mouth_right": (-0.43, 0.98),
}
OUTLINE_SAMPLES = 40  # outline samples, 10 per piece; each piece drops its shared end point: 36 correspondences
EDGE_ERODE_PX = 1.0  # pixels shaved off the alpha (a badly cut edge carries background colour)
EDGE_FEATHER_PX = 0.8  # Gaussian feather of the alpha edge


class PhotoTemplateError(UserError, ValueError):
    """A photo template cannot be used (unreadable image, empty alpha, bad anchors)."""


def read_rgba(path: Path) -> np.ndarray:
    """HxWx4 uint8 RGBA; an image without alpha gets its uniform background removed."""
    from synthface.images import read_image

    try:
        data = read_image(path, cv2.IMREAD_UNCHANGED)
    except ValueError as error:
        raise PhotoTemplateError(f"{path}: cannot read the image: {error}") from None
    if data.ndim == 2:
        data = cv2.cvtColor(data, cv2.COLOR_GRAY2BGR)
    if data.shape[2] == 4:
        rgba = cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA)
        if rgba[..., 3].min() < 250:
            return rgba
        rgb = rgba[..., :3]
    else:
        rgb = cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    alpha = remove_uniform_background(rgb)
    return np.dstack([rgb, alpha])


def remove_uniform_background(rgb: np.ndarray, tolerance: float = 40.0) -> np.ndarray:
    """Alpha (uint8) of the largest object on a uniform background, the colour taken from the image border.

    Pixels within `tolerance` (RGB distance) of the border's median colour are background;
    the largest remaining connected region, holes filled, is the mask.
    """
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float32)
    background = np.median(border, axis=0)
    spread = np.linalg.norm(border - background, axis=1)
    if np.percentile(spread, 90) > tolerance:
        raise PhotoTemplateError("the image has no alpha channel and its background is not uniform; "
                                 "cut the mask out (PNG with transparency) first")
    distance = np.linalg.norm(rgb.astype(np.float32) - background, axis=2)
    foreground = (distance > tolerance).astype(np.uint8)
    foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count < 2:
        raise PhotoTemplateError("no object found on the uniform background")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == largest).astype(np.uint8) * 255
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    # Soft edge: partial coverage from the colour distance across the threshold.
    soft = np.clip((distance - tolerance * 0.5) / tolerance, 0, 1) * 255
    edge = cv2.dilate(filled, np.ones((3, 3), np.uint8)) & ~cv2.erode(filled, np.ones((3, 3), np.uint8))
    return np.where(edge > 0, np.minimum(soft, filled.astype(np.float32) + soft), filled).astype(np.uint8)


def clean_edges(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(RGB float32 with decontaminated edge colours, alpha float32 0..1 eroded and feathered).

    Edge colours are replaced by a coverage-weighted blur of the opaque interior, so the
    background (or a white fringe from a careless cut) cannot bleed into the composite.
    """
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3].astype(np.float32) / 255
    solid = (alpha > 0.98).astype(np.float32)
    if solid.sum() < 16:
        raise PhotoTemplateError("the template's alpha has (almost) no opaque pixels")
    interior = cv2.erode(solid, np.ones((3, 3), np.uint8))
    weight = interior.copy()
    colour = rgb * interior[..., None]
    # Pull interior colours outward a few times (a cheap push-pull fill), then use them on the edge.
    for sigma in (1.5, 3.0, 6.0):
        blurred_w = cv2.GaussianBlur(weight, (0, 0), sigma)
        blurred_c = cv2.GaussianBlur(colour, (0, 0), sigma)
        fill = blurred_c / np.maximum(blurred_w, 1e-4)[..., None]
        missing = weight < 0.5
        colour = np.where(missing[..., None], fill * np.minimum(blurred_w * 4, 1)[..., None] + colour, colour)
        weight = np.where(missing, np.minimum(blurred_w * 4, 1), weight)
    edge = interior < 0.5
    clean = np.where(edge[..., None] & (weight[..., None] > 0.05), colour / np.maximum(weight, 1e-4)[..., None], rgb)
    distance = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    eroded = np.clip(distance - EDGE_ERODE_PX, 0, 1) * np.clip(alpha * 1.2, 0, 1)
    feathered = cv2.GaussianBlur(eroded.astype(np.float32), (0, 0), EDGE_FEATHER_PX) * (alpha > 0.02)
    return np.clip(clean, 0, 255).astype(np.float32), feathered.astype(np.float32)


def _alpha_contour(alpha: np.ndarray) -> np.ndarray:
    """(N, 2) float outer contour of the largest alpha region, going from the top toward the image's right."""
    mask = (alpha > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise PhotoTemplateError("the template's alpha is empty")
    contour = max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float64)
    n = len(contour)
    top, right, bottom = int(np.argmin(contour[:, 1])), int(np.argmax(contour[:, 0])), int(np.argmax(contour[:, 1]))
    if (right - top) % n > (bottom - top) % n:  # reaches the bottom before the right side: reverse
        contour = contour[::-1]
    return contour


def estimate_anchors(alpha: np.ndarray) -> dict[str, tuple[float, float]]:
    """Template pixels of the top centre, bottom centre and left/right extremes of the alpha outline.

    Named after the face points they meet: nose_bridge (top centre), chin (bottom centre),
    right_cheek (image-left extreme) and left_cheek (image-right extreme).
    """
    contour = _alpha_contour(alpha)
    x_mid = (contour[:, 0].min() + contour[:, 0].max()) / 2
    near_mid = np.abs(contour[:, 0] - x_mid) <= max(1.0, 0.02 * np.ptp(contour[:, 0]))
    column = contour[near_mid]
    top = (x_mid, float(column[:, 1].min()))
    bottom = (x_mid, float(column[:, 1].max()))
    left = contour[np.argmin(contour[:, 0])]
    right = contour[np.argmax(contour[:, 0])]
    return {"nose_bridge": top, "chin": bottom, "right_cheek": (float(left[0]), float(left[1])),
            "left_cheek": (float(right[0]), float(right[1]))}


def _resample(polyline: np.ndarray, count: int) -> np.ndarray:
    """`count` points evenly spaced by arc length along an open polyline (both ends included)."""
    steps = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    length = np.concatenate([[0], np.cumsum(steps)])
    targets = np.linspace(0, length[-1], count)
    return np.stack([np.interp(targets, length, polyline[:, i]) for i in range(2)], axis=1)


def _split_at(contour: np.ndarray, points: list[tuple[float, float]]) -> list[np.ndarray]:
    """The closed contour cut into open pieces between the contour points nearest to `points`, in order."""
    indices = [int(np.argmin(np.linalg.norm(contour - np.asarray(p), axis=1))) for p in points]
    pieces = []
    for start, end in zip(indices, indices[1:] + indices[:1]):
        if end >= start:
            pieces.append(contour[start:end + 1])
        else:
            pieces.append(np.concatenate([contour[start:], contour[:end + 1]]))
    return pieces


OUTLINE_ANCHORS = ("nose_bridge", "left_cheek", "chin", "right_cheek")  # in outline order from the top centre


def correspondences(alpha: np.ndarray, anchors: dict[str, tuple[float, float]] | None,
                    outline_face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(face-space points, template pixels) that pin the template onto the face.

    The alpha outline is cut at its top centre, image-right extreme, bottom centre and
    image-left extreme (the anchors nose_bridge, left_cheek, chin, right_cheek when given,
    else estimated) and matched piece by piece, by arc length, to the same places on the
    definition's face-space outline (a closed polygon, top centre first, going toward +x).
    Other anchors (nose_tip, mouth corners, jaw) pin interior points to their named face points.
    If some of the four outline anchors are given but not all, only the given anchors are used.
    """
    anchors = dict(anchors or {})
    given = [name for name in OUTLINE_ANCHORS if name in anchors]
    if given and len(given) < len(OUTLINE_ANCHORS):
        names = sorted(anchors)
        return (np.array([FACE_POINTS[n] for n in names], np.float64),
                np.array([anchors[n] for n in names], np.float64))
    split = {**estimate_anchors(alpha), **{name: anchors[name] for name in given}}
    contour = _alpha_contour(alpha)
    template_pieces = _split_at(contour, [split[name] for name in OUTLINE_ANCHORS])
    widest = int(np.argmax(outline_face[:, 0]))
    bottom = int(np.argmax(np.where(np.abs(outline_face[:, 0]) < 1e-6, outline_face[:, 1], -np.inf)))
    narrowest = int(np.argmin(outline_face[:, 0]))
    face_pieces = _split_at(outline_face, [tuple(outline_face[0]), tuple(outline_face[widest]),
                                           tuple(outline_face[bottom]), tuple(outline_face[narrowest])])
    per_piece = OUTLINE_SAMPLES // 4
    face_points, template_points = [], []
    for face_piece, template_piece in zip(face_pieces, template_pieces):
        face_points.append(_resample(face_piece, per_piece)[:-1])
        template_points.append(_resample(template_piece, per_piece)[:-1])
    interior = [name for name in anchors if name not in OUTLINE_ANCHORS]
    face_points.append(np.array([FACE_POINTS[n] for n in interior], np.float64).reshape(-1, 2))
    template_points.append(np.array([anchors[n] for n in interior], np.float64).reshape(-1, 2))
    return np.concatenate(face_points), np.concatenate(template_points)


def face_space_layers(image: str, anchors: dict[str, tuple[float, float]] | None, outline_face: np.ndarray,
                      ppu: float, pad: float = 0.08) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face-space origin (x, y) of pixel (0, 0), albedo HxWx3 float32, alpha HxW float32) of a photo template.

    The photo is pulled into face space at `ppu` pixels per face unit through a thin-plate
    spline fitted on the correspondences (face point -> template pixel).
    """
    from synthface.maskfit.warp import ThinPlateSpline

    rgb, alpha = clean_edges(read_rgba(Path(image)))
    face_points, template_points = correspondences(alpha, anchors, outline_face)
    size = float(max(alpha.shape))
    to_template = ThinPlateSpline(face_points, template_points / size, smoothing=1e-4)
    to_face = ThinPlateSpline(template_points / size, face_points, smoothing=1e-4)
    contour = _alpha_contour(alpha)
    extent = to_face(contour[:: max(1, len(contour) // 200)] / size).astype(np.float64)
    # A wild anchor set could extrapolate far; no mask reaches beyond this face-space box.
    lo = np.maximum(extent.min(0) - pad, (-2.0, -1.0))
    hi = np.minimum(extent.max(0) + pad, (2.0, 3.5))
    width, height = (np.ceil((hi - lo) * ppu)).astype(int) + 1
    step = 4
    gx = lo[0] + np.arange(0, width + step, step) / ppu
    gy = lo[1] + np.arange(0, height + step, step) / ppu
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    coarse = (to_template(grid) * size).reshape(len(gy), len(gx), 2).astype(np.float32)
    maps = _upsample_grid(coarse, step)[:height, :width]
    albedo = cv2.remap(rgb, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    coverage = cv2.remap(alpha, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return lo.astype(np.float32), albedo.astype(np.float32), coverage.astype(np.float32)


def _upsample_grid(coarse: np.ndarray, step: int) -> np.ndarray:
    """Bilinear upsampling where coarse sample (i, j) sits exactly on fine pixel (i * step, j * step)."""
    rows, cols = coarse.shape[:2]
    fy = np.arange((rows - 1) * step + 1, dtype=np.float32) / step
    fx = np.arange((cols - 1) * step + 1, dtype=np.float32) / step
    map_x, map_y = np.meshgrid(fx, fy)
    return cv2.remap(coarse, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@lru_cache(maxsize=32)
def template_colour(image: str) -> tuple[int, int, int]:
    """The dominant colour of a photo template file (recorded as mask_color when it is not recoloured)."""
    rgb, alpha = clean_edges(read_rgba(Path(image)))
    return dominant_colour(rgb, alpha)


def dominant_colour(albedo: np.ndarray, alpha: np.ndarray) -> tuple[int, int, int]:
    """Coverage-weighted median-ish colour of a template (the mean of its central 80% by brightness)."""
    pixels = albedo[alpha > 0.5]
    if len(pixels) == 0:
        return (128, 128, 128)
    brightness = pixels.mean(1)
    low, high = np.percentile(brightness, [10, 90])
    core = pixels[(brightness >= low) & (brightness <= high)]
    return tuple(int(round(c)) for c in (core if len(core) else pixels).mean(0))  # type: ignore[return-value]


def import_template(image: Path, name: str, reference, out_dir: Path, recolor: bool = True) -> tuple[Path, Path]:
    """Write `out_dir/<name>.png` (cut out, edge colours cleaned, cropped) and `out_dir/<name>.yaml`.

    The definition takes its outline, wear styles, margins, straps and palettes from
    `reference` (a bundled MaskDefinition such as n95) and records the estimated anchors,
    which a user may then correct by hand.
    """
    import yaml

    rgba = read_rgba(image)
    rgb, _ = clean_edges(rgba)
    alpha = rgba[..., 3]
    ys, xs = np.nonzero(alpha > 8)
    pad = 4
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, alpha.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, alpha.shape[1])
    cropped = np.dstack([np.clip(rgb, 0, 255).astype(np.uint8), alpha])[y0:y1, x0:x1]
    anchors = estimate_anchors(cropped[..., 3].astype(np.float32) / 255)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    if not cv2.imwrite(str(png), cv2.cvtColor(cropped, cv2.COLOR_RGBA2BGRA)):
        raise PhotoTemplateError(f"could not write {png}")
    definition = {
        "name": name,
        "description": f"Photo template imported from {image.name} (fitted like {reference.name}).",
        "is_mask": reference.is_mask,
        "image": png.name,
        "anchors": {key: [round(float(v), 1) for v in value] for key, value in anchors.items()},
        "recolor": recolor,
        "wear_styles": list(reference.wear_styles),
        "outline": [list(point) for point in reference.outline],
        "smooth": reference.smooth,
        "margin": reference.margin.model_dump(),
        "material": {**reference.material.model_dump(), "texture": 0.0, "shading": 0.4},
        "straps": reference.straps.model_dump(),
        "palettes": list(reference.palettes),
    }
    header = (f"# Photo mask template imported by `synthface masks import` from {image.name}.\n"
              "# anchors: template pixel (x, y) -> named face point, estimated from the alpha outline;\n"
              "# correct them by hand if the preview is off (see docs/custom-masks.md).\n")
    yaml_file = out_dir / f"{name}.yaml"
    yaml_file.write_text(header + yaml.safe_dump(definition, sort_keys=False, default_flow_style=None))
    return yaml_file, png
