"""What every command shares: the stderr console, one-line user errors, the global --verbose switch.

A `UserError` (bad file, option or dataset) is printed as one line and exits 2. Anything else
is a bug and propagates with its traceback, so an internal ValueError is never shown as if it
were the user's mistake.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from synthface.errors import USER_ERRORS
from synthface.paths import VERBOSE_ENV

console = Console(stderr=True, soft_wrap=True)  # messages stay on one line, whatever the terminal width


def set_verbose(verbose: bool) -> None:
    """--verbose: let MediaPipe / TensorFlow Lite print their own log lines (hidden by default)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        os.environ["GLOG_minloglevel"] = "0"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def print_error(error: BaseException | str, label: str = "error") -> None:
    """'error: MESSAGE' on stderr; the message is printed as text (brackets such as [18, 29] are not markup)."""
    console.print(f"[red]{label}:[/] {escape(str(error))}")


def print_warning(message: str) -> None:
    """'warning: MESSAGE' on stderr, the message printed as text."""
    console.print(f"[yellow]warning:[/] {escape(str(message))}")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error into one line on stderr and exit status 2; let bugs through with their traceback."""
    try:
        yield
    except USER_ERRORS as error:
        print_error(error)
        raise typer.Exit(2) from None
