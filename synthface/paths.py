"""Where synthface finds its bundled files (scenarios, masks, recipes, models) and its cache."""

from __future__ import annotations

import os
from pathlib import Path

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
