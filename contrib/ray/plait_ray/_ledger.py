"""The run's budget across the cluster: lent to one ledger for the fan-out.

When a Ray fan-out starts under a budget, the driver reserves what is left of it (the
tightest budget over the step) as one *hold* and hands that amount to a ``Ledger`` actor.
Every model call in every remote item reserves its worst case against the ledger before
it is sent and settles to the real cost after, exactly as a local call does against the
driver's budget. When the fan-out ends, the hold settles to what the ledger spent (plus
anything still reserved by calls that were cut off: the provider may bill them). The
ledger can never lend more than the hold, so the budget is never exceeded.

While the hold is out, other branches of the run that call models see the budget as
spent; they get it back when the fan-out ends.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ray
from plait import BudgetExceeded
from plait._budget import Budget, Reservation

__all__ = ["Ledger", "Lent", "RemoteBudget"]

_NOTHING = Decimal(0)


class Ledger:
    """The Ray actor: one lent budget, reserved against by every remote model call."""

    def __init__(self, limit: Decimal, committed: Decimal, scope: str) -> None:
        self.limit = limit  # the driver's own limit, so errors read as they would locally
        self.committed = committed  # spent or reserved on the driver before the loan
        self.scope = scope
        self.spent = _NOTHING
        self.reserved = _NOTHING

    def reserve(self, amount: Decimal) -> tuple[Decimal, Decimal, Decimal, str] | None:
        """``None`` when ``amount`` is held, else what ``BudgetExceeded`` reports."""
        if self.committed + self.spent + self.reserved + amount > self.limit:
            return (self.committed + self.spent, self.reserved + amount, self.limit, self.scope)
        self.reserved += amount
        return None

    def settle(self, amount: Decimal, actual: Decimal) -> None:
        self.reserved -= amount
        self.spent += actual

    def remaining(self) -> Decimal:
        return self.limit - self.committed - self.spent - self.reserved

    def totals(self) -> tuple[Decimal, Decimal]:
        return self.spent, self.reserved


class RemoteBudget(Budget):
    """A worker's view of the lent budget: reservations are calls to the ledger actor."""

    __slots__ = ("_ledger",)

    def __init__(self, ledger: Any) -> None:
        super().__init__(_NOTHING, "run")
        self._ledger = ledger

    @property
    def remaining(self) -> Decimal:
        left: Decimal = ray.get(self._ledger.remaining.remote())
        return left

    def reserve(self, amount: Decimal) -> Reservation:
        refused = ray.get(self._ledger.reserve.remote(amount))
        if refused is not None:
            spent, reserved, limit, scope = refused
            raise BudgetExceeded(spent, reserved, limit, scope=scope)
        return _RemoteReservation(self._ledger, amount, self._lock)


class _RemoteReservation(Reservation):
    __slots__ = ("_ledger",)

    def __init__(self, ledger: Any, amount: Decimal, lock: Any) -> None:
        super().__init__([], amount, lock)
        self._ledger = ledger

    def settle(self, actual: Decimal) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
        # waited for: the chunk must not report back before its costs are on the ledger
        ray.get(self._ledger.settle.remote(self._amount, actual))


class Lent:
    """The driver's side of a loan: the hold on its budget and the ledger actor."""

    def __init__(self, budget: Budget) -> None:
        chain = budget.chain()
        tightest = min(chain, key=lambda b: b.remaining)
        amount = max(tightest.remaining, _NOTHING)
        committed = tightest.spent + tightest.reserved
        self._hold = budget.reserve(amount)
        actor: Any = ray.remote(num_cpus=0)(Ledger)  # bookkeeping takes no CPU from items
        self.ledger: Any = actor.remote(tightest.limit, committed, tightest.scope)

    def close(self) -> None:
        """Settle the hold to what the cluster spent, and end the ledger."""
        try:
            spent, reserved = ray.get(self.ledger.totals.remote())
        except Exception:  # the ledger is gone: nothing it lent can be given back
            self._hold.keep()
            raise
        else:
            self._hold.settle(spent + reserved)  # still reserved: cut off, may be billed
        finally:
            ray.kill(self.ledger)
