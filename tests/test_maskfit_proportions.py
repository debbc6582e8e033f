"""Masks sized by the face's own landmarks: the top edge stays below a child's lower eyelids, and the
bottom follows the jaw with no stem hanging under the chin. Checked on pixels of the demo faces, made
child-like by moving their landmarks to a toddler's proportions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from synthface import facemesh
from synthface.maskfit import MaskAppearance, MaskLibrary, fit_mask, sample_mask_params
from synthface.maskfit.demo import demo_faces
from synthface.maskfit.proportions import LOWER_EYELIDS
from synthface.maskfit.warp import face_scale

LIBRARY = MaskLibrary.load()
FACE_MASKS = [n for n in LIBRARY.names() if LIBRARY.get(n).is_mask and LIBRARY.get(n).straps.kind != "none"]
COVERINGS = [n for n in LIBRARY.names() if LIBRARY.get(n).is_mask]
FRONT = np.array([0.0, 0.0, 1.0])


def child_like(points: np.ndarray, lower_face: float = 0.75) -> np.ndarray:
    """An adult's landmarks moved to a toddler's proportions: a short lower face under the eyes, and
    large eyes sitting lower (closer to the nose) in a face of the same width."""
    points = points.copy()
    eye_line = points[list(LOWER_EYELIDS), 1].max()
    below = points[:, 1] > eye_line
    points[below, 1] = eye_line + (points[below, 1] - eye_line) * lower_face
    scale = face_scale(points)
    for eye in (facemesh.LEFT_EYE + facemesh.LEFT_IRIS, facemesh.RIGHT_EYE + facemesh.RIGHT_IRIS):
        index = list(eye)
        centre = points[index, :2].mean(0)
        points[index, :2] = centre + (points[index, :2] - centre) * 1.3 + [0.0, 0.067 * scale]
    return points


@pytest.fixture(scope="module")
def frontal():
    return [face for face in demo_faces(224) if face.name.endswith("frontal")]


def _largest(definition, wear="proper"):
    """Worst case for the eyes: the largest size and the highest offset the default appearance allows."""
    appearance = MaskAppearance()
    params = sample_mask_params(definition, appearance, wear, np.random.default_rng(0))
    return replace(params, size=appearance.size[1], vertical_offset=appearance.vertical_offset[0])


def _gap_to_eyelids(occlusion: np.ndarray, points: np.ndarray) -> float:
    """Pixels from each lower-eyelid landmark down to the mask's top edge in its column (smallest)."""
    gaps = []
    for x, y in points[list(LOWER_EYELIDS), :2]:
        rows = np.nonzero(occlusion[:, int(round(x))])[0]
        if len(rows):
            gaps.append(rows.min() - y)
    return min(gaps)


@pytest.mark.parametrize("name", COVERINGS)
def test_top_edge_stays_below_a_childs_lower_eyelids(frontal, name):
    definition = LIBRARY.get(name)
    for face in frontal:
        child = child_like(face.points)
        render = fit_mask(face.image, child, definition, _largest(definition), FRONT)
        # At least 3 px (the clearance is 0.08 face units, about 5 px on these crops).
        assert _gap_to_eyelids(render.occlusion, child) >= 3, f"{name} on a child-like {face.name}"
        # The mask still covers the nose tip and the mouth.
        for index in (facemesh.NOSE_TIP, facemesh.UPPER_LIP_TOP, facemesh.LOWER_LIP_BOTTOM):
            x, y = np.round(child[index, :2]).astype(int)
            assert render.occlusion[y, x], f"{name} on a child-like {face.name}: landmark {index} uncovered"


def test_adult_fit_is_left_alone_where_the_eyes_are_clear(frontal):
    """The correction only acts where needed: an adult surgical mask at its middle size keeps its height."""
    from synthface.maskfit.proportions import clear_the_eyes
    from synthface.maskfit.render import wear_transform
    from synthface.maskfit.template import outline_polygon

    definition = LIBRARY.get("surgical")
    params = replace(_largest(definition), size=1.0, vertical_offset=0.0)
    transform = wear_transform(definition, params)
    eyelids = np.array([[-0.46, 0.13], [0.46, 0.13]])  # the canonical adult's lower lids
    assert np.allclose(clear_the_eyes(outline_polygon(definition), transform, eyelids), transform)
    high = np.array([[-0.46, 0.3], [0.46, 0.3]])
    squashed = clear_the_eyes(outline_polygon(definition), transform, high)
    assert not np.allclose(squashed, transform)


@pytest.mark.parametrize("wear", ["proper", "nose_exposed"])
@pytest.mark.parametrize("lower_face", [1.0, 0.8])
def test_no_stem_under_the_chin(frontal, wear, lower_face):
    """Below the chin the mask's silhouette follows the jaw: no narrow tab hangs under it (rows whose covered
    width is under 40% of the width at the chin's row, beyond the last anti-aliased row)."""
    for face in frontal:
        points = child_like(face.points, lower_face) if lower_face != 1.0 else face.points
        chin = int(round(points[facemesh.CHIN, 1]))
        for name in FACE_MASKS:
            definition = LIBRARY.get(name)
            if not definition.supports(wear):
                continue
            for seed in range(3):
                params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(seed))
                render = fit_mask(face.image, points, definition, params, FRONT)
                body = render.alpha > 0.5
                at_chin = body[chin].sum()
                widths = body[chin + 1:].sum(axis=1)
                narrow = int(((widths > 0) & (widths < 0.4 * at_chin)).sum())
                assert narrow <= 3, f"{name}/{wear} on {face.name}: {narrow} rows of stem under the chin"
