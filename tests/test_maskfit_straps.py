"""Straps on pixels: each strand is one piece from the mask to the ear (or round the head), smooth, hidden
behind a turned head's far cheek; checked over wear styles and head turns on the demo faces (turned by
re-detected warps, and by rotating the frontal landmarks in 3-D)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthface import facemesh
from synthface.maskfit import MaskAppearance, MaskLibrary, fit_mask, sample_mask_params
from synthface.maskfit.demo import demo_faces
from synthface.maskfit.warp import face_scale, far_side

LIBRARY = MaskLibrary.load()
LIGHT = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])
YAWS = (-40.0, -25.0, -10.0, 0.0, 10.0, 25.0, 40.0)


def rotate_head(points: np.ndarray, degrees: float) -> np.ndarray:
    """Landmarks of the same face turned `degrees` about a vertical axis behind it (positive: to image right)."""
    theta = np.radians(degrees)
    out = points.astype(np.float64).copy()
    centre = out[:468].mean(0)
    depth = 0.35 * np.ptp(out[:468, 0])  # the axis runs through the head, behind the face
    dx, dz = out[:, 0] - centre[0], out[:, 2] - centre[2] + depth
    out[:, 0] = centre[0] + dx * np.cos(theta) + dz * np.sin(theta) - depth * np.sin(theta)
    out[:, 2] = centre[2] - dx * np.sin(theta) + dz * np.cos(theta) - depth
    return out


@pytest.fixture(scope="module")
def heads():
    """(name, image, points): the demo faces (frontal and re-detected turns) and the frontal ones turned in 3-D."""
    found = demo_faces(224)
    cases = [(face.name, face.image, face.points) for face in found]
    for face in found:
        if face.name.endswith("frontal"):
            cases += [(f"{face.name} rotated {yaw:+.0f}", face.image, rotate_head(face.points, yaw)) for yaw in YAWS if yaw]
    return cases


def _strapless(definition):
    return definition.model_copy(update={"straps": definition.straps.model_copy(update={"kind": "none"})})


def _strap_pieces(image, points, definition, wear, seed):
    """(render, body alpha, [(side, component mask)]) of the strap-only pixels, split by 8-connectivity."""
    params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(seed))
    render = fit_mask(image, points, definition, params, LIGHT)
    body = fit_mask(image, points, _strapless(definition), params, LIGHT)
    strap = (render.alpha - body.alpha) > 0.25
    count, labels = cv2.connectedComponents(strap.astype(np.uint8), connectivity=8)
    cheeks = {1: points[facemesh.CHEEK_LEFT, 0], -1: points[facemesh.CHEEK_RIGHT, 0]}
    pieces = []
    for label in range(1, count):
        piece = labels == label
        if piece.sum() < 3:  # a lone anti-aliased pixel where a strand meets the mask's edge
            continue
        xs = np.nonzero(piece)[1]
        # The subject's side a piece is on: the side of the nearer contour landmark at the tragus.
        pieces.append((min((1, -1), key=lambda side: abs(xs.mean() - cheeks[side])), piece))
    return render, body.alpha, params, pieces


def _touches(piece: np.ndarray, body_alpha: np.ndarray) -> bool:
    grown = cv2.dilate((body_alpha > 0.2).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return bool((piece & grown).any())


def _at_border(piece: np.ndarray) -> bool:
    return bool(piece[0].any() or piece[-1].any() or piece[:, 0].any() or piece[:, -1].any())


EAR_LOOP_TYPES = [n for n in LIBRARY.names() if LIBRARY.get(n).straps.kind == "ear_loops"]
HEAD_STRAP_TYPES = [n for n in LIBRARY.names() if LIBRARY.get(n).straps.kind == "head_straps"]


@pytest.mark.parametrize("name", EAR_LOOP_TYPES)
def test_each_ear_loop_strand_is_one_piece_from_the_mask_to_the_ear(heads, name):
    definition = LIBRARY.get(name)
    for wear in definition.wear_styles:
        for index, (label, image, points) in enumerate(heads):
            render, body, params, pieces = _strap_pieces(image, points, definition, wear, index)
            scale = face_scale(points)
            far, turn = far_side(points)
            where = f"{name}/{wear} on {label}"
            for subject_side in (-1, 1):
                mine = [piece for s, piece in pieces if s == subject_side]
                # Two strands (upper and lower) at most per side, none floating: each leaves the mask. (A strand
                # that runs out of the frame and back in shows as a second piece at the image's edge.)
                attached = [piece for piece in mine if _touches(piece, body)]
                inside = [piece for piece in attached if not _at_border(piece)]
                assert len(inside) <= 2, f"{where}: {len(inside)} pieces on one side"
                for piece in mine:
                    assert _touches(piece, body) or _at_border(piece), f"{where}: a strap piece floats free of the mask"
                mine = attached
                ear = points[facemesh.CHEEK_LEFT if subject_side == 1 else facemesh.CHEEK_RIGHT, :2]
                outside = cv2.distanceTransform((body < 0.5).astype(np.uint8), cv2.DIST_L2, 3)
                for piece in mine:
                    ys, xs = np.nonzero(piece)
                    # Its free end (the pixel farthest from the mask) is at the ear, near the contour landmark at
                    # the tragus; or the strand is a stub that goes behind the head right by the mask's edge.
                    tip = np.argmax(outside[ys, xs])
                    if outside[ys[tip], xs[tip]] < 0.12 * scale:
                        continue
                    distance = np.hypot(xs[tip] - ear[0], ys[tip] - ear[1])
                    assert distance < 0.8 * scale, f"{where}: a strand ends {distance / scale:.2f} face units from the ear"
                if subject_side == far and turn > 0.25:  # the far loop goes behind the cheek almost at once
                    assert sum(piece.sum() for piece in mine) < 0.1 * scale ** 2 / 4, f"{where}: far loop visible"
            # Never across the eyes.
            eyes = facemesh.polygon_mask(points, facemesh.LEFT_EYE, image.shape) | facemesh.polygon_mask(
                points, facemesh.RIGHT_EYE, image.shape)
            assert not any((piece & eyes).any() for _, piece in pieces), f"{where}: a strap crosses an eye"


def test_near_loops_are_visible_and_reach_the_ear_on_frontal_and_turned_heads(heads):
    """Not just 'nothing wrong': the near side's loops are drawn, and reach beyond the mask toward the ear."""
    definition = LIBRARY.get("surgical")
    for index, (label, image, points) in enumerate(heads):
        for wear in ("proper", "chin"):
            _, body, _, pieces = _strap_pieces(image, points, definition, wear, index)
            far, turn = far_side(points)
            near = [piece for side, piece in pieces if side == -far]
            assert near, f"surgical/{wear} on {label}: no loop on the near side"
            if wear == "chin":  # loops of a mask pulled onto the chin still climb to the ears
                mouth = points[facemesh.UPPER_LIP_TOP, 1]
                assert min(np.nonzero(piece)[0].min() for piece in near) < mouth, f"{label}: chin loops stop low"


