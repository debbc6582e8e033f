"""Face landmarks with MediaPipe's FaceLandmarker (Tasks API, 478 points) and an on-disk cache.

The model bundle ships in `synthface/assets/` (Apache-2.0, see assets/README.md); a user may
point to another with `--landmarker PATH` or $SYNTHFACE_LANDMARKER. Detection runs once per
source image: results (including "no face" verdicts) are cached, so a second scenario on the
same pool skips it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from synthface.errors import UserError
from synthface.paths import ASSETS_DIR, VERBOSE_ENV, cache_dir

BUNDLED_MODEL = ASSETS_DIR / "face_landmarker.task"
BUNDLED_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_ENV_VAR = "SYNTHFACE_LANDMARKER"
CACHE_VERSION = "1"
TMP_DIR = "tmp"  # the cache's temporaries (see LandmarkCache.remove_stale_temporaries)

# MediaPipe's C++ logging is noisy on stderr. These variables quiet what honours them; the rest
# (absl lines written before InitGoogle, TFLite's delegate notice) is filtered by quiet_native_logs.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get(VERBOSE_ENV, "") in ("", "0"):
    logging.getLogger("absl").setLevel(logging.ERROR)  # absl's Python logger, used by MediaPipe's Python side
# Informational lines of MediaPipe / TFLite: glog/absl "I0000 ..." and "W0000 ..." lines and their banners.
NATIVE_NOISE = re.compile(rb"^(?:[IW]\d{4} [\d:. ]+\d+ [\w.+-]+:\d+\] |WARNING: (?:All log messages|Logging) before |INFO: )")


@contextmanager
def quiet_native_logs():
    """Drop MediaPipe / TFLite informational lines written to stderr (fd 2) inside the block; keep errors.

    Native code writes to file descriptor 2 directly, past Python's sys.stderr, so the descriptor
    is pointed at a temporary file and the lines that are not noise are written back afterwards.
    `synthface --verbose` (SYNTHFACE_VERBOSE=1) leaves stderr alone.
    """
    if os.environ.get(VERBOSE_ENV, "") not in ("", "0"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):  # no usable descriptor 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True) if not NATIVE_NOISE.match(line)]
            if kept:
                os.write(2, b"".join(kept))


@dataclass
class FaceLandmarks:
    """One detected face.

    points: (478, 3) float32; x, y in pixels of the image given; z in the same pixel scale
    (MediaPipe's relative depth times the image width; smaller is closer to the camera).
    yaw, pitch, roll: head pose in degrees from the facial transformation matrix
    (yaw > 0: the face turns toward the image's right; pitch > 0: chin down; roll > 0: the head tilts
    clockwise in the image).
    """

    points: np.ndarray
    yaw: float
    pitch: float
    roll: float
    n_faces: int = 1

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the landmarks in pixels."""
        x0, y0 = self.points[:, :2].min(axis=0)
        x1, y1 = self.points[:, :2].max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def size(self) -> float:
        """The larger side of the landmark box, in pixels."""
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, y1 - y0)


class LandmarkerError(UserError, RuntimeError):
    """The landmark model cannot be found or is not the expected file."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model_path(path: str | Path | None = None) -> Path:
    """The landmarker bundle to use: an explicit path, else $SYNTHFACE_LANDMARKER, else the bundled copy.

    The bundled copy is checked against its published sha256, so a truncated or swapped file
    fails loudly instead of producing bad landmarks.
    """
    chosen = path or os.environ.get(MODEL_ENV_VAR)
    if chosen:
        chosen = Path(chosen).expanduser()
        if not chosen.is_file():
            source = "--landmarker" if path else f"${MODEL_ENV_VAR}"
            raise LandmarkerError(f"{source}: face landmarker model {chosen} does not exist")
        return chosen
    if not BUNDLED_MODEL.is_file():
        raise LandmarkerError(f"bundled face landmarker model missing at {BUNDLED_MODEL}; reinstall synthface")
    actual = file_sha256(BUNDLED_MODEL)
    if actual != BUNDLED_MODEL_SHA256:
        raise LandmarkerError(
            f"bundled face landmarker {BUNDLED_MODEL} has sha256 {actual}, expected {BUNDLED_MODEL_SHA256}; reinstall synthface"
        )
    return BUNDLED_MODEL


def pose_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's 4x4 facial transformation matrix."""
    from scipy.spatial.transform import Rotation

    rotation = np.asarray(matrix, dtype=np.float64)[:3, :3]
    # Remove any scale so the matrix is a pure rotation.
    u, _, vt = np.linalg.svd(rotation)
    rotation = u @ vt
    pitch, yaw, roll = Rotation.from_matrix(rotation).as_euler("xyz", degrees=True)
    # Signs checked on real photos against the image conventions in FaceLandmarks' docstring.
    return float(yaw), float(pitch), float(-roll)


