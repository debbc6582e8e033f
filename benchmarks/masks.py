"""Per-type mask fitting time (and occluded fraction) at a given crop size.

    python benchmarks/masks.py                      # demo faces (3 poses x 2 photos), 224 px
    python benchmarks/masks.py --size 512 --repeats 5
    python benchmarks/masks.py --faces ../shared/data/utkface-dev --limit 200   # a real pool

Prints, per mask type: median and 90th-percentile wall time of one `fit_mask` call, the median
CPU time of the process, and the mean occluded fraction. The target is under 5 ms per fit at
224 px on the 2-core development machine. `per_type_render_ms` is importable for
benchmarks/generate.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthface.maskfit import MaskAppearance, MaskFitError, MaskLibrary, fit_mask, sample_mask_params  # noqa: E402

LIGHT = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])


def load_pool_faces(folder: Path, size: int, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Aligned crops and landmarks of up to `limit` images of a folder (detected with MediaPipe)."""
    import cv2

    from synthface.generation.align import align_face
    from synthface.landmarks import LandmarkDetector

    faces = []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    with LandmarkDetector() as detector:
        for file in files:
            image = cv2.imread(str(file))
            if image is None:
                continue
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            found = detector.detect(rgb)
            if found:
                aligned = align_face(rgb, found[0], size)
                faces.append((aligned.image, aligned.points))
    return faces


def per_type_render_ms(faces: list[tuple[np.ndarray, np.ndarray]], repeats: int = 3, library: MaskLibrary | None = None,
                       wear_style: str = "proper") -> dict[str, dict[str, float]]:
    """{type: {median_ms, p90_ms, cpu_median_ms, occluded_fraction, failures}} over `repeats` passes on `faces`.

    `failures` counts faces whose fit raised MaskFitError (they are left out of the timings).
    """
    library = library or MaskLibrary.load()
    results = {}
    for name in library.names():
        definition = library.get(name)
        wear = wear_style if definition.supports(wear_style) else "proper"
        rng = np.random.default_rng(0)
        params = [sample_mask_params(definition, MaskAppearance(), wear, rng) for _ in faces]
        usable = []
        for face, p in zip(faces, params):  # warm-up (builds the cached templates) and failure count
            try:
                fit_mask(face[0], face[1], definition, p, LIGHT)
                usable.append((face, p))
            except MaskFitError:
                pass
        wall, cpu, fractions = [], [], []
        for _ in range(repeats):
            for (image, points), p in usable:
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                render = fit_mask(image, points, definition, p, LIGHT)
                cpu.append(time.process_time() - start_cpu)
                wall.append(time.perf_counter() - start_wall)
                fractions.append(render.occluded_fraction)
        wall_ms, cpu_ms = np.array(wall) * 1000, np.array(cpu) * 1000
        results[name] = {
            "median_ms": float(np.median(wall_ms)),
            "p90_ms": float(np.percentile(wall_ms, 90)),
            "cpu_median_ms": float(np.median(cpu_ms)),
            "occluded_fraction": float(np.mean(fractions)) if fractions else float("nan"),
            "failures": len(faces) - len(usable),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224, help="Aligned crop side in pixels.")
    parser.add_argument("--repeats", type=int, default=10, help="Passes over the faces per type.")
    parser.add_argument("--faces", type=Path, default=None, help="Folder of face photos (default: the demo faces).")
    parser.add_argument("--limit", type=int, default=100, help="At most this many photos from --faces.")
    parser.add_argument("--wear", default="proper", help="Wear style (types that lack it use proper).")
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(1)  # the generator runs one fit per worker process
    if args.faces:
        faces = load_pool_faces(args.faces, args.size, args.limit)
        source = f"{len(faces)} faces from {args.faces}"
    else:
        from synthface.maskfit.demo import demo_faces

        faces = [(f.image, f.points) for f in demo_faces(args.size)]
        source = f"{len(faces)} demo faces (2 photos x 3 poses)"
    print(f"mask fit at {args.size} px on {source}, {args.repeats} passes, wear={args.wear}, 1 OpenCV thread")
    print(f"{'type':18s} {'median ms':>10s} {'p90 ms':>8s} {'cpu ms':>8s} {'occluded':>9s} {'failed fits':>12s}")
    results = per_type_render_ms(faces, args.repeats, wear_style=args.wear)
    for name, row in results.items():
        print(f"{name:18s} {row['median_ms']:10.2f} {row['p90_ms']:8.2f} {row['cpu_median_ms']:8.2f} "
              f"{row['occluded_fraction']:9.3f} {row['failures']:5d}/{len(faces)}")
    overall = np.median([row["median_ms"] for row in results.values()])
    print(f"{'all types':18s} {overall:10.2f}   (target: < 5 ms at 224 px)")


if __name__ == "__main__":
    main()
