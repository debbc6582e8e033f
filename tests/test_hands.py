"""The procedural hand confuser (`generator: hand`): varied per seed, the face's own skin tone, inside the
lower face, deterministic. Pixel checks on the real demo faces."""

from __future__ import annotations

import numpy as np
import pytest

from synthface import facemesh
from synthface.maskfit import MaskAppearance, MaskLibrary, fit_mask, sample_mask_params
from synthface.maskfit.definitions import MaskDefinitionError, load_definition
from synthface.maskfit.demo import demo_faces
from synthface.maskfit.hands import POSES, VIEWS, sample_hand

CHEEKS = (50, 280, 101, 330, 205, 425)
FRONT_LIGHT = np.array([0.0, 0.0, 1.0])
SEEDS = range(10)


@pytest.fixture(scope="module")
def faces():
    return demo_faces(160)


@pytest.fixture(scope="module")
def hand():
    return MaskLibrary.load().get("hand")


def render(face_image, points, hand, seed):
    params = sample_mask_params(hand, MaskAppearance(), "proper", np.random.default_rng(seed))
    return fit_mask(face_image, points, hand, params, FRONT_LIGHT)


def cheek_colour(image, points):
    patches = [image[int(points[i, 1]) - 2:int(points[i, 1]) + 3, int(points[i, 0]) - 2:int(points[i, 0]) + 3].reshape(-1, 3)
               for i in CHEEKS]
    return np.median(np.concatenate(patches), axis=0).astype(np.float64)


def hand_view(hand, seed):
    params = sample_mask_params(hand, MaskAppearance(), "proper", np.random.default_rng(seed))
    return sample_hand(np.random.default_rng(params.texture_seed)).view


def hand_colour(rendered):
    return np.median(rendered.image[rendered.occlusion], axis=0).astype(np.float64)


def test_bundled_hand_uses_the_generator(hand):
    assert hand.generator == "hand" and not hand.is_mask and hand.occluder == "hand"


def test_an_unknown_generator_is_rejected(tmp_path):
    file = tmp_path / "paw.yaml"
    file.write_text("is_mask: false\nwear_styles: [proper]\ngenerator: paw\noutline: [[0, 0.5], [0.5, 1.0], [0, 1.8]]\n"
                    "palettes: [skin]\n")
    with pytest.raises(MaskDefinitionError, match="generator"):
        load_definition(file)


def test_hand_shapes_vary_across_seeds():
    shapes = [sample_hand(np.random.default_rng(seed)) for seed in range(200)]
    assert {s.pose for s in shapes} == set(POSES)
    assert {s.view for s in shapes} == set(VIEWS)
    assert {s.mirror for s in shapes} == {True, False}
    assert np.ptp([s.size for s in shapes]) > 0.2 and np.ptp([s.angle for s in shapes]) > 150
    assert min(s.spread for s in shapes) == 0.0 and max(s.spread for s in shapes) > 8  # closed and spread fingers
    assert {s.thumb for s in shapes} == {True, False}


def test_rendered_hands_differ_in_shape_and_colour(faces, hand):
    face = faces[0]
    renders = [render(face.image, face.points, hand, seed) for seed in SEEDS]
    masks = [r.occlusion for r in renders]
    overlaps = [(a & b).sum() / max((a | b).sum(), 1) for i, a in enumerate(masks) for b in masks[i + 1:]]
    assert np.median(overlaps) < 0.75, f"hands overlap too much across seeds (median IoU {np.median(overlaps):.2f})"
    colours = np.array([hand_colour(r) for r in renders])
    assert np.ptp(colours.mean(1)) > 8, "every hand has the same tone"


def test_hand_matches_the_skin_tone_of_the_face(faces, hand):
    for face in faces:
        hands = {}
        for dark in (1.0, 0.45):  # the photo itself, and the same face with much darker skin
            image = np.clip(face.image.astype(np.float32) * dark, 0, 255).astype(np.uint8)
            skin = cheek_colour(image, face.points)
            for seed in SEEDS:
                colour = hands[dark, seed] = hand_colour(render(image, face.points, hand, seed))
                where = f"{face.name} x{dark}, seed {seed}: hand {colour.round()} vs skin {skin.round()}"
                if hand_view(hand, seed) == "back":
                    assert np.abs(colour - skin).mean() < 0.15 * skin.mean() + 12, where
                else:  # a palm is lighter and pinker than the back of the hand (more so on dark skin), of the same skin
                    assert -(0.15 * skin.mean() + 12) < (colour - skin).mean() < 45, where
        for seed in SEEDS:  # the hand follows the face's tone
            assert hands[0.45, seed].mean() < 0.8 * hands[1.0, seed].mean(), f"{face.name}, seed {seed}"


def test_hand_stays_on_the_lower_face_and_covers_the_mouth(faces, hand):
    for face in faces:
        height, width = face.image.shape[:2]
        eyes = facemesh.polygon_mask(face.points, facemesh.LEFT_EYE, (height, width)) | \
            facemesh.polygon_mask(face.points, facemesh.RIGHT_EYE, (height, width))
        lips = facemesh.polygon_mask(face.points, facemesh.LIPS_OUTER, (height, width))
        below_eyes = int(face.points[[145, 374], 1].max()) + 1  # lower eyelids
        covered_mouth = []
        for seed in SEEDS:
            rendered = render(face.image, face.points, hand, seed)
            assert not (rendered.occlusion & eyes).any(), f"{face.name}, seed {seed}: the hand covers an eye"
            assert not rendered.occlusion[:below_eyes].any(), f"{face.name}, seed {seed}: the hand reaches the eyes' height"
            changed = np.any(rendered.image != face.image, axis=2)
            assert not changed[:below_eyes - 2].any(), f"{face.name}, seed {seed}: pixels changed above the hand"
            covered_mouth.append((rendered.occlusion & lips).sum() / lips.sum())
            assert 0.05 < rendered.occluded_fraction < 0.6
        assert np.median(covered_mouth) > 0.5, f"{face.name}: hands leave the mouth visible ({np.round(covered_mouth, 2)})"


def test_hand_is_deterministic_for_a_seed(faces, hand):
    face = faces[1]
    first, again, other = (render(face.image, face.points, hand, seed) for seed in (5, 5, 6))
    assert np.array_equal(first.image, again.image) and np.array_equal(first.alpha, again.alpha)
    assert not np.array_equal(first.image, other.image)


def test_hand_edge_is_soft(faces, hand):
    face = faces[0]
    rendered = render(face.image, face.points, hand, 2)
    partial = (rendered.alpha > 0.05) & (rendered.alpha < 0.95)
    edge = rendered.occlusion & ~np.pad(rendered.occlusion[1:-1, 1:-1] & rendered.occlusion[:-2, 1:-1]
                                        & rendered.occlusion[2:, 1:-1] & rendered.occlusion[1:-1, :-2]
                                        & rendered.occlusion[1:-1, 2:], 1)
    assert partial.sum() > 0.5 * edge.sum(), "the hand's outline is a hard cut-out"
