"""The README's first run, end to end on real generator output (the bundled demo pool):
generate -> train (demo_cpu) -> evaluate -> compare -> predict -> export, each reading the
previous step's output with no extra flag. Kept small: 64 px images, a few training steps."""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from synthface.paths import bundled_dir
from synthface.training.checkpoint import load_checkpoint


@pytest.mark.slow
def test_readme_first_run_loop(cli, tmp_path, monkeypatch, astronaut) -> None:
    monkeypatch.chdir(tmp_path)
    scenario = yaml.safe_load((bundled_dir("scenarios") / "all_masked.yaml").read_text())
    scenario.update(n_samples=8, image_size=64)  # the README's scenario, smaller
    (tmp_path / "all_masked.yaml").write_text(yaml.safe_dump(scenario))

    result = cli(["generate", "all_masked.yaml", "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output

    # The demo dataset has no val split: the trainer holds out a source face and says so.
    result = cli(["train", "demo_cpu", "--data", "out/all_masked", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "has no 'val' split: holding out 1 of 2 source faces" in result.output
    state = load_checkpoint(tmp_path / "runs" / "demo_cpu" / "best.pt")
    validation = state["validation"]
    assert validation["held_out"] and len(validation["faces"]) == 1
    assert state["architecture"]["backbone"] == "resnet18"

    # No test split either: evaluate and compare score the held-out face, with a note.
    result = cli(["evaluate", "runs/demo_cpu/best.pt", "--data", "out/all_masked", "--out", "reports/demo",
                  "--quiet", "--gradcam-samples", "2", "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    assert "no 'test' split" in result.output
    metrics = json.loads((tmp_path / "reports" / "demo" / "metrics.json").read_text())
    assert metrics["split"] == "held-out faces" and metrics["n_samples"] > 0
    assert "never trained on" in (tmp_path / "reports" / "demo" / "report.md").read_text()

    result = cli(["compare", "runs/demo_cpu/best.pt", "out/all_masked", "--out", "reports/compare", "--quiet",
                  "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    assert "no 'test' split" in (tmp_path / "reports" / "compare" / "comparison.md").read_text()

    Image.fromarray(astronaut).save(tmp_path / "photo.jpg")
    result = cli(["predict", "runs/demo_cpu/best.pt", "photo.jpg"])
    assert result.exit_code == 0, result.output
    faces = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert faces and "error" not in faces[0]
    assert set(faces[0]["mask"]["probabilities"]) == {"none", "correct", "incorrect"}  # the dataset has mask_state

    result = cli(["export", "runs/demo_cpu/best.pt"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "demo_cpu" / "best.onnx").is_file()
    assert "parity: passed" in result.output
