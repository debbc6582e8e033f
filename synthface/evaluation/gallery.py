"""Galleries of faces with saliency maps over them: what the model looks at, right and wrong.

The attention grid shows half correct and half wrong predictions (masked faces first); the
Grad-CAM grid shows, per face, the image and one map per head. The occluder is outlined in
white wherever the dataset has its occlusion map.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from synthface.evaluation import plots
from synthface.evaluation.inference import Predictions, load_occlusion_maps
from synthface.evaluation.metrics import HEADS
from synthface.evaluation.saliency import overlay
from synthface.formats import read_listed_image
from synthface.taxonomy import MASK_STATES

TILE_SIZE = 160  # pixels per face in the grids


def _correct(row: pd.Series) -> bool:
    """A prediction counts as correct for the grids when gender and race are right and age is within 10 years."""
    return bool(row["gender_pred"] == row["gender"] and row["race_pred"] == row["race"]
                and abs(row["age_pred"] - row["age"]) <= 10)


def _caption(row: pd.Series) -> str:
    return (f"age {row['age']:.0f}->{row['age_pred']:.0f} | {str(row['gender'])[0]}->{str(row['gender_pred'])[0]}\n"
            f"{row['race']}->{row['race_pred']}")


def _load_face(data: Path, file_name: str, size: int = TILE_SIZE) -> np.ndarray:
    bgr = read_listed_image(data, file_name, cv2.IMREAD_COLOR)
    return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA)


def pick_examples(table: pd.DataFrame, count: int) -> list[int]:
    """Up to count/2 correct and count/2 wrong rows, masked faces first (the interesting case)."""
    correct = table.apply(_correct, axis=1).to_numpy()
    masked_first = np.argsort(-table["mask"].to_numpy(), kind="stable")
    right = [int(i) for i in masked_first if correct[i]]
    wrong = [int(i) for i in masked_first if not correct[i]]
    half = count // 2
    chosen = right[:half] + wrong[:count - min(half, len(right))]
    if len(chosen) < count:
        chosen += [i for i in right[half:] if i not in chosen][:count - len(chosen)]
    return chosen


def attention_grid(found: Predictions, data: Path, path: Path, count: int) -> Path:
    """Attention maps over faces: correct (green) and wrong (red) predictions; white = occluder outline."""
    table = found.table
    rows = pick_examples(table, count)
    regions = load_occlusion_maps(data, table.iloc[rows])
    tiles, outlines = [], []
    for row, region in zip(rows, regions):
        tiles.append(overlay(_load_face(data, table.at[row, "file_name"]), found.attention[row]))
        outlines.append(cv2.resize(region, (TILE_SIZE, TILE_SIZE), interpolation=cv2.INTER_NEAREST) if region is not None else None)
    return plots.saliency_grid(
        tiles, [_caption(table.iloc[row]) for row in rows], [_correct(table.iloc[row]) for row in rows], path,
        title="Spatial attention (red = high); frame green = correct, red = wrong; white line = occluder",
        outlines=outlines,
    )


def gradcam_positions(table: pd.DataFrame, gradcam_rows: np.ndarray, count: int) -> list[int]:
    """Positions in `gradcam_rows` to show: masked faces first, each followed by its unmasked
    twin when Grad-CAM explained it too (the same face with and without the mask)."""
    masked = table["mask"].to_numpy()[gradcam_rows] == 1
    pair_ids = (table["pair_id"].fillna("").astype(str).to_numpy()[gradcam_rows]
                if "pair_id" in table.columns else np.full(len(gradcam_rows), ""))
    unmasked_twin = {pair: position for position, pair in enumerate(pair_ids) if pair and not masked[position]}
    chosen: list[int] = []
    for position in [p for p in range(len(gradcam_rows)) if masked[p]] + list(range(len(gradcam_rows))):
        if len(chosen) >= count:
            break
        if position in chosen:
            continue
        chosen.append(position)
        twin = unmasked_twin.get(pair_ids[position]) if masked[position] else None
        if twin is not None and twin not in chosen and len(chosen) < count:
            chosen.append(twin)
    return chosen


def gradcam_grid(found: Predictions, data: Path, path: Path, rows: int) -> Path:
    """Per face: the image, then the Grad-CAM of each head (frame = that head right or wrong)."""
    table = found.table
    chosen = gradcam_positions(table, found.gradcam_rows, rows)
    tiles, captions, correct, outlines = [], [], [], []
    regions = load_occlusion_maps(data, table.iloc[found.gradcam_rows[chosen]])
    for position, region in zip(chosen, regions):
        row = table.iloc[int(found.gradcam_rows[position])]
        face = _load_face(data, row["file_name"])
        outline = cv2.resize(region, (TILE_SIZE, TILE_SIZE), interpolation=cv2.INTER_NEAREST) if region is not None else None
        tiles.append(face)
        captions.append(f"{'masked' if row['mask'] else 'unmasked'} face\n(frame: all heads)")
        correct.append(_correct(row))
        outlines.append(outline)
        for head in HEADS:
            tiles.append(overlay(face, found.gradcam[head][position]))
            if head == "age":
                captions.append(f"Grad-CAM age\n{row['age']:.0f}->{row['age_pred']:.0f}")
                correct.append(abs(row["age_pred"] - row["age"]) <= 10)
            else:
                if head != "mask":
                    truth = row[head]
                elif row["mask_pred"] in MASK_STATES:  # a three-class mask-state head
                    truth = row["mask_state"]
                else:
                    truth = "masked" if row["mask"] else "unmasked"
                captions.append(f"Grad-CAM {head}\n{truth}->{row[f'{head}_pred']}")
                correct.append(row[f"{head}_pred"] == truth)
            outlines.append(outline)
    return plots.saliency_grid(tiles, captions, correct, path, columns=1 + len(HEADS), outlines=outlines,
                               title="Grad-CAM per head (target: predicted class / predicted age); white line = occluder")
