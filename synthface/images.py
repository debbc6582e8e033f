"""The one reader of image files that come from users (face pools, photos to predict, mask photos).

The image's size is read from its header before anything is decoded, and images above
MAX_IMAGE_PIXELS are refused: a small file can claim 60000 x 60000 pixels (OpenCV then raises
an uncaught error) or really decode to gigabytes (a 12000 x 12000 JPEG took 3.3 GB). Every
failure is a ValueError whose message says why, so callers can skip and report the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

# 50 megapixels: above any photo a face pool needs (UTKFace chips are 200 px, FairFace 224 px,
# phone cameras 12-48 MP), and a decode that stays near 150 MB of RGB.
MAX_IMAGE_PIXELS = 50_000_000


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding its pixels.

    ValueError when the file cannot be opened as an image or claims more than MAX_IMAGE_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError as error:
        raise ValueError(f"image too large: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:  # PIL raises SyntaxError on some broken headers
        raise ValueError(f"not a readable image ({type(error).__name__}: {error})") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"image too large: {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} allowed")
    return width, height


def read_image(path: Path, flags: int | None = None) -> np.ndarray:
    """Decode an image file with OpenCV (`flags`, default IMREAD_COLOR: BGR) after checking its size."""
    import cv2

    path = Path(path)
    image_size(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR if flags is None else flags) if data.size else None
    except (OSError, cv2.error) as error:
        raise ValueError(f"not a readable image ({error})") from None
    if image is None:
        raise ValueError("not a readable image")
    return image


def read_image_rgb(path: Path) -> np.ndarray:
    """Decode an image file to uint8 RGB; ValueError with the reason when it cannot be read."""
    import cv2

    return cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
