"""Realism gallery and figures on real faces: the full render path (align -> mask -> lighting) on a
varied set of faces from a UTKFace-style pool (children, elderly, every race, turned heads, soft and
sharp photos), for looking at the result and for before/after comparisons.

    python benchmarks/realism_gallery.py --pool ../shared/data/utkface-dev --out docs/images/realism_after.jpg

Prints per-defect figures over the chosen faces (strap pieces, upper-lip darkness under top light,
mask vs face sharpness) so a change can be judged by numbers as well as by eye.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from synthface.align import align_face
from synthface.capture import estimate_capture, source_jpeg_quality
from synthface.landmarks import LandmarkDetector
from synthface.lighting import LightingConfig, sample_lighting
from synthface.maskfit import MaskAppearance, MaskLibrary, sample_mask_params
from synthface.pool import read_image_rgb
from synthface.render import mask_and_light
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


def render_tile(image, path, landmarks, definition, wear, preset, size, seed):
    """One sample through the generator's own path (scenario defaults for framing)."""
    faces = FaceQuality()
    rng = np.random.default_rng(seed)
    aligned = align_face(image, landmarks, size, faces.crop_margin, min_margin=faces.min_margin, max_padding=faces.max_padding)
    capture = estimate_capture(aligned.image, aligned.points, source_jpeg_quality(path))
    light = sample_lighting(LightingConfig(preset=preset), rng)
    params = sample_mask_params(definition, MaskAppearance(), wear, rng)
    return mask_and_light(aligned, definition, params, light, capture)[0]


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
    rows = []
    for r, (mask_type, wear, preset) in enumerate(ROWS):
        tiles = []
        for f, (path, image, landmarks) in enumerate(faces):
            tile = render_tile(image, path, landmarks, library.get(mask_type), wear, preset, args.size, 1000 * r + f)
            label = f"{mask_type}/{wear}/{preset}" if f == 0 else path.name.split("_20")[0]
            cv2.putText(tile, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    sheet = np.vstack(rows)
    elapsed = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{len(ROWS) * len(faces)} tiles in {elapsed:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
