"""One writer per output folder: an OS lock held for the whole of a run or merge.

`fcntl.flock` on `OUT/.synthface-run/lock`: the kernel releases it when the holder exits,
however it exits (a crash, SIGKILL, a lost node's process), so there is never a stale lock
to delete by hand. The holder writes who it is (host, pid, start time, command) into the
file, so a second run can say which run it collided with. Linux emulates flock with POSIX
record locks on NFS, so the lock also holds between machines that share the folder over NFS.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synthface.errors import UserError

LOCK_FILE = "lock"


class OutputLockedError(UserError, RuntimeError):
    """Another run or merge is writing the same output folder."""


def lock_path(run_dir: Path) -> Path:
    return Path(run_dir) / LOCK_FILE


def describe_holder(text: str) -> str:
    """'pid 123 on host, started 2026-...: synthface generate ...' from the lock file's content."""
    try:
        holder = json.loads(text)
        return (f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: "
                f"{' '.join(holder['command'])}")
    except (ValueError, KeyError, TypeError):
        return "another process (it has not written its name yet)"


@contextmanager
def output_lock(out: Path, run_dir: str, action: str) -> Iterator[Path]:
    """Hold the write lock of `out` for the block; raise OutputLockedError naming the holder if taken.

    `action` says what this process does ("generate", "merge"), for the holder's record.
    """
    folder = Path(out) / run_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputLockedError(f"{out}: is not a folder; expected an output folder") from None
    path = lock_path(folder)
    handle = open(path, "a+")  # never truncate before holding the lock: the holder's record must survive
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise OutputLockedError(
                f"{out} is being written by another synthface run ({describe_holder(handle.read())}); "
                "wait for it to finish, or choose another --out"
            ) from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "action": action,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": [Path(sys.argv[0]).name, *sys.argv[1:]]}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record))
        handle.flush()
        yield path
    finally:
        handle.close()  # closing the descriptor releases the lock


def check_not_being_written(folder: Path, run_dir: str, what: str) -> None:
    """Raise OutputLockedError if a run holds `folder`'s write lock (a shard still being written or
    resumed must not be read as finished). Takes and drops the shared side; leaves no file behind."""
    path = lock_path(Path(folder) / run_dir)
    if not path.is_file():
        return
    with open(path) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLockedError(f"{what} {folder} is being written by a synthface run ({describe_holder(handle.read())}); "
                                    "merge it once that run has finished") from None
