"""How a source photo was captured (blur, sensor noise, JPEG quality, exposure, white balance),
estimated from the aligned face, so a mask drawn onto it can be given the same.

A crisp, noiseless mask on a soft, grainy photo is the first thing that gives a composite away.
The estimates are pure functions of the pixels (and of the source file's JPEG tables when known);
`match_layer` and `add_capture_noise` then apply them to the mask layer only. The scenario's own
lighting and camera degradations come after, on the whole image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from synthface import facemesh

GAMMA = 2.2
REBLUR_SIGMA = 1.0  # the re-blur of the gradient-ratio blur estimate (Zhuo & Sim 2011)
# Blur every rendered mask already has (bilinear warping of its template), as `estimate_blur` sees it,
# and the gain that makes the estimator see the same softness on the blurred mask as on the face
# (measured on the demo faces blurred by 0..2.5 px; the estimator under-reads low-contrast edges).
INHERENT_SIGMA = 0.6
BLUR_GAIN = 1.3
MAX_SIGMA = 4.0
MAX_NOISE = 25.0
# Exposure and white balance are trusted only this far: the sclera is not quite white, and a
# wrong estimate must never turn a mask orange or grey.
EXPOSURE_RANGE = (0.55, 1.25)
WHITE_BALANCE_RANGE = (0.85, 1.15)
LUMA = np.array([0.2126, 0.7152, 0.0722])
# Typical eye white in linear light (luminance, and colour at unit luminance): medians over the
# 5,698-face development pool (benchmarks/capture.py prints them), so the typical photo gets exposure 1
# and no cast, and only departures from it are given to the mask.
SCLERA_REFERENCE = 0.224
SCLERA_TINT = (1.433, 0.897, 0.748)


@dataclass(frozen=True)
class CaptureEstimate:
    """What the camera did to the photo, in the aligned crop's pixels."""

    blur_sigma: float = 0.0  # Gaussian sigma of the photo's softness, pixels
    noise_std: float = 0.0  # sensor noise, 8-bit levels
    jpeg_quality: int = 100  # of the source file (100 = unknown or near-lossless)
    exposure: float = 1.0  # linear-light gain of the scene relative to a well-exposed photo
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)  # linear RGB cast of the light (unit luminance)

    def as_metadata(self) -> dict[str, float | int]:
        values = asdict(self)
        cast = values.pop("white_balance")
        columns = {f"source_{name}": (round(v, 3) if isinstance(v, float) else v) for name, v in values.items()}
        columns.update({f"source_wb_{c}": round(float(g), 3) for c, g in zip("rgb", cast)})
        return columns


def source_jpeg_quality(path: Path | BinaryIO | None) -> int:
    """The JPEG quality a file (a path, or an open binary file such as an upload) was saved with,
    from its luminance quantisation table (100 if not a JPEG).

    Reads only the header. The table is compared with the IJG standard table scaled by quality.
    """
    if path is None:
        return 100
    try:
        from PIL import Image

        with Image.open(path) as image:
            tables = getattr(image, "quantization", None)
    except Exception:  # unreadable headers are reported by the image reader, not here
        return 100
    if not tables or 0 not in tables:
        return 100
    mean_q = float(np.mean(tables[0]))
    if mean_q <= 1.0:
        return 100
    # IJG: scale = 5000/q (q < 50) or 200 - 2q; the standard luminance table's mean is 57.6.
    scale = 100.0 * mean_q / 57.625
    quality = 5000.0 / scale if scale > 100 else (200.0 - scale) / 2.0
    return int(np.clip(round(quality), 1, 100))


