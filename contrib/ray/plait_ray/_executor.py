"""The "ray" executor: a fan-out's items run on a Ray cluster, in chunks.

The driver ships the worker once (``ray.put``), then keeps a window of chunk tasks in
flight: at most ``limit`` items (when the fan-out has one), else two chunks per CPU of
the cluster. Each chunk runs with plait's local executor inside a worker process; its
outcomes come back as it finishes, are metered into the run and reported item by item
(``job.finish``: progress, and ``plait.ItemFinished`` to the run's listeners), and the
next chunk is sent. Only the window's items are ever in flight, whatever N is.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import anyio
import cloudpickle  # type: ignore[import-untyped]  # no stubs, no py.typed
import ray
from plait import FanOutJob, ItemOutcome, StepContext, Usage
from plait._context import scope_of

from . import _worker
from ._errors import RayTaskFailed
from ._ledger import Lent
from ._ship import ship, ship_items
from ._trace import carrier

__all__ = ["ChunkPlan", "run_on_ray"]

_NO_USAGE = Usage()
_POLL = 0.25  # seconds a waiting thread blocks in ray.wait before looking again


class ChunkPlan:
    """How many items go in the next chunk, and whether another fits in the window.

    Given ``chunk_size``, every chunk has that many items. Otherwise the size adapts:
    it starts small (so the first results come back soon and a short fan-out still
    spreads over the cluster), then aims for chunks of ``target`` seconds from the
    measured time per item, never above ``maximum`` nor above an even share of what is
    left (the last chunks stay balanced over the slots).
    """

    def __init__(self, n: int, limit: int | None, slots: int, chunk_size: int | None = None,
                 target: float = 0.2, maximum: int = 4096) -> None:
        self.left = n
        self.limit = limit
        self.slots = slots
        self.fixed = chunk_size
        self.target = target
        self.cap = maximum if limit is None else max(1, min(maximum, limit // slots))
        self.size = max(1, min(64, self.cap, math.ceil(n / (slots * 4))))
        self.per_item: float | None = None

    def fits(self, items_in_flight: int, chunks_in_flight: int) -> bool:
        if self.left == 0:
            return False
        if self.limit is not None:
            return items_in_flight < self.limit
        return chunks_in_flight < self.slots

    def next(self, items_in_flight: int) -> int:
        if self.fixed is not None:
            size = self.fixed
        else:
            size = self.size
            if self.per_item is not None:
                size = int(self.target / max(self.per_item, 1e-7))
            size = max(1, min(size, self.cap, math.ceil(self.left / self.slots)))
        if self.limit is not None:
            size = min(size, self.limit - items_in_flight)
        size = min(size, self.left)
        self.left -= size
        return size

    def observe(self, items: int, seconds: float) -> None:
        """A chunk of ``items`` took ``seconds`` in its worker."""
        measured = seconds / items
        self.per_item = measured if self.per_item is None else (self.per_item + measured) / 2


@functools.cache
def _chunk_task(max_retries: int) -> Any:
    return ray.remote(max_retries=max_retries)(_worker.run_chunk)


async def run_on_ray(job: FanOutJob, ctx: StepContext) -> list[ItemOutcome]:
    n = len(job.items)
    if n == 0:
        return []
    settings: Mapping[str, Any] = ctx.runtime.settings.get("ray", {})
    if not ray.is_initialized():  # the application connects (ray.init(address=...)); else local
        # Here, not in a worker thread: a Ray driver started on a thread that then ends
        # takes the process down with it (tried). It blocks the loop once, for the start.
        ray.init(**settings.get("init", {}))
    scope = scope_of(ctx)
    payload = ray.put(ship(job.fn, ctx, job.label))
    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]  # ray's
    slots = 2 * max(1, int(cpus))
    plan = ChunkPlan(n, job.limit, slots, settings.get("chunk_size"))
    task = _chunk_task(int(settings.get("max_retries", 3)))
    trace = carrier()  # inside the fan-out's span, when it is traced
    lent = Lent(scope.budget) if scope.budget is not None else None
    outcomes: list[ItemOutcome] = []
    pending: dict[Any, tuple[int, int]] = {}  # chunk task -> (first index, size)
    in_flight = start = 0
    failed = False
    try:
        while True:
            while not failed and plan.fits(in_flight, len(pending)):
                size = plan.next(in_flight)
                chunk = [job.items[i] for i in range(start, start + size)]  # any Sequence
                items = ship_items(chunk, start, job.label)
                ref = task.remote(payload, start, items,
                                  None if lent is None else lent.ledger, job.fail_fast, trace)
                pending[ref] = (start, size)
                start += size
                in_flight += size
            if not pending:
                break
            for ref in await _ready(list(pending)):
                first, size = pending.pop(ref)
                in_flight -= size
                for outcome in _outcomes(ref, first, size, plan):
                    if outcome.usage != _NO_USAGE:
                        scope.meter.add(outcome.usage)  # the step's and the run's totals
                    outcomes.append(outcome)
                    await job.finish(outcome)  # progress and the run's listeners
                    failed = failed or (job.fail_fast and outcome.error is not None)
            if failed:
                break
    finally:
        for ref in pending:  # the run was cancelled, or failed fast: stop the cluster too
            # force: an item in plain Python (or in a thread) only stops with its process
            ray.cancel(ref, force=True)
        if lent is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lent.close)
    return outcomes


async def _ready(refs: list[Any]) -> list[Any]:
    """The chunk tasks that have finished (at least one), waited for in a thread."""
    while True:
        ready, rest = await anyio.to_thread.run_sync(
            functools.partial(ray.wait, refs, num_returns=1, timeout=_POLL),
            abandon_on_cancel=True)
        if ready:
            if rest:  # pick up every other chunk done meanwhile, without waiting
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready += more
            return list(ready)


def _outcomes(ref: Any, first: int, size: int, plan: ChunkPlan) -> list[ItemOutcome]:
    try:
        seconds, outcomes = cloudpickle.loads(ray.get(ref))
    except ray.exceptions.RayError as exc:  # the chunk as a whole was lost
        error = RayTaskFailed(f"Ray could not run items {first}..{first + size - 1}: "
                              f"{type(exc).__name__}: {exc}")
        return [ItemOutcome(i, None, error) for i in range(first, first + size)]
    plan.observe(max(1, len(outcomes)), seconds)
    return list(outcomes)
