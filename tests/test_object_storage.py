"""Object storage: pools, outputs and shards at s3:// URLs, against a real S3 server on 127.0.0.1.

The server is moto's standalone S3 server (real HTTP, real s3fs and botocore on the client
side), started once for the module; nothing is mocked inside synthface's own process.
"""

from __future__ import annotations

import json
from pathlib import Path

import moto.server as moto_server  # dev dependency, like s3fs (the cluster extra): CI runs these tests
import pytest
import yaml
from typer.testing import CliRunner

from synthface import storage
from synthface.cli import app

runner = CliRunner()
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A boto3 client of the server, with s3fs pointed at it for this test (one fresh bucket per test)."""
    import boto3
    import fsspec

    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_endpoint})
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    client = boto3.client("s3", endpoint_url=s3_endpoint, **{k.lower(): v for k, v in KEYS.items() if k != "AWS_DEFAULT_REGION"},
                          region_name=KEYS["AWS_DEFAULT_REGION"])
    yield client
    s3fs.S3FileSystem.clear_instance_cache()


_buckets = iter(range(1000))


@pytest.fixture
def bucket(s3):
    name = f"bucket{next(_buckets)}"
    s3.create_bucket(Bucket=name)
    return name


def put_folder(s3, bucket: str, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


def objects(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    """{key relative to prefix: bytes} of every object under the prefix."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1:]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def dataset_files(folder: Path) -> dict[str, bytes]:
    """The files of a finished dataset that must be the same wherever its pool and output live."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.relative_to(folder).as_posix().startswith(".synthface-run")
            and path.name not in ("report.json", "report.md", "scenario.yaml", "skipped.parquet", storage.MANIFEST)}


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory, utk_folder):
    path = tmp_path_factory.mktemp("scenario") / "s3.yaml"
    path.write_text(yaml.safe_dump({
        "name": "s3", "seed": 5, "n_samples": 6, "image_size": 64,
        "sources": [{"kind": "utkface", "path": str(utk_folder)}],
        "mask": {"probability": 0.5, "types": {"surgical": 1.0}, "wear_styles": {"proper": 1.0}},
        "balance": {"max_reuse": 6}, "preview_samples": 0,
    }))
    return path


def generate(*args) -> str:
    result = runner.invoke(app, ["generate", *map(str, args), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, scenario_file):
    """The reference: the same scenario with the pool and the output on the local disk."""
    out = tmp_path_factory.mktemp("local") / "out"
    generate(scenario_file, "--out", out, "--format", "webdataset", "--pack-size", 4)
    return out


def test_a_pool_and_an_output_on_s3_give_the_bytes_of_a_local_run(s3, bucket, utk_folder, scenario_file, local_run, tmp_path):
    put_folder(s3, bucket, utk_folder, "pools/utk")
    output = generate(scenario_file, "--source", f"utkface:s3://{bucket}/pools/utk", "--out", f"s3://{bucket}/datasets/s3",
                      "--format", "webdataset", "--pack-size", 4, "--staging", tmp_path / "staging")
    assert f"to s3://{bucket}/datasets/s3" in " ".join(output.split())
    uploaded = objects(s3, bucket, "datasets/s3")
    assert ".synthface-run/lock" not in uploaded and "data-000000.tar" in uploaded
    expected = dataset_files(local_run)
    assert {name: uploaded[name] for name in expected} == expected  # tar shards, metadata.csv, samples.parquet
    # The report names the inputs the user gave: skipped files by their URL, not the local mirror.
    report = json.loads(uploaded["report.json"])
    skipped = [example["path"] for example in report["pool"]["skipped_examples"]]
    assert skipped and all(path.startswith(f"s3://{bucket}/pools/utk/") for path in skipped), skipped


def test_a_non_empty_url_is_refused_and_resume_on_another_machine_fetches_the_run(s3, bucket, utk_folder, scenario_file, tmp_path):
    out = f"s3://{bucket}/runs/a"
    generate(scenario_file, "--out", out, "--staging", tmp_path / "first")
    before = objects(s3, bucket, "runs/a")
    again = runner.invoke(app, ["generate", str(scenario_file), "--out", out, "--staging", str(tmp_path / "second"), "--quiet"])
    assert again.exit_code == 2 and f"{out} is not empty" in " ".join(again.output.split()), again.output
    # A fresh staging folder (another machine): --resume fetches the finished run and renders nothing.
    output = generate(scenario_file, "--out", out, "--staging", tmp_path / "second", "--resume")
    assert "0 rendered, 6 kept" in " ".join(output.split())
    after = objects(s3, bucket, "runs/a")
    assert {k: v for k, v in after.items() if not k.endswith("timing.json")} == {k: v for k, v in before.items() if not k.endswith("timing.json")}


def test_a_failed_upload_is_finished_by_resume_which_removes_stale_objects_only(s3, bucket, scenario_file, tmp_path):
    out, staging = f"s3://{bucket}/runs/b", tmp_path / "staging"
    s3.put_object(Bucket=bucket, Key="runs/b/notes.txt", Body=b"the user's own file")
    calls = []

    def failing_upload(folder, url, **kwargs):
        calls.append(url)
        raise storage.StorageError(f"{url}: uploading failed (connection reset)")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "upload", failing_upload)
        failed = runner.invoke(app, ["generate", str(scenario_file), "--out", out, "--staging", str(staging), "--workers", "1",
                                     "--quiet", "--overwrite"])
    assert failed.exit_code == 2 and "uploading failed" in failed.output and calls
    assert objects(s3, bucket, "runs/b") == {"notes.txt": b"the user's own file"}  # nothing half-uploaded claims a dataset
    s3.put_object(Bucket=bucket, Key="runs/b/images/stale-000099.jpg", Body=b"left by an earlier run")
    output = generate(scenario_file, "--out", out, "--staging", staging, "--resume")
    assert "0 rendered, 6 kept" in " ".join(output.split())
    uploaded = objects(s3, bucket, "runs/b")
    assert uploaded["metadata.csv"] == (staging / "metadata.csv").read_bytes()
    assert "images/stale-000099.jpg" not in uploaded  # synthface's own kind of file, not written by this run
    assert uploaded["notes.txt"] == b"the user's own file"  # never synthface's: left alone
    again = storage.upload(staging, out, skip=lambda name: name.endswith("/lock"), quiet=True)
    assert again.uploaded == 0 and again.unchanged > 0  # same bytes already there: nothing sent


def test_train_reads_a_dataset_at_a_url(s3, bucket, local_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHFACE_CACHE", str(tmp_path / "cache"))
    put_folder(s3, bucket, local_run, "datasets/s3")
    result = runner.invoke(app, ["train", "demo_cpu", "--data", f"s3://{bucket}/datasets/s3", "--out", str(tmp_path / "run"),
                                 "--backbone", "mobilenet_v3_small", "--backbone-weights", "none", "--image-size", "32",
                                 "--batch-size", "2", "--workers", "0", "--max-steps", "1", "--set", "data.val_holdout=0.3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.pt").is_file()
    (mirrored,) = [path for path in (tmp_path / "cache" / "mirror").iterdir() if path.is_dir()]
    assert dataset_files(mirrored) == dataset_files(local_run)


def test_the_mirror_fetches_only_new_or_changed_objects_and_drops_deleted_ones(s3, bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHFACE_CACHE", str(tmp_path / "cache"))
    for name in ("a.jpg", "b.jpg", "sub/c.jpg"):
        s3.put_object(Bucket=bucket, Key=f"pool/{name}", Body=name.encode())
    folder = storage.mirror(f"s3://{bucket}/pool", "pool", quiet=True)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg")) == ["a.jpg", "b.jpg", "sub/c.jpg"]
    stamps = {name: (folder / name).stat().st_mtime_ns for name in ("a.jpg", "b.jpg")}
    s3.put_object(Bucket=bucket, Key="pool/b.jpg", Body=b"changed")
    s3.delete_object(Bucket=bucket, Key="pool/sub/c.jpg")
    assert storage.mirror(f"s3://{bucket}/pool", "pool", quiet=True) == folder
    assert (folder / "a.jpg").stat().st_mtime_ns == stamps["a.jpg"]  # unchanged: not fetched again
    assert (folder / "b.jpg").read_bytes() == b"changed"
    assert not (folder / "sub" / "c.jpg").exists()


def test_a_fairface_pool_on_s3_takes_its_label_csv_from_the_parent_prefix(s3, bucket, tmp_path, monkeypatch):
    from synthface.generation.sources.base import load_source, parse_source_arg

    monkeypatch.setenv("SYNTHFACE_CACHE", str(tmp_path / "cache"))
    for name in ("train/1.jpg", "train/2.jpg"):
        s3.put_object(Bucket=bucket, Key=f"fairface/images/{name}", Body=b"image bytes (not read by the scan)")
    s3.put_object(Bucket=bucket, Key="fairface/fairface_label_train.csv",
                  Body=b"file,age,gender,race\ntrain/1.jpg,30-39,Female,East Asian\ntrain/3.jpg,20-29,Male,White\n")
    scan = load_source(parse_source_arg(f"fairface:s3://{bucket}/fairface/images"), quiet=True)
    assert [(r.source_id, r.origin) for r in scan.records] == [("fairface:train/1.jpg", f"s3://{bucket}/fairface/images/train/1.jpg")]
    assert any(item.path.startswith(f"s3://{bucket}/fairface/fairface_label_train.csv:") for item in scan.skipped), scan.skipped


def test_shards_on_s3_merge_into_an_s3_dataset(s3, bucket, scenario_file, local_run, tmp_path):
    for index in (1, 2):
        generate(scenario_file, "--out", f"s3://{bucket}/shards/{index}", "--shard", f"{index}/2", "--staging", tmp_path / f"shard{index}")
    result = runner.invoke(app, ["merge", f"s3://{bucket}/shards/1", f"s3://{bucket}/shards/2", "--out", f"s3://{bucket}/merged",
                                 "--format", "webdataset", "--pack-size", "4"])
    assert result.exit_code == 0, result.output
    merged = objects(s3, bucket, "merged")
    expected = dataset_files(local_run)
    assert {name: merged[name] for name in expected} == expected


@pytest.mark.parametrize(("args", "message"), [
    (["--source", "utkface:s3://no-such-bucket/faces"], "s3://no-such-bucket/faces: "),
    (["--source", "utkface:gs://bucket/faces"], "gcsfs"),
    (["--out", "s3://no-such-bucket/out"], "s3://no-such-bucket/out: bucket no-such-bucket does not exist"),
])
def test_unreachable_urls_are_one_line_errors(args, message, s3, scenario_file, tmp_path):
    result = runner.invoke(app, ["generate", str(scenario_file), *args, "--workers", "1", "--quiet",
                                 *(["--out", str(tmp_path / "out")] if "--out" not in args else [])])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_staging_is_only_for_an_url_output(scenario_file, tmp_path):
    result = runner.invoke(app, ["generate", str(scenario_file), "--out", str(tmp_path / "out"), "--staging", str(tmp_path / "s")])
    assert result.exit_code == 2 and "--staging" in result.output


def test_file_urls_are_local_paths(scenario_file, local_run, tmp_path):
    generate(scenario_file, "--out", f"file://{tmp_path}/out", "--format", "webdataset", "--pack-size", 4)
    assert dataset_files(tmp_path / "out") == dataset_files(local_run)
    assert not (Path.cwd() / "file:").exists()  # nothing named after the scheme was made