def _face_region(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return facemesh.polygon_mask(points, facemesh.FACE_OVAL, shape)


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude (float32), the same bits wherever the array lies in memory.

    Not cv2.magnitude: its vectorised square root differs in the last bit from its scalar one, and
    which pixels take which path depends on the buffer's alignment, so the same photo gave other
    estimates (and other image bytes) from run to run and worker to worker."""
    gx, gy = cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1)
    return np.sqrt(gx * gx + gy * gy)


def estimate_blur(gray: np.ndarray, region: np.ndarray, noise_std: float = 0.0) -> float:
    """Gaussian sigma of the photo's softness from its edges, as this estimator sees it.

    Re-blurring an edge of blur s by s0 lowers its gradient by R = sqrt(s^2 + s0^2) / s, so
    s = s0 / sqrt(R^2 - 1) (median over strong edge pixels; Zhuo & Sim 2011). The Sobel operator
    adds its own softness, so compare the figure with the same estimator run on something else
    (the mask layer), not with a true sigma. Noisy photos are smoothed first and that is taken back out.
    """
    image = gray.astype(np.float32)
    denoise = float(np.clip(0.3 * noise_std, 0.0, 2.5)) if noise_std > 1.5 else 0.0
    if denoise:
        image = cv2.GaussianBlur(image, (0, 0), denoise)
    reblurred = cv2.GaussianBlur(image, (0, 0), REBLUR_SIGMA)
    g0, g1 = gradient_magnitude(image), gradient_magnitude(reblurred)
    # Only edges with a clear step: in flat skin the ratio is dominated by noise.
    strong = region & (g0 > max(40.0, 6.0 * noise_std)) & (g0 >= cv2.dilate(g0, np.ones((3, 3), np.uint8)))
    if strong.sum() < 20:
        return 0.0
    ratio = g0[strong] / np.maximum(g1[strong], 1e-3)
    ratio = ratio[ratio > 1.01]
    if ratio.size < 20:
        return MAX_SIGMA
    sigma = float(np.median(REBLUR_SIGMA / np.sqrt(ratio ** 2 - 1)))
    return float(np.clip(np.sqrt(max(sigma ** 2 - denoise ** 2, 0.0)), 0.0, MAX_SIGMA))


def estimate_noise(gray: np.ndarray, region: np.ndarray) -> float:
    """Sensor noise std (8-bit levels) by Immerkaer's Laplacian-difference estimator on the flattest
    half of the face (skin), where texture contributes least."""
    image = gray.astype(np.float32)
    kernel = np.float32([[1, -2, 1], [-2, 4, -2], [1, -2, 1]])
    response = np.abs(cv2.filter2D(image, cv2.CV_32F, kernel))
    gradient = gradient_magnitude(image)
    inside = region & (image > 20) & (image < 235)  # clipped pixels carry no noise
    if inside.sum() < 200:
        return 0.0
    flat = gradient[inside] <= np.percentile(gradient[inside], 50)
    sigma = np.sqrt(np.pi / 2) / 6 * float(np.mean(response[inside][flat]))
    return float(np.clip(sigma, 0.0, MAX_NOISE))


def sclera_colour(image_rgb: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """Mean linear RGB of the eye whites: the brightest, least saturated pixels inside the eye contours."""
    samples = []
    for eye in (facemesh.LEFT_EYE, facemesh.RIGHT_EYE):
        inside = facemesh.polygon_mask(points, eye, image_rgb.shape[:2])
        if inside.sum() >= 6:
            samples.append(image_rgb[inside])
    if not samples:
        return None
    pixels = np.concatenate(samples).astype(np.float64)
    brightness = pixels.max(axis=1)
    saturation = (brightness - pixels.min(axis=1)) / np.maximum(brightness, 1.0)
    sclera = pixels[(brightness >= np.percentile(brightness, 75)) & (saturation < 0.55) & (brightness < 254)]
    if len(sclera) < 4:
        return None
    return ((sclera / 255.0) ** GAMMA).mean(axis=0)


def estimate_light(image_rgb: np.ndarray, points: np.ndarray) -> tuple[float, tuple[float, float, float]]:
    """(exposure, white balance) from the eye whites, relative to their typical colour in well-exposed
    photos (SCLERA_REFERENCE, SCLERA_TINT: medians over a pool of real faces). The sclera is the one
    surface on every face that is near-white whatever the skin tone; clamped, since it is small."""
    colour = sclera_colour(image_rgb, points)
    if colour is None:
        return 1.0, (1.0, 1.0, 1.0)
    luminance = float(colour @ LUMA)
    if luminance <= 1e-4:
        return 1.0, (1.0, 1.0, 1.0)
    exposure = float(np.clip(luminance / SCLERA_REFERENCE, *EXPOSURE_RANGE))
    cast = np.clip((colour / luminance) / np.asarray(SCLERA_TINT), *WHITE_BALANCE_RANGE)
    cast /= float(cast @ LUMA)
    return exposure, tuple(float(c) for c in cast)  # type: ignore[return-value]


def estimate_capture(image_rgb: np.ndarray, points: np.ndarray, jpeg_quality: int = 100) -> CaptureEstimate:
    """Estimate blur, noise, exposure and white balance of the aligned face `image_rgb` (478 landmarks `points`)."""
    # Work on the face's box only: the estimates look at the face, and it halves the cost.
    oval = points[list(facemesh.FACE_OVAL), :2]
    height, width = image_rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(oval.min(axis=0)).astype(int) - 3, 0)
    x1, y1 = np.minimum(np.ceil(oval.max(axis=0)).astype(int) + 4, [width, height])
    image_rgb = np.ascontiguousarray(image_rgb[y0:y1, x0:x1])
    points = np.asarray(points, np.float64) - [x0, y0, 0.0]
    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    region = _face_region(points, gray.shape)
    exposure, cast = estimate_light(image_rgb, points)
    noise = estimate_noise(gray, region)
    return CaptureEstimate(
        blur_sigma=round(estimate_blur(gray, region, noise), 3),
        noise_std=round(noise, 3),
        jpeg_quality=int(jpeg_quality),
        exposure=round(exposure, 3),
        white_balance=tuple(round(c, 3) for c in cast),  # type: ignore[arg-type]
    )


def match_layer(premultiplied: np.ndarray, alpha: np.ndarray, capture: CaptureEstimate) -> tuple[np.ndarray, np.ndarray]:
    """Give a premultiplied RGB layer and its alpha the photo's exposure, white balance and blur."""
    gain = (capture.exposure * np.asarray(capture.white_balance, np.float32)) ** (1 / GAMMA)
    if np.any(np.abs(gain - 1) > 1e-3):
        premultiplied = premultiplied * gain.astype(np.float32)
    extra = BLUR_GAIN * np.sqrt(max(capture.blur_sigma ** 2 - INHERENT_SIGMA ** 2, 0.0))
    if extra > 0.15:
        premultiplied = cv2.GaussianBlur(premultiplied, (0, 0), extra)
        alpha = cv2.GaussianBlur(alpha, (0, 0), extra)
    return premultiplied, alpha


def add_capture_noise(image_rgb: np.ndarray, weight: np.ndarray, capture: CaptureEstimate, seed: int) -> np.ndarray:
    """Add the photo's sensor noise where `weight` (HxW, 0..1) is set, and its JPEG quality's artefacts there."""
    noisy, jpeg = capture.noise_std > 0.3, capture.jpeg_quality < 90
    rows, cols = np.nonzero(weight.any(axis=1))[0], np.nonzero(weight.any(axis=0))[0]
    if not (noisy or jpeg) or len(rows) == 0:
        return image_rgb
    # Work on the layer's box only (a mask covers a fraction of the image), grown to whole 16-pixel
    # JPEG blocks plus one block of margin, so the re-encoded blocks are those of the full image.
    height, width = weight.shape
    y0, x0 = max((rows[0] // 16 - 1) * 16, 0), max((cols[0] // 16 - 1) * 16, 0)
    y1, x1 = min((rows[-1] // 16 + 2) * 16, height), min((cols[-1] // 16 + 2) * 16, width)
    out, box_weight = image_rgb[y0:y1, x0:x1], weight[y0:y1, x0:x1, None]
    if noisy:
        # OpenCV's seeded generator: a third of numpy's time for the same normals (it is thread-local).
        cv2.setRNGSeed(int(seed) % 2**31)
        normals = cv2.randn(np.empty((y1 - y0, (x1 - x0) * 4), np.float32), 0.0, 1.0).reshape(y1 - y0, x1 - x0, 4)
        # One luminance grain shared by the channels, plus a weaker per-channel (chroma) part.
        noise = (normals[..., :1] * capture.noise_std + normals[..., 1:] * (0.3 * capture.noise_std)) * box_weight
        out = cv2.add(out, noise, dtype=cv2.CV_8U)  # rounded and saturated
    if jpeg:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, capture.jpeg_quality])
        if ok:
            decoded = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            layer = np.ascontiguousarray(box_weight[..., 0])
            out = cv2.blendLinear(decoded, out, layer, 1 - layer)
    result = image_rgb.copy()
    result[y0:y1, x0:x1] = out
    return result
