"""Model cost figures: parameters, checkpoint size, latency (batch 1) and throughput (batch 64).

Used by `benchmarks/inference.py`. Timings are wall-clock medians after warm-up; on a GPU
every timed region ends with a device synchronisation, so queued kernels are counted.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from synthface.taxonomy import GENDERS, MASK_CLASSES, MASK_STATES, races


def count_parameters(model) -> dict[str, int]:
    """Total and trainable parameter counts."""
    parameters = list(model.parameters())
    return {"total": sum(p.numel() for p in parameters),
            "trainable": sum(p.numel() for p in parameters if p.requires_grad)}


def write_inference_checkpoint(path: Path, model, image_size: int, race_taxonomy: str = "utkface5") -> Path:
    """Save `model` as a weights-only synthface checkpoint (no optimizer state) that
    `training.checkpoint.load_for_inference` reads: what a deployment would ship."""
    from synthface.training.checkpoint import save_checkpoint
    from synthface.training.recipe import Recipe, with_overrides
    from synthface.training.transforms import MEAN, STD

    recipe = with_overrides(Recipe(), {
        "data.image_size": image_size,
        "model.attention": model.attention is not None,
        "model.age_max": model.age_max,
        "model.backbone": model.backbone,
        "model.gender_aware_age": model.gender_aware_age,
    })
    mask_classes = MASK_STATES if model.heads["mask"][-1].out_features == len(MASK_STATES) else MASK_CLASSES
    save_checkpoint(Path(path), {
        "model": model.state_dict(),
        "recipe": recipe.model_dump(mode="json"),
        "race_taxonomy": race_taxonomy,
        "classes": {"gender": list(GENDERS), "race": list(races(race_taxonomy)), "mask": list(mask_classes)},
        "image_size": image_size,
        "mean": list(MEAN),
        "std": list(STD),
        "dataset_fingerprint": "untrained",
        "epoch": 0,
        "step": 0,
    })
    return Path(path)


def _timed_runs(run, device: str, warmup: int, repeats: int) -> list[float]:
    """Seconds per call of `run()` over `repeats` calls after `warmup` untimed ones."""
    import torch

    synchronise = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        run()
    synchronise()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronise()
        times.append(time.perf_counter() - start)
    return times


def measure_torch(model, image_size: int, device: str, batch_size: int, warmup: int = 3, repeats: int = 10,
                  precision: str = "fp32", channels_last: bool = False) -> dict[str, float]:
    """Median and p90 latency (ms) of one forward pass at `batch_size`, and images per second.

    precision: fp32, or bf16 / fp16 (autocast; GPU only).
    """
    import torch

    model = model.to(device).eval()
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    def run() -> None:
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            model(images)

    times = _timed_runs(run, device, warmup, repeats)
    return _summary(times, batch_size)


def measure_onnxruntime(onnx_path: Path, image_size: int, batch_size: int, warmup: int = 3, repeats: int = 10,
                        providers: list[str] | None = None) -> dict[str, float]:
    """The same figures for an exported model under ONNX Runtime (CPU by default)."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=providers or ["CPUExecutionProvider"])
    images = np.random.default_rng(0).standard_normal((batch_size, 3, image_size, image_size), dtype=np.float32)
    times = _timed_runs(lambda: session.run(None, {"image": images}), "cpu", warmup, repeats)
    return _summary(times, batch_size)


def _summary(times: list[float], batch_size: int) -> dict[str, float]:
    ordered = sorted(times)
    median = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"batch_size": batch_size, "median_ms": 1000 * median, "p90_ms": 1000 * p90,
            "images_per_s": batch_size / median, "repeats": len(times)}
