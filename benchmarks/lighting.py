"""Milliseconds per image for synthface.generation.lighting.apply_lighting on a real aligned face.

    python benchmarks/lighting.py [--size 224] [--repeats 7] [--number 100] [--cv2-threads 1]

Uses the bundled astronaut photo with real MediaPipe landmarks, aligned as the generator
aligns it. Prints, per configuration, the median and best of `repeats` timing runs of
`number` calls each, as wall time and as this process's CPU time (on a shared machine the
CPU time and the best run are the least disturbed by other processes).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224, help="aligned face size in pixels")
    parser.add_argument("--repeats", type=int, default=7, help="timing runs per configuration")
    parser.add_argument("--number", type=int, default=100, help="calls per timing run")
    parser.add_argument("--cv2-threads", type=int, default=1, help="OpenCV threads (1 = one core, as one generator worker uses)")
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(args.cv2_threads)

    from skimage.data import astronaut

    from synthface.generation.align import align_face
    from synthface.generation.lighting import LightingConfig, LightingParams, apply_lighting, sample_lighting
    from synthface.landmarks import LandmarkDetector

    with LandmarkDetector() as detector:
        face = detector.detect(astronaut())[0]
    aligned = align_face(astronaut(), face, args.size)
    image, points = aligned.image, aligned.points

    base = dict(preset="bench", intensity=0.9, azimuth=-40.0, elevation=20.0, directional=0.7, ambient=0.4, shadow=0.3,
                color_temperature=4200.0, noise_std=0.0, noise_per_channel=False, blur_sigma=0.0, jpeg_quality=90, noise_seed=1)
    fixed = {
        "shading + colour (no noise, no blur)": [LightingParams(**base)],
        "shading + colour + blur": [LightingParams(**{**base, "blur_sigma": 0.8})],
        "shading + colour + grain noise": [LightingParams(**{**base, "noise_std": 4.0})],
        "shading + colour + per-channel noise": [LightingParams(**{**base, "noise_std": 4.0, "noise_per_channel": True})],
        "shading + colour + blur + grain noise": [LightingParams(**{**base, "blur_sigma": 0.8, "noise_std": 4.0})],
    }
    rng = np.random.default_rng(0)
    bundled_mix = LightingConfig(preset={"studio": 0.3, "daylight": 0.3, "indoor_warm": 0.2, "dim": 0.1, "harsh_side": 0.1})
    fixed["scenario mix (presets drawn per sample)"] = [sample_lighting(bundled_mix, rng) for _ in range(args.number)]

    print(f"apply_lighting at {args.size}x{args.size} px, {args.repeats} runs x {args.number} calls, OpenCV threads {args.cv2_threads}")
    for label, params in fixed.items():
        for p in params[:3]:
            apply_lighting(image, points, p)  # warm-up: imports, transform caches
        wall, cpu = [], []
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            for index in range(args.number):
                apply_lighting(image, points, params[index % len(params)])
            wall.append((time.perf_counter() - start) / args.number * 1000)
            cpu.append((time.process_time() - start_cpu) / args.number * 1000)
        print(
            f"  {label:42s} wall median {statistics.median(wall):5.2f} best {min(wall):5.2f} ms | "
            f"cpu median {statistics.median(cpu):5.2f} best {min(cpu):5.2f} ms"
        )


if __name__ == "__main__":
    main()
