"""What the executors send to workers: a render task carries its sample and only the pool faces it
may use, so a worker's memory does not grow with the pool; the local executor runs a job's
set-up once per worker process and returns every item's result."""

from __future__ import annotations

import os
import pickle
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
