"""The timeouts covering the running task, so wrappers can be told a call ended by one.

A step's timeout is a cancel scope: the work inside it is cancelled, and a wrapper around
that work would be thrown a bare cancellation it cannot tell from any other. Each
timeout scope is noted in a context variable while it is open; when a cancellation
reaches the wrappers and one of those scopes fired, ``timed_out`` names the
``StepTimeout`` the step is about to fail with, which the engine throws into them
instead (and then re-raises the cancellation, so the scope still catches it).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import anyio

from ._errors import StepTimeout

__all__ = ["timed_out", "timeout_scope"]

_OPEN: contextvars.ContextVar[tuple[tuple[anyio.CancelScope, str, float], ...]] = (
    contextvars.ContextVar("plait_timeouts", default=()))


@contextlib.contextmanager
def timeout_scope(seconds: float, where: str) -> Iterator[anyio.CancelScope]:
    """``anyio.move_on_after(seconds)``, noted as the timeout of ``where``."""
    with anyio.move_on_after(seconds) as scope:
        token = _OPEN.set((*_OPEN.get(), (scope, where, seconds)))
        try:
            yield scope
        finally:
            _OPEN.reset(token)


def timed_out(exc: BaseException) -> StepTimeout | None:
    """The timeout ``exc`` is the cancellation of, if one of the open timeouts fired."""
    if not isinstance(exc, anyio.get_cancelled_exc_class()):
        return None
    for scope, where, seconds in reversed(_OPEN.get()):
        if scope.cancel_called:
            return StepTimeout(where, seconds)
    return None
