"""FairFace: a label CSV (`file,age,gender,race,...`) next to its image folder.

FairFace gives ages as bins ("0-2", "3-9", ..., "60-69", "more than 70"): a record's `age` is
the bin's midpoint and `age_range` the bin itself. Race uses the fairface7 taxonomy.
"""

from __future__ import annotations

from pathlib import Path

from synthface.generation.sources.base import SourceError, SourceScan, SourceSpec, require_path
from synthface.generation.sources.labels import parse_fairface_age, read_csv_rows, scan_label_rows
from synthface.paths import file_problem

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
        if problem := file_problem(spec.labels, "FairFace's label CSV (file,age,gender,race,...)"):
            raise SourceError(f"fairface source: labels: {problem}")
        label_files = [spec.labels]
    else:
        label_files = default_label_files(root)

    skipped_rows = []

    def rows():
        for label_file in label_files:
            header, table, bad = read_csv_rows(label_file, "fairface")
            missing = [column for column in REQUIRED_COLUMNS if column not in header]
            if missing:
                raise SourceError(
                    f"fairface source: {label_file} lacks column(s) {missing}; expected FairFace's header "
                    f"{','.join(REQUIRED_COLUMNS)},... (found {','.join(header)})"
                )
            skipped_rows.extend(bad)
            for line, row in table:
                relative = row["file"].strip().replace("\\", "/")
                yield f"{label_file}:{line}", relative, root / relative, row["age"], row["gender"], row["race"]

    scan = scan_label_rows("fairface", TAXONOMY, rows(), age_parser=parse_fairface_age)
    return SourceScan(records=scan.records, skipped=skipped_rows + scan.skipped, reuse_unlimited=scan.reuse_unlimited)
