"""Run a checkpoint over a dataset split: the per-sample predictions table, attention maps,
and Grad-CAM maps for a subset, plus the saliency mass on each sample's occluded pixels.

The predictions table keeps the metadata columns (labels, mask type, pair_id...) and adds
`<head>_pred` and `<head>_p_<class>` columns (see metrics.pred_column / prob_column), so
every metric and plot downstream works on one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from synthface.dataset import DatasetError, check_images, read_metadata, read_split, validate_for_training
from synthface.evaluation.metrics import CLASSIFICATION_HEADS, HEADS, pred_column, prob_column
from synthface.evaluation.saliency import GradCam, gradcam_layer, mass_on_region
from synthface.formats import open_dataset, read_listed_image
from synthface.progress import progress_bar
from synthface.taxonomy import convert_race

ATTENTION_SHARE = "attention_on_occlusion"
COVERED_AREA = "covered_area"  # share of the image's pixels under the occluder (from its map)


def gradcam_share_column(head: str) -> str:
    return f"gradcam_on_occlusion_{head}"


@dataclass
class Predictions:
    """What one pass of a model over a dataset split produced."""

    table: pd.DataFrame
    attention: np.ndarray | None  # (N, h, w) float32, or None for a model without attention
    gradcam_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # rows of `table`
    gradcam: dict[str, np.ndarray] = field(default_factory=dict)  # head -> (len(gradcam_rows), h, w)


class FaceImages:
    """Map-style dataset of a split's images through the model's eval transform (labels stay in the table)."""

    def __init__(self, root: Path, file_names: list[str], transform) -> None:
        self.root = Path(root)
        self.file_names = file_names
        self.transform = transform
        self.reader = open_dataset(self.root)  # image files, tar shards or parquet (synthface.formats)

    def __len__(self) -> int:
        return len(self.file_names)

    def __getitem__(self, index: int):
        bgr = read_listed_image(self.root, self.file_names[index], cv2.IMREAD_COLOR, self.reader)
        return self.transform(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))["image"]


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else is passed to torch."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# The split name reports use when a dataset without a test split is scored on the model's validation faces.
HELD_OUT_SPLIT = "held-out faces"


def load_split_for_model(root: Path, split: str, model_taxonomy: str) -> pd.DataFrame:
    """A dataset split with its race labels expressed in the model's taxonomy.

    A fairface7 dataset can be scored by a utkface5 model (labels mapped); the reverse is
    refused with the reason.
    """
    part, taxonomy = read_split(Path(root), split)
    return _in_model_taxonomy(part, taxonomy, model_taxonomy, root)


def load_rows_for_model(root: Path, split: str, info: dict) -> tuple[pd.DataFrame, str, str | None]:
    """(rows, split label, note): the split, or, when the dataset has no test split, the rows of
    the faces the checkpoint was validated on (held out from its training), with a note saying so."""
    root = Path(root)
    table = read_metadata(root)
    if split != "test" or "split" not in table.columns or bool((table["split"] == split).any()):
        return load_split_for_model(root, split, info["race_taxonomy"]), split, None
    faces = set((info.get("validation") or {}).get("faces") or [])
    present = sorted(table["split"].dropna().unique()) if "split" in table.columns else []
    if not faces or "source_id" not in table.columns:
        raise DatasetError(f"{root}: split 'test' has no rows (splits present: {present}) and the checkpoint records "
                           "no validation faces to score instead; pass --split with one of those splits")
    taxonomy = validate_for_training(table, root)
    part = table[table["source_id"].astype(str).isin(faces)].reset_index(drop=True)
    if part.empty:
        raise DatasetError(f"{root}: split 'test' has no rows (splits present: {present}), and none of its faces is "
                           "one the checkpoint held out from training; pass --split, or generate a dataset with a test split")
    check_images(root, part)
    note = (f"{root} has no 'test' split: scored on the {len(part)} images of the {part['source_id'].nunique()} "
            "source face(s) this model was validated on (held out from training, never trained on); they also "
            "chose the best checkpoint, so read these as validation figures, not a test")
    return _in_model_taxonomy(part, taxonomy, info["race_taxonomy"], root), HELD_OUT_SPLIT, note


def _in_model_taxonomy(part: pd.DataFrame, taxonomy: str, model_taxonomy: str, root: Path) -> pd.DataFrame:
    if taxonomy != model_taxonomy:
        try:
            part["race"] = [convert_race(label, taxonomy, model_taxonomy) for label in part["race"]]
        except ValueError as error:
            raise DatasetError(f"{root}: the model predicts {model_taxonomy} races but the dataset uses {taxonomy}: {error}") from None
        part["race_taxonomy"] = model_taxonomy
    return part


def predict_dataset(
    model,
    info: dict,
    root: Path,
    table: pd.DataFrame,
    device: str = "cpu",
    batch_size: int = 64,
    workers: int = 2,
    gradcam_samples: int = 256,
    progress: bool = True,
) -> Predictions:
    """Forward every row of `table` (images under `root`) and collect predictions and maps."""
    import torch
    from torch.utils.data import DataLoader

    from synthface.training.transforms import eval_transform

    classes = info["classes"]
    dataset = FaceImages(root, table["file_name"].tolist(), eval_transform(info["image_size"]))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.startswith("cuda"))
    outputs: dict[str, list[np.ndarray]] = {head: [] for head in HEADS}
    attention: list[np.ndarray] = []
    model.eval()
    with torch.inference_mode(), progress_bar(f"evaluate {Path(root).name}", len(dataset), quiet=not progress) as advance:
        for images in loader:
            result = model(images.to(device, non_blocking=True))
            advance(len(images))
            outputs["age"].append(result["age"].float().cpu().numpy())
            for head in CLASSIFICATION_HEADS:
                outputs[head].append(torch.softmax(result[head].float(), dim=1).cpu().numpy())
            if result.get("attention") is not None:
                attention.append(result["attention"][:, 0].float().cpu().numpy())

    predictions = table.copy()
    predictions[pred_column("age")] = np.concatenate(outputs["age"])
    for head in CLASSIFICATION_HEADS:
        probabilities = np.concatenate(outputs[head])
        predictions[pred_column(head)] = np.asarray(classes[head], dtype=object)[probabilities.argmax(axis=1)]
        for index, name in enumerate(classes[head]):
            predictions[prob_column(head, name)] = probabilities[:, index]
    attention_maps = np.concatenate(attention) if attention else None

    # Occlusion maps are read one at a time (a large test set's maps would not fit in memory).
    covered, attention_share = [], []
    for row, region in enumerate(iter_occlusion_maps(root, predictions)):
        covered.append(float((region > 0).mean()) if region is not None else np.nan)
        if attention_maps is not None:
            attention_share.append(mass_on_region(attention_maps[row], region) if region is not None else np.nan)
    predictions[COVERED_AREA] = covered
    if attention_maps is not None:
        predictions[ATTENTION_SHARE] = attention_share
    found = Predictions(predictions, attention_maps)
    if gradcam_samples > 0:
        _add_gradcam(found, model, dataset, root, device, gradcam_samples, min(batch_size, 16), progress)
    return found


def iter_occlusion_maps(root: Path, table: pd.DataFrame):
    """Each row's occlusion map (uint8, 255 = covered), or None when the row records none."""
    names = table["occlusion_file"].fillna("").astype(str) if "occlusion_file" in table.columns else [""] * len(table)
    reader = open_dataset(Path(root)) if any(names) else None
    for name in names:
        yield read_listed_image(root, name, cv2.IMREAD_GRAYSCALE, reader) if name else None


