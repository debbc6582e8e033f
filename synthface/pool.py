"""The face pool of a run: read every source, find landmarks (cached), keep the usable faces.

Every input that is not used is kept with its reason (unreadable image, no face, face too
small, extreme pose, missing label, age outside the scenario's bins...), so the report can
list it: silent drops are how label noise creeps into datasets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from synthface.executors import Executor, WorkerJob
from synthface.images import read_image_rgb
from synthface.landmark_table import LandmarkTable
from synthface.landmarks import BUNDLED_MODEL, CachedDetection, FaceLandmarks, LandmarkCache, LandmarkDetector
from synthface.plan import PoolFace
from synthface.progress import progress_bar
from synthface.scenario import Scenario
from synthface.sources.base import FaceRecord, SkippedInput, SourceSpec, load_source
from synthface.taxonomy import convert_race


@dataclass
class PoolReport:
    """Counts and reasons for the report."""

    n_inputs: int = 0
    n_detected: int = 0
    n_multi_face: int = 0
    skipped: list[SkippedInput] = field(default_factory=list)
    identical_photos: list[dict] = field(default_factory=list)  # groups of byte-identical usable photos, see find_identical

    def skipped_table(self):
        """The skipped inputs as a table (path, source, reason), in the order they were found: the
        report keeps only counts and a few examples, so it stays small for any pool size."""
        import pandas as pd

        return pd.DataFrame({"path": [s.path for s in self.skipped], "source": [s.source for s in self.skipped],
                             "reason": [s.reason for s in self.skipped]}, dtype="string")

    def reasons(self) -> dict[str, int]:
        return dict(Counter(item.reason.split(":")[0] for item in self.skipped).most_common())


# --- detection workers -------------------------------------------------------------------
_detector: LandmarkDetector | None = None


def _init_detector(model_path: str | None) -> None:
    global _detector
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the pool
    _detector = LandmarkDetector(model_path)


def _detect_file(path: str, detector: LandmarkDetector | None = None) -> CachedDetection:
    try:
        image = read_image_rgb(Path(path))
    except (ValueError, OSError) as error:
        reason = str(error)  # the report counts skips by the words before the first colon
        return CachedDetection(None, reason if reason.startswith("unreadable image") else f"unreadable image: {reason}")
    faces = (detector or _detector).detect(image)
    if not faces:
        return CachedDetection(None, "no face found", image.shape[:2])
    return CachedDetection(faces[0], "", image.shape[:2])


class _InProcessDetector:
    """Detection in this process, for runs too small to pay for starting workers; the model loads on first use."""

    def __init__(self, model_path: Path | None):
        self.model_path, self.detector = model_path, None

    def __call__(self, path: str) -> CachedDetection:
        if self.detector is None:
            self.detector = LandmarkDetector(self.model_path)
        return _detect_file(path, self.detector)

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()


def detect_all(paths: list[Path], cache: LandmarkCache | LandmarkTable, executor: Executor, model_path: Path | None,
               quiet: bool = False) -> dict[Path, CachedDetection]:
    """Landmarks for every path, from the cache or detected on `executor` and cached."""
    results: dict[Path, CachedDetection] = {}
    todo = []
    for path in paths:
        hit = cache.get(path)
        if hit is None:
            todo.append(path)
        else:
            results[path] = hit
    if not todo:
        return results
    # The bundled model is found by each worker in its own install (a Ray node's path may differ from ours).
    model = None if model_path is None or Path(model_path) == BUNDLED_MODEL else str(Path(model_path).absolute())
    job = WorkerJob(_init_detector, (model,), _detect_file, chunksize=8)
    inline = _InProcessDetector(model_path)
    try:
        detections = closing(executor.map_unordered(job, [str(path.absolute()) for path in todo], inline))  # workers stop on any error
        with progress_bar(f"landmarks ({len(results)} cached)", len(todo), quiet) as advance, detections as found:
            for index, detection in found:
                cache.put(todo[index], detection)
                results[todo[index]] = detection
                advance()
    finally:
        inline.close()
        cache.flush()  # also on Ctrl-C or an error: detections made so far are kept
    return results


def usable_face(record: FaceRecord, detection: CachedDetection, scenario: Scenario, reuse_unlimited: bool) -> PoolFace | str:
    """The record as a PoolFace, or the reason it cannot be used."""
    if detection.face is None:
        return detection.reason
    face, quality = detection.face, scenario.faces
    if face.size < quality.min_face_px:
        return f"face too small: {face.size:.0f} px < min_face_px {quality.min_face_px}"
    if abs(face.yaw) > quality.max_abs_yaw:
        return f"extreme pose: yaw {face.yaw:.0f} deg beyond {quality.max_abs_yaw:g}"
    if abs(face.pitch) > quality.max_abs_pitch:
        return f"extreme pose: pitch {face.pitch:.0f} deg beyond {quality.max_abs_pitch:g}"
    missing = [name for name in ("age", "gender", "race") if getattr(record, name) is None]
    if missing:
        return f"missing label: {', '.join(missing)}"
    age_bin = scenario.age.bin_of(record.age)
    if age_bin is None:
        return f"age outside the scenario's bins: {record.age:g}"
    try:
        race = convert_race(record.race, record.race_taxonomy, scenario.race.taxonomy)
    except (ValueError, KeyError) as error:
        return f"race taxonomy mismatch: {error}"
    return PoolFace(record, age_bin, record.gender, race, reuse_unlimited)


def find_identical(faces: list[PoolFace]) -> list[dict]:
    """Groups of usable faces whose image files are byte-identical, with `conflict` when their labels differ.

    One photo under two labels is label noise the model cannot learn from, and copies under two
    ids can land in different splits. Only files of equal size are hashed, so this costs a stat
    per face plus a read of the rare size collisions.
    """
    by_size: dict[int, list[PoolFace]] = {}
    for face in faces:
        try:
            by_size.setdefault(face.record.path.stat().st_size, []).append(face)
        except OSError:
            continue
    groups: dict[str, list[PoolFace]] = {}
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        for face in same_size:
            try:
                digest = hashlib.sha256(face.record.path.read_bytes()).hexdigest()
            except OSError:
                continue
            groups.setdefault(digest, []).append(face)
    found = []
    for digest, members in groups.items():
        if len(members) < 2:
            continue
        labels = [f"age {m.record.age:g}, {m.gender}, {m.race}" for m in members]
        found.append({"sha256": digest[:16], "files": [str(m.record.path) for m in members], "labels": labels,
                      "conflict": len(set(labels)) > 1})
    return sorted(found, key=lambda group: (not group["conflict"], group["files"]))


def source_label(spec: SourceSpec) -> str:
    """A source as given on the command line: KIND:PATH, or the kind alone (demo)."""
    return f"{spec.kind}:{spec.path}" if spec.path is not None else str(spec.kind)


def build_pool(scenario: Scenario, sources: list[SourceSpec], cache: LandmarkCache | LandmarkTable, executor: Executor,
               model_path: Path | None = None, quiet: bool = False) -> tuple[list[PoolFace], list[FaceLandmarks], PoolReport]:
    """Read the sources, detect landmarks, and split records into usable faces and skipped inputs.

    Returns the usable faces, their landmarks (same order) and the report of what was skipped.
    """
    report = PoolReport()
    scans = []
    for spec in sources:
        scan = load_source(spec, quiet)
        report.skipped.extend(dataclasses.replace(item, source=source_label(spec)) for item in scan.skipped)
        report.n_inputs += len(scan.records) + len(scan.skipped)
        scans.append(scan)
    detections = detect_all([r.path for scan in scans for r in scan.records], cache, executor, model_path, quiet)
    faces: list[PoolFace] = []
    landmarks: list[FaceLandmarks] = []
    seen: set[str] = set()
    for spec, scan in zip(sources, scans):
        for record in scan.records:
            if record.source_id in seen:
                report.skipped.append(SkippedInput(record.location, "duplicate source_id", source_label(spec)))
                continue
            seen.add(record.source_id)
            detection = detections[record.path]
            if detection.face is not None:
                report.n_detected += 1
                report.n_multi_face += detection.face.n_faces > 1
            verdict = usable_face(record, detection, scenario, scan.reuse_unlimited)
            if isinstance(verdict, str):
                report.skipped.append(SkippedInput(record.location, verdict, source_label(spec)))
            else:
                faces.append(verdict)
                landmarks.append(detection.face)
    report.identical_photos = find_identical(faces)
    return faces, landmarks, report


def detect_pool(sources: list[SourceSpec], table: LandmarkTable, executor: Executor, model_path: Path | None = None,
                quiet: bool = False) -> dict[str, int]:
    """`synthface detect`: landmarks of every image of the sources into `table`; counts for the summary."""
    records, skipped = [], 0
    for spec in sources:
        scan = load_source(spec, quiet)
        records.extend(scan.records)
        skipped += len(scan.skipped)
    known = len(table)
    detections = detect_all([record.path for record in records], table, executor, model_path, quiet)
    return {"images": len(detections), "faces": sum(d.face is not None for d in detections.values()),
            "detected": len(table) - known, "skipped": skipped, "rows": len(table)}
