"""plait-ray's errors, in plait's hierarchy.

    plait.PlaitError
    ├── NotPicklable        a worker, an item or a result cannot be pickled for Ray
    └── RayTaskFailed       Ray lost a chunk of items (a worker died, the task was cancelled)
"""

from __future__ import annotations

from plait import PlaitError

__all__ = ["NotPicklable", "RayTaskFailed"]


class NotPicklable(PlaitError, TypeError):
    """``what`` (the worker, an item, a result) cannot be pickled to cross to or from a
    Ray worker; ``part`` names the piece inside it that failed, ``cause`` how."""

    def __init__(self, label: str, what: str, part: str | None, cause: str) -> None:
        self.label = label
        self.what = what
        self.part = part
        self.cause = cause
        inside = f": {part} cannot be pickled" if part else ""
        super().__init__(f"fan-out {label!r}: cannot ship {what} to Ray{inside} ({cause})")


class RayTaskFailed(PlaitError):
    """Ray could not run a chunk of items (its worker process died after Ray's own retries,
    or the task was cancelled); every item of the chunk carries this error."""

    retryable = True
