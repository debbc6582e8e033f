"""`synthface generate --format webdataset|parquet` on a tiny real pool: shards that the
`webdataset` library and Hugging Face `datasets` read, holding what the metadata says, the same
bytes on every run, a packing that resumes after a crash, and training and evaluation that read
every format."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from synthface import formats
from synthface.cli import app
from synthface.dataset import read_metadata

runner = CliRunner()
N_SAMPLES = 10
PACK = 4  # samples per packed file: 10 samples give 3 files


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory, utk_folder):
    path = tmp_path_factory.mktemp("scenario") / "packed.yaml"
    path.write_text(yaml.safe_dump({
        "name": "packed",
        "seed": 3,
        "n_samples": N_SAMPLES,
        "image_size": 64,
        "sources": [{"kind": "utkface", "path": str(utk_folder)}],
        "age": {"bins": [[0, 29], [30, 59], [60, 120]], "weights": "uniform"},
        "gender": {"weights": "uniform"},
        "race": {"taxonomy": "utkface5", "weights": "source"},
        "mask": {"probability": 0.5, "types": {"surgical": 0.5, "cloth": 0.5}, "wear_styles": {"proper": 1.0}},
        "pair_unmasked": True,
        "balance": {"max_reuse": 6},
        "preview_samples": 4,
    }))
    return path


def generate(scenario_file, out, *args):
    result = runner.invoke(app, ["generate", str(scenario_file), "--out", str(out), "--workers", "1", "--quiet", *map(str, args)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, scenario_file):
    """The same scenario in the three formats."""
    root = tmp_path_factory.mktemp("outputs")
    return {
        "folder": generate(scenario_file, root / "folder"),
        "webdataset": generate(scenario_file, root / "webdataset", "--format", "webdataset", "--pack-size", PACK),
        "parquet": generate(scenario_file, root / "parquet", "--format", "parquet", "--pack-size", PACK),
    }


def samples_of(table: pd.DataFrame) -> pd.DataFrame:
    return table[~table["sample_id"].str.endswith("-unmasked")]


def test_packed_outputs_hold_data_files_and_the_metadata_but_no_loose_images(outputs):
    folder = read_metadata(outputs["folder"])
    assert len(samples_of(folder)) == N_SAMPLES and folder["occlusion_file"].astype(bool).any()
    assert folder["sample_id"].str.endswith("-unmasked").any()  # the scenario makes twins
    for name, suffix in (("webdataset", ".tar"), ("parquet", ".parquet")):
        out = outputs[name]
        assert sorted(p.name for p in out.glob("data-*")) == [f"data-{i:06d}{suffix}" for i in range(3)]
        assert not (out / "images").exists() and not (out / "occlusion").exists()
        assert formats.detect(out).name == name
        pd.testing.assert_frame_equal(read_metadata(out), folder)  # the same table, whatever the format
        for file in ("report.md", "preview.jpg", "scenario.yaml"):
            assert (out / file).stat().st_size > 0
    assert formats.detect(outputs["folder"]).name == "folder"


def test_webdataset_shards_load_with_webdataset_and_hold_what_the_metadata_says(outputs):
    import webdataset as wds

    out, folder = outputs["webdataset"], outputs["folder"]
    table = read_metadata(folder)
    rows = {row["sample_id"]: row for row in table.to_dict("records")}
    shards = [str(path) for path in sorted(out.glob("data-*.tar"))]
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert [s["__key__"] for s in samples] == list(samples_of(table)["sample_id"])
    assert [len(list(wds.WebDataset([shard], shardshuffle=False))) for shard in shards] == [PACK, PACK, N_SAMPLES - 2 * PACK]
    for sample in samples:
        row = json.loads(sample["json"])
        expected = rows[sample["__key__"]]
        assert row["sample_id"] == expected["sample_id"] and row["mask_type"] == expected["mask_type"]
        assert sample["jpg"] == (folder / row["file_name"]).read_bytes()
        if row["occlusion_file"]:
            assert sample["occlusion.png"] == (folder / row["occlusion_file"]).read_bytes()
        else:
            assert "occlusion.png" not in sample
        twin = rows.get(row["sample_id"] + "-unmasked")
        assert ("unmasked.jpg" in sample) == (twin is not None)
        if twin is not None:
            assert sample["unmasked.jpg"] == (folder / twin["file_name"]).read_bytes()
            assert json.loads(sample["unmasked.json"])["pair_id"] == row["pair_id"] == row["sample_id"]
    decoded = next(iter(wds.WebDataset(shards[:1], shardshuffle=False).decode("pil")))
    assert decoded["jpg"].size == (64, 64)
    with tarfile.open(shards[0]) as tar:  # nothing of the clock or the machine in the headers
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in tar} == {(0, 0, 0, "", "")}


def test_parquet_loads_with_hugging_face_datasets_with_decodable_images(outputs, monkeypatch, tmp_path):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out, folder = outputs["parquet"], outputs["folder"]
    table = read_metadata(folder)
    loaded = datasets.load_dataset("parquet", data_files=str(out / "data-*.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.features["image"] == datasets.Image() and loaded.features["occlusion"] == datasets.Image()
    assert loaded["sample_id"] == list(table["sample_id"])
    for index, row in enumerate(table.to_dict("records")):
        item = loaded[index]
        assert item["image"].size == (64, 64)
        expected = np.asarray(Image.open(folder / row["file_name"]).convert("RGB"))
        assert np.array_equal(np.asarray(item["image"].convert("RGB")), expected)
        assert (item["occlusion"] is None) == (not row["occlusion_file"])
        assert item["gender"] == row["gender"] and item["age"] == row["age"]
    import pyarrow.parquet as pq

    assert pq.ParquetFile(out / "data-000000.parquet").metadata.num_row_groups >= 1


def test_the_table_read_back_from_the_packed_files_equals_the_folder_table(outputs):
    folder = read_metadata(outputs["folder"])
    pd.testing.assert_frame_equal(formats.WEBDATASET.read_table(outputs["webdataset"]), folder)
    pd.testing.assert_frame_equal(formats.PARQUET.read_table(outputs["parquet"]), folder)


def test_same_scenario_and_seed_give_the_same_packed_bytes(outputs, scenario_file, tmp_path):
    for name in ("webdataset", "parquet"):
        again = generate(scenario_file, tmp_path / name, "--format", name, "--pack-size", PACK)
        first = sorted(outputs[name].glob("data-*"))
        assert [p.name for p in sorted(again.glob("data-*"))] == [p.name for p in first]
        for path in first:
            assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_crash_while_packing_resumes_to_the_same_bytes(outputs, scenario_file, tmp_path, monkeypatch):
    """A crash after two of three files (injected in the writer): no table yet, the finished files
    are kept as they are, and --resume writes only the rest, to the same bytes as a straight run."""
    out = tmp_path / "crashed"
    write = formats.WebDataset.write_file
    calls = []

    def crash_on_third(self, handle, root, rows, shared):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C mid-packing raises
        write(self, handle, root, rows, shared)

    monkeypatch.setattr(formats.WebDataset, "write_file", crash_on_third)
    crashed = runner.invoke(app, ["generate", str(scenario_file), "--out", str(out), "--workers", "1", "--quiet",
                                  "--format", "webdataset", "--pack-size", str(PACK)])
    assert crashed.exit_code == 130, crashed.output
    assert not (out / "metadata.csv").exists() and (out / "images").is_dir()
    assert sorted(p.name for p in out.glob("data-*")) == ["data-000000.tar", "data-000001.tar"]
    assert not list(out.glob(".data-*"))  # no partial file left behind
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("data-*")}
    monkeypatch.setattr(formats.WebDataset, "write_file", write)
    calls.clear()
    generate(scenario_file, out, "--format", "webdataset", "--pack-size", PACK, "--resume")
    for path in sorted(outputs["webdataset"].glob("data-*")):
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    assert {name: (out / name).stat().st_mtime_ns for name in stamps} == stamps  # not rewritten
    assert not (out / "images").exists()


def test_pack_size_in_bytes_and_bad_values(tmp_path, scenario_file, outputs):
    assert formats.parse_pack_size("1000") == formats.PackSize(samples=1000)
    assert formats.parse_pack_size("1.5GB") == formats.PackSize(bytes=1_500_000_000)
    for bad in ("0", "ten", "5TB", "2.5"):
        with pytest.raises(formats.FormatError):
            formats.parse_pack_size(bad)
    one_sample = max(p.stat().st_size for p in outputs["webdataset"].glob("data-*.tar")) // PACK
    out = generate(scenario_file, tmp_path / "bytes", "--format", "webdataset", "--pack-size", f"{one_sample * 2 / 1000:.3f}kB")
    pd.testing.assert_frame_equal(formats.WEBDATASET.read_table(out), read_metadata(outputs["folder"]))
    assert len(list(out.glob("data-*.tar"))) > 3
    # A finished run sized by bytes resumes too: its staged images are gone, its journaled layout is reused.
    before = {p.name: p.read_bytes() for p in out.glob("data-*.tar")}
    generate(scenario_file, out, "--format", "webdataset", "--pack-size", f"{one_sample * 2 / 1000:.3f}kB", "--resume")
    assert {p.name: p.read_bytes() for p in out.glob("data-*.tar")} == before
    wrong = runner.invoke(app, ["generate", str(scenario_file), "--out", str(tmp_path / "x"), "--format", "zip"])
    assert wrong.exit_code == 2 and "unknown format 'zip'" in wrong.output
    from synthface.generation.cli import DEFAULT_PACK_SIZE

    assert DEFAULT_PACK_SIZE == formats.DEFAULT_PACK_SIZE


def test_overwrite_clears_packed_files_and_a_folder_run_leaves_none(outputs, scenario_file, tmp_path):
    out = generate(scenario_file, tmp_path / "switch", "--format", "parquet", "--pack-size", PACK)
    generate(scenario_file, out, "--overwrite")
    assert not list(out.glob("data-*")) and formats.detect(out).name == "folder"
    assert all((out / name).is_file() for name in read_metadata(out)["file_name"])


@pytest.fixture(scope="module")
def trained(outputs, tmp_path_factory):
    """Two steps of the smallest backbone on each format's output: the same images in the same
    order give the same losses."""
    from synthface.training.loop import train
    from synthface.training.recipe import Recipe, with_overrides

    recipe = with_overrides(Recipe(), {
        "model.backbone": "mobilenet_v3_small", "model.backbone_weights": "none", "data.image_size": 32,
        "data.batch_size": 2, "data.workers": 0, "optim.warmup_epochs": 0, "optim.epochs": 1, "optim.max_steps": 2,
        "data.val_holdout": 0.3,
    })
    runs = tmp_path_factory.mktemp("train")
    return {name: train(recipe, out, runs / name, keep_step_losses=True) for name, out in outputs.items()}


def test_training_reads_every_format(trained):
    losses = {name: result.step_losses for name, result in trained.items()}
    assert len(losses["folder"]) == 2 and all(np.isfinite(losses["folder"]))
    assert losses["webdataset"] == pytest.approx(losses["folder"], rel=1e-6)
    assert losses["parquet"] == pytest.approx(losses["folder"], rel=1e-6)


def test_train_command_takes_a_packed_output_as_data(outputs, tmp_path):
    result = runner.invoke(app, ["train", "demo_cpu", "--data", str(outputs["webdataset"]), "--out", str(tmp_path / "run"),
                                 "--backbone", "mobilenet_v3_small", "--backbone-weights", "none", "--image-size", "32",
                                 "--batch-size", "2", "--workers", "0", "--max-steps", "1", "--set", "data.val_holdout=0.3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.pt").is_file()


def test_evaluation_reads_every_format_alike(outputs, trained):
    from synthface.evaluation.inference import predict_dataset
    from synthface.training.checkpoint import load_for_inference

    model, info = load_for_inference(trained["folder"].out_dir / "best.pt")
    predictions = {}
    for name, out in outputs.items():
        table = read_metadata(out)
        found = predict_dataset(model, info, out, table, workers=0, gradcam_samples=2, progress=False)
        predictions[name] = found.table
    for name in ("webdataset", "parquet"):
        pd.testing.assert_frame_equal(predictions[name], predictions["folder"])
    assert predictions["folder"]["covered_area"].notna().any()  # occlusion maps were read


def test_shards_in_a_packed_format_merge_into_the_same_packed_files(outputs, scenario_file, tmp_path):
    shards = [generate(scenario_file, tmp_path / f"shard{i}", "--shard", f"{i}/2", "--format", "webdataset") for i in (1, 2)]
    merged = runner.invoke(app, ["merge", *map(str, shards), "--out", str(tmp_path / "merged"), "--format", "parquet",
                                 "--pack-size", str(PACK)])
    assert merged.exit_code == 0, merged.output
    for path in sorted(outputs["parquet"].glob("data-*")):
        assert (tmp_path / "merged" / path.name).read_bytes() == path.read_bytes(), path.name
    pd.testing.assert_frame_equal(read_metadata(tmp_path / "merged"), read_metadata(outputs["folder"]))
    assert not (tmp_path / "merged" / "images").exists()


LOADER_CHECK = """
import sys
from pathlib import Path

