"""Where the model looks: attention maps, Grad-CAM, and their mass on occluded pixels.

The generator records exactly which pixels a mask covers (occlusion/<id>.png, white =
covered), so "does the model look away from the mask?" has an objective answer: the share
of a saliency map's mass that falls on covered pixels. Compared with the covered share of
the image (what a uniform map would give), a ratio below 1 means the model looks away.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def upsample(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) map to (height, width), negative values clipped to 0."""
    height, width = size
    resized = cv2.resize(np.asarray(saliency, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0, None)


def mass_on_region(saliency: np.ndarray, region: np.ndarray) -> float:
    """Share of the saliency mass inside `region` (a boolean or 0/255 map of the image size).

    The map is upsampled to the region's size first; NaN when the map is all zero.
    """
    region = np.asarray(region) > 0
    weights = upsample(saliency, region.shape)
    total = float(weights.sum())
    if total <= 0:
        return float("nan")
    return float(weights[region].sum() / total)


def occlusion_shares(saliency_maps: Sequence[np.ndarray], regions: Sequence[np.ndarray | None]) -> np.ndarray:
    """`mass_on_region` per sample; NaN where a sample has no occlusion map."""
    return np.array([
        mass_on_region(saliency, region) if region is not None else float("nan")
        for saliency, region in zip(saliency_maps, regions)
    ])


def summarise_shares(shares: np.ndarray, covered_area: np.ndarray) -> dict[str, float]:
    """Mean share of saliency on the occluder, mean covered area, and their ratio, over samples
    that have a map and a non-empty occluder."""
    shares = np.asarray(shares, np.float64)
    covered_area = np.asarray(covered_area, np.float64)
    valid = np.isfinite(shares) & (covered_area > 0)
    if not valid.any():
        return {"n": 0, "mean_share": float("nan"), "mean_covered_area": float("nan"), "ratio": float("nan")}
    mean_share = float(shares[valid].mean())
    mean_area = float(covered_area[valid].mean())
    return {"n": int(valid.sum()), "mean_share": mean_share, "mean_covered_area": mean_area,
            "ratio": mean_share / mean_area}


class GradCam:
    """Grad-CAM on a feature layer of a multi-head model, one map per head.

    For a classification head the target is the logit of the predicted class; for the age
    head it is the predicted age itself. Maps are ReLU(sum_k mean(dY/dA_k) * A_k), one per
    sample, at the layer's resolution. Samples are independent in eval mode, so one backward
    pass over the batch sum gives every sample's gradient.
    """

    def __init__(self, model, layer) -> None:
        self.model = model
        self.layer = layer

    def __call__(self, images, heads: Sequence[str]) -> tuple[dict, dict[str, np.ndarray]]:
        """(model outputs, {head: (B, h, w) maps}) for a normalised image batch."""
        import torch

        captured: list[torch.Tensor] = []
        handle = self.layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
        try:
            with torch.enable_grad():
                outputs = self.model(images)
                features = captured[0]
                maps: dict[str, np.ndarray] = {}
                for index, head in enumerate(heads):
                    output = outputs[head]
                    target = output if output.ndim == 1 else output.gather(1, output.argmax(1, keepdim=True)).squeeze(1)
                    (gradient,) = torch.autograd.grad(target.sum(), features, retain_graph=index < len(heads) - 1)
                    weights = gradient.mean(dim=(2, 3), keepdim=True)
                    cam = torch.relu((weights * features).sum(dim=1))
                    maps[head] = cam.detach().float().cpu().numpy()
        finally:
            handle.remove()
        detached = {name: (value.detach() if value is not None else None) for name, value in outputs.items()}
        return detached, maps


def gradcam_layer(model):
    """The layer whose activations Grad-CAM explains: the trunk's last block (before attention)."""
    trunk = getattr(model, "trunk", None)
    if trunk is None:
        raise ValueError(f"{type(model).__name__} has no `trunk`; Grad-CAM needs the feature layer to explain")
    return trunk[-1]


def overlay(image_rgb: np.ndarray, saliency: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The face with a saliency map drawn over it (jet colours, scaled to its own max); an
    all-zero map (nothing to show) leaves the face as it is."""
    height, width = image_rgb.shape[:2]
    heat = upsample(saliency, (height, width))
    peak = heat.max()
    if peak <= 0:
        return image_rgb.copy()
    heat = heat / peak
    coloured = cv2.applyColorMap(np.uint8(np.round(255 * heat)), cv2.COLORMAP_JET)
    coloured = cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)
    return np.uint8(np.round((1 - alpha) * image_rgb.astype(np.float32) + alpha * coloured.astype(np.float32)))
