"""FairFace: a label CSV (`file,age,gender,race,...`) next to its image folder.

FairFace gives ages as bins ("0-2", "3-9", ..., "60-69", "more than 70"): a record's `age` is
the bin's midpoint and `age_range` the bin itself. Race uses the fairface7 taxonomy.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthface.sources.base import SourceError, SourceScan, SourceSpec, require_path
from synthface.sources.labels import scan_label_rows

TAXONOMY = "fairface7"
STANDARD_LABEL_FILES = ("fairface_label_train.csv", "fairface_label_val.csv")
REQUIRED_COLUMNS = ("file", "age", "gender", "race")


def default_label_files(image_root: Path) -> list[Path]:
    """FairFace's own label files, looked for in the image folder, then in its parent."""
    for folder in (image_root, image_root.parent):
        found = [folder / name for name in STANDARD_LABEL_FILES if (folder / name).is_file()]
        if found:
            return found
    raise SourceError(
        f"fairface source: no label CSV given and none of {', '.join(STANDARD_LABEL_FILES)} found in "
        f"{image_root} or {image_root.parent}; set `labels:` to the label CSV"
    )


def load_fairface(spec: SourceSpec) -> SourceScan:
    """Read FairFace label CSV(s) and pair each row with its image file."""
    root = require_path(spec, want_dir=True)
    if spec.labels is not None:
        if not spec.labels.is_file():
            raise SourceError(f"fairface source: label file {spec.labels} does not exist")
        label_files = [spec.labels]
    else:
        label_files = default_label_files(root)

    def rows():
        for label_file in label_files:
            table = _read_labels(label_file)
            columns = zip(*(table[column] for column in REQUIRED_COLUMNS))
            for row_number, (file, age, gender, race) in enumerate(columns, start=2):  # line 1 is the header
                relative = str(file).strip().replace("\\", "/")
                yield f"{label_file}:{row_number}", relative, root / relative, age, gender, race

    return scan_label_rows("fairface", TAXONOMY, rows())


def _read_labels(label_file: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(label_file, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise SourceError(f"fairface source: cannot read label file {label_file}: {error}") from error
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise SourceError(
            f"fairface source: {label_file} lacks column(s) {missing}; expected FairFace's header "
            f"{','.join(REQUIRED_COLUMNS)},... (found {','.join(map(str, table.columns))})"
        )
    return table
