"""preview.jpg: a contact sheet of a dataset's samples with their labels, for a glance check."""

from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from synthface.dataset import atomic_write_bytes

TILE = 160
CAPTION = 30


def caption(row) -> tuple[str, str]:
    first = f"{int(row['age'])} {row['gender'][0].upper()} {row['race']}"
    worn = row.get("mask_worn", row["mask"]) == 1  # datasets before mask_worn: mask=1 meant worn
    if row["mask_type"] == "none":
        second = "no mask"
    elif worn:
        second = f"{row['mask_type']}/{row['wear_style']}" + ("" if row["mask"] == 1 else " (mask=0)")
    else:
        second = f"{row['mask_type']} (confuser, mask=0)"
    return first, second


def contact_sheet(root: Path, table: pd.DataFrame, n: int, columns: int = 6) -> Path | None:
    """Write root/preview.jpg with up to n samples (an even pick across the table)."""
    if table.empty or n <= 0:
        return None
    picks = table.iloc[np.linspace(0, len(table) - 1, min(n, len(table))).round().astype(int)].drop_duplicates("sample_id")
    rows = math.ceil(len(picks) / columns)
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    from synthface.formats import open_dataset

    reader = open_dataset(Path(root))  # image files, or the data files of a packed run
    for i, (_, row) in enumerate(picks.iterrows()):
        x, y = (i % columns) * TILE, (i // columns) * (TILE + CAPTION)
        with Image.open(BytesIO(reader.read(row["file_name"]))) as image:
            sheet.paste(image.convert("RGB").resize((TILE, TILE)), (x, y))
        first, second = caption(row)
        draw.text((x + 3, y + TILE + 2), first, fill="black", font=font)
        draw.text((x + 3, y + TILE + 15), second, fill=(90, 90, 90), font=font)
    buffer = BytesIO()
    sheet.save(buffer, "JPEG", quality=88)
    path = Path(root) / "preview.jpg"
    atomic_write_bytes(path, buffer.getvalue())
    return path
