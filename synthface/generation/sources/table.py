"""Any CSV or parquet table with file, age, gender and race columns (names configurable).

Image paths are relative to the table's folder (absolute paths are kept). Ages are years or
bins ("20-29"); gender accepts male/female/m/f/0/1; race is a label or class index of the
spec's `race_taxonomy`. Rows that do not parse or whose image is missing are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthface.generation.sources.base import SkippedInput, SourceError, SourceScan, SourceSpec, require_path
from synthface.generation.sources.labels import read_csv_rows, scan_label_rows

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: Path) -> tuple[list[str], list[tuple[str, dict]], list[SkippedInput]]:
    """(columns, [(where, row)], skipped rows): a CSV (.tsv: tab-separated) as strings with `where` = 'file:LINE',
    or a parquet file with its own column types and `where` = 'file row N'."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            table = pd.read_parquet(path)
        except (OSError, ValueError) as error:  # pyarrow errors are ValueErrors
            raise SourceError(f"table source: cannot read {path} as parquet: {error}") from error
        records = table.to_dict("records")
        return list(map(str, table.columns)), [(f"{path} row {n}", row) for n, row in enumerate(records, start=1)], []
    separator = "\t" if path.suffix.lower() == ".tsv" else ","
    header, rows, skipped = read_csv_rows(path, "table", separator)
    return header, [(f"{path}:{line}", row) for line, row in rows], skipped


def load_table(spec: SourceSpec) -> SourceScan:
    """Read a labelled table into face records (sorted by source id)."""
    table_path = require_path(spec, want_dir=False)
    header, table, skipped = read_table(table_path)
    columns = {"file": spec.file_column, "age": spec.age_column, "gender": spec.gender_column, "race": spec.race_column}
    missing = [f"{name} ({column!r})" for name, column in columns.items() if column not in header]
    if missing:
        raise SourceError(
            f"table source {table_path}: missing column(s) {', '.join(missing)}; found {header}. "
            "Rename them or set file_column/age_column/gender_column/race_column in the source entry."
        )

    root = table_path.parent

    def rows():
        for where, row in table:
            file, age, gender, race = (row[column] for column in columns.values())
            relative = str(file).strip().replace("\\", "/")
            image = Path(relative) if Path(relative).is_absolute() else root / relative
            yield where, relative, image, age, gender, race

    scan = scan_label_rows("table", spec.race_taxonomy, rows())
    return SourceScan(records=scan.records, skipped=skipped + scan.skipped, reuse_unlimited=scan.reuse_unlimited)
