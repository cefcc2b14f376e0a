"""What a run remembers across attempts: recorded steps and items to restore on resume,
and ``ctx.once`` results.

A fresh run starts with an empty ``RunMemory`` (so checking it costs a dict lookup); a
resumed one starts with what the store recorded. A recorded value comes back with its
type when the step (or item function) declares one JSON holds whole
(``serializable_type``), as it was when it was plain JSON data, and otherwise is not
restored: that step or item runs again rather than hand on a value of the wrong type.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._money import Usage
from ._results import FanOutJob, FanOutResult, ItemOutcome, StepRecord, Stop
from ._serialize import serializable_type
from ._store import ItemRow, StepRow

if TYPE_CHECKING:
    import cattrs

__all__ = ["PLAIN", "UNRESTORABLE", "RunMemory", "Unfinished", "fingerprint", "is_plain",
           "recorded_output", "restore_value", "structure_of", "target_of"]

PLAIN = (str, int, float, bool, type(None))


def is_plain(value: Any) -> bool:
    """Whether ``value`` is plain JSON data (scalars, lists, dicts with string keys), which
    comes back from JSON as it was, so it can be restored without knowing its type."""
    kind = type(value)
    if kind in PLAIN:
        return True
    if kind is list:
        return all(is_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and is_plain(v) for k, v in value.items())
    return False


UNRESTORABLE: Any = object()


def restore_value(data: Any, plain: bool, declared: Any, conv: cattrs.Converter) -> Any:
    """A recorded value back as it was, or ``UNRESTORABLE``."""
    try:
        typed = serializable_type(declared)
    except TypeError:  # an annotation that cannot be a cache key
        typed = False
    if typed:
        try:
            return conv.structure(data, declared)
        except Exception:  # the declared type changed since: run the step again
            return UNRESTORABLE
    return data if plain else UNRESTORABLE


class RunMemory:
    """The recorded ``ok`` steps (by path) and items (by fan-out path, then index) a
    resumed run restores, ``once`` results (JSON data from the store, or this attempt's
    live values), the run's attempt and what earlier attempts spent (``base``)."""

    __slots__ = ("attempt", "base", "items", "live_once", "once", "once_locks", "steps")

    def __init__(self, steps: Mapping[str, StepRow] | None = None,
                 items: Mapping[str, Mapping[int, ItemRow]] | None = None,
                 once: Mapping[str, Any] | None = None, *, attempt: int = 1,
                 base: Usage = Usage()) -> None:
        self.steps = dict(steps or {})
        self.items = dict(items or {})
        self.once = dict(once or {})  # name -> JSON data, as recorded
        self.live_once: dict[str, Any] = {}  # name -> the value fn returned in this process
        self.once_locks: dict[str, Any] = {}  # name -> anyio.Lock, made on first use
        self.attempt = attempt
        self.base = base

    def step(self, path: str, declared: Any,
             conv: cattrs.Converter) -> tuple[StepRecord, Any] | None:
        """The recorded record and output of the step at ``path``, if it can be restored."""
        row = self.steps.get(path)
        if row is None:
            return None
        value = restore_value(row.output, row.plain, declared, conv)
        if value is UNRESTORABLE:
            return None
        return row.record, value

    def done_items(self, path: str, declared: Any,
                   conv: cattrs.Converter) -> dict[int, tuple[Any, Usage]]:
        """The recorded items of the fan-out at ``path`` that can be restored, by index."""
        rows = self.items.get(path)
        if not rows:
            return {}
        done = {}
        for index, row in rows.items():
            value = restore_value(row.value, row.plain, declared, conv)
            if value is not UNRESTORABLE:
                done[index] = (value, row.usage)
        return done


class Unfinished:
    """A resumed fan-out: the executor gets only the items not recorded as done, under
    their own indices (so each keeps its idempotency key), and the restored ones are
    merged back into its outcomes."""

    def __init__(self, done: Mapping[int, tuple[Any, Usage]], items: Sequence[Any],
                 call: Callable[[int, Any], Awaitable[Any]],
                 report: Callable[[ItemOutcome], Awaitable[None]] | None) -> None:
        self.done = done
        self.todo = [i for i in range(len(items)) if i not in done]
        self.items = [items[i] for i in self.todo]
        self._call = call
        self._report = report

    async def _sub_call(self, j: int, item: Any) -> Any:
        return await self._call(self.todo[j], item)

    async def _sub_report(self, outcome: ItemOutcome) -> None:
        assert self._report is not None
        await self._report(attrs.evolve(outcome, index=self.todo[outcome.index]))

    def job(self, limit: int | None, fail_fast: bool, label: str, executor: str) -> FanOutJob:
        return FanOutJob(self._sub_call, self.items, limit, fail_fast, label, executor,
                         report=None if self._report is None else self._sub_report)

    def merged(self, outcomes: Sequence[ItemOutcome]) -> list[ItemOutcome]:
        out = [attrs.evolve(o, index=self.todo[o.index]) for o in outcomes]
        out.extend(ItemOutcome(i, value, None, usage) for i, (value, usage) in self.done.items())
        return out


def recorded_output(value: Any, conv: cattrs.Converter) -> tuple[Any, bool]:
    """A step's or item's output as JSON data for the store, and whether it is plain
    (a fan-out's result is not kept whole: its items are, and a resume restores those)."""
    if type(value) in PLAIN:  # most values: nothing to convert
        return value, True
    if isinstance(value, FanOutResult):
        return None, False
    if type(value) in (list, dict):  # JSON data comes back equal (a tuple or an int key
        try:                         # would not): a copy, walked in C, not by the converter
            copy = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            pass  # something JSON does not know as it is (a Decimal, a class)
        else:
            if copy == value:
                return copy, True
    return conv.unstructure(value), not isinstance(value, Stop) and is_plain(value)


def structure_of(pipeline: Any, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Each step path of ``pipeline`` (nested pipelines' steps included) and the steps it
    depends on: what recorded outputs rely on."""
    out: dict[str, tuple[str, ...]] = {}
    for sid, step in pipeline.steps.items():
        out[prefix + sid] = tuple(sorted(pipeline.dependencies[sid]))
        if hasattr(step, "dependencies") and hasattr(step, "steps"):  # a nested pipeline
            out.update(structure_of(step, f"{prefix}{sid}/"))
    return out


def target_of(pipeline: Any) -> str | None:
    """``module:name`` of a module-level pipeline, found through its steps' functions'
    module (``None`` for one made in ``__main__`` or a function: not importable later)."""
    for step in pipeline.steps.values():
        module = sys.modules.get(getattr(getattr(step, "fn", None), "__module__", "") or "")
        if module is None or module.__name__ == "__main__":
            continue
        for name, value in vars(module).items():
            if value is pipeline:
                return f"{module.__name__}:{name}"
    return None


def fingerprint(structure: Mapping[str, tuple[str, ...]]) -> str:
    text = json.dumps(sorted((k, list(v)) for k, v in structure.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
