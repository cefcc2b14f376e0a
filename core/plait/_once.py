"""``ctx.once(name, fn, *args)``: a side effect that happens once per run.

The first call for ``name`` in a run calls ``fn``; its result is kept in the run's memory
(so a retry of the step gets it back) and written to the run store before ``once``
returns (so a resumed run gets it back too). ``fn`` that takes an ``idempotency_key``
keyword gets ``<run_id>/once/<name>``, the same on every attempt and every resume: pass
it on to the external system, which then dedupes the one window no store can close, a
crash after ``fn`` returned and before its result reached the disk.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ._durable import UNRESTORABLE, restore_value
from ._step import declared_return, is_async_callable, run_in_thread
from ._store import OnceRow

if TYPE_CHECKING:
    from ._scope import StepScope

__all__ = ["run_once"]


def _takes_key(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return "idempotency_key" in params


async def run_once(scope: StepScope, name: str, fn: Callable[..., Any],
                   args: tuple[Any, ...]) -> Any:
    if not isinstance(name, str) or not name:
        raise TypeError(f"ctx.once needs a non-empty name, got {name!r}")
    if not callable(fn):
        raise TypeError(f"ctx.once({name!r}, fn): fn must be callable, got {fn!r}")
    memory = scope.run.durable
    lock = memory.once_locks.setdefault(name, anyio.Lock())
    async with lock:  # two steps asking at once: the second waits for the first's result
        if name in memory.live_once:
            return memory.live_once[name]
        runtime = scope.runtime
        if name in memory.once:  # recorded by an earlier attempt of this run
            value = restore_value(memory.once[name], True, declared_return(fn),
                                  runtime.converter)
            if value is UNRESTORABLE:  # fn's type changed since: its data, never a new call
                value = memory.once[name]
        else:
            run_id = scope.run.info.run_id
            kwargs = {"idempotency_key": f"{run_id}/once/{name}"} if _takes_key(fn) else {}
            if is_async_callable(fn):
                value = await fn(*args, **kwargs)
            else:
                value = await run_in_thread(lambda: fn(*args, **kwargs))
            store = runtime.store
            if store is not None:
                await store.open()
                store.write([OnceRow(run_id, name, runtime.converter.unstructure(value))])
                await store.flush()
        memory.live_once[name] = value
        return value
