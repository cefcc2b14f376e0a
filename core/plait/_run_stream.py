"""A run as a stream of its events: ``async for event in pipe.stream(inputs)``.

The run goes in a task of its own and hands each event to the reader through a bounded
buffer: when the reader falls ``buffer`` events behind, the listener waits, and the run
with it (backpressure; no event is ever dropped). The reader's task hosts the run's task
group, entered with the stream (``async with``, or the first ``async for`` step) and left
when the run's last event was read or the reader leaves: leaving early cancels the run and
waits for it to unwind, so nothing keeps running (or spending) behind the reader's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._errors import PlaitError
from ._events import RunEvent, RunFailed, RunFinished
from ._runtime import Runtime, default_runtime

if TYPE_CHECKING:
    from ._pipeline import Pipeline

__all__ = ["DEFAULT_BUFFER", "RunStream"]

DEFAULT_BUFFER = 64  # events the run may get ahead of its reader


class RunStream:
    """The events of one run, in the order they happened::

        async with pipe.stream({"text": ...}) as events:   # or just: async for ... in
            async for event in events:
                ...                                          # RunStarted ... RunFinished

    The last event is ``RunFinished`` (with the ``PipelineResult``, also for a run stopped
    early) or ``RunFailed`` (with the error and the partial result); an error before the
    run began (bad inputs) is raised instead. Leaving the ``async with`` block, or
    ``aclose()``, before the end cancels the run. Without ``async with``, read the stream
    to its end (or call ``aclose``): a loop left by ``break`` leaves the run's task group
    open in the reader's task, so stop early only inside ``async with``. ``runtime`` is
    the Runtime running it: ``runtime.converter.unstructure(event)`` is an event as JSON
    data.
    """

    __slots__ = ("_args", "_buffer", "_error", "_pipe", "_receive", "_send", "_state", "_tg",
                 "_with", "runtime")

    def __init__(self, pipe: Pipeline, inputs: Mapping[str, Any] | None, *, deps: Any,
                 runtime: Runtime | None, run_id: str | None, buffer: int) -> None:
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"pipe.stream: buffer must be an int >= 1, got {buffer!r}")
        self._pipe = pipe
        self.runtime = runtime or default_runtime()  # its converter turns events into JSON
        self._args = (inputs, deps, self.runtime, run_id)
        self._buffer = buffer
        self._state = "new"  # -> open -> closed
        self._error: BaseException | None = None
        self._tg: TaskGroup | None = None
        self._with = False  # entered with ``async with`` (else read bare)

    async def __aenter__(self) -> RunStream:
        self._with = True
        return await self._open()

    async def _open(self) -> RunStream:
        if self._state != "new":
            raise PlaitError("a run stream is read once: call pipe.stream again")
        self._state = "open"
        self._send, self._receive = anyio.create_memory_object_stream[RunEvent](
            max_buffer_size=self._buffer)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run, self._send)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._leave(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Stop reading: a run still going is cancelled, and waited for."""
        await self._leave(None, None, None)

    async def _leave(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                     tb: TracebackType | None) -> None:
        if self._state != "open":
            self._state = "closed"
            return
        self._state = "closed"
        tg, self._tg = self._tg, None
        assert tg is not None, "open streams have a task group"
        tg.cancel_scope.cancel()
        self._receive.close()
        await tg.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> RunStream:
        return self

    async def __anext__(self) -> RunEvent:
        if self._state == "new":
            await self._open()
        elif self._state == "closed":
            raise StopAsyncIteration
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            pass
        # The run sent its last event. Inside ``async with`` its task group is left with
        # the block (scopes the reader opened since are nested in it); read bare, here.
        if not self._with:
            await self._leave(None, None, None)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        raise StopAsyncIteration

    async def _run(self, send: MemoryObjectSendStream[RunEvent]) -> None:
        inputs, deps, runtime, run_id = self._args
        ended = False

        async def listener(event: RunEvent) -> None:
            nonlocal ended
            ended = ended or isinstance(event, RunFinished | RunFailed)
            await send.send(event)

        async with send:
            try:
                await self._pipe._start(inputs, deps=deps, runtime=runtime, run_id=run_id,
                                        listeners=(listener,))
            except anyio.get_cancelled_exc_class():
                raise
            except anyio.BrokenResourceError:
                pass  # the reader left: the run is being cancelled
            except Exception as exc:
                if not ended:  # nothing said the run failed (it never began): raise it
                    self._error = exc