@pytest.mark.parametrize("name", HEAD_STRAP_TYPES)
def test_head_straps_go_round_the_head_not_across_the_face(heads, name):
    definition = LIBRARY.get(name)
    for index, (label, image, points) in enumerate(heads):
        _, body, _, pieces = _strap_pieces(image, points, definition, "proper", index)
        scale = face_scale(points)
        nose = points[facemesh.NOSE_TIP, 0]
        for side, piece in pieces:
            assert _touches(piece, body), f"{name} on {label}: a strap piece floats free of the mask"
            xs = np.nonzero(piece)[1]
            # A strap runs outward from the cup toward the side of the head, never back over the midline.
            cheek = points[facemesh.CHEEK_LEFT if side == 1 else facemesh.CHEEK_RIGHT, 0]
            assert np.all(np.sign(xs - nose) == np.sign(cheek - nose)), f"{name} on {label}: a strap crosses the face"
        far, _ = far_side(points)
        outside = cv2.distanceTransform((body < 0.5).astype(np.uint8), cv2.DIST_L2, 3)
        reach = [outside[piece].max() for side, piece in pieces if side == -far]
        assert reach and max(reach) > 0.3 * scale, f"{name} on {label}: the near straps do not leave the cup"
        assert len(pieces) <= 4, f"{name} on {label}: {len(pieces)} pieces for two straps a side"


def test_loose_head_strap_hangs_under_the_chin_in_one_piece(heads):
    definition = LIBRARY.get("n95")
    label, image, points = heads[0]
    _, body, params, pieces = _strap_pieces(image, points, definition, "strap_loose", 0)
    chin = points[facemesh.CHIN, 1]
    hanging = [piece for _, piece in pieces if np.nonzero(piece)[0].max() > chin + 0.2 * face_scale(points)]
    assert len(hanging) == 1 and _touches(hanging[0], body)


def test_strands_are_smooth_curves():
    """The strand centre lines themselves: no kink (turn between successive segments) anywhere."""
    from synthface.maskfit.render import _strand_anchors
    from synthface.maskfit.render import wear_transform as transform
    from synthface.maskfit.straps import Pose, strap_strands
    from synthface.maskfit.template import static_template
    from synthface.maskfit.warp import control_indices, head_rotation

    face = demo_faces(224)[0]
    for yaw in YAWS:
        points = rotate_head(face.points, yaw)
        scale = face_scale(points)
        image_xy = points[control_indices(), :2] / scale
        for name, wear in (("surgical", "proper"), ("surgical", "chin"), ("n95", "proper"), ("kn95", "nose_exposed")):
            definition = LIBRARY.get(name)
            params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(0))
            template = static_template(definition, 48)
            faces, images = _strand_anchors(definition, template, transform(definition, params), image_xy, scale)
            pose = Pose.of(points, head_rotation(points, control_indices()), scale)
            for strand in strap_strands(definition.straps.kind, faces, images, pose):
                # Resampled every 2 px along its length: sub-pixel jitter is invisible once drawn.
                length = np.r_[0, np.cumsum(np.linalg.norm(np.diff(strand.points, axis=0), axis=1))]
                at = np.arange(0, length[-1], 2.0)
                even = np.stack([np.interp(at, length, strand.points[:, 0]), np.interp(at, length, strand.points[:, 1])], 1)
                steps = np.diff(even, axis=0)
                angles = np.arctan2(steps[:, 1], steps[:, 0])
                turn = np.degrees(np.abs((np.diff(angles) + np.pi) % (2 * np.pi) - np.pi))
                assert turn.max(initial=0) < 25, f"{name}/{wear} at yaw {yaw}: a kink of {turn.max():.0f} degrees"
