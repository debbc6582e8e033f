"""Where per-item work runs: this machine's process pool (`local`) or Ray actors (`ray`).

Both run the same `WorkerJob`: a module-level `setup(*args)` run once per worker process (it
loads MediaPipe, the mask library, opens the pool's landmarks) and a `task(item)` run per item.
The driver (this process) keeps the plan, the journal, the landmark cache and the tables;
workers only turn items into results, so determinism (every sample draws from its own seed),
resume and the output bytes do not depend on the executor or the number of workers.

Why Ray core actors rather than Ray Data: a worker's state (MediaPipe, the mask library, the
render context with its image caches) is loaded once per actor and kept, like a pool worker's;
the driver keeps its own journal and resume logic (Ray Data would bring its own, and would
order and batch work by its rules, not the plan's); and results stream back as they finish
with two chunks in flight per actor, so no actor waits for the driver.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any, Protocol

from synthface.errors import UserError
from synthface.generation.workers import guarded, worker_pool

EXECUTORS = ("local", "ray")
RAY_RETRIES = 3  # restarts of a dead Ray worker, and retries of the chunk it was running
RAY_INSTALL_HINT = "pip install -e '.[cluster]'"


class ExecutorError(UserError, RuntimeError):
    """The executor cannot start (Ray missing, a bad address); the message says what to do."""


@dataclass(frozen=True)
class WorkerJob:
    """What each worker runs: `setup(*args)` once, then `task(item)` per item.

    Both are module-level functions (they are pickled to the workers); `setup` keeps its state
    in module globals of the worker process, as `multiprocessing.Pool` initializers do.
    """

    setup: Callable[..., None]
    args: tuple
    task: Callable[[Any], Any]
    chunksize: int = 4


class Executor(Protocol):
    name: str
    workers: int

    def map_unordered(self, job: WorkerJob, items: Sequence, inline: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Any]]:
        """(index in `items`, result) for every item, in the order they finish.

        `inline` runs an item in this process; an executor may use it when workers would not pay."""
        ...

    def start(self, job: WorkerJob, n_items: int) -> None:
        """Start `job`'s workers ahead of its map_unordered over about `n_items` items, so that their start-up
        overlaps the caller's own work; an executor may ignore it."""
        ...

    def close(self) -> None: ...


def _indexed(task: Callable, entry: tuple[int, Any]) -> tuple[int, Any]:
    index, item = entry
    return index, task(item)


@contextmanager
def single_threaded_children():
    """Spawned workers inherit the environment before they import numpy: one BLAS/OpenMP thread
    each, since there is already one worker per core (more threads only fight over the cores)."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def worker_count(requested: int) -> int:
    """`requested`, or every core this process may use when it is 0."""
    return requested if requested > 0 else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class LocalExecutor:
    """A spawn-context process pool on this machine, one process per worker (the default)."""

    name = "local"

    def __init__(self, workers: int):
        self.workers = worker_count(workers)
        self._started: tuple[WorkerJob, Any] | None = None  # a job's pool started ahead by start(), not yet used

    def _pays(self, n_items: int) -> bool:
        return self.workers > 1 and n_items >= 2 * self.workers  # else a pool's start would cost more than it saves

    def start(self, job: WorkerJob, n_items: int) -> None:
        """Spawn `job`'s pool now: its workers import and set up (~1 s of CPU each) while this process goes on,
        instead of at the start of map_unordered(job, ...), which then takes this pool."""
        if self._started is None and self._pays(n_items):
            with single_threaded_children():
                self._started = (job, worker_pool(self.workers, job.setup, job.args))

    def _take_pool(self, job: WorkerJob):
        """The pool started for `job`, or a new one. A pool started for another job is stopped first: two sets of
        workers would hold twice the memory (a cold run detects landmarks before it renders)."""
        started, self._started = self._started, None
        if started is not None and started[0] == job:
            return started[1]
        self._stop(started)
        with single_threaded_children():
            return worker_pool(self.workers, job.setup, job.args)

    @staticmethod
    def _stop(started) -> None:
        if started is not None:
            started[1].terminate()
            started[1].join()

    def map_unordered(self, job: WorkerJob, items: Sequence, inline: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Any]]:
        if inline is not None and not self._pays(len(items)):
            yield from ((index, inline(item)) for index, item in enumerate(items))
            return
        pool = self._take_pool(job)
        try:
            yield from pool.imap_unordered(guarded(partial(_indexed, job.task)), enumerate(items), chunksize=job.chunksize)
        finally:
            pool.terminate()  # also on an error or Ctrl-C: do not wait for the rest of the queue
            pool.join()

    def close(self) -> None:
        """Stop a pool started ahead and never used (the run ended early: an error, nothing left to render)."""
        started, self._started = self._started, None
        self._stop(started)


def import_ray():
    """`ray`, or an ExecutorError saying how to install it (it is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL_HINT}") from None
    return ray


