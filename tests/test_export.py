"""`synthface export --onnx`: the exported graph gives PyTorch's outputs under ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import torch

from synthface.evaluation.efficiency import write_inference_checkpoint
from synthface.evaluation.export import _tuple_model, check_parity
from synthface.training.checkpoint import load_for_inference
from synthface.training.model import OAMNet


def test_onnx_export_matches_pytorch_within_tolerance(cli, tmp_path):
    torch.manual_seed(0)
    checkpoint = write_inference_checkpoint(tmp_path / "best.pt", OAMNet(num_races=5), image_size=64)
    out = tmp_path / "model.onnx"
    result = cli(["export", str(checkpoint), "--onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "parity: passed" in result.output

    report = json.loads((tmp_path / "model.onnx.json").read_text())
    assert report["outputs"] == ["age", "gender", "race", "mask", "attention"]
    assert report["parity"]["passed"] and report["parity"]["batch"] == 3
    assert report["parity"]["outputs"]["race"]["shape"] == [3, 5]

    # Independently of the exporter's own check: a batch of another size (dynamic axis).
    model, _ = load_for_inference(checkpoint)
    images = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    age, gender, race, mask, attention = session.run(None, {"image": images.numpy()})
    assert np.allclose(age, expected["age"].numpy(), atol=1e-3, rtol=1e-3)
    assert np.allclose(race, expected["race"].numpy(), atol=1e-3, rtol=1e-3)
    assert np.allclose(attention, expected["attention"].numpy(), atol=1e-4)
    assert gender.shape == mask.shape == (5, 2)

    # A zero tolerance cannot hold for float32 kernels that differ: the check must say so.
    strict = check_parity(_tuple_model(model), out, report["outputs"], 64, atol=0.0, rtol=0.0, batch=2)
    assert not strict["passed"]
    assert max(item["max_abs_diff"] for item in strict["outputs"].values()) < 1e-2


def test_export_of_a_missing_checkpoint_is_a_clear_error(cli, tmp_path):
    result = cli(["export", str(tmp_path / "nope.pt")])
    assert result.exit_code == 2 and "nope.pt: file not found; expected a checkpoint file" in result.output