def load_occlusion_maps(root: Path, table: pd.DataFrame) -> list[np.ndarray | None]:
    """`iter_occlusion_maps` as a list (for a handful of rows: grids, Grad-CAM subsets)."""
    return list(iter_occlusion_maps(root, table))


def gradcam_subset(table: pd.DataFrame, limit: int, seed: int = 0) -> np.ndarray:
    """Up to `limit` rows for Grad-CAM: rows with a non-empty occluder first (they answer the
    question), then the rest; a fixed seed so reruns explain the same faces."""
    rng = np.random.default_rng(seed)
    with_occluder = (table[COVERED_AREA].fillna(0) > 0).to_numpy()
    first = rng.permutation(np.flatnonzero(with_occluder))
    rest = rng.permutation(np.flatnonzero(~with_occluder))
    return np.sort(np.concatenate([first, rest])[:limit]).astype(np.int64)


def _add_gradcam(found: Predictions, model, dataset, root: Path, device: str, limit: int, batch_size: int,
                 progress: bool) -> None:
    """Grad-CAM maps per head on a subset, and their mass on the occluded pixels."""
    import torch

    rows = gradcam_subset(found.table, limit)
    explainer = GradCam(model, gradcam_layer(model))
    maps: dict[str, list[np.ndarray]] = {head: [] for head in HEADS}
    with progress_bar("grad-cam", len(rows), quiet=not progress) as advance:
        for start in range(0, len(rows), batch_size):
            batch_rows = rows[start:start + batch_size]
            images = torch.stack([dataset[int(row)] for row in batch_rows]).to(device)
            _, batch_maps = explainer(images, HEADS)
            for head in HEADS:
                maps[head].append(batch_maps[head])
            advance(len(batch_rows))
    found.gradcam_rows = rows
    regions = load_occlusion_maps(root, found.table.iloc[rows])
    found.gradcam = {head: np.concatenate(parts) if parts else np.zeros((0, 1, 1), np.float32) for head, parts in maps.items()}
    for head in HEADS:
        column = np.full(len(found.table), np.nan)
        for position, (row, region) in enumerate(zip(rows, regions)):
            if region is not None:
                column[row] = mass_on_region(found.gradcam[head][position], region)
        found.table[gradcam_share_column(head)] = column
