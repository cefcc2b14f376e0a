"""Wrapper hooks may return async generators (guards that await), driven like sync ones;
and a wrapper is told, as a ``StepTimeout``, that the work it wraps ended by a timeout."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import plait
import pytest
from plait_testing import HANG, FakeProvider

WRAPPERS = ["run", "step", "fanout", "aggregate", "model_call"]


class AsyncGuard:
    """An async wrapper for every wrapper hook: it awaits before and after its yield."""

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log

    async def _guard(self, what: str) -> Any:
        await anyio.lowlevel.checkpoint()  # a quota check in a database, say
        self.log.append(("enter", what))
        try:
            result = yield
        except BaseException as exc:
            self.log.append(("error", f"{what}: {type(exc).__name__}"))
            raise
        await anyio.lowlevel.checkpoint()
        self.log.append(("exit", f"{what}: {type(result).__name__}"))

    @plait.hookimpl
    def plait_wrap_run(self, run: plait.RunInfo) -> Any:
        return self._guard("run")

    @plait.hookimpl
    def plait_wrap_step(self, step_id: str) -> Any:
        return self._guard("step")

    @plait.hookimpl
    def plait_wrap_fanout(self, job: plait.FanOutJob) -> Any:
        return self._guard("fanout")

    @plait.hookimpl
    def plait_wrap_aggregate(self, name: str) -> Any:
        return self._guard("aggregate")

    @plait.hookimpl
    def plait_wrap_model_call(self, request: plait.ModelRequest) -> Any:
        return self._guard("model_call")


class First:
    @plait.hookimpl
    def plait_register_aggregators(self, register: Any) -> None:
        async def first(job: plait.AggregationJob) -> plait.Aggregation:
            drawn = await job.candidates()
            return plait.Aggregation(drawn[0].output, 0, agreement=1.0)

        register("first", first)


@plait.step
async def everything(ctx: plait.StepContext) -> list[int]:
    """A step that makes a fan-out, an ensemble (an aggregation) and model calls."""
    mapped = await ctx.map(lambda x: x * 2, [1, 2])
    await ctx.ensemble(plait.Agent("fake:m"), "q", n=2, aggregate="first")
    return list(mapped)


EXPECTED = {"run": "PipelineResult", "step": "list", "fanout": "FanOutResult",
            "aggregate": "Aggregation", "model_call": "ModelResponse"}


@pytest.mark.parametrize("kind", WRAPPERS)
async def test_an_async_wrapper_is_driven_around_the_work(
    kind: str, plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    log: list[tuple[str, Any]] = []
    plait_runtime.register(First())
    plait_runtime.register(AsyncGuard(log))
    result = await plait.Pipeline("p", steps={"s": everything}).run(runtime=plait_runtime)
    assert result.output == [2, 4]
    mine = [(event, what) for event, what in log if what.split(":")[0] == kind]
    if kind == "model_call":  # the ensemble's two candidates, in parallel
        assert sorted(mine) == [("enter", kind)] * 2 + [("exit", f"{kind}: ModelResponse")] * 2
    else:
        assert mine == [("enter", kind), ("exit", f"{kind}: {EXPECTED[kind]}")]


async def test_an_async_wrapper_is_thrown_the_error_and_cannot_swallow_it(
    plait_runtime: plait.Runtime,
) -> None:
    log: list[tuple[str, Any]] = []

    class Swallows(AsyncGuard):
        async def _guard(self, what: str) -> Any:
            try:
                yield
            except Exception as exc:
                await anyio.lowlevel.checkpoint()
                log.append((what, type(exc).__name__))

    plait_runtime.register(Swallows(log))
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": lambda ctx: 1 / 0}).run(runtime=plait_runtime)
    assert isinstance(info.value.cause, ZeroDivisionError)
    assert log == [("step", "ZeroDivisionError"), ("run", "StepFailed")]


async def test_an_async_guard_can_refuse_before_the_work(plait_runtime: plait.Runtime,
                                                         fake_provider: FakeProvider) -> None:
    class Quota:
        @plait.hookimpl
        async def plait_wrap_model_call(self, request: plait.ModelRequest) -> Any:
            await anyio.lowlevel.checkpoint()  # look the quota up
            raise RuntimeError("quota used up")
            yield  # an async generator: it raises when the engine enters it

    plait_runtime.register(Quota(), name="quota")

    @plait.step
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:m"), "q")).output

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": ask}).run(runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.PluginError)
    assert ("plait_wrap_model_call wrapper of plugin 'quota' failed before the work started: "
            "RuntimeError: quota used up") in str(info.value.cause)
    assert fake_provider.calls == 0  # the request was never sent


@pytest.mark.parametrize(("body", "needle"), [
    ("return", "returned without yielding"),
    ("twice", "yielded more than once"),
])
async def test_a_misbehaving_async_wrapper_is_named(body: str, needle: str,
                                                    plait_runtime: plait.Runtime) -> None:
    class Bad:
        @plait.hookimpl
        async def plait_wrap_step(self) -> Any:
            if body == "return":
                return
            yield
            yield

    plait_runtime.register(Bad(), name="bad")
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": lambda ctx: 1}).run(runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.PluginError)
    assert needle in str(info.value.cause)
    assert "'bad'" in str(info.value.cause)


# -- timeouts as a model-call wrapper sees them ---------------------------------------------


class Breaker:
    """A circuit breaker: counts failed calls with ``except Exception``, as one would."""

    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.cancelled = 0

    @plait.hookimpl
    def plait_wrap_model_call(self) -> Any:
        try:
            yield
        except Exception as exc:
            self.failures.append(exc)
            raise
        except BaseException:
            self.cancelled += 1
            raise


class AsyncBreaker(Breaker):
    def __init__(self) -> None:
        super().__init__()
        self.released = 0

    @plait.hookimpl
    async def plait_wrap_model_call(self) -> Any:  # type: ignore[override]
        try:
            yield
        except Exception as exc:
            self.failures.append(exc)
            raise
        finally:
            await anyio.lowlevel.checkpoint()  # cleanup that awaits runs, even when cancelled
            self.released += 1


def hanging_step() -> plait.Pipeline:
    @plait.step(timeout=0.05, retries=1, retry_delay=0)
    async def slow(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:m"), "q")).output

    return plait.Pipeline("p", steps={"slow": slow})


@pytest.mark.parametrize("breaker", [Breaker, AsyncBreaker])
async def test_a_wrapper_is_told_a_call_ended_by_the_step_s_timeout(
    breaker: type[Breaker], plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    fake_provider.script(HANG, HANG)
    plugin = breaker()
    plait_runtime.register(plugin)
    with anyio.fail_after(5), pytest.raises(plait.StepFailed) as info:
        await hanging_step().run(runtime=plait_runtime)
    # the cancellation still did its job: each attempt timed out, was retried, then failed
    assert isinstance(info.value.cause, plait.StepTimeout)
    assert info.value.attempts == 2
    assert len(plugin.failures) == 2
    for seen in plugin.failures:
        assert isinstance(seen, plait.StepTimeout)
        assert (seen.step_id, seen.timeout) == ("slow", 0.05)
    if isinstance(plugin, AsyncBreaker):
        assert plugin.released == 2


async def test_a_cancel_that_is_no_timeout_stays_a_cancellation(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    fake_provider.script(HANG)
    plugin = Breaker()
    plait_runtime.register(plugin)

    @plait.step(timeout=60)
    async def slow(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:m"), "q")).output

    @plait.step
    async def stops(ctx: plait.StepContext) -> plait.Stop:
        await anyio.wait_all_tasks_blocked()  # once the call is in flight
        return plait.Stop("enough")

    pipe = plait.Pipeline("p", steps={"slow": slow, "stops": stops}, output="slow")
    with anyio.fail_after(5):
        result = await pipe.run(runtime=plait_runtime)
    assert result.stopped_early
    assert plugin.failures == []  # not a failure of the model: a breaker must not count it
    assert plugin.cancelled == 1


async def test_a_fan_out_item_timeout_is_shown_to_the_wrapper_with_the_item_s_path(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    fake_provider.script(HANG)
    plugin = Breaker()
    plait_runtime.register(plugin)

    @plait.step
    async def fan(ctx: plait.StepContext) -> Any:
        async def ask(item: int) -> str:
            return (await ctx.ask(plait.Agent("fake:m"), "q")).output

        return await ctx.map(ask, [1], timeout=0.05, on_error="collect", min_success=0)

    with anyio.fail_after(5):
        await plait.Pipeline("p", steps={"fan": fan}).run(runtime=plait_runtime)
    [seen] = plugin.failures
    assert isinstance(seen, plait.StepTimeout)
    assert seen.step_id == "fan/0"


async def test_a_wrapper_raising_its_own_error_on_a_timeout_does_not_stop_the_cancellation(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    class CircuitOpen(Exception):
        pass

    class Translates:
        @plait.hookimpl
        def plait_wrap_model_call(self) -> Any:
            try:
                yield
            except plait.StepTimeout as exc:
                raise CircuitOpen("the model is too slow") from exc

    fake_provider.script(HANG, HANG)
    plait_runtime.register(Translates())
    with anyio.fail_after(5), pytest.raises(plait.StepFailed) as info:
        await hanging_step().run(runtime=plait_runtime)
    # the timeout still ended each attempt, and the step still retried
    assert isinstance(info.value.cause, plait.StepTimeout)
    assert info.value.attempts == 2
