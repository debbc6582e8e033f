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
