"""Inference cost of OAMNet: parameters, checkpoint size, latency at batch 1 and throughput
at batch 64, on the CPU and (when present) the GPU, plus ONNX Runtime on the CPU.

    python benchmarks/inference.py                          # an untrained model at 224 px
    python benchmarks/inference.py --checkpoint runs/oam/best.pt --json out/inference.json

Without --checkpoint the model is built fresh (weights do not change the cost) and saved
as a weights-only inference checkpoint to measure its size. Latency is the median wall time
of one forward pass after warm-up (p90 alongside); throughput is images per second at
batch 64. CPU rows also try channels_last; GPU rows also try bf16 autocast with channels_last,
the training settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="synthface checkpoint to measure (default: an untrained OAMNet)")
    parser.add_argument("--image-size", type=int, default=224, help="input size when no checkpoint is given")
    parser.add_argument("--no-attention", action="store_true", help="measure the attention ablation (no checkpoint)")
    parser.add_argument("--devices", default="auto", help="comma list of cpu, cuda; auto = cpu plus cuda when present")
    parser.add_argument("--cpu-threads", type=int, default=0, help="torch CPU threads (0 = torch default, all cores)")
    parser.add_argument("--throughput-batch", type=int, default=64, help="batch size of the throughput figure")
    parser.add_argument("--repeats", type=int, default=10, help="timed passes per figure (after 3 warm-up passes)")
    parser.add_argument("--cpu-throughput-repeats", type=int, default=3, help="timed passes of the CPU batch-64 figure")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()

    import torch

    from synthface.evaluation.efficiency import (
        count_parameters,
        measure_onnxruntime,
        measure_torch,
        write_inference_checkpoint,
    )
    from synthface.training.checkpoint import load_for_inference
    from synthface.training.model import OAMNet

    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    workdir = Path(tempfile.mkdtemp(prefix="synthface-bench-"))
    if args.checkpoint:
        checkpoint = args.checkpoint
        model, info = load_for_inference(checkpoint)
        image_size = info["image_size"]
    else:
        image_size = args.image_size
        model = OAMNet(num_races=5, attention=not args.no_attention).eval()
        checkpoint = write_inference_checkpoint(workdir / "oamnet.pt", model, image_size)

    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])] if args.devices == "auto" else args.devices.split(",")
    report = {
        "model": "OAMNet (ResNet-50, " + ("spatial attention" if model.attention is not None else "no attention") + ")",
        "image_size": image_size,
        "parameters": count_parameters(model),
        "checkpoint_bytes": checkpoint.stat().st_size,
        "machine": {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "rows": [],
    }

    def add(engine: str, device: str, precision: str, latency: dict, throughput: dict) -> None:
        row = {"engine": engine, "device": device, "precision": precision,
               "latency_b1_median_ms": latency["median_ms"], "latency_b1_p90_ms": latency["p90_ms"],
               f"throughput_b{throughput['batch_size']}_images_per_s": throughput["images_per_s"]}
        report["rows"].append(row)
        print(f"  {engine:12s} {device:5s} {precision:22s} batch 1: {latency['median_ms']:8.2f} ms "
              f"(p90 {latency['p90_ms']:.2f})   batch {throughput['batch_size']}: {throughput['images_per_s']:8.1f} images/s",
              flush=True)

    print(f"{report['model']} at {image_size} px: {report['parameters']['total'] / 1e6:.2f} M parameters, "
          f"checkpoint {report['checkpoint_bytes'] / 1e6:.1f} MB", flush=True)
    for device in devices:
        cpu = device == "cpu"
        throughput_repeats = args.cpu_throughput_repeats if cpu else args.repeats
        # channels_last helps oneDNN's CPU convolutions too; bf16 autocast is the GPU training setting.
        settings = [("fp32", False), ("fp32", True)] if cpu else [("fp32", False), ("bf16", True)]
        for precision, channels_last in settings:
            latency = measure_torch(model, image_size, device, 1, repeats=args.repeats, precision=precision,
                                    channels_last=channels_last)
            throughput = measure_torch(model, image_size, device, args.throughput_batch, warmup=1 if cpu else 3,
                                       repeats=throughput_repeats, precision=precision, channels_last=channels_last)
            label = precision + (" channels_last" if channels_last else "")
            add("pytorch", device, label, latency, throughput)
        model.to("cpu").to(memory_format=torch.contiguous_format)

    if not args.no_onnx:
        from synthface.evaluation.export import export_onnx

        exported = export_onnx(checkpoint, workdir / "oamnet.onnx", check=True)
        report["onnx_bytes"] = exported["size_bytes"]
        report["onnx_parity_max_abs_diff"] = max(o["max_abs_diff"] for o in exported["parity"]["outputs"].values())
        latency = measure_onnxruntime(workdir / "oamnet.onnx", image_size, 1, repeats=args.repeats)
        throughput = measure_onnxruntime(workdir / "oamnet.onnx", image_size, args.throughput_batch, warmup=1,
                                         repeats=args.cpu_throughput_repeats)
        add("onnxruntime", "cpu", "fp32", latency, throughput)
        print(f"  ONNX file {report['onnx_bytes'] / 1e6:.1f} MB, parity max |diff| {report['onnx_parity_max_abs_diff']:.2e}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
