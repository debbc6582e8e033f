"""A shared landmark table: the pool's detections in parquet, keyed by the sha256 of each image's bytes.

The per-user cache (landmarks.LandmarkCache) keys an entry by the image's absolute path and
mtime, so another node, another mount point or a copy of the pool misses it. This table keys by
content: any machine that reads the same bytes finds the entry. `synthface detect POOL --cache DIR`
fills it; `synthface generate --landmarks DIR` reads it (and adds what it had to detect).

Layout of DIR: `landmarks.parquet` (the table) and, while detections are being added,
`part-*.parquet` files of new rows (written every few thousand rows, so a killed run keeps its
work); `flush()` folds the parts into the table under a lock. Rows of another model are kept
but not used: the `model_sha256` column says which model found them.
"""

from __future__ import annotations

import fcntl
import io
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from synthface.dataset import atomic_write_bytes
from synthface.errors import UserError
from synthface.landmarks import BUNDLED_MODEL, CACHE_VERSION, CachedDetection, FaceLandmarks, file_sha256, model_sha256
from synthface.paths import refuse_url

TABLE = "landmarks.parquet"
PART_PREFIX = "part-"
LOCK = ".lock"
PART_ROWS = 5000  # new rows per part file: what a killed run can lose at most
N_POINTS = 478


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes: the key of its row."""
    return file_sha256(path)


class LandmarkTableError(UserError, RuntimeError):
    """The landmark table's folder cannot be used (not a folder, a damaged table)."""


class LandmarkTable:
    """Detections by image content (sha256), for one model; same get/put interface as LandmarkCache."""

    def __init__(self, root: Path, model_path: Path | None = None):
        refuse_url(root, "landmark table folder")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise LandmarkTableError(f"{self.root}: not a folder (the landmark table's folder, given with --cache or --landmarks)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.model = f"{model_sha256(Path(model_path) if model_path else BUNDLED_MODEL)}:{CACHE_VERSION}"
        self._digests: dict[Path, str] = {}
        self._new: list[dict] = []
        self._rows = self._load()

    def _files(self, parts: list[Path] | None = None) -> list[Path]:
        """The table (if written yet) and the part files, in the order their rows apply."""
        table = [self.root / TABLE] if (self.root / TABLE).exists() else []
        return table + (sorted(self.root.glob(f"{PART_PREFIX}*.parquet")) if parts is None else parts)

    def _load(self) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        with open(self.root / LOCK, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_SH)  # not while another run folds the parts into the table
            for file in self._files():
                try:
                    table = pd.read_parquet(file)
                except FileNotFoundError:
                    continue
                except Exception as error:  # pyarrow's errors for a damaged file have no common base
                    raise LandmarkTableError(f"{file}: not a readable landmark table ({type(error).__name__}: {error}); "
                                             "delete it to detect again") from None
                for row in table[table["model_sha256"] == self.model].to_dict("records"):
                    rows[row["sha256"]] = row
        return rows

    def __len__(self) -> int:
        return len(self._rows)

    def digest(self, path: Path) -> str:
        path = Path(path)
        if path not in self._digests:
            self._digests[path] = file_digest(path)
        return self._digests[path]

    def get(self, path: Path) -> CachedDetection | None:
        try:
            row = self._rows.get(self.digest(path))
        except OSError:
            return None  # unreadable: detection reports it as a skipped input
        if row is None:
            return None
        size = (int(row["image_height"]), int(row["image_width"]))
        if not row["has_face"]:
            return CachedDetection(None, row["reason"], size)
        points = np.frombuffer(row["points"], np.float32).reshape(N_POINTS, 3).copy()
        return CachedDetection(FaceLandmarks(points, float(row["yaw"]), float(row["pitch"]), float(row["roll"]), int(row["n_faces"])),
                               "", size)

    def put(self, path: Path, detection: CachedDetection) -> None:
        try:
            key = self.digest(path)
        except OSError:
            return  # unreadable: nothing to key it by (it is reported as skipped, not stored)
        face = detection.face
        row = {"sha256": key, "model_sha256": self.model, "has_face": face is not None,
               "points": face.points.astype(np.float32).tobytes() if face else b"",
               # float32, as in the per-user cache: a face found in either gives the same metadata
               **{name: np.float32(getattr(face, name) if face else 0.0) for name in ("yaw", "pitch", "roll")},
               "n_faces": face.n_faces if face else 0, "reason": detection.reason,
               "image_height": int(detection.image_size[0]), "image_width": int(detection.image_size[1]),
               "example_name": Path(path).name}  # for people reading the table; not part of the key
        self._rows[row["sha256"]] = row
        self._new.append(row)
        if len(self._new) >= PART_ROWS:
            self._write_part()

    def _write_part(self) -> None:
        if self._new:
            atomic_write_bytes(self.root / f"{PART_PREFIX}{uuid.uuid4().hex}.parquet", _parquet_bytes(self._new))
            self._new = []

    def flush(self) -> None:
        """Write the new rows and fold every part file into landmarks.parquet (one writer at a time)."""
        self._write_part()
        parts = sorted(self.root.glob(f"{PART_PREFIX}*.parquet"))
        if not parts:
            return
        with open(self.root / LOCK, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # brief: another run's fold waits its turn, then finds no parts
            parts = sorted(self.root.glob(f"{PART_PREFIX}*.parquet"))
            if not parts:
                return  # another run folded them meanwhile
            tables = [pd.read_parquet(file) for file in self._files(parts)]
            merged = pd.concat(tables, ignore_index=True).drop_duplicates(["sha256", "model_sha256"], keep="last")
            merged = merged.sort_values(["model_sha256", "sha256"], kind="stable").reset_index(drop=True)
            buffer = io.BytesIO()
            merged.to_parquet(buffer, index=False)
            atomic_write_bytes(self.root / TABLE, buffer.getvalue())
            for file in parts:
                file.unlink(missing_ok=True)


def _parquet_bytes(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buffer, index=False)
    return buffer.getvalue()
