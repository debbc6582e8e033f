"""The foreground check (synthface/generation/foreground.py) on real faces: how often it alters or skips a face,
how often it finds objects drawn in front of the mouth, and what it costs.

    python benchmarks/foreground.py --pool ../shared/data/utkface-dev -n 300 --sheet flagged.jpg

Faces are picked at random (seeded) and framed as the generator frames them. Printed:
- flagged: faces where the check would put the mask behind something, or skip the face. On a pool
  where few faces have anything in front of the mouth this is an upper bound on the false-positive
  rate; `--sheet` writes the flagged faces (object pixels tinted magenta) to look at and count the
  true ones;
- found: on the same faces with a synthetic object drawn over the mouth (a black microphone, a
  coloured cup or toy, a dark strand across the mouth), how often the check keeps it on top and how much of
  it is kept;
- the check's time per face.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realism_gallery import aligned_face  # noqa: E402

from synthface import facemesh  # noqa: E402
from synthface.generation.foreground import detect_foreground  # noqa: E402
from synthface.images import read_image_rgb  # noqa: E402
from synthface.landmarks import LandmarkDetector  # noqa: E402


def draw_object(image: np.ndarray, points: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic foreground object over the mouth: (image with it, its mask)."""
    out = image.copy()
    mask = np.zeros(image.shape[:2], np.uint8)
    unit = float(np.linalg.norm(points[facemesh.CHEEK_LEFT, :2] - points[facemesh.CHEEK_RIGHT, :2]) / 2)
    mouth = points[[61, 291], :2].mean(0)
    if kind == "microphone":  # a dark handle from below with a round head at the mouth's side
        head = mouth + np.array([rng.uniform(-0.3, 0.3) * unit, 0.25 * unit])
        foot = head + np.array([rng.uniform(-0.5, 0.5) * unit, 2.5 * unit])
        colour = tuple(int(c) for c in rng.integers(10, 35, 3))
        cv2.line(mask, tuple(np.round(head).astype(int)), tuple(np.round(foot).astype(int)), 1, max(int(0.22 * unit), 2))
        cv2.circle(mask, tuple(np.round(head).astype(int)), max(int(0.2 * unit), 2), 1, -1)
    elif kind == "toy":  # a coloured object (cup, pacifier, toy) held at the mouth
        centre = mouth + np.array([rng.uniform(-0.2, 0.2) * unit, rng.uniform(0.0, 0.25) * unit])
        axes = (int(rng.uniform(0.25, 0.4) * unit), int(rng.uniform(0.2, 0.35) * unit))
        hue = int(rng.choice([10, 60, 100, 130, 160]))  # OpenCV hue: orange-red, green, blue, purple, magenta
        hsv = np.uint8([[[hue, int(rng.uniform(150, 255)), int(rng.uniform(110, 230))]]])
        colour = tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
        cv2.ellipse(mask, tuple(np.round(centre).astype(int)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:  # a dark strand of hair across the mouth
        start = mouth + np.array([-1.2 * unit, rng.uniform(-0.4, 0.1) * unit])
        end = mouth + np.array([1.2 * unit, rng.uniform(0.0, 0.5) * unit])
        colour = tuple(int(c) for c in rng.integers(15, 40, 3))
        cv2.line(mask, tuple(np.round(start).astype(int)), tuple(np.round(end).astype(int)), 1, max(int(0.08 * unit), 2))
    shade = 0.85 + 0.3 * rng.random(image.shape[:2])[..., None]  # not perfectly flat
    painted = np.clip(np.asarray(colour, np.float32) * shade, 0, 255).astype(np.uint8)
    out[mask > 0] = painted[mask > 0]
    return out, mask > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", type=Path, default=None, help="write the flagged faces here")
    args = parser.parse_args()

    files = sorted(args.pool.glob("*.jpg"))
    picks = np.random.default_rng(args.seed).permutation(len(files))[: args.n]
    faces = []
    with LandmarkDetector() as detector:
        for i in picks:
            image = read_image_rgb(files[i])
            found = detector.detect(image)
            if found:
                aligned, _ = aligned_face(image, files[i], found[0], args.size)
                faces.append((files[i].name, aligned))
    times, flagged = [], []
    behind = skipped = 0
    for name, aligned in faces:
        start = time.perf_counter()
        result = detect_foreground(aligned.image, aligned.points)
        times.append(time.perf_counter() - start)
        if result.occluded:
            skipped += 1
        elif result.fraction > 0:
            behind += 1
        if result.fraction > 0 or result.occluded:
            flagged.append((name, aligned, result))
    n = len(faces)
    print(f"faces checked: {n} (of {args.n} picked; the rest had no face found)")
    print(f"flagged, mask would go behind an object: {behind} ({behind / n:.1%})")
    print(f"flagged, face skipped as 'lower face occluded': {skipped} ({skipped / n:.1%})")
    print(f"flagged in all (upper bound on false positives): {behind + skipped} ({(behind + skipped) / n:.1%})")
    print(f"check time per face at {args.size} px: median {1000 * np.median(times):.2f} ms, 90th percentile "
          f"{1000 * np.percentile(times, 90):.2f} ms")

    rng = np.random.default_rng(args.seed + 1)
    for kind in ("microphone", "toy", "strand"):
        behind_shares, skipped_here = [], 0
        for _, aligned in faces:
            image, truth = draw_object(aligned.image, aligned.points, kind, rng)
            result = detect_foreground(image, aligned.points)
            inside = truth & facemesh.polygon_mask(aligned.points, facemesh.FACE_OVAL, truth.shape)
            if result.occluded:
                skipped_here += 1
            elif result.fraction > 0 and inside.any():
                behind_shares.append(float((result.mask[inside] > 0.5).mean()))
        print(f"synthetic {kind:10s} over the mouth: kept on top {len(behind_shares) / n:.1%} (median share of its face "
              f"pixels kept {np.median(behind_shares) if behind_shares else 0:.0%}), face skipped {skipped_here / n:.1%}, "
              f"missed {1 - (len(behind_shares) + skipped_here) / n:.1%}")

    if args.sheet and flagged:
        tiles = []
        for name, aligned, result in flagged[:40]:
            tile = aligned.image.astype(np.float32)
            tile = tile * (1 - 0.6 * result.mask[..., None]) + 0.6 * result.mask[..., None] * np.float32([255, 0, 255])
            tile = cv2.resize(tile.astype(np.uint8), (160, 160))
            label = f"{'SKIP' if result.occluded else 'behind'} {result.fraction:.2f}/{result.mouth_hidden:.2f}"
            cv2.putText(tile, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.putText(tile, name.split("_20")[0], (3, 154), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        while len(tiles) % 8:
            tiles.append(np.zeros_like(tiles[0]))
        sheet = np.vstack([np.hstack(tiles[i:i + 8]) for i in range(0, len(tiles), 8)])
        cv2.imwrite(str(args.sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"flagged faces -> {args.sheet}: " + ", ".join(name for name, _, _ in flagged))


if __name__ == "__main__":
    main()
