"""A run as a stream of its events: ``async for event in pipe.stream(inputs)``.

The run goes in a task of its own and hands each event to the reader through a bounded
buffer: when the reader falls ``buffer`` events behind, the listener waits, and the run
with it (backpressure; no event is ever dropped). Leaving early (``break``, the end of an
``async with`` block, ``aclose``) cancels the run, which unwinds in its task: nothing
keeps running (or spending) behind the reader's back.

That task is the one exception to plait's task groups, on purpose. ``async for event in
pipe.stream(...)`` with a ``break`` gives the stream no ``await`` to leave a task group
in: a group entered in the reader's task would stay open there (and break the reader's
own cancel scopes), and one inside an async generator would be closed by the garbage
collector from another task. So the run gets a task of the event loop's own (an asyncio
task, a trio system task), owned by the stream: cancelled when it is closed, or when it is
dropped after a ``break``, and awaited by ``aclose`` and ``async with``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import sniffio
from anyio.streams.memory import MemoryObjectSendStream

from ._errors import PlaitError
from ._events import RunEvent, RunFailed, RunFinished
from ._runtime import Runtime, default_runtime

if TYPE_CHECKING:
    from ._pipeline import Pipeline

__all__ = ["DEFAULT_BUFFER", "RunStream"]

DEFAULT_BUFFER = 64  # events the run may get ahead of its reader


class _OwnTask:
    """``work()`` in a task of the running event loop's own, in this context's copy."""

    __slots__ = ("cancel", "done")

    def __init__(self, work: Callable[[], Awaitable[None]]) -> None:
        self.done = anyio.Event()

        async def run() -> None:
            try:
                await work()
            finally:
                self.done.set()

        if sniffio.current_async_library() == "trio":
            import trio

            scope = trio.CancelScope()

            async def in_scope() -> None:
                with scope:
                    await run()

            trio.lowlevel.spawn_system_task(in_scope, context=contextvars.copy_context())
            self.cancel: Callable[[], object] = scope.cancel
        else:
            self.cancel = asyncio.get_running_loop().create_task(run()).cancel


class RunStream:
    """The events of one run, in the order they happened::

        async with pipe.stream({"text": ...}) as events:   # or just: async for ... in
            async for event in events:
                ...                                          # RunStarted ... RunFinished

    The last event is ``RunFinished`` (with the ``PipelineResult``, also for a run stopped
    early) or ``RunFailed`` (with the error and the partial result); an error before the
    run began (bad inputs) is raised instead. Leaving the loop early cancels the run:
    ``async with`` (or ``aclose()``) also waits for it to unwind, a bare ``break`` cancels
    it once the stream is dropped. ``runtime`` is the Runtime running it:
    ``runtime.converter.unstructure(event)`` is an event as JSON data.
    """

    __slots__ = ("_args", "_buffer", "_failed", "_pipe", "_receive", "_state", "_task",
                 "runtime")

    def __init__(self, pipe: Pipeline, inputs: Mapping[str, Any] | None, *, deps: Any,
                 runtime: Runtime | None, run_id: str | None, buffer: int) -> None:
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"pipe.stream: buffer must be an int >= 1, got {buffer!r}")
        self._pipe = pipe
        self.runtime = runtime or default_runtime()  # its converter turns events into JSON
        self._args = (inputs, deps, self.runtime, run_id)
        self._buffer = buffer
        self._state = "new"  # -> open -> closed
        self._failed: list[Exception] = []  # an error that never became a RunFailed
        self._task: _OwnTask | None = None

    async def __aenter__(self) -> RunStream:
        self._open()
        return self

    def _open(self) -> None:
        if self._state != "new":
            raise PlaitError("a run stream is read once: call pipe.stream again")
        self._state = "open"
        send, self._receive = anyio.create_memory_object_stream[RunEvent](
            max_buffer_size=self._buffer)
        pipe, args, failed = self._pipe, self._args, self._failed
        # the task holds what it needs, never the stream: dropping the stream cancels it
        self._task = _OwnTask(lambda: _run(pipe, args, send, failed))

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading: a run still going is cancelled, and waited for."""
        task = self._close()
        if task is not None:
            with anyio.CancelScope(shield=True):
                await task.done.wait()

    def _close(self) -> _OwnTask | None:
        """Cancel the run (if it still goes) and stop receiving; the task, to wait for."""
        if self._state != "open":
            self._state = "closed"
            return None
        self._state = "closed"
        task, self._task = self._task, None
        assert task is not None, "an open stream has its task"
        task.cancel()
        self._receive.close()
        return task

    def __del__(self) -> None:  # dropped after a bare ``break``: the run must not go on
        with contextlib.suppress(Exception):  # the event loop may be gone already
            self._close()

    def __aiter__(self) -> RunStream:
        return self

    async def __anext__(self) -> RunEvent:
        if self._state == "new":
            self._open()
        elif self._state == "closed":
            raise StopAsyncIteration
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            pass
        task = self._close()  # the run sent its last event: its task is ending
        if task is not None:
            await task.done.wait()
        if self._failed:
            raise self._failed.pop()
        raise StopAsyncIteration


async def _run(pipe: Pipeline, args: tuple[Any, Any, Runtime, str | None],
               send: MemoryObjectSendStream[RunEvent], failed: list[Exception]) -> None:
    inputs, deps, runtime, run_id = args
    ended = False

    async def listener(event: RunEvent) -> None:
        nonlocal ended
        ended = ended or isinstance(event, RunFinished | RunFailed)
        await send.send(event)

    async with send:
        try:
            await pipe._start(inputs, deps=deps, runtime=runtime, run_id=run_id,
                              listeners=(listener,))
        except anyio.get_cancelled_exc_class():
            raise
        except anyio.BrokenResourceError:
            pass  # the reader left: the run is being cancelled
        except Exception as exc:
            if not ended:  # nothing said the run failed (it never began): raise it
                failed.append(exc)
