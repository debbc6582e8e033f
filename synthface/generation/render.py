"""Render one planned sample: load -> align -> mask -> lighting -> encode -> write files.

Runs inside worker processes. Everything random is drawn from the sample's own seed, so a
sample's bytes do not depend on the worker, the order or the number of workers. Files are
written atomically; the returned rows are journaled by the parent only after that.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from synthface import facemesh
from synthface.dataset import IMAGES_DIR, OCCLUSION_DIR, TWIN_SUFFIX, atomic_write_bytes
from synthface.generation.align import AlignedFace, align_face
from synthface.generation.capture import CaptureEstimate, estimate_capture, source_jpeg_quality
from synthface.generation.foreground import Foreground, detect_foreground
from synthface.generation.lighting import LightingParams, apply_lighting, sample_lighting
from synthface.generation.plan import PoolFace, SampleSpec
from synthface.images import read_image_rgb
from synthface.landmarks import FaceLandmarks
from synthface.maskfit import MaskFitError, MaskLibrary, MaskParams, MaskRender, fit_mask, sample_mask_params
from synthface.maskfit.definitions import MaskDefinition
from synthface.paths import inside
from synthface.scenario import Scenario
from synthface.taxonomy import binary_mask_label, mask_state


@dataclass
class RenderOutcome:
    """The metadata rows written for one sample (one, or two with its unmasked twin), or why it failed."""

    index: int
    rows: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)  # fit failures, including replaced ones


@dataclass(eq=False)  # hashable by identity, for the image cache below
class RenderContext:
    scenario: Scenario
    faces: list[PoolFace] | dict[int, PoolFace]  # by plan index: the whole pool, or (in a worker) the faces of the task at hand
    library: MaskLibrary
    landmarks: PoolLandmarks
    out: Path

    # Pools reuse faces (up to max_reuse, or without limit for the demo), so keep a few decoded.
    @lru_cache(maxsize=16)
    def source_image(self, path: Path) -> np.ndarray:
        return read_image_rgb(path)

    def aligned(self, face_index: int) -> tuple[AlignedFace, CaptureEstimate]:
        """A face's aligned crop and how its photo was captured (cached: a face is reused across samples)."""
        return _aligned_face(self, face_index)


@lru_cache(maxsize=64)
def _aligned_face(ctx: RenderContext, face_index: int) -> tuple[AlignedFace, CaptureEstimate]:
    faces, path = ctx.scenario.faces, ctx.faces[face_index].record.path
    aligned = align_face(ctx.source_image(path), ctx.landmarks[face_index], ctx.scenario.image_size, faces.crop_margin,
                         min_margin=faces.min_margin, max_padding=faces.max_padding)
    return aligned, estimate_capture(aligned.image, aligned.points, source_jpeg_quality(path))


@lru_cache(maxsize=64)
def _face_foreground(ctx: RenderContext, face_index: int) -> Foreground:
    aligned, _ = ctx.aligned(face_index)
    return detect_foreground(aligned.image, aligned.points)


def mask_and_light(aligned: AlignedFace, definition: MaskDefinition | None, params: MaskParams | None,
                   light: LightingParams, capture: CaptureEstimate | None,
                   foreground: Foreground | None = None) -> tuple[np.ndarray, MaskRender | None]:
    """The finished image of one sample: the mask (if any) seen through the photo's own camera, behind any object
    found in front of the face (`foreground`), then the scenario's light and camera on the whole image.
    Returns (image, the mask's render or None). Raises MaskFitError when the foreground hides the lower face."""
    if definition is None or params is None:
        return apply_lighting(aligned.image, aligned.points, light), None
    if foreground is not None and foreground.occluded:
        raise MaskFitError(foreground.reason)
    rendered = fit_mask(aligned.image, aligned.points, definition, params, light.direction(), capture=capture,
                        noise_seed=light.noise_seed + 1)
    if foreground is not None and foreground.fraction > 0:
        rendered = behind(rendered, foreground, aligned)
    return apply_lighting(rendered.image, aligned.points, light), rendered


def behind(rendered: MaskRender, foreground: Foreground, aligned: AlignedFace) -> MaskRender:
    """The render with the object in front restored over the mask; the occlusion map counts only the visible mask."""
    alpha = rendered.alpha * (1 - foreground.mask)
    occlusion = alpha > 0.5
    oval = facemesh.polygon_mask(aligned.points, facemesh.FACE_OVAL, occlusion.shape)
    fraction = float((occlusion & oval).sum() / max(oval.sum(), 1))
    return MaskRender(foreground.keep_on_top(rendered.image, aligned.image), occlusion, fraction, alpha)


class PoolLandmarks:
    """The landmarks and pose of every usable face, as two arrays saved beside the run.

    Workers open them memory-mapped: a face's 478 points cost a page read, not a file parse,
    and the pool's landmarks are never copied into each process.
    """

    POINTS, POSES = "face_points.npy", "face_poses.npy"

    def __init__(self, points: np.ndarray, poses: np.ndarray):
        self.points, self.poses = points, poses  # (N, 478, 3) float32; (N, 4) yaw, pitch, roll, n_faces

    @classmethod
    def save(cls, folder: Path, landmarks: list[FaceLandmarks]) -> "PoolLandmarks":
        points = np.stack([face.points for face in landmarks]).astype(np.float32)
        poses = np.array([[face.yaw, face.pitch, face.roll, face.n_faces] for face in landmarks], np.float32)
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in ((cls.POINTS, points), (cls.POSES, poses)):
            buffer = io.BytesIO()
            np.save(buffer, array)
            atomic_write_bytes(folder / name, buffer.getvalue())
        return cls.open(folder)

    @classmethod
    def open(cls, folder: Path) -> "PoolLandmarks":
        return cls(np.load(folder / cls.POINTS, mmap_mode="r"), np.load(folder / cls.POSES, mmap_mode="r"))

    def __getitem__(self, index: int) -> FaceLandmarks:
        yaw, pitch, roll, n_faces = (float(v) for v in self.poses[index])
        return FaceLandmarks(np.array(self.points[index]), yaw, pitch, roll, int(n_faces))


