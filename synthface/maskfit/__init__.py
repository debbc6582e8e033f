"""Mask fitting: mask types as data (`masks/*.yaml`), fitted to MediaPipe's 478-point face mesh.

Public API used by the generator:
    MaskLibrary.load(extra_dirs) -> library; library.names(); library.get(name) -> MaskDefinition
    MaskAppearance (the scenario's `mask.appearance:`), sample_mask_params(...) -> MaskParams
    fit_mask(image, points, definition, params, light_direction) -> MaskRender

Names are imported on first use, so `synthface --help` does not pay for OpenCV.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "MaskAppearance": "appearance",
    "MaskParams": "appearance",
    "sample_mask_params": "appearance",
    "PATTERNS": "definitions",
    "WEAR_STYLES": "definitions",
    "MaskDefinition": "definitions",
    "MaskDefinitionError": "definitions",
    "MaskLibrary": "definitions",
    "UnknownMaskError": "definitions",
    "MaskRender": "render",
    "fit_mask": "render",
    "MaskFitError": "warp",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"synthface.maskfit.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synthface.maskfit' has no attribute {name!r}")
