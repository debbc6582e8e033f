"""Realism gallery and figures on real faces: the full render path (align -> mask -> lighting) on a
varied set of faces from a UTKFace-style pool (children, elderly, every race, turned heads, soft and
sharp photos), for looking at the result and for before/after comparisons.

    python benchmarks/realism_gallery.py --pool ../shared/data/utkface-dev --out docs/images/realism_after.jpg

Prints figures over the chosen faces so a change can be judged by numbers as well as by eye: the
mask's softness and grain against the photo's (the camera match, per row) and the upper lip's
brightness against the cheeks under light from high above (the "moustache" band). The pass/fail
pixel checks of each defect live in tests/test_realism.py and tests/test_maskfit*.py.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from synthface.generation.align import align_face
from synthface.generation.capture import estimate_blur, estimate_capture, estimate_noise, source_jpeg_quality
from synthface.generation.lighting import LightingConfig, LightingParams, apply_lighting, sample_lighting
from synthface.generation.render import mask_and_light
from synthface.images import read_image_rgb
from synthface.landmarks import LandmarkDetector
from synthface.maskfit import MaskAppearance, MaskLibrary, sample_mask_params
from synthface.scenario import FaceQuality

ROWS = [  # (mask type, wear style, lighting preset)
    ("surgical", "proper", "studio"),
    ("surgical", "chin", "daylight"),
    ("surgical", "nose_exposed", "harsh_side"),
    ("n95", "proper", "harsh_side"),
    ("kn95", "proper", "daylight"),
    ("cloth", "proper", "indoor_warm"),
    ("valve_respirator", "proper", "dim"),
    ("clear_window", "proper", "studio"),
    ("gaiter", "proper", "daylight"),
    ("hand", "proper", "studio"),
]


def pick_faces(pool: Path, count: int, seed: int) -> list[Path]:
    """A varied, repeatable choice: young children, elderly, each of the five races, the rest random."""
    rng = np.random.default_rng(seed)
    files = sorted(pool.glob("*.jpg"))
    labelled = []
    for path in files:
        parts = path.name.split("_")
        try:
            labelled.append((path, int(parts[0]), int(parts[2])))
        except (ValueError, IndexError):
            continue
    chosen: list[Path] = []

    def take(candidates, k):
        candidates = [c for c in candidates if c not in chosen]
        for i in rng.permutation(len(candidates))[:k]:
            chosen.append(candidates[i])

    take([p for p, age, _ in labelled if age <= 5], 2)
    take([p for p, age, _ in labelled if age >= 75], 2)
    for race in range(5):
        take([p for p, age, r in labelled if r == race and 18 <= age < 75], 1)
    take([p for p, _, _ in labelled], max(count - len(chosen), 0))
    return chosen[:count]


UPPER_LIP, CHEEKS = (0, 37, 267, 164), (50, 280, 101, 330)  # face-mesh indices


def aligned_face(image, path, landmarks, size):
    """The face framed as the generator frames it (scenario defaults), and its camera estimate."""
    faces = FaceQuality()
    aligned = align_face(image, landmarks, size, faces.crop_margin, min_margin=faces.min_margin, max_padding=faces.max_padding)
    return aligned, estimate_capture(aligned.image, aligned.points, source_jpeg_quality(path))


def render_tile(aligned, capture, definition, wear, preset, seed):
    """One sample through the generator's own path. Returns (final image, the mask's render)."""
    rng = np.random.default_rng(seed)
    light = sample_lighting(LightingConfig(preset=preset), rng)
    params = sample_mask_params(definition, MaskAppearance(), wear, rng)
    return mask_and_light(aligned, definition, params, light, capture)


def camera_match(rendered, capture) -> tuple[float, float] | None:
    """(mask outline softness / face softness, mask grain - face grain) before the scenario's own camera."""
    if rendered is None or capture.blur_sigma <= 0:
        return None
    gray = cv2.cvtColor(rendered.image, cv2.COLOR_RGB2GRAY)
    mask = rendered.occlusion.astype(np.uint8)
    ring = (cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0) & ~(cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0)
    body = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    return estimate_blur(gray, ring) / capture.blur_sigma, estimate_noise(gray, body) - capture.noise_std


def lip_to_cheek_gain(aligned) -> float:
    """Brightness gain of the upper lip over the cheeks' under a light from 60 degrees above (1.0 = no band)."""
    light = LightingParams("top", 1.0, 0.0, 60.0, 0.9, 0.3, 0.3, 6500.0, 0.0, False, 0.0, 95, 0)
    before = cv2.cvtColor(aligned.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    after = cv2.cvtColor(apply_lighting(aligned.image, aligned.points, light), cv2.COLOR_RGB2GRAY).astype(np.float32)

    def gain(indices):
        ratios = []
        for i in indices:
            x, y = np.round(aligned.points[i, :2]).astype(int)
            ratios.append(after[y - 2:y + 3, x - 2:x + 3].mean() / max(before[y - 2:y + 3, x - 2:x + 3].mean(), 1.0))
        return float(np.mean(ratios))

    return gain(UPPER_LIP) / gain(CHEEKS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, required=True, help="UTKFace-style folder of face photos")
    parser.add_argument("--faces", type=int, default=10)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("realism_gallery.jpg"))
    args = parser.parse_args()

    library = MaskLibrary.load()
    paths = pick_faces(args.pool, args.faces, args.seed)
    faces = []
    with LandmarkDetector() as detector:
        for path in paths:
            image = read_image_rgb(path)
            found = detector.detect(image)
            if found:
                faces.append((path, image, found[0]))
    print(f"{len(faces)} faces with landmarks of {len(paths)} chosen")
    start = time.perf_counter()
    framed = [aligned_face(image, path, landmarks, args.size) for path, image, landmarks in faces]
    rows = []
    for r, (mask_type, wear, preset) in enumerate(ROWS):
        tiles, matches = [], []
        for f, (path, _, _) in enumerate(faces):
            tile, rendered = render_tile(*framed[f], library.get(mask_type), wear, preset, 1000 * r + f)
            matches.append(camera_match(rendered, framed[f][1]))
            label = f"{mask_type}/{wear}/{preset}" if f == 0 else path.name.split("_20")[0]
            cv2.putText(tile, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
        matched = np.array([m for m in matches if m is not None]).reshape(-1, 2)
        if len(matched):
            print(f"{mask_type + '/' + wear + '/' + preset:36s} mask/face softness median {np.median(matched[:, 0]):.2f} "
                  f"(range {matched[:, 0].min():.2f}-{matched[:, 0].max():.2f}), grain difference median {np.median(matched[:, 1]):+.1f}")
    sheet = np.vstack(rows)
    elapsed = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{len(ROWS) * len(faces)} tiles in {elapsed:.1f} s -> {args.out}")
    gains = [lip_to_cheek_gain(aligned) for aligned, _ in framed]
    print(f"upper lip / cheeks brightness under top light: min {min(gains):.2f}, median {np.median(gains):.2f} (1.0 = no band)")


if __name__ == "__main__":
    main()
