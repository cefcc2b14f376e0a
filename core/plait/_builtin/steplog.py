"""The step log: one JSON line per finished step (and per run), failures included.

The per-step trace the seeds ask for: run id, step, timestamps, latency, tokens in and
out, cost, status and error. It is a tracer (``"steplog"``) registered by the built-ins
and enabled by ``PLAIT_STEP_LOG=<path>`` (``-`` for stderr) or ``Runtime(tracers=[...,
"steplog"])``. ``PLAIT_STEP_LOG_CONTENT=1`` adds each step's inputs (its dependencies'
outputs) and output, as JSON; they are left out by default because they may be private.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from plait.hookspecs import Wrapper, hookimpl

if TYPE_CHECKING:
    from plait._context import StepContext
    from plait._results import RunInfo
    from plait._step import Step

__all__ = ["StepLog"]


class StepLog:
    """A tracer writing JSON lines to a file (appended), ``"-"`` (stderr) or a stream."""

    def __init__(self, target: str | TextIO = "-", *, content: bool = False) -> None:
        self.target = target
        self.content = content
        self._path = target if isinstance(target, str) and target != "-" else None
        self._lock = threading.Lock()
        self._broken = False
        self._file: TextIO | None = None  # a path's handle, open while runs are
        self._runs = 0

    @classmethod
    def from_env(cls) -> StepLog:
        return cls(os.environ.get("PLAIT_STEP_LOG") or "-",
                   content=os.environ.get("PLAIT_STEP_LOG_CONTENT", "") not in ("", "0"))

    @hookimpl
    def plait_wrap_run(self, run: RunInfo) -> Wrapper:
        started, t0 = time.time(), time.perf_counter()
        line: dict[str, Any] = {"event": "run", "run_id": run.run_id, "pipeline": run.pipeline}
        self._opened()
        try:
            result = yield
        except BaseException as exc:
            partial = getattr(exc, "partial", None)
            usage = partial.usage if partial is not None else None
            self._write({**line, **_timing(started, t0), "status": _failed(exc),
                         **_usage(usage), "error": _error(exc)})
            raise
        else:
            status = "stopped" if result.stopped_early else "ok"
            self._write({**line, **_timing(started, t0), "status": status,
                         **_usage(result.usage), "error": None})
        finally:
            self._closed()

    @hookimpl
    def plait_wrap_step(self, step: Step, ctx: StepContext) -> Wrapper:
        from plait._results import Stop  # at use: every plugin manager registers this one

        started, t0 = time.time(), time.perf_counter()
        try:
            value = yield
        except BaseException as exc:
            self._write(self._step_line(ctx, started, t0, _failed(exc), _error(exc), None))
            raise
        status = "stopped" if isinstance(value, Stop) else "ok"
        self._write(self._step_line(ctx, started, t0, status, None, value))

    def _step_line(self, ctx: StepContext, started: float, t0: float, status: str,
                   error: Mapping[str, str] | None, value: Any) -> dict[str, Any]:
        line: dict[str, Any] = {
            "event": "step", "run_id": ctx.run_id, "pipeline": ctx.pipeline,
            "step": ctx.path, **_timing(started, t0), "status": status,
            "attempts": ctx.attempt, **_usage(ctx.usage), "route": ctx.route, "error": error,
        }
        if self.content:
            conv = ctx.runtime.converter
            line["inputs"] = {k: conv.unstructure(v) for k, v in ctx.dependencies.items()}
            line["output"] = conv.unstructure(value)
        return line

    # A path is opened (to append) when the first run starts and closed when the last one
    # ends: one open per run rather than per line, and no handle left behind.

    def _opened(self) -> None:
        with self._lock:
            self._runs += 1
            if self._runs == 1 and self._file is None and self._path is not None:
                with self._guard():
                    self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115

    def _closed(self) -> None:
        with self._lock:
            self._runs -= 1
            if self._runs == 0 and self._file is not None:
                with self._guard():
                    self._file.close()
                self._file = None

    def _write(self, line: Mapping[str, Any]) -> None:
        text = json.dumps(line, ensure_ascii=False, default=str) + "\n"
        with self._lock, self._guard():
            if self._path is not None:
                stream = self._file  # None: opening it failed, and that was reported
            else:  # stderr looked up now: the CLI may have redirected it
                stream = sys.stderr if isinstance(self.target, str) else self.target
            if stream is not None:
                stream.write(text)
                stream.flush()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """A log that cannot be written must not fail the run: warn once, go on."""
        try:
            yield
        except OSError as exc:
            if not self._broken:
                self._broken = True
                warnings.warn(f"plait step log: cannot write to {self.target!r}: {exc}",
                              RuntimeWarning, stacklevel=4)


def _timing(started: float, t0: float) -> dict[str, Any]:
    latency = time.perf_counter() - t0
    return {"started_at": _iso(started), "ended_at": _iso(started + latency),
            "latency_s": round(latency, 6)}


def _iso(ts: float) -> str:
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _usage(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {"input_tokens": None, "output_tokens": None, "calls": None, "cost_usd": None}
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "calls": usage.calls,  # a cost with an unpriced call in it is unknown: null
            "cost_usd": str(usage.cost) if usage.cost_known else None}


def _failed(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else "failed"


def _error(exc: BaseException) -> dict[str, str] | None:
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return None
    return {"type": type(exc).__name__, "message": str(exc)}
