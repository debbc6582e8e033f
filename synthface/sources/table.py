"""Any CSV or parquet table with file, age, gender and race columns (names configurable).

Image paths are relative to the table's folder (absolute paths are kept). Ages are years or
bins ("20-29"); gender accepts male/female/m/f/0/1; race is a label or class index of the
spec's `race_taxonomy`. Rows that do not parse or whose image is missing are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthface.sources.base import FaceRecord, SkippedInput, SourceError, SourceScan, SourceSpec, require_path
from synthface.sources.labels import parse_age, parse_gender, parse_race

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
    records: list[FaceRecord] = []
    skipped: list[SkippedInput] = []
    seen: set[str] = set()
    rows = zip(*(table[column].tolist() for column in columns.values()))
    for row_number, (file, age, gender, race) in enumerate(rows, start=1):
        where = f"{table_path} row {row_number}"
        relative = str(file).strip().replace("\\", "/")
        if not relative:
            skipped.append(SkippedInput(where, "bad row: empty file name"))
            continue
        if relative in seen:
            skipped.append(SkippedInput(where, f"duplicate row: {relative} is listed twice"))
            continue
        image = Path(relative) if Path(relative).is_absolute() else root / relative
        try:
            years, age_range = parse_age(age)
            record = FaceRecord(
                source_id=f"table:{relative}",
                path=image,
                source_dataset="table",
                age=years,
                age_range=age_range,
                gender=parse_gender(gender),
                race=parse_race(race, spec.race_taxonomy),
                race_taxonomy=spec.race_taxonomy,
            )
        except ValueError as error:
            skipped.append(SkippedInput(where, f"bad label: {error}"))
            continue
        if not image.is_file():
            skipped.append(SkippedInput(where, f"image file not found: {image}"))
            continue
        seen.add(relative)
        records.append(record)
    records.sort(key=lambda record: record.source_id)
    return SourceScan(records=records, skipped=skipped)
