"""`synthface predict` on the real test photos: MediaPipe detection, generation's alignment, a 64 px model."""

from __future__ import annotations

import json

import cv2
import pytest
import torch

from synthface.evaluation.efficiency import write_inference_checkpoint
from synthface.training.model import OAMNet

RACES = ("white", "black", "asian", "indian", "others")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return write_inference_checkpoint(tmp_path_factory.mktemp("run") / "best.pt", OAMNet(num_races=5), image_size=64)



def test_predict_reports_one_face_per_photo_and_bad_images_without_stopping(cli, checkpoint, astronaut, grace_hopper,
                                                                           tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, rgb in (("astronaut.jpg", astronaut), ("grace_hopper.png", grace_hopper)):
        cv2.imwrite(str(photos / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (photos / "broken.jpg").write_bytes(b"not an image")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), (astronaut[:64, :64] * 0 + 128).astype("uint8"))  # grey square: no face

    result = cli(["predict", str(checkpoint), str(photos), str(blank), "--device", "cpu",
                   "--annotate", str(tmp_path / "annotated")])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_image = {entry["image"].rsplit("/", 1)[-1]: entry for entry in entries}
    assert set(by_image) == {"astronaut.jpg", "grace_hopper.png", "broken.jpg", "blank.png"}
    assert by_image["broken.jpg"]["error"] == "unreadable image"  # the one image reader's words (synthface.images)
    assert by_image["blank.png"]["error"] == "no face found"
    for name, photo in (("astronaut.jpg", astronaut), ("grace_hopper.png", grace_hopper)):
        face = by_image[name]
        assert [e["image"].rsplit("/", 1)[-1] for e in entries].count(name) == 1  # exactly one face
        assert 0.0 <= face["age"] <= 120.0
        assert face["gender"]["label"] in ("male", "female")
        assert face["race"]["label"] in RACES and set(face["race"]["probabilities"]) == set(RACES)
        assert face["mask"]["label"] in ("unmasked", "masked")
        for head in ("gender", "race", "mask"):
            assert sum(face[head]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        x0, y0, x1, y1 = face["box"]
        assert 0 <= x0 < x1 <= photo.shape[1] and 0 <= y0 < y1 <= photo.shape[0]
        annotated = cv2.imread(str(tmp_path / "annotated" / f"{name.rsplit('.', 1)[0]}.annotated.jpg"))
        assert annotated is not None and annotated.shape[:2] == photo.shape[:2]
    # The astronaut's face is in the upper middle of the photo (hand-checked).
    x0, y0, x1, y1 = by_image["astronaut.jpg"]["box"]
    assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200
    assert "2 image(s) could not be used" in result.stderr
