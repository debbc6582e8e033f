"""Gallery of straps (ear loops, head straps) on children and turned heads from a real pool, through the
generator's own render path, with the figures that say whether straps hold together.

    python benchmarks/straps_gallery.py --pool ../shared/data/utkface-dev --out docs/images/straps.jpg

Faces: young children and the most turned heads among `--scan` photos. Columns: wear styles of an
ear-loop mask and a head-strap respirator. Printed over every face x type x wear style (and three
seeds): the share of samples with a strap piece floating free of the mask, with more than two pieces
on one side, and with no strap visible on the near side; and the share of children whose mask's top
edge comes within 2 px of a lower eyelid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realism_gallery import aligned_face  # noqa: E402

from synthface import facemesh  # noqa: E402
from synthface.generation.lighting import LightingConfig, sample_lighting  # noqa: E402
from synthface.generation.pool import read_image_rgb  # noqa: E402
from synthface.generation.render import mask_and_light  # noqa: E402
from synthface.landmarks import LandmarkDetector  # noqa: E402
from synthface.maskfit import MaskAppearance, MaskLibrary, fit_mask, sample_mask_params  # noqa: E402
from synthface.maskfit.warp import far_side  # noqa: E402

COLUMNS = (("surgical", "proper"), ("surgical", "nose_exposed"), ("surgical", "chin"), ("cloth", "proper"),
           ("kn95", "chin"), ("n95", "proper"), ("n95", "strap_loose"))
EYELIDS = (33, 7, 163, 144, 145, 153, 154, 155, 133, 263, 249, 390, 373, 374, 380, 381, 382, 362)
LIGHT = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])


def choose(pool: Path, children: int, turned: int, scan: int, size: int, seed: int):
    """(label, aligned face, capture) for young children and the most turned heads of a random scan."""
    rng = np.random.default_rng(seed)
    files = sorted(pool.glob("*.jpg"))
    ages = {f: int(f.name.split("_")[0]) for f in files if f.name.split("_")[0].isdigit()}
    kids = [f for f in files if ages.get(f, 99) <= 4]
    picked_kids = [kids[i] for i in rng.permutation(len(kids))[:children * 2]]
    others = [files[i] for i in rng.permutation(len(files))[:scan]]
    found_kids, found_turned = [], []
    with LandmarkDetector() as detector:
        for path in picked_kids:
            found = detector.detect(read_image_rgb(path))
            if found and len(found_kids) < children:
                found_kids.append((path, found[0]))
        for path in others:
            found = detector.detect(read_image_rgb(path))
            if found:
                found_turned.append((path, found[0]))
    found_turned.sort(key=lambda item: -abs(item[1].yaw))
    faces = []
    for path, landmarks in found_kids + found_turned[:turned]:
        aligned, capture = aligned_face(read_image_rgb(path), path, landmarks, size)
        faces.append((f"{ages.get(path, '?')}y yaw {landmarks.yaw:+.0f}", aligned, capture))
    return faces


def strap_pieces(aligned, definition, params):
    """(pieces floating free of the mask, most pieces on one side, near side has a strap) of one sample."""
    render = fit_mask(aligned.image, aligned.points, definition, params, LIGHT)
    strapless = definition.model_copy(update={"straps": definition.straps.model_copy(update={"kind": "none"})})
    body = fit_mask(aligned.image, aligned.points, strapless, params, LIGHT).alpha
    count, labels = cv2.connectedComponents(((render.alpha - body) > 0.25).astype(np.uint8), connectivity=8)
    grown = cv2.dilate((body > 0.2).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    cheeks = {1: aligned.points[facemesh.CHEEK_LEFT, 0], -1: aligned.points[facemesh.CHEEK_RIGHT, 0]}
    far, _ = far_side(aligned.points)
    floating, per_side, near = 0, {1: 0, -1: 0}, False
    height, width = body.shape
    for label in range(1, count):
        piece = labels == label
        if piece.sum() < 3:
            continue
        ys, xs = np.nonzero(piece)
        border = ys.min() == 0 or xs.min() == 0 or ys.max() == height - 1 or xs.max() == width - 1
        if not (piece & grown).any() and not border:
            floating += 1
        side = min((1, -1), key=lambda s: abs(xs.mean() - cheeks[s]))
        per_side[side] += 0 if border else 1
        near |= side == -far
    return floating, max(per_side.values()), near


def eyelid_gap(aligned, definition, params) -> float:
    render = fit_mask(aligned.image, aligned.points, definition, params, LIGHT)
    gaps = [np.nonzero(render.occlusion[:, int(round(x))])[0].min() - y
            for x, y in aligned.points[list(EYELIDS), :2] if render.occlusion[:, int(round(x))].any()]
    return min(gaps) if gaps else np.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, required=True, help="UTKFace-style folder of face photos")
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--turned", type=int, default=4)
    parser.add_argument("--scan", type=int, default=150, help="photos scanned for turned heads")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("straps.jpg"))
    args = parser.parse_args()

    library = MaskLibrary.load()
    faces = choose(args.pool, args.children, args.turned, args.scan, args.size, args.seed)
    rows, samples, floating, crowded, missing, close = [], 0, 0, 0, 0, []
    for f, (label, aligned, capture) in enumerate(faces):
        tiles = []
        for c, (name, wear) in enumerate(COLUMNS):
            definition = library.get(name)
            for seed in range(3):
                params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(100 * f + 10 * c + seed))
                pieces = strap_pieces(aligned, definition, params)
                samples += 1
                floating += pieces[0] > 0
                crowded += pieces[1] > 2
                missing += not pieces[2]
                if label.split("y")[0].isdigit() and int(label.split("y")[0]) <= 4 and wear == "proper":
                    close.append(eyelid_gap(aligned, definition, params) < 2)
            params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(100 * f + 10 * c))
            light = sample_lighting(LightingConfig(preset="daylight"), np.random.default_rng(f))
            image, _ = mask_and_light(aligned, definition, params, light, capture)
            tile = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            cv2.putText(tile, f"{label}  {name}/{wear}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1,
                        cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), sheet, [cv2.IMWRITE_JPEG_QUALITY, 82])
    print(f"wrote {args.out} ({len(faces)} faces x {len(COLUMNS)} columns)")
    print(f"samples: {samples}; strap piece floating free of the mask: {floating / samples:.1%}; "
          f"more than two pieces on one side: {crowded / samples:.1%}; no strap on the near side: {missing / samples:.1%}")
    if close:
        print(f"children, proper wear: top edge within 2 px of a lower eyelid in {np.mean(close):.1%} of {len(close)}")


if __name__ == "__main__":
    main()
