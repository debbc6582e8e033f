"""What the executors send to workers: a render task carries its sample and only the pool faces it
may use, so a worker's memory does not grow with the pool; the local executor runs a job's
set-up once per worker process and returns every item's result."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

from synthface.generation.executors import LocalExecutor, WorkerJob
from synthface.generation.plan import PoolFace, build_plan
from synthface.generation.run import SamplesWithFaces
from synthface.generation.sources.base import FaceRecord
from synthface.scenario import parse_scenario
from synthface.taxonomy import GENDERS, RACE_TAXONOMIES


def test_a_render_task_carries_only_the_faces_it_may_use():
    scenario = parse_scenario({"name": "t", "n_samples": 200, "sources": [{"kind": "demo"}], "age": {"bins": [[0, 120]]}},
                              check_paths=False)
    faces = []
    for i in range(3000):
        gender, race = GENDERS[i % 2], RACE_TAXONOMIES["utkface5"][(i // 2) % 5]
        record = FaceRecord(f"utkface:{i}.jpg", Path(f"/pool/{i:06d}.jpg"), "utkface", float(20 + i % 50), None, gender, race, "utkface5")
        faces.append(PoolFace(record, "0-120", gender, race))
    plan = build_plan(scenario, faces)
    tasks = SamplesWithFaces(plan.samples, plan.faces)
    assert len(tasks) == 200
    for spec, carried in tasks:
        assert set(carried) == {spec.face, *spec.alternates}
        assert all(carried[index] is plan.faces[index] for index in carried)
    largest = max(len(pickle.dumps(task)) for task in tasks)
    assert largest < len(pickle.dumps(plan.faces)) / 50  # a task is a few faces, not the pool


def _pid(_item) -> int:
    return os.getpid()


def test_the_local_executor_returns_every_item_from_its_workers():
    job = WorkerJob(os.getpid, (), _pid, chunksize=2)
    results = dict(LocalExecutor(2).map_unordered(job, list(range(12))))
    assert sorted(results) == list(range(12))
    assert os.getpid() not in results.values() and 1 <= len(set(results.values())) <= 2
    inline = dict(LocalExecutor(1).map_unordered(job, list(range(3)), inline=_pid))
    assert set(inline.values()) == {os.getpid()}  # one worker: no pool to start, the items run here



def _record_setup(folder: str) -> None:
    (Path(folder) / str(os.getpid())).touch()


def _set_up(folder: Path, count: int) -> set[int]:
    """The pids of the `count` workers that ran _record_setup(folder), once they all have (at most 60 s)."""
    deadline = time.monotonic() + 60
    while len(list(folder.iterdir())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return {int(path.name) for path in folder.iterdir()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_pool_started_ahead_runs_its_job_and_is_stopped_for_another_job_or_at_close(tmp_path):
    first, second, unused = (tmp_path / name for name in ("first", "second", "unused"))
    for folder in (first, second, unused):
        folder.mkdir()
    executor = LocalExecutor(2)
    job = WorkerJob(_record_setup, (str(first),), _pid, chunksize=2)
    executor.start(job, 12)
    started = _set_up(first, 2)
    results = dict(executor.map_unordered(job, list(range(12))))
    assert sorted(results) == list(range(12))
    assert set(results.values()) <= started and _set_up(first, 2) == started  # the started pool ran them, no second one

    executor.start(WorkerJob(_record_setup, (str(unused),), _pid), 12)
    ahead = _set_up(unused, 2)
    other = WorkerJob(_record_setup, (str(second),), _pid, chunksize=2)
    results = dict(executor.map_unordered(other, list(range(12))))
    assert sorted(results) == list(range(12)) and set(results.values()) <= _set_up(second, 2)
    assert len(ahead) == 2 and not any(_alive(pid) for pid in ahead)  # stopped before the other job's pool started

    executor.start(other, 12)
    ahead = _set_up(second, 4) - set(results.values())
    executor.close()
    assert len(ahead) == 2 and not any(_alive(pid) for pid in ahead)


def test_a_pool_is_not_started_ahead_where_the_items_would_run_inline(tmp_path):
    executor = LocalExecutor(2)
    executor.start(WorkerJob(_record_setup, (str(tmp_path),), _pid), 3)  # fewer than 2 per worker: inline
    time.sleep(1)
    executor.close()
    assert not list(tmp_path.iterdir())
