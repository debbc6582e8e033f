"""The on-disk dataset format that `synthface generate` writes and training/evaluation read.

Layout (see docs/dataset-format.md)::

    OUT/images/<sample_id>.jpg        OUT/occlusion/<sample_id>.png   (optional)
    OUT/metadata.csv + samples.parquet    one row per image (the same table), `file_name` relative to OUT
    OUT/scenario.yaml  OUT/report.json  OUT/report.md  OUT/preview.jpg  OUT/skipped.parquet

The metadata follows Hugging Face `imagefolder` conventions (`file_name` column), so
`datasets.load_dataset("imagefolder", data_dir=OUT)` reads it as well as pandas does.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from synthface.errors import UserError
from synthface.taxonomy import GENDERS, races

METADATA_CSV = "metadata.csv"
# The typed copy of metadata.csv. Not "metadata.parquet": Hugging Face imagefolder refuses a
# folder with two metadata files of different formats.
METADATA_PARQUET = "samples.parquet"
SKIPPED_PARQUET = "skipped.parquet"  # the pool's skipped inputs (path, source, reason); report.md summarises them
IMAGES_DIR = "images"
OCCLUSION_DIR = "occlusion"
TWIN_SUFFIX = "-unmasked"  # a masked sample's unmasked twin: sample_id + TWIN_SUFFIX

# Column -> dtype. Lighting parameters are the `lighting_*` columns and the source photo's capture
# estimates the `source_*` ones (synthface.generation.capture: blur, noise, JPEG quality, exposure, white
# balance); their sets follow those models, so they are not listed here. Labels are lower-case strings (taxonomy.py).
COLUMNS: dict[str, str] = {
    "file_name": "string",  # images/<sample_id>.jpg, relative to the dataset root
    "sample_id": "string",
    "split": "string",  # train / val / test
    "source_dataset": "string",  # utkface / fairface / table / demo
    "source_file": "string",
    "source_id": "string",  # stable id of the real face; one split per source_id
    "age": "float64",  # years (FairFace: the midpoint of its bin)
    "age_bin": "string",  # the scenario's bin, e.g. "20-29"
    "gender": "string",  # male / female
    "race": "string",  # a label of race_taxonomy
    "race_taxonomy": "string",  # utkface5 / fairface7
    "mask": "int64",  # binary label of a real mask, per the scenario's mask.binary_label (default: it covers the mouth)
    "mask_worn": "int64",  # 1 when a real mask is on the face in any wear style (what balance targets count)
    "mask_state": "string",  # none / correct / incorrect (nose_exposed, chin, strap_loose are incorrect)
    "mask_type": "string",  # "none" when unmasked; confusers keep their type here
    "mask_color": "string",  # "#rrggbb" or "none"
    "wear_style": "string",  # proper / nose_exposed / chin / strap_loose / none
    "occluder": "string",  # non-mask occluder type (scarf, hand...), "none" otherwise
    "mask_color2": "string",  # second colour of a pattern, "#rrggbb" or "none"
    "mask_pattern": "string",  # plain / stripes / dots / checks / floral...
    "mask_pattern_scale": "float64",
    "mask_texture": "float64",  # fabric texture strength
    "mask_size": "float64",  # relative to the face
    "mask_offset": "float64",  # vertical shift, face units
    "mask_loose_side": "string",  # strap_loose: which strap hangs loose; "none" otherwise
    "occluded_fraction": "float64",  # share of the face area the rendered mask covers
    "occlusion_file": "string",  # occlusion/<sample_id>.png or ""
    "pair_id": "string",  # shared by a masked sample and its unmasked twin, else ""
    "head_yaw": "float64",  # degrees, from the landmarker's transformation matrix
    "head_pitch": "float64",
    "head_roll": "float64",
    "source_faces": "int64",  # faces found in the source photo; the largest is used
    "crop_margin": "float64",  # context kept around the face oval per side (faces.crop_margin, less where the photo lacks it)
    "foreground_fraction": "float64",  # share of the lower face hidden by an object in front in the photo (mask drawn behind it)
    "seed": "int64",
}
REQUIRED_FOR_TRAINING = ("file_name", "split", "age", "gender", "race", "race_taxonomy", "mask")


class DatasetError(UserError, ValueError):
    """A dataset on disk does not follow the format; the message says what to fix."""


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside `path`, open for writing; it replaces `path` when the block ends
    without error, so readers see either the old content or the whole new one.

    Its permissions follow the umask as a plain open() would (mkstemp's own are 0600, which
    hid datasets and checkpoints from the user's group)."""
    path = Path(path)
    with staged_file(path) as (handle, tmp):
        yield handle
        handle.close()
        os.replace(tmp, path)


def typed_table(table: pd.DataFrame) -> pd.DataFrame:
    """Documented columns first, in COLUMNS order and with their dtypes; the other columns after, as
    they come."""
    ordered = [c for c in COLUMNS if c in table.columns] + [c for c in table.columns if c not in COLUMNS]
    table = table[ordered].reset_index(drop=True)
    for name, dtype in COLUMNS.items():
        if name in table.columns:
            table[name] = table[name].astype(dtype)
    return table


