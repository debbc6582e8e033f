"""One progress-bar style for all long work (rate and ETA), quiet when asked or not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text


class EtaColumn(TextColumn):
    """'ETA 0:01:23' while a task runs; 'took 0:04:56' once it is finished or stopped early, so a bar left
    on screen (or printed once to a log) never shows a stale estimate."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # noqa: D401 - rich API
        if task.finished or task.stop_time is not None:
            return Text(f"took {_clock(task.finished_time or task.elapsed)}", style="progress.elapsed")
        remaining = task.time_remaining
        return Text(f"ETA {_clock(remaining) if remaining is not None else '-:--:--'}", style="progress.remaining")


def _clock(seconds: float | None) -> str:
    seconds = int(max(seconds or 0, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RateColumn(TextColumn):
    """Items per second."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # noqa: D401 - rich API
        speed = task.finished_speed or task.speed
        return f"{speed:6.1f}/s" if speed else "   ---/s"


@contextmanager
def progress_bar(description: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n=1)`; draws a bar with count, rate and ETA (the time taken once done) unless quiet."""
    if quiet:
        yield lambda n=1: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), EtaColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total)
        try:
            yield lambda n=1: progress.advance(task, n)
        finally:  # stopped early (error, Ctrl-C): the last frame shows the count done and the time, not an estimate
            progress.stop_task(task)