class LandmarkDetector:
    """MediaPipe FaceLandmarker in image mode. Use as a context manager, or call close()."""

    def __init__(self, model_path: str | Path | None = None, max_faces: int = 2, pad_retry: float = 0.3):
        # max_faces=2: MediaPipe sometimes finds no face with 1 where 2 finds one.
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core import base_options

        self.model_path = resolve_model_path(model_path)
        self.pad_retry = pad_retry
        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=base_options.BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=max_faces,
            output_facial_transformation_matrixes=True,
        )
        with quiet_native_logs():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._first_call = True  # MediaPipe logs on its first inference too

    def detect(self, image_rgb: np.ndarray) -> list[FaceLandmarks]:
        """All faces found, largest first; [] when none.

        Tightly cropped faces (UTKFace chips fill the frame) often defeat the short-range
        detector, so a miss is retried once on a padded copy of the image.
        """
        faces = self._detect_once(image_rgb)
        if not faces and self.pad_retry > 0:
            faces = self._detect_padded(image_rgb)
        return faces

    def _detect_once(self, image_rgb: np.ndarray) -> list[FaceLandmarks]:
        height, width = image_rgb.shape[:2]
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image_rgb[..., :3]))
        if self._first_call:
            with quiet_native_logs():
                result = self._landmarker.detect(frame)
            self._first_call = False
        else:
            result = self._landmarker.detect(frame)
        faces = []
        for landmarks, matrix in zip(result.face_landmarks, result.facial_transformation_matrixes):
            points = np.array([(p.x * width, p.y * height, p.z * width) for p in landmarks], dtype=np.float32)
            yaw, pitch, roll = pose_from_matrix(matrix)
            faces.append(FaceLandmarks(points, yaw, pitch, roll))
        faces.sort(key=lambda face: face.size, reverse=True)
        for face in faces:
            face.n_faces = len(faces)
        return faces

    def _detect_padded(self, image_rgb: np.ndarray) -> list[FaceLandmarks]:
        import cv2

        height, width = image_rgb.shape[:2]
        pad = int(round(self.pad_retry * max(height, width)))
        padded = cv2.copyMakeBorder(image_rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        faces = self._detect_once(padded)
        for face in faces:
            face.points[:, :2] -= pad
        return faces

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "LandmarkDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # MediaPipe's own __del__ fails at interpreter exit
        try:
            self.close()
        except Exception:
            pass


@dataclass
class CachedDetection:
    """What the cache holds for one source image: the largest face, or why there is none."""

    face: FaceLandmarks | None
    reason: str = ""  # why `face` is None ("no face found", "unreadable image"...)
    image_size: tuple[int, int] = (0, 0)  # (height, width) of the source image


def model_sha256(path: Path) -> str:
    """A landmarker model's sha256, computed once per process for each version of the file."""
    stat = Path(path).stat()
    return _model_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _model_sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a rewritten file is hashed again
    return file_sha256(Path(path))


class LandmarkCache:
    """Per-image detection results on disk, keyed by file identity and model.

    The key covers the absolute path, size and modification time of the image and the
    model's content (its sha256: a reinstall or another checkout of the same model keeps the
    cache), so an edited image or another model is detected afresh.
    """

    def __init__(self, root: Path | None = None, model_path: Path | None = None):
        self.root = Path(root) if root else cache_dir() / "landmarks"
        model = Path(model_path) if model_path else BUNDLED_MODEL
        self.model_path = model
        self._model_tag = f"{model_sha256(model)}:{CACHE_VERSION}"
        self.remove_stale_temporaries()

    @property
    def _tmp_dir(self) -> Path:
        return self.root / TMP_DIR

    def remove_stale_temporaries(self) -> int:
        """Delete the temporary files of writers that no longer run (a run killed mid-write leaves one).

        Temporaries live in one folder, named `<key>.<pid>.npz`, so this looks at that folder only,
        never at the whole cache; a file of a live process (a parallel run) is left alone."""
        removed = 0
        for file in self._tmp_dir.glob("*.npz") if self._tmp_dir.is_dir() else ():
            pid = file.stem.rpartition(".")[2]
            if not pid.isdigit() or not _process_alive(int(pid)):
                file.unlink(missing_ok=True)
                removed += 1
        return removed

    def _file(self, image_path: Path) -> Path:
        image_path = Path(image_path).resolve()
        stat = image_path.stat()
        key = hashlib.sha1(f"{image_path}|{stat.st_size}|{stat.st_mtime_ns}|{self._model_tag}".encode()).hexdigest()
        return self.root / key[:2] / f"{key}.npz"

    def get(self, image_path: Path) -> CachedDetection | None:
        file = self._file(image_path)
        if not file.exists():
            return None
        try:
            with np.load(file) as data:
                size = tuple(int(v) for v in data["image_size"])
                if data["has_face"]:
                    yaw, pitch, roll = (float(v) for v in data["pose"])
                    face = FaceLandmarks(data["points"], yaw, pitch, roll, int(data["n_faces"]))
                    return CachedDetection(face, "", size)
                return CachedDetection(None, str(data["reason"]), size)
        except (OSError, KeyError, ValueError):
            return None  # a damaged entry is detected again

    def flush(self) -> None:
        """Nothing to do: each entry is written as it comes (the interface of landmark_table.LandmarkTable)."""

    def put(self, image_path: Path, detection: CachedDetection) -> None:
        file = self._file(image_path)
        file.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_dir / f"{file.stem}.{os.getpid()}.npz"  # same file system as the entry: the rename is atomic
        face = detection.face
        try:
            np.savez(
                tmp,
                has_face=face is not None,
                points=face.points if face else np.zeros((0, 3), np.float32),
                pose=np.array([face.yaw, face.pitch, face.roll] if face else [0, 0, 0], np.float32),
                n_faces=face.n_faces if face else 0,
                reason=detection.reason,
                image_size=np.array(detection.image_size),
            )
            os.replace(tmp, file)
        except BaseException:
            tmp.unlink(missing_ok=True)  # an error or Ctrl-C mid-write leaves nothing behind
            raise


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
