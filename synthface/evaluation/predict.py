"""`synthface predict`: faces in photos -> age, gender, race and mask, one JSON object per face.

Faces are found with the same MediaPipe landmarker and aligned with the same crop as in
generation (`align.align_face`, `faces.crop_margin` of the scenario), so the model sees
what it was trained on. An unreadable image or one without a face gives an entry with an
`error` key instead of stopping the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthface.evaluation.metrics import CLASSIFICATION_HEADS
from synthface.scenario import FaceQuality

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# The generator's default crop; a model trained on another `faces.crop_margin` wants --margin.
DEFAULT_MARGIN: float = FaceQuality.model_fields["crop_margin"].default


def image_files(inputs: list[Path]) -> Iterator[Path]:
    """The files given, and the images inside the folders given (sorted, not recursive)."""
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            yield from sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield item


def read_rgb(path: Path) -> np.ndarray:
    """An RGB uint8 image; ValueError with the reason when it cannot be read."""
    from synthface.images import read_image_rgb

    if not path.is_file():
        raise ValueError("file not found")
    return read_image_rgb(path)


@dataclass
class FaceResult:
    """One face as the model saw it: the JSON entry `predict` prints, the aligned crop fed to the
    model, and its spatial attention map (h x w in [0, 1]; None for a model trained without attention)."""

    entry: dict
    crop: np.ndarray
    attention: np.ndarray | None


class FacePredictor:
    """Checkpoint + landmarker: call `predict(rgb)` for a list of per-face dicts."""

    def __init__(self, checkpoint: Path, device: str = "cpu", margin: float = DEFAULT_MARGIN,
                 landmarker: Path | None = None, max_faces: int = 4) -> None:
        from synthface.landmarks import LandmarkDetector
        from synthface.training.checkpoint import load_for_inference
        from synthface.training.transforms import eval_transform

        self.device = device
        self.margin = margin
        self.model, self.info = load_for_inference(checkpoint, device=device)
        self.transform = eval_transform(self.info["image_size"])
        self.detector = LandmarkDetector(landmarker, max_faces=max_faces)

    def close(self) -> None:
        self.detector.close()

    def predict(self, rgb: np.ndarray, all_faces: bool = True) -> list[dict]:
        """Per detected face (largest first): box, age, and label + probabilities per head."""
        return [found.entry for found in self.explain(rgb, all_faces)]

    def explain(self, rgb: np.ndarray, all_faces: bool = True) -> list[FaceResult]:
        """`predict`'s entries with what the model saw: each face's aligned crop and its attention map."""
        import torch

        from synthface.generation.align import align_face

        faces = self.detector.detect(rgb)
        if not all_faces:
            faces = faces[:1]
        if not faces:
            return []
        size = self.info["image_size"]
        crops = [align_face(rgb, face, size, self.margin).image for face in faces]
        batch = torch.stack([self.transform(image=crop)["image"] for crop in crops]).to(self.device)
        with torch.inference_mode():
            outputs = self.model(batch)
        attention = outputs.get("attention")
        results = []
        for index, face in enumerate(faces):
            entry: dict = {
                "face": index,
                "box": [round(value, 1) for value in face.bbox],
                "age": round(float(outputs["age"][index]), 1),
            }
            for head in CLASSIFICATION_HEADS:
                probabilities = torch.softmax(outputs[head][index].float(), dim=0).cpu().numpy()
                names = self.info["classes"][head]
                entry[head] = {
                    "label": names[int(probabilities.argmax())],
                    "probabilities": {name: round(float(p), 4) for name, p in zip(names, probabilities)},
                }
            face_attention = attention[index, 0].float().cpu().numpy() if attention is not None else None
            results.append(FaceResult(entry, crops[index], face_attention))
        return results


def annotate(rgb: np.ndarray, faces: list[dict]) -> np.ndarray:
    """A copy of the photo with each face's box and a label panel (white on dark) above it."""
    canvas = rgb.copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = max(0.45, max(canvas.shape[:2]) / 1100)
    thickness = max(1, int(round(font_scale * 2)))
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face["box"])
        colour = (40, 200, 80) if face["mask"]["label"] in ("unmasked", "none") else (255, 140, 0)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness + 1)

        def top(head: str) -> str:
            label = face[head]["label"]
            return f"{label} {face[head]['probabilities'][label]:.2f}"

        lines = [f"age {face['age']:.0f}, {top('gender')}", top("race"), top("mask")]
        sizes = [cv2.getTextSize(text, font, font_scale, thickness)[0] for text in lines]
        line_height = max(h for _, h in sizes) + int(8 * font_scale) + 2
        width = max(w for w, _ in sizes) + 8
        height = line_height * len(lines) + 4
        # Above the box when there is room, else inside its top edge.
        panel_y0 = y0 - height if y0 - height >= 0 else y0
        panel_x0 = min(max(x0, 0), max(canvas.shape[1] - width, 0))
        cv2.rectangle(canvas, (panel_x0, panel_y0), (panel_x0 + width, panel_y0 + height), (20, 20, 20), -1)
        cv2.rectangle(canvas, (panel_x0, panel_y0), (panel_x0 + width, panel_y0 + height), colour, 1)
        for number, text in enumerate(lines):
            baseline = panel_y0 + (number + 1) * line_height - int(4 * font_scale)
            cv2.putText(canvas, text, (panel_x0 + 4, baseline), font, font_scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return canvas


def predict_images(
    predictor: FacePredictor,
    inputs: list[Path],
    annotate_dir: Path | None = None,
    all_faces: bool = True,
) -> Iterator[dict]:
    """One dict per face found (with `image`), or one `{"image", "error"}` per image that failed."""
    for path in image_files(inputs):
        try:
            rgb = read_rgb(path)
        except ValueError as error:
            yield {"image": str(path), "error": str(error)}
            continue
        faces = predictor.predict(rgb, all_faces=all_faces)
        if not faces:
            yield {"image": str(path), "error": "no face found"}
            continue
        if annotate_dir is not None:
            annotate_dir.mkdir(parents=True, exist_ok=True)
            target = annotate_dir / f"{path.stem}.annotated.jpg"
            cv2.imwrite(str(target), cv2.cvtColor(annotate(rgb, faces), cv2.COLOR_RGB2BGR))
        for face in faces:
            yield {"image": str(path), **face}