import torch

from synthface.dataset import read_metadata
from synthface.training.data import FaceDataset, LabelMaps, make_loader
from synthface.training.transforms import eval_transform

batches = {}
for root in map(Path, sys.argv[1:]):
    dataset = FaceDataset(root, read_metadata(root), LabelMaps("utkface5"), eval_transform(32))
    dataset[len(dataset) - 1]  # the parent reads first: its workers must not share its file positions
    loader = make_loader(dataset, 4, workers=2, prefetch_factor=2, sampler=torch.utils.data.SequentialSampler(dataset),
                         pin_memory=False, drop_last=False, seed=0)
    batches[root.name] = torch.cat([images for images, *_ in loader])
assert len(batches["folder"]) == len(read_metadata(Path(sys.argv[1])))
assert torch.equal(batches["webdataset"], batches["folder"]) and torch.equal(batches["parquet"], batches["folder"])
"""


def test_loader_workers_read_packed_files_like_the_folder(outputs):
    """DataLoader worker processes get the same tensors from every format. In a fresh process:
    forked loader workers hang in a process that has already trained (torch's thread pools), which
    this test file's other tests do."""
    import subprocess
    import sys

    roots = [str(outputs[name]) for name in ("folder", "webdataset", "parquet")]
    done = subprocess.run([sys.executable, "-c", LOADER_CHECK, *roots], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_export_layout_names_the_format_it_needs(outputs, tmp_path):
    result = runner.invoke(app, ["export-layout", str(outputs["webdataset"]), "--out", str(tmp_path / "layout")])
    assert result.exit_code == 2 and "is a webdataset dataset" in result.output and "--format folder" in result.output


def test_resume_of_a_finished_packed_run_renders_nothing_and_keeps_the_files(outputs, scenario_file, tmp_path):
    import shutil

    out = tmp_path / "finished"
    shutil.copytree(outputs["webdataset"], out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("data-*")}
    result = runner.invoke(app, ["generate", str(scenario_file), "--out", str(out), "--workers", "1", "--quiet",
                                 "--format", "webdataset", "--pack-size", str(PACK), "--resume"])
    assert result.exit_code == 0, result.output
    assert f"0 rendered, {N_SAMPLES} kept" in " ".join(result.output.split())
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("data-*")} == stamps and not (out / "images").exists()
    assert (out / "metadata.csv").read_bytes() == (outputs["webdataset"] / "metadata.csv").read_bytes()
    assert (out / "preview.jpg").read_bytes() == (outputs["webdataset"] / "preview.jpg").read_bytes()
    other = runner.invoke(app, ["generate", str(scenario_file), "--out", str(out), "--workers", "1", "--quiet",
                                "--format", "webdataset", "--pack-size", "3", "--resume"])
    assert other.exit_code == 2 and "same --pack-size" in other.output
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("data-*")} == stamps  # nothing replaced
