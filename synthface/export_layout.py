"""A synthface dataset as class folders, `OUT/<split>/<label>/<file>`, for tools that read labels
from folder names: torchvision `ImageFolder`, Keras `image_dataset_from_directory`, fastai, ...

Files are relative symbolic links into the dataset by default (no extra disk space, and the
layout moves with the dataset when both move together), or copies with `copy=True`. Each file
is named after the source face it was made from, then the sample id (one face can give several
samples): `utk_25_0_1_20170116.jpg` -> `25_0_1_20170116__mixed_50-000042.jpg`. `layout.csv`
maps every file back to its sample id and metadata row.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from synthface.dataset import DatasetError, atomic_write_bytes, read_metadata

SPLITS = ("train", "val", "test")
LAYOUT_CSV = "layout.csv"


def _mask_label(row: pd.Series) -> str:
    return "mask" if int(row["mask"]) == 1 else "no_mask"


# --by NAME -> how a metadata row becomes a folder name.
LABELLERS = {
    "mask": _mask_label,
    "mask_state": lambda row: str(row["mask_state"]),
    "gender": lambda row: str(row["gender"]),
    "race": lambda row: str(row["race"]),
    "age_bin": lambda row: str(row["age_bin"]),
    "mask_type": lambda row: str(row["mask_type"]),
}
REQUIRED_COLUMN = {"mask": "mask", "mask_state": "mask_state", "gender": "gender", "race": "race", "age_bin": "age_bin",
                   "mask_type": "mask_type"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class LayoutError(DatasetError):
    """The layout cannot be written; the message says why."""


@dataclass
class LayoutOptions:
    by: str = "mask"
    copy: bool = False  # False: relative symlinks
    overwrite: bool = False
    splits: tuple[str, ...] = SPLITS


@dataclass
class LayoutResult:
    out: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> files
    files: int = 0


def safe_name(text: str) -> str:
    """A file or folder name made of letters, digits and ._+- only (never '.', '..' or empty)."""
    name = _UNSAFE.sub("_", text).strip("._") or "unnamed"
    return name


def _source_stem(row: pd.Series) -> str:
    source = row.get("source_file")
    if isinstance(source, str) and source:
        return safe_name(Path(source.replace("\\", "/")).stem)
    return "face"


def export_layout(dataset: Path, out: Path, options: LayoutOptions | None = None) -> LayoutResult:
    """Write `out/<split>/<label>/<source face>__<sample id><ext>` for every image of `dataset`."""
    options = options or LayoutOptions()
    if options.by not in LABELLERS:
        raise LayoutError(f"--by {options.by}: expected one of {', '.join(LABELLERS)}")
    dataset, out = Path(dataset), Path(out)
    table = read_metadata(dataset)
    from synthface.formats import detect

    packed = detect(dataset).name
    if packed != "folder":  # links and copies need image files; a packed dataset has none
        raise LayoutError(f"{dataset} is a {packed} dataset (images inside data-* files); export-layout needs the folder "
                          "format: generate it again with --format folder (the same scenario and seed give the same images)")
    column = REQUIRED_COLUMN[options.by]
    for needed in ("file_name", "split", "sample_id", column):
        if needed not in table.columns:
            raise LayoutError(f"{dataset}: metadata has no {needed!r} column, needed for --by {options.by}")
    root = dataset.resolve()
    if out.resolve() == root or root in out.resolve().parents:
        raise LayoutError(f"--out {out} lies inside the dataset {dataset}; choose a folder outside it")
    if out.exists() and any(out.iterdir()):
        if not options.overwrite:
            raise LayoutError(f"{out} is not empty: pass --overwrite to replace it")
        for split in SPLITS:
            shutil.rmtree(out / split, ignore_errors=True)
        (out / LAYOUT_CSV).unlink(missing_ok=True)
    labeller = LABELLERS[options.by]
    result = LayoutResult(out)
    rows = []
    for _, row in table.iterrows():
        split = str(row["split"])
        if split not in options.splits:
            continue
        source = (root / str(row["file_name"])).resolve()
        if root not in source.parents:
            raise LayoutError(f"{dataset}: file_name {row['file_name']!r} points outside the dataset")
        if not source.is_file():
            raise LayoutError(f"{dataset}: {row['file_name']} is listed in the metadata but does not exist")
        label = safe_name(labeller(row))
        name = f"{_source_stem(row)}__{safe_name(str(row['sample_id']))}{source.suffix.lower()}"
        target = out / split / label / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if options.copy:
            shutil.copy2(source, target)
        else:
            os.symlink(os.path.relpath(source, target.parent), target)
        result.counts.setdefault(split, {}).setdefault(label, 0)
        result.counts[split][label] += 1
        result.files += 1
        rows.append({"file": str(target.relative_to(out)), "split": split, "label": label,
                     "sample_id": row["sample_id"], "source_file": row.get("source_file", ""),
                     "dataset_file": row["file_name"]})
    if not rows:
        raise LayoutError(f"{dataset}: no image in the splits {list(options.splits)}")
    atomic_write_bytes(out / LAYOUT_CSV, pd.DataFrame(rows).to_csv(index=False).encode())
    return result
