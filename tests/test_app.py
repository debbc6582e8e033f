"""`synthface app`'s page logic (synthface.app.helpers) and its command, without a browser.

The browser itself is driven in test_app_browser.py.
"""

from __future__ import annotations

import socket
import struct
import zlib

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from synthface.app import helpers
from synthface.app.helpers import AppError, StudioSettings
from synthface.images import decode_image_rgb


def png_bytes(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds no pixels: the cheap way to send a huge image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


# --- photos ------------------------------------------------------------------------------


def test_decode_image_reads_a_photo_and_refuses_text_empty_and_huge_images(astronaut):
    assert np.array_equal(decode_image_rgb(png_bytes(astronaut)), astronaut)
    with pytest.raises(ValueError, match="unreadable image"):
        decode_image_rgb(b"hello, this is not an image")
    with pytest.raises(ValueError, match="empty file"):
        decode_image_rgb(b"")
    # The size is read from the header: a huge claim is refused before any decoding.
    with pytest.raises(ValueError, match="too large: 9000x6000 px is 54 megapixels, the limit is 40"):
        decode_image_rgb(png_header(9000, 6000), max_pixels=40_000_000)
    with pytest.raises(ValueError, match="too large: over .* megapixels, the limit is 40"):
        decode_image_rgb(png_header(30000, 30000), max_pixels=40_000_000)
    with pytest.raises(ValueError, match="too large"):
        decode_image_rgb(png_bytes(astronaut), max_pixels=512 * 512 - 1)
    assert decode_image_rgb(png_bytes(astronaut), max_pixels=512 * 512).shape == (512, 512, 3)


def test_load_photo_names_the_upload_and_the_reason():
    with pytest.raises(AppError, match=r"notes.txt: unreadable image \(expected a photo"):
        helpers.load_photo(b"a text file", "notes.txt")
    with pytest.raises(AppError, match="big.png: image too large"):
        helpers.load_photo(png_header(20000, 20000), "big.png")


def test_jpeg_quality_of_an_upload_is_read_from_its_bytes(astronaut):
    jpeg = cv2.imencode(".jpg", astronaut, [cv2.IMWRITE_JPEG_QUALITY, 60])[1].tobytes()
    assert abs(helpers.jpeg_quality_of(jpeg) - 60) <= 2
    assert helpers.jpeg_quality_of(png_bytes(astronaut)) == 100


# --- mask studio --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def studio(astronaut):
    """The astronaut's faces and the bundled library, found once."""
    from synthface.landmarks import LandmarkDetector

    with LandmarkDetector(max_faces=4) as detector:
        faces = helpers.detect_faces(astronaut, detector)
    return astronaut, faces, helpers.load_library()


def test_studio_masks_the_lower_face_and_keeps_the_twin_unmasked(studio):
    rgb, faces, library = studio
    assert len(faces) == 1
    (face,) = helpers.render_studio(rgb, faces, library, StudioSettings(mask_type="surgical", lighting="studio", seed=1))
    assert not face.error and face.image.shape == face.twin.shape == (224, 224, 3)
    covered = face.occlusion > 0
    assert 0.3 < face.occluded_fraction < 0.9
    # The mask sits on the lower half (mouth and nose), not over the eyes.
    assert covered[: int(224 * 0.3)].sum() == 0 and covered[int(224 * 0.72), 112]
    difference = np.abs(face.image.astype(int) - face.twin.astype(int)).sum(axis=2)
    assert difference[covered].mean() > 40  # the mask changed the covered pixels...
    assert difference[~covered].mean() < difference[covered].mean() / 5  # ...far more than the rest
    assert face.metadata["mask_type"] == "surgical" and face.metadata["lighting_preset"] == "studio"


def test_studio_is_deterministic_and_each_control_changes_the_result(studio):
    rgb, faces, library = studio
    base = StudioSettings(mask_type="cloth", palette="bright", pattern="plain", lighting="studio", seed=4)

    def image(settings):
        return helpers.render_studio(rgb, faces, library, settings)[0].image

    first = image(base)
    assert np.array_equal(first, image(base))
    for change in ({"mask_type": "n95"}, {"seed": 5}, {"palette": "black"}, {"pattern": "stripes"}, {"lighting": "dim"},
                   {"wear_style": "chin"}):
        assert not np.array_equal(first, image(StudioSettings(**{**base.__dict__, **change}))), change
    chin = helpers.render_studio(rgb, faces, library, StudioSettings(mask_type="cloth", wear_style="chin"))[0]
    proper = helpers.render_studio(rgb, faces, library, StudioSettings(mask_type="cloth", wear_style="proper"))[0]
    assert chin.occluded_fraction < proper.occluded_fraction / 2
    striped = helpers.render_studio(rgb, faces, library, StudioSettings(mask_type="cloth", pattern="stripes"))[0]
    assert striped.metadata["mask_pattern"] == "stripes"
    black = helpers.render_studio(rgb, faces, library, StudioSettings(mask_type="cloth", palette="black"))[0]
    assert black.metadata["mask_color"] in {"#151517", "#1c1d20", "#232428", "#2a2a2e"} or int(black.metadata["mask_color"][1:3], 16) < 60


def test_studio_choices_follow_the_type(studio):
    _, _, library = studio
    surgical = helpers.studio_choices(library, "surgical")
    assert surgical["wear_style"] == list(library.get("surgical").wear_styles)
    assert surgical["pattern"] == ["plain"]
    assert "medical" in surgical["palette"] and "studio" in surgical["lighting"] and helpers.LIGHTING_OFF in surgical["lighting"]
    assert helpers.studio_choices(library, "hand")["wear_style"] == ["proper"]  # a confuser has one way to be worn


def test_scenario_fragment_is_a_valid_scenario_with_the_studio_settings(studio):
    from synthface.scenario import Scenario

    _, _, library = studio
    settings = StudioSettings(mask_type="cloth", wear_style="nose_exposed", palette="pastel", pattern="dots",
                              lighting="harsh_side", seed=9)
    text = helpers.scenario_fragment(settings, library)
    scenario = Scenario.model_validate({"name": "from_studio", **yaml.safe_load(text)})
    assert scenario.seed == 9 and scenario.mask.types == {"cloth": 1.0} and scenario.mask.wear_styles == {"nose_exposed": 1.0}
    assert scenario.mask.appearance.palettes == {"pastel": 1.0} and scenario.mask.appearance.pattern_probability == 1.0
    assert scenario.lighting.preset == "harsh_side"
    confuser = Scenario.model_validate({"name": "c", **yaml.safe_load(helpers.scenario_fragment(
        StudioSettings(mask_type="scarf", lighting=helpers.LIGHTING_OFF), library))})
    assert confuser.mask.probability == 0 and confuser.mask.confusers == {"scarf": 1.0} and not confuser.lighting.enabled


def test_user_mask_folder_types_are_offered_and_named_in_the_fragment(tmp_path, studio):
    from synthface.paths import bundled_dir

    rgb, faces, _ = studio
    definition = yaml.safe_load((bundled_dir("masks") / "surgical.yaml").read_text())
    (tmp_path / "green_surgical.yaml").write_text(yaml.safe_dump({**definition, "name": "green_surgical"}))
    library = helpers.load_library((str(tmp_path),))
    assert "green_surgical" in library.names()
    (face,) = helpers.render_studio(rgb, faces, library, StudioSettings(mask_type="green_surgical"))
    assert face.metadata["mask_type"] == "green_surgical"
    assert f"--masks {tmp_path}" in helpers.scenario_fragment(StudioSettings(mask_type="green_surgical"), library)
    with pytest.raises(AppError, match="not a folder"):
        helpers.load_library((str(tmp_path / "missing"),))


def test_a_photo_without_a_face_is_a_clear_error():
    from synthface.landmarks import LandmarkDetector

    with LandmarkDetector() as detector, pytest.raises(AppError, match="no face found"):
        helpers.detect_faces(np.full((240, 320, 3), 128, np.uint8), detector)


# --- predict ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    found = helpers.load_predictor(tiny_checkpoint)
    yield found
    found.close()


def test_predict_shows_what_synthface_predict_prints_with_the_attention_map(predictor, astronaut):
    (result,) = helpers.predict_photo(predictor, astronaut)
    assert result.entry == predictor.predict(astronaut)[0]  # the same numbers as the CLI's JSON
    assert result.crop.shape == (64, 64, 3) and result.attention.shape == (2, 2)  # ResNet-50's stride 32
    overlay = helpers.attention_overlay(result)
    assert overlay.shape == result.crop.shape and not np.array_equal(overlay, result.crop)
    table = helpers.probability_table(result.entry)
    assert list(table["head"].unique()) == ["gender", "race", "mask"]
    for head, group in table.groupby("head"):
        assert group["probability"].sum() == pytest.approx(1.0, abs=1e-3)
        assert group["class"].iloc[0] == result.entry[head]["label"]  # most likely first
    with pytest.raises(AppError, match="no face found"):
        helpers.predict_photo(predictor, np.full((200, 200, 3), 128, np.uint8))


def test_a_checkpoint_of_the_wrong_kind_is_a_clear_error(tmp_path, tiny_checkpoint):
    import torch

    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(AppError, match="not a readable synthface checkpoint"):
        helpers.load_predictor(text)
    plain = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, plain)
    with pytest.raises(AppError, match="not a synthface training checkpoint"):
        helpers.load_predictor(plain)
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["model"] = {key: value for key, value in state["model"].items() if not key.startswith("heads.race")}
    broken = tmp_path / "other_heads.pt"
    torch.save(state, broken)
    with pytest.raises(AppError, match="not a synthface model checkpoint of a known kind"):
        helpers.load_predictor(broken)
    with pytest.raises(AppError, match="missing.pt: file not found; expected a checkpoint file"):
        helpers.load_predictor(tmp_path / "missing.pt")


