"""The capture estimates (and so every image's bytes) do not depend on where an array lies in
memory: a worker's allocation history differs by run, executor and worker count, and an
alignment-dependent SIMD path once changed ~1% of the images of a 2,000-sample run."""

from __future__ import annotations

import numpy as np

from synthface.generation.align import align_face
from synthface.generation.capture import estimate_capture, gradient_magnitude
from synthface.landmarks import LandmarkDetector


def at_offset(array: np.ndarray, offset: int) -> np.ndarray:
    """A copy of `array` whose data starts `offset` bytes past a 64-byte boundary."""
    buffer = np.empty(array.nbytes + 128, np.uint8)
    start = (-buffer.ctypes.data) % 64 + offset
    view = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    view[...] = array
    return view


def test_gradient_and_capture_estimates_are_the_same_bits_at_any_alignment(astronaut):
    with LandmarkDetector() as detector:
        face = detector.detect(astronaut)[0]
    aligned = align_face(astronaut, face, 224, 0.2)
    gray = aligned.image.mean(axis=2).astype(np.float32)
    reference = gradient_magnitude(at_offset(gray, 0))
    estimates = set()
    for offset in (0, 4, 8, 12, 16, 20, 24, 28, 32, 48):
        assert np.array_equal(gradient_magnitude(at_offset(gray, offset)), reference), offset
        estimates.add(estimate_capture(at_offset(aligned.image, offset), aligned.points, 90))
    assert len(estimates) == 1, estimates
