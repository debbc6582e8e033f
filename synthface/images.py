"""The one reader of images that come from users (face pools, photos to predict, mask photos, uploads).

The size is read from the header before anything is decoded, and images above a pixel limit
are refused: a small file can claim 60000 x 60000 pixels (OpenCV then raised an uncaught
error) or really decode to gigabytes (a 12000 x 12000 JPEG took 3.3 GB). Every failure is a
ValueError whose message says why, so callers can skip and report the file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# Files read from disk: 50 megapixels is above any photo a face pool needs (UTKFace chips are
# 200 px, FairFace 224 px, phone cameras 12-48 MP) and keeps a decode near 150 MB of RGB.
MAX_IMAGE_PIXELS = 50_000_000


def check_header(data: bytes, max_pixels: int) -> None:
    """Refuse image bytes whose header claims more than `max_pixels`, without decoding them."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                width, height = header.size
    except Image.DecompressionBombError:  # Pillow's own guard: far beyond any sensible limit
        raise ValueError(f"image too large: over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, "
                         f"the limit is {max_pixels / 1e6:.0f}") from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        return  # a format Pillow does not know: OpenCV may, and its pixels are checked after decoding
    if width * height > max_pixels:
        raise ValueError(f"image too large: {width}x{height} px is {width * height / 1e6:.0f} megapixels, "
                         f"the limit is {max_pixels / 1e6:.0f}")


def decode_image(data: bytes, flags: int | None = None, max_pixels: int | None = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode image bytes with OpenCV (`flags`, default IMREAD_COLOR: BGR), checking the size first
    when `max_pixels` is given. Raises ValueError saying why: empty, not an image, or too large."""
    import cv2

    if not data:
        raise ValueError("empty file")
    if max_pixels is not None:
        check_header(data, max_pixels)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if flags is None else flags)
    except cv2.error as error:  # e.g. a size beyond OpenCV's own limit in a format Pillow does not read
        raise ValueError(f"unreadable image ({str(error).strip().splitlines()[-1]})") from None
    if image is None:
        raise ValueError("unreadable image")
    if max_pixels is not None and image.shape[0] * image.shape[1] > max_pixels:
        raise ValueError(f"image too large: {image.shape[1]}x{image.shape[0]} px, the limit is {max_pixels / 1e6:.0f} megapixels")
    return image


def decode_image_rgb(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Decode image bytes (an upload, a file's contents) to uint8 RGB (see decode_image)."""
    import cv2

    return cv2.cvtColor(decode_image(data, max_pixels=max_pixels), cv2.COLOR_BGR2RGB)


def read_image(path: Path, flags: int | None = None, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An image file decoded with OpenCV (see decode_image); ValueError with the reason."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"unreadable file: {error.strerror or error}") from None
    return decode_image(data, flags, max_pixels)


def read_image_rgb(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An image file as uint8 RGB; ValueError with the reason when it cannot be read."""
    import cv2

    return cv2.cvtColor(read_image(path, max_pixels=max_pixels), cv2.COLOR_BGR2RGB)
