"""`synthface export CKPT --onnx`: the model as ONNX, checked against PyTorch with ONNX Runtime.

The exported graph takes a normalised float batch `image` (B x 3 x S x S, ImageNet
mean/std, as `training.transforms.eval_transform` produces) and returns `age` (years),
`gender`, `race`, `mask` (logits) and, for attention models, `attention`. The batch axis is
dynamic. Parity: every output must satisfy |onnx - torch| <= atol + rtol * |torch|.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from synthface.evaluation.metrics import HEADS

DEFAULT_OPSET = 17
DEFAULT_ATOL = 1e-3
DEFAULT_RTOL = 1e-3


class ExportError(RuntimeError):
    """The export failed or ONNX Runtime disagrees with PyTorch beyond the tolerance."""


def _tuple_model(model):
    """A wrapper returning a tuple of tensors (ONNX graphs have no dicts or None outputs)."""
    import torch

    class TupleOutputs(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image):
            outputs = self.inner(image)
            names = [*HEADS, "attention"] if outputs.get("attention") is not None else list(HEADS)
            return tuple(outputs[name] for name in names)

    return TupleOutputs(model).eval()


def output_names(has_attention: bool) -> list[str]:
    return [*HEADS, "attention"] if has_attention else list(HEADS)


def export_onnx(
    checkpoint: Path,
    out: Path | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    check_batch: int = 3,
) -> dict:
    """Write `out` (default: the checkpoint path with .onnx) and, with `check`, compare ONNX
    Runtime with PyTorch on a random batch; returns the report (also saved as <out>.json beside it)."""
    import torch

    from synthface.training.checkpoint import load_for_inference

    checkpoint = Path(checkpoint)
    out = Path(out) if out is not None else checkpoint.with_suffix(".onnx")
    model, info = load_for_inference(checkpoint, device="cpu")
    wrapped = _tuple_model(model)
    names = output_names(info["attention"])
    size = info["image_size"]
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs
        # the extra `onnxscript` package; the graph it writes is the same standard ONNX.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, (example,), str(out), input_names=["image"], output_names=names,
            dynamic_axes={name: {0: "batch"} for name in ["image", *names]},
            opset_version=opset, dynamo=False,
        )
    wrapped.eval()  # the exporter restores the training flag it found; be explicit
    report = {
        "checkpoint": str(checkpoint),
        "onnx": str(out),
        "opset": opset,
        "input": {"name": "image", "shape": ["batch", 3, size, size], "mean": info["mean"], "std": info["std"]},
        "outputs": names,
        "classes": info["classes"],
        "size_bytes": out.stat().st_size,
    }
    if check:
        report["parity"] = check_parity(wrapped, out, names, size, atol, rtol, check_batch)
    out.with_name(out.name + ".json").write_text(json.dumps(report, indent=2) + "\n")
    if check and not report["parity"]["passed"]:
        worst = max(report["parity"]["outputs"].items(), key=lambda item: item[1]["max_abs_diff"])
        raise ExportError(f"{out}: ONNX Runtime differs from PyTorch beyond atol={atol}, rtol={rtol} "
                          f"(worst output {worst[0]}: max |diff| {worst[1]['max_abs_diff']:.3g})")
    return report


def check_parity(wrapped, onnx_path: Path, names: list[str], size: int, atol: float, rtol: float, batch: int) -> dict:
    """Run the same random batch through PyTorch and ONNX Runtime (CPU) and compare every output.

    The batch size differs from the export example on purpose, to exercise the dynamic axis.
    """
    import onnxruntime
    import torch

    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = [tensor.numpy() for tensor in wrapped(images)]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(names, {"image": images.numpy()})
    outputs = {}
    for name, want, got in zip(names, expected, actual):
        difference = np.abs(got.astype(np.float64) - want.astype(np.float64))
        outputs[name] = {
            "shape": list(got.shape),
            "max_abs_diff": float(difference.max()),
            "passed": bool(got.shape == want.shape and np.all(difference <= atol + rtol * np.abs(want))),
        }
    return {"batch": batch, "atol": atol, "rtol": rtol, "outputs": outputs,
            "passed": all(item["passed"] for item in outputs.values())}
