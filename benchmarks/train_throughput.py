"""Training throughput of OAMNet: the model's ceiling and the real data pipeline.

(a) synthetic: uint8 images and labels already on the device, so only the training step
    (normalise, forward, loss, backward, AdamW) is timed: the model's ceiling.
(b) real: batches from the real loader (JPEG decode + albumentations in worker
    processes, pinned memory) of a dataset written by `synthface generate`.
Both use the trainer's own `train_step`. Prints images/s for each, their ratio, how fast
the loader alone delivers, and the peak GPU memory.

    python benchmarks/train_throughput.py --data out/mixed_50 --batch-size 256 --workers 15
    python benchmarks/train_throughput.py --data out/mixed_50 --compile

Targets on one H100 at 224 px, bf16, channels_last: (a) >= 2,500 images/s, (b) >= 90% of (a).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (synthface format)")
    parser.add_argument("--recipe", default="oam_resnet50", help="recipe file or bundled name")
    parser.add_argument("--image-size", type=int, default=224, help="input size in pixels")
    parser.add_argument("--batch-size", type=int, default=256, help="images per step")
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) - 1, 1), help="loader processes")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=15, help="untimed steps first (cuDNN autotuning, compile)")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"], help="autocast")
    parser.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory layout")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model and loss")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser.parse_args()


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    args = _args()
    import torch
    from rich.console import Console

    from synthface.training.loop import Trainer
    from synthface.training.recipe import load_recipe, resolve_recipe_path, with_overrides

    recipe = with_overrides(load_recipe(resolve_recipe_path(args.recipe)), {
        "model.backbone_weights": "none",  # speed does not depend on the starting weights
        "data.image_size": args.image_size,
        "data.batch_size": args.batch_size,
        "data.workers": args.workers,
        "runtime.precision": args.precision,
        "runtime.channels_last": not args.no_channels_last,
        "runtime.compile": args.compile,
        "runtime.device": args.device,
        "optim.epochs": 1000,  # a long schedule: the loader streams epoch after epoch
        "optim.warmup_epochs": 1,
    })
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = Trainer(recipe, args.data, out_dir, console=Console(stderr=True))
        device = trainer.device
        n_races = len(trainer.data.labels.race)
        b, s = args.batch_size, args.image_size
        synthetic = (
            torch.randint(0, 256, (b, s, s, 3), dtype=torch.uint8, device=device),
            torch.rand(b, device=device) * 80,
            torch.randint(0, 2, (b,), device=device),
            torch.randint(0, n_races, (b,), device=device),
            torch.randint(0, 2, (b,), device=device),
        )

        def timed(next_batch, steps: int) -> float:
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(next_batch())
            _sync(device)
            return steps * b / (time.perf_counter() - start)

        timed(lambda: synthetic, args.warmup)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        ceiling = timed(lambda: synthetic, args.steps)

        sampler = trainer.data.train_sampler
        sampler.set_position(0, end_epoch=recipe.optim.epochs)
        batches = iter(trainer.data.train_loader)
        timed(lambda: next(batches), args.warmup)
        real = timed(lambda: next(batches), args.steps)

        # The loader alone: first drain what the workers had queued, then time fresh batches.
        for _ in range(max(args.workers, 1) * recipe.data.prefetch_factor):
            next(batches)
        start = time.perf_counter()
        for _ in range(args.steps):
            next(batches)
        loader_only = args.steps * b / (time.perf_counter() - start)
        batches = None  # release the loader workers before the next measurement

        # One worker's cost per image (decode + augment), measured in this process.
        dataset = trainer.data.train_loader.dataset
        keys = list(itertools.islice(iter(sampler), 200))
        start = time.perf_counter()
        for key in keys:
            dataset[key]
        per_image_ms = (time.perf_counter() - start) / len(keys) * 1000

    peak_gib = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    figures = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "image_size": s, "batch_size": b, "workers": args.workers, "compile": args.compile,
        "precision": str(trainer.autocast_dtype).replace("torch.", "") if trainer.autocast_dtype else "fp32",
        "channels_last": trainer.channels_last,
        "train_images": len(trainer.data.train_table),
        "synthetic_images_per_s": round(ceiling, 1),
        "real_images_per_s": round(real, 1),
        "real_over_synthetic": round(real / ceiling, 3),
        "loader_only_images_per_s": round(loader_only, 1),
        "cpu_ms_per_image_one_worker": round(per_image_ms, 3),
        "peak_gpu_memory_gib": round(peak_gib, 2),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
