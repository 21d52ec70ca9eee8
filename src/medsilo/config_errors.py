"""One wording for every invalid configuration file: a line per problem, nothing else.

Every YAML (and JSON) file a user writes is validated by a pydantic model: the run config,
the federation file, a federation schema, a site mapping, an enrolment policy. pydantic's own
text spreads one problem over three lines and ends each with "For further information visit
https://errors.pydantic.dev/...", which says nothing about the user's file. Each loader turns
its :class:`~pydantic.ValidationError` into text here instead, so every file is explained the
same way: the heading (which file, what kind), then ``  - where: what (got value)``, where
``where`` is the dotted path of the key in the file (``training.batch_size``,
``sites.0.csv``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

#: pydantic's prefixes of messages raised by a model's own validators: the rest is ours.
_PREFIXES = ("Value error, ", "Assertion failed, ")
MAX_SHOWN = 80  # characters of an offending value quoted back


def _where(loc: tuple[int | str, ...]) -> str:
    # "function-after[...]" is pydantic's name of a validator step, not a key of the file.
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    return ".".join(parts) or "<top>"


def _shown(value: Any) -> str:
    """The offending value, unless it is a whole section (those the location names)."""
    if isinstance(value, dict):
        return ""
    text = repr(value)
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "..."
    return f" (got {text})"


def problem_line(error: ErrorDetails) -> str:
    """``where: what (got value)`` for one pydantic error."""
    message = error["msg"]
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return f"{_where(error['loc'])}: {message}{_shown(error.get('input'))}"


def problem_lines(err: ValidationError) -> list[str]:
    return [problem_line(error) for error in err.errors()]


def describe_invalid(err: ValidationError, heading: str) -> str:
    """``heading`` (which file is invalid), then one ``  - where: what`` line per problem."""
    return "\n".join([heading, *[f"  - {line}" for line in problem_lines(err)]])
