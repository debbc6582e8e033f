"""Gallery of procedural hands (the `hand` confuser) on varied real faces, through the generator's own
render path (align -> hand -> lighting), with the figures that say whether hands vary and match skin.

    python benchmarks/hands_gallery.py --pool ../shared/data/utkface-dev --out docs/images/hands.jpg

Each tile is one seed: a new pose, view, size, angle and spread. Printed: how many distinct poses and
views were drawn, and the median colour difference between the hand and the face's cheeks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realism_gallery import aligned_face, pick_faces  # noqa: E402

from synthface.generation.lighting import LightingConfig, sample_lighting  # noqa: E402
from synthface.generation.render import mask_and_light  # noqa: E402
from synthface.images import read_image_rgb  # noqa: E402
from synthface.landmarks import LandmarkDetector  # noqa: E402
from synthface.maskfit import MaskAppearance, MaskLibrary, fit_mask, sample_mask_params  # noqa: E402
from synthface.maskfit.hands import sample_hand  # noqa: E402

PRESETS = ("studio", "daylight", "indoor_warm", "harsh_side", "dim")
CHEEKS = (50, 280, 101, 330, 205, 425)


def cheek_colour(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    samples = [image[int(points[i, 1]) - 2:int(points[i, 1]) + 3, int(points[i, 0]) - 2:int(points[i, 0]) + 3].reshape(-1, 3)
               for i in CHEEKS]
    return np.median(np.concatenate(samples), axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, required=True, help="UTKFace-style folder of face photos")
    parser.add_argument("--faces", type=int, default=12)
    parser.add_argument("--per-face", type=int, default=4, help="hands (seeds) per face")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("hands.jpg"))
    args = parser.parse_args()

    hand = MaskLibrary.load().get("hand")
    faces = []
    with LandmarkDetector() as detector:
        for path in pick_faces(args.pool, args.faces, args.seed):
            image = read_image_rgb(path)
            found = detector.detect(image)
            if found:
                faces.append(aligned_face(image, path, found[0], args.size))
    rows, shapes, differences = [], [], []
    for f, (aligned, capture) in enumerate(faces):
        tiles = []
        for k in range(args.per_face):
            seed = 7919 * f + k
            rng = np.random.default_rng(seed)
            light = sample_lighting(LightingConfig(preset=PRESETS[(f + k) % len(PRESETS)]), rng)
            params = sample_mask_params(hand, MaskAppearance(), "proper", rng)
            shapes.append(sample_hand(np.random.default_rng(params.texture_seed)))
            tile, rendered = mask_and_light(aligned, hand, params, light, capture)
            # Colour match measured before the scenario's light: the hand's median against the cheeks'.
            bare = fit_mask(aligned.image, aligned.points, hand, params, np.array([0.0, 0.0, 1.0]))
            body = cv2.erode(bare.occlusion.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            if body.any():
                differences.append(np.abs(np.median(bare.image[body], axis=0) - cheek_colour(aligned.image, aligned.points)).mean())
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    # Two faces per row of the sheet.
    pairs = [np.hstack(rows[i:i + 2]) for i in range(0, len(rows) - 1, 2)]
    sheet = np.vstack(pairs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    poses = sorted({(s.pose, s.view) for s in shapes})
    print(f"{len(shapes)} hands on {len(faces)} faces -> {args.out}")
    print(f"pose/view combinations drawn: {poses}")
    print(f"hand vs cheek colour, mean abs RGB difference of medians: median {np.median(differences):.1f}, "
          f"90th percentile {np.percentile(differences, 90):.1f} (0-255)")


if __name__ == "__main__":
    main()