class _RayWorker:
    """One Ray actor = one worker process: set up once, then runs chunks of items."""

    def __init__(self, setup: Callable, args: tuple):
        from synthface.generation.workers import guarded_init

        guarded_init(setup, args)  # a failed set-up is raised with the first chunk, naming the cause

    def run(self, task: Callable, chunk: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        return [_indexed(task, entry) for entry in chunk]


class RayExecutor:
    """Ray actors, one per worker, on a Ray cluster or a Ray instance started for this run.

    `address`: None starts a local Ray instance with `workers` CPUs (and stops it on close);
    "auto" or "ray://HOST:PORT" joins a running cluster. An instance already initialised in this
    process (a notebook, a test) is used as it is. A worker that dies (killed, out of memory, its
    node lost) is restarted by Ray and the chunk it ran is retried; every sample's bytes come
    from its own seed, so a retried sample is written again with the same bytes.
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None = None):
        self._ray = ray = import_ray()
        self._started = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
                else:  # "local": a new instance for this run, even where RAY_ADDRESS or `ray start` names a cluster
                    ray.init(address="local", num_cpus=worker_count(workers), include_dashboard=False, log_to_driver=False,
                             logging_level="ERROR")
            except (ConnectionError, ValueError, RuntimeError) as error:
                where = f"--ray-address {address}: cannot reach a Ray cluster" if address else "cannot start a local Ray instance"
                raise ExecutorError(f"{where} ({error})") from None
            self._started = True
        # 0 workers = every CPU of the cluster (of this machine for a local instance).
        self.workers = workers if workers > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
        # Restarts without limit over an actor's life (a long run may see many preemptions); each chunk is
        # retried RAY_RETRIES times, so a chunk that kills its worker every time still ends the run.
        self._actor_class = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=RAY_RETRIES)(_RayWorker)

    def start(self, job: WorkerJob, n_items: int) -> None:
        """Nothing: actors are created by map_unordered (Ray starts them asynchronously anyway)."""

    def map_unordered(self, job: WorkerJob, items: Sequence, inline: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        if not items:
            return
        task = ray.put(guarded(job.task))
        # The set-up arguments go by value (they are small: no per-pool data), so Ray can restart an actor
        # from them at any time; an object-store reference could be gone by then.
        actors = [self._actor_class.remote(job.setup, job.args) for _ in range(min(self.workers, len(items)))]
        entries = iter(enumerate(items))
        pending: dict = {}

        def submit(actor) -> None:
            chunk = list(islice(entries, job.chunksize))
            if chunk:
                pending[actor.run.remote(task, chunk)] = actor

        try:
            for actor in actors:
                for _ in range(2):  # two chunks in flight: the next is queued while one runs
                    submit(actor)
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                actor = pending.pop(ready)
                results = self._get(ready)
                submit(actor)
                yield from results
        finally:
            for ref in pending:  # stopped early (an error, Ctrl-C): no retries of the unfinished chunks
                ray.cancel(ref)
            for actor in actors:
                ray.kill(actor)

    def _get(self, ref):
        """A chunk's results; a task's own error is raised as itself (as on the local executor), not as
        Ray's wrapper with the remote traceback."""
        from ray.exceptions import RayActorError, RayTaskError

        try:
            return self._ray.get(ref)
        except RayTaskError as error:
            if isinstance(error.cause, BaseException):
                raise error.cause from None
            raise
        except RayActorError as error:
            first_line = re.sub(r"\x1b\[[0-9;]*m", "", str(error).splitlines()[0])  # without Ray's colour codes
            raise ExecutorError(f"a Ray worker died and its samples could not be finished, retried {RAY_RETRIES} times "
                                f"(out of memory? killed?): {first_line}") from None

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(name: str, workers: int, ray_address: str | None = None) -> Executor:
    """The executor called `name` ('local' or 'ray') with `workers` workers (0: every core, or every CPU
    of the Ray cluster); Ray is imported only for 'ray'."""
    if name == "local":
        if ray_address:
            raise ExecutorError("--ray-address is for --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(workers, ray_address)
    raise ExecutorError(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")
