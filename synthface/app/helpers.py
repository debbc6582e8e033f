"""The app's work, as plain functions over the library: no Streamlit here, so tests call them directly.

Every function that takes user input raises `AppError` with a message meant for the page
(the page shows it and keeps running); anything else is a bug.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

# An upload larger than this is refused before its pixels are decoded (a 12-megapixel phone
# photo is well inside; a crafted 30000 x 30000 PNG is not).
MAX_UPLOAD_PIXELS = 40_000_000
DEMO_PHOTOS = ("astronaut", "grace_hopper.jpg")
PALETTE_OWN = "(the type's own palettes)"
PATTERN_OWN = "(the type's own pattern weights)"
LIGHTING_OFF = "off"
LIGHTING_DEFAULT = "default (mild variation)"


class AppError(Exception):
    """Bad input from the page (an upload, a folder, a checkpoint): the message says what and why."""


# --- photos ----------------------------------------------------------------------------------


def load_photo(data: bytes, name: str = "upload") -> np.ndarray:
    """An uploaded file's bytes as RGB uint8; AppError when it is not a usable image."""
    from synthface.images import decode_image_rgb

    try:
        return decode_image_rgb(data, max_pixels=MAX_UPLOAD_PIXELS)
    except ValueError as error:
        raise AppError(f"{name}: {error} (expected a photo: JPEG, PNG, WebP, BMP or TIFF)") from None


def demo_photo(name: str) -> np.ndarray:
    """One of the bundled public-domain portraits (astronaut, grace_hopper.jpg)."""
    from synthface.generation.sources.demo import demo_photo as load

    return load(name)


def jpeg_quality_of(data: bytes | None) -> int:
    """The JPEG quality an upload was saved with (100 when not a JPEG), so masks get the photo's own compression."""
    from synthface.generation.capture import source_jpeg_quality

    return source_jpeg_quality(io.BytesIO(data)) if data else 100


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB or single-channel uint8 image (for downloads)."""
    import cv2

    array = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def detect_faces(rgb: np.ndarray, detector) -> list:
    """The faces MediaPipe finds (largest first); AppError when there is none."""
    faces = detector.detect(rgb)
    if not faces:
        raise AppError("no face found in this photo: use a photo with a face seen from the front or the side, "
                       "at least about 40 pixels across")
    return faces


# --- mask studio -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudioSettings:
    """The studio's controls: what to put on each face."""

    mask_type: str = "surgical"
    wear_style: str = "proper"
    palette: str = PALETTE_OWN  # a palette name from the library, or PALETTE_OWN
    pattern: str = PATTERN_OWN  # a pattern the type lists, or PATTERN_OWN
    lighting: str = LIGHTING_DEFAULT  # a preset name, LIGHTING_DEFAULT or LIGHTING_OFF
    seed: int = 0
    image_size: int = 224  # the generator's default crop side


@dataclass
class StudioFace:
    """One face of the photo: masked, unmasked twin, occlusion map, and what was drawn."""

    index: int
    image: np.ndarray | None = None  # the masked face (aligned crop, as the generator writes it)
    twin: np.ndarray | None = None  # the same crop and light without the mask
    occlusion: np.ndarray | None = None  # uint8, 255 = covered by the mask
    occluded_fraction: float = 0.0
    metadata: dict | None = None  # the mask_* and lighting_* columns this sample would have
    error: str = ""  # why the fit failed (the other faces are still shown)


def load_library(mask_dirs: tuple[str, ...] = ()):
    """The mask library: bundled types plus user folders (`synthface app --masks DIR`)."""
    from synthface.maskfit import MaskDefinitionError, MaskLibrary

    try:
        return MaskLibrary.load([Path(d) for d in mask_dirs])
    except MaskDefinitionError as error:
        raise AppError(f"mask folder: {error}") from None


def studio_choices(library, mask_type: str) -> dict[str, list[str]]:
    """The options a type offers: its wear styles, every palette of the library, its patterns, the lighting presets."""
    from synthface.generation.lighting import PRESETS

    definition = library.get(mask_type)
    patterns = [name for name, weight in definition.patterns.items() if weight > 0]
    return {
        "wear_style": list(definition.wear_styles) if definition.is_mask else ["proper"],
        "palette": [PALETTE_OWN, *sorted(library.palettes)],
        "pattern": [PATTERN_OWN, *patterns] if len(patterns) > 1 else patterns,
        "lighting": [LIGHTING_DEFAULT, *PRESETS, LIGHTING_OFF],
    }


