"""Any CSV or parquet table with file, age, gender and race columns (names configurable).

Image paths are relative to the table's folder (absolute paths are kept). Ages are years or
bins ("20-29"); gender accepts male/female/m/f/0/1; race is a label or class index of the
spec's `race_taxonomy`. Rows that do not parse or whose image is missing are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthface.sources.base import SourceError, SourceScan, SourceSpec, require_path
from synthface.sources.labels import scan_label_rows

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: Path) -> pd.DataFrame:
    """Load a CSV (.tsv: tab-separated) as strings, or a parquet file with its own column types."""
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        separator = "\t" if path.suffix.lower() == ".tsv" else ","
        return pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as error:  # pyarrow and parser errors are ValueErrors
        raise SourceError(f"table source: cannot read {path}: {error}") from error


def load_table(spec: SourceSpec) -> SourceScan:
    """Read a labelled table into face records (sorted by source id)."""
    table_path = require_path(spec, want_dir=False)
    table = read_table(table_path)
    columns = {"file": spec.file_column, "age": spec.age_column, "gender": spec.gender_column, "race": spec.race_column}
    missing = [f"{name} ({column!r})" for name, column in columns.items() if column not in table.columns]
    if missing:
        raise SourceError(
            f"table source {table_path}: missing column(s) {', '.join(missing)}; found {list(map(str, table.columns))}. "
            "Rename them or set file_column/age_column/gender_column/race_column in the source entry."
        )

    root = table_path.parent

    def rows():
        values = zip(*(table[column].tolist() for column in columns.values()))
        for row_number, (file, age, gender, race) in enumerate(values, start=1):
            relative = str(file).strip().replace("\\", "/")
            image = Path(relative) if Path(relative).is_absolute() else root / relative
            yield f"{table_path} row {row_number}", relative, image, age, gender, race

    return scan_label_rows("table", spec.race_taxonomy, rows())
