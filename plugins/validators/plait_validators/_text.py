"""Validators on the shape of a value: non-empty, size bounds, regex, allowed labels, JSON."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Sized
from typing import Any

from ._naming import listing, named, show

__all__ = ["is_json", "length", "non_empty", "one_of", "regex"]

Check = Callable[[Any], str | None]


def non_empty() -> Check:
    """Reject ``None``, text that is empty or only whitespace, and empty collections."""

    def check(value: Any) -> str | None:
        if value is None:
            return "the output is empty (None)"
        if isinstance(value, str) and not value.strip():
            return "the output is empty text" if not value else "the output is only whitespace"
        if isinstance(value, Sized) and len(value) == 0:
            return f"the output is an empty {type(value).__name__}"
        return None

    return named("non_empty", check)


def length(*, min: int | None = None, max: int | None = None) -> Check:
    """Bound the size of text (characters), a sequence (items) or a mapping (keys)."""
    if min is None and max is None:
        raise ValueError("length() needs min=, max= or both")
    for label, bound in (("min", min), ("max", max)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)
                                  or bound < 0):
            raise ValueError(f"length({label}=...) must be an int >= 0, got {bound!r}")
    if min is not None and max is not None and min > max:
        raise ValueError(f"length(min={min}, max={max}): min is larger than max")

    def check(value: Any) -> str | None:
        if not isinstance(value, Sized):
            return f"the output has no length (it is a {type(value).__name__})"
        n = len(value)
        unit = ("character" if isinstance(value, str | bytes)
                else "key" if isinstance(value, dict) else "item")
        size = f"{n} {unit}{'' if n == 1 else 's'}"
        if min is not None and n < min:
            return f"the output has {size}, fewer than the minimum of {min}"
        if max is not None and n > max:
            return f"the output has {size}, more than the maximum of {max}"
        return None

    bounds = ", ".join(f"{k}={v}" for k, v in (("min", min), ("max", max)) if v is not None)
    return named(f"length({bounds})", check)


def regex(pattern: str | re.Pattern[str], *, flags: int = 0, full: bool = False) -> Check:
    """Text must contain a match of ``pattern`` (``full=True``: match it entirely)."""
    compiled = re.compile(pattern, flags)
    find = compiled.fullmatch if full else compiled.search

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"expected text, got {type(value).__name__}"
        if find(value) is None:
            how = "match" if full else "contain a match of"
            return f"{show(value)} does not {how} the pattern {compiled.pattern!r}"
        return None

    return named(f"regex({compiled.pattern!r})", check)


def one_of(labels: Iterable[Any] | type[enum.Enum], *, ignore_case: bool = False) -> Check:
    """The output must be one of the allowed labels (a taxonomy).

    ``labels`` is an iterable of labels or an Enum class; Enum members compare by value,
    on both sides, so ``Intent.BILLING`` matches ``"billing"``. A list, tuple or set output
    (multi-label classification) must have every member among the labels.
    """
    allowed = [_plain(label) for label in labels]
    if not allowed:
        raise ValueError("one_of() needs at least one allowed label")

    def key(label: Any) -> Any:
        return label.casefold() if ignore_case and isinstance(label, str) else label

    keys = {key(label) for label in allowed}

    def check(value: Any) -> str | None:
        members = value if isinstance(value, list | tuple | set | frozenset) else [value]
        wrong = [m for m in members if key(_plain(m)) not in keys]
        if not wrong:
            return None
        what = ", ".join(show(_plain(m)) for m in wrong[:3])
        verb = "is" if len(wrong) == 1 else "are"
        return f"{what} {verb} not one of the allowed labels: {listing(allowed)}"

    return named(f"one_of({listing(allowed)})", check)


def _plain(label: Any) -> Any:
    return label.value if isinstance(label, enum.Enum) else label


def is_json() -> Check:
    """Text must parse as JSON (for agents that answer in JSON text)."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"expected JSON text, got {type(value).__name__}"
        try:
            json.loads(value)
        except ValueError as exc:
            return f"the output is not valid JSON: {exc}"
        return None

    return named("json", check)
