"""`--executor ray` on a real local Ray instance (2 CPUs, one per module): the same bytes as the
local executor, a Ray worker killed with SIGKILL mid-run costs only its chunk (retried), resume after
the driver is killed, detection on Ray, and Ctrl-C on a run that started its own Ray instance leaves
no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthface.cli import app
from synthface.dataset import read_metadata

ray = pytest.importorskip("ray", reason="the cluster extra (pip install -e '.[cluster]') is not installed")
psutil = pytest.importorskip("psutil")  # a dependency of ray

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_instance():
    """One Ray instance for the module (starting one costs seconds on 2 cores); stopped after."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory, utk_folder) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "ray.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ray", "seed": 11, "n_samples": 40, "image_size": 96, "preview_samples": 0,
        "sources": [{"kind": "utkface", "path": str(utk_folder)}], "age": {"bins": [[0, 120]]},
        "mask": {"probability": 0.6, "types": {"surgical": 0.5, "cloth": 0.5}},
        "pair_unmasked": True, "balance": {"max_reuse": 40},
    }))
    return path


def generate(scenario: Path, out: Path, *args: object):
    result = runner.invoke(app, ["generate", str(scenario), "--out", str(out), "--quiet", *map(str, args)])
    assert result.exit_code == 0, result.output
    return out


def dataset_bytes(out: Path) -> dict[str, bytes]:
    """Every file a reader sees: images, occlusion maps, the tables, the report."""
    files = {name: (out / name).read_bytes() for name in ("metadata.csv", "samples.parquet", "report.json")}
    for folder in ("images", "occlusion"):
        files.update({f"{folder}/{p.name}": p.read_bytes() for p in sorted((out / folder).glob("*"))})
    return files


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory, scenario_file) -> dict[str, bytes]:
    return dataset_bytes(generate(scenario_file, tmp_path_factory.mktemp("local") / "out", "--workers", "1"))


