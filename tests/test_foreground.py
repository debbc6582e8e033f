"""Objects in front of the lower face stay in front of the mask, or the face is skipped as occluded;
faces with nothing in front are left alone. Pixel checks on the real demo faces with drawn objects."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthface import facemesh
from synthface.generation.align import AlignedFace
from synthface.generation.foreground import detect_foreground
from synthface.generation.lighting import LightingParams
from synthface.generation.render import behind, mask_and_light
from synthface.maskfit import MaskAppearance, MaskFitError, fit_mask, sample_mask_params
from synthface.maskfit.demo import demo_faces

FRONT = np.array([0.0, 0.0, 1.0])


@pytest.fixture(scope="module")
def faces():
    return demo_faces(192)


def unit(points):
    return float(np.linalg.norm(points[facemesh.CHEEK_LEFT, :2] - points[facemesh.CHEEK_RIGHT, :2]) / 2)


def microphone(face, colour):
    """A microphone held up from below to the lower lip: a handle and a round head."""
    image, mask = face.image.copy(), np.zeros(face.image.shape[:2], np.uint8)
    u = unit(face.points)
    head = face.points[facemesh.LOWER_LIP_BOTTOM, :2] + np.array([-0.2 * u, 0.0])
    foot = head + np.array([-0.4 * u, 2.5 * u])
    cv2.line(mask, tuple(np.round(head).astype(int)), tuple(np.round(foot).astype(int)), 1, max(int(0.2 * u), 2))
    cv2.circle(mask, tuple(np.round(head).astype(int)), int(0.18 * u), 1, -1)
    image[mask > 0] = colour
    return image, mask > 0


def surgical(library, seed=0):
    definition = library.get("surgical")
    return definition, sample_mask_params(definition, MaskAppearance(), "proper", np.random.default_rng(seed))


def test_nothing_in_front_of_the_demo_faces(faces):
    for face in faces:
        found = detect_foreground(face.image, face.points)
        assert found.fraction == 0 and not found.occluded and not found.mask.any(), face.name


@pytest.mark.parametrize("colour", [(30, 60, 200), (20, 20, 24), (40, 170, 60)], ids=["blue", "black", "green"])
def test_an_object_in_front_of_the_mouth_stays_on_top_of_the_mask(faces, library, colour):
    for face in faces[:3]:
        image, drawn = microphone(face, colour)
        found = detect_foreground(image, face.points)
        assert 0 < found.fraction and not found.occluded, f"{face.name}: {found.fraction:.2f} / {found.mouth_hidden:.2f}"
        definition, params = surgical(library)
        over = fit_mask(image, face.points, definition, params, FRONT)
        rendered = behind(over, found, AlignedFace(image, face.points, np.eye(2, 3), 0.2))
        # Where the mask would have covered the object, the object's own pixels are back, exactly.
        covered = drawn & (over.alpha > 0.99)
        interior = cv2.erode(covered.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert interior.sum() > 20, face.name
        assert np.array_equal(rendered.image[interior], image[interior]), face.name
        assert not rendered.occlusion[interior].any()  # the occlusion map shows the mask only where it is seen
        # And the mask is still drawn everywhere else.
        elsewhere = (over.alpha > 0.99) & (found.mask == 0)
        assert np.abs(rendered.image[elsewhere].astype(int) - image[elsewhere]).mean() > 10


def test_an_object_hiding_the_mouth_skips_the_face(faces, library):
    face = faces[0]
    image, u = face.image.copy(), unit(face.points)
    mouth = face.points[[61, 291], :2].mean(0)
    cv2.ellipse(image, tuple(np.round(mouth).astype(int)), (int(0.55 * u), int(0.35 * u)), 0, 0, 360, (40, 90, 210), -1)
    found = detect_foreground(image, face.points)
    assert found.occluded and found.mouth_hidden > 0.5
    definition, params = surgical(library)
    light = LightingParams("test", 1.0, 0.0, 20.0, 0.6, 0.5, 0.0, 6500.0, 0.0, False, 0.0, 95, 0)
    with pytest.raises(MaskFitError, match="lower face occluded"):
        mask_and_light(AlignedFace(image, face.points, np.eye(2, 3), 0.2), definition, params, light, None, found)


def test_a_beard_like_dark_texture_is_not_an_object(faces):
    """Stubble and beards are dark and of the skin's hue: they stay under the mask."""
    face = faces[0]
    image = face.image.astype(np.float32)
    chin = facemesh.polygon_mask(face.points, facemesh.FACE_OVAL, image.shape[:2])
    chin &= np.arange(image.shape[0])[:, None] > face.points[facemesh.LOWER_LIP_BOTTOM, 1]
    grain = np.random.default_rng(0).random(image.shape[:2]) < 0.6
    image[chin & grain] *= 0.35  # dark hairs over the chin, the skin showing between them
    found = detect_foreground(np.clip(image, 0, 255).astype(np.uint8), face.points)
    assert found.fraction == 0
