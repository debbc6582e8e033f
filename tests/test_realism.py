"""Pixel checks of the realism defects fixed in issue 9 (relighting, camera match, framing, labels),
on the real demo faces. Straps, children's proportions, hands and foreground objects are checked in
test_maskfit*.py beside the code that fits masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthface import facemesh
from synthface.generation.align import align_face
from synthface.generation.capture import estimate_blur, estimate_capture, estimate_noise
from synthface.generation.lighting import LightingParams, apply_lighting
from synthface.landmarks import LandmarkDetector
from synthface.maskfit import MaskAppearance, fit_mask, sample_mask_params
from synthface.maskfit.demo import demo_faces
from synthface.scenario import FaceQuality
from synthface.taxonomy import BINARY_MASK_RULES, MASK_STATES, binary_mask_label, mask_state

UPPER_LIP = (0, 37, 267, 164)  # philtrum and the upper lip's top
CHEEKS = (50, 280, 101, 330)
WHITE = (238, 238, 236)


@pytest.fixture(scope="module")
def faces():
    return demo_faces(192)


def light(**changes) -> LightingParams:
    base = LightingParams("test", 1.0, 0.0, 20.0, 0.6, 0.5, 0.0, 6500.0, 0.0, False, 0.0, 95, 0)
    return LightingParams(**{**base.__dict__, **changes})


def luminance(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def gain_at(original: np.ndarray, relit: np.ndarray, points: np.ndarray, indices) -> float:
    """Mean brightness ratio relit / original in small patches around landmarks."""
    ratios = []
    for i in indices:
        x, y = np.round(points[i, :2]).astype(int)
        before, after = original[y - 2:y + 3, x - 2:x + 3].mean(), relit[y - 2:y + 3, x - 2:x + 3].mean()
        ratios.append(after / max(before, 1.0))
    return float(np.mean(ratios))


def white_mask(definition, wear="proper", seed=0):
    params = sample_mask_params(definition, MaskAppearance(), wear, np.random.default_rng(seed))
    return params.__class__(**{**params.__dict__, "color": WHITE, "pattern": "plain"})


# --- 1. relighting --------------------------------------------------------------------------------


@pytest.mark.parametrize("elevation", [45.0, 70.0, 85.0])
def test_top_light_paints_no_dark_band_on_the_upper_lip(faces, elevation):
    for face in faces:
        params = light(azimuth=0.0, elevation=elevation, directional=1.0, ambient=0.3, shadow=0.5)
        original = luminance(face.image)
        relit = luminance(apply_lighting(face.image, face.points, params))
        lip, cheeks = gain_at(original, relit, face.points, UPPER_LIP), gain_at(original, relit, face.points, CHEEKS)
        assert lip >= 0.95 * cheeks, f"{face.name}: upper lip x{lip:.2f} vs cheeks x{cheeks:.2f} under light from {elevation} deg"


@pytest.mark.parametrize("mask_type", ["surgical", "kn95", "n95", "cloth"])
def test_a_white_mask_under_even_light_has_no_dark_blotch(faces, library, mask_type):
    definition = library.get(mask_type)
    params = light(azimuth=10.0, elevation=20.0, directional=0.4, ambient=0.7, shadow=0.1)
    for face in faces:
        rendered = fit_mask(face.image, face.points, definition, white_mask(definition), params.direction())
        relit = luminance(apply_lighting(rendered.image, face.points, params))
        body = cv2.erode(rendered.occlusion.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        smooth = cv2.GaussianBlur(relit, (0, 0), 4)  # blotches, not pleat lines or fabric grain
        darkest, typical = float(np.percentile(smooth[body], 1)), float(np.median(smooth[body]))
        assert darkest >= 0.6 * typical, f"{face.name}: darkest part of the mask {darkest:.0f} vs median {typical:.0f}"


def test_a_hard_side_light_darkens_but_never_paints_a_black_half(faces, library):
    definition = library.get("kn95")
    params = light(azimuth=85.0, elevation=0.0, directional=1.2, ambient=0.05, shadow=0.8)
    for face in faces:
        rendered = fit_mask(face.image, face.points, definition, white_mask(definition), params.direction())
        relit = luminance(apply_lighting(rendered.image, face.points, params))
        before = luminance(rendered.image)
        oval = facemesh.polygon_mask(face.points, facemesh.FACE_OVAL, relit.shape)
        ratio = cv2.GaussianBlur(relit, (0, 0), 3) / np.maximum(cv2.GaussianBlur(before, (0, 0), 3), 1.0)
        assert np.percentile(ratio[oval], 2) >= 0.42, f"{face.name}: the shadow side falls to black"
        assert np.percentile(ratio[oval], 98) / np.percentile(ratio[oval], 2) >= 1.5, "the light must still model the face"
        mask_body = cv2.erode(rendered.occlusion.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert np.percentile(relit[mask_body], 2) >= 60, f"{face.name}: a white mask turned black on its shadow side"


# --- 4. the mask seen through the photo's camera --------------------------------------------------


def degrade(image: np.ndarray, blur: float = 0.0, noise: float = 0.0) -> np.ndarray:
    out = image.astype(np.float32)
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise:
        out += np.random.default_rng(1).standard_normal(out.shape[:2])[..., None] * noise
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def mask_band(occlusion: np.ndarray) -> np.ndarray:
    """A ring around the mask's outline: its step edge against the face shows how soft it is."""
    mask = occlusion.astype(np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    return (cv2.dilate(mask, kernel) > 0) & ~(cv2.erode(mask, kernel) > 0)


@pytest.mark.parametrize("mask_type", ["surgical", "n95", "kn95"])
def test_mask_blur_matches_a_soft_photo(faces, library, mask_type):
    definition = library.get(mask_type)
    face = faces[0]
    soft = degrade(face.image, blur=1.5)
    capture = estimate_capture(soft, face.points)
    params = white_mask(definition)
    direction = light().direction()
    matched = fit_mask(soft, face.points, definition, params, direction, capture=capture)
    crisp = fit_mask(soft, face.points, definition, params, direction)
    band = mask_band(matched.occlusion)
    matched_blur = estimate_blur(luminance(matched.image).astype(np.uint8), band)
    crisp_blur = estimate_blur(luminance(crisp.image).astype(np.uint8), band)
    assert 0.7 * capture.blur_sigma <= matched_blur <= 1.3 * capture.blur_sigma, (matched_blur, capture.blur_sigma)
    assert crisp_blur < 0.7 * capture.blur_sigma, "without the capture match the mask would be crisper than the face"


def test_mask_noise_matches_a_grainy_photo(faces, library):
    definition = library.get("surgical")
    face = faces[0]
    grainy = degrade(face.image, noise=6.0)
    capture = estimate_capture(grainy, face.points)
    assert 5.0 <= capture.noise_std <= 7.0, capture.noise_std
    params = white_mask(definition)
    matched = fit_mask(grainy, face.points, definition, params, light().direction(), capture=capture, noise_seed=3)
    clean = fit_mask(grainy, face.points, definition, params, light().direction())
    body = cv2.erode(matched.occlusion.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert 0.7 * capture.noise_std <= estimate_noise(luminance(matched.image).astype(np.uint8), body) <= 1.3 * capture.noise_std
    assert estimate_noise(luminance(clean.image).astype(np.uint8), body) < 0.5 * capture.noise_std


def test_mask_takes_the_photo_exposure_and_white_balance(faces, library):
    definition = library.get("surgical")
    face = faces[0]
    warm = np.clip(face.image.astype(np.float32) * [1.0, 0.85, 0.65], 0, 255).astype(np.uint8)  # a tungsten cast
    capture = estimate_capture(warm, face.points)
    assert capture.white_balance[0] > capture.white_balance[2], capture.white_balance
    rendered = fit_mask(warm, face.points, definition, white_mask(definition), light().direction(), capture=capture)
    body = cv2.erode(rendered.occlusion.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    red, _, blue = (rendered.image[..., c][body].mean() for c in range(3))
    assert red > blue + 8, "a white mask in a warm photo is warm too"


# --- 5. framing and resolution --------------------------------------------------------------------


def test_a_tightly_cropped_photo_is_padded_so_the_chin_stays_in_frame(astronaut):
    with LandmarkDetector() as detector:
        face = detector.detect(astronaut)[0]
        oval = face.points[list(facemesh.FACE_OVAL), :2]
        (x0, y0), (x1, y1) = np.floor(oval.min(0)).astype(int), np.ceil(oval.max(0)).astype(int)
        chip = np.ascontiguousarray(astronaut[y0:y1 + 2, x0:x1])  # a UTKFace-like chip: no context below the chin
        found = detector.detect(chip)
    assert found, "the landmarker must find the face on the chip"
    defaults, size = FaceQuality(), 160
    aligned = align_face(chip, found[0], size, defaults.crop_margin, min_margin=defaults.min_margin,
                         max_padding=defaults.max_padding)
    chin_y = aligned.points[facemesh.CHIN, 1]
    assert chin_y <= size * 0.95, f"chin at {chin_y:.0f} of {size} px"
    zoomed = align_face(chip, found[0], size, defaults.crop_margin)  # the old behaviour: zoom in to the photo
    assert zoomed.points[facemesh.CHIN, 1] > chin_y
    invented = cv2.warpAffine(np.full(chip.shape[:2], 255, np.uint8), aligned.matrix, (size, size)) < 128
    assert invented.mean() <= 0.45, "padding is bounded by faces.max_padding"


def test_low_resolution_capture_loses_detail_and_keeps_size(faces):
    face = faces[0]
    full = apply_lighting(face.image, face.points, light(directional=0.0, shadow=0.0))
    small = apply_lighting(face.image, face.points, light(directional=0.0, shadow=0.0, resolution_scale=0.3))
    assert small.shape == full.shape
    detail = [float(np.abs(cv2.Laplacian(luminance(im), cv2.CV_32F)).mean()) for im in (full, small)]
    assert detail[1] < 0.6 * detail[0]


# --- labels: where the mask is matters ------------------------------------------------------------


@pytest.mark.parametrize("wear", ["proper", "nose_exposed", "chin", "strap_loose"])
@pytest.mark.parametrize("rule", BINARY_MASK_RULES)
def test_mask_state_and_binary_label_follow_the_wear_style(wear, rule):
    state = mask_state(True, wear)
    assert state in MASK_STATES and state == ("correct" if wear == "proper" else "incorrect")
    label = binary_mask_label(True, wear, rule)
    expected = {"worn": 1, "worn_correctly": int(wear == "proper"), "covers_mouth": int(wear != "chin")}[rule]
    assert label == expected
    assert binary_mask_label(False, "none", rule) == 0 and mask_state(False, "none") == "none"
