"""Lighting: config validation, per-sample draws, and the relighting model on real faces.

The faces are the bundled public-domain photos with real MediaPipe landmarks (synthface.landmarks),
aligned as the generator aligns them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from synthface.facemesh import FACE_OVAL, NOSE_TIP
from synthface.generation.align import align_face
from synthface.generation.lighting import (
    DEFAULTS,
    PRESETS,
    LightingConfig,
    LightingParams,
    apply_lighting,
    face_shading,
    sample_lighting,
    white_balance_gains,
)
from synthface.landmarks import LandmarkDetector

SIZE = 224


@pytest.fixture(scope="module")
def faces(astronaut, grace_hopper) -> list[tuple[np.ndarray, np.ndarray]]:
    """(aligned 224 px image, its 478 landmarks) for both real photos."""
    aligned = []
    with LandmarkDetector() as detector:
        for photo in (astronaut, grace_hopper):
            found = detector.detect(photo)
            assert found, "MediaPipe found no face in a bundled test photo"
            crop = align_face(photo, found[0], SIZE)
            aligned.append((crop.image, crop.points))
    return aligned


def params(**changes) -> LightingParams:
    """Neutral parameters with some changed."""
    base = LightingParams.neutral()
    return LightingParams(**{**base.__dict__, **changes})


def face_halves(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the face oval left and right of the nose tip (image left / right)."""
    import cv2

    oval = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(oval, [np.round(points[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    columns = np.arange(SIZE)[None, :]
    nose_x = points[NOSE_TIP, 0]
    return (oval > 0) & (columns < nose_x - 8), (oval > 0) & (columns > nose_x + 8)


def luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


# --- the relighting model --------------------------------------------------------------------


def test_neutral_parameters_leave_the_image_unchanged(faces) -> None:
    image, points = faces[0]
    out = apply_lighting(image, points, LightingParams.neutral())
    assert np.array_equal(out, image) and out is not image


def test_same_parameters_same_bytes_and_seed_changes_noise(faces) -> None:
    image, points = faces[0]
    p = params(intensity=0.9, azimuth=-30.0, elevation=20.0, directional=0.6, ambient=0.4, shadow=0.3,
               color_temperature=4200.0, noise_std=6.0, blur_sigma=0.8, noise_seed=7)
    first, second = apply_lighting(image, points, p), apply_lighting(image.copy(), points.copy(), p)
    assert first.dtype == np.uint8 and first.shape == image.shape
    assert first.tobytes() == second.tobytes()
    reseeded = apply_lighting(image, points, params(**{**p.__dict__, "noise_seed": 8}))
    assert not np.array_equal(first, reseeded)
    # the noise has roughly the requested std (8-bit levels) on top of the same relit image
    difference = first.astype(np.float64) - reseeded.astype(np.float64)
    assert np.std(difference) == pytest.approx(6.0 * math.sqrt(2), rel=0.2)
    red_blue = np.corrcoef(difference[..., 0].ravel(), difference[..., 2].ravel())[0, 1]
    assert red_blue > 0.95  # grain: the same noise on every channel (up to rounding and clipping)
    colour = apply_lighting(image, points, params(**{**p.__dict__, "noise_per_channel": True}))
    colour_difference = colour.astype(np.float64) - apply_lighting(image, points, params(**{**p.__dict__, "noise_std": 0.0}))
    assert abs(np.corrcoef(colour_difference[..., 0].ravel(), colour_difference[..., 2].ravel())[0, 1]) < 0.2


@pytest.mark.parametrize("face_index", [0, 1])
def test_light_from_the_left_brightens_the_left_side(faces, face_index: int) -> None:
    image, points = faces[face_index]
    left, right = face_halves(points)
    before = luminance(image)
    for azimuth, lit, unlit in ((-70.0, left, right), (70.0, right, left)):
        out = luminance(apply_lighting(image, points, params(azimuth=azimuth, elevation=10.0, directional=1.0, ambient=0.2, shadow=0.4)))
        lit_change = out[lit].mean() / before[lit].mean()
        unlit_change = out[unlit].mean() / before[unlit].mean()
        assert lit_change > 1.05, (azimuth, lit_change)
        assert unlit_change < 0.85, (azimuth, unlit_change)


def test_frontal_light_keeps_the_sides_even(faces) -> None:
    image, points = faces[0]
    left, right = face_halves(points)
    before = luminance(image)
    out = luminance(apply_lighting(image, points, params(directional=1.0, ambient=0.2)))
    assert out[left].mean() / before[left].mean() == pytest.approx(out[right].mean() / before[right].mean(), abs=0.06)


def test_light_from_above_brightens_forehead_over_chin(faces) -> None:
    image, points = faces[1]
    forehead = (slice(int(points[10, 1]) + 2, int(points[10, 1]) + 14), slice(int(points[10, 0]) - 10, int(points[10, 0]) + 10))
    chin = (slice(int(points[152, 1]) - 14, int(points[152, 1]) - 2), slice(int(points[152, 0]) - 10, int(points[152, 0]) + 10))
    before = luminance(image)
    out = luminance(apply_lighting(image, points, params(elevation=70.0, directional=1.0, ambient=0.2, shadow=0.3)))
    assert out[forehead].mean() / before[forehead].mean() > out[chin].mean() / before[chin].mean() + 0.15


def test_shading_moves_light_but_keeps_the_face_mean(faces) -> None:
    image, points = faces[0]
    grid, (x0, y0, x1, y1) = face_shading(points, params(azimuth=-50.0, elevation=25.0, directional=0.8, ambient=0.3))
    assert grid.min() < 0.8 and grid.max() > 1.2  # it really relights
    assert grid[0, 0] == pytest.approx(1.0) and grid[-1, -1] == pytest.approx(1.0)  # background untouched
    assert x0 < points[:, 0].min() and x1 > points[:, 0].max() and y0 < points[:, 1].min() and y1 > points[:, 1].max()


@pytest.mark.parametrize(("kelvin", "warmer"), [(3000.0, True), (10000.0, False)])
def test_colour_temperature_shifts_red_blue_balance(faces, kelvin: float, warmer: bool) -> None:
    image, points = faces[0]
    out = apply_lighting(image, points, params(color_temperature=kelvin)).astype(np.float64)
    ratio_before = image[..., 0].astype(np.float64).mean() / image[..., 2].mean()
    ratio_after = out[..., 0].mean() / out[..., 2].mean()
    assert (ratio_after > ratio_before * 1.2) if warmer else (ratio_after < ratio_before / 1.1)
    # brightness (luma) is kept roughly constant: colour temperature changes hue, not exposure
    assert luminance(out.astype(np.uint8)).mean() == pytest.approx(luminance(image).mean(), rel=0.08)


def test_white_balance_gains_are_neutral_at_6500k_and_ordered() -> None:
    assert white_balance_gains(6500.0) == (1.0, 1.0, 1.0)
    warm, cool = white_balance_gains(3000.0), white_balance_gains(9000.0)
    assert warm[0] > 1 > warm[2] and cool[2] > 1 > cool[0]
    red_over_blue = [white_balance_gains(k)[0] / white_balance_gains(k)[2] for k in (2500.0, 4000.0, 6500.0, 9000.0, 12000.0)]
    assert red_over_blue == sorted(red_over_blue, reverse=True)


def test_intensity_is_a_linear_light_gain(faces) -> None:
    image, points = faces[0]
    mid = (image > 40) & (image < 180)  # away from clipping
    out = apply_lighting(image, points, params(intensity=0.5)).astype(np.float64)
    assert np.median(out[mid] / image[mid]) == pytest.approx(0.5 ** (1 / 2.2), abs=0.02)


def test_blur_softens_edges(faces) -> None:
    image, points = faces[0]
    blurred = apply_lighting(image, points, params(blur_sigma=2.0))
    assert np.abs(np.diff(blurred.astype(np.float64), axis=1)).mean() < 0.7 * np.abs(np.diff(image.astype(np.float64), axis=1)).mean()


def test_blur_and_noise_are_the_bytes_albumentations_made(faces) -> None:
    """The blur and noise were albumentations' GaussianBlur and GaussNoise until 2026-12: the same
    parameters must still give the same images (sizes down to a low-resolution capture's 8 px)."""
    import albumentations as A
    import cv2

    from synthface.generation.lighting import _blur_kernel, add_noise

    rng = np.random.default_rng(3)
    face = faces[0][0]
    images = [face, face[50:58, 60:68].copy(), rng.integers(0, 256, (67, 91, 3), dtype=np.uint8), np.full((20, 30, 3), 250, np.uint8)]
    for image in images:
        for sigma in (0.3, 0.57, 1.2, 2.0, 5.0):
            reference = A.GaussianBlur(blur_limit=0, sigma_limit=(sigma, sigma), p=1.0)(image=image)["image"]
            kernel = _blur_kernel(sigma)
            assert np.array_equal(cv2.sepFilter2D(image, -1, kernel, kernel), reference), (image.shape, sigma)
        for std in (0.01, 0.8, 2.5, 7.3, 50.0):
            for per_channel in (False, True):
                seed = int(rng.integers(0, 2**31))
                noise = A.GaussNoise(std_range=(std / 255, std / 255), mean_range=(0.0, 0.0), per_channel=per_channel, p=1.0)
                noise.set_random_seed(seed)
                reference = noise(image=image)["image"]
                assert np.array_equal(add_noise(image, std, per_channel, seed), reference), (image.shape, std, per_channel)


def test_degenerate_landmarks_do_not_crash(faces) -> None:
    image, _ = faces[0]
    collapsed = np.full((478, 3), 100.0, np.float32)
    out = apply_lighting(image, collapsed, params(azimuth=-60.0, directional=1.0, ambient=0.2, shadow=0.5))
    assert np.array_equal(out, image)  # no face shape to shade: only global terms (none here) apply


def test_apply_lighting_rejects_wrong_inputs(faces) -> None:
    image, points = faces[0]
    with pytest.raises(ValueError, match="uint8"):
        apply_lighting(image.astype(np.float32), points, LightingParams.neutral())
    with pytest.raises(ValueError, match="478"):
        apply_lighting(image, points[:100], LightingParams.neutral())


# --- parameters ------------------------------------------------------------------------------


def test_direction_vectors() -> None:
    np.testing.assert_allclose(params().direction(), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(params(azimuth=-90.0).direction(), [-1, 0, 0], atol=1e-12)  # from the image's left
    np.testing.assert_allclose(params(elevation=90.0).direction(), [0, -1, 0], atol=1e-12)  # from above (y is down)
    vector = params(azimuth=33.0, elevation=-21.0).direction()
    assert np.linalg.norm(vector) == pytest.approx(1.0)


def test_metadata_columns_are_primitive_and_round_trip() -> None:
    p = sample_lighting(LightingConfig(preset="mixed"), np.random.default_rng(3))
    row = p.as_metadata()
    assert all(key.startswith("lighting_") for key in row)
    assert all(type(value) in (int, float, str, bool) for value in row.values())
    assert {"lighting_intensity", "lighting_azimuth", "lighting_color_temperature", "lighting_jpeg_quality", "lighting_noise_seed"} <= set(row)
    assert LightingParams.from_metadata({k: str(v) for k, v in row.items()}) == p  # e.g. read back from CSV


def test_sampling_is_deterministic_and_within_ranges() -> None:
    cfg = LightingConfig(intensity=[0.6, 0.7], azimuth=[-10, 10], color_temperature=[3000, 3500], jpeg_quality=[70, 75], noise_std=2)
    draws = [sample_lighting(cfg, np.random.default_rng(seed)) for seed in range(50)]
    assert draws[:5] == [sample_lighting(cfg, np.random.default_rng(seed)) for seed in range(5)]
    for p in draws:
        assert 0.6 <= p.intensity <= 0.7 and -10 <= p.azimuth <= 10
        assert 3000 <= p.color_temperature <= 3500 and 70 <= p.jpeg_quality <= 75 and p.noise_std == 2.0
        assert p.preset == "custom"
        low, high = DEFAULTS["elevation"]  # unset keys come from the defaults
        assert low <= p.elevation <= high
    assert len({p.noise_seed for p in draws}) == 50


def test_presets_and_overrides() -> None:
    rng = np.random.default_rng(0)
    dim = sample_lighting(LightingConfig(preset="dim"), rng)
    assert dim.noise_per_channel and not sample_lighting(LightingConfig(), rng).noise_per_channel
    warm = [sample_lighting(LightingConfig(preset="indoor_warm", noise_std=0), rng) for _ in range(30)]
    low, high = PRESETS["indoor_warm"]["color_temperature"]
    assert all(low <= p.color_temperature <= high and p.noise_std == 0 and p.preset == "indoor_warm" for p in warm)

    side = [sample_lighting(LightingConfig(preset="harsh_side"), rng) for _ in range(60)]
    assert all(55 <= abs(p.azimuth) <= 85 for p in side)
    assert any(p.azimuth < 0 for p in side) and any(p.azimuth > 0 for p in side)  # mirror_azimuth: both sides

    mix = [sample_lighting(LightingConfig(preset={"studio": 3, "dim": 1}), rng).preset for _ in range(400)]
    assert set(mix) == {"studio", "dim"} and 0.65 < mix.count("studio") / 400 < 0.85


def test_disabled_lighting_is_neutral_but_keeps_jpeg_quality() -> None:
    p = sample_lighting(LightingConfig(enabled=False, jpeg_quality=[60, 60]), np.random.default_rng(1))
    assert p == LightingParams.neutral(60)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"intensity": [1.5, 1.2]}, "low <= high"),
        ({"azimuth": [-120, 0]}, r"within \[-90.0, 90.0\]"),
        ({"color_temperature": [1000, 6500]}, r"within \[2000.0, 12000.0\]"),
        ({"jpeg_quality": [50, 101]}, r"within \[1, 100\]"),
        ({"blur_probability": 1.5}, "less than or equal to 1"),
        ({"preset": "disco"}, "unknown preset"),
        ({"preset": {"studio": -1, "dim": 2}}, "weights must be >= 0"),
        ({"brightness": 1.0}, "Extra inputs are not permitted"),
        ({"noise_std": "loud"}, "noise_std"),
    ],
)
def test_validation_errors_name_the_key(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as error:
        LightingConfig(**section)
    assert list(section)[0] in str(error.value)


def test_scalar_means_a_fixed_value() -> None:
    cfg = LightingConfig(intensity=0.8)
    assert cfg.intensity == (0.8, 0.8)
    assert sample_lighting(cfg, np.random.default_rng(0)).intensity == 0.8
