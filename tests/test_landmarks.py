"""Real MediaPipe on the real test photos: landmarks, pose, alignment, cache, model checks."""

from __future__ import annotations

import numpy as np
import pytest

from synthface import facemesh
from synthface.generation.align import align_face
from synthface.landmarks import CachedDetection, LandmarkCache, LandmarkDetector, LandmarkerError, resolve_model_path


@pytest.fixture(scope="module")
def detector():
    with LandmarkDetector() as instance:
        yield instance


def test_finds_one_face_with_478_points_on_each_photo(detector, astronaut, grace_hopper):
    for photo in (astronaut, grace_hopper):
        faces = detector.detect(photo)
        assert len(faces) == 1
        points = faces[0].points
        assert points.shape == (478, 3)
        x0, y0, x1, y1 = faces[0].bbox
        assert 0 <= x0 < x1 <= photo.shape[1] and 0 <= y0 < y1 <= photo.shape[0]
        # Anatomy: eyes above the nose tip, nose tip above the chin; subject's left eye on the image's right.
        left_eye, right_eye = facemesh.eye_centres(points)
        assert left_eye[0] > right_eye[0]
        assert max(left_eye[1], right_eye[1]) < points[facemesh.NOSE_TIP, 1] < points[facemesh.CHIN, 1]


def test_pose_signs_follow_the_image(detector, astronaut):
    import cv2

    frontal = detector.detect(astronaut)[0]
    assert abs(frontal.yaw) < 10 and abs(frontal.roll) < 10
    # Rotating the photo clockwise by 15 degrees adds about +15 degrees of roll.
    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 256), -15, 1.0), (512, 512))
    assert detector.detect(rotated)[0].roll - frontal.roll == pytest.approx(15, abs=4)
    # A mirror image mirrors the yaw.
    mirrored = detector.detect(np.ascontiguousarray(astronaut[:, ::-1]))[0]
    assert mirrored.yaw == pytest.approx(-frontal.yaw, abs=3)


def test_no_face_returns_empty(detector):
    assert detector.detect(np.full((256, 256, 3), 127, np.uint8)) == []


def test_alignment_levels_the_eyes_and_centres_the_face(detector, astronaut):
    import cv2

    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 256), 20, 1.0), (512, 512))
    aligned = align_face(rotated, detector.detect(rotated)[0], 160)
    assert aligned.image.shape == (160, 160, 3)
    left_eye, right_eye = facemesh.eye_centres(aligned.points)
    assert abs(left_eye[1] - right_eye[1]) < 2
    # The landmarks moved with the pixels: detecting again on the crop finds them there.
    again = detector.detect(aligned.image)[0]
    assert np.abs(again.points[:468, :2] - aligned.points[:468, :2]).mean() < 3


def test_cache_round_trip_and_invalidation(tmp_path, detector, astronaut):
    from PIL import Image

    image_file = tmp_path / "face.png"
    Image.fromarray(astronaut).save(image_file)
    cache = LandmarkCache(tmp_path / "cache")
    assert cache.get(image_file) is None
    face = detector.detect(astronaut)[0]
    cache.put(image_file, CachedDetection(face, "", astronaut.shape[:2]))
    hit = cache.get(image_file)
    np.testing.assert_array_equal(hit.face.points, face.points)
    assert hit.face.yaw == pytest.approx(face.yaw, abs=1e-4)
    cache.put(tmp_path / "face.png", CachedDetection(None, "no face found", (10, 10)))
    assert cache.get(image_file).reason == "no face found"
    # A changed file is a new key.
    Image.fromarray(astronaut[::2, ::2]).save(image_file)
    import os

    os.utime(image_file, ns=(1, 1))
    assert cache.get(image_file) is None


def test_cache_survives_a_reinstall_of_the_same_model_and_not_another_model(tmp_path):
    """The model is identified by its content: a fresh checkout or reinstall (new path, new mtime)
    keeps the cache; a different model does not share it."""
    import shutil

    from synthface.landmarks import BUNDLED_MODEL

    image_file = tmp_path / "face.png"
    image_file.write_bytes(b"not read by the cache key")
    LandmarkCache(tmp_path / "cache").put(image_file, CachedDetection(None, "no face found", (10, 10)))
    reinstalled = tmp_path / "elsewhere" / BUNDLED_MODEL.name
    reinstalled.parent.mkdir()
    shutil.copyfile(BUNDLED_MODEL, reinstalled)  # new path, new mtime, same bytes
    assert LandmarkCache(tmp_path / "cache", reinstalled).get(image_file).reason == "no face found"
    other = tmp_path / "other.task"
    other.write_bytes(BUNDLED_MODEL.read_bytes() + b"\0")
    assert LandmarkCache(tmp_path / "cache", other).get(image_file) is None


def test_model_resolution_errors(tmp_path, monkeypatch):
    assert resolve_model_path().name == "face_landmarker.task"
    with pytest.raises(LandmarkerError, match="does not exist"):
        resolve_model_path(tmp_path / "missing.task")
    monkeypatch.setenv("SYNTHFACE_LANDMARKER", str(tmp_path / "env.task"))
    with pytest.raises(LandmarkerError, match="SYNTHFACE_LANDMARKER"):
        resolve_model_path()
