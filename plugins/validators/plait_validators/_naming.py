"""What every validator here shares: a readable name, and short renderings for reasons."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_SHOWN = 60  # characters of a value quoted in a reason; it ends up in re-ask prompts
_LISTED = 12  # allowed values listed in a reason


def named(name: str, fn: F) -> F:
    """Give a validator the name ``ValidationFailed.validator`` reports."""
    fn.__name__ = fn.__qualname__ = name
    return fn


def show(value: Any) -> str:
    """``repr(value)``, cut to a length that fits in a reason."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def listing(values: Iterable[Any]) -> str:
    """A comma-separated list of reprs, cut after a dozen."""
    items = list(values)
    shown = ", ".join(repr(v) for v in items[:_LISTED])
    return shown + (f" (and {len(items) - _LISTED} more)" if len(items) > _LISTED else "")
