"""Small, valid synthface datasets for tests, built without the generator.

`make_tiny_dataset` crops the two real face photos that ship with scikit-image and
matplotlib (astronaut, grace_hopper), varies crop, flip and colour, draws a filled
polygon "mask" over the lower face of masked rows, and writes everything in the on-disk
format of `synthface.dataset` (images/, optional occlusion/, metadata.csv + .parquet).
Training and evaluation tests use it so they need neither MediaPipe nor the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from synthface.dataset import COLUMNS, IMAGES_DIR, OCCLUSION_DIR, atomic_write_bytes, write_metadata
from synthface.generation.sources.demo import demo_photo
from synthface.taxonomy import GENDERS, age_bin_label, races

SPLITS = ("train", "val", "test")
MASK_TYPES = ("surgical", "cloth", "n95")


@dataclass(frozen=True)
class _Photo:
    """A real photo with a hand-measured face: crop centre/size and a lower-face polygon (pixels)."""

    name: str
    centre: tuple[float, float]
    crop_size: float
    lower_face: tuple[tuple[float, float], ...]  # from below the eyes, over the nose, to the chin


_PHOTOS = (
    _Photo("astronaut", (225.0, 112.0), 190.0,
           ((180, 118), (270, 118), (268, 150), (245, 178), (205, 178), (182, 150))),
    _Photo("grace_hopper.jpg", (255.0, 232.0), 260.0,
           ((175, 225), (335, 225), (330, 280), (295, 320), (215, 320), (180, 280))),
)


def _race_tint(race_index: int, n_races: int) -> np.ndarray:
    """A per-race colour gain, so fixtures carry a learnable signal for the race head."""
    angle = 2 * np.pi * race_index / max(n_races, 1)
    return 1.0 + 0.25 * np.array([np.cos(angle), np.cos(angle + 2.1), np.cos(angle + 4.2)])


def _age_bin(age: float) -> str:
    low = int(age) // 10 * 10
    return age_bin_label(low, low + 9)


def make_tiny_dataset(
    root: Path | str,
    n_per_split: int = 8,
    image_size: int = 64,
    paired: bool = False,
    with_occlusion: bool = False,
    race_taxonomy: str = "utkface5",
    seed: int = 0,
) -> Path:
    """Write a small dataset in synthface's format under `root` and return `root`.

    Each split gets `n_per_split` rows (rounded up to even when `paired`). Masked rows have a
    filled polygon over the lower face; with `with_occlusion` its exact pixels are saved as
    `occlusion/<sample_id>.png` (255 = covered). With `paired`, rows come in twins: a masked
    image and the same crop unmasked, sharing `pair_id` and `source_id`. Labels are random
    (race also tints the image, so a model has something to learn); `occluded_fraction` is the
    covered share of the whole crop, which is mostly face.
    """
    root = Path(root)
    (root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    if with_occlusion:
        (root / OCCLUSION_DIR).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    race_labels = races(race_taxonomy)
    photos = {photo.name: demo_photo(photo.name) for photo in _PHOTOS}

    rows: list[dict] = []
    for split in SPLITS:
        n_faces = (n_per_split + 1) // 2 if paired else n_per_split
        for face in range(n_faces):
            photo = _PHOTOS[int(rng.integers(len(_PHOTOS)))]
            race_index = int(rng.integers(len(race_labels)))
            labels = {
                "age": float(rng.integers(1, 91)),
                "gender": GENDERS[int(rng.integers(len(GENDERS)))],
                "race": race_labels[race_index],
            }
            geometry = _random_geometry(photo, image_size, rng)
            gain = _race_tint(race_index, len(race_labels)) * rng.uniform(0.85, 1.15)
            source_id = f"{split}-{face:04d}"
            if paired:
                variants = [True, False]
            else:
                variants = [bool(rng.random() < 0.5)]
            pair_id = f"pair-{source_id}" if paired else ""
            mask_color = "#" + "".join(f"{int(c):02x}" for c in rng.integers(40, 255, size=3))
            mask_type = MASK_TYPES[int(rng.integers(len(MASK_TYPES)))]
            for masked in variants:
                sample_id = f"{source_id}-{'m' if masked else 'u'}"
                image, occlusion = _render(photos[photo.name], photo, geometry, image_size, gain,
                                           mask_color if masked else None)
                _write_png_or_jpg(root / IMAGES_DIR / f"{sample_id}.jpg", image)
                occlusion_file = ""
                if with_occlusion:
                    occlusion_file = f"{OCCLUSION_DIR}/{sample_id}.png"
                    _write_png_or_jpg(root / occlusion_file, occlusion)
                rows.append({
                    "file_name": f"{IMAGES_DIR}/{sample_id}.jpg",
                    "sample_id": sample_id,
                    "split": split,
                    "source_dataset": "demo",
                    "source_file": photo.name,
                    "source_id": source_id,
                    **labels,
                    "age_bin": _age_bin(labels["age"]),
                    "race_taxonomy": race_taxonomy,
                    "mask": int(masked),
                    "mask_type": mask_type if masked else "none",
                    "mask_color": mask_color if masked else "none",
                    "wear_style": "proper" if masked else "none",
                    "occluder": "none",
                    "occluded_fraction": float((occlusion > 0).mean()),
                    "occlusion_file": occlusion_file,
                    "pair_id": pair_id,
                    "head_yaw": 0.0,
                    "head_pitch": 0.0,
                    "head_roll": 0.0,
                    "seed": seed,
                    "lighting_gain": float(gain.mean()),
                })
    table = pd.DataFrame(rows)
    table = table.astype({column: dtype for column, dtype in COLUMNS.items() if column in table.columns})
    write_metadata(root, table)
    return root


def _random_geometry(photo: _Photo, image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """A photo->output affine (jittered crop around the face) and whether to flip."""
    size = photo.crop_size * rng.uniform(0.92, 1.08)
    cx = photo.centre[0] + rng.uniform(-0.05, 0.05) * size
    cy = photo.centre[1] + rng.uniform(-0.05, 0.05) * size
    scale = image_size / size
    matrix = np.array([[scale, 0.0, image_size / 2 - scale * cx], [0.0, scale, image_size / 2 - scale * cy]])
    return matrix, bool(rng.random() < 0.5)


def _render(
    photo_rgb: np.ndarray,
    photo: _Photo,
    geometry: tuple[np.ndarray, bool],
    image_size: int,
    gain: np.ndarray,
    mask_color: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop, tint and (when masked) draw the occluder; return RGB image and its occlusion map."""
    matrix, flip = geometry
    image = cv2.warpAffine(photo_rgb, matrix, (image_size, image_size), flags=cv2.INTER_AREA,
                           borderMode=cv2.BORDER_REFLECT_101)
    image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    occlusion = np.zeros((image_size, image_size), np.uint8)
    if mask_color is not None:
        points = np.asarray(photo.lower_face, np.float64)
        points = points @ matrix[:, :2].T + matrix[:, 2]
        polygon = np.round(points).astype(np.int32)
        cv2.fillPoly(occlusion, [polygon], 255)
        rgb = tuple(int(mask_color[i:i + 2], 16) for i in (1, 3, 5))
        image[occlusion > 0] = rgb
    if flip:
        image, occlusion = image[:, ::-1].copy(), occlusion[:, ::-1].copy()
    return image, occlusion


def _write_png_or_jpg(path: Path, array: np.ndarray) -> None:
    """Encode by extension (JPEG for images, PNG for occlusion maps) and write atomically."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix, array)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write_bytes(path, encoded.tobytes())


# --- a real browser for the app's tests and screenshots --------------------------------------

CHROMIUM_ENV_VAR = "SYNTHFACE_CHROMIUM"
# Headless Chromium on a machine without a network or a screen: no sandbox (CI runs as root),
# no GPU, and none of the background requests that a closed network refuses.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-quic")


def chromium_executable() -> str | None:
    """The system Chromium Playwright drives ($SYNTHFACE_CHROMIUM, else chromium on PATH); None if absent.

    Playwright's own browser download is never used: CI installs Debian's chromium package.
    """
    import os
    import shutil

    for candidate in (os.environ.get(CHROMIUM_ENV_VAR), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None
