"""UTKFace folders: labels live in the file name, `age_gender_race_datetime.jpg[.chip.jpg]`.

gender: 0 = male, 1 = female; race: 0..4 in taxonomy.py's utkface5 order. A handful of the
published files have malformed names (a missing field, for instance); they are returned as
skipped inputs with the reason instead of stopping the scan.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthface.generation.sources.base import IMAGE_SUFFIXES, FaceRecord, SkippedInput, SourceScan, SourceSpec, require_path
from synthface.generation.sources.labels import MAX_AGE, parse_gender, parse_race

TAXONOMY = "utkface5"


def parse_utkface_name(name: str) -> tuple[int, str, str]:
    """'26_1_3_20170119....jpg.chip.jpg' -> (26, 'female', 'indian'); ValueError with the reason otherwise."""
    stem = name.split(".", 1)[0]
    fields = stem.split("_")
    if len(fields) != 4:
        raise ValueError(f"expected 4 fields age_gender_race_datetime in the name, found {len(fields)}")
    age_text, gender_text, race_text, _datetime = fields
    if not age_text.isdigit() or not 0 < int(age_text) <= MAX_AGE:
        raise ValueError(f"age field {age_text!r} is not a whole number of years in 1..{MAX_AGE}")
    if gender_text not in ("0", "1"):
        raise ValueError(f"gender field {gender_text!r} is not 0 (male) or 1 (female)")
    if not race_text.isdigit():
        raise ValueError(f"race field {race_text!r} is not a class index 0..4")
    return int(age_text), parse_gender(gender_text), parse_race(race_text, TAXONOMY)


def load_utkface(spec: SourceSpec) -> SourceScan:
    """Scan a UTKFace folder (recursively, in sorted order) into face records."""
    root = require_path(spec, want_dir=True)
    records: list[FaceRecord] = []
    files, skipped = scan_folder(root)
    for relative in files:
        name = relative.rsplit("/", 1)[-1]
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(SkippedInput(str(root / relative), f"not an image file: extension {Path(name).suffix or '(none)'}"))
            continue
        try:
            age, gender, race = parse_utkface_name(name)
        except ValueError as error:
            skipped.append(SkippedInput(str(root / relative), f"bad UTKFace file name: {error}"))
            continue
        records.append(
            FaceRecord(
                source_id=f"utkface:{relative}",
                path=root / relative,
                source_dataset="utkface",
                age=float(age),
                age_range=None,
                gender=gender,
                race=race,
                race_taxonomy=TAXONOMY,
            )
        )
    return SourceScan(records=records, skipped=skipped)


def scan_folder(root: Path) -> tuple[list[str], list[SkippedInput]]:
    """Relative POSIX paths of every non-hidden file under root, sorted (os.scandir: fast on 20k
    files), and the entries that are not usable files, with the reason.

    Folder links are followed once: a folder reached again (a link to itself or to a parent, a
    loop of links) is skipped, as are links that loop or lead nowhere, unreadable folders,
    devices and pipes, and folders named like images (not descended into).
    """
    found: list[str] = []
    skipped: list[SkippedInput] = []
    visited: set[tuple[int, int]] = set()
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in visited:
                skipped.append(SkippedInput(str(folder), "folder link loop: this folder was already scanned"))
                continue
            visited.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as error:
            skipped.append(SkippedInput(str(folder), f"unreadable folder: {error.strerror or error}"))
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            relative = f"{prefix}{entry.name}"
            try:
                if entry.is_dir():
                    if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                        skipped.append(SkippedInput(entry.path, "not an image file: a folder named like an image"))
                    else:
                        stack.append((f"{relative}/", Path(entry.path)))
                elif entry.is_file():
                    found.append(relative)
                elif entry.is_symlink():
                    Path(entry.path).stat()  # raises: a link that is neither file nor folder leads nowhere or loops
                    skipped.append(SkippedInput(entry.path, "not an image file: a link to a device, pipe or socket"))
                else:
                    skipped.append(SkippedInput(entry.path, "not an image file: not a regular file (device, pipe or socket)"))
            except FileNotFoundError:
                skipped.append(SkippedInput(entry.path, "broken link: points to a missing file"))
            except OSError as error:
                skipped.append(SkippedInput(entry.path, f"looping link: {error.strerror or error}"))
    found.sort()
    skipped.sort(key=lambda item: item.path)
    return found, skipped