# --- dataset browser ----------------------------------------------------------------------


@pytest.mark.slow
def test_browser_filters_pages_and_pairs_twins_and_occlusion_maps(generated_dataset):
    table = helpers.open_dataset(generated_dataset)
    samples = helpers.primary_rows(table)
    assert len(samples) == 10 and len(table) > len(samples)  # twins are in the table, not counted as samples
    options = helpers.filter_options(table)
    assert set(options) == set(helpers.FILTER_COLUMNS)
    assert set(options["lighting_preset"]) <= {"studio", "dim"} and "none" in options["mask_type"]

    masked = helpers.apply_filters(table, {"mask_type": ["surgical", "cloth"]})
    assert len(masked) == (samples["mask_type"].isin(["surgical", "cloth"])).sum() > 0
    both = helpers.apply_filters(table, {"mask_type": ["surgical", "cloth"], "lighting_preset": ["dim"]})
    assert len(both) == ((samples["mask_type"].isin(["surgical", "cloth"])) & (samples["lighting_preset"] == "dim")).sum()
    assert len(helpers.apply_filters(table, {"split": [], "gender": []})) == len(samples)  # no choice: everything

    views = helpers.sample_views(generated_dataset, masked, table)
    for view in views:
        assert view.image.is_file() and view.twin is not None and view.twin.is_file()
        assert view.occlusion is not None and view.occlusion.is_file()
        twin = table[table["file_name"] == str(view.twin.relative_to(generated_dataset))].iloc[0]
        assert twin["mask_type"] == "none" and twin["sample_id"] == f"{view.sample_id}-unmasked"
    unmasked = helpers.sample_views(generated_dataset, helpers.apply_filters(table, {"mask_type": ["none"]}), table)
    assert all(view.twin is None for view in unmasked)

    page, pages = helpers.page_of(samples, 2, 4)
    assert pages == 3 and list(page["sample_id"]) == list(samples["sample_id"].iloc[4:8])
    assert helpers.page_of(samples, 99, 4)[0]["sample_id"].tolist() == samples["sample_id"].iloc[8:].tolist()