def ray_workers() -> list[psutil.Process]:
    """This machine's Ray render workers (Ray titles an actor's process `ray::CLASS...`)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if command and command[0].startswith("ray::_RayWorker"):
            found.append(process)
    return found


def test_ray_gives_the_same_bytes_as_local(ray_instance, tmp_path, scenario_file, local_dataset):
    out = generate(scenario_file, tmp_path / "ray", "--executor", "ray", "--workers", "2")
    produced = dataset_bytes(out)
    assert len(read_metadata(out)) > 40  # samples and their unmasked twins
    assert produced.keys() == local_dataset.keys()
    assert [name for name in produced if produced[name] != local_dataset[name]] == []
    assert '"executor": "ray"' in (out / ".synthface-run" / "timing.json").read_text()


def test_a_killed_ray_worker_costs_only_its_chunk(ray_instance, tmp_path, scenario_file, local_dataset):
    out = tmp_path / "killed"
    journal = out / ".synthface-run" / "rows.jsonl"
    killed: list[int] = []
    earlier = {process.pid for process in ray_workers()}  # an earlier test's actors may still be ending

    def kill_one_worker_mid_run() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            # The first journaled sample: rendering is under way and most chunks are still queued or running.
            if journal.exists() and journal.read_text().strip():
                for worker in ray_workers():
                    if worker.pid in earlier:
                        continue
                    try:
                        worker.send_signal(signal.SIGKILL)
                    except psutil.NoSuchProcess:
                        continue
                    killed.append(worker.pid)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker_mid_run)
    killer.start()
    generate(scenario_file, out, "--executor", "ray", "--workers", "2")
    killer.join()
    assert killed, "no Ray worker was found to kill"
    try:
        assert psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        pass  # gone: reaped
    lines = journal.read_text().splitlines()
    assert len(lines) == 40  # every sample once: the lost chunk was retried, nothing was done twice in the journal
    assert dataset_bytes(out) == local_dataset
    deadline = time.time() + 20
    while time.time() < deadline and ray_workers():  # ray.kill returns before the process is gone
        time.sleep(0.1)
    assert ray_workers() == []  # the run's actors end with it


def test_a_task_error_on_ray_is_raised_as_itself_not_as_rays_wrapper(ray_instance, tmp_path):
    """A user error in a task (a source photo gone since planning) reaches the CLI as the local
    executor raises it, so the user reads one line, not a remote traceback."""
    from synthface.generation.executors import RayExecutor, WorkerJob

    photos = [tmp_path / f"photo-{i}.jpg" for i in range(12)]
    for photo in photos[:5] + photos[6:]:
        photo.write_bytes(b"jpeg")
    executor = RayExecutor(2)
    try:  # Path.read_bytes as the task (workers import it by name); os.getpid as a set-up that does nothing
        with pytest.raises(FileNotFoundError, match="photo-5.jpg") as raised:
            list(executor.map_unordered(WorkerJob(os.getpid, (), Path.read_bytes, chunksize=2), photos))
        assert not isinstance(raised.value, ray.exceptions.RayTaskError)
    finally:
        executor.close()


def test_resume_after_the_driver_is_killed_gives_the_same_bytes(ray_instance, tmp_path, scenario_file, local_dataset,
                                                               isolated_cache):
    """The driver (a separate process joining the module's Ray instance with --ray-address auto) is
    killed mid-run; its actors die with it, and --resume finishes the journaled run on Ray."""
    out = tmp_path / "crashed"
    journal = out / ".synthface-run" / "rows.jsonl"
    driver = subprocess.Popen([sys.executable, "-m", "synthface.cli", "generate", str(scenario_file), "--out", str(out),
                               "--executor", "ray", "--ray-address", "auto", "--workers", "2", "--quiet"],
                              env=dict(os.environ, PYTHONPATH=str(REPO), SYNTHFACE_CACHE=str(isolated_cache)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and driver.poll() is None and not (journal.exists() and len(journal.read_text().splitlines()) >= 2):
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done = len(journal.read_text().splitlines())
    assert 2 <= done < 40 and not (out / "metadata.csv").exists()
    generate(scenario_file, out, "--executor", "ray", "--workers", "2", "--resume")
    assert dataset_bytes(out) == local_dataset


def test_ctrl_c_stops_a_run_and_the_ray_instance_it_started(tmp_path, scenario_file, isolated_cache):
    """Without --ray-address and no Ray in the process, the run starts a local instance; Ctrl-C mid-render
    ends the run (exit 130, finished samples kept) and every process it started (they inherit the
    marker in their environment) is gone after, Ray's daemons and actors included."""
    marker = uuid.uuid4().hex
    env = dict(os.environ, PYTHONPATH=str(REPO), SYNTHFACE_TEST_MARKER=marker, SYNTHFACE_CACHE=str(isolated_cache))
    out = tmp_path / "own"
    journal = out / ".synthface-run" / "rows.jsonl"
    run = subprocess.Popen([sys.executable, "-m", "synthface.cli", "generate", str(scenario_file), "--out", str(out), "-n", "2000",
                            "--executor", "ray", "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's Ctrl-C finds it
    deadline = time.time() + 120
    while time.time() < deadline and run.poll() is None and not (journal.exists() and len(journal.read_text().splitlines()) >= 4):
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 130 and "--resume" in output, output
    assert "retried" not in output and "Error" not in output, output  # no Ray noise about the stopped work
    assert 4 <= len(journal.read_text().splitlines()) < 2000
    deadline = time.time() + 20
    while time.time() < deadline and _processes_with(marker):
        time.sleep(0.2)
    assert _processes_with(marker) == []


def _processes_with(marker: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if f"SYNTHFACE_TEST_MARKER={marker}".encode() in Path(f"/proc/{process.pid}/environ").read_bytes():
                found.append(" ".join(process.info["cmdline"] or []))
        except OSError:
            continue
    return found


def test_without_ray_the_error_says_how_to_install_it(tmp_path, scenario_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the cluster extra were not installed: `import ray` fails
    result = runner.invoke(app, ["generate", str(scenario_file), "--out", str(tmp_path / "o"), "--executor", "ray", "--quiet"])
    assert result.exit_code == 2
    assert "pip install -e '.[cluster]'" in result.output


def test_an_unknown_executor_is_refused_before_anything_is_written(tmp_path, scenario_file):
    result = runner.invoke(app, ["generate", str(scenario_file), "--out", str(tmp_path / "o"), "--executor", "dask"])
    assert result.exit_code == 2 and "--executor" in result.output
    assert not (tmp_path / "o").exists()


def test_detect_on_ray_writes_the_table_the_local_executor_writes(ray_instance, tmp_path, utk_folder):
    """The pool stage on Ray actors (MediaPipe loaded once per actor): the same landmark table, bit for bit."""
    import pandas as pd

    tables = {}
    for executor in ("local", "ray"):
        result = runner.invoke(app, ["detect", f"utkface:{utk_folder}", "--cache", str(tmp_path / executor), "--workers", "2",
                                     "--executor", executor, "--quiet"])
        assert result.exit_code == 0, result.output
        tables[executor] = pd.read_parquet(tmp_path / executor / "landmarks.parquet").drop(columns="example_name")
    assert tables["ray"]["has_face"].sum() == 8
    pd.testing.assert_frame_equal(tables["ray"], tables["local"])
