"""Where synthface finds its bundled files (scenarios, masks, recipes, models) and its cache."""

from __future__ import annotations

import os
import re
from pathlib import Path

from synthface.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
VERBOSE_ENV = "SYNTHFACE_VERBOSE"  # `synthface --verbose`: show MediaPipe's log lines; inherited by worker processes


def bundled_dir(name: str) -> Path:
    """A top-level data folder (`scenarios`, `masks`, `train`) from a wheel or a source checkout.

    A wheel carries them under `synthface/_data/`; an editable install or a checkout has them
    beside the package.
    """
    for candidate in (PACKAGE_DIR / "_data" / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled folder {name!r} not found next to {PACKAGE_DIR}; reinstall synthface")


def cache_dir() -> Path:
    """synthface's cache: $SYNTHFACE_CACHE, else $XDG_CACHE_HOME/synthface, else ~/.cache/synthface."""
    root = os.environ.get("SYNTHFACE_CACHE")
    if root:
        path = Path(root)
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "synthface"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_problem(path: Path, what: str) -> str | None:
    """Why `path` is not a readable regular file, as 'PATH: ...; expected WHAT', or None when it is one.

    A folder, a device such as /dev/zero or a missing path each get their own words, so no
    error says "not found" of something that exists, and no reader blocks on a device.
    """
    path = Path(path)
    if path.is_dir():
        return f"{path}: is a folder; expected {what}"
    if not path.exists():
        return f"{path}: file not found; expected {what}"
    if not path.is_file():
        return f"{path}: is not a regular file (a device, pipe or socket); expected {what}"
    return None


def safe_component(text: str) -> str:
    """`text` as one harmless file-name component (report folders named after scenarios or models):
    characters other than letters, digits, '.', '_' and '-' become '_', leading dots are dropped."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(text)).lstrip(".")
    return cleaned or "_"


class UnsafePathError(UserError, ValueError):
    """A path derived from data (a scenario name, a metadata row) would leave the folder it belongs in."""


def inside(root: Path | str, *parts: str | Path) -> Path:
    """`root / parts`, refused unless it stays inside `root`.

    Every path synthface derives from data it did not choose (scenario names, sample ids,
    `file_name` rows of a metadata table, scenario names used as report folders) goes through
    here before it is written (or read as part of a dataset). Absolute parts, `..` and symbolic
    links that lead out of `root` raise UnsafePathError. Returns the joined path as given (not
    resolved), so messages show the user's own spelling.
    """
    root = Path(root)
    for part in parts:
        if Path(part).is_absolute() or str(part).startswith(("/", "\\")) or (len(str(part)) > 1 and str(part)[1] == ":"):
            raise UnsafePathError(f"{part!r}: an absolute path where a path inside {root} is expected")
    candidate = root.joinpath(*parts)
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafePathError(f"{candidate}: leaves {root} (it resolves to {real}); refused")
    return candidate


URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # s3://, gs://, file://, http://... (also as pathlib folds them: s3:/b)


def is_url(location: str | Path | None) -> bool:
    """`location` is a URL with a scheme (s3://bucket/key, file:///data), not a local path."""
    return location is not None and bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", str(location)))


class UnsupportedLocationError(UserError, ValueError):
    """A URL where synthface takes a local path."""


def refuse_url(location: str | Path, what: str) -> None:
    """Where a URL cannot be used (a folder that is locked, memory-mapped or appended to while a run
    goes on), say so, rather than writing a local folder called `s3:`."""
    if URL_SCHEME.match(str(location)):
        raise UnsupportedLocationError(f"{what} {location}: must be a local path or a mounted folder, not a URL "
                                       "(docs/scale.md)")
