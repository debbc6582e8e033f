"""Pools at a URL (s3://, gs://, ...): mirrored into the cache, then read like local ones.

The mirror keeps the pool's own layout, so records get the same source ids (and a plan the
same fingerprint and bytes) as a local copy of the same files. What gets fetched:

- utkface, fairface: the image folder (fairface: and FairFace's label CSVs from the folder's
  parent, where the folder has none, as for a local pool);
- table: the table's folder (its image paths are relative to it);
- `labels:` given as a URL: that one file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from synthface.generation.sources.base import SourceScan, SourceSpec, load_source
from synthface.paths import is_url
from synthface.storage import cache_folder, filesystem, mirror


def _parent(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[0]


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def mirror_spec(spec: SourceSpec, quiet: bool = False) -> tuple[SourceSpec, dict[str, str]]:
    """The spec with its URLs replaced by local mirrors, and {local root: URL} to name inputs in reports."""
    update, roots = {}, {}
    what = f"{spec.kind} pool"
    if is_url(spec.path):
        url = str(spec.path)
        if spec.kind == "table":
            folder = mirror(_parent(url), what, quiet)
            update["path"], roots[str(folder)] = folder / _name(url), _parent(url)
        else:
            base = cache_folder("mirror", _parent(url))  # the parent too: FairFace keeps its label CSVs there
            folder = mirror(url, what, quiet, target=base / _name(url))
            update["path"], roots[str(folder)] = folder, url
            if spec.kind == "fairface" and spec.labels is None:
                _mirror_parent_labels(url, folder, base, quiet)
                roots[str(base)] = _parent(url)  # after the folder's entry: its files match that one first
    if is_url(spec.labels):
        update["labels"] = mirror(str(spec.labels), "FairFace labels", quiet)
        roots[str(update["labels"])] = str(spec.labels)
    return spec.model_copy(update=update), roots


def _mirror_parent_labels(url: str, folder: Path, base: Path, quiet: bool) -> None:
    """FairFace's label CSVs from the folder's parent prefix, where the folder holds none."""
    from synthface.generation.sources.fairface import STANDARD_LABEL_FILES

    if any((folder / name).is_file() for name in STANDARD_LABEL_FILES):
        return
    fs, parent = filesystem(_parent(url))
    for name in STANDARD_LABEL_FILES:
        if fs.exists(f"{parent}/{name}"):  # a missing one is reported by the FairFace reader
            mirror(f"{_parent(url)}/{name}", "FairFace labels", quiet, target=base)


def _as_url(path: str, roots: dict[str, str]) -> str:
    """A mirrored file's path spelled as the URL of its object (report lines name what the user gave)."""
    for root, url in roots.items():
        if path == root or path.startswith(root + "/"):
            return url + path[len(root):]
    return path


def load_remote_source(spec: SourceSpec, quiet: bool = False) -> SourceScan:
    local, roots = mirror_spec(spec, quiet)
    scan = load_source(local, quiet)
    return dataclasses.replace(scan, records=[dataclasses.replace(record, origin=_as_url(str(record.path), roots)) for record in scan.records],
                               skipped=[dataclasses.replace(item, path=_as_url(item.path, roots)) for item in scan.skipped])
