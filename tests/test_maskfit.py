"""Mask fitting on real faces: real MediaPipe landmarks on the public-domain demo photos (frontal and
turned by warping the photo), every bundled mask type, checked on pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthface import facemesh
from synthface.maskfit import (
    MaskAppearance,
    MaskDefinitionError,
    MaskFitError,
    MaskLibrary,
    UnknownMaskError,
    fit_mask,
    sample_mask_params,
)
from synthface.maskfit.demo import demo_faces
from synthface.maskfit.render import effective_margins
from synthface.maskfit.warp import clip_polygon

LIGHT = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])
LIBRARY = MaskLibrary.load()
MASK_TYPES = [name for name in LIBRARY.names() if LIBRARY.get(name).is_mask]
CONFUSERS = [name for name in LIBRARY.names() if not LIBRARY.get(name).is_mask]


@pytest.fixture(scope="module")
def faces():
    """Demo faces at 224 px: each photo frontal and turned about 30 degrees both ways (landmarks re-detected)."""
    found = demo_faces(224)
    assert len(found) == 6, [f.name for f in found]
    assert max(abs(f.yaw) for f in found) > 12, "the warped photos should read as turned heads"
    return found


def _render(face, name, wear="proper", seed=0):
    definition = LIBRARY.get(name)
    params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(seed))
    return fit_mask(face.image, face.points, definition, params, LIGHT), params


def _covered(occlusion, points, indices):
    """Share of the given landmarks whose pixel is covered."""
    xy = np.round(points[list(indices), :2]).astype(int)
    return float(occlusion[xy[:, 1], xy[:, 0]].mean())


def _eye_region(face):
    return facemesh.polygon_mask(face.points, facemesh.LEFT_EYE, face.image.shape) | facemesh.polygon_mask(
        face.points, facemesh.RIGHT_EYE, face.image.shape)


def test_library_has_the_required_types():
    required = {"surgical", "n95", "kn95", "cloth", "black_cloth", "valve_respirator", "clear_window", "gaiter", "bandana"}
    assert required <= set(MASK_TYPES)
    assert CONFUSERS, "at least one non-mask occluder (confuser)"
    assert len(LIBRARY.names()) >= 10


@pytest.mark.parametrize("name", MASK_TYPES)
def test_proper_wear_covers_mouth_and_nose_tip_and_leaves_eyes(faces, name):
    for index, face in enumerate(faces):
        render, _ = _render(face, name, seed=index)
        assert _covered(render.occlusion, face.points, facemesh.LIPS_OUTER) == 1.0, face.name
        assert _covered(render.occlusion, face.points, [facemesh.NOSE_TIP]) == 1.0, face.name
        eyes = _eye_region(face)
        assert not render.occlusion[eyes].any(), face.name
        assert np.array_equal(render.image[eyes], face.image[eyes]), f"{face.name}: eye pixels changed"
        assert 0.3 < render.occluded_fraction < 0.8, (face.name, render.occluded_fraction)


@pytest.mark.parametrize("name", [n for n in MASK_TYPES if LIBRARY.get(n).supports("nose_exposed")])
def test_nose_exposed_leaves_the_nose_tip_visible(faces, name):
    for index, face in enumerate(faces):
        render, _ = _render(face, name, "nose_exposed", seed=index)
        assert not render.occlusion[tuple(np.round(face.points[facemesh.NOSE_TIP, 1::-1]).astype(int))], face.name
        assert _covered(render.occlusion, face.points, [facemesh.LOWER_LIP_BOTTOM, facemesh.CHIN]) == 1.0, face.name


@pytest.mark.parametrize("name", [n for n in MASK_TYPES if LIBRARY.get(n).supports("chin")])
def test_chin_wear_uncovers_the_mouth_but_covers_the_chin(faces, name):
    face = faces[0]
    render, _ = _render(face, name, "chin")
    assert _covered(render.occlusion, face.points, facemesh.LIPS_OUTER) == 0.0
    assert _covered(render.occlusion, face.points, [facemesh.CHIN]) == 1.0


def _strapless(name):
    definition = LIBRARY.get(name)
    return definition.model_copy(update={"straps": definition.straps.model_copy(update={"kind": "none"})})


# A generated hand comes from outside the face (its wrist and forearm): test_hands.py checks it stays below the eyes.
# Straps run beyond the contour to the ears: test_maskfit_straps.py checks where they go.
@pytest.mark.parametrize("name", [n for n in LIBRARY.names() if LIBRARY.get(n).generator is None])
def test_no_pixel_changes_outside_the_face_contour_plus_margin(faces, name):
    import cv2

    definition = _strapless(name)
    for wear in definition.wear_styles:
        for index, face in enumerate(faces):
            params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(index))
            render = fit_mask(face.image, face.points, definition, params, LIGHT)
            allowed = np.zeros(face.image.shape[:2], np.uint8)
            polygon = clip_polygon(face.points, *effective_margins(definition, wear))
            cv2.fillPoly(allowed, [np.round(polygon).astype(np.int32)], 1)
            allowed = cv2.dilate(allowed, np.ones((5, 5), np.uint8)).astype(bool)  # anti-aliased edge pixels
            changed = np.any(render.image != face.image, axis=2)
            assert changed.any()
            assert not (changed & ~allowed).any(), f"{name}/{wear} on {face.name} drew outside the face"
            assert not (render.occlusion & ~allowed).any()


def test_loose_strap_hangs_below_the_chin(faces):
    face = faces[0]
    chin_y = face.points[facemesh.CHIN, 1]
    proper, _ = _render(face, "n95", "proper")
    loose, params = _render(face, "n95", "strap_loose")
    assert params.loose_side in (-1, 1) and params.as_metadata()["mask_loose_side"] in ("left", "right")
    below = slice(int(chin_y) + 4, None)
    assert loose.occlusion[below].sum() > proper.occlusion[below].sum() + 5


def test_turned_head_hides_the_far_strap_and_compresses_the_far_side(faces):
    from synthface.maskfit.warp import far_side

    turned = max(faces, key=lambda f: abs(f.yaw))
    render, params = _render(turned, "n95")
    body = fit_mask(turned.image, turned.points, _strapless("n95"), params, LIGHT)
    oval = turned.points[list(facemesh.FACE_OVAL), 0]
    nose = turned.points[facemesh.NOSE_TIP, 0]
    columns = np.nonzero(body.occlusion.any(axis=0))[0]
    # The mask stays on the face, and it is narrower on the far side of the nose.
    assert oval.min() - 10 <= columns.min() and columns.max() <= oval.max() + 10
    side, turn = far_side(turned.points)
    far_cheek = turned.points[facemesh.CHEEK_LEFT if side == 1 else facemesh.CHEEK_RIGHT, 0]
    near_cheek = turned.points[facemesh.CHEEK_RIGHT if side == 1 else facemesh.CHEEK_LEFT, 0]
    far_extent = abs(nose - (columns.min() if far_cheek < nose else columns.max()))
    near_extent = abs(nose - (columns.max() if far_cheek < nose else columns.min()))
    assert turn > 0.2 and far_extent < near_extent
    # Straps: pixels covered only because of them reach out toward the near ear, and on the far side
    # they stop at the cheek's contour (behind it the head hides them).
    strap_columns = np.nonzero((render.alpha > 0.3) & (body.alpha < 0.05))[1]
    near = np.sign(strap_columns - nose) == np.sign(near_cheek - nose)
    assert near.any() and abs(strap_columns[near] - nose).max() > abs(near_cheek - nose) - 3
    assert np.all(abs(strap_columns[~near] - nose) <= abs(far_cheek - nose) + 1)


def test_fit_is_deterministic(faces):
    first, _ = _render(faces[1], "cloth", seed=5)
    second, _ = _render(faces[1], "cloth", seed=5)
    assert first.image.tobytes() == second.image.tobytes()
    assert np.array_equal(first.occlusion, second.occlusion)
    assert first.occluded_fraction == second.occluded_fraction


def test_shading_follows_the_light(faces):
    """The relief shading changes with the light direction (pleats lit from above vs below)."""
    definition = LIBRARY.get("surgical")
    params = sample_mask_params(definition, MaskAppearance(), "proper", np.random.default_rng(0))
    face = faces[0]
    above = fit_mask(face.image, face.points, definition, params, np.array([0.0, -0.7, 0.71])).image
    below = fit_mask(face.image, face.points, definition, params, np.array([0.0, 0.7, 0.71])).image
    assert np.abs(above.astype(int) - below.astype(int)).mean() > 0.5


def test_degenerate_landmarks_raise_mask_fit_error(faces):
    definition = LIBRARY.get("surgical")
    params = sample_mask_params(definition, MaskAppearance(), "proper", np.random.default_rng(0))
    image = faces[0].image
    with pytest.raises(MaskFitError, match="too small|degenerate"):
        fit_mask(image, np.zeros((478, 3), np.float32), definition, params, LIGHT)
    broken = faces[0].points.copy()
    broken[5, 0] = np.nan
    with pytest.raises(MaskFitError, match="NaN"):
        fit_mask(image, broken, definition, params, LIGHT)
    with pytest.raises(MaskFitError, match="outside the image"):
        fit_mask(image, faces[0].points + np.array([1000.0, 0, 0], np.float32), definition, params, LIGHT)


def test_colour_and_fit_vary_and_are_recorded():
    definition = LIBRARY.get("cloth")
    rng = np.random.default_rng(1)
    drawn = [sample_mask_params(definition, MaskAppearance(), "proper", rng) for _ in range(60)]
    colours = {p.as_metadata()["mask_color"] for p in drawn}
    patterns = {p.pattern for p in drawn}
    assert len(colours) > 40
    assert {"plain", "stripes", "dots", "checks", "floral"} <= patterns
    meta = drawn[0].as_metadata()
    assert meta["mask_color"].startswith("#") and len(meta["mask_color"]) == 7
    assert all(key.startswith("mask_") for key in meta)
    assert all(isinstance(v, (str, int, float)) for v in meta.values())
    sizes = [p.size for p in drawn]
    assert 0.95 <= min(sizes) < max(sizes) <= 1.06


def test_appearance_ranges_and_palettes_are_honoured():
    definition = LIBRARY.get("surgical")
    appearance = MaskAppearance(palettes={"black": 1.0}, hue_jitter=0, saturation_jitter=0, value_jitter=0,
                                size=(1.1, 1.1))
    params = sample_mask_params(definition, appearance, "proper", np.random.default_rng(0))
    assert params.as_metadata()["mask_color"] in {"#{:02x}{:02x}{:02x}".format(*c) for c in LIBRARY.palettes["black"]}
    assert params.size == pytest.approx(1.1)
    with pytest.raises(ValueError, match="low <= high"):
        MaskAppearance(size=(1.2, 0.9))
    with pytest.raises(ValueError, match="extra"):
        MaskAppearance(colour="red")
    with pytest.raises(ValueError, match="unknown palette"):
        sample_mask_params(definition, MaskAppearance(palettes={"nope": 1}), "proper", np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not support wear style"):
        sample_mask_params(definition, MaskAppearance(), "strap_loose", np.random.default_rng(0))


def test_confusers_are_labelled_as_non_masks(faces):
    for name in CONFUSERS:
        definition = LIBRARY.get(name)
        assert definition.is_mask is False
        assert definition.occluder == name
        render, _ = _render(faces[0], name)
        assert render.occlusion.any()
        assert _covered(render.occlusion, faces[0].points, [facemesh.NOSE_TIP]) == 0.0
    assert LIBRARY.get("surgical").occluder == "none"


def test_unknown_type_lists_known_ones():
    with pytest.raises(UnknownMaskError, match="known types: .*surgical"):
        LIBRARY.get("respirator9000")
    with pytest.raises(KeyError):
        LIBRARY.get("respirator9000")


def _write(folder: Path, name: str, text: str) -> Path:
    file = folder / f"{name}.yaml"
    file.write_text(text)
    return file


GOOD = """
name: mine
wear_styles: [proper]
outline: [[0, 0.2], [1.0, 0.5], [0.9, 1.4], [0, 1.9]]
palettes: [medical]
"""


def test_user_folder_adds_types(tmp_path):
    _write(tmp_path, "mine", GOOD)
    (tmp_path / "palettes.yaml").write_text("mine_palette: ['#112233']\n")
    library = MaskLibrary.load([tmp_path])
    assert "mine" in library.names() and "surgical" in library.names()
    assert library.get("mine").palette_colours["mine_palette"] == [(0x11, 0x22, 0x33)]


@pytest.mark.parametrize(
    "text, expected",
    [
        (GOOD.replace("outline: [[0, 0.2], [1.0, 0.5], [0.9, 1.4], [0, 1.9]]\n", ""), r"outline: Field required"),
        (GOOD.replace("palettes: [medical]\n", ""), r"palettes: Field required"),
        (GOOD + "colour: red\n", r"colour: Extra inputs are not permitted"),
        (GOOD.replace("[proper]", "[upside_down]"), r"wear_styles\.0"),
        (GOOD + "relief: [{kind: pleats, count: 0}]\n", r"relief\.0\.pleats\.count"),
        (GOOD.replace("[0, 0.2]", "[-0.5, 0.2]"), r"outline: .*x must be >= 0"),
        (GOOD.replace("[medical]", "[no_such_palette]"), r"palettes: unknown palette"),
        ("- just\n- a list\n", r"expected a mapping"),
        ("name: [unclosed\n", r"not valid YAML"),
    ],
)
def test_broken_definitions_fail_with_file_and_key(tmp_path, text, expected):
    file = _write(tmp_path, "broken", text)
    with pytest.raises(MaskDefinitionError, match=expected) as error:
        MaskLibrary.load([tmp_path])
    assert str(file) in str(error.value)


def test_docs_reference_is_current_and_lists_every_type():
    from synthface.maskfit import reference

    text = reference.DOC.read_text()
    assert reference.updated(text) == text, "run `python -m synthface.maskfit.reference` to refresh docs/masks.md"
    for name in LIBRARY.names():
        assert f"`{name}`" in text


@pytest.mark.parametrize("size", [64, 512])
def test_fit_works_at_the_smallest_and_largest_crop_sizes(faces, size):
    """The generator renders 64-512 px crops: the same face, resized, is still covered correctly."""
    import cv2

    face = faces[0]
    image = cv2.resize(face.image, (size, size), interpolation=cv2.INTER_AREA if size < 224 else cv2.INTER_CUBIC)
    points = face.points.copy()
    points[:, :2] = (points[:, :2] + 0.5) * size / 224 - 0.5
    points[:, 2] *= size / 224
    definition = LIBRARY.get("surgical")
    params = sample_mask_params(definition, MaskAppearance(), "proper", np.random.default_rng(0))
    render = fit_mask(image, points, definition, params, LIGHT)
    reference, _ = _render(face, "surgical")
    assert render.image.shape == image.shape and render.occlusion.shape == (size, size)
    assert _covered(render.occlusion, points, facemesh.LIPS_OUTER) == 1.0
    assert abs(render.occluded_fraction - reference.occluded_fraction) < 0.04


def test_user_definition_replaces_bundled_one_and_bad_palettes_fail(tmp_path):
    _write(tmp_path, "surgical", GOOD.replace("name: mine", "name: surgical").replace("[medical]", "[black]"))
    library = MaskLibrary.load([tmp_path])
    assert library.get("surgical").palettes == ["black"]
    assert library.get("surgical").source == str(tmp_path / "surgical.yaml")
    (tmp_path / "palettes.yaml").write_text("greys: ['#808080', 'grey']\n")
    with pytest.raises(MaskDefinitionError, match=r"palettes.yaml: greys\[1\]: expected a colour '#rrggbb'"):
        MaskLibrary.load([tmp_path])
    with pytest.raises(MaskDefinitionError, match="not a folder"):
        MaskLibrary.load([tmp_path / "missing"])
