"""The built-in evaluation metrics: each scores one output against what was expected.

Metrics see JSON values (the output as the Runtime's converter unstructures it: an Enum
as its value, an attrs class as a dict), so cases written in JSONL compare directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from plait.hookspecs import RegisterMetric, hookimpl

__all__ = ["contains", "exact", "json_match", "one_of", "within"]


def exact(output: Any, expected: Any) -> bool:
    """Equal; text is compared with surrounding whitespace stripped."""
    if isinstance(output, str) and isinstance(expected, str):
        return output.strip() == expected.strip()
    return bool(output == expected)


def contains(output: Any, expected: Any) -> bool:
    """The expected text appears in the output, ignoring case."""
    return _text(expected).casefold() in _text(output).casefold()


def one_of(output: Any, expected: Any) -> bool:
    """The output is exactly (as ``exact`` says) one of a list of accepted answers."""
    if isinstance(expected, str) or not isinstance(expected, Sequence):
        raise TypeError(f"one_of expects a list of accepted answers, got {expected!r}")
    return any(exact(output, answer) for answer in expected)


def json_match(output: Any, expected: Any) -> bool:
    """The output (JSON text or a value) holds every key and value of the expected one;
    extra keys in the output are allowed, lists must match item by item."""
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return False
    return _matches(output, expected)


def within(output: Any, expected: Any) -> bool:
    """A number close to the expected one: ``expected`` is a number (equal, allowing for
    float rounding) or ``{"value": x, "tolerance": t}`` (at most ``t`` away)."""
    if isinstance(expected, Mapping):
        target, tolerance = float(expected["value"]), float(expected["tolerance"])
    else:
        target, tolerance = float(expected), 0.0
    try:
        value = float(output.strip() if isinstance(output, str) else output)
    except (TypeError, ValueError):
        return False
    return abs(value - target) <= tolerance or math.isclose(value, target)


@hookimpl
def plait_register_metrics(register: RegisterMetric) -> None:
    for metric in (exact, contains, one_of, json_match, within):
        register(metric.__name__, metric)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _matches(output: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(output, Mapping) and all(
            key in output and _matches(output[key], value) for key, value in expected.items())
    if isinstance(expected, list):
        return (isinstance(output, list) and len(output) == len(expected)
                and all(_matches(o, e) for o, e in zip(output, expected, strict=True)))
    return bool(output == expected)
