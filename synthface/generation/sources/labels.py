"""Normalising the label spellings of different pools to taxonomy.py's vocabulary.

Every parser raises ValueError with a short reason; readers turn that into a SkippedInput.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from synthface.generation.sources.base import FaceRecord, SkippedInput, SourceError, SourceScan
from synthface.taxonomy import GENDERS, races

# Oldest age assumed for open-ended bins such as FairFace's "more than 70" (documented in docs/sources.md).
OPEN_BIN_MAX_AGE = 89
MAX_AGE = 120

_GENDER_ALIASES = {"male": "male", "m": "male", "man": "male", "0": "male", "female": "female", "f": "female", "woman": "female", "1": "female"}
# The only age labels FairFace uses; anything else (e.g. '20-30') is a mislabelled row, not a bin to guess.
FAIRFACE_AGE_BINS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
_BIN_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_OPEN_BIN_RE = re.compile(r"^\s*(?:more than|over|>=?)\s*(\d+)\s*\+?\s*$|^\s*(\d+)\s*\+\s*$", re.IGNORECASE)


def parse_gender(value: object) -> str:
    """'Male'/'female'/'m'/'F'/0/1 -> 'male' or 'female' (UTKFace's 0 = male, 1 = female)."""
    key = _label_text(value).lower()
    if key.endswith(".0"):  # 1.0 from a float column
        key = key[:-2]
    if key not in _GENDER_ALIASES:
        raise ValueError(f"gender {value!r} is not one of male/female/m/f/0/1")
    gender = _GENDER_ALIASES[key]
    assert gender in GENDERS
    return gender


def parse_race(value: object, taxonomy: str) -> str:
    """A race label ('East Asian', 'east_asian') or class index (2, '2') -> the taxonomy's spelling."""
    labels = races(taxonomy)
    text = _label_text(value)
    index_text = text[:-2] if text.endswith(".0") else text
    if index_text.isdigit():
        index = int(index_text)
        if index >= len(labels):
            raise ValueError(f"race index {index} out of range 0..{len(labels) - 1} for {taxonomy}")
        return labels[index]
    key = re.sub(r"[\s\-]+", "_", text.strip().lower())
    if key not in labels:
        raise ValueError(f"race {value!r} is not a {taxonomy} label ({', '.join(labels)}) or index")
    return key


def parse_age(value: object) -> tuple[float, tuple[int, int] | None]:
    """Years ('34', 34.0) or a bin ('20-29', 'more than 70') -> (age in years, bin or None).

    A bin's age is its midpoint; an open bin ends at OPEN_BIN_MAX_AGE.
    """
    text = _label_text(value)
    if match := _BIN_RE.match(text):
        low, high = int(match[1]), int(match[2])
        if low > high or high > MAX_AGE:
            raise ValueError(f"age bin {value!r} is not an increasing range within 0..{MAX_AGE}")
        return (low + high) / 2, (low, high)
    if match := _OPEN_BIN_RE.match(text):
        low = int(match[1] or match[2])
        if low >= OPEN_BIN_MAX_AGE:
            raise ValueError(f"open age bin {value!r} starts at or above {OPEN_BIN_MAX_AGE}")
        return (low + OPEN_BIN_MAX_AGE) / 2, (low, OPEN_BIN_MAX_AGE)
    try:
        age = float(text)
    except ValueError:
        raise ValueError(f"age {value!r} is neither a number of years nor a bin like '20-29'") from None
    if not math.isfinite(age) or not 0 <= age <= MAX_AGE:
        raise ValueError(f"age {value!r} outside 0..{MAX_AGE} years")
    return age, None


def parse_fairface_age(value: object) -> tuple[float, tuple[int, int] | None]:
    """One of FAIRFACE_AGE_BINS -> parse_age of it; ValueError for any other label."""
    text = _label_text(value)
    if text.lower() not in FAIRFACE_AGE_BINS:
        raise ValueError(f"age {value!r} is not a FairFace age bin ({', '.join(FAIRFACE_AGE_BINS)})")
    return parse_age(text)


def read_csv_rows(path: Path, kind: str, separator: str = ",") -> tuple[list[str], list[tuple[int, dict[str, str]]], list[SkippedInput]]:
    """A label CSV as (header, [(line number, row)], skipped rows).

    Line numbers are the file's own (quoted fields spanning lines and blank lines counted), so a
    report's `file.csv:LINE` opens at the right line. A row with the wrong number of fields is
    skipped with its reason instead of rejecting the whole file; blank lines are ignored.
    """
    rows: list[tuple[int, dict[str, str]]] = []
    skipped: list[SkippedInput] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=separator)
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise SourceError(f"{kind} source: {path} is empty; expected a header line such as file,age,gender,race")
            start = reader.line_num + 1
            for fields in reader:
                line, start = start, reader.line_num + 1
                if not any(field.strip() for field in fields):
                    continue
                if len(fields) != len(header):
                    skipped.append(SkippedInput(f"{path}:{line}", f"bad row: {len(fields)} fields, the header has {len(header)}"))
                    continue
                rows.append((line, dict(zip(header, fields))))
    except UnicodeDecodeError as error:
        raise SourceError(f"{kind} source: {path} is not UTF-8 text (byte {error.start}); expected a CSV label file") from None
    except csv.Error as error:
        raise SourceError(f"{kind} source: {path}:{reader.line_num}: not a readable CSV ({error})") from None
    except OSError as error:
        raise SourceError(f"{kind} source: cannot read {path}: {error.strerror or error}") from None
    return header, rows, skipped


def _label_text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("label is missing")
    text = str(value).strip()
    if not text:
        raise ValueError("label is empty")
    return text


def scan_label_rows(kind: str, taxonomy: str, rows: Iterable[tuple[str, str, Path, object, object, object]],
                    age_parser: Callable[[object], tuple[float, tuple[int, int] | None]] = parse_age) -> SourceScan:
    """Labelled rows -> records, shared by the table-based pools (FairFace, generic tables).

    Each row is (where, relative path, image path, age, gender, race); `where` names the row in
    skip reasons. Empty names, repeated files, unparseable labels and missing images are skipped
    with their reason. Records come back sorted by source id.
    """
    records: list[FaceRecord] = []
    skipped: list[SkippedInput] = []
    seen: set[str] = set()
    for where, relative, image, age, gender, race in rows:
        if not relative:
            skipped.append(SkippedInput(where, "bad row: empty file name"))
            continue
        if relative in seen:
            skipped.append(SkippedInput(where, f"duplicate row: {relative} is listed twice"))
            continue
        try:
            years, age_range = age_parser(age)
            record = FaceRecord(
                source_id=f"{kind}:{relative}",
                path=image,
                source_dataset=kind,
                age=years,
                age_range=age_range,
                gender=parse_gender(gender),
                race=parse_race(race, taxonomy),
                race_taxonomy=taxonomy,
            )
        except ValueError as error:
            skipped.append(SkippedInput(where, f"bad label: {error}"))
            continue
        if not image.is_file():
            skipped.append(SkippedInput(where, missing_image_reason(image)))
            continue
        seen.add(relative)
        records.append(record)
    records.sort(key=lambda record: record.source_id)
    return SourceScan(records=records, skipped=skipped)


def missing_image_reason(image: Path) -> str:
    """Why `image` cannot be read as an image file, in the report's "category: detail" form."""
    if image.is_dir():
        return f"not an image file: {image} is a folder"
    if image.is_symlink():
        return f"broken link: {image} points to a missing file"
    if image.exists():
        return f"not an image file: {image} is not a regular file"
    return f"image file not found: {image}"
