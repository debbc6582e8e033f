"""User errors vs bugs, and turning pydantic validation errors into messages a user can act on.

A `UserError` means "fix your input" (a bad file, option or dataset): the command line prints
its message as one line and exits 2. Any other exception is a bug and keeps its traceback, so
an internal ValueError is never disguised as a user mistake. Each area's error class
(ScenarioError, RecipeError, DatasetError, ...) derives from UserError.
"""

from __future__ import annotations

from pydantic import ValidationError

MAX_PROBLEMS_SHOWN = 20  # one bad file once printed 291,426 lines of errors


class UserError(Exception):
    """An input the user can fix; the message names the file or option and what was expected."""


# OS errors about a path the user gave are user errors too; their message names the path.
USER_OS_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, *USER_OS_ERRORS)


def validation_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(dotted key path, message) for every problem pydantic found; a wrong type also says what was given."""
    return [(".".join(str(part) for part in item["loc"]), _message(item)) for item in error.errors()]


def _message(item: dict) -> str:
    message = item["msg"].removeprefix("Value error, ")
    given = item.get("input")
    if item["type"].endswith(("_type", "_parsing", "_from_float")) and isinstance(given, (bool, int, float, str)):
        shown = repr(given) if len(repr(given)) <= 40 else repr(given)[:37] + "..."
        message += f", got {shown}"
        if isinstance(given, bool):
            message += " (YAML reads yes/no/on/off/true/false as a boolean)"
    return message


def describe_problems(source: str, what: str, problems: list[tuple[str, str]], limit: int = MAX_PROBLEMS_SHOWN) -> str:
    """'FILE: invalid WHAT' and one indented 'key: message' line per problem, the first `limit` of them."""
    lines = [f"{key or '(top level)'}: {message}" for key, message in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more problems (fix these first)")
    return "\n  ".join([f"{source}: invalid {what}", *lines])