def encode_jpeg(image_rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def encode_png(mask: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def render_sample(ctx: RenderContext, spec: SampleSpec) -> RenderOutcome:
    """Render a sample on its planned face, falling back to the planned alternates when a fit fails."""
    outcome = RenderOutcome(spec.index)
    for face_index in (spec.face, *spec.alternates):
        face = ctx.faces[face_index]
        try:
            outcome.rows = _render_on_face(ctx, spec, face_index)
            return outcome
        except MaskFitError as error:
            outcome.failures.append({"sample_id": spec.sample_id, "source_id": face.record.source_id, "reason": str(error)})
    return outcome


def _render_on_face(ctx: RenderContext, spec: SampleSpec, face_index: int) -> list[dict]:
    scenario = ctx.scenario
    face, landmarks = ctx.faces[face_index], ctx.landmarks[face_index]
    rng = np.random.default_rng(spec.seed)
    aligned, capture = ctx.aligned(face_index)
    light = sample_lighting(scenario.lighting, rng)

    occluder_name = spec.mask_type if spec.mask else spec.confuser
    occlusion, occluded_fraction, mask_columns = None, 0.0, {"mask_color": "none"}
    definition = params = None
    if occluder_name != "none":
        definition = ctx.library.get(occluder_name)
        wear = spec.wear_style if spec.mask else "proper"
        params = sample_mask_params(definition, scenario.mask.appearance, wear, rng)
    foreground = _face_foreground(ctx, face_index) if scenario.mask.keep_foreground else None
    image, rendered = mask_and_light(aligned, definition, params, light, capture, foreground)
    if rendered is not None:
        minimum = scenario.mask.min_occluded_fraction[params.wear_style] if spec.mask else 0.0
        if rendered.occluded_fraction < minimum:
            raise MaskFitError(
                f"mask covers {rendered.occluded_fraction:.1%} of the face, below min_occluded_fraction.{params.wear_style} {minimum:.0%}"
            )
        occlusion, occluded_fraction = rendered.occlusion, rendered.occluded_fraction
        mask_columns = params.as_metadata()

    write_occlusion = occlusion is not None and scenario.mask.write_occlusion
    row = base_row(spec, face, landmarks, scenario.race.taxonomy, light.as_metadata())
    row.update(capture.as_metadata())
    row["crop_margin"] = round(aligned.margin, 4)
    row["foreground_fraction"] = round(foreground.fraction, 4) if foreground is not None else 0.0
    row.update(mask_columns)
    row.update(
        mask=binary_mask_label(bool(spec.mask), spec.wear_style, scenario.mask.binary_label),
        mask_worn=int(spec.mask),
        mask_state=mask_state(bool(spec.mask), spec.wear_style),
        mask_type=occluder_name,  # the mask, the confuser, or "none"
        wear_style=spec.wear_style,
        occluder=spec.confuser if not spec.mask else "none",
        occluded_fraction=round(float(occluded_fraction), 4),
        occlusion_file=f"{OCCLUSION_DIR}/{spec.sample_id}.png" if write_occlusion else "",
        pair_id=spec.sample_id if (spec.mask and scenario.pair_unmasked) else "",
    )
    if write_occlusion:
        atomic_write_bytes(inside(ctx.out, row["occlusion_file"]), encode_png(occlusion))
    atomic_write_bytes(inside(ctx.out, row["file_name"]), encode_jpeg(image, light.jpeg_quality))
    rows = [row]
    if spec.mask and scenario.pair_unmasked:
        twin = dict(row, sample_id=spec.sample_id + TWIN_SUFFIX, file_name=f"{IMAGES_DIR}/{spec.sample_id}{TWIN_SUFFIX}.jpg",
                    mask=0, mask_worn=0, mask_state="none", mask_type="none", mask_color="none", wear_style="none",
                    occluder="none", occluded_fraction=0.0, occlusion_file="")
        twin.update({key: None for key in mask_columns if key != "mask_color"})
        twin_image, _ = mask_and_light(aligned, None, None, light, capture)
        atomic_write_bytes(inside(ctx.out, twin["file_name"]), encode_jpeg(twin_image, light.jpeg_quality))
        rows.append(twin)
    return rows


def base_row(spec: SampleSpec, face: PoolFace, landmarks, race_taxonomy: str, lighting: dict) -> dict:
    """Columns shared by a sample and its twin: identity, labels, pose, lighting."""
    record = face.record
    return {
        "file_name": f"{IMAGES_DIR}/{spec.sample_id}.jpg",
        "sample_id": spec.sample_id,
        "split": spec.split,
        "source_dataset": record.source_dataset,
        "source_file": str(record.path.name),
        "source_id": record.source_id,
        "age": float(record.age),
        "age_bin": face.age_bin,
        "gender": face.gender,
        "race": face.race,
        "race_taxonomy": race_taxonomy,
        "head_yaw": round(landmarks.yaw, 2),
        "head_pitch": round(landmarks.pitch, 2),
        "head_roll": round(landmarks.roll, 2),
        "source_faces": landmarks.n_faces,  # faces the landmarker saw in the photo (the largest is used)
        "seed": spec.seed,
        "plan_index": spec.index,
        **lighting,
    }