def _appearance(settings: StudioSettings):
    from synthface.maskfit import MaskAppearance

    palettes = None if settings.palette == PALETTE_OWN else {settings.palette: 1.0}
    pattern_probability = None
    if settings.pattern == "plain":
        pattern_probability = 0.0
    elif settings.pattern != PATTERN_OWN:
        pattern_probability = 1.0
    return MaskAppearance(palettes=palettes, pattern_probability=pattern_probability)


def _lighting(settings: StudioSettings):
    from synthface.generation.lighting import LightingConfig

    if settings.lighting == LIGHTING_OFF:
        return LightingConfig(enabled=False)
    if settings.lighting == LIGHTING_DEFAULT:
        return LightingConfig()
    return LightingConfig(preset=settings.lighting)


def render_studio(rgb: np.ndarray, faces: list, library, settings: StudioSettings, jpeg_quality: int = 100) -> list[StudioFace]:
    """Each face aligned as the generator aligns it, then masked and lit by the generator's own functions.

    Draws happen in the generator's order (lighting, then the mask) from a generator seeded
    with (seed, face index), so the same settings always give the same pixels.
    """
    from synthface.generation.align import align_face
    from synthface.generation.capture import estimate_capture
    from synthface.generation.lighting import sample_lighting
    from synthface.generation.render import mask_and_light
    from synthface.maskfit import MaskFitError, UnknownMaskError, sample_mask_params
    from synthface.scenario import FaceQuality

    try:
        definition = library.get(settings.mask_type)
    except UnknownMaskError as error:
        raise AppError(str(error)) from None
    quality = FaceQuality()
    lighting = _lighting(settings)
    appearance = _appearance(settings)
    wear = settings.wear_style if definition.is_mask else "proper"
    results = []
    for index, face in enumerate(faces):
        aligned = align_face(rgb, face, settings.image_size, quality.crop_margin, min_margin=quality.min_margin,
                             max_padding=quality.max_padding)
        capture = estimate_capture(aligned.image, aligned.points, jpeg_quality)
        rng = np.random.default_rng([settings.seed, index])
        light = sample_lighting(lighting, rng)
        try:
            params = sample_mask_params(definition, appearance, wear, rng)
        except ValueError as error:  # a wear style or palette the type does not take
            raise AppError(str(error)) from None
        if settings.pattern not in (PATTERN_OWN, params.pattern) and settings.pattern in definition.patterns:
            params = replace(params, pattern=settings.pattern)  # one printed pattern among several the type lists
        try:
            image, rendered = mask_and_light(aligned, definition, params, light, capture)
        except MaskFitError as error:
            results.append(StudioFace(index, error=f"the mask could not be fitted to this face: {error}"))
            continue
        twin, _ = mask_and_light(aligned, None, None, light, capture)
        metadata = {"mask_type": definition.name, "wear_style": wear, **params.as_metadata(), **light.as_metadata()}
        results.append(StudioFace(index, image, twin, rendered.occlusion.astype(np.uint8) * 255,
                                  float(rendered.occluded_fraction), metadata))
    return results


