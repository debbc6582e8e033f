"""Photo mask templates (issue 6): templates drawn in the test, fitted on real faces with real landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from synthface import facemesh
from synthface.cli import app
from synthface.maskfit import MaskAppearance, MaskDefinitionError, MaskLibrary, fit_mask, sample_mask_params
from synthface.maskfit.demo import demo_faces
from synthface.maskfit.photo import clean_edges, estimate_anchors, read_rgba

LIGHT = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])
GREEN = (0, 255, 0)
SIZE = (300, 200)  # template width, height


def draw_template(background=GREEN, alpha=True, white_fringe=True) -> np.ndarray:
    """A mask-shaped RGBA drawing: a blue body with printed dark marks; the transparent part is green."""
    width, height = SIZE
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:] = background
    shape = np.zeros((height, width), np.uint8)
    # A rounded mask: straight-ish top with a peak at the centre (nose), rounded bottom.
    polygon = np.array([[20, 40], [150, 10], [280, 40], [285, 110], [220, 175], [150, 190], [80, 175], [15, 110]])
    cv2.fillPoly(shape, [polygon], 255, lineType=cv2.LINE_AA)
    body = np.zeros_like(rgb)
    body[:] = (40, 90, 200)
    for x in range(40, 270, 30):  # printed marks
        cv2.circle(body, (x, 100), 6, (20, 20, 30), -1)
    cv2.putText(body, "N95", (120, 150), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (240, 240, 240), 2)
    inside = shape > 0
    rgb[inside] = body[inside]
    if white_fringe:  # a careless cut: partially transparent pixels carry white
        edge = (shape > 0) & (shape < 255)
        rgb[edge] = (255, 255, 255)
    if not alpha:
        return rgb
    return np.dstack([rgb, shape])


def write_template(folder: Path, name: str, rgba: np.ndarray, extra_yaml: str = "") -> Path:
    channels = cv2.COLOR_RGBA2BGRA if rgba.shape[2] == 4 else cv2.COLOR_RGB2BGR
    cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(rgba, channels))
    (folder / f"{name}.yaml").write_text(
        f"name: {name}\nimage: {name}.png\nwear_styles: [proper, nose_exposed]\npalettes: [fabric]\n"
        "outline: [[0, 0.20], [0.75, 0.42], [1.03, 0.56], [1.05, 1.02], [0.86, 1.46], [0.45, 1.80], [0, 1.90]]\n"
        "material: {kind: woven, texture: 0.0, shading: 0.5}\nstraps: {kind: ear_loops, width: 0.03, color: body}\n"
        + extra_yaml)
    return folder / f"{name}.yaml"


@pytest.fixture(scope="module")
def faces():
    return demo_faces(224)


def test_anchors_are_estimated_at_the_outline_extremes():
    alpha = draw_template()[..., 3].astype(np.float32) / 255
    anchors = estimate_anchors(alpha)
    assert np.allclose(anchors["nose_bridge"], (150, 10), atol=3)
    assert np.allclose(anchors["chin"], (150, 190), atol=3)
    assert abs(anchors["right_cheek"][0] - 15) <= 2 and 40 <= anchors["right_cheek"][1] <= 110  # image-left extreme
    assert abs(anchors["left_cheek"][0] - 285) <= 2 and 40 <= anchors["left_cheek"][1] <= 110


@pytest.mark.parametrize("anchors", ["", "anchors: {nose_bridge: [150, 12], chin: [150, 188], right_cheek: [17, 75], "
                                         "left_cheek: [283, 75]}\n"])
def test_fitted_template_covers_mouth_and_nose_without_halo(tmp_path, faces, anchors):
    write_template(tmp_path, "photo_mask", draw_template(), anchors)
    definition = MaskLibrary.load([tmp_path]).get("photo_mask")
    params = sample_mask_params(definition, MaskAppearance(), "proper", np.random.default_rng(0))
    for face in faces:
        render = fit_mask(face.image, face.points, definition, params, LIGHT)
        lips = np.round(face.points[list(facemesh.LIPS_OUTER), :2]).astype(int)
        tip = np.round(face.points[facemesh.NOSE_TIP, :2]).astype(int)
        assert render.occlusion[lips[:, 1], lips[:, 0]].all(), face.name
        assert render.occlusion[tip[1], tip[0]], face.name
        # No halo: pixels along the mask's edge are neither the template's green background nor white.
        edge = (render.alpha > 0.3) & (render.alpha < 0.97)
        changed = render.image[edge].astype(int)
        original = face.image[edge].astype(int)
        coverage = render.alpha[edge][:, None]
        # Recover the colour the mask contributed at each edge pixel (undo the blend with the face).
        contributed = (changed - original * (1 - coverage)) / coverage
        greenish = (contributed[:, 1] > contributed[:, 0] + 60) & (contributed[:, 1] > contributed[:, 2] + 60)
        whitish = contributed.min(axis=1) > 215
        assert greenish.mean() < 0.02 and whitish.mean() < 0.02, face.name


def test_photo_templates_take_colour_variation_or_opt_out(tmp_path, faces):
    write_template(tmp_path, "recoloured", draw_template())
    write_template(tmp_path, "fixed", draw_template(), "recolor: false\n")
    library = MaskLibrary.load([tmp_path])
    face = faces[0]
    rng = np.random.default_rng(3)
    colours = set()
    for _ in range(4):
        params = sample_mask_params(library.get("recoloured"), MaskAppearance(), "proper", rng)
        colours.add(fit_mask(face.image, face.points, library.get("recoloured"), params, LIGHT).image.tobytes())
    assert len(colours) == 4
    fixed = library.get("fixed")
    params = sample_mask_params(fixed, MaskAppearance(), "proper", rng)
    assert params.as_metadata()["mask_color"] == "#285ac8"  # the drawing's blue, measured from the template
    render = fit_mask(face.image, face.points, fixed, params, LIGHT)
    covered = render.alpha > 0.99
    blue = render.image[covered].astype(int)
    assert np.median(blue[:, 2] - blue[:, 0]) > 80, "a template that opts out keeps its own blue"


def test_template_without_alpha_on_uniform_background_is_cut_out(tmp_path):
    rgb = draw_template(background=(250, 250, 250), alpha=False, white_fringe=False)
    cv2.imwrite(str(tmp_path / "flat.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    rgba = read_rgba(tmp_path / "flat.png")
    expected = draw_template()[..., 3] > 127
    assert ((rgba[..., 3] > 127) == expected).mean() > 0.99
    _, alpha = clean_edges(rgba)
    assert alpha[100, 150] > 0.99 and alpha[5, 5] == 0


@pytest.mark.parametrize("mutate, expected", [
    (lambda f: f.with_suffix(".png").unlink(), r"image: file not found"),
    (lambda f: f.write_text(f.read_text() + "anchors: {nose_bridge: [150, 12], chin: [150, 900], left_cheek: [283, 75]}\n"),
     r"anchors\.chin: \(150\.0, 900\.0\) lies outside the 300x200 image"),
    (lambda f: f.write_text(f.read_text() + "anchors: {nose_bridge: [150, 12], chin: [150, 190]}\n"),
     r"anchors: .*at least 3 anchors"),
    (lambda f: f.write_text(f.read_text() + "anchors: {forehead: [1, 1], chin: [150, 190], left_cheek: [283, 75]}\n"),
     r"anchors\.forehead"),
])
def test_broken_photo_definitions_fail_clearly(tmp_path, mutate, expected):
    file = write_template(tmp_path, "broken", draw_template())
    mutate(file)
    with pytest.raises(MaskDefinitionError, match=expected) as error:
        MaskLibrary.load([tmp_path])
    assert str(file) in str(error.value)


def test_import_command_writes_a_definition_and_a_preview(tmp_path):
    source = tmp_path / "shop_photo.png"
    cv2.imwrite(str(source), cv2.cvtColor(draw_template(background=(250, 250, 250), alpha=False, white_fringe=False),
                                          cv2.COLOR_RGB2BGR))
    out = tmp_path / "my_masks"
    result = CliRunner().invoke(app, ["masks", "import", str(source), "--name", "shop_n95", "--type", "n95",
                                      "--out", str(out), "--size", "96"])
    assert result.exit_code == 0, result.output
    assert (out / "shop_n95.yaml").is_file() and (out / "shop_n95.png").is_file()
    preview = cv2.imread(str(out / "shop_n95_preview.jpg"))
    assert preview is not None and preview.shape[0] >= 96
    definition = MaskLibrary.load([out]).get("shop_n95")
    assert definition.image and definition.anchors and "strap_loose" in definition.wear_styles
    png = cv2.imread(str(out / "shop_n95.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape[2] == 4 and png.shape[1] < SIZE[0] and png.shape[0] < SIZE[1]  # cut out and cropped
    top_x, top_y = definition.anchors["nose_bridge"]
    assert abs(top_x - png.shape[1] / 2) <= 3 and top_y <= 8
