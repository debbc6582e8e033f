"""Capture estimates (blur, noise, JPEG quality, exposure, white balance) over a real face pool:
their spread, their cost, and the eye-white medians that calibrate exposure and white balance.

    python benchmarks/capture.py --pool ../shared/data/utkface-dev --faces 400
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from synthface.generation.align import align_face
from synthface.generation.capture import LUMA, estimate_capture, sclera_colour, source_jpeg_quality
from synthface.images import read_image_rgb
from synthface.landmarks import LandmarkDetector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--faces", type=int, default=400)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    paths = sorted(args.pool.glob("*.jpg"))
    paths = [paths[i] for i in np.linspace(0, len(paths) - 1, min(args.faces, len(paths))).astype(int)]
    scleras, estimates, seconds = [], [], []
    with LandmarkDetector() as detector:
        for path in paths:
            image = read_image_rgb(path)
            found = detector.detect(image)
            if not found:
                continue
            aligned = align_face(image, found[0], args.size, 0.2)
            start = time.perf_counter()
            estimates.append(estimate_capture(aligned.image, aligned.points, source_jpeg_quality(path)))
            seconds.append(time.perf_counter() - start)
            colour = sclera_colour(aligned.image, aligned.points)
            if colour is not None:
                scleras.append(colour)
    scleras = np.array(scleras)
    luminance = scleras @ LUMA
    tint = np.median(scleras / luminance[:, None], axis=0)
    print(f"{len(estimates)} faces; eye whites found on {len(scleras)}")
    print(f"eye-white luminance (linear): median {np.median(luminance):.3f}, p10 {np.percentile(luminance, 10):.3f}, "
          f"p90 {np.percentile(luminance, 90):.3f}; tint at unit luminance {np.round(tint / (tint @ LUMA), 3).tolist()}")
    for name in ("blur_sigma", "noise_std", "jpeg_quality", "exposure"):
        values = np.array([getattr(e, name) for e in estimates], np.float64)
        print(f"{name:>13}: median {np.median(values):.2f}, p10 {np.percentile(values, 10):.2f}, p90 {np.percentile(values, 90):.2f}")
    print(f"estimate_capture: {1000 * np.median(seconds):.2f} ms per face (median) at {args.size} px")


if __name__ == "__main__":
    main()
