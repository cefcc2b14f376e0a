"""run_sync: a pipeline from synchronous code; never inside a running event loop."""

from __future__ import annotations

import asyncio

import anyio
import anyio.to_thread
import plait
import pytest


def pipeline() -> plait.Pipeline:
    async def greet(ctx: plait.StepContext) -> str:
        await anyio.lowlevel.checkpoint()
        return f"hello {ctx.input('name')} from {ctx.deps}"

    return plait.Pipeline("sync", steps={"greet": greet})


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_sync_from_sync_code(backend: str) -> None:
    runtime = plait.Runtime(entry_points=False)
    result = plait.run_sync(pipeline(), {"name": "ada"}, deps="tests", runtime=runtime,
                            backend=backend)
    assert isinstance(result, plait.PipelineResult)
    assert result.output == "hello ada from tests"


def test_run_sync_raises_what_the_run_raises() -> None:
    async def broken(ctx: plait.StepContext) -> None:
        raise ValueError("sync caller sees this")

    pipe = plait.Pipeline("broken", steps={"broken": broken})
    with pytest.raises(plait.StepFailed) as info:
        plait.run_sync(pipe, runtime=plait.Runtime(entry_points=False))
    assert isinstance(info.value.cause, ValueError)


async def test_run_sync_refuses_inside_a_running_loop(anyio_backend: str) -> None:
    with pytest.raises(RuntimeError) as info:
        plait.run_sync(pipeline(), {"name": "x"}, runtime=plait.Runtime(entry_points=False))
    message = str(info.value)
    assert f"inside a running {anyio_backend} event loop" in message
    assert "use `await pipeline.run(inputs)` instead" in message


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_run_sync_refuses_in_a_loop_callback(anyio_backend: str) -> None:
    """Sync code called back by a running asyncio loop (as in Jupyter) is refused too,
    although no task is running there for sniffio to see."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[BaseException | None] = loop.create_future()

    def callback() -> None:
        try:
            plait.run_sync(pipeline(), {"name": "x"}, runtime=plait.Runtime(entry_points=False))
        except RuntimeError as exc:
            outcome.set_result(exc)
        else:
            outcome.set_result(None)

    loop.call_soon(callback)
    error = await outcome
    assert isinstance(error, RuntimeError)
    assert "inside a running asyncio event loop" in str(error)


async def test_run_sync_works_in_a_worker_thread_of_a_running_loop() -> None:
    """A worker thread has no loop of its own, so a sync library called there may use it."""
    runtime = plait.Runtime(entry_points=False)
    result = await anyio.to_thread.run_sync(
        lambda: plait.run_sync(pipeline(), {"name": "thread"}, runtime=runtime))
    assert result.output == "hello thread from None"
