"""Mask fitting: mask types as data (`masks/*.yaml`), fitted to MediaPipe's 478-point face mesh.

Public API used by the generator:
    MaskLibrary.load(extra_dirs) -> library; library.names(); library.get(name) -> MaskDefinition
    MaskAppearance (the scenario's `mask.appearance:`), sample_mask_params(...) -> MaskParams
    fit_mask(image, points, definition, params, light_direction) -> MaskRender
"""

from synthface.maskfit.appearance import MaskAppearance, MaskParams, sample_mask_params
from synthface.maskfit.definitions import (
    PATTERNS,
    WEAR_STYLES,
    MaskDefinition,
    MaskDefinitionError,
    MaskLibrary,
    UnknownMaskError,
)
from synthface.maskfit.render import MaskRender, fit_mask
from synthface.maskfit.warp import MaskFitError

__all__ = [
    "PATTERNS",
    "WEAR_STYLES",
    "MaskAppearance",
    "MaskDefinition",
    "MaskDefinitionError",
    "MaskFitError",
    "MaskLibrary",
    "MaskParams",
    "MaskRender",
    "UnknownMaskError",
    "fit_mask",
    "sample_mask_params",
]