def remove_staged_leftovers(folder: Path) -> int:
    """Delete the temporaries that `staged_file` left in `folder` when its writer was killed
    (SIGKILL, a lost Ray worker). Call it only while holding the folder's run lock: a live
    writer's temporary must not be removed. Returns how many were removed."""
    removed = 0
    for leftover in Path(folder).glob(".*.tmp") if Path(folder).is_dir() else ():
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def staged_file(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """(open handle, temporary path) of a file staged beside `path`; removed if the block fails
    or does not move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp
    finally:
        tmp.unlink(missing_ok=True)  # a no-op once os.replace moved it


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old content or the whole new one."""
    with atomic_file(path) as handle:
        handle.write(data)


def write_metadata(root: Path, table: pd.DataFrame) -> None:
    """Write metadata.csv and samples.parquet as one step.

    Both are staged in full first (an error leaves the old pair untouched). Then the old parquet
    copy, which readers prefer, is removed, the CSV renamed into place, then the parquet: at every
    instant readers (metadata_file) find either the old table or the new one, never the new CSV
    beside an old parquet.
    """
    root = Path(root)
    table = table.reset_index(drop=True)
    parquet = io.BytesIO()
    table.to_parquet(parquet, index=False)
    with staged_file(root / METADATA_CSV) as (csv_handle, csv_tmp), staged_file(root / METADATA_PARQUET) as (pq_handle, pq_tmp):
        csv_handle.write(table.to_csv(index=False).encode())
        pq_handle.write(parquet.getvalue())
        csv_handle.close()
        pq_handle.close()
        (root / METADATA_PARQUET).unlink(missing_ok=True)
        os.replace(csv_tmp, root / METADATA_CSV)
        os.replace(pq_tmp, root / METADATA_PARQUET)


def metadata_file(root: Path) -> Path:
    """The dataset's metadata table: the parquet copy if present, else the CSV."""
    root = Path(root)
    for name in (METADATA_PARQUET, METADATA_CSV):
        if (root / name).exists():
            return root / name
    raise DatasetError(f"{root}: no {METADATA_PARQUET} or {METADATA_CSV}; is this a synthface dataset?")


def read_metadata(root: Path, split: str | None = None) -> pd.DataFrame:
    """Read a dataset's metadata (parquet if present, else CSV), optionally one split."""
    root = Path(root)
    file = metadata_file(root)
    if file.suffix == ".parquet":
        table = pd.read_parquet(file)
    else:
        table = pd.read_csv(file, keep_default_na=False, na_values=[""])
    if split is not None:
        if "split" not in table.columns:
            raise DatasetError(f"{root}: metadata has no 'split' column")
        table = table[table["split"] == split].reset_index(drop=True)
    return table


def face_ids(table: pd.DataFrame) -> list[str]:
    """The distinct real faces (`source_id`) of a metadata table, sorted; [] when it has no such column."""
    if "source_id" not in table.columns:
        return []
    return sorted({str(value) for value in table["source_id"].dropna() if str(value)})


def validate_for_training(table: pd.DataFrame, root: Path | str = "dataset") -> str:
    """Check the columns and labels a model needs; return the race taxonomy.

    Raises DatasetError naming the dataset, the column and the offending values.
    """
    missing = [c for c in REQUIRED_FOR_TRAINING if c not in table.columns]
    if missing:
        raise DatasetError(f"{root}: metadata lacks required column(s) {missing}; expected {list(REQUIRED_FOR_TRAINING)}")
    taxonomies = sorted(table["race_taxonomy"].dropna().unique())
    if len(taxonomies) != 1:
        raise DatasetError(f"{root}: expected one race_taxonomy, found {taxonomies}")
    taxonomy = taxonomies[0]
    known_races = races(taxonomy)
    bad_race = sorted(set(table["race"].dropna()) - set(known_races))
    if bad_race:
        raise DatasetError(f"{root}: unknown race label(s) {bad_race} for taxonomy {taxonomy}; expected one of {list(known_races)}")
    bad_gender = sorted(set(table["gender"].dropna()) - set(GENDERS))
    if bad_gender:
        raise DatasetError(f"{root}: unknown gender label(s) {bad_gender}; expected one of {list(GENDERS)}")
    bad_mask = sorted(set(table["mask"].dropna()) - {0, 1})
    if bad_mask:
        raise DatasetError(f"{root}: 'mask' must be 0 or 1, found {bad_mask}")
    return taxonomy


def read_split(root: Path, split: str) -> tuple[pd.DataFrame, str]:
    """One split, validated for a model: (its rows, the race taxonomy).

    Raises DatasetError for an empty split (naming the splits present) or for listed images
    that the dataset does not hold (in whichever format, see synthface.formats).
    """
    root = Path(root)
    table = read_metadata(root)
    taxonomy = validate_for_training(table, root)
    part = table[table["split"] == split].reset_index(drop=True)
    if part.empty:
        found = sorted(table["split"].dropna().unique())
        raise DatasetError(f"{root}: split {split!r} has no rows (splits present: {found})")
    from synthface.paths import UnsafePathError, inside

    for column in ("file_name", "occlusion_file"):  # a table is data: it may not point outside its dataset
        for name in part[column].dropna() if column in part.columns else ():
            try:
                inside(root, str(name))
            except UnsafePathError as error:
                raise DatasetError(f"{root}: metadata {column} {name!r} is outside the dataset folder ({error})") from None
    check_images(root, part)
    return part, taxonomy


def check_images(root: Path, table: pd.DataFrame) -> None:
    """Raise DatasetError unless every image the rows list is in the dataset (files, or packed
    files of the webdataset/parquet formats)."""
    from synthface.formats import open_dataset

    missing = open_dataset(root).missing(table["file_name"])
    if missing:
        raise DatasetError(f"{root}: {len(missing)} image file(s) listed in the metadata do not exist, e.g. {missing[:3]}")
