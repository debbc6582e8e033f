"""Turning pydantic validation errors into messages a user can act on: file, key path, what was expected."""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(dotted key path, message) for every problem pydantic found."""
    return [(".".join(str(part) for part in item["loc"]), item["msg"].removeprefix("Value error, ")) for item in error.errors()]


def describe_problems(source: str, what: str, problems: list[tuple[str, str]]) -> str:
    """'FILE: invalid WHAT' and one indented 'key: message' line per problem."""
    return "\n  ".join([f"{source}: invalid {what}", *(f"{key or '(top level)'}: {message}" for key, message in problems)])
