"""Shared fixtures: the real public-domain test photos and an isolated synthface cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def wide_terminal():
    """Rich wraps CLI output at the terminal width; tests match messages, so give them one width everywhere."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"
    yield
    if previous is None:
        os.environ.pop("COLUMNS", None)
    else:
        os.environ["COLUMNS"] = previous


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep tests' landmark caches and demo files out of the user's ~/.cache."""
    path = tmp_path_factory.mktemp("synthface-cache")
    previous = os.environ.get("SYNTHFACE_CACHE")
    os.environ["SYNTHFACE_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("SYNTHFACE_CACHE", None)
    else:
        os.environ["SYNTHFACE_CACHE"] = previous


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (public domain)."""
    from synthface.generation.sources.demo import demo_photo

    return demo_photo("astronaut")


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's Grace Hopper sample photo (public domain)."""
    from synthface.generation.sources.demo import demo_photo

    return demo_photo("grace_hopper")


# UTKFace-style names: age_gender_race_datetime.jpg (labels invented for the test pool).
UTK_FACES = [
    ("astronaut", False, 1.0, "35_1_0_20170101000001.jpg"),
    ("astronaut", True, 1.0, "22_0_1_20170101000002.jpg"),
    ("astronaut", False, 0.8, "64_0_2_20170101000003.jpg"),
    ("astronaut", True, 0.8, "8_1_3_20170101000004.jpg"),
    ("grace", False, 1.0, "77_1_0_20170101000005.jpg"),
    ("grace", True, 1.0, "50_0_4_20170101000006.jpg"),
    ("grace", False, 0.8, "27_1_2_20170101000007.jpg"),
    ("grace", True, 0.8, "41_0_1_20170101000008.jpg"),
]


@pytest.fixture(scope="session")
def utk_folder(tmp_path_factory, astronaut, grace_hopper) -> Path:
    """A tiny UTKFace-style pool made from the two real photos (flips and zooms), with one
    badly named file and one image without a face, which must be reported, not fatal."""
    from PIL import Image

    root = tmp_path_factory.mktemp("utkface")
    photos = {"astronaut": astronaut, "grace": grace_hopper}
    for photo, flip, zoom, name in UTK_FACES:
        image = photos[photo][:, ::-1] if flip else photos[photo]
        height, width = image.shape[:2]
        crop_h, crop_w = int(height * zoom), int(width * zoom)
        top, left = (height - crop_h) // 4, (width - crop_w) // 2
        Image.fromarray(np.ascontiguousarray(image[top : top + crop_h, left : left + crop_w])).save(root / name, quality=92)
    Image.fromarray(astronaut).save(root / "not_a_utkface_name.jpg")
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(root / "30_0_0_20170101000009.jpg")  # no face
    return root


@pytest.fixture
def cli():
    """Run `synthface ARGS...` in-process through the real command-line app; returns typer's Result."""
    from typer.testing import CliRunner

    from synthface.cli import app

    return lambda args: CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture(scope="session")
def generated_dataset(tmp_path_factory) -> Path:
    """A small dataset written by the real generator from the demo pool: masked samples with
    unmasked twins and occlusion maps, unmasked samples (some with a scarf), several lighting
    presets, and report.json. Used by the app's tests (about 10 s, once per session)."""
    import yaml

    from synthface.cli import app

    folder = tmp_path_factory.mktemp("generated")
    scenario = folder / "app_demo.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "app_demo",
        "seed": 3,
        "n_samples": 10,
        "image_size": 96,
        "sources": [{"kind": "demo"}],
        "mask": {"probability": 0.6, "types": {"surgical": 0.5, "cloth": 0.5}, "wear_styles": {"proper": 0.7, "chin": 0.3},
                 "confusers": {"scarf": 0.5}},
        "lighting": {"preset": {"studio": 0.5, "dim": 0.5}},
        "pair_unmasked": True,
        "preview_samples": 0,
    }))
    from typer.testing import CliRunner

    out = folder / "dataset"
    result = CliRunner().invoke(app, ["generate", str(scenario), "--out", str(out), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained 64 px OAMNet saved as `synthface train` saves models for inference."""
    import torch

    from synthface.evaluation.efficiency import write_inference_checkpoint
    from synthface.training.model import OAMNet

    torch.manual_seed(0)
    return write_inference_checkpoint(tmp_path_factory.mktemp("model") / "best.pt", OAMNet(num_races=5), image_size=64)


@pytest.fixture(scope="session")
def library():
    """The bundled mask library (read-only; loaded once for the whole run)."""
    from synthface.maskfit import MaskLibrary

    return MaskLibrary.load()