def scenario_fragment(settings: StudioSettings, library) -> str:
    """The scenario YAML that makes samples like the studio's: same type, wear style, palette, pattern and light.

    Each generated sample draws its own colour jitter, size and light within these settings
    from its own seed, as in any generated dataset.
    """
    import yaml

    definition = library.get(settings.mask_type)
    mask: dict = {}
    if definition.is_mask:
        mask.update(probability=1.0, types={definition.name: 1.0}, wear_styles={settings.wear_style: 1.0})
    else:  # a confuser rides on unmasked faces
        mask.update(probability=0.0, confusers={definition.name: 1.0})
    appearance = _appearance(settings).model_dump(exclude_defaults=True)
    if appearance:
        mask["appearance"] = appearance
    fragment: dict = {"seed": settings.seed, "image_size": settings.image_size, "mask": mask}
    lighting = _lighting(settings).model_dump(exclude_defaults=True)
    if lighting:
        fragment["lighting"] = lighting
    notes = [f"# synthface mask studio: {definition.name}, {settings.wear_style}, lighting {settings.lighting}, seed {settings.seed}",
             "# Paste into a scenario YAML (see docs/scenarios.md); each sample draws its colour jitter, size and",
             "# light within these settings from its own seed."]
    if settings.pattern not in (PATTERN_OWN, "plain") and len([p for p in definition.patterns if p != "plain"]) > 1:
        notes.append(f"# pattern_probability 1 prints a pattern on every mask, drawn among {definition.name}'s "
                     f"patterns by their weights ({settings.pattern} in the studio).")
    if definition.source and not Path(definition.source).is_relative_to(_bundled_masks()):
        notes.append(f"# {definition.name} is a user type: run with --masks {Path(definition.source).parent}")
    return "\n".join(notes) + "\n" + yaml.safe_dump(fragment, sort_keys=False, default_flow_style=False)


def _bundled_masks() -> Path:
    from synthface.paths import bundled_dir

    return bundled_dir("masks").resolve()


# --- predict ---------------------------------------------------------------------------------


def load_predictor(checkpoint: str | Path, device: str = "cpu"):
    """A FacePredictor for `checkpoint`; AppError saying what is wrong with the file."""
    from synthface.evaluation.predict import FacePredictor
    from synthface.landmarks import LandmarkerError
    from synthface.training.checkpoint import CheckpointError

    path = Path(str(checkpoint)).expanduser()
    if not str(checkpoint).strip():
        raise AppError("give a checkpoint: a .pt file written by `synthface train`")
    try:
        return FacePredictor(path, device=device)
    except (CheckpointError, LandmarkerError) as error:
        raise AppError(str(error)) from None
    except (RuntimeError, KeyError, TypeError, ValueError) as error:  # a dict that looks like one but does not fit OAMNet
        raise AppError(f"{path}: not a synthface model checkpoint of a known kind ({type(error).__name__}: "
                       f"{str(error).splitlines()[0][:200]})") from None


def attention_overlay(result) -> np.ndarray | None:
    """The face crop with the model's attention map drawn over it (as evaluation draws it); None without attention."""
    from synthface.evaluation.saliency import overlay

    return None if result.attention is None else overlay(result.crop, result.attention)


def probability_table(entry: dict) -> pd.DataFrame:
    """One row per (head, class): the probabilities `synthface predict` prints, most likely first per head."""
    from synthface.evaluation.metrics import CLASSIFICATION_HEADS

    rows = []
    for head in CLASSIFICATION_HEADS:
        ranked = sorted(entry[head]["probabilities"].items(), key=lambda item: -item[1])
        rows += [{"head": head, "class": name, "probability": p} for name, p in ranked]
    return pd.DataFrame(rows)


def predict_photo(predictor, rgb: np.ndarray) -> list:
    """Every face's prediction with its crop and attention map; AppError when no face is found."""
    found = predictor.explain(rgb)
    if not found:
        raise AppError("no face found in this photo")
    return found


# --- dataset browser -------------------------------------------------------------------------

# Metadata column -> label in the filter panel, in the order shown.
FILTER_COLUMNS = {
    "split": "split",
    "age_bin": "age bin",
    "gender": "gender",
    "race": "race",
    "mask_type": "mask type",
    "wear_style": "wear style",
    "occluder": "occluder",
    "lighting_preset": "lighting preset",
}


def open_dataset(folder: str | Path) -> pd.DataFrame:
    """A generated dataset's metadata table; AppError when the folder is missing, unreadable or not a dataset."""
    from synthface.dataset import DatasetError, read_metadata

    root = Path(str(folder)).expanduser()
    if not str(folder).strip():
        raise AppError("give a dataset folder written by `synthface generate`")
    if not root.is_dir():
        raise AppError(f"{root}: no such folder")
    try:
        table = read_metadata(root)
    except DatasetError as error:
        raise AppError(str(error)) from None
    except PermissionError:
        raise AppError(f"{root}: cannot read the folder or its metadata (permission denied)") from None
    except (OSError, ValueError) as error:  # a truncated parquet, a CSV that is not one
        raise AppError(f"{root}: the metadata table cannot be read: {error}") from None
    if "file_name" not in table.columns or "sample_id" not in table.columns:
        raise AppError(f"{root}: the metadata has no file_name/sample_id columns; is this a synthface dataset?")
    return table


