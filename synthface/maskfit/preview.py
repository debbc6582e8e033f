"""A gallery of mask types and wear styles on the demo faces, for judging realism at a glance."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from synthface.maskfit.appearance import MaskAppearance, sample_mask_params
from synthface.maskfit.definitions import MaskDefinition
from synthface.maskfit.demo import demo_faces
from synthface.maskfit.render import fit_mask

LABEL_WIDTH = 150
PREVIEW_LIGHT = np.array([0.35, -0.45, 0.82])  # toward the light: up and to the image right


def _label(text_lines: Sequence[str], height: int) -> np.ndarray:
    tile = np.full((height, LABEL_WIDTH, 3), 245, np.uint8)
    for i, line in enumerate(text_lines):
        cv2.putText(tile, line, (8, 24 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    return tile


def render_gallery(definitions: Sequence[MaskDefinition], size: int = 160, seed: int = 0,
                   appearance: MaskAppearance | None = None) -> np.ndarray:
    """RGB gallery: one row per (type, wear style), one column per demo face and head pose."""
    appearance = appearance or MaskAppearance()
    faces = demo_faces(size)
    light = PREVIEW_LIGHT / np.linalg.norm(PREVIEW_LIGHT)
    rows = []
    rng = np.random.default_rng(seed)
    for definition in definitions:
        for wear in definition.wear_styles:
            tiles = [_label([definition.name, wear, "mask=1" if definition.is_mask else "confuser (mask=0)"], size)]
            for face in faces:
                params = sample_mask_params(definition, appearance, wear, rng)
                tiles.append(fit_mask(face.image, face.points, definition, params, light).image)
            rows.append(np.hstack(tiles))
    header = [_label(["type / wear style"], 40)]
    for face in faces:
        tile = np.full((40, size, 3), 245, np.uint8)
        cv2.putText(tile, face.name, (4, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.38 * min(size / 128, 1.5), (30, 30, 30), 1,
                    cv2.LINE_AA)
        header.append(tile)
    return np.vstack([np.hstack(header), *rows])
