"""Usage meters and hard budgets that hold under concurrency.

A ``Budget`` is never exceeded: before a call is sent it *reserves* its worst case, and
the reservation fails at once if spent + reserved + worst case would pass the limit.
When the call returns the reservation settles to the real cost. Check and update happen
with no ``await`` in between (and under a lock, for calls made from worker threads), so
parallel branches cannot all pass the check and then overspend together.
"""

from __future__ import annotations

import contextvars
import threading
from decimal import Decimal

from ._errors import BudgetExceeded
from ._money import Usage

__all__ = ["ITEM_METER", "Budget", "ItemMeter", "Reservation", "UsageMeter", "meter_for"]

NO_USAGE = Usage()  # frozen: one instance starts every meter


class UsageMeter:
    """Accumulates usage and passes it up: fan-out item -> step -> run -> outer step.

    ``models`` splits it by the model that was called (``"openai:gpt-4o-mini"``), for
    the usage a model call adds (``None`` until one does)."""

    __slots__ = ("models", "parent", "usage")

    def __init__(self, parent: UsageMeter | None = None) -> None:
        self.parent = parent
        self.usage = NO_USAGE
        self.models: dict[str, Usage] | None = None

    def add(self, usage: Usage, model: str | None = None) -> None:
        meter: UsageMeter | None = self
        while meter is not None:
            meter.usage = meter.usage + usage
            if model is not None:
                if meter.models is None:
                    meter.models = {}
                meter.models[model] = meter.models.get(model, NO_USAGE) + usage
            meter = meter.parent


class Budget:
    """A USD limit over a run (or a step), optionally inside a parent budget."""

    __slots__ = ("_lock", "limit", "parent", "reserved", "scope", "spent")

    def __init__(self, limit: Decimal, scope: str = "run", parent: Budget | None = None) -> None:
        self.limit = limit
        self.scope = scope
        self.parent = parent
        self.spent = Decimal(0)
        self.reserved = Decimal(0)
        self._lock = threading.Lock()

    @property
    def remaining(self) -> Decimal:
        return self.limit - self.spent - self.reserved

    def chain(self) -> list[Budget]:
        out: list[Budget] = []
        budget: Budget | None = self
        while budget is not None:
            out.append(budget)
            budget = budget.parent
        return out

    def reserve(self, amount: Decimal) -> Reservation:
        """Hold ``amount`` in this budget and every parent, or raise ``BudgetExceeded``."""
        chain = self.chain()
        lock = chain[-1]._lock  # the root's lock guards the whole tree of budgets
        with lock:
            for budget in chain:
                if budget.spent + budget.reserved + amount > budget.limit:
                    raise BudgetExceeded(budget.spent, budget.reserved + amount, budget.limit,
                                         scope=budget.scope)
            for budget in chain:
                budget.reserved += amount
        return Reservation(chain, amount, lock)


class Reservation:
    """A held worst case; ``settle`` swaps it for the real cost (once)."""

    __slots__ = ("_amount", "_chain", "_lock", "_open")

    def __init__(self, chain: list[Budget], amount: Decimal, lock: threading.Lock) -> None:
        self._chain = chain
        self._amount = amount
        self._lock = lock
        self._open = True

    def settle(self, actual: Decimal) -> None:
        """Replace the reservation with what the call really cost (0 if it failed)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            for budget in self._chain:
                budget.reserved -= self._amount
                budget.spent += actual

    def release(self) -> None:
        """The request was never sent, or the provider refused it: spend nothing."""
        self.settle(Decimal(0))

    def keep(self) -> None:
        """The request was sent and no answer came back (it timed out, the connection
        dropped, the call was cancelled in flight): the provider may still bill it, so the
        whole worst case stays spent."""
        self.settle(self._amount)


class ItemMeter:
    """The fan-out item a worker task is running, so a model call made inside a mapped
    function charges that item (and through it the step and the run).

    One per worker task, reused item after item; an item's meter is made on its first
    charge, since most items of a large fan-out never make a model call. ``owner`` is
    the step scope whose fan-out this is: only its own calls charge the item.
    """

    __slots__ = ("_meter", "owner", "parent")

    def __init__(self, owner: object, parent: UsageMeter) -> None:
        self.owner = owner
        self.parent = parent
        self._meter: UsageMeter | None = None

    def next_item(self) -> None:
        self._meter = None

    def meter(self) -> UsageMeter:
        if self._meter is None:
            self._meter = UsageMeter(self.parent)
        return self._meter

    @property
    def usage(self) -> Usage:
        return NO_USAGE if self._meter is None else self._meter.usage


ITEM_METER: contextvars.ContextVar[ItemMeter | None] = contextvars.ContextVar(
    "plait_fanout_item", default=None)


def meter_for(owner: object, own: UsageMeter) -> UsageMeter:
    """The meter work done by ``owner`` should charge: its fan-out item's, else its own."""
    current = ITEM_METER.get()
    return current.meter() if current is not None and current.owner is owner else own