@pytest.mark.slow
def test_balance_chart_draws_the_report_targets_and_achieved_shares(generated_dataset):
    report = helpers.read_report(generated_dataset)
    figure = helpers.balance_chart(report)
    drawn = {axis.get_title(): axis for axis in figure.axes if axis.get_visible()}
    assert set(drawn) == set(report["attributes"])
    for name, labels in report["attributes"].items():
        heights = [patch.get_height() for patch in drawn[name].patches]
        expected = [labels[label]["target"] for label in labels] + [labels[label]["achieved"] for label in labels]
        assert heights == pytest.approx(expected)


def test_unreadable_dataset_folders_are_clear_errors(tmp_path):
    with pytest.raises(AppError, match="no such folder"):
        helpers.open_dataset(tmp_path / "missing")
    with pytest.raises(AppError, match="is this a synthface dataset"):
        helpers.open_dataset(tmp_path)
    (tmp_path / "samples.parquet").write_bytes(b"garbage, not parquet")
    with pytest.raises(AppError, match="the metadata table cannot be read"):
        helpers.open_dataset(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    pd.DataFrame({"a": [1]}).to_csv(other / "metadata.csv", index=False)
    with pytest.raises(AppError, match="no file_name/sample_id columns"):
        helpers.open_dataset(other)
    assert helpers.read_report(other) is None


# --- the command --------------------------------------------------------------------------


def test_streamlit_command_listens_on_localhost_and_passes_the_options(tmp_path):
    from synthface.app.launch import streamlit_command

    command = streamlit_command(8600, masks=(tmp_path,), checkpoint=tmp_path / "best.pt", data=tmp_path, device="cpu")
    joined = " ".join(command)
    assert "--server.address 127.0.0.1" in joined and "--server.port 8600" in joined
    assert "--browser.gatherUsageStats false" in joined and "--server.headless true" in joined
    after = command[command.index("--") + 1:]
    assert after == ["--masks", str(tmp_path.resolve()), "--checkpoint", str((tmp_path / "best.pt").resolve()),
                     "--data", str(tmp_path.resolve()), "--device", "cpu"]


def test_app_command_refuses_a_busy_port_and_a_missing_mask_folder(cli, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli(["app", "--port", port])
    assert result.exit_code == 2 and f"port {port} is in use" in result.output
    result = cli(["app", "--masks", tmp_path / "missing"])
    assert result.exit_code == 2 and "not a folder" in result.output


def test_export_without_onnx_shows_the_whole_pip_hint(cli, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    result = cli(["export", tmp_path / "best.pt"])
    assert result.exit_code == 2
    assert "pip install 'synthface[onnx]'" in result.output
