"""Worker process pools whose failed start stops the run with the error.

`multiprocessing.Pool` restarts a worker whose initializer raises, forever: the run hangs
with no message. Here the initializer's error is kept in the worker instead, and the first
task it is given raises :class:`WorkerStartError` in the parent, naming the cause.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from functools import partial

_start_error: str | None = None


class WorkerStartError(RuntimeError):
    """A worker process could not start (its set-up raised); the message carries the worker's traceback."""


def guarded_init(initializer: Callable, args: tuple) -> None:
    """Run a worker's set-up; keep its error for the first task instead of letting the pool restart it."""
    global _start_error
    try:
        initializer(*args)
    except BaseException as error:  # noqa: BLE001 - reported to the parent with the first task, not lost
        _start_error = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"


def _call(function: Callable, item):
    if _start_error is not None:
        raise WorkerStartError(f"a worker process failed to start: {_start_error}")
    return function(item)


def worker_pool(workers: int, initializer: Callable, args: tuple):
    """A spawn-context pool of `workers` processes, each set up by `initializer(*args)`.

    Map tasks through :func:`guarded` so that a failed set-up raises WorkerStartError.
    """
    return multiprocessing.get_context("spawn").Pool(workers, guarded_init, (initializer, args))


def guarded(function: Callable) -> Callable:
    """`function` as a task for a :func:`worker_pool` (picklable; raises the worker's start error)."""
    return partial(_call, function)