def primary_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The samples without their unmasked twins (twins are shown beside their sample)."""
    from synthface.dataset import TWIN_SUFFIX

    return table[~table["sample_id"].astype(str).str.endswith(TWIN_SUFFIX)]


def filter_options(table: pd.DataFrame) -> dict[str, list[str]]:
    """Filter column -> the values present (sorted), for the columns this dataset has."""
    rows = primary_rows(table)
    return {column: sorted(rows[column].dropna().astype(str).unique()) for column in FILTER_COLUMNS if column in rows.columns}


def apply_filters(table: pd.DataFrame, chosen: dict[str, list[str]]) -> pd.DataFrame:
    """The samples (twins left out) whose values are among the chosen ones; an empty choice keeps everything."""
    rows = primary_rows(table)
    for column, values in chosen.items():
        if values and column in rows.columns:
            rows = rows[rows[column].astype(str).isin(values)]
    return rows.reset_index(drop=True)


def page_of(rows: pd.DataFrame, page: int, per_page: int) -> tuple[pd.DataFrame, int]:
    """(the rows of page `page` (1-based, clamped), the number of pages)."""
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(1, page), pages)
    return rows.iloc[(page - 1) * per_page: page * per_page], pages


@dataclass
class SampleView:
    """What the grid shows for one sample: its image, its twin and occlusion map when it has them."""

    sample_id: str
    caption: str
    image: Path
    twin: Path | None
    occlusion: Path | None


def sample_views(root: str | Path, rows: pd.DataFrame, table: pd.DataFrame) -> list[SampleView]:
    """The files of each row; twins are found by pair_id in the full table."""
    from synthface.generation.preview import caption

    root = Path(str(root)).expanduser()
    twins: dict[str, str] = {}
    if "pair_id" in table.columns:
        unmasked = table[(table["pair_id"].fillna("").astype(str) != "") & (table["mask_type"].astype(str) == "none")]
        twins = dict(zip(unmasked["pair_id"].astype(str), unmasked["file_name"].astype(str)))
    views = []
    for _, row in rows.iterrows():
        pair = str(row.get("pair_id") or "")
        twin = twins.get(pair) if pair and str(row.get("mask_type")) != "none" else None
        occlusion = str(row.get("occlusion_file") or "")
        try:
            text = " · ".join(caption(row))
        except (KeyError, TypeError, ValueError):  # a dataset written before some columns existed
            text = str(row["sample_id"])
        views.append(SampleView(str(row["sample_id"]), f"{row['sample_id']}: {text}", root / str(row["file_name"]),
                                root / twin if twin else None, root / occlusion if occlusion else None))
    return views


def read_report(folder: str | Path) -> dict | None:
    """The dataset's report.json (targets vs achieved), or None when the folder has none."""
    path = Path(str(folder)).expanduser() / "report.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AppError(f"{path}: cannot read the balance report: {error}") from None


def balance_chart(report: dict):
    """A matplotlib figure: per attribute, target vs achieved share of each label (report.json's `attributes`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    attributes = {name: labels for name, labels in report.get("attributes", {}).items() if labels}
    if not attributes:
        raise AppError("the report has no target-vs-achieved table")
    columns = min(3, len(attributes))
    rows = math.ceil(len(attributes) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis, (name, labels) in zip(axes.flat, attributes.items()):
        names = list(labels)
        positions = np.arange(len(names))
        target = [labels[label]["target"] for label in names]
        achieved = [labels[label]["achieved"] for label in names]
        axis.bar(positions - 0.2, target, 0.4, label="target", color="#9aa5b1")
        axis.bar(positions + 0.2, achieved, 0.4, label="achieved", color="#2f6fc0")
        axis.set_xticks(positions, names, rotation=30 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center",
                        fontsize=8)
        axis.set_title(name, fontsize=10)
        axis.set_ylim(0, max(1e-6, *target, *achieved) * 1.15)
        axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    for axis in list(axes.flat)[len(attributes):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return figure
